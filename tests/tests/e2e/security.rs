//! Issue 18, the server's HTTP surface, through the real `aims-server` binary: connection limits
//! and timeouts (M2), the dashboard's redirect target (M3), which credential each route accepts
//! and the forms' cross-site checks (M7), sessions instead of tokens in cookies (M8), agent token
//! binding by default and the `systems` scope (M4), and the low-severity rows: cookie attribute
//! injection, tokens in debug logs, `/metrics` behind a token, security headers, token CLI usage
//! errors. Each test is named after its row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aims_e2e::{ServerProcess, bin, create_token_with, make_certs};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Starts a server on SQLite in `dir` with these settings (YAML) and extra environment.
fn start(dir: &Path, settings: &str, envs: &[(&str, &str)]) -> ServerProcess {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("server.yaml");
    std::fs::write(&cfg, settings).unwrap();
    let database = format!("sqlite://{}", dir.join("aims.db").display());
    let cfg = cfg.display().to_string();
    ServerProcess::start_with_env(
        &dir.join("run"),
        &database,
        "127.0.0.1:0",
        &["--config", &cfg],
        envs,
    )
    .unwrap()
}

fn addr(server: &ServerProcess) -> String {
    server
        .url
        .strip_prefix("http://")
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

/// A URL-encoded form body, as a browser sends the dashboard's forms.
trait FormExt {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self {
        let url = reqwest::Url::parse_with_params("http://x/", pairs).unwrap();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(url.query().unwrap_or("").to_owned())
    }
}

/// A client that does not follow redirects (the tests look at them).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One request on a fresh connection, written as given; the whole answer (the server closes).
fn raw(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until the server closes `s` (EOF or reset), returning how long that took; panics when
/// it is still open after `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let t = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server kept the connection open for {limit:?}")
            }
            Err(_) => return t.elapsed(), // reset
        }
        assert!(t.elapsed() < limit, "still open after {limit:?}");
    }
}

fn record(agent: &str, system: &str, path: &str) -> Value {
    let observed = chrono::Utc::now() - chrono::Duration::minutes(1);
    json!({
        "v": 1, "agent": agent, "source": {"id": "repo", "type": "git"},
        "locator": format!("git+file:///repo#systems/{system}/{path}"), "version": "abc123",
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "size": 0, "observed_at": observed.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "system": system, "kind": "model_card"
    })
}

async fn ingest(url: &str, token: &str, records: &[Value]) -> (u16, Value) {
    let r = client()
        .post(format!("{url}/v1/evidence"))
        .bearer_auth(token)
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Signs in at `/login` as the dashboard's own form does; returns the session id.
async fn login(server: &ServerProcess, token: &str) -> String {
    let r = client()
        .post(format!("{}/login", server.url))
        .header("origin", &server.url)
        .header("sec-fetch-site", "same-origin")
        .form_of(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    session_from(&r).expect("a session cookie")
}

/// The `aims_session` value a response sets, if any.
fn session_from(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("aims_session="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .filter(|v| !v.is_empty())
}

async fn get_with_cookie(url: &str, session: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("cookie", format!("aims_session={session}"))
        .send()
        .await
        .unwrap()
}

/// `aims-server token …` with the database of `server`: exit code and stderr.
fn token_cli(server: &ServerProcess, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin("aims-server").unwrap())
        .arg("token")
        .args(args)
        .args(["--database", &server.database])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// M2: with small limits, hundreds of silent and slow-header clients neither exhaust file
/// descriptors nor keep `/healthz` from answering at once; every slow client is cut, idle
/// keep-alive connections are closed after the idle timeout, and the server says it hit its cap.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m2_slow_and_idle_clients_cannot_exhaust_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(
        tmp.path(),
        "http: { max_connections: 20, header_timeout_secs: 2, idle_timeout_secs: 2, body_timeout_secs: 2 }\n",
        &[],
    );
    let addr = addr(&server);
    let pid = server.pid();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    assert!(
        raw(
            &addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ends_with("ok")
    );
    let baseline = fds();

    // A lone slow-header client is cut at the header timeout.
    let mut lone = TcpStream::connect(&addr).unwrap();
    lone.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let took = closed_within(&mut lone, Duration::from_secs(6));
    assert!(
        took >= Duration::from_millis(1500),
        "cut too early: {took:?}"
    );

    // An idle keep-alive connection is closed after the idle timeout.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"ok") {
        let n = idle.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    let took = closed_within(&mut idle, Duration::from_secs(6));
    assert!(
        took >= Duration::from_millis(1500),
        "idle cut too early: {took:?}"
    );

    // Hundreds of silent and slow-header clients, far over the cap of 20.
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(&addr).unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
        }
        slow.push(s);
    }
    let opened = Instant::now();
    for _ in 0..5 {
        let t = Instant::now();
        let answer = raw(
            &addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "/healthz took {:?} while slow clients held connections",
            t.elapsed()
        );
        let now = fds();
        assert!(
            now <= baseline + 20 + 8,
            "{now} descriptors open (baseline {baseline}, cap 20)"
        );
    }
    // Every slow client is cut (evicted to make room, or at the header timeout).
    for s in &mut slow {
        let left = Duration::from_secs(6).saturating_sub(opened.elapsed());
        closed_within(s, left.max(Duration::from_millis(100)));
    }
    // The client sees the close when the server shuts the socket down; the descriptor itself
    // is released a moment later, when the connection task ends. Wait for that, boundedly.
    let released = Instant::now() + Duration::from_secs(3);
    while fds() > baseline + 3 && Instant::now() < released {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = fds();
    assert!(
        left <= baseline + 3,
        "descriptors released: {left} open, baseline {baseline}"
    );
    let logs = server.logs();
    assert!(logs.contains("connection limit reached"), "{logs}");
    assert!(
        raw(
            &addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ends_with("ok")
    );
}

/// M2: a request body that does not arrive within the body timeout is answered 408 (a JSON
/// error) and the connection closed; a busy upload is not evicted by slow clients at the cap.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m2_slow_request_body_gets_408() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(
        tmp.path(),
        "http: { max_connections: 8, header_timeout_secs: 5, idle_timeout_secs: 5, body_timeout_secs: 2 }\n",
        &[],
    );
    let addr = addr(&server);
    let agent = server.token("agent", "a1").unwrap();
    let mut upload = TcpStream::connect(&addr).unwrap();
    upload
        .write_all(
            format!(
                "POST /v1/evidence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"records\":"
            )
            .as_bytes(),
        )
        .unwrap();
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // Slow clients fill the cap meanwhile; the busy upload is not the one evicted.
    let silent: Vec<_> = (0..30)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    upload
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = upload.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(
        t.elapsed() >= Duration::from_millis(1500) && t.elapsed() < Duration::from_secs(6),
        "answered after {:?}",
        t.elapsed()
    );
    drop(silent);
}

/// M2: a graceful stop does not wait for connections with no request under way (hyper alone
/// would wait for a fresh connection's first request), and a request in flight still finishes.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m2_shutdown_does_not_wait_for_silent_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = start(
        tmp.path(),
        "http: { header_timeout_secs: 30, idle_timeout_secs: 600 }\n",
        &[],
    );
    let addr = addr(&server);
    let silent: Vec<_> = (0..5).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A request in flight: head and half its body sent before the stop, the rest after.
    let agent = server.token("agent", "a1").unwrap();
    let body = serde_json::to_vec(&json!({"records": [record("a1", "fraud", "model/README.md")]}))
        .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut inflight = TcpStream::connect(&addr).unwrap();
    inflight
        .write_all(
            format!(
                "POST /v1/evidence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    inflight.write_all(first).unwrap();
    let rest = rest.to_vec();
    let finisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        inflight.write_all(&rest).unwrap();
        inflight
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = inflight.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    server.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stopping took {:?} with idle connections open",
        t.elapsed()
    );
    let answer = finisher.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request finished: {answer}"
    );
    assert!(server.logs().contains("shutting down"));
    drop(silent);
}

/// M3: `next` is only ever a path on this site; every hostile value falls back to `/`.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m3_open_redirect() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let viewer = server.token("viewer", "lead").unwrap();
    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
    };
    // The reported request, byte for byte.
    let r = client()
        .get(format!(
            "{}/?token={viewer}&next=/%09/evil.example",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r).as_deref(), Some("/"));
    for hostile in [
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\r\n/evil.example",
        "/\r\nSet-Cookie: x=y",
        " //evil.example",
        "https://evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "/.//evil.example",
        "/x/..//evil.example",
    ] {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/", server.url),
            &[("token", viewer.as_str()), ("next", hostile)],
        )
        .unwrap();
        let r = client().get(url).send().await.unwrap();
        assert_eq!(r.status(), 303, "{hostile:?}");
        assert_eq!(location(&r).as_deref(), Some("/"), "{hostile:?}");
        assert!(session_from(&r).is_some(), "{hostile:?}: still signed in");
    }
    let url = reqwest::Url::parse_with_params(
        &format!("{}/", server.url),
        &[("token", viewer.as_str()), ("next", "/systems/fraud?x=1")],
    )
    .unwrap();
    let r = client().get(url).send().await.unwrap();
    assert_eq!(location(&r).as_deref(), Some("/systems/fraud?x=1"));
}

/// M7: the session cookie never authenticates a write; the sign-in and sign-out forms refuse
/// other sites and other content types.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m7_cookie_cannot_write_and_forms_refuse_other_sites() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let admin = server.token("admin", "root").unwrap();
    let session = login(&server, &admin).await;
    let body = serde_json::to_vec(&json!({"records": [record("a1", "fraud", "model/README.md")]}))
        .unwrap();
    for (path, ct) in [
        ("/v1/evidence", None),
        ("/v1/evidence", Some("application/json")),
        ("/v1/confirmations", Some("application/json")),
        ("/v1/heartbeats", Some("application/json")),
    ] {
        let mut req = client()
            .post(format!("{}{path}", server.url))
            .header("cookie", format!("aims_session={session}"))
            .header("origin", "http://evil.example")
            .body(body.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} with a cookie only");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("Bearer"),
            "{v}"
        );
    }
    // The cookie still reads, and the bearer header still writes.
    let r = get_with_cookie(&format!("{}/v1/systems", server.url), &session).await;
    assert_eq!(r.status(), 200);
    let (s, v) = ingest(
        &server.url,
        &admin,
        &[record("a1", "fraud", "model/README.md")],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // The sign-in form: another site, a cross-site fetch, a wrong content type.
    let viewer = server.token("viewer", "lead").unwrap();
    for (headers, want) in [
        (vec![("origin", "http://evil.example")], 403),
        (vec![("origin", "null")], 403),
        (vec![("sec-fetch-site", "cross-site")], 403),
        (vec![("sec-fetch-site", "same-site")], 403),
    ] {
        let mut req = client()
            .post(format!("{}/login", server.url))
            .form_of(&[("token", viewer.as_str())]);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), want, "{headers:?}");
        assert!(session_from(&r).is_none(), "{headers:?}: no session");
    }
    for ct in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json",
    ] {
        let r = client()
            .post(format!("{}/login", server.url))
            .header("origin", &server.url)
            .header("content-type", ct)
            .body(format!("token={viewer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{ct}");
        assert!(session_from(&r).is_none(), "{ct}: no session");
    }
    // A sign-in link followed from another site does not sign in.
    let r = client()
        .get(format!("{}/?token={viewer}", server.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(session_from(&r).is_none());

    // Sign-out: not from another site, and never by a GET.
    let r = client()
        .post(format!("{}/logout", server.url))
        .header("cookie", format!("aims_session={session}"))
        .header("origin", "http://evil.example")
        .form_of(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = get_with_cookie(&format!("{}/logout", server.url), &session).await;
    assert_eq!(r.status(), 200, "GET /logout only shows the button");
    let r = get_with_cookie(&format!("{}/", server.url), &session).await;
    assert_eq!(r.status(), 200, "the session survived both");
}

/// M8 and L (cookie): the cookie holds a random session id, never the token; sessions end on
/// sign-out and when their token is revoked; nothing a client sends reaches `Set-Cookie`.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m8_sessions_not_tokens_in_cookies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let viewer = server.token("viewer", "lead").unwrap();

    let r = client()
        .post(format!("{}/login", server.url))
        .header("origin", &server.url)
        .form_of(&[("token", viewer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = session_from(&r).unwrap();
    assert_eq!(session.len(), 43, "{cookie}");
    assert!(!cookie.contains(&viewer) && session != viewer, "{cookie}");
    for attr in [
        "; Path=/",
        "; HttpOnly",
        "; SameSite=Strict",
        "; Max-Age=43200",
    ] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let page = get_with_cookie(&format!("{}/", server.url), &session).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("No evidence yet"));
    // The old cookie that held the token itself means nothing now.
    let r = client()
        .get(format!("{}/", server.url))
        .header("cookie", format!("aims_token={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");

    // Sign-out deletes the session.
    let r = client()
        .post(format!("{}/logout", server.url))
        .header("cookie", format!("aims_session={session}"))
        .header("origin", &server.url)
        .form_of(&[("x", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("aims_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        get_with_cookie(&format!("{}/", server.url), &session)
            .await
            .status(),
        401
    );

    // Revoking the token by name ends its sessions.
    let second = login(&server, &viewer).await;
    assert_eq!(
        get_with_cookie(&format!("{}/v1/systems", server.url), &second)
            .await
            .status(),
        200
    );
    let (code, err) = token_cli(&server, &["revoke", "--name", "lead"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 dashboard session"), "{err}");
    assert_eq!(
        get_with_cookie(&format!("{}/", server.url), &second)
            .await
            .status(),
        401
    );
    assert_eq!(
        get_with_cookie(&format!("{}/v1/systems", server.url), &second)
            .await
            .status(),
        401
    );

    // `/?token=` starts a session the same way; an agent token cannot.
    let viewer2 = server.token("viewer", "lead2").unwrap();
    let r = client()
        .get(format!(
            "{}/?token={viewer2}&next=/systems/fraud",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/systems/fraud");
    let s3 = session_from(&r).unwrap();
    assert_ne!(s3, viewer2);
    let agent = server.token("agent", "a1").unwrap();
    let r = client()
        .get(format!("{}/?token={agent}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(session_from(&r).is_none());
}

/// L (cookie): `?token=` is never written into `Set-Cookie`: attribute injection gets the
/// sign-in page and no cookie, whatever precedes the `;`.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_l_cookie_attribute_injection() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let viewer = server.token("viewer", "lead").unwrap();
    for token in [
        "x;%20Domain=evil".to_owned(),
        format!("{viewer};%20Domain=evil.example"),
    ] {
        let r = client()
            .get(format!("{}/?token={token}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{token}");
        assert!(r.headers().get("set-cookie").is_none(), "{token}");
    }
}

/// M8 under TLS: the session cookie is `Secure` with the `__Host-` prefix, and every response
/// carries HSTS.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m8_tls_cookie_is_secure_and_hsts_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs).unwrap();
    let server = start(
        &tmp.path().join("server"),
        &format!(
            "tls:\n  cert: \"{}\"\n  key: \"{}\"\n",
            certs.join("server.pem").display(),
            certs.join("server.key").display()
        ),
        &[],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let viewer = server.token("viewer", "lead").unwrap();
    let pem = std::fs::read(certs.join("ca.pem")).unwrap();
    let tls = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = tls
        .post(format!("{}/login", server.url))
        .header("origin", &server.url)
        .form_of(&[("token", viewer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-aims_session="), "{cookie}");
    for attr in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="),
    );
    let session = cookie
        .strip_prefix("__Host-aims_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let page = tls
        .get(format!("{}/", server.url))
        .header("cookie", format!("__Host-aims_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("strict-transport-security"));
}

/// L (log): with `RUST_LOG=debug` the request spans show the query with the token redacted, and
/// neither the token nor the session id reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_l_log_has_no_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[("RUST_LOG", "debug")]);
    let viewer = server.token("viewer", "lead").unwrap();
    let r = client()
        .get(format!("{}/?token={viewer}&next=/systems/x", server.url))
        .send()
        .await
        .unwrap();
    let session = session_from(&r).unwrap();
    let r = client()
        .get(format!("{}/?%74oken={viewer}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "serde decodes the name: still a sign-in");
    login(&server, &viewer).await;
    get_with_cookie(&format!("{}/v1/systems", server.url), &session).await;
    client()
        .get(format!("{}/v1/systems?access_token={viewer}", server.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let logs = server.logs();
    assert!(
        logs.contains("[redacted]"),
        "debug request spans are on:\n{logs}"
    );
    assert!(!logs.contains(&viewer), "the token is in the log:\n{logs}");
    assert!(
        !logs.contains(&session),
        "the session id is in the log:\n{logs}"
    );
}

/// L (metrics): `/metrics` needs a token of any role unless `metrics_public: true`.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_l_metrics_need_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(&tmp.path().join("closed"), "", &[]);
    let url = format!("{}/metrics", server.url);
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    for role in ["agent", "viewer", "auditor", "admin"] {
        let t = server.token(role, &format!("m-{role}")).unwrap();
        let r = client().get(&url).bearer_auth(&t).send().await.unwrap();
        assert_eq!(r.status(), 200, "{role}");
        assert!(r.text().await.unwrap().contains("aims_ledger_size"));
    }
    let public = start(&tmp.path().join("open"), "metrics_public: true\n", &[]);
    let r = client()
        .get(format!("{}/metrics", public.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// L (headers): pages carry a CSP that allows exactly their stylesheet, no framing, no
/// referrer to other sites, no sniffing; API responses are `no-store`.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_l_security_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let viewer = server.token("viewer", "lead").unwrap();
    let session = login(&server, &viewer).await;
    for path in ["/login", "/"] {
        let r = get_with_cookie(&format!("{}{path}", server.url), &session).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        for d in [
            "default-src 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "{path}: {d} in {csp}");
        }
        assert!(!csp.contains("script-src"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert!(!h.contains_key("strict-transport-security"), "plain HTTP");
        // The policy allows exactly the page's inline stylesheet.
        let html = r.text().await.unwrap();
        let css = html
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(css, _)| css)
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css));
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    }
    for path in ["/v1/systems", "/v1/findings", "/healthz", "/v1/nope"] {
        let r = client()
            .get(format!("{}{path}", server.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
}

/// L (tokens CLI): `--expires-days 0` is a usage error; revoking an unknown name fails naming it.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_l_token_cli_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let (code, err) = token_cli(
        &server,
        &[
            "create",
            "--role",
            "viewer",
            "--name",
            "v",
            "--expires-days",
            "0",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("expires-days"), "{err}");
    let (code, err) = token_cli(&server, &["revoke", "--name", "ghost"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no token named ghost"), "{err}");
    create_token_with(&server.database, "viewer", "v", &["--expires-days", "1"]).unwrap();
    let (code, err) = token_cli(&server, &["revoke", "--name", "v"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = token_cli(&server, &["revoke", "--name", "v"]);
    assert_eq!(code, Some(1), "revoked twice: {err}");
    assert!(err.contains("no token named v"), "{err}");
}

/// M4: an agent token is bound to its name as agent ID unless `--any-agent`; `--system` limits
/// the AI systems it may write; refusals are 403 naming the record, and store nothing.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m4_agent_tokens_are_bound_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), "", &[]);
    let viewer = server.token("viewer", "lead").unwrap();
    let systems = || async {
        let v: Value = client()
            .get(format!("{}/v1/systems", server.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["systems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // Bound by default to its name.
    let bound = server.token("agent", "cluster-a").unwrap();
    let (s, v) = ingest(
        &server.url,
        &bound,
        &[record("cluster-b", "fraud", "model/README.md")],
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("records[0]") && msg.contains("cluster-b"),
        "{v}"
    );
    assert!(systems().await.is_empty());
    let (s, v) = ingest(
        &server.url,
        &bound,
        &[record("cluster-a", "fraud", "model/README.md")],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // `--any-agent` opts out, explicitly.
    let fleet = create_token_with(&server.database, "agent", "fleet", &["--any-agent"]).unwrap();
    let (s, v) = ingest(
        &server.url,
        &fleet,
        &[record("whoever", "churn", "model/README.md")],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // `--system` limits the AI systems; the whole batch is refused, naming the record.
    let scoped = create_token_with(
        &server.database,
        "agent",
        "cluster-c",
        &["--system", "credit,pricing"],
    )
    .unwrap();
    let (s, v) = ingest(
        &server.url,
        &scoped,
        &[
            record("cluster-c", "credit", "model/README.md"),
            record("cluster-c", "fraud", "data/card.md"),
        ],
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("records[1]") && msg.contains("system \"fraud\""),
        "{v}"
    );
    let mut seen = systems().await;
    seen.sort();
    assert_eq!(seen, ["churn", "fraud"], "nothing of the refused batch");
    let (s, v) = ingest(
        &server.url,
        &scoped,
        &[
            record("cluster-c", "credit", "model/README.md"),
            record("cluster-c", "pricing", "model/README.md"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Flags that contradict each other or do not apply.
    let (code, err) = token_cli(
        &server,
        &[
            "create",
            "--role",
            "agent",
            "--name",
            "x",
            "--agent-id",
            "y",
            "--any-agent",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    for flags in [&["--any-agent"][..], &["--system", "fraud"]] {
        let mut args = vec!["create", "--role", "viewer", "--name", "v"];
        args.extend_from_slice(flags);
        let (code, err) = token_cli(&server, &args);
        assert_eq!(code, Some(1), "{flags:?}: {err}");
        assert!(err.contains("only apply to agent tokens"), "{err}");
    }
}

/// Issue 18 L (and issue 17): the export streams from a staging directory instead of building
/// the bundle in memory, and a client that leaves stops it: the server logs the cancellation,
/// never finishes that export, and removes its staging directory. A complete export leaves
/// nothing behind either.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_l_export_streams_and_stops_when_the_client_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let staging_root = tmp.path().join("tmp");
    std::fs::create_dir_all(&staging_root).unwrap();
    let server = start(
        tmp.path(),
        "{}\n",
        &[("TMPDIR", staging_root.to_str().unwrap())],
    );
    let agent = create_token_with(&server.database, "agent", "bulk", &[]).unwrap();
    let auditor = server.token("auditor", "audit").unwrap();
    // Enough entries that the export takes a while (pages of 1,000 are checked for the client).
    for batch in 0..20 {
        let records: Vec<Value> = (0..1000)
            .map(|i| record("bulk", "credit-scoring", &format!("r/{batch}/{i}.md")))
            .collect();
        let (status, body) = ingest(&server.url, &agent, &records).await;
        assert_eq!(status, 200, "{body}");
    }
    let leftovers = || {
        std::fs::read_dir(&staging_root)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("aims-export-"))
            .count()
    };

    // The status is assessed before the export (a reader's flush), so the export below spends
    // its time reading and staging the ledger.
    let r = client()
        .get(format!("{}/v1/systems", server.url))
        .bearer_auth(&auditor)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A client that asks and leaves.
    let request =
        format!("GET /v1/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auditor}\r\n\r\n");
    let mut s = TcpStream::connect(addr(&server)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.logs().contains("export started") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.logs().contains("export cancelled") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = server.logs();
    assert!(logs.contains("export cancelled"), "{logs}");
    assert!(!logs.contains("export streamed"), "{logs}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while leftovers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        leftovers(),
        0,
        "the cancelled export's staging directory is removed"
    );

    // A client that reads it all gets a bundle with every entry; nothing is left behind.
    let r = client()
        .get(format!("{}/v1/export", server.url))
        .bearer_auth(&auditor)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked"),
        "streamed, not buffered"
    );
    let body = r.bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&body[..]));
    let mut entries = 0usize;
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("log/entries.jsonl") {
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            entries = text.lines().count();
        }
    }
    assert!(entries >= 20_000, "{entries} entries");
    assert!(server.logs().contains("export streamed"));
    assert_eq!(leftovers(), 0);
}
