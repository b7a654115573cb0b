//! [`FakeMlflow`]: a scriptable MLflow REST server on 127.0.0.1:0 for hostile-server tests
//! (issue 18). It serves one registered model `fraud` with version 1 (alias `champion`) from run
//! `r1`, whose root holds `eval.json` and `model/MLmodel`; a [`Fault`] makes it misbehave the
//! way a broken proxy or a malicious server does. Every request is logged with its
//! `Authorization` header.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `eval.json` as served.
pub const EVAL: &[u8] = br#"{"kind":"validation_report","metrics":[{"name":"auc","value":0.91}]}"#;
/// `model/MLmodel` as served.
pub const MLMODEL: &[u8] = b"artifact_path: model\nflavors:\n  python_function: {}\n";

/// How the server misbehaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Behaves.
    #[default]
    None,
    /// `artifacts/list` answers 503.
    ArtifactList503,
    /// `artifacts/list` answers 200 with an HTML page.
    ArtifactListHtml,
    /// `runs/get` answers 403 `PERMISSION_DENIED`.
    RunsGet403,
    /// `runs/get` answers a bare 404 HTML page (a proxy).
    RunsGet404Html,
    /// The run is really gone: MLflow's typed `RESOURCE_DOES_NOT_EXIST` for `runs/get` and
    /// `artifacts/list`.
    RunGone,
    /// `registered-models/search` never stops paginating (a new token every page).
    EndlessPages,
    /// `registered-models/search` cycles between two page tokens.
    CyclingPages,
    /// `registered-models/search` answers with this many bytes of JSON.
    HugeSearch(usize),
    /// `registered-models/search` trickles its answer one byte per `ms` milliseconds.
    TrickleSearch(u64),
    /// `get-artifact` serves `eval.json` as this many bytes.
    OversizeArtifact(usize),
    /// Every request is answered with this 3xx status and `Location: <base><path and query>`.
    Redirect(u16, String),
    /// Requests outside `/moved` are redirected (302) to `/moved<path>` on this server, which
    /// serves them normally.
    RedirectSameOrigin,
}

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Path and query.
    pub path_and_query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct FakeState {
    fault: Fault,
    log: Vec<Seen>,
    pages: u64,
}

/// The running fake (it stops with the tokio runtime that started it).
#[derive(Clone, Debug)]
pub struct FakeMlflow {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeMlflow {
    /// Starts a well-behaved fake.
    pub async fn start() -> Self {
        let state: Arc<Mutex<FakeState>> = Arc::default();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Changes how the server misbehaves.
    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

fn json_response(status: u16, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn html(status: u16) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/html")
        .body(Body::from("<html><body><h1>Error</h1></body></html>"))
        .unwrap()
}

fn version(with_aliases: bool) -> Value {
    let mut v = json!({
        "name": "fraud", "version": "1", "run_id": "r1", "source": "runs:/r1/model",
        "creation_timestamp": 1_700_000_000_000_i64, "last_updated_timestamp": 1_700_000_000_000_i64,
        "current_stage": "None", "status": "READY", "tags": [{"key": "team", "value": "risk"}]
    });
    if with_aliases {
        v["aliases"] = json!(["champion"]);
    }
    v
}

fn query(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%2F", "/"))
    })
}

async fn handle(State(st): State<Arc<Mutex<FakeState>>>, uri: Uri, headers: HeaderMap) -> Response {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let fault = {
        let mut s = st.lock().unwrap();
        s.log.push(Seen {
            path_and_query: path_and_query.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        s.fault.clone()
    };
    let mut path = uri.path().to_owned();
    match &fault {
        Fault::Redirect(status, base) => {
            return Response::builder()
                .status(*status)
                .header("location", format!("{base}{path_and_query}"))
                .body(Body::empty())
                .unwrap();
        }
        Fault::RedirectSameOrigin => match path.strip_prefix("/moved") {
            Some(rest) => path = rest.to_owned(),
            None => {
                return Response::builder()
                    .status(302)
                    .header("location", format!("/moved{path_and_query}"))
                    .body(Body::empty())
                    .unwrap();
            }
        },
        _ => {}
    }
    let api = path.strip_prefix("/api/2.0/mlflow/").unwrap_or("");
    match (api, path.as_str()) {
        ("registered-models/search", _) => match fault {
            Fault::EndlessPages => {
                let n = {
                    let mut s = st.lock().unwrap();
                    s.pages += 1;
                    s.pages
                };
                json_response(
                    200,
                    &json!({"registered_models": [{"name": "fraud"}], "next_page_token": format!("page-{n}")}),
                )
            }
            Fault::CyclingPages => {
                let next = if query(&uri, "page_token").as_deref() == Some("a") {
                    "b"
                } else {
                    "a"
                };
                json_response(
                    200,
                    &json!({"registered_models": [{"name": "fraud"}], "next_page_token": next}),
                )
            }
            Fault::HugeSearch(n) => json_response(
                200,
                &json!({"registered_models": [{"name": "fraud", "description": "x".repeat(n)}]}),
            ),
            Fault::TrickleSearch(ms) => {
                let body = Bytes::from(
                    serde_json::to_vec(&json!({"registered_models": [{"name": "fraud"}]})).unwrap(),
                );
                let stream = futures_util::stream::unfold(0usize, move |i| {
                    let body = body.clone();
                    async move {
                        if i >= body.len() {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Some((Ok::<_, std::io::Error>(body.slice(i..=i)), i + 1))
                    }
                });
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from_stream(stream))
                    .unwrap()
            }
            _ => json_response(200, &json!({"registered_models": [{"name": "fraud"}]})),
        },
        ("registered-models/get", _) => json_response(
            200,
            &json!({"registered_model": {"name": "fraud", "aliases": [{"alias": "champion", "version": "1"}]}}),
        ),
        ("model-versions/search", _) => {
            json_response(200, &json!({"model_versions": [version(false)]}))
        }
        ("model-versions/get", _) => json_response(200, &json!({"model_version": version(true)})),
        ("runs/get", _) => match fault {
            Fault::RunsGet403 => json_response(
                403,
                &json!({"error_code": "PERMISSION_DENIED", "message": "no"}),
            ),
            Fault::RunsGet404Html => html(404),
            Fault::RunGone => json_response(
                404,
                &json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'r1' not found"}),
            ),
            _ => json_response(
                200,
                &json!({"run": {
                    "info": {"run_id": "r1", "experiment_id": "0", "status": "FINISHED",
                             "start_time": 1_700_000_000_000_i64, "end_time": 1_700_000_001_000_i64,
                             "lifecycle_stage": "active"},
                    "data": {"metrics": [{"key": "auc", "value": 0.91,
                                          "timestamp": 1_700_000_001_000_i64, "step": 0}]}
                }}),
            ),
        },
        ("artifacts/list", _) => match fault {
            Fault::ArtifactList503 => html(503),
            Fault::ArtifactListHtml => html(200),
            Fault::RunGone => json_response(
                404,
                &json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'r1' not found"}),
            ),
            _ => match query(&uri, "path").as_deref() {
                None | Some("") => json_response(
                    200,
                    &json!({"files": [
                        {"path": "eval.json", "is_dir": false, "file_size": EVAL.len()},
                        {"path": "model", "is_dir": true}
                    ]}),
                ),
                Some("model") => json_response(
                    200,
                    &json!({"files": [
                        {"path": "model/MLmodel", "is_dir": false, "file_size": MLMODEL.len()}
                    ]}),
                ),
                Some(_) => json_response(200, &json!({})),
            },
        },
        (_, "/get-artifact") => match (query(&uri, "path").as_deref(), fault) {
            (Some("eval.json"), Fault::OversizeArtifact(n)) => {
                (StatusCode::OK, vec![b'{'; n]).into_response()
            }
            (Some("eval.json"), _) => (StatusCode::OK, EVAL).into_response(),
            (Some("model/MLmodel"), _) => (StatusCode::OK, MLMODEL).into_response(),
            _ => html(404),
        },
        (_, "/health") => (StatusCode::OK, "OK").into_response(),
        _ => html(404),
    }
}
