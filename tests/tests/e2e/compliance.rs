//! Compliance records end to end (DESIGN §12.3): the statement of applicability written over
//! the API and by the CLI, seen in the status, the findings, the dashboard and the history, and
//! checked offline by `aims-verify` in an export; agents cannot forge one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Command;

use aims_e2e::{ServerProcess, bin, future, get_json, get_text, http, run_seed_pipeline};
use serde_json::{Value, json};

/// Sends `body` as JSON with `method`; the status and the answer (JSON, or the text itself).
async fn send(method: reqwest::Method, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = http()
        .unwrap()
        .request(method, url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn put(url: &str, token: &str, body: &Value) -> (u16, Value) {
    send(reqwest::Method::PUT, url, token, body).await
}

async fn post(url: &str, token: &str, body: &Value) -> (u16, Value) {
    send(reqwest::Method::POST, url, token, body).await
}

/// `aims-server ARGS --database DATABASE`.
fn cli(database: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin("aims-server").unwrap())
        .args(args)
        .args(["--database", database])
        .output()
        .unwrap()
}

/// The size of the newest checkpoint (the second line of the signed note).
pub(crate) async fn tree_size(base: &str, token: &str) -> u64 {
    let note = get_text(&format!("{base}/v1/log/checkpoint"), token)
        .await
        .unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

pub(crate) fn control<'a>(controls: &'a Value, id: &str) -> &'a Value {
    controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == id)
        .unwrap_or_else(|| panic!("no control {id} in {controls}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_of_applicability_excludes_a_control_everywhere_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let viewer = run_seed_pipeline(&server, tmp.path()).unwrap();
    let admin = server.token("admin", "compliance-admin").unwrap();
    let agent = server.token("agent", "forger").unwrap();
    let base = &server.url;
    let system = "credit-risk";

    // A control the pipeline left drifted or missing, with findings about it.
    let before = get_json(&format!("{base}/v1/systems/{system}/controls"), &viewer)
        .await
        .unwrap();
    let target = before["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "drifted" || c["status"] == "missing")
        .unwrap_or_else(|| panic!("no drifted or missing control in {before}"))["control"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{base}/v1/systems/{system}/applicability");

    // Refusals: no justification, an unknown control, a viewer's token.
    let (s, b) = put(
        &url,
        &admin,
        &json!({"controls": {&target: {"applicable": false}}}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("justification"), "{b}");
    let (s, b) = put(
        &url,
        &admin,
        &json!({"controls": {"A.99.1": {"applicable": false, "justification": "x"}}}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = put(
        &url,
        &viewer,
        &json!({"controls": {&target: {"applicable": false, "justification": "x"}}}),
    )
    .await;
    assert_eq!(s, 403);
    let size_before = tree_size(base, &viewer).await;

    // The statement: one ledger entry, who and why kept.
    let why = "Scoring model is retired from production; control covered by the archive plan.";
    let (s, b) = put(
        &url,
        &admin,
        &json!({"controls": {&target: {"applicable": false, "justification": why}}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["written"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["controls"][&target]["by"], "compliance-admin");
    assert_eq!(b["controls"][&target]["justification"], why);
    // The same statement again writes nothing.
    let (s, b) = put(
        &url,
        &admin,
        &json!({"controls": {&target: {"applicable": false, "justification": why}}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get("written").is_none(), "{b}");
    assert_eq!(tree_size(base, &viewer).await, size_before + 1);

    // Status, reason, counts and findings.
    let now = get_json(&format!("{base}/v1/systems/{system}/controls"), &viewer)
        .await
        .unwrap();
    let c = control(&now, &target);
    assert_eq!(c["status"], "excluded", "{c}");
    // Every control carries its computed maturity and why.
    for v in now["controls"].as_array().unwrap() {
        let m = v["maturity"]
            .as_u64()
            .unwrap_or_else(|| panic!("no maturity: {v}"));
        assert!(m <= 5, "{v}");
        assert!(!v["maturity_reason"].as_str().unwrap().is_empty(), "{v}");
        if v["status"] == "fresh" {
            assert!(m >= 3, "{v}");
        }
        if v["status"] == "missing" || v["status"] == "excluded" {
            assert_eq!(m, 0, "{v}");
        }
    }
    assert!(c["reason"].as_str().unwrap().contains(why), "{c}");
    let systems = get_json(&format!("{base}/v1/systems"), &viewer)
        .await
        .unwrap();
    let sys = systems["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == system)
        .unwrap();
    assert_eq!(sys["controls"]["excluded"], 1, "{sys}");
    let findings = get_json(&format!("{base}/v1/findings?system={system}"), &viewer)
        .await
        .unwrap();
    for f in findings["findings"].as_array().unwrap() {
        assert!(
            !f["controls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == &json!(target)),
            "a finding still names the excluded control: {f}"
        );
    }
    let got = get_json(&url, &viewer).await.unwrap();
    assert_eq!(got["controls"][&target]["applicable"], false);
    let bad = http()
        .unwrap()
        .get(format!("{base}/v1/systems/%C2%84/applicability"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status().as_u16(),
        400,
        "a system id that is not an identifier"
    );

    // The dashboard says so, with the justification.
    let page = get_text(&format!("{base}/systems/{system}"), &viewer)
        .await
        .unwrap();
    assert!(page.contains("excluded"), "{page}");
    assert!(page.contains("retired from production"), "{page}");

    // An agent cannot forge a statement.
    let forged = json!({"records": [{
        "v": 1, "agent": "forger", "source": {"id": "aims-server", "type": "manual"},
        "locator": format!("aims:applicability/{system}/A.6.2.2"), "version": "1",
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "size": 0, "observed_at": "2026-01-01T00:00:00Z", "system": system,
        "kind": "applicability_statement",
        "metadata": {"control": "A.6.2.2", "applicable": false, "justification": "forged"}
    }]});
    let (s, _) = post(&format!("{base}/v1/evidence"), &agent, &forged).await;
    assert_eq!(s, 400);

    // A whole objective at once (a group default): every A.9 control excluded by one request;
    // an objective the catalog lacks is refused.
    let (s, b) = put(
        &url,
        &admin,
        &json!({"groups": {"A.9": {"applicable": false, "justification": "No users outside the data-science team."}}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let a9: Vec<&String> = b["controls"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|c| c.starts_with("A.9."))
        .collect();
    assert!(a9.len() >= 3, "{b}");
    let (s, b) = put(
        &url,
        &admin,
        &json!({"groups": {"A.99": {"applicable": false, "justification": "x"}}}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("groups.A.99"), "{b}");
    // …and back: the objective applies again.
    let (s, b) = put(
        &url,
        &admin,
        &json!({"groups": {"A.9": {"applicable": true}}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // The same for scripts: `--group` decides every control of an objective.
    let o = cli(
        &server.database,
        &[
            "applicability",
            "set",
            "--system",
            system,
            "--group",
            "A.9",
            "--not-applicable",
            "--justification",
            "No users outside the data-science team.",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        shown["controls"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(c, d)| c.starts_with("A.9.") && d["applicable"] == false)
            .count()
            >= 3,
        "{shown}"
    );
    let (s, _) = put(
        &url,
        &admin,
        &json!({"groups": {"A.9": {"applicable": true}}}),
    )
    .await;
    assert_eq!(s, 200);

    // The CLI, for scripts: another control excluded, seen at once by the API's ledger reads.
    let o = cli(
        &server.database,
        &[
            "applicability",
            "set",
            "--system",
            system,
            "--control",
            "A.10.3",
            "--not-applicable",
            "--justification",
            "in-house model, no third-party suppliers",
            "--by",
            "ciso",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = get_json(&url, &viewer).await.unwrap();
    assert_eq!(got["controls"]["A.10.3"]["by"], "ciso", "{got}");
    let o = cli(
        &server.database,
        &["applicability", "show", "--system", system],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        shown["controls"], got["controls"],
        "the CLI shows what the API does"
    );
    let o = cli(
        &server.database,
        &[
            "applicability",
            "set",
            "--system",
            system,
            "--control",
            "A.10.3",
            "--not-applicable",
        ],
    );
    assert!(!o.status.success(), "an exclusion without a justification");

    // As of now (computed from the ledger), both are excluded.
    let at = get_json(
        &format!(
            "{base}/v1/systems/{system}/controls?at={}",
            aims_model::Timestamp::now()
        ),
        &viewer,
    )
    .await
    .unwrap();
    assert_eq!(control(&at, "A.10.3")["status"], "excluded", "{at}");
    assert_eq!(control(&at, &target)["status"], "excluded", "{at}");

    // Accepted risk: a finding of another system acknowledged until a date.
    let findings = get_json(
        &format!("{base}/v1/findings?system=churn-predictor"),
        &viewer,
    )
    .await
    .unwrap();
    let f = findings["findings"][0].clone();
    let fid = f["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no finding in {findings}"));
    let ack_url = format!("{base}/v1/findings/{fid}/acknowledge");
    let in_days = |d: i64| {
        aims_model::Timestamp::from_datetime(chrono::Utc::now() + chrono::Duration::days(d))
            .to_string()
    };
    let reason = "Vendor dataset refresh lands next sprint; accepted by the risk board.";
    for (body, want) in [
        (json!({"reason": reason, "expires_at": in_days(-1)}), 400),
        (json!({"reason": reason, "expires_at": in_days(400)}), 400),
        (json!({"reason": " ", "expires_at": in_days(30)}), 400),
    ] {
        let (s, b) = post(&ack_url, &admin, &body).await;
        assert_eq!(s, want, "{b}");
    }
    let ok = json!({"reason": reason, "expires_at": in_days(30)});
    assert_eq!(post(&ack_url, &viewer, &ok).await.0, 403);
    let (s, _) = post(
        &format!("{base}/v1/findings/0123456789abcdef0123456789abcdef/acknowledge"),
        &admin,
        &ok,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = post(&ack_url, &admin, &ok).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["acknowledged"]["by"], "compliance-admin", "{b}");
    assert_eq!(b["acknowledged"]["reason"], reason, "{b}");
    let findings = get_json(
        &format!("{base}/v1/findings?system=churn-predictor"),
        &viewer,
    )
    .await
    .unwrap();
    let listed = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == fid)
        .unwrap();
    assert!(listed["acknowledged"].is_object(), "{listed}");
    let c0 = f["controls"][0].as_str().unwrap();
    let now = get_json(
        &format!("{base}/v1/systems/churn-predictor/controls"),
        &viewer,
    )
    .await
    .unwrap();
    let c = control(&now, c0);
    assert!(
        c["reason"].as_str().unwrap().contains("Accepted risk"),
        "{c}"
    );

    // The auditor's bundle carries the statements; aims-verify recomputes the exclusions.
    let auditor = server.token("auditor", "auditor").unwrap();
    let bytes = http()
        .unwrap()
        .get(format!("{base}/v1/export"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let bundle = tmp.path().join("bundle.tar.gz");
    std::fs::write(&bundle, &bytes).unwrap();
    let trust = tmp.path().join("trust.policy");
    std::fs::write(&trust, crate::audit::trust_policy(&server.database)).unwrap();
    let (code, out) = crate::audit::verify(&bundle, &trust, &[]);
    assert_eq!(code, Some(0), "{out}");

    // The acceptance ends by itself: the same server 31 days later (libfaketime; the
    // acknowledgement was for 30) lists the finding without it, and the control's reason no
    // longer says "Accepted risk".
    let database = server.database.clone();
    let mut server = server;
    server.stop();
    let env = future(31).unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let later = ServerProcess::start_with_env(
        &tmp.path().join("server-later"),
        &database,
        "127.0.0.1:0",
        &[],
        &env,
    )
    .unwrap();
    // The restarted server re-assesses every system on its first periodic pass (within
    // seconds of start-up); read until that pass has run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let again = loop {
        let findings = get_json(
            &format!("{}/v1/findings?system=churn-predictor", later.url),
            &viewer,
        )
        .await
        .unwrap();
        let f = findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == fid)
            .cloned()
            .unwrap_or_else(|| panic!("finding {fid} gone after the expiry: {findings}"));
        if f.get("acknowledged").is_none() || std::time::Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(again.get("acknowledged").is_none(), "{again}");
    let controls = get_json(
        &format!("{}/v1/systems/churn-predictor/controls", later.url),
        &viewer,
    )
    .await
    .unwrap();
    let c = control(&controls, c0);
    assert!(
        !c["reason"].as_str().unwrap().contains("Accepted risk"),
        "{c}"
    );
    assert_ne!(c["status"], "fresh", "{c}");
}
