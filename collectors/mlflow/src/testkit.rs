//! A real `mlflow server` for tests (feature `testkit`): started on a free port of 127.0.0.1 with
//! a SQLite backend and a local artifact root, plus a small client for the REST calls tests use to
//! build a registry (experiments, finished runs with metrics and params, registered models,
//! versions, aliases, tags). Used by this crate's tests and by the end-to-end suite
//! (`tests/tests/sources.rs`), which points a real `aims-agent` at [`MlflowServer::url`].
//!
//! The server is found through `AIMS_MLFLOW` (path to the `mlflow` executable) or at
//! `$HOME/.cache/aims-evidence/venv-mlflow/bin/mlflow` (`python3 -m venv V && V/bin/pip install
//! mlflow`; the test command creates it). Start-up takes ~15 s. It runs in its own process group
//! under a small `sh` wrapper that kills the group and removes the data directory when the
//! [`MlflowServer`] is dropped or, for one kept in a `static`, as soon as the test process exits
//! (the wrapper's stdin pipe closes).

// A test helper: failing loudly is its job, and it only builds for tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod fake;

/// A running `mlflow server`; its process group is killed on drop.
pub struct MlflowServer {
    /// `http://127.0.0.1:PORT`: the `tracking_uri` of an `mlflow` source.
    pub url: String,
    /// The `sh` wrapper, leader of the server's process group.
    child: Mutex<Child>,
    /// Closing this pipe (process exit) makes the wrapper kill the server group.
    _stdin: Mutex<ChildStdin>,
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

/// The `mlflow` executable: `AIMS_MLFLOW`, else the cache virtualenv.
pub fn mlflow_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AIMS_MLFLOW") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    let p = Path::new(&home).join(".cache/aims-evidence/venv-mlflow/bin/mlflow");
    assert!(
        p.exists(),
        "no mlflow executable: set AIMS_MLFLOW or run \
         `python3 -m venv ~/.cache/aims-evidence/venv-mlflow && \
         ~/.cache/aims-evidence/venv-mlflow/bin/pip install mlflow`"
    );
    p
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` with HTTP/1.0; returns the whole response, or `None` when nothing answers.
fn raw_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

// One worker and no job execution: 2 processes and ~0.5 GB instead of ~10 and ~2.3 GB.
const WRAPPER: &str = r#"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$0" server --host 127.0.0.1 --port "$1" \
  --backend-store-uri "sqlite:///$2/mlflow.db" --default-artifact-root "$2/artifacts" \
  --workers 1 >"$2/server.log" 2>&1 &
read _ignored
trap '' TERM
kill -TERM 0
wait
rm -rf "$2""#;

impl MlflowServer {
    /// Starts a server with a fresh registry and waits (up to 90 s) until `/health` answers.
    pub fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("aims-mlflow-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg(mlflow_bin())
            .arg(port.to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if raw_get(port, "/health").is_some_and(|r| r.contains(" 200 ") && r.ends_with("OK")) {
                return server;
            }
            let log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let exited = server.child.lock().unwrap().try_wait();
            if let Ok(Some(status)) = exited {
                panic!("mlflow server exited with {status}:\n{}", log());
            }
            if Instant::now() > deadline {
                panic!("mlflow server not healthy after 90 s:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Drives a registry through MLflow's REST API (`/api/2.0/mlflow/…`); every call must succeed.
pub struct Mlf {
    http: reqwest::Client,
    base: String,
}

impl Mlf {
    /// A client for the server at `url` (`http://HOST:PORT`).
    pub fn new(url: &str) -> Self {
        crate::install_crypto_provider();
        Self {
            http: reqwest::Client::new(),
            base: format!("{url}/api/2.0/mlflow"),
        }
    }

    /// `method path` with a JSON body; panics unless the answer is a 2xx.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(method.clone(), format!("{}/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(
            status.is_success(),
            "{method} {path} {body}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap()
    }

    /// `POST path`.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::DELETE, path, body).await
    }

    /// Creates an experiment; returns its id.
    pub async fn experiment(&self, name: &str) -> String {
        let r = self.post("experiments/create", json!({"name": name})).await;
        r["experiment_id"].as_str().unwrap().to_owned()
    }

    /// A finished run with metrics and params; returns (run id, local artifact directory).
    pub async fn run(
        &self,
        exp: &str,
        metrics: &[(&str, f64)],
        params: &[(&str, &str)],
    ) -> (String, PathBuf) {
        let r = self
            .post(
                "runs/create",
                json!({"experiment_id": exp, "start_time": 1_795_000_000_000_i64}),
            )
            .await;
        let id = r["run"]["info"]["run_id"].as_str().unwrap().to_owned();
        let dir = PathBuf::from(r["run"]["info"]["artifact_uri"].as_str().unwrap());
        for (k, v) in metrics {
            self.post(
                "runs/log-metric",
                json!({"run_id": id, "key": k, "value": v, "timestamp": 1_795_000_001_000_i64}),
            )
            .await;
        }
        for (k, v) in params {
            self.post(
                "runs/log-parameter",
                json!({"run_id": id, "key": k, "value": v}),
            )
            .await;
        }
        self.post(
            "runs/update",
            json!({"run_id": id, "status": "FINISHED", "end_time": 1_795_000_002_000_i64}),
        )
        .await;
        (id, dir)
    }

    /// Creates a registered model.
    pub async fn model(&self, name: &str) {
        self.post("registered-models/create", json!({"name": name}))
            .await;
    }

    /// Creates a version of `name` (from `runs:/RUN/model` when a run is given); returns its
    /// version number.
    pub async fn version(&self, name: &str, run: Option<&str>, tags: &[(&str, &str)]) -> String {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let body = match run {
            Some(r) => {
                json!({"name": name, "source": format!("runs:/{r}/model"), "run_id": r, "tags": tags})
            }
            None => json!({"name": name, "source": format!("s3://bucket/{name}"), "tags": tags}),
        };
        let r = self.post("model-versions/create", body).await;
        r["model_version"]["version"].as_str().unwrap().to_owned()
    }

    /// Points `alias` of `name` at `version`.
    pub async fn alias(&self, name: &str, alias: &str, version: &str) {
        self.post(
            "registered-models/alias",
            json!({"name": name, "alias": alias, "version": version}),
        )
        .await;
    }

    /// Sets a tag on a model version.
    pub async fn version_tag(&self, name: &str, version: &str, key: &str, value: &str) {
        self.post(
            "model-versions/set-tag",
            json!({"name": name, "version": version, "key": key, "value": value}),
        )
        .await;
    }
}

/// Writes `bytes` to `dir/rel` (e.g. a file logged under a run's local artifact directory),
/// creating parent directories.
pub fn write_artifact(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}
