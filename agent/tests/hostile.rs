//! Issue 18, agent side: the shipper, the poll deadline and the spool against hostile servers,
//! each a real HTTP server on 127.0.0.1:0 with small limits set here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aims_agent::config::AgentConfig;
use aims_agent::runner::run_once;
use aims_agent::shipper::RetryPolicy;
use aims_agent::spool::Spool;
use aims_model::wire::{HeartbeatRequest, SourceHeartbeat};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::Reply;
use futures_util::StreamExt as _;

const TOKEN: &str = "agent-token-s3cr3t";

/// One request a [`Recorder`] saw.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    authorization: Option<String>,
    body_len: usize,
}

type Responder = Arc<dyn Fn(&str) -> Response + Send + Sync>;

/// A server that records every request and answers with `respond(path)`.
#[derive(Clone)]
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start(respond: impl Fn(&str) -> Response + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let respond: Responder = Arc::new(respond);
        let log = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let respond = respond.clone();
                async move {
                    log.lock().unwrap().push(Seen {
                        method,
                        authorization: headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                        body_len: body.len(),
                    });
                    respond(uri.path())
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn redirect(status: u16, location: String) -> Response {
    Response::builder()
        .status(status)
        .header("location", location)
        .body(Body::empty())
        .unwrap()
}

/// A → B → B: A redirects every request to B, B redirects to itself. Returns (A, B).
async fn redirect_chain(status: u16) -> (Recorder, Recorder) {
    let b_url: Arc<Mutex<String>> = Arc::default();
    let b = {
        let b_url = b_url.clone();
        Recorder::start(move |path| {
            if path == "/final" {
                (StatusCode::OK, "{}").into_response()
            } else {
                redirect(status, format!("{}/final", b_url.lock().unwrap()))
            }
        })
        .await
    };
    *b_url.lock().unwrap() = b.url.clone();
    let target = b.url.clone();
    let a = Recorder::start(move |path| redirect(status, format!("{target}/hop{path}"))).await;
    (a, b)
}

/// Issue 18, A1: after a 302/307 to another host, that host's redirect to itself got the agent
/// token back, and with 307 the evidence body was re-posted there. The shipper's client (also the
/// heartbeat, confirmation and proof client) follows no redirect: B never sees a request, the
/// batch stays in the spool and the error names the Location.
#[tokio::test]
async fn issue_18_a1_shipper_follows_no_redirects() {
    for status in [302, 307, 308] {
        let (a, b) = redirect_chain(status).await;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 500).unwrap();
        spool.append("s", &common::records("s", 3)).unwrap();
        let s = common::shipper(&a.url, TOKEN, spool.clone(), common::fast_retry());
        let report = s.ship_pending().await.unwrap();
        assert_eq!(report.files_acked, 0);
        assert_eq!(report.files_remaining, 1, "the batch is kept");
        assert_eq!(report.files_rejected, 0);
        let err = report.errors.join("\n");
        assert!(
            err.contains(&format!("redirect to {}/hop/v1/evidence", b.url)),
            "{err}"
        );
        assert_eq!(
            a.seen().len(),
            1,
            "one request, not retried: {:?}",
            a.seen()
        );
        assert_eq!(
            a.seen()[0].authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );

        let beat = HeartbeatRequest {
            agent: "cluster-a".into(),
            sources: vec![SourceHeartbeat {
                source: aims_model::SourceRef {
                    id: "s".into(),
                    source_type: aims_model::SourceType::Git,
                },
                interval_secs: 60,
                polled_at: aims_model::Timestamp::now(),
                ok: true,
                error: None,
                listed: 1,
                records: 1,
            }],
        };
        let e = s.heartbeat(&beat).await.unwrap_err();
        assert!(
            matches!(e, aims_agent::shipper::CallError::Redirect(_)),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("redirect to") && e.contains(&b.url), "{e}");

        assert!(
            b.seen().is_empty(),
            "HTTP {status}: the other host saw {:?}",
            b.seen()
        );
        assert!(
            a.seen()
                .iter()
                .all(|r| r.method == Method::POST && r.body_len > 0),
            "{:?}",
            a.seen()
        );
    }
}

fn answer(status: u16, body: &str) -> Reply {
    Reply::Status(status, None, body.to_owned())
}

/// Issue 18, A3: one proxy 404/413 moved the whole pending spool to `rejected/` and nothing
/// re-sent it. Only aims-server's typed rejection of the batch rejects it; anything else keeps
/// the spool and stops the pass with an error. `Spool::retry_rejected` (`aims-agent spool
/// retry`) offers rejected batches again.
#[tokio::test]
async fn issue_18_a3_only_a_typed_rejection_rejects_a_batch() {
    for (status, body) in [
        (404, "<html><body>404 Not Found</body></html>"),
        (
            413,
            "<html><body>413 Request Entity Too Large</body></html>",
        ),
        (405, ""),
        (400, r#"{"message":"bad gateway config"}"#),
        (
            404,
            r#"{"error":{"code":"not_found","message":"no route"}}"#,
        ),
        (421, "misdirected"),
    ] {
        let (url, st) = common::spawn_server(vec![answer(status, body)]).await;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 2).unwrap();
        spool.append("s", &common::records("s", 30)).unwrap();
        let pending = spool.pending().unwrap();
        assert_eq!(pending.len(), 15);
        let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
            .ship_pending()
            .await
            .unwrap();
        assert_eq!(
            st.count(),
            1,
            "HTTP {status}: the pass stops at the first answer"
        );
        assert_eq!(report.files_rejected, 0, "HTTP {status}: {report:?}");
        assert_eq!(report.files_remaining, 15, "HTTP {status}");
        assert!(spool.rejected().unwrap().is_empty());
        assert_eq!(spool.pending().unwrap(), pending);
        assert!(!report.all_delivered());
        assert!(
            report.errors[0].contains(&format!("HTTP {status}")),
            "{:?}",
            report.errors
        );
        // The next pass (the proxy is fixed) delivers all 30 records.
        let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
            .ship_pending()
            .await
            .unwrap();
        assert!(report.all_delivered(), "{report:?}");
        assert_eq!(report.records_acked, 30);
    }

    // aims-server's own verdict rejects (only that batch), and `retry_rejected` re-offers it.
    let (url, _st) = common::spawn_server(vec![Reply::Status(
        413,
        None,
        r#"{"error":{"code":"payload_too_large","message":"request body exceeds the limit"}}"#
            .into(),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 2).unwrap();
    spool.append("s", &common::records("s", 4)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(report.files_rejected, 1);
    assert_eq!(report.files_acked, 1, "the next batch is still shipped");
    assert_eq!(spool.rejected().unwrap().len(), 1);
    let moved = spool.retry_rejected().unwrap();
    assert_eq!(moved.len(), 1);
    assert!(spool.rejected().unwrap().is_empty());
    assert!(
        std::fs::read_dir(spool.rejected_dir())
            .unwrap()
            .next()
            .is_none(),
        "the reason file went with it"
    );
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(report.records_acked, 2);
}

/// Issue 18, A4: a 3 GB acknowledgement took the agent to 9.2 GB. Answers are read up to a
/// bound (16 MiB by default, 64 KiB here) and a longer one is an error; the batch is kept.
#[tokio::test]
async fn issue_18_a4_acknowledgements_are_read_with_a_limit() {
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let server = Recorder::start(move |_| {
        // 64 MiB streamed in 64 KiB chunks, without a Content-Length.
        let counter = counter.clone();
        let chunks = futures_util::stream::iter(0..1024).map(move |_| {
            counter.fetch_add(64 * 1024, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 64 * 1024]))
        });
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from_stream(chunks))
            .unwrap()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 2)).unwrap();
    let retry = RetryPolicy {
        max_attempts: 2,
        ..common::fast_retry()
    };
    let report = common::shipper(&server.url, TOKEN, spool.clone(), retry)
        .with_max_response_bytes(64 * 1024)
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(report.files_acked, 0);
    assert_eq!(report.files_remaining, 1);
    assert!(
        report.errors[0].contains("longer than the 65536 bytes read"),
        "{:?}",
        report.errors
    );
    assert_eq!(server.seen().len(), 2, "retried within max_attempts");
    // The agent stopped reading long before the end of the 64 MiB answer.
    let streamed = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(streamed < 32 * 1024 * 1024, "{streamed} bytes pulled");

    // A declared Content-Length over the bound is refused before reading.
    let big = Recorder::start(|_| {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(vec![b' '; 256 * 1024]))
            .unwrap()
    })
    .await;
    let report = common::shipper(
        &big.url,
        TOKEN,
        spool.clone(),
        RetryPolicy {
            max_attempts: 1,
            ..common::fast_retry()
        },
    )
    .with_max_response_bytes(64 * 1024)
    .ship_pending()
    .await
    .unwrap();
    assert!(
        report.errors[0].contains("more than the 65536 bytes read"),
        "{:?}",
        report.errors
    );
    assert_eq!(spool.pending().unwrap().len(), 1);
}

/// Issue 18, A5: `retry-after: 900` three times held `once` for 45 minutes. Retry-After is
/// honoured up to `max_retry_after` (60 s by default, 200 ms here) and never past the deadline.
#[tokio::test]
async fn issue_18_a5_retry_after_is_capped_and_within_the_deadline() {
    let script = vec![Reply::Status(429, Some(900), String::new()); 3];
    let (url, st) = common::spawn_server(script).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    let started = Instant::now();
    let retry = RetryPolicy {
        max_retry_after: Duration::from_millis(200),
        ..common::fast_retry()
    };
    let report = common::shipper(&url, TOKEN, spool.clone(), retry)
        .ship_pending()
        .await
        .unwrap();
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(st.count(), 4);
    let t = st.times();
    assert!(
        t[1] - t[0] >= Duration::from_millis(200),
        "{:?}",
        t[1] - t[0]
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A capped wait that would still end past the deadline is not started.
    let (url, st) = common::spawn_server(vec![Reply::Status(503, Some(900), String::new())]).await;
    spool.append("s", &common::records("s", 1)).unwrap();
    let retry = RetryPolicy {
        deadline: Some(Duration::from_secs(2)),
        ..common::fast_retry()
    };
    let started = Instant::now();
    let report = common::shipper(&url, TOKEN, spool.clone(), retry)
        .ship_pending()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(st.count(), 1);
    assert_eq!(report.files_remaining, 1);
    assert!(report.errors[0].contains("deadline"), "{:?}", report.errors);
}

/// Issue 18, A5: `once` had no overall deadline. A source that never answers (a server that
/// accepts connections and says nothing) is abandoned at `poll_timeout_secs` (1 s here), reported
/// failing, and the other source ships.
#[tokio::test]
async fn issue_18_a5_poll_deadline_abandons_a_stalled_source() {
    let (url, st) = common::spawn_server(vec![]).await;
    // Accepts and holds every connection, answering nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let data = common::data_dir(tmp.path());
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "poll_timeout_secs: 1\n",
        &format!(
            "  - {{ id: stuck, type: mlflow, tracking_uri: '{silent_url}' }}\n\
             \x20 - {{ id: reports, type: dir, path: '{}', system: fraud }}\n",
            data.display()
        ),
    );
    let started = Instant::now();
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!report.success());
    let stuck = &report.sources[0];
    assert!(
        stuck.errors[0].contains("poll_timeout_secs (1 s)"),
        "{:?}",
        stuck.errors
    );
    assert!(!cfg.cursor_path("stuck").exists());
    let reports = &report.sources[1];
    assert!(reports.errors.is_empty(), "{reports:?}");
    assert_eq!(reports.shipped, 3);
    assert_eq!(st.count(), 2);
}

/// Issue 18, L (spool): the spool grew without bound while the server was down, and its files
/// were 0644. With `spool_max_bytes` reached, a poll's records are not written, its cursor does
/// not move (nothing is lost: a later poll collects them again), the source reports the error;
/// state files are 0600 and directories 0700.
#[tokio::test]
async fn issue_18_l_spool_is_capped_and_private() {
    let (url, st) = common::spawn_server(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = common::data_dir(tmp.path());
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "spool_max_bytes: 1048576\n",
        &format!(
            "  - {{ id: reports, type: dir, path: '{}', system: fraud }}\n",
            data.display()
        ),
    );
    // Batches left by an earlier run fill the spool: 1 MiB that the server cannot take (not a
    // batch file the server would accept: corrupt, so the shipper quarantines it).
    let spool_dir = cfg.spool_path();
    aims_fsutil::create_private_dir_all(&spool_dir).unwrap();
    std::fs::write(
        spool_dir.join("00000000000000000001-old.json"),
        vec![b'x'; 1024 * 1024],
    )
    .unwrap();

    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(!report.success());
    let s = &report.sources[0];
    assert_eq!(s.spooled, 0);
    assert!(s.errors[0].contains("spool full"), "{:?}", s.errors);
    assert!(!cfg.cursor_path("reports").exists(), "cursor not advanced");
    assert_eq!(st.count(), 0, "nothing to ship but the unreadable old file");
    assert_eq!(
        report.ship.files_rejected, 1,
        "the old file was quarantined"
    );

    // Room again: the next poll collects everything it could not write before.
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.sources[0].spooled, 3);
    assert_eq!(report.sources[0].shipped, 3);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for d in [
            cfg.spool_path(),
            cfg.spool_path().join("rejected"),
            cfg.spool_dir.join("cursors"),
            cfg.spool_dir.join("cache"),
        ] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&cfg.cursor_path("reports")), 0o600);
        assert_eq!(mode(&cfg.confirmed_path("reports")), 0o600);
        for e in std::fs::read_dir(cfg.spool_path().join("rejected")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "reason") {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
        // A batch the server did not take yet is 0600 too.
        let down = tempfile::tempdir().unwrap();
        let spool = Spool::open(down.path().join("spool"), 2).unwrap();
        let paths = spool.append("s", &common::records("s", 1)).unwrap();
        assert_eq!(mode(&paths[0]), 0o600);
        assert_eq!(mode(&down.path().join("spool")), 0o700);
    }
}

/// The spool's own bound and the `aims_agent_spool_full` gauge.
#[test]
fn issue_18_l_spool_full_is_all_or_nothing_and_reported() {
    let one = common::records("s", 1);
    let probe = tempfile::tempdir().unwrap();
    let probed = Spool::open(probe.path(), 1)
        .unwrap()
        .append("s", &one)
        .unwrap();
    let size = std::fs::metadata(&probed[0]).unwrap().len();
    // Room for two and a half batches of one record.
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open_with_limit(dir.path(), 1, Some(size * 5 / 2)).unwrap();
    let first = spool.append("s", &one).unwrap();
    assert!(aims_agent::metrics::render(&spool).contains("aims_agent_spool_full 0"));
    // Three more batches do not fit: none is written.
    let e = spool.append("s", &common::records("s", 3)).unwrap_err();
    assert!(e.to_string().starts_with("spool full"), "{e}");
    assert_eq!(spool.pending().unwrap().len(), 1, "all or nothing");
    assert!(spool.is_full());
    assert!(aims_agent::metrics::render(&spool).contains("aims_agent_spool_full 1"));
    // The oldest is kept; once acknowledged there is room again.
    spool.ack(&first[0]).unwrap();
    assert!(!spool.is_full());
    spool.append("s", &one).unwrap();
    assert!(aims_agent::metrics::render(&spool).contains("aims_agent_spool_full 0"));
}

/// Issue 18, L (config): a TOML syntax error on the token's line printed the token (the toml
/// crate quotes the offending line). Errors never echo the values of secret keys, whatever the
/// syntax and wherever the error points.
#[test]
fn issue_18_l_config_errors_do_not_echo_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "aims_live_9f8e7d6c5b4a";
    let cases: Vec<(&str, String)> = vec![
        // Unterminated string on the token line.
        (
            "agent.toml",
            format!(
                "version = 1\nspool_dir = \"/tmp/x\"\n[agent]\nid = \"a\"\n[server]\n\
                 url = \"http://127.0.0.1:1\"\ntoken = \"{secret}\n"
            ),
        ),
        // Missing quotes: the value itself is the syntax error.
        (
            "agent.toml",
            format!(
                "version = 1\nspool_dir = \"/tmp/x\"\n[agent]\nid = \"a\"\n[server]\n\
                 url = \"http://127.0.0.1:1\"\ntoken = {secret}\n"
            ),
        ),
        // A duplicate key on the token line.
        (
            "agent.toml",
            format!(
                "version = 1\nspool_dir = \"/tmp/x\"\n[agent]\nid = \"a\"\n[server]\n\
                 url = \"http://127.0.0.1:1\"\ntoken = \"{secret}\"\ntoken = \"{secret}\"\n"
            ),
        ),
        // A wrong type under a secret key.
        (
            "agent.yaml",
            format!(
                "version: 1\nspool_dir: /tmp/x\nagent: {{ id: a }}\n\
                 server: {{ url: 'http://127.0.0.1:1', token: {{ value: '{secret}' }} }}\n"
            ),
        ),
        // YAML flow mapping broken right after the token.
        (
            "agent.yaml",
            format!(
                "version: 1\nspool_dir: /tmp/x\nagent: {{ id: a }}\n\
                 server: {{ url: 'http://127.0.0.1:1', token: '{secret}' \n"
            ),
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let e = AgentConfig::load_with_env(&path, &HashMap::new())
            .err()
            .unwrap_or_else(|| panic!("{text} loaded"))
            .to_string();
        assert!(!e.contains(secret), "the token leaked: {e}");
        assert!(!e.contains("9f8e7d"), "part of the token leaked: {e}");
        assert!(e.contains(name), "{e}");
    }
    // From the environment too.
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "version = 1\nspool_dir = [\n").unwrap();
    let env: HashMap<String, String> =
        [("AIMS_AGENT__SERVER__TOKEN".to_owned(), secret.to_owned())]
            .into_iter()
            .collect();
    let e = AgentConfig::load_with_env(&path, &env)
        .unwrap_err()
        .to_string();
    assert!(!e.contains(secret), "{e}");
}
