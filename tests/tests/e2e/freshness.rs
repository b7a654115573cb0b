//! Issue 11: unchanged evidence the agent still sees stays fresh; evidence nobody looks at goes
//! stale and its source silent. The clock moves with libfaketime (Debian's `faketime`, installed
//! by the test command): the real binaries run 40 days in the future, nothing sleeps.
//!
//! A git repository holds a CODEOWNERS file (`process_control` → A.6.1.3, a 30-day window on
//! the observation time). Day 0: the agent ships it, A.6.1.3 is fresh. Day 40, agent stopped:
//! A.6.1.3 is stale, the source is `silent` in `GET /v1/sources` and the reason says so. Day 40,
//! agent runs: it confirms the unchanged file (one ledger entry, no content download), A.6.1.3
//! is fresh again, the source is `ok`, and an export of the ledger verifies offline with the
//! confirmation's listing checked against its signed digest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aims_e2e::{
    ServerProcess, agent_once, bin, create_token, future, get_json, get_text, git, http,
};
use serde_json::Value;

/// `aims-server serve` on `database` with the clock moved by `env` (see [`future`]).
fn server(dir: &Path, database: &str, env: &[(String, String)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServerProcess::start_with_env(dir, database, "127.0.0.1:0", &[], &env).unwrap()
}

/// The A.6.1.3 entry of `system`, once `pred` holds for it (bounded: the server re-assesses on
/// start-up and on ingest, both within seconds).
async fn control_when(
    url: &str,
    token: &str,
    system: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = get_json(&format!("{url}/v1/systems/{system}/controls"), token)
            .await
            .unwrap();
        let c = v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["control"] == "A.6.1.3")
            .cloned()
            .unwrap();
        if pred(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "A.6.1.3 never matched: {c:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn agent_config(dir: &Path, url: &str, token: &str, repo: &Path) -> PathBuf {
    let text = format!(
        "version: 1\nagent: {{ id: cluster-a }}\nserver: {{ url: \"{url}\", token: \"{token}\" }}\n\
         spool_dir: \"{spool}\"\nsources:\n  - {{ id: ml-repo, type: git, path: \"{repo}\", \
         system: fraud, interval_secs: 300 }}\n",
        spool = dir.join("spool").display(),
        repo = repo.display()
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_agent(cfg: &Path, env: &[(String, String)]) -> String {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = agent_once(cfg, &env, Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "agent failed:\n{}", run.stderr);
    run.stderr
}

#[tokio::test]
async fn unchanged_evidence_the_agent_still_sees_stays_fresh() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join(".github")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    std::fs::write(repo.join("CODEOWNERS"), "* @acme/ml-platform\n").unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "owners"]).unwrap();

    let sdir = work.path().join("server");
    std::fs::create_dir_all(&sdir).unwrap();
    let db = format!("sqlite://{}", sdir.join("aims.db").display());
    let (agent_token, viewer, auditor) = {
        let s = ServerProcess::start_with(&sdir, &db, "127.0.0.1:0", &[]).unwrap();
        let t = (
            s.token("agent", "cluster-a").unwrap(),
            s.token("viewer", "lead").unwrap(),
            create_token(&db, "auditor", "auditor").unwrap(),
        );
        drop(s);
        t
    };

    // Day 0: shipped and fresh.
    let day0 = server(&sdir, &db, &[]);
    let cfg = agent_config(work.path(), &day0.url, &agent_token, &repo);
    let out = run_agent(&cfg, &[]);
    assert!(out.contains("ml-repo: 1 listed, 1 fetched"), "{out}");
    let c = control_when(&day0.url, &viewer, "fraud", |c| c["status"] == "fresh").await;
    assert!(
        c["evidence"][0]["locator"]
            .as_str()
            .unwrap()
            .ends_with("#CODEOWNERS")
    );
    let size0 = get_json(&format!("{}/v1/systems", day0.url), &viewer)
        .await
        .unwrap();
    let evidence0 = size0["systems"][0]["evidence"].as_u64().unwrap();
    let sources = get_json(&format!("{}/v1/sources", day0.url), &viewer)
        .await
        .unwrap();
    assert_eq!(sources["sources"][0]["status"], "ok", "{sources:#}");
    assert_eq!(sources["sources"][0]["agent"], "cluster-a");
    assert_eq!(sources["sources"][0]["source"], "ml-repo");
    assert_eq!(sources["sources"][0]["type"], "git");
    drop(day0);

    // Day 40, the agent stopped: stale, and the source is silent — and a webhook hears it.
    let (receiver, rurl) = crate::notify::start_receiver().await;
    let hooks = work.path().join("notify.yaml");
    std::fs::write(
        &hooks,
        format!(
            "notifications:\n  - {{ type: webhook, url: \"{rurl}/silent\", secret: \"{}\", events: [source.silent] }}\n",
            crate::notify::SECRET
        ),
    )
    .unwrap();
    let env40 = future(40).unwrap();
    let env40: Vec<(&str, &str)> = env40
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let day40 = ServerProcess::start_with_env(
        &sdir,
        &db,
        "127.0.0.1:0",
        &["--config", hooks.to_str().unwrap()],
        &env40,
    )
    .unwrap();
    let c = control_when(&day40.url, &viewer, "fraud", |c| c["status"] == "stale").await;
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.contains("silent"), "{reason}");
    assert!(reason.contains("cluster-a/ml-repo"), "{reason}");
    let sources = get_json(&format!("{}/v1/sources", day40.url), &viewer)
        .await
        .unwrap();
    let s = &sources["sources"][0];
    assert_eq!(s["status"], "silent", "{sources:#}");
    assert!(
        s["last_poll_at"].is_string() && s["last_confirmed_at"].is_null(),
        "{s:#}"
    );
    let metrics = get_text(&format!("{}/metrics", day40.url), &viewer)
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "aims_source_status{agent=\"cluster-a\",source=\"ml-repo\",status=\"silent\"} 1"
        ),
        "{metrics}"
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let silent = loop {
        if let Some(g) = crate::notify::received(&receiver)
            .into_iter()
            .find(|g| g.event == "source.silent" && g.answered == 200)
        {
            break g;
        }
        assert!(Instant::now() < deadline, "no source.silent delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(silent.signed_ok);
    assert_eq!(
        silent.body["source"]["agent"], "cluster-a",
        "{}",
        silent.body
    );
    assert_eq!(silent.body["source"]["source"], "ml-repo");
    assert!(
        silent.body["source"]["links"]["dashboard"]
            .as_str()
            .is_some_and(|l| l.ends_with("/sources"))
    );

    // Day 40, the agent runs again: the unchanged file is confirmed, not re-downloaded.
    let cfg = agent_config(work.path(), &day40.url, &agent_token, &repo);
    let out = run_agent(&cfg, &future(40).unwrap());
    assert!(
        out.contains("ml-repo: 1 listed, 0 fetched, 1 unchanged, 0 gone, 0 shipped, 1 confirmed"),
        "{out}\n{}",
        day40.logs()
    );
    let c = control_when(&day40.url, &viewer, "fraud", |c| c["status"] == "fresh").await;
    assert!(!c["reason"].as_str().unwrap().contains("silent"), "{c:#}");
    let sources = get_json(&format!("{}/v1/sources", day40.url), &viewer)
        .await
        .unwrap();
    let s = &sources["sources"][0];
    assert_eq!(s["status"], "ok", "{sources:#}");
    assert!(s["last_confirmed_at"].is_string(), "{s:#}");
    // No new evidence record; one ledger entry (the confirmation).
    let systems = get_json(&format!("{}/v1/systems", day40.url), &viewer)
        .await
        .unwrap();
    assert_eq!(
        systems["systems"][0]["evidence"].as_u64().unwrap(),
        evidence0
    );
    let cp = get_text(&format!("{}/v1/log/checkpoint", day40.url), &viewer)
        .await
        .unwrap();
    let size: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size, evidence0 + 1, "{cp}");
    // A second run the same day confirms nothing more (at most once a day).
    let out = run_agent(&cfg, &future(40).unwrap());
    assert!(!out.contains("confirmed"), "{out}");

    // The auditor's export carries the listing; the verifier checks it offline.
    let bundle = http()
        .unwrap()
        .get(format!("{}/v1/export", day40.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert!(bundle.status().is_success());
    let bytes = bundle.bytes().await.unwrap();
    let path = work.path().join("bundle.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    let trust = work.path().join("trust.txt");
    let keys = Command::new(bin("aims-server").unwrap())
        .args(["keys", "show", "--database", &db])
        .current_dir(&sdir)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    std::fs::write(&trust, &keys.stdout).unwrap();
    let verify = Command::new(bin("aims-verify").unwrap())
        .arg(&path)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(
        report.contains("1 confirmations (1 listed artifacts in 1 listing files)"),
        "{report}"
    );
}

/// Bad input around sources: a source the agent cannot reach is `failing` with its error (no
/// credential in it), the other source still ships, nothing is reported removed; a confirmation
/// for a source the token may not write is refused with 403 and nothing is stored.
#[tokio::test]
async fn unreachable_sources_fail_alone_and_scoped_tokens_cannot_confirm_others() {
    let work = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&work.path().join("server")).unwrap();
    let agent = aims_e2e::create_token_with(
        &server.database,
        "agent",
        "cluster-a",
        &["--agent-id", "cluster-a", "--source", "ml-repo,broken"],
    )
    .unwrap();
    let viewer = server.token("viewer", "lead").unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    std::fs::write(repo.join("CODEOWNERS"), "* @acme\n").unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "owners"]).unwrap();
    let cfg = work.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nagent: {{ id: cluster-a }}\nserver: {{ url: \"{url}\", token: \"{agent}\" }}\n\
             spool_dir: \"{spool}\"\nsources:\n  - {{ id: ml-repo, type: git, path: \"{repo}\", system: fraud }}\n  \
             - {{ id: broken, type: git, url: \"http://bob:hunter2@127.0.0.1:9/nowhere.git\", system: fraud }}\n",
            url = server.url,
            spool = work.path().join("spool").display(),
            repo = repo.display()
        ),
    )
    .unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(
        run.code,
        Some(1),
        "a failed source fails the run: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ml-repo: 1 listed, 1 fetched"),
        "{}",
        run.stderr
    );
    let sources = get_json(&format!("{}/v1/sources", server.url), &viewer)
        .await
        .unwrap();
    let list = sources["sources"].as_array().unwrap();
    let broken = list.iter().find(|s| s["source"] == "broken").unwrap();
    assert_eq!(broken["status"], "failing", "{sources:#}");
    let err = broken["last_error"].as_str().unwrap();
    assert!(!err.contains("hunter2") && !err.is_empty(), "{err}");
    let ok = list.iter().find(|s| s["source"] == "ml-repo").unwrap();
    assert_eq!(ok["status"], "ok", "{sources:#}");
    // A second failing run removes nothing.
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert!(run.stderr.contains("0 gone"), "{}", run.stderr);
    let findings = get_json(&format!("{}/v1/findings?kind=gone", server.url), &viewer)
        .await
        .unwrap();
    assert_eq!(
        findings["findings"].as_array().unwrap().len(),
        0,
        "{findings:#}"
    );

    // The scoped token confirms its own sources only.
    let v2 = viewer.clone();
    let cp = move |url: String| {
        let v = v2.clone();
        async move {
            http()
                .unwrap()
                .get(url)
                .bearer_auth(&v)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let before = cp(format!("{}/v1/log/checkpoint", server.url)).await;
    let listing = aims_model::Listing::new(vec![]);
    for (agent_id, source) in [("cluster-a", "other-source"), ("cluster-b", "ml-repo")] {
        let c = aims_model::Confirmation::of(
            agent_id,
            aims_model::SourceRef {
                id: source.into(),
                source_type: aims_model::SourceType::Git,
            },
            aims_model::Timestamp::now(),
            &listing,
        )
        .unwrap();
        let resp = http()
            .unwrap()
            .post(format!("{}/v1/confirmations", server.url))
            .bearer_auth(&agent)
            .json(&serde_json::json!({"confirmation": c, "artifacts": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{agent_id}/{source}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("confirmation"),
            "{body}"
        );
    }
    // A confirmation whose digest does not match its listing: 400.
    let mut c = aims_model::Confirmation::of(
        "cluster-a",
        aims_model::SourceRef {
            id: "ml-repo".into(),
            source_type: aims_model::SourceType::Git,
        },
        aims_model::Timestamp::now(),
        &listing,
    )
    .unwrap();
    c.count = 1;
    let resp = http()
        .unwrap()
        .post(format!("{}/v1/confirmations", server.url))
        .bearer_auth(&agent)
        .json(&serde_json::json!({"confirmation": c, "artifacts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        cp(format!("{}/v1/log/checkpoint", server.url)).await,
        before,
        "nothing stored"
    );
}

/// The grid's totals count the cells it shows: a monitoring report also supports A.8.4, which
/// is not a column, and is not counted.
#[tokio::test]
async fn grid_totals_count_what_the_grid_shows() {
    let work = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&work.path().join("server")).unwrap();
    let agent = server.token("agent", "cluster-a").unwrap();
    let viewer = server.token("viewer", "lead").unwrap();
    let dir = work.path().join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    std::fs::write(
        dir.join("monitoring.json"),
        format!(
            r#"{{"kind":"monitoring_report","model":{{"name":"fraud","version":"3"}},"metrics":[{{"name":"psi","value":0.05,"threshold":0.2,"direction":"max"}}],"generated_at":"{now}"}}"#
        ),
    )
    .unwrap();
    let cfg = work.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nagent: {{ id: cluster-a }}\nserver: {{ url: \"{}\", token: \"{agent}\" }}\n\
             spool_dir: \"{}\"\nsources:\n  - {{ id: reports, type: dir, path: \"{}\", system: fraud }}\n",
            server.url,
            work.path().join("spool").display(),
            dir.display()
        ),
    )
    .unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let controls = get_json(
        &format!("{}/v1/systems/fraud/controls", server.url),
        &viewer,
    )
    .await
    .unwrap();
    assert!(
        controls["controls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["control"] == "A.8.4" && c["status"] == "fresh"),
        "A.8.4 is assessed: {controls:#}"
    );
    let html = get_text(&format!("{}/", server.url), &viewer)
        .await
        .unwrap();
    let row_at = html.find("data-system=\"fraud\"").unwrap();
    let row = &html[row_at..row_at + html[row_at..].find("</tr>").unwrap()];
    let shown_fresh = row.matches("class=\"st fresh\"").count();
    let cells: Vec<&str> = row
        .split("<td>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    assert_eq!(cells.len(), 4, "{row}");
    assert_eq!(
        cells[0],
        shown_fresh.to_string(),
        "fresh total = fresh cells: {row}"
    );
    assert_eq!(shown_fresh, 1, "A.6.2.6 only: {row}");
    // Issue 14: the catalog names, for each of the 38 controls, the kinds that reach it and its
    // crosswalks.
    let cat = get_json(&format!("{}/v1/catalog", server.url), &viewer)
        .await
        .unwrap();
    let controls = cat["controls"].as_array().unwrap();
    assert_eq!(controls.len(), 38, "{cat:#}");
    for c in controls {
        assert!(
            !c["kinds"].as_array().unwrap().is_empty(),
            "unreachable: {c:#}"
        );
    }
    let a73 = controls.iter().find(|c| c["id"] == "A.7.3").unwrap();
    assert!(
        a73["crosswalks"]["eu_ai_act"]
            .as_array()
            .unwrap()
            .contains(&Value::from("Art. 10"))
    );
    assert!(
        !a73["crosswalks"]["nist_ai_rmf"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Issue 13: status at any past instant, exact history and the period report, with the clock
/// moved 100 days by libfaketime (no sleeping): a validation report evaluated on day 0 keeps
/// A.6.2.4 fresh for 90 days, then stale; the history says so to the millisecond.
#[tokio::test]
async fn status_at_an_instant_history_and_period_report() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    let day0 = chrono::Utc::now();
    let evaluated = day0.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    std::fs::write(
        repo.join("validation.json"),
        format!(
            r#"{{"kind":"validation_report","model":{{"name":"fraud","version":"3"}},"metrics":[{{"name":"auc","value":0.93,"threshold":0.85,"direction":"min"}}],"decision":"pass","evaluated_at":"{evaluated}"}}"#
        ),
    )
    .unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "validation"]).unwrap();
    let sdir = work.path().join("server");
    std::fs::create_dir_all(&sdir).unwrap();
    let db = format!("sqlite://{}", sdir.join("aims.db").display());
    let (agent_token, viewer, auditor) = {
        let s = ServerProcess::start_with(&sdir, &db, "127.0.0.1:0", &[]).unwrap();
        (
            s.token("agent", "cluster-a").unwrap(),
            s.token("viewer", "lead").unwrap(),
            s.token("auditor", "auditor").unwrap(),
        )
    };
    let now0 = server(&sdir, &db, &[]);
    let cfg = agent_config(work.path(), &now0.url, &agent_token, &repo);
    run_agent(&cfg, &[]);
    drop(now0);

    let later = server(&sdir, &db, &future(100).unwrap());
    let fmt = |d: chrono::DateTime<chrono::Utc>| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let client = http().unwrap();
    let status_at = |days: i64| {
        let url = format!(
            "{}/v1/systems/fraud/controls?at={}",
            later.url,
            fmt(day0 + chrono::Duration::days(days))
        );
        let client = client.clone();
        let viewer = viewer.clone();
        async move {
            let v: Value = client
                .get(url)
                .bearer_auth(&viewer)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["controls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["control"] == "A.6.2.4")
                .unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(status_at(10).await, "fresh");
    assert_eq!(status_at(89).await, "fresh");
    assert_eq!(status_at(91).await, "stale");
    // Before anything was received: unknown then (404); in the future: 400 naming `at`.
    let r = client
        .get(format!(
            "{}/v1/systems/fraud/controls?at={}",
            later.url,
            fmt(day0 - chrono::Duration::days(1))
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!(
            "{}/v1/systems/fraud/controls?at={}",
            later.url,
            fmt(day0 + chrono::Duration::days(400))
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at:"));

    let from = fmt(day0 - chrono::Duration::days(1));
    let to = fmt(day0 + chrono::Duration::days(99));
    let h = get_json(
        &format!("{}/v1/systems/fraud/history?from={from}&to={to}", later.url),
        &viewer,
    )
    .await
    .unwrap();
    let c = h["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.6.2.4")
        .unwrap();
    let statuses: Vec<&str> = c["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["missing", "fresh", "stale"], "{c:#}");
    let ivs = c["intervals"].as_array().unwrap();
    assert_eq!(ivs[0]["from"], Value::String(from.clone()));
    assert_eq!(ivs[2]["to"], Value::String(to.clone()));
    for w in ivs.windows(2) {
        assert_eq!(w[0]["to"], w[1]["from"], "contiguous");
    }
    let ratio = c["fresh_ratio"].as_f64().unwrap();
    assert!(ratio > 0.85 && ratio < 0.95, "{ratio}");
    assert!(h["catalog_version"].as_str().is_some());

    let report = get_json(
        &format!("{}/v1/report?from={from}&to={to}", later.url),
        &viewer,
    )
    .await
    .unwrap();
    let api_report = report.clone();
    let rc = report["systems"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.6.2.4")
        .unwrap();
    assert_eq!(rc["worst_status"], "missing");
    assert_eq!(rc["gaps"].as_array().unwrap().len(), 2);
    let csv = client
        .get(format!(
            "{}/v1/report?from={from}&to={to}&format=csv",
            later.url
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("system,control,fresh_ratio,worst_status,gaps,gap_details\n"),
        "{csv}"
    );
    assert!(csv.contains("\nfraud,A.6.2.4,"), "{csv}");
    for bad in [
        format!("from={to}&to={from}"),
        "from=yesterday".to_owned(),
        format!("from=2015-01-01T00:00:00Z&to={to}"),
    ] {
        let r = client
            .get(format!("{}/v1/report?{bad}", later.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }

    // The same report from the command line, as CSV (the clock 100 days ahead, like the server).
    let out = Command::new(bin("aims-server").unwrap())
        .args([
            "report",
            "--from",
            &from,
            "--to",
            &to,
            "--format",
            "csv",
            "--database",
            &db,
        ])
        .envs(
            future(100)
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        csv,
        "CLI and API agree"
    );
    let cli_bundle = work.path().join("cli-period.tar.gz");
    let out = Command::new(bin("aims-server").unwrap())
        .args([
            "export",
            "--from",
            &from,
            "--to",
            &to,
            "--database",
            &db,
            "--out",
        ])
        .arg(&cli_bundle)
        .envs(
            future(100)
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // OSCAL for the period: its result spans the period and states the status at its end.
    let ar: Value = client
        .get(format!("{}/v1/export/oscal?from={from}&to={to}", later.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result = &ar["assessment-results"]["results"][0];
    assert_eq!(result["start"], Value::String(from.clone()), "{result:#}");
    assert_eq!(result["end"], Value::String(to.clone()));

    // The audit-period export carries the report; aims-verify recomputes it, and a forged
    // figure fails naming the system and control.
    let bundle = client
        .get(format!("{}/v1/export?from={from}&to={to}", later.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert!(bundle.status().is_success(), "{}", bundle.status());
    let bytes = bundle.bytes().await.unwrap();
    let dir = work.path().join("period");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bundle.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    let keys = Command::new(bin("aims-server").unwrap())
        .args(["keys", "show", "--database", &db])
        .output()
        .unwrap();
    let trust = dir.join("trust.txt");
    std::fs::write(&trust, &keys.stdout).unwrap();
    let verify = |p: &Path| {
        let out = Command::new(bin("aims-verify").unwrap())
            .arg(p)
            .arg("--trust")
            .arg(&trust)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, report) = verify(&path);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("the period report"), "{report}");
    let (code, report) = verify(&cli_bundle);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("the period report"), "{report}");
    // Forge the fresh ratio of A.6.2.4, reseal SHA256SUMS, repack.
    let x = dir.join("x");
    std::fs::create_dir_all(&x).unwrap();
    assert!(
        Command::new("tar")
            .arg("-xzf")
            .arg(&path)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap()
            .success()
    );
    let period = std::fs::read_to_string(x.join("report/period.json")).unwrap();
    let mut v: Value = serde_json::from_str(&period).unwrap();
    // The API serves the report from the materialised timelines, the export computes it by
    // replaying the bundled entries: the same figures.
    assert_eq!(v["systems"], api_report["systems"], "API and bundle agree");
    for c in v["systems"][0]["controls"].as_array_mut().unwrap() {
        if c["control"] == "A.6.2.4" {
            c["fresh_ratio"] = serde_json::json!(1.0);
            c["gaps"] = serde_json::json!([]);
        }
    }
    std::fs::write(
        x.join("report/period.json"),
        serde_json::to_vec_pretty(&v).unwrap(),
    )
    .unwrap();
    let ok = Command::new("sh")
        .arg("-c")
        .arg("find . -type f ! -name SHA256SUMS | sed 's|^\\./||' | sort | xargs sha256sum > ../SHA256SUMS.new && mv ../SHA256SUMS.new SHA256SUMS && tar -czf ../forged.tar.gz *")
        .current_dir(&x)
        .status()
        .unwrap();
    assert!(ok.success());
    let (code, report) = verify(&dir.join("forged.tar.gz"));
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("report/period.json") && report.contains("control A.6.2.4"),
        "{report}"
    );
}

/// Issue 13, materialised history: one server keeps running while its clock jumps 100 days
/// (libfaketime reading a timestamp file, no restart, no sleeping). The history it materialised
/// on the first read advances past the window's expiry by itself, and a new report the agent
/// ships advances it again; `/metrics` shows the system's timeline held in memory.
#[tokio::test]
async fn a_running_server_advances_its_materialised_history() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    let day0 = chrono::Utc::now();
    let report_at = |d: chrono::DateTime<chrono::Utc>| {
        format!(
            r#"{{"kind":"validation_report","model":{{"name":"fraud","version":"3"}},"metrics":[{{"name":"auc","value":0.93,"threshold":0.85,"direction":"min"}}],"decision":"pass","evaluated_at":"{}"}}"#,
            d.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    std::fs::write(repo.join("validation.json"), report_at(day0)).unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "validation"]).unwrap();
    let sdir = work.path().join("server");
    std::fs::create_dir_all(&sdir).unwrap();
    let db = format!("sqlite://{}", sdir.join("aims.db").display());
    let agent_token = create_token(&db, "agent", "cluster-a").unwrap();
    let viewer = create_token(&db, "viewer", "lead").unwrap();

    // The server's clock reads its offset from a file, on every call.
    let clock = work.path().join("faketime");
    std::fs::write(&clock, "+0d\n").unwrap();
    let mut env: Vec<(String, String)> = future(0)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k != "FAKETIME")
        .collect();
    env.push((
        "FAKETIME_TIMESTAMP_FILE".into(),
        clock.display().to_string(),
    ));
    env.push(("FAKETIME_NO_CACHE".into(), "1".into()));
    let s = server(&sdir, &db, &env);
    let cfg = agent_config(work.path(), &s.url, &agent_token, &repo);
    run_agent(&cfg, &[]);

    let fmt = |d: chrono::DateTime<chrono::Utc>| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let from = fmt(day0 - chrono::Duration::days(1));
    let statuses = |h: &Value| -> Vec<String> {
        h["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["control"] == "A.6.2.4")
            .unwrap()["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].as_str().unwrap().to_owned())
            .collect()
    };
    let history = || {
        let url = format!("{}/v1/systems/fraud/history?from={from}", s.url);
        let viewer = viewer.clone();
        async move { get_json(&url, &viewer).await.unwrap() }
    };
    // Day 0: missing until the receipt, fresh since (the agent's ingest is assessed within
    // seconds; wait for it boundedly).
    control_when(&s.url, &viewer, "fraud", |_| true).await;
    let h = history().await;
    assert_eq!(statuses(&h), ["missing", "fresh"], "{h:#}");
    let metrics = get_text(&format!("{}/metrics", s.url), &viewer)
        .await
        .unwrap();
    assert!(
        metrics.contains("\naims_timeline_systems 1\n"),
        "the history is held in memory:\n{metrics}"
    );

    // Day 100, same process: the timeline passed its next change point (the 90-day window
    // closing) and advances by itself.
    std::fs::write(&clock, "+100d\n").unwrap();
    let h = history().await;
    assert_eq!(statuses(&h), ["missing", "fresh", "stale"], "{h:#}");
    let stale = &h["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.6.2.4")
        .unwrap()["intervals"][2];
    // The report's date has whole seconds; stale strictly after 90 days from it.
    let evaluated =
        chrono::DateTime::parse_from_rfc3339(&day0.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap()
            .with_timezone(&chrono::Utc);
    let closes = evaluated + chrono::Duration::days(90) + chrono::Duration::milliseconds(1);
    assert_eq!(
        stale["from"],
        Value::String(fmt(closes)),
        "stale from the window's close: {stale:#}"
    );

    // A new report on day 100 (the agent's clock moved too): fresh again.
    std::fs::write(
        repo.join("validation.json"),
        report_at(day0 + chrono::Duration::days(99)),
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "new validation"]).unwrap();
    run_agent(&cfg, &future(100).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = history().await;
        if statuses(&h) == ["missing", "fresh", "stale", "fresh"] {
            break;
        }
        assert!(Instant::now() < deadline, "never fresh again: {h:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
