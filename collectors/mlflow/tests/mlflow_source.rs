//! The MLflow source against a real `mlflow server` (SQLite backend, local artifact root) on
//! 127.0.0.1: the shared compliance harness, the listing and documents, the alias timeline,
//! and error classes.
//!
//! The server and the REST client that builds registries come from `aims_collect_mlflow::testkit`
//! (`AIMS_MLFLOW` or the cache virtualenv). One server is shared by all tests of this file
//! (startup takes ~15 s); it is killed, and its data directory removed, as soon as this test
//! process exits. Tests take a shared lock so each sees a registry nobody else is changing, and
//! each uses its own model names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::sync::{Arc, Mutex, OnceLock};

use aims_collect::testkit::{
    CountingCollector, SourceFixture, assert_collector_compliance, catalog, poll_once,
};
use aims_collect::{
    ArtifactRef, CollectErrorKind, Collector, Cursor, MlflowSource, PollOutcome, SystemRule,
};
use aims_collect_mlflow::testkit::{Mlf, MlflowServer, free_port, write_artifact as write};
use aims_collect_mlflow::{MlflowCollector, MlflowOptions, build};
use aims_model::{EvidenceRecord, RecordEvent, Timestamp};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// The shared server and the registry client (`aims_collect_mlflow::testkit`)

static SERVER: OnceLock<MlflowServer> = OnceLock::new();
/// Serialises the tests: each one owns the registry while it runs.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn server() -> &'static MlflowServer {
    SERVER.get_or_init(MlflowServer::start)
}

fn mlf() -> Mlf {
    Mlf::new(&server().url)
}

fn cfg(url: &str) -> MlflowSource {
    MlflowSource {
        id: "registry".into(),
        tracking_uri: url.into(),
        system: None,
        system_from_path: None,
        interval_secs: 300,
        token_env: None,
        token_file: None,
    }
}

fn collector() -> MlflowCollector {
    build(&cfg(&server().url)).unwrap()
}

fn loc(tail: &str) -> String {
    format!(
        "mlflow://{}/{tail}",
        server().url.trim_start_matches("http://")
    )
}

async fn poll(c: &dyn Collector, cursor: &Cursor) -> PollOutcome {
    poll_once(
        c,
        cursor,
        &catalog(),
        &SystemRule::FromListing,
        Timestamp::now(),
    )
    .await
}

fn record<'a>(out: &'a PollOutcome, locator: &str) -> &'a EvidenceRecord {
    out.records
        .iter()
        .find(|r| r.locator == locator)
        .unwrap_or_else(|| {
            let all: Vec<_> = out.records.iter().map(|r| &r.locator).collect();
            panic!("no record for {locator}: {all:?}")
        })
}

async fn fetched_json(c: &dyn Collector, a: &ArtifactRef) -> Value {
    let mut r = c.fetch(a).await.unwrap();
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).await.unwrap();
    serde_json::from_slice(&buf).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Mutates the registry for the compliance harness.
struct RegistryFixture {
    mlf: Mlf,
    model: String,
}

#[async_trait]
impl SourceFixture for RegistryFixture {
    async fn change_one(&mut self) -> String {
        // Version tags do not bump last_updated_timestamp; the token still changes.
        self.mlf
            .version_tag(&self.model, "1", "note", "reviewed")
            .await;
        format!("models/{}/versions/1", self.model)
    }
    async fn remove_one(&mut self) -> String {
        self.mlf
            .delete(
                "model-versions/delete",
                json!({"name": self.model, "version": "3"}),
            )
            .await;
        format!("models/{}/versions/3", self.model)
    }
}

#[tokio::test]
async fn compliance() {
    let _g = LOCK.lock().await;
    let mlf = mlf();
    let exp = mlf.experiment("compliance").await;
    let (run, dir) = mlf
        .run(&exp, &[("auc", 0.9)], &[("threshold.auc", "0.8")])
        .await;
    write(
        &dir,
        "model/MLmodel",
        b"artifact_path: model\nflavors: {}\n",
    );
    write(
        &dir,
        "model/README.md",
        b"---\nbase_model: bert-base-uncased\npipeline_tag: text-classification\n---\n# card\n",
    );
    let model = "cmp-model";
    mlf.model(model).await;
    mlf.version(model, Some(&run), &[]).await;
    mlf.version(model, None, &[]).await;
    mlf.version(model, None, &[]).await;
    mlf.alias(model, "champion", "2").await;
    let mut fixture = RegistryFixture {
        mlf,
        model: model.into(),
    };
    assert_collector_compliance(
        || Box::new(collector()),
        &mut fixture,
        &SystemRule::FromListing,
    )
    .await;
}

#[tokio::test]
async fn listing_documents_and_classification() {
    let _g = LOCK.lock().await;
    let mlf = mlf();
    let exp = mlf.experiment("listing").await;
    let (run, dir) = mlf
        .run(
            &exp,
            &[("auc", 0.91), ("latency", 120.0)],
            &[("threshold.auc", "0.85"), ("epochs", "3")],
        )
        .await;
    write(
        &dir,
        "model/MLmodel",
        b"artifact_path: model\nflavors: {}\n",
    );
    write(
        &dir,
        "model/README.md",
        b"---\nbase_model: bert-base-uncased\npipeline_tag: text-classification\n---\n# Fraud\n",
    );
    write(&dir, "model/model.pkl", b"\x80\x04binary");
    write(&dir, "model/sub/deep.json", b"{\"a\":1}");
    write(&dir, "eval.json", b"{\"note\":\"root report\"}");
    write(&dir, "big.json", &[b' '; 5000]);
    write(&dir, "other/ignored.json", b"{}");
    let model = "lst-fraud";
    mlf.model(model).await;
    let v1 = mlf
        .version(
            model,
            Some(&run),
            &[
                ("latency_threshold", "100"),
                ("direction.latency", "max"),
                ("validation_status", "pass"),
            ],
        )
        .await;
    assert_eq!(v1, "1");
    mlf.version(model, None, &[("team", "risk")]).await;
    mlf.alias(model, "champion", "1").await;
    mlf.post(
        "model-versions/transition-stage",
        json!({"name": model, "version": "2", "stage": "Staging", "archive_existing_versions": false}),
    )
    .await;

    let c = collector().with_options(MlflowOptions {
        max_artifact_bytes: 4096,
        ..MlflowOptions::default()
    });
    c.check().await.unwrap();
    let listing = c.list().await.unwrap();
    let mine: Vec<&ArtifactRef> = listing
        .iter()
        .filter(|a| a.path.starts_with(&format!("models/{model}/")))
        .collect();
    let mut locators: Vec<String> = mine.iter().map(|a| a.locator.clone()).collect();
    locators.sort();
    let mut want = vec![
        loc(&format!("models/{model}/versions/1")),
        loc(&format!("models/{model}/versions/2")),
        loc(&format!("models/{model}/aliases/champion")),
        loc(&format!("models/{model}/aliases/stage:Staging")),
        loc(&format!("runs/{run}/validation")),
        loc(&format!("runs/{run}/artifacts/model/MLmodel")),
        loc(&format!("runs/{run}/artifacts/model/README.md")),
        loc(&format!("runs/{run}/artifacts/model/sub/deep.json")),
        loc(&format!("runs/{run}/artifacts/eval.json")),
    ];
    want.sort();
    assert_eq!(locators, want);
    for a in &mine {
        assert_eq!(a.system.as_deref(), Some(model), "{}", a.locator);
    }
    let get = |tail: &str| {
        let l = loc(tail);
        *mine.iter().find(|a| a.locator == l).unwrap()
    };
    let champion = get(&format!("models/{model}/aliases/champion"));
    assert_eq!(champion.version, "1");
    assert_eq!(champion.path, format!("models/{model}/aliases/champion"));
    assert_eq!(champion.extra["format"], "mlflow_alias");
    let staging = get(&format!("models/{model}/aliases/stage:Staging"));
    assert_eq!(staging.version, "2");
    let readme = get(&format!("runs/{run}/artifacts/model/README.md"));
    assert_eq!(
        readme.path,
        format!("models/{model}/runs/{run}/artifacts/model/README.md")
    );
    assert!(
        readme.version.ends_with(":model/README.md"),
        "{}",
        readme.version
    );

    // The version document: the registry object plus its aliases.
    let v1a = get(&format!("models/{model}/versions/1"));
    assert_eq!(v1a.path, format!("models/{model}/versions/1"));
    let doc = fetched_json(&c, v1a).await;
    assert_eq!(doc["name"], model);
    assert_eq!(doc["version"], "1");
    assert_eq!(doc["run_id"], run.as_str());
    assert_eq!(doc["source"], format!("runs:/{run}/model"));
    assert_eq!(doc["aliases"], json!(["champion"]));
    assert!(
        doc["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "validation_status", "value": "pass"}))
    );

    // A poll: kinds, systems, metadata.
    let counting = CountingCollector::new(Box::new(c));
    let out = poll(&counting, &Cursor::new()).await;
    assert!(out.stats.errors.is_empty(), "{:?}", out.stats.errors);
    let v = record(&out, &loc(&format!("models/{model}/versions/1")));
    assert_eq!(v.kind, "registry_model_version");
    assert_eq!(v.system, model);
    assert_eq!(v.metadata["model"], json!({"name": model, "version": "1"}));
    assert_eq!(v.metadata["run_id"], run.as_str());
    assert_eq!(v.metadata["aliases"], json!(["champion"]));
    assert_eq!(v.metadata["tags"]["direction.latency"], "max");
    assert!(v.artifact_time.is_some());
    let a = record(&out, &loc(&format!("models/{model}/aliases/champion")));
    assert_eq!(a.kind, "registry_alias");
    assert_eq!(a.metadata["model"], json!({"name": model, "version": "1"}));
    assert_eq!(a.metadata["alias"], "champion");
    assert_eq!(a.metadata["environment"], "champion");
    let s = record(&out, &loc(&format!("models/{model}/aliases/stage:Staging")));
    assert_eq!(s.kind, "registry_alias");
    assert_eq!(s.metadata["environment"], "Staging");
    assert_eq!(s.metadata["model"]["version"], "2");
    let val = record(&out, &loc(&format!("runs/{run}/validation")));
    assert_eq!(val.kind, "validation_report");
    assert_eq!(val.system, model);
    assert_eq!(
        val.metadata["model"],
        json!({"name": model, "version": "1"})
    );
    assert_eq!(val.metadata["decision"], "pass");
    assert_eq!(
        val.artifact_time,
        Timestamp::from_unix_millis(1_795_000_002_000)
    );
    let metrics = val.metadata["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0]["name"], "auc");
    assert_eq!(metrics[0]["threshold"], 0.85);
    assert_eq!(metrics[0]["passed"], true);
    assert_eq!(metrics[1]["name"], "latency");
    assert_eq!(metrics[1]["direction"], "max");
    assert_eq!(metrics[1]["passed"], false);
    let card = record(&out, &loc(&format!("runs/{run}/artifacts/model/README.md")));
    assert_eq!(card.kind, "model_card");
    assert_eq!(card.metadata["registered_model"]["version"], "1");
    assert_eq!(
        card.sha256,
        aims_model::ContentHash::of(&std::fs::read(dir.join("model/README.md")).unwrap())
    );

    // An unchanged registry costs list calls only.
    let before = counting.fetches();
    let again = poll(&counting, &out.cursor).await;
    assert!(again.records.is_empty(), "{:?}", again.records);
    assert_eq!(counting.fetches(), before);
}

#[tokio::test]
async fn alias_moves_are_a_timeline() {
    let _g = LOCK.lock().await;
    let mlf = mlf();
    let model = "hist-model";
    mlf.model(model).await;
    for _ in 0..3 {
        mlf.version(model, None, &[]).await;
    }
    mlf.alias(model, "production", "2").await;
    let alias_loc = loc(&format!("models/{model}/aliases/production"));

    let c = CountingCollector::new(Box::new(collector()));
    let first = poll(&c, &Cursor::new()).await;
    let r = record(&first, &alias_loc);
    assert_eq!(r.version, "2");
    assert_eq!(r.metadata["model"]["version"], "2");
    assert_eq!(r.metadata["environment"], "production");

    mlf.alias(model, "production", "3").await;
    let fetched = c.fetches();
    let second = poll(&c, &first.cursor).await;
    let r2 = record(&second, &alias_loc);
    assert_eq!(r2.event, RecordEvent::Observed);
    assert_eq!(r2.version, "3");
    assert_eq!(r2.metadata["model"]["version"], "3");
    assert_ne!(r2.sha256, r.sha256);
    // The two versions whose alias list changed are re-observed too; nothing else.
    let mut changed: Vec<&str> = second.records.iter().map(|r| r.locator.as_str()).collect();
    changed.sort_unstable();
    let mut want = vec![
        alias_loc.clone(),
        loc(&format!("models/{model}/versions/2")),
        loc(&format!("models/{model}/versions/3")),
    ];
    want.sort();
    assert_eq!(changed, want);
    assert_eq!(c.fetches() - fetched, 3);
    let v3 = record(&second, &loc(&format!("models/{model}/versions/3")));
    assert_eq!(v3.metadata["aliases"], json!(["production"]));

    // Nothing moved: nothing fetched.
    let fetched = c.fetches();
    let third = poll(&c, &second.cursor).await;
    assert!(third.records.is_empty(), "{:?}", third.records);
    assert_eq!(c.fetches(), fetched);

    // Deleting the alias: the alias is gone (its last observation stays in the ledger).
    mlf.delete(
        "registered-models/alias",
        json!({"name": model, "alias": "production"}),
    )
    .await;
    let fourth = poll(&c, &third.cursor).await;
    let g = record(&fourth, &alias_loc);
    assert_eq!(g.event, RecordEvent::Gone);
    assert_eq!(g.sha256, r2.sha256);

    // A stage transition appears as a `stage:` pseudo-alias naming the version.
    mlf.post(
        "model-versions/transition-stage",
        json!({"name": model, "version": "1", "stage": "Production", "archive_existing_versions": false}),
    )
    .await;
    let fifth = poll(&c, &fourth.cursor).await;
    let st = record(
        &fifth,
        &loc(&format!("models/{model}/aliases/stage:Production")),
    );
    assert_eq!(st.kind, "registry_alias");
    assert_eq!(st.metadata["model"]["version"], "1");
    assert_eq!(st.metadata["environment"], "Production");
}

/// A one-shot HTTP server answering every request with `status` and `body`, recording the
/// request heads.
async fn stub(status: u16, body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).into_owned());
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn errors_have_the_right_kind() {
    // Nothing listening.
    let port = free_port();
    let c = build(&cfg(&format!("http://127.0.0.1:{port}"))).unwrap();
    assert_eq!(
        c.list().await.unwrap_err().kind(),
        CollectErrorKind::Transient
    );
    assert_eq!(
        c.check().await.unwrap_err().kind(),
        CollectErrorKind::Transient
    );

    // A server error.
    let (url, _) = stub(500, r#"{"error_code":"INTERNAL_ERROR","message":"boom"}"#).await;
    let e = build(&cfg(&url)).unwrap().list().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::Transient);
    assert!(e.to_string().contains("500"), "{e}");

    // Credentials refused; the token is sent as a bearer token and never appears in errors.
    let (url, seen) = stub(403, r#"{"error_code":"PERMISSION_DENIED","message":"no"}"#).await;
    let dir = std::env::temp_dir().join(format!("aims-mlflow-tok-{}", std::process::id()));
    std::fs::write(&dir, "sekrit-token\n").unwrap();
    let mut with_token = cfg(&url);
    with_token.token_file = Some(dir.clone());
    let c = build(&with_token).unwrap();
    let e = c.list().await.unwrap_err();
    std::fs::remove_file(&dir).unwrap();
    assert_eq!(e.kind(), CollectErrorKind::Permanent);
    assert!(!e.to_string().contains("sekrit"), "{e}");
    let heads = seen.lock().unwrap().join("\n").to_ascii_lowercase();
    assert!(
        heads.contains("authorization: bearer sekrit-token"),
        "{heads}"
    );

    // A 200 that is not MLflow's JSON (a proxy page) is permanent.
    let (url, _) = stub(200, "<html>proxy</html>").await;
    let e = build(&cfg(&url)).unwrap().list().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::Permanent);

    let _g = LOCK.lock().await;
    // A wrong path prefix on a real server.
    let bad = build(&cfg(&format!("{}/nope", server().url))).unwrap();
    assert_eq!(
        bad.list().await.unwrap_err().kind(),
        CollectErrorKind::NotFound
    );

    // Fetching something that does not exist (any more).
    let c = collector();
    let missing = ArtifactRef::new(
        "models/no-such-model/versions/1",
        loc("models/no-such-model/versions/1"),
        "1",
    );
    assert_eq!(
        c.fetch(&missing).await.err().unwrap().kind(),
        CollectErrorKind::NotFound
    );
    let missing_alias = ArtifactRef::new(
        "models/no-such-model/aliases/x",
        loc("models/no-such-model/aliases/x"),
        "1",
    );
    assert_eq!(
        c.fetch(&missing_alias).await.err().unwrap().kind(),
        CollectErrorKind::NotFound
    );
    let foreign = ArtifactRef::new("x", "s3://bucket/x", "1");
    assert_eq!(
        c.fetch(&foreign).await.err().unwrap().kind(),
        CollectErrorKind::Permanent
    );
}
