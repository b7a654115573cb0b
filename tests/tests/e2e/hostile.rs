//! Issue 18, agent rows, through the shipped binaries: a real `aims-server serve` on SQLite, a
//! real `aims-agent` (`once`, `spool list`, `spool retry`, `validate`), and hostile servers and
//! sources started by this test on 127.0.0.1:0 (a redirecting or misconfigured proxy in front of
//! the server, a misbehaving MLflow from `aims_collect_mlflow::testkit::fake`).
//!
//! The crate-level tests of each row (named `issue_18_<id>_…` in `agent/tests/hostile.rs` and
//! `collectors/*/tests/hostile.rs`) pin the mechanisms; these check what an operator sees: the
//! exit code, the summary, the spool on disk, the ledger and the source's health on the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aims_collect_mlflow::testkit::fake::{FakeMlflow, Fault};
use aims_e2e::{AgentRun, ServerProcess, agent_once, bin, http};
use axum::body::Body;
use axum::http::Uri;
use axum::response::Response;
use serde_json::Value;

const AGENT_TIMEOUT: Duration = Duration::from_secs(120);

struct Harness {
    tmp: tempfile::TempDir,
    server: ServerProcess,
    token: String,
    viewer: String,
}

impl Harness {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
        let token = server.token("agent", "hostile").unwrap();
        let viewer = server.token("viewer", "lead").unwrap();
        Self {
            tmp,
            server,
            token,
            viewer,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// An agent configuration (`extra` top-level lines, `sources` YAML flow mappings).
    fn config(&self, extra: &str, sources: &[String]) -> PathBuf {
        let mut cfg = format!(
            "version: 1\nagent: {{ id: hostile }}\nserver: {{ url: \"{}\", token: \"{}\", timeout_secs: 5 }}\n\
             spool_dir: \"{}\"\nbatch_size: 2\n{extra}sources:\n",
            self.server.url,
            self.token,
            self.path("state").display()
        );
        for s in sources {
            cfg.push_str(&format!("  - {s}\n"));
        }
        let path = self.path("agent.yaml");
        std::fs::write(&path, cfg).unwrap();
        path
    }

    /// `aims-agent once`, off the async runtime (the fakes are served by this test's runtime).
    async fn once(&self, cfg: &Path, env: &[(&str, &str)]) -> AgentRun {
        let cfg = cfg.to_owned();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            agent_once(&cfg, &env, AGENT_TIMEOUT).unwrap()
        })
        .await
        .unwrap()
    }

    async fn get(&self, path: &str) -> String {
        let r = http()
            .unwrap()
            .get(format!("{}{path}", self.server.url))
            .bearer_auth(&self.viewer)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.text().await.unwrap()
    }

    /// The ledger's size (second line of the checkpoint note).
    async fn ledger_size(&self) -> u64 {
        self.get("/v1/log/checkpoint")
            .await
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// `GET /v1/sources`: the health the server derived from the agent's heartbeats.
    async fn source_health(&self, source: &str) -> Value {
        let v: Value = serde_json::from_str(&self.get("/v1/sources").await).unwrap();
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == source)
            .cloned()
            .unwrap_or_else(|| panic!("no source {source} in {v}"))
    }

    fn pending(&self) -> Vec<PathBuf> {
        json_files(&self.path("state/spool"))
    }

    fn rejected(&self) -> Vec<PathBuf> {
        json_files(&self.path("state/spool/rejected"))
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The summary line of `source` in a run's stderr.
fn summary<'a>(run: &'a AgentRun, source: &str) -> &'a str {
    let prefix = format!("{source}: ");
    run.stderr
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains(" listed, "))
        .unwrap_or_else(|| panic!("no summary line for {source}:\n{}", run.stderr))
}

fn mlflow_source(url: &str) -> String {
    format!("{{ id: registry, type: mlflow, tracking_uri: \"{url}\", interval_secs: 60 }}")
}

fn dir_source(dir: &Path) -> String {
    let d = dir.join("fraud");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("model_card.md"), "# Model card\n").unwrap();
    std::fs::write(d.join("eval.json"), r#"{"accuracy": 0.9}"#).unwrap();
    std::fs::write(d.join("notes.txt"), "notes").unwrap();
    format!(
        "{{ id: reports, type: dir, path: \"{}\", system: fraud, interval_secs: 60 }}",
        dir.display()
    )
}

/// (path, authorization) of each request a [`proxy`] answered.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server standing in for a proxy: every request gets `respond(path)` and is logged.
async fn proxy(respond: impl Fn(&str) -> Response + Send + Sync + 'static) -> (String, Log) {
    let log: Log = Arc::default();
    let respond = Arc::new(respond);
    let l = log.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: axum::http::HeaderMap| {
        let l = l.clone();
        let respond = respond.clone();
        async move {
            l.lock().unwrap().push((
                uri.path().to_owned(),
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ));
            respond(uri.path())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, log)
}

/// Issue 18, A2: a transient MLflow error made `once` write false `gone` records and exit 0.
/// Now the run exits 1 naming the source, the server marks the source failing, the ledger gets
/// no `gone` and the next healthy run adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_a2_failed_mlflow_listing_fails_the_run_and_writes_no_gone() {
    let h = Harness::start();
    let fake = FakeMlflow::start().await;
    let cfg = h.config("", &[mlflow_source(&fake.url)]);
    let run = h.once(&cfg, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        summary(&run, "registry").contains("5 shipped"),
        "{}",
        run.stderr
    );
    let size = h.ledger_size().await;
    assert!(size >= 5, "{size}");

    for fault in [
        Fault::ArtifactList503,
        Fault::ArtifactListHtml,
        Fault::RunsGet403,
    ] {
        fake.set_fault(fault.clone());
        let run = h.once(&cfg, &[]).await;
        assert_eq!(run.code, Some(1), "{fault:?}: {}", run.stderr);
        let line = summary(&run, "registry");
        assert!(
            line.contains("0 gone") && line.contains("errors"),
            "{fault:?}: {line}"
        );
        assert_eq!(h.ledger_size().await, size, "{fault:?}: the ledger grew");
        let health = h.source_health("registry").await;
        assert_eq!(health["status"], "failing", "{fault:?}: {health}");
    }

    fake.set_fault(Fault::None);
    let run = h.once(&cfg, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let line = summary(&run, "registry");
    assert!(line.contains("0 gone, 0 shipped"), "{line}");
    assert_eq!(h.ledger_size().await, size, "nothing re-added");
    assert_eq!(h.source_health("registry").await["status"], "ok");
}

/// Issue 18, A3: one proxy 404 moved the whole pending spool to `rejected/` and nothing re-sent
/// it. Now a proxy's answer keeps the spool (exit 1); a typed rejection by the server moves
/// batches to `rejected/`, `aims-agent spool list` shows them with the reason, and `aims-agent
/// spool retry` moves them back so the next run delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_a3_proxy_errors_keep_the_spool_and_spool_retry_reoffers() {
    let h = Harness::start();
    let data = h.path("data");
    let cfg = h.config("", &[dir_source(&data)]);
    let size_before = h.ledger_size().await;

    // A proxy in front of the server answering 404 with an HTML page.
    let (p404, log404) = proxy(|_| {
        Response::builder()
            .status(404)
            .header("content-type", "text/html")
            .body(Body::from("<html><body>404 Not Found</body></html>"))
            .unwrap()
    })
    .await;
    let run = h
        .once(&cfg, &[("AIMS_AGENT__SERVER__URL", p404.as_str())])
        .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert_eq!(h.pending().len(), 2, "3 records in batches of 2, kept");
    assert!(h.rejected().is_empty());
    let evidence_posts = log404
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/v1/evidence")
        .count();
    assert_eq!(evidence_posts, 1, "the pass stopped at the first answer");

    // The server's own typed verdict: rejected.
    let (p400, _) = proxy(|_| {
        Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"error":{"code":"invalid_record","message":"records[0].kind: not in the catalog"}}"#,
            ))
            .unwrap()
    })
    .await;
    let run = h
        .once(&cfg, &[("AIMS_AGENT__SERVER__URL", p400.as_str())])
        .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(h.pending().is_empty());
    assert_eq!(h.rejected().len(), 2);

    let list = spool_cmd(&cfg, "list");
    assert!(list.status.success(), "{list:?}");
    let out = String::from_utf8_lossy(&list.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("rejected ")).count(),
        2,
        "{out}"
    );
    assert!(out.contains("invalid_record"), "{out}");
    assert!(
        out.contains("0 pending batches") && out.contains("2 rejected batches"),
        "{out}"
    );

    let retry = spool_cmd(&cfg, "retry");
    assert!(retry.status.success(), "{retry:?}");
    let out = String::from_utf8_lossy(&retry.stdout);
    assert!(out.starts_with("moved 2 rejected batches back"), "{out}");
    assert_eq!(h.pending().len(), 2);
    assert!(h.rejected().is_empty());

    // The real server: everything delivered.
    let run = h.once(&cfg, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("shipped 3 records"), "{}", run.stderr);
    assert!(h.pending().is_empty());
    assert_eq!(h.ledger_size().await, size_before + 3);
}

fn spool_cmd(cfg: &Path, action: &str) -> std::process::Output {
    Command::new(bin("aims-agent").unwrap())
        .args(["spool", action, "--config"])
        .arg(cfg)
        .output()
        .unwrap()
}

/// Issue 18, A1: the token and the evidence reached another host through a redirect chain. A
/// server URL that redirects (a moved server, a hostile proxy) gets one request; the target of
/// the redirect gets none, the batches stay, and the run says where it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_a1_once_sends_nothing_to_a_redirect_target() {
    let h = Harness::start();
    let (b, b_log) = proxy(|_| {
        Response::builder()
            .status(307)
            .header("location", "/again")
            .body(Body::empty())
            .unwrap()
    })
    .await;
    let target = b.clone();
    let (a, a_log) = proxy(move |path| {
        Response::builder()
            .status(307)
            .header("location", format!("{target}{path}"))
            .body(Body::empty())
            .unwrap()
    })
    .await;
    let cfg = h.config("", &[dir_source(&h.path("data"))]);
    let run = h
        .once(&cfg, &[("AIMS_AGENT__SERVER__URL", a.as_str())])
        .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("redirect to {b}/v1/evidence not followed")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&h.token), "{}", run.stderr);
    assert_eq!(h.pending().len(), 2);
    assert!(
        b_log.lock().unwrap().is_empty(),
        "the redirect target saw {:?}",
        b_log.lock().unwrap()
    );
    assert!(!a_log.lock().unwrap().is_empty());
}

/// Issue 18, A5: `once` had no overall deadline (a source trickling one byte every 5 s). With
/// `poll_timeout_secs: 2` the stalled source is abandoned and reported, the other source ships,
/// and `once` exits 1 promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_a5_once_has_a_per_source_deadline() {
    let h = Harness::start();
    let fake = FakeMlflow::start().await;
    fake.set_fault(Fault::TrickleSearch(5000));
    let cfg = h.config(
        "poll_timeout_secs: 2\n",
        &[mlflow_source(&fake.url), dir_source(&h.path("data"))],
    );
    let started = Instant::now();
    let run = h.once(&cfg, &[]).await;
    let took = started.elapsed();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(took < Duration::from_secs(30), "{took:?}");
    let line = summary(&run, "registry");
    assert!(line.contains("poll_timeout_secs (2 s)"), "{line}");
    assert!(
        summary(&run, "reports").contains("3 shipped"),
        "{}",
        run.stderr
    );
    assert_eq!(h.source_health("registry").await["status"], "failing");
}

/// Issue 18, L (config): the agent token appeared on a TOML syntax error. `validate` (and every
/// command loading the file) prints the error without it.
#[test]
fn issue_18_l_config_syntax_error_does_not_print_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let token = "aims_agent_5ecret_t0ken_value";
    let cfg = tmp.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\nspool_dir = \"{}\"\n[agent]\nid = \"a\"\n[server]\n\
             url = \"http://127.0.0.1:1\"\ntoken = \"{token}\n",
            tmp.path().join("state").display()
        ),
    )
    .unwrap();
    for args in [&["validate"][..], &["once"][..], &["spool", "list"][..]] {
        let out = Command::new(bin("aims-agent").unwrap())
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("TOML parse error"), "{stderr}");
        assert!(
            !stderr.contains(token),
            "{args:?} printed the token: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(token));
    }
}
