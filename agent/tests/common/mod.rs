//! Helpers shared by the agent's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aims_agent::config::{AgentConfig, SecretToken};
use aims_agent::runner::RunOptions;
use aims_agent::shipper::{RetryPolicy, Shipper, ShipperSettings};
use aims_agent::spool::Spool;

use aims_model::EvidenceRecord;
use aims_model::wire::{Accepted, IngestRequest, IngestResponse};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// A valid record; `i` makes it unique.
pub fn record(source: &str, i: usize) -> EvidenceRecord {
    serde_json::from_value(serde_json::json!({
        "v": 1, "agent": "cluster-a", "source": {"id": source, "type": "git"},
        "locator": format!("git+file:///srv/repo#systems/fraud/file{i}.md"),
        "version": format!("{i:040x}"),
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "size": 0, "observed_at": "2026-11-20T10:00:00Z", "system": "fraud", "kind": "model_card"
    }))
    .unwrap()
}

pub fn records(source: &str, n: usize) -> Vec<EvidenceRecord> {
    (0..n).map(|i| record(source, i)).collect()
}

/// What the fake server answers, in order; once the script is empty it acknowledges properly.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status with an optional `Retry-After` (seconds) and a body.
    Status(u16, Option<u64>, String),
    /// A 200 whose first `record_id` is wrong.
    BadAck,
    /// A correct acknowledgement.
    Ack,
}

#[derive(Default)]
pub struct ServerState {
    pub script: Mutex<VecDeque<Reply>>,
    /// (arrival time, authorization header, number of records) per request.
    pub requests: Mutex<Vec<(Instant, Option<String>, usize)>>,
}

impl ServerState {
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    pub fn times(&self) -> Vec<Instant> {
        self.requests.lock().unwrap().iter().map(|r| r.0).collect()
    }
}

fn ack(req: &IngestRequest, break_first: bool) -> IngestResponse {
    let mut accepted: Vec<Accepted> = req
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| Accepted {
            record_id: r.record_id().unwrap(),
            leaf_index: i as u64,
            duplicate: false,
        })
        .collect();
    if let Some(a) = accepted.first_mut().filter(|_| break_first) {
        a.record_id = aims_model::ContentHash::of(b"something else");
    }
    IngestResponse {
        tree_size: accepted.len() as u64,
        accepted,
        duplicates: 0,
        checkpoint: None,
    }
}

async fn ingest(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    Json(req): Json<IngestRequest>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    st.requests
        .lock()
        .unwrap()
        .push((Instant::now(), auth, req.records.len()));
    let next = st.script.lock().unwrap().pop_front().unwrap_or(Reply::Ack);
    match next {
        Reply::Ack => Json(ack(&req, false)).into_response(),
        Reply::BadAck => Json(ack(&req, true)).into_response(),
        Reply::Status(code, retry_after, body) => {
            let mut resp = (StatusCode::from_u16(code).unwrap(), body).into_response();
            resp.headers_mut().insert(
                "content-type",
                axum::http::HeaderValue::from_static("application/json"),
            );
            if let Some(s) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            resp
        }
    }
}

/// Starts the fake collector on 127.0.0.1:0 and returns its base URL.
pub async fn spawn_server(script: Vec<Reply>) -> (String, Arc<ServerState>) {
    let st = Arc::new(ServerState {
        script: Mutex::new(script.into()),
        ..ServerState::default()
    });
    let app = axum::Router::new()
        .route("/v1/evidence", axum::routing::post(ingest))
        .with_state(st.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), st)
}

/// A shipper to `url` with `token`, spooling into `spool`.
pub fn shipper(url: &str, token: &str, spool: Spool, retry: RetryPolicy) -> Shipper {
    let settings = ShipperSettings {
        url: url.parse().unwrap(),
        token: SecretToken::new(token),
        timeout: Duration::from_secs(5),
        ca_file: None,
        retry,
        witness_dir: None,
        trust_file: None,
    };
    Shipper::new(settings, spool).unwrap()
}

/// Retries quick enough for a test: 4 attempts, at most 200 ms apart.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_attempts: 4,
        deadline: Some(Duration::from_secs(20)),
        ..RetryPolicy::default()
    }
}

/// Writes `dir/agent.yaml` (agent `test-agent`, batches of 2, `extra` top-level keys, then
/// `sources`), loads and validates it.
pub fn write_config(dir: &Path, url: &str, extra: &str, sources: &str) -> AgentConfig {
    let path = dir.join("agent.yaml");
    let body = format!(
        "version: 1\nagent: {{ id: test-agent }}\nserver: {{ url: '{url}', token: t0k, timeout_secs: 5 }}\n\
         spool_dir: '{}'\nbatch_size: 2\n{extra}sources:\n{sources}",
        dir.join("state").display()
    );
    std::fs::write(&path, body).unwrap();
    let cfg = AgentConfig::load_with_env(&path, &HashMap::new()).unwrap();
    cfg.validate().unwrap();
    cfg
}

/// Run options with two quick attempts per batch.
pub fn opts() -> RunOptions {
    RunOptions {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_attempts: 2,
            deadline: Some(Duration::from_secs(10)),
            ..RetryPolicy::default()
        },
        ..RunOptions::default()
    }
}

/// `root/data/fraud/` with a model card, an evaluation and a file that is not evidence.
pub fn data_dir(root: &Path) -> PathBuf {
    let d = root.join("data");
    std::fs::create_dir_all(d.join("fraud")).unwrap();
    std::fs::write(d.join("fraud/model_card.md"), "# Model card\n").unwrap();
    std::fs::write(d.join("fraud/eval.json"), r#"{"accuracy": 0.9}"#).unwrap();
    std::fs::write(d.join("fraud/notes.txt"), "notes").unwrap();
    d
}
