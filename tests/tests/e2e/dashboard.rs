//! What a compliance lead sees: the demo pipeline loaded into a real server, the dashboard opened
//! in headless Chromium, and the page read the way a person reads it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use aims_e2e::{
    ServerProcess, agent_once, bin, browse, get_json, git, http, run_seed_pipeline,
    write_agent_config,
};

/// The inner HTML of the grid cell for (system, control), found in the rendered DOM.
fn cell_html(dom: &str, system: &str, control: &str) -> String {
    let row_start = dom
        .find(&format!("data-system=\"{system}\""))
        .unwrap_or_else(|| panic!("no row for {system}"));
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let at = row
        .find(&format!("data-control=\"{control}\""))
        .unwrap_or_else(|| panic!("no cell {control}"));
    let cell = &row[at..];
    cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()].to_owned()
}

/// The text of some HTML: tags dropped, entities kept.
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_owned()
}

/// The status shown in the grid cell for (system, control): issue 16 made the cell a link to its
/// drill-down page whose text is the status (a fresh cell adds when its window closes).
fn cell(dom: &str, system: &str, control: &str) -> String {
    let html = cell_html(dom, system, control);
    let link = &html[..html.find("</a>").unwrap_or(html.len())];
    text_of(link)
}

/// The whole text of the grid cell for (system, control).
fn cell_text(dom: &str, system: &str, control: &str) -> String {
    text_of(&cell_html(dom, system, control))
}

/// HTML entities as Chromium writes them back, decoded.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Where `AIMS_SCREENSHOT_DIR` asks for screenshots, the path of one.
fn screenshot(name: &str) -> Option<std::path::PathBuf> {
    std::env::var("AIMS_SCREENSHOT_DIR")
        .ok()
        .map(|d| std::path::Path::new(&d).join(name))
}

/// `/?token=…&next=PATH`: opens PATH signed in with `token` (PATH's query URL-encoded).
fn signed_in(server: &ServerProcess, token: &str, path: &str) -> String {
    let next: String = path
        .bytes()
        .map(|b| match b {
            b'?' => "%3F".to_owned(),
            b'&' => "%26".to_owned(),
            b'=' => "%3D".to_owned(),
            _ => (b as char).to_string(),
        })
        .collect();
    format!("{}/?token={token}&next={next}", server.url)
}

#[test]
fn dashboard_shows_status_per_system_and_control() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let viewer = run_seed_pipeline(&server, tmp.path()).unwrap();

    // Without a token the dashboard asks for one.
    let dom = browse(&format!("{}/", server.url), None).unwrap();
    assert!(dom.contains("Sign in"), "{dom}");

    // With the viewer token (set as a cookie, then redirected to a clean URL).
    let shot = screenshot("dashboard.png");
    let dom = browse(&format!("{}/?token={viewer}", server.url), shot.as_deref()).unwrap();
    assert!(
        dom.contains("AI systems × Annex A.6 / A.7 controls"),
        "{dom}"
    );
    for system in ["fraud-scoring", "credit-risk", "churn-predictor"] {
        assert!(
            dom.contains(&format!("data-system=\"{system}\"")),
            "row for {system} missing"
        );
    }
    // The healthy system's validation is fresh; the failing one's is drifted; the changed
    // dataset card drifts the churn system's data controls.
    assert_eq!(cell(&dom, "fraud-scoring", "A.6.2.4"), "fresh");
    // Issue 16: a fresh cell says until when, as a date and the days left.
    let fresh = cell_text(&dom, "fraud-scoring", "A.6.2.4");
    assert!(
        fresh.starts_with("fresh until 20") && fresh.ends_with(" days left)"),
        "{fresh}"
    );
    assert!(
        cell_html(&dom, "fraud-scoring", "A.6.2.4").contains("<time datetime=\"20"),
        "the exact instant is in a time element"
    );
    // The trend of the fresh ratio over 90 days, as a picture and in words, and the freshness
    // distribution; the viewer is not offered the auditor workspace.
    assert!(
        dom.contains("id=\"trend-title\"") && dom.contains("<desc id=\"trend-desc\">"),
        "{dom}"
    );
    let trend = &dom[dom.find("id=\"trend\"").unwrap()..];
    assert!(
        trend.contains("All systems: fresh ratio ")
            && trend.contains(" today, ")
            && trend.contains(" 30 days ago, "),
        "{trend}"
    );
    assert!(trend.contains(">100 %</text>"), "a labelled y axis");
    assert!(
        dom.contains("id=\"closing\"")
            && dom.contains("Freshness windows closing")
            && dom.contains(" close within 7 days, "),
        "{dom}"
    );
    assert!(
        dom.contains("<svg class=\"spark\""),
        "each system's own trend in its row"
    );
    assert!(
        !dom.contains("href=\"/audit\""),
        "no workspace link for a viewer"
    );
    // Filter, order and page through query parameters (a plain GET form: no script needed).
    assert!(dom.contains("id=\"grid-filter\""), "{dom}");
    assert!(dom.contains("3 of 3 systems"), "{dom}");
    let only = browse(
        &format!("{}/?token={viewer}&next=%2F%3Fq%3Dfraud", server.url),
        None,
    )
    .unwrap();
    assert!(only.contains("1 of 3 systems"), "{only}");
    assert!(only.contains("data-system=\"fraud-scoring\""));
    assert!(!only.contains("data-system=\"credit-risk\""));
    let drifted = browse(
        &format!(
            "{}/?token={viewer}&next=%2F%3Fstatus%3Ddrifted%26sort%3Ddrifted",
            server.url
        ),
        None,
    )
    .unwrap();
    // The seed changes drift some systems, not all: the filter shows those, each with a
    // drifted cell.
    assert!(
        drifted.contains("1 of 3 systems") || drifted.contains("2 of 3 systems"),
        "{drifted}"
    );
    assert!(drifted.contains("class=\"st drifted\""), "{drifted}");
    assert!(
        dom.contains("href=\"/systems/fraud-scoring/controls/A.6.2.4\""),
        "grid cells link to their drill-down page"
    );
    // The drill-down page: status, the evidence with short locators, the 90-day history strip.
    let page = browse(
        &format!(
            "{}/?token={viewer}&next=/systems/fraud-scoring/controls/A.6.2.4",
            server.url
        ),
        None,
    )
    .unwrap();
    assert!(
        page.contains("Last 90 days") && page.contains("<svg"),
        "{page}"
    );
    assert!(page.contains("validation_report"), "{page}");
    assert!(
        page.contains("id=\"maturity\"") && page.contains(" of 5"),
        "{page}"
    );
    let across = browse(
        &format!("{}/?token={viewer}&next=/controls/A.6.2.4", server.url),
        None,
    )
    .unwrap();
    assert!(across.contains("data-system=\"credit-risk\""), "{across}");
    // Filtered by status and sorted through the query string (no script): only the drifted
    // system, and the headers sort.
    let drifted_only = browse(
        &format!(
            "{}/?token={viewer}&next=%2Fcontrols%2FA.6.2.4%3Fstatus%3Ddrifted",
            server.url
        ),
        None,
    )
    .unwrap();
    assert!(
        drifted_only.contains("data-system=\"credit-risk\"")
            && !drifted_only.contains("data-system=\"fraud-scoring\"")
            && drifted_only.contains(" of 3 AI systems shown"),
        "{drifted_only}"
    );
    let by_id_desc = browse(
        &format!(
            "{}/?token={viewer}&next=%2Fcontrols%2FA.6.2.4%3Fsort%3Dsystem%26desc%3D1",
            server.url
        ),
        None,
    )
    .unwrap();
    let order: Vec<usize> = ["fraud-scoring", "credit-risk", "churn-predictor"]
        .iter()
        .map(|id| by_id_desc.find(&format!("data-system=\"{id}\"")).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "descending ids: {by_id_desc}"
    );
    let sources = browse(
        &format!("{}/?token={viewer}&next=/sources", server.url),
        None,
    )
    .unwrap();
    assert!(
        sources.contains("id=\"sources\"") && sources.contains(">ok<"),
        "{sources}"
    );
    assert!(
        !browse(
            &format!(
                "{}/?token={viewer}&next=%2Fsources%3Fstatus%3Dfailing",
                server.url
            ),
            None,
        )
        .unwrap()
        .contains("data-source="),
        "no source is failing"
    );
    // Each source links to the evidence it produced, and that to each record's page.
    let link = sources
        .split("href=\"/sources/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a source links to its evidence")
        .to_owned();
    let produced = browse(
        &format!("{}/?token={viewer}&next=/sources/{link}", server.url),
        None,
    )
    .unwrap();
    assert!(
        produced.contains("id=\"records\"") && produced.contains("href=\"/evidence/"),
        "{produced}"
    );
    assert_eq!(cell(&dom, "credit-risk", "A.6.2.4"), "drifted");
    assert_eq!(cell(&dom, "credit-risk", "A.6.2.5"), "missing");
    assert_eq!(cell(&dom, "credit-risk", "A.6.2.6"), "stale");
    assert!(
        ["A.6.2.4", "A.7.3"]
            .iter()
            .any(|c| cell(&dom, "churn-predictor", c) == "drifted"),
        "churn-predictor should be drifted by the dataset card change"
    );

    // The system page lists findings that explain themselves and the evidence with its hash.
    let shot = screenshot("system.png");
    let dom = browse(
        &format!(
            "{}/?token={viewer}&next=/systems/churn-predictor",
            server.url
        ),
        shot.as_deref(),
    )
    .unwrap();
    // Its own trend and its findings by kind, each with a sentence.
    assert!(
        dom.contains("churn-predictor: fresh ratio ")
            && dom.contains("id=\"findings-chart-title\""),
        "{dom}"
    );
    assert!(dom.contains("Open findings by kind: "), "{dom}");
    // Locators are short (`repo:path`), the full one in the title and in a code to copy.
    assert!(dom.contains(">pipeline:systems/churn-predictor/"), "{dom}");
    assert!(
        dom.contains("title=\"git+file://") && dom.contains("<code>git+file://"),
        "{dom}"
    );
    assert!(
        dom.contains("<time datetime=\"20") && dom.contains(" ago)</time>"),
        "times are dates with the time ago"
    );
    assert!(
        dom.contains("AI system <code>churn-predictor</code>"),
        "{dom}"
    );
    let findings = &dom[dom.find("id=\"findings\"").unwrap()..dom.find("id=\"evidence\"").unwrap()];
    assert!(
        findings.contains("data-kind=\"changed\""),
        "a changed finding is shown: {findings}"
    );
    assert!(
        findings.to_lowercase().contains("dataset card"),
        "the finding says what changed: {findings}"
    );
    // Issue 16 item 2: it names the parsed fields that changed (the second commit adds a source
    // and grows both splits), and links the card's record to what changed.
    assert!(
        findings.contains(
            "fields changed: dataset_size, source_datasets, splits[eval].num_examples and \
             splits[train].num_examples."
        ),
        "{findings}"
    );
    let what = findings
        .find("class=\"what-changed\" href=\"/evidence/")
        .map(|at| &findings[at + "class=\"what-changed\" href=\"".len()..])
        .expect("a link to what changed");
    let what = what[..what.find('"').unwrap()].to_owned();
    assert!(what.ends_with("#changes"), "{what}");
    let card = what
        .trim_start_matches("/evidence/")
        .trim_end_matches("#changes")
        .to_owned();
    let shot = screenshot("evidence.png");
    let page = browse(
        &signed_in(&server, &viewer, &format!("/evidence/{card}")),
        shot.as_deref(),
    )
    .unwrap();
    let prev = href_of(&page, "prev-link");
    assert!(
        prev.starts_with("/evidence/") && prev != format!("/evidence/{card}"),
        "the previous version is linked: {prev}"
    );
    for field in [
        "source_datasets",
        "dataset_size",
        "splits[train].num_examples",
        "splits[eval].num_examples",
    ] {
        assert!(
            page.contains(&format!("data-field=\"{field}\"")),
            "{field} is in the field table: {page}"
        );
    }
    assert!(
        page.contains("acme-internal/support-interactions"),
        "the new source is shown: {page}"
    );
    assert!(
        page.contains("4 parsed fields differ from the previous version"),
        "{page}"
    );
    let versions = &page[page.find("id=\"versions\"").unwrap()..];
    let size_row = &versions[versions.find("data-row=\"Size\"").unwrap()..];
    assert!(
        size_row[..size_row.find("</tr>").unwrap()].contains("differs"),
        "{versions}"
    );
    let commit_row = &versions[versions.find("data-row=\"Commit\"").unwrap()..];
    assert!(
        commit_row[..commit_row.find("</tr>").unwrap()].contains("differs"),
        "the git commit each version was read from: {versions}"
    );
    assert!(
        page.contains("The server does not keep the content of this artifact"),
        "collected content is not compared line by line, and the page says so: {page}"
    );
    // The previous version's own page: the first version, nothing to compare with.
    let first = browse(&signed_in(&server, &viewer, &prev), None).unwrap();
    assert!(
        first.contains("none: the first version of this artifact in the ledger"),
        "{first}"
    );
    let evidence = &dom[dom.find("id=\"evidence\"").unwrap()..];
    assert!(
        evidence.contains("dataset_card") && evidence.contains("validation_report"),
        "{evidence}"
    );
    assert!(
        evidence
            .split(|c: char| !c.is_ascii_hexdigit())
            .any(|w| w.len() == 64),
        "the evidence table shows SHA-256 digests"
    );

    // Issue 16: the auditor workspace is not a viewer's, in the browser and over HTTP.
    let dom = browse(&signed_in(&server, &viewer, "/audit"), None).unwrap();
    assert!(
        dom.contains("The auditor workspace is for auditor and admin tokens"),
        "{dom}"
    );
    assert!(!dom.contains("id=\"report\""), "no report for a viewer");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for path in ["/audit", "/audit/check?sha256=00", "/audit/population.csv"] {
        let status = rt.block_on(async {
            http()
                .unwrap()
                .get(format!("{}{path}", server.url))
                .bearer_auth(&viewer)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 403, "{path}");
    }
}

/// A session as a browser holds it: signs in with `/?token=` and returns the cookie to send.
async fn session_cookie(server: &ServerProcess, token: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/?token={token}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("aims_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("a session cookie")
}

/// `GET url` with the session cookie: status and body.
async fn get_with(url: &str, cookie: &str) -> (u16, Vec<u8>) {
    let r = http()
        .unwrap()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The `href` of the element with this id (entities decoded).
fn href_of(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let tag_start = dom[..at].rfind('<').unwrap();
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>').unwrap()];
    let h = tag.find("href=\"").unwrap() + "href=\"".len();
    unescape(&tag[h..h + tag[h..].find('"').unwrap()])
}

/// Issue 16 item 6: the auditor workspace. The period report, downloads that work with the
/// browser's session (the bundle verifies offline against the policy the page shows), the
/// population CSV, and "check a file" finding a shipped file's SHA-256 and not another.
#[test]
fn issue_16_auditor_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    run_seed_pipeline(&server, tmp.path()).unwrap();
    let auditor = server.token("auditor", "external-auditor").unwrap();

    let dom = browse(&format!("{}/?token={auditor}", server.url), None).unwrap();
    assert_eq!(
        href_of(&dom, "audit-link"),
        "/audit",
        "the workspace is linked from /"
    );

    let shot = screenshot("audit.png");
    let dom = browse(&signed_in(&server, &auditor, "/audit"), shot.as_deref()).unwrap();
    assert!(dom.contains("<h1>Auditor workspace</h1>"), "{dom}");
    assert!(
        dom.contains("data-system=\"fraud-scoring\" data-control=\"A.6.2.4\""),
        "the period report has a row per system and control: {dom}"
    );
    let report = &dom[dom.find("id=\"report\"").unwrap()..];
    assert!(
        report.contains("Fresh ratio") && report.contains(" %</td>"),
        "{report}"
    );
    assert!(
        report.contains("<strong>drifted</strong> from "),
        "gaps with their reasons: {report}"
    );
    // The form defaults to the last 90 days.
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(90);
    assert!(
        dom.contains(&format!("name=\"from\" value=\"{from}\""))
            && dom.contains(&format!("name=\"to\" value=\"{today}\"")),
        "{dom}"
    );
    assert!(
        dom.contains("aims-verify bundle.tar.gz --trust policy.txt"),
        "{dom}"
    );

    // The policy shown is the one `aims-server keys show` prints.
    let out = std::process::Command::new(bin("aims-server").unwrap())
        .args(["keys", "show", "--database", &server.database])
        .output()
        .unwrap();
    assert!(out.status.success());
    let pinned = String::from_utf8(out.stdout).unwrap();
    let policy_at = dom.find("id=\"policy\">").unwrap() + "id=\"policy\">".len();
    let shown = unescape(&dom[policy_at..policy_at + dom[policy_at..].find("</pre>").unwrap()]);
    assert_eq!(shown.trim(), pinned.trim());

    // Every download link works with the session cookie a browser holds.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cookie = rt.block_on(session_cookie(&server, &auditor));
    let get = |id: &str| {
        let href = href_of(&dom, id);
        assert!(href.starts_with('/'), "{href}");
        let (status, body) = rt.block_on(get_with(&format!("{}{href}", server.url), &cookie));
        assert_eq!(
            status,
            200,
            "{id} {href}: {}",
            String::from_utf8_lossy(&body)
        );
        (href, body)
    };
    let (href, bundle) = get("bundle-link");
    assert!(
        href.starts_with("/v1/export?from=") && href.contains("&to="),
        "{href}"
    );
    assert_eq!(&bundle[..2], &[0x1f, 0x8b], "a gzip bundle");
    let (href, oscal) = get("oscal-link");
    assert!(href.starts_with("/v1/export/oscal?from="), "{href}");
    assert!(String::from_utf8_lossy(&oscal).contains("assessment-results"));
    let (href, csv) = get("report-csv-link");
    assert!(
        href.starts_with("/v1/report?from=") && href.ends_with("&format=csv"),
        "{href}"
    );
    assert!(String::from_utf8_lossy(&csv).starts_with("system,control,fresh_ratio,"));
    let (_, population) = get("population-link");
    let population = String::from_utf8(population).unwrap();
    assert!(
        population.starts_with("leaf,received_at,system,kind,event,artifact,locator,sha256,"),
        "{population}"
    );

    // The bundle verifies offline against the policy the page told the auditor to pin.
    let bundle_path = tmp.path().join("bundle.tar.gz");
    let policy_path = tmp.path().join("policy.txt");
    std::fs::write(&bundle_path, &bundle).unwrap();
    std::fs::write(&policy_path, &shown).unwrap();
    let out = std::process::Command::new(bin("aims-verify").unwrap())
        .arg(&bundle_path)
        .arg("--trust")
        .arg(&policy_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Check a file: a shipped file's digest is found, with where it is; another is not.
    let controls = rt
        .block_on(get_json(
            &format!("{}/v1/systems/fraud-scoring/controls", server.url),
            &auditor,
        ))
        .unwrap();
    let ev = controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.6.2.4")
        .unwrap()["evidence"][0]
        .clone();
    let sha = ev["sha256"].as_str().unwrap();
    let record = ev["record_id"].as_str().unwrap();
    assert!(
        population.contains(&format!(",{sha},{record},")),
        "the population lists the record"
    );
    let dom = browse(
        &signed_in(
            &server,
            &auditor,
            &format!("/audit/check?sha256={}", sha.to_uppercase()),
        ),
        None,
    )
    .unwrap();
    assert!(dom.contains("data-found=\"yes\""), "{dom}");
    let table = &dom[dom.find("id=\"check-records\"").unwrap()..];
    assert!(table.contains(">fraud-scoring</a>"), "{table}");
    assert!(
        table.contains(&format!("href=\"/evidence/{record}\"")),
        "{table}"
    );
    assert!(table.contains(">pipeline:"), "short locator: {table}");
    let dom = browse(
        &signed_in(
            &server,
            &auditor,
            &format!("/audit/check?sha256={}", "0".repeat(64)),
        ),
        None,
    )
    .unwrap();
    assert!(
        dom.contains("data-found=\"no\"") && dom.contains("No record in the ledger has content"),
        "{dom}"
    );
    let dom = browse(
        &signed_in(&server, &auditor, "/audit/check?sha256=abc"),
        None,
    )
    .unwrap();
    assert!(
        dom.contains("data-found=\"invalid\"")
            && dom.contains("64 hexadecimal characters (0–9, a–f); this has 3."),
        "{dom}"
    );
    // A period the form cannot take says which field is wrong.
    let dom = browse(
        &signed_in(&server, &auditor, "/audit?from=2026-13-01&to=2026-12-01"),
        None,
    )
    .unwrap();
    assert!(dom.contains("from: \"2026-13-01\" is not a date"), "{dom}");
}

/// Whatever an artifact contains is shown as text: a model card and a file name carrying markup
/// do not become elements of the page.
#[test]
fn artifact_content_is_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let agent = server.token("agent", "e2e-agent").unwrap();
    let viewer = server.token("viewer", "lead").unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("systems/x/model")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    std::fs::write(
        repo.join("systems/x/model/README.md"),
        "---\nlibrary_name: \"<script>document.title='pwned'</script>\"\npipeline_tag: x\n---\n# card\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("systems/x/<img src=x onerror=alert(1)>.md"),
        "hello\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-qm", "hostile"]).unwrap();
    let cfg = write_agent_config(tmp.path(), &server.url, &agent, &repo).unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let dom = browse(
        &format!("{}/?token={viewer}&next=/systems/x", server.url),
        None,
    )
    .unwrap();
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the file name is shown as text: {dom}"
    );
    assert!(!dom.contains("<img src=\"x\""), "no element was injected");
    // The record page shows the parsed metadata, including the card's script, as text.
    let card_at = dom.rfind("systems/x/model/README.md").unwrap();
    let link_at = dom[..card_at].rfind("/evidence/").unwrap() + "/evidence/".len();
    let record = dom[link_at..].split('"').next().unwrap().to_owned();
    let dom = browse(
        &format!("{}/?token={viewer}&next=/evidence/{record}", server.url),
        None,
    )
    .unwrap();
    assert!(
        !dom.contains("<script>document.title"),
        "no script element was injected"
    );
    assert!(!dom.contains("<title>pwned"), "the script did not run");
    assert!(
        dom.contains("&lt;script&gt;document.title"),
        "the card's value is shown as text: {dom}"
    );

    // Issue 16 item 2: a second version whose changed field carries markup; the difference
    // shows both values as text.
    std::fs::write(
        repo.join("systems/x/model/README.md"),
        "---\nlibrary_name: \"<script>document.title='pwned2'</script>\"\npipeline_tag: x\n---\n# card\n",
    )
    .unwrap();
    git(&repo, &["commit", "-qam", "hostile again"]).unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let dom = browse(
        &format!("{}/?token={viewer}&next=/systems/x", server.url),
        None,
    )
    .unwrap();
    // The evidence table lists the newest record first.
    let table = &dom[dom.find("id=\"evidence\"").unwrap()..];
    let card_at = table.find("systems/x/model/README.md").unwrap();
    let link_at = table[..card_at].rfind("/evidence/").unwrap() + "/evidence/".len();
    let newest = table[link_at..].split('"').next().unwrap().to_owned();
    assert_ne!(newest, record, "a second version was recorded");
    let dom = browse(
        &format!("{}/?token={viewer}&next=/evidence/{newest}", server.url),
        None,
    )
    .unwrap();
    assert!(
        dom.contains(&format!("href=\"/evidence/{record}\"")),
        "the previous version is linked: {dom}"
    );
    assert!(
        dom.contains("data-field=\"library_name\" data-change=\"changed\""),
        "{dom}"
    );
    assert!(
        !dom.contains("<script>document.title"),
        "no script element was injected: {dom}"
    );
    assert!(!dom.contains("<title>pwned"), "the script did not run");
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'")
            && dom.contains("&lt;script&gt;document.title='pwned2'"),
        "both values are shown as text: {dom}"
    );
}

/// No raw `<script>alert` in a dumped DOM except inside an attribute value (where an older
/// Chromium writes `"` as `&quot;` but leaves `<` alone): a script element or an attribute
/// broken open by a quote would show one.
fn assert_no_markup_injected(page: &str, dom: &str) {
    let outside_attributes = dom.replace("&quot;<script>alert", "");
    assert!(
        !outside_attributes.contains("<script>alert"),
        "{page}: markup from an artifact became part of the page: {dom}"
    );
}

/// Issue 16: a locator and a reason carrying `<script>` and `"` render as text on every page
/// that shows them: the grid, the system, control and control-across-systems pages, the
/// evidence record, the auditor's period report and file check, and the sources page.
#[test]
fn issue_16_locators_and_reasons_are_text_on_every_page() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let agent = server.token("agent", "e2e-agent").unwrap();
    let auditor = server.token("auditor", "auditor").unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("systems/x")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    // A failed validation: its finding's message (the drifted control's reason) names the
    // file and the model, both hostile.
    let content = "{\"kind\": \"validation_report\", \"decision\": \"fail\", \
                   \"model\": {\"name\": \"m\\\"<script>alert(2)</script>\", \"version\": \"1\"}}\n";
    std::fs::write(repo.join("systems/x/v\"<script>alert(1).json"), content).unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-qm", "hostile"]).unwrap();
    let cfg = write_agent_config(tmp.path(), &server.url, &agent, &repo).unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let controls = rt
        .block_on(get_json(
            &format!("{}/v1/systems/x/controls", server.url),
            &auditor,
        ))
        .unwrap();
    let view = controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.6.2.4")
        .unwrap()
        .clone();
    assert_eq!(view["status"], "drifted", "{view}");
    let reason = view["reason"].as_str().unwrap();
    assert!(reason.contains("v\"<script>alert(1).json"), "{reason}");
    let ev = &view["evidence"][0];
    let (record, sha) = (
        ev["record_id"].as_str().unwrap(),
        ev["sha256"].as_str().unwrap(),
    );

    // Where the text shows as text, it is there, escaped.
    for path in [
        "/systems/x".to_owned(),
        "/systems/x/controls/A.6.2.4".to_owned(),
        "/controls/A.6.2.4".to_owned(),
        format!("/evidence/{record}"),
        "/audit".to_owned(),
        format!("/audit/check?sha256={sha}"),
    ] {
        let dom = browse(&signed_in(&server, &auditor, &path), None).unwrap();
        assert_no_markup_injected(&path, &dom);
        assert!(
            dom.contains("v\"&lt;script&gt;alert(1).json"),
            "{path}: the locator is shown as text: {dom}"
        );
    }
    // Where it is only in attributes (the grid cell's title) or not at all, nothing is injected.
    for path in ["/", "/sources"] {
        let dom = browse(&signed_in(&server, &auditor, path), None).unwrap();
        assert_no_markup_injected(path, &dom);
    }
    let dom = browse(&signed_in(&server, &auditor, "/"), None).unwrap();
    assert_eq!(cell(&dom, "x", "A.6.2.4"), "drifted");
}

/// `POST /v1/uploads?{query}` as `token`; the record ID of the upload.
async fn upload(server: &ServerProcess, token: &str, query: &str, body: &str) -> String {
    let r = http()
        .unwrap()
        .post(format!("{}/v1/uploads?{query}", server.url))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    v["record_id"].as_str().unwrap().to_owned()
}

/// Issue 16 item 2: two uploads of the same document (the server keeps their bytes) are compared
/// line by line on the newer one's evidence page, markup in a line shown as text.
#[test]
fn issue_16_uploaded_versions_are_compared_line_by_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let admin = server.token("admin", "compliance-admin").unwrap();
    let viewer = server.token("viewer", "lead").unwrap();
    let q = "system=fraud-scoring&kind=ai_policy&name=ai-policy.md";
    let v1 = "---\ntitle: Responsible AI policy\ndate: 2026-11-30\n---\n\n# AI policy\n\n\
              Every AI system has an owner.\nOwners review it yearly.\n";
    let v2 = "---\ntitle: Responsible AI policy <script>alert(3)</script>\ndate: 2026-12-01\n---\n\n\
              # AI policy\n\nEvery AI system has an owner.\nOwners review it every quarter.\n";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = rt.block_on(upload(&server, &admin, q, v1));
    let second = rt.block_on(upload(&server, &admin, q, v2));

    let shot = screenshot("evidence-upload.png");
    let dom = browse(
        &signed_in(&server, &viewer, &format!("/evidence/{second}")),
        shot.as_deref(),
    )
    .unwrap();
    assert_eq!(href_of(&dom, "prev-link"), format!("/evidence/{first}"));
    assert_no_markup_injected("/evidence", &dom);
    assert!(
        dom.contains("data-field=\"title\" data-change=\"changed\""),
        "the parsed title changed: {dom}"
    );
    let diff = &dom[dom.find("id=\"content-diff\"").expect("a line diff")..];
    let diff = &diff[..diff.find("</table>").unwrap()];
    assert!(
        diff.contains("<td>−</td><td><code class=\"line\">Owners review it yearly.</code>")
            && diff.contains(
                "<td>+</td><td><code class=\"line\">Owners review it every quarter.</code>"
            ),
        "{diff}"
    );
    assert!(
        diff.contains("<code class=\"line\">title: Responsible AI policy &lt;script&gt;alert(3)&lt;/script&gt;</code>"),
        "{diff}"
    );
    assert!(
        diff.contains("<code class=\"line\">Every AI system has an owner.</code>"),
        "unchanged lines around a change are shown: {diff}"
    );
}
