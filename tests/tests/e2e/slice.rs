//! Issue 2's end-to-end slice: a real server on SQLite, a real agent, a real git repository.
//! The agent ships evidence, the API shows per-control status, an edit after validation is
//! flagged `changed`, an unchanged re-run ships nothing, and a removed file yields `gone`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::time::Duration;

use aims_e2e::{ServerProcess, agent_once, get_json, git, http, write_agent_config};
use chrono::{Duration as CDuration, Utc};
use serde_json::Value;

fn days_ago(n: i64) -> String {
    (Utc::now() - CDuration::days(n))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn write(repo: &Path, rel: &str, text: &str) {
    let p = repo.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn dataset_card(rows: u32) -> String {
    format!(
        "---\nlicense: cc-by-4.0\ntask_categories: [tabular-classification]\nsource_datasets: [original]\n\
         annotations_creators: [expert-generated]\nsize_categories: [10K<n<100K]\ndataset_info:\n  splits:\n  \
         - name: train\n    num_examples: {rows}\n---\n# Card transactions\n\nLabelled card transactions.\n"
    )
}

fn build_repo(repo: &Path) {
    std::fs::create_dir_all(repo).unwrap();
    git(repo, &["init", "-q", "-b", "main"]).unwrap();
    write(repo, "systems/fraud/data/README.md", &dataset_card(50_000));
    write(
        repo,
        "systems/fraud/model/README.md",
        "---\nlicense: apache-2.0\nlibrary_name: sklearn\npipeline_tag: tabular-classification\nbase_model: none\n---\n# fraud model\n",
    );
    write(
        repo,
        "systems/fraud/reports/validation.json",
        &format!(
            r#"{{"kind":"validation_report","model":{{"name":"fraud","version":"3"}},
            "dataset":{{"name":"card-transactions","revision":"2026-10-01","sha256":"{}"}},
            "metrics":[{{"name":"auc","value":0.93,"threshold":0.85,"direction":"min"}}],
            "decision":"pass","evaluated_at":"{}","evaluator":"ci/run/1"}}"#,
            "a".repeat(64),
            days_ago(3)
        ),
    );
    write(
        repo,
        "systems/fraud/approvals/production.yaml",
        &format!(
            "kind: deployment_approval\nmodel: {{ name: fraud, version: \"3\" }}\nenvironment: production\n\
             approved_by: [risk-officer@example.com]\napproved_at: {}\n",
            days_ago(2)
        ),
    );
    write(
        repo,
        "systems/fraud/reports/monitoring.json",
        &format!(
            r#"{{"kind":"monitoring_report","model":{{"name":"fraud","version":"3"}},
            "window":{{"start":"{}","end":"{}"}},
            "metrics":[{{"name":"psi","value":0.05,"threshold":0.2,"direction":"max"}}],"generated_at":"{}"}}"#,
            days_ago(2),
            days_ago(1),
            days_ago(1)
        ),
    );
    write(repo, "systems/fraud/notes/scratch.txt", "not evidence\n");
    git(repo, &["add", "-A"]).unwrap();
    git(repo, &["commit", "-q", "-m", "first"]).unwrap();
}

fn status_of(controls: &Value, id: &str) -> String {
    controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == id)
        .unwrap_or_else(|| panic!("control {id} missing"))["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_to_dashboard_slice() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let agent_token = server.token("agent", "e2e-agent").unwrap();
    let viewer = server.token("viewer", "lead").unwrap();
    let repo = tmp.path().join("repo");
    build_repo(&repo);
    let cfg = write_agent_config(tmp.path(), &server.url, &agent_token, &repo).unwrap();

    // First run: everything is new.
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(
        run.code,
        Some(0),
        "agent failed: {}\n{}",
        run.stderr,
        server.logs()
    );

    let systems = get_json(&format!("{}/v1/systems", server.url), &viewer)
        .await
        .unwrap();
    let sys = &systems["systems"][0];
    assert_eq!(sys["id"], "fraud");
    let controls = get_json(
        &format!("{}/v1/systems/fraud/controls", server.url),
        &viewer,
    )
    .await
    .unwrap();
    assert_eq!(status_of(&controls, "A.6.2.4"), "fresh", "{controls:#}");
    assert_eq!(status_of(&controls, "A.6.2.5"), "fresh", "{controls:#}");
    assert_eq!(status_of(&controls, "A.6.2.6"), "fresh", "{controls:#}");
    // Each control lists the evidence behind it with its hash and locator.
    let a624 = controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.6.2.4")
        .unwrap();
    let ev = &a624["evidence"][0];
    assert_eq!(ev["kind"], "validation_report");
    assert!(
        ev["locator"]
            .as_str()
            .unwrap()
            .ends_with("systems/fraud/reports/validation.json")
    );
    assert_eq!(ev["sha256"].as_str().unwrap().len(), 64);
    // The file that matches no rule is kept as unclassified evidence, not dropped.
    let history = get_json(&format!("{}/v1/findings?system=fraud", server.url), &viewer)
        .await
        .unwrap();
    let _ = history;
    let findings = get_json(&format!("{}/v1/findings?system=fraud", server.url), &viewer)
        .await
        .unwrap();
    assert!(
        !findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "changed"),
        "no change yet: {findings:#}"
    );

    // The dataset card changes after the validation and the approval.
    write(&repo, "systems/fraud/data/README.md", &dataset_card(75_000));
    git(&repo, &["commit", "-qam", "more rows"]).unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "agent failed: {}", run.stderr);
    let findings = get_json(&format!("{}/v1/findings?system=fraud", server.url), &viewer)
        .await
        .unwrap();
    let changed: Vec<&Value> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "changed")
        .collect();
    let controls = get_json(
        &format!("{}/v1/systems/fraud/controls", server.url),
        &viewer,
    )
    .await
    .unwrap();
    assert!(
        !changed.is_empty(),
        "expected a changed finding: {findings:#}\n{controls:#}"
    );
    assert!(changed[0]["message"].as_str().unwrap().len() > 20);
    assert_eq!(changed[0]["system"], "fraud");

    // Nothing changed: the third run ships nothing and the ledger does not grow.
    let before = tree_size(&server.url, &viewer).await;
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "agent failed: {}", run.stderr);
    assert_eq!(
        tree_size(&server.url, &viewer).await,
        before,
        "an unchanged source must ship nothing"
    );

    // A removed file becomes a `gone` record and finding; its evidence stays.
    git(
        &repo,
        &["rm", "-q", "systems/fraud/reports/monitoring.json"],
    )
    .unwrap();
    git(&repo, &["commit", "-qm", "drop monitoring"]).unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "agent failed: {}", run.stderr);
    assert_eq!(tree_size(&server.url, &viewer).await, before + 1);
    let findings = get_json(
        &format!("{}/v1/findings?system=fraud&kind=gone", server.url),
        &viewer,
    )
    .await
    .unwrap();
    assert_eq!(
        findings["findings"].as_array().unwrap().len(),
        1,
        "{findings:#}"
    );
}

async fn tree_size(url: &str, token: &str) -> u64 {
    let r = http()
        .unwrap()
        .get(format!("{url}/v1/log/checkpoint"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    text.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("bad checkpoint: {text}"))
}
