//! Manual evidence end to end (DESIGN §12.3, issue 14 item 3), through the real binaries: an
//! admin uploads an AI policy → A.2.2 is fresh (until the upload's own expiry when it sets one)
//! → the bytes round-trip through `GET /v1/blobs/{sha256}` → a bundle carries them under
//! `blobs/` and `aims-verify` checks them (and catches a changed byte). Every refusal (role,
//! empty, over the limit, a path in the name, an unknown kind, a past expiry, an interrupted
//! body) stores nothing: no record, no blob.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use aims_e2e::ServerProcess;

use crate::audit::{read_bundle, reseal, trust_policy, verify, write_bundle};
use crate::compliance::{control, tree_size};

const POLICY: &str = "---\ntitle: Responsible AI policy\ndate: 2026-11-30\n---\n\n# AI policy\n\nEvery AI system has an owner.\n";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn upload(server: &ServerProcess, token: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/uploads?{query}", server.url))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn json_get(server: &ServerProcess, token: &str, path: &str) -> Value {
    client()
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Files under the blob directory beside the database (staging included).
fn blob_files(dir: &Path) -> Vec<String> {
    fn walk(d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("aims-blobs"), &mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_14_uploads_are_evidence_blobs_and_bundle_content() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("server.yaml");
    std::fs::write(&cfg, "max_upload_bytes: 65536\n").unwrap();
    let database = format!("sqlite://{}", tmp.path().join("aims.db").display());
    let server = ServerProcess::start_with(
        &tmp.path().join("run"),
        &database,
        "127.0.0.1:0",
        &["--config", cfg.to_str().unwrap()],
    )
    .unwrap();
    let admin = server.token("admin", "compliance-admin").unwrap();
    let viewer = server.token("viewer", "compliance-lead").unwrap();
    let agent = server.token("agent", "cluster-a").unwrap();
    let auditor = server.token("auditor", "auditor").unwrap();
    let q = "system=fraud-scoring&kind=ai_policy&name=ai-policy.md";

    // Refusals store nothing.
    let size0 = tree_size(&server.url, &viewer).await;
    for (token, query, body, want) in [
        (&viewer, q.to_owned(), POLICY.as_bytes().to_vec(), 403),
        (&agent, q.to_owned(), POLICY.as_bytes().to_vec(), 403),
        (&admin, q.to_owned(), Vec::new(), 400),
        (&admin, q.to_owned(), vec![b'x'; 70_000], 413),
        (
            &admin,
            q.replace("ai-policy.md", "a%2Fb.md"),
            POLICY.as_bytes().to_vec(),
            400,
        ),
        (
            &admin,
            q.replace("ai_policy", "no_such_kind"),
            POLICY.as_bytes().to_vec(),
            400,
        ),
        (
            &admin,
            q.replace("ai_policy", "applicability_statement"),
            POLICY.as_bytes().to_vec(),
            400,
        ),
        (
            &admin,
            "kind=ai_policy&name=x.md".to_owned(),
            POLICY.as_bytes().to_vec(),
            400,
        ),
        (
            &admin,
            format!("{q}&expires_at=2020-01-01T00:00:00Z"),
            POLICY.as_bytes().to_vec(),
            400,
        ),
    ] {
        let (s, b) = upload(&server, token, &query, body).await;
        assert_eq!(s, want, "{query}: {b}");
        assert!(b["error"]["message"].is_string(), "{b}");
    }
    // An upload cut off mid-body.
    {
        let addr = server.url.strip_prefix("http://").unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /v1/uploads?{q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
             Content-Length: 10000\r\n\r\n{}",
            &POLICY[..20]
        )
        .unwrap();
        s.flush().unwrap();
        drop(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        tree_size(&server.url, &viewer).await,
        size0,
        "nothing appended"
    );
    let dir = tmp.path();
    assert!(
        blob_files(dir).is_empty(),
        "no blob and no staged file: {:?}",
        blob_files(dir)
    );

    // The upload: a manual record of the bytes; A.2.2 fresh from it.
    let (s, b) = upload(&server, &admin, q, POLICY.as_bytes().to_vec()).await;
    assert_eq!(s, 201, "{b}");
    let sha = b["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        sha,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(POLICY))
    );
    assert!(
        b["record_id"].as_str().is_some_and(|r| r.len() == 64),
        "{b}"
    );
    assert_eq!(b["leaf_index"].as_u64(), Some(size0));
    let controls = json_get(&server, &viewer, "/v1/systems/fraud-scoring/controls").await;
    let a22 = control(&controls, "A.2.2");
    assert_eq!(a22["status"], "fresh", "{a22}");
    assert!(a22["evidence"].to_string().contains(&sha), "{a22}");
    // Parsed as a collected card would be: the front matter's date is the artifact time.
    let ev = json_get(
        &server,
        &viewer,
        &format!("/v1/evidence/{}", b["record_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(ev["record"]["source"]["type"], "manual", "{ev}");
    assert_eq!(ev["record"]["agent"], "compliance-admin");
    assert_eq!(
        ev["record"]["locator"],
        "aims:upload/fraud-scoring/ai-policy.md"
    );
    assert!(
        ev["record"]["artifact_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-11-30")),
        "{ev}"
    );

    // The bytes round-trip; only readers get them.
    let r = client()
        .get(format!("{}/v1/blobs/{sha}", server.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), POLICY.as_bytes());
    for (token, path, want) in [
        (&agent, format!("/v1/blobs/{sha}"), 403),
        (&viewer, format!("/v1/blobs/{}", "0".repeat(64)), 404),
        (&viewer, "/v1/blobs/not-a-digest".to_owned(), 400),
    ] {
        let r = client()
            .get(format!("{}{path}", server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
    }

    // An expiry of its own: fresh until then, whatever the kind's 365-day window says.
    let expires =
        aims_model::Timestamp::from_datetime(chrono::Utc::now() + chrono::Duration::days(3));
    let (s, b) = upload(
        &server,
        &admin,
        &format!("system=churn&kind=ai_policy&name=policy.md&expires_at={expires}"),
        b"# Churn model policy\n".to_vec(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let controls = json_get(&server, &viewer, "/v1/systems/churn/controls").await;
    let a22 = control(&controls, "A.2.2");
    assert_eq!(a22["status"], "fresh", "{a22}");
    assert_eq!(a22["fresh_until"], json!(expires.to_string()), "{a22}");

    // The bundle carries the blobs; aims-verify checks them; a changed byte fails.
    let trust = tmp.path().join("trust.txt");
    std::fs::write(&trust, trust_policy(&database)).unwrap();
    let bundle = client()
        .get(format!("{}/v1/export", server.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = tmp.path().join("bundle.tar.gz");
    std::fs::write(&path, &bundle).unwrap();
    let verify = |p: &Path| verify(p, &trust, &[]);
    let (code, text) = verify(&path);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 blobs hash to their names"), "{text}");

    let mut files = read_bundle(&bundle);
    let blob_path = format!("blobs/sha256/{sha}");
    assert_eq!(files[&blob_path], POLICY.as_bytes());
    files.get_mut(&blob_path).unwrap()[3] ^= 1;
    // Re-seal SHA256SUMS so only the blob check can catch it.
    reseal(&mut files);
    let tampered = tmp.path().join("tampered.tar.gz");
    write_bundle(&files, &tampered);
    let (code, text) = verify(&tampered);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&blob_path) && text.contains("does not hash to its name"),
        "{text}"
    );

    // The CLI export carries them too, and leaves them out with --no-blobs.
    let cli_bundle = tmp.path().join("cli.tar.gz");
    crate::audit::cli_export(&database, &cli_bundle, &[]);
    assert!(read_bundle(&std::fs::read(&cli_bundle).unwrap()).contains_key(&blob_path));
    crate::audit::cli_export(&database, &cli_bundle, &["--no-blobs"]);
    let files = read_bundle(&std::fs::read(&cli_bundle).unwrap());
    assert!(!files.keys().any(|k| k.starts_with("blobs/")));
    let (code, text) = verify(&cli_bundle);
    assert_eq!(code, Some(0), "{text}");

    // Without blobs on request: the records stay, the bytes do not.
    let bundle = client()
        .get(format!("{}/v1/export?blobs=false", server.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bundle[..]));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("blobs/")), "{names:?}");
}
