//! Bad input gets the right 4xx with a JSON error body, nothing is stored, and the server keeps
//! serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use aims_e2e::{ServerProcess, create_token_with, http};
use serde_json::{Value, json};

fn record() -> Value {
    json!({
        "v": 1, "agent": "a1", "source": {"id": "repo", "type": "git"},
        "locator": "git+file:///repo#systems/x/model/README.md", "version": "abc123",
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "size": 0, "observed_at": "2026-01-01T00:00:00Z", "system": "x", "kind": "model_card"
    })
}

async fn post(url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = http()
        .unwrap()
        .post(format!("{url}/v1/evidence"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text}"));
    (status, v)
}

fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(tmp.path()).unwrap();
    let agent = server.token("agent", "a1").unwrap();
    let viewer = server.token("viewer", "v1").unwrap();
    let url = server.url.clone();

    // Malformed and truncated JSON.
    let (s, v) = post(&url, Some(&agent), b"{\"records\": [".to_vec()).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("JSON"),
        "{v}"
    );
    let (s, _) = post(&url, Some(&agent), b"not json".to_vec()).await;
    assert_eq!(s, 400);

    // Unknown field, in the record and at the top.
    let mut r = record();
    r["surprise"] = json!(true);
    let (s, v) = post(
        &url,
        Some(&agent),
        serde_json::to_vec(&json!({"records": [r]})).unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("records[0]"),
        "names the record: {v}"
    );
    let (s, _) = post(
        &url,
        Some(&agent),
        serde_json::to_vec(&json!({"records": [], "x": 1})).unwrap(),
    )
    .await;
    assert_eq!(s, 400);

    // Wrong digest length, wrong type, control characters, future time, unknown kind.
    for (field, value) in [
        ("sha256", json!("abc")),
        (
            "sha256",
            json!("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
        ),
        ("size", json!("big")),
        ("locator", json!("a\u{0007}b")),
        ("observed_at", json!("2999-01-01T00:00:00Z")),
        ("observed_at", json!("yesterday")),
        ("kind", json!("no_such_kind")),
    ] {
        let mut r = record();
        r[field] = value.clone();
        let (s, v) = post(
            &url,
            Some(&agent),
            serde_json::to_vec(&json!({"records": [r]})).unwrap(),
        )
        .await;
        assert_eq!(s, 400, "{field}={value}: {v}");
        assert!(!code(&v).is_empty());
    }

    // Duplicate record ids in one batch.
    let (s, v) = post(
        &url,
        Some(&agent),
        serde_json::to_vec(&json!({"records": [record(), record()]})).unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(code(&v), "duplicate_record");

    // A record over 64 KiB in canonical form, and a batch over the record limit.
    let mut r = record();
    r["metadata"] = json!({"blob": "x".repeat(70 * 1024)});
    let (s, v) = post(
        &url,
        Some(&agent),
        serde_json::to_vec(&json!({"records": [r]})).unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("limit"),
        "{v}"
    );
    let many: Vec<Value> = (0..1001)
        .map(|i| {
            let mut r = record();
            r["locator"] = json!(format!("git+file:///repo#f{i}"));
            r
        })
        .collect();
    let (s, v) = post(
        &url,
        Some(&agent),
        serde_json::to_vec(&json!({"records": many})).unwrap(),
    )
    .await;
    assert_eq!(s, 413, "{v}");

    // A 10 MiB body.
    let big = vec![b' '; 10 * 1024 * 1024];
    let (s, v) = post(&url, Some(&agent), big).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(code(&v), "payload_too_large");

    // Missing, wrong and wrong-role tokens.
    let body = serde_json::to_vec(&json!({"records": [record()]})).unwrap();
    let (s, v) = post(&url, None, body.clone()).await;
    assert_eq!((s, code(&v)), (401, "unauthorized"));
    let (s, v) = post(&url, Some("aims_not-a-real-token"), body.clone()).await;
    assert_eq!((s, code(&v)), (401, "unauthorized"));
    let (s, v) = post(&url, Some(&viewer), body.clone()).await;
    assert_eq!((s, code(&v)), (403, "forbidden"));
    let r = http()
        .unwrap()
        .get(format!("{url}/v1/systems"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "an agent token cannot read");

    // A token bound to an agent ID and sources: records for another agent or source are refused,
    // naming the record and the reason; a scope on a non-agent token is refused at creation.
    let bound = create_token_with(
        &server.database,
        "agent",
        "bound",
        &["--agent-id", "a1", "--source", "repo,other-repo"],
    )
    .unwrap();
    let mut r = record();
    r["agent"] = json!("a2");
    let (s, v) = post(
        &url,
        Some(&bound),
        serde_json::to_vec(&json!({"records": [record(), r]})).unwrap(),
    )
    .await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("records[1]") && msg.contains("a2"), "{v}");
    let mut r = record();
    r["source"]["id"] = json!("someone-elses");
    let (s, v) = post(
        &url,
        Some(&bound),
        serde_json::to_vec(&json!({"records": [r]})).unwrap(),
    )
    .await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("someone-elses"),
        "{v}"
    );
    assert!(
        create_token_with(&server.database, "viewer", "v2", &["--agent-id", "a1"]).is_err(),
        "a scope only applies to agent tokens"
    );

    // Nothing was stored by any of that.
    let r = http()
        .unwrap()
        .get(format!("{url}/v1/systems"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["systems"].as_array().unwrap().len(), 0, "{v}");

    // And the server still works: a valid record is accepted, twice is one leaf.
    let (s, v) = post(&url, Some(&agent), body.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["accepted"][0]["leaf_index"], 0);
    let (s, v) = post(&url, Some(&agent), body.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["duplicates"], 1);
    assert_eq!(v["accepted"][0]["leaf_index"], 0);
    // The bound token writes what its scope allows.
    let (s, v) = post(&url, Some(&bound), body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["duplicates"], 1);
    let r = http()
        .unwrap()
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
