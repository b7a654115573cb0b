//! What a compliance lead sees: the demo pipeline loaded into a real server, the dashboard opened
//! in headless Chromium, and the page read the way a person reads it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use aims_e2e::{ServerProcess, agent_once, browse, git, run_seed_pipeline, write_agent_config};

/// The text of the grid cell for (system, control), found in the rendered DOM.
fn cell(dom: &str, system: &str, control: &str) -> String {
    let row_start = dom
        .find(&format!("data-system=\"{system}\""))
        .unwrap_or_else(|| panic!("no row for {system}"));
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let at = row
        .find(&format!("data-control=\"{control}\""))
        .unwrap_or_else(|| panic!("no cell {control}"));
    let cell = &row[at..];
    let html = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
    // Issue 16: a cell is a link to its drill-down page; its text is the status.
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

#[test]
fn dashboard_shows_status_per_system_and_control() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let viewer = run_seed_pipeline(&server, tmp.path()).unwrap();

    // Without a token the dashboard asks for one.
    let dom = browse(&format!("{}/", server.url), None).unwrap();
    assert!(dom.contains("Sign in"), "{dom}");

    // With the viewer token (set as a cookie, then redirected to a clean URL).
    let shot = std::env::var("AIMS_SCREENSHOT_DIR")
        .ok()
        .map(|d| std::path::Path::new(&d).join("dashboard.png"));
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
    let across = browse(
        &format!("{}/?token={viewer}&next=/controls/A.6.2.4", server.url),
        None,
    )
    .unwrap();
    assert!(across.contains("data-system=\"credit-risk\""), "{across}");
    let sources = browse(
        &format!("{}/?token={viewer}&next=/sources", server.url),
        None,
    )
    .unwrap();
    assert!(
        sources.contains("id=\"sources\"") && sources.contains(">ok<"),
        "{sources}"
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
    let dom = browse(
        &format!(
            "{}/?token={viewer}&next=/systems/churn-predictor",
            server.url
        ),
        None,
    )
    .unwrap();
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
}
