//! Issue 18, GitHub rows: the collector against recorded responses served over real HTTP
//! (`aims_collect_github::testkit`) turned hostile, and against small redirecting and
//! rate-limiting servers on 127.0.0.1:0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aims_collect::testkit::{catalog, poll_once};
use aims_collect::{CollectErrorKind, Collector, Cursor, GithubSource, SourceConfig};
use aims_collect_github::testkit::{FakeGithub, OWNER, REPO};
use aims_collect_github::{GithubCollector, Limits, build};
use aims_model::{RecordEvent, Timestamp};
use axum::body::Body;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::json;

const TOKEN: &str = "ghp_s3cr3tt0ken";

fn cfg(api_url: &str, token_file: Option<&Path>) -> GithubSource {
    GithubSource {
        id: "gh".into(),
        owner: OWNER.into(),
        repo: REPO.into(),
        git_ref: None,
        token_env: None,
        token_file: token_file.map(Path::to_path_buf),
        api_url: Some(api_url.into()),
        system: Some("fraud-scoring".into()),
        system_from_path: None,
        interval_secs: 300,
    }
}

fn collector(gh: &FakeGithub, cache: &Path) -> GithubCollector {
    build(&cfg(&gh.url, None), cache).unwrap()
}

fn repo(rest: &str) -> String {
    format!("/repos/{OWNER}/{REPO}/{rest}")
}

/// (path, authorization) of each request a [`server`] answered.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server recording (path, authorization) and answering `respond(path)`.
async fn server(respond: impl Fn(&str) -> Response + Send + Sync + 'static) -> (String, Log) {
    let log: Log = Arc::default();
    let respond = Arc::new(respond);
    let l = log.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
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

fn redirect(status: u16, location: &str) -> Response {
    Response::builder()
        .status(status)
        .header("location", location)
        .body(Body::empty())
        .unwrap()
}

/// Issue 18, A1: the GitHub token reached another host after a redirect to it and its redirect
/// to itself (tower-http's redirect layer re-sent the original headers). The collector follows
/// only redirects on its API's origin; B never sees a request.
#[tokio::test]
async fn issue_18_a1_github_token_stays_on_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let b_url: Arc<Mutex<String>> = Arc::default();
    let (b, b_log) = {
        let b_url = b_url.clone();
        server(move |_| redirect(307, &format!("{}/again", b_url.lock().unwrap()))).await
    };
    *b_url.lock().unwrap() = b.clone();
    for status in [301, 302, 307, 308] {
        let target = b.clone();
        let (a, a_log) = server(move |path| redirect(status, &format!("{target}/hop{path}"))).await;
        let c = build(&cfg(&a, Some(&token_file)), dir.path()).unwrap();
        let e = c.list().await.unwrap_err();
        assert_eq!(e.kind(), CollectErrorKind::Permanent);
        let e = e.to_string();
        assert!(e.contains(&format!("redirect to {b}/hop/repos/")), "{e}");
        assert!(!e.contains(TOKEN), "{e}");
        let a_log = a_log.lock().unwrap().clone();
        assert_eq!(a_log.len(), 1, "{a_log:?}");
        assert_eq!(a_log[0].1.as_deref(), Some(&*format!("Bearer {TOKEN}")));
    }
    assert!(
        b_log.lock().unwrap().is_empty(),
        "the other host saw {:?}",
        b_log.lock().unwrap()
    );

    // A renamed repository's 301 on the same origin is followed, with the token.
    let (same, same_log) = server(|path| {
        if path == "/repositories/7" {
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"default_branch":"main"}"#))
                .unwrap()
        } else {
            redirect(301, "/repositories/7")
        }
    })
    .await;
    let c = build(&cfg(&same, Some(&token_file)), dir.path()).unwrap();
    c.check().await.unwrap();
    let log = same_log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].0, "/repositories/7");
    assert!(
        log.iter()
            .all(|(_, a)| a.as_deref() == Some(&*format!("Bearer {TOKEN}")))
    );
}

/// Issue 18, A2 (GitHub): part of a listing failing must not read as removal. A remembered
/// deployment whose statuses 404 and branch protection the token could read before and cannot
/// now fail the listing; an expired workflow run keeps its approvals as last listed. Never-seen
/// protection that is unreadable is simply not listed.
#[tokio::test]
async fn issue_18_a2_github_partial_listings_are_not_removals() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let catalog = catalog();
    let rule = SourceConfig::Github(cfg(&gh.url, None))
        .system_rule()
        .unwrap();
    let first = poll_once(&c, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    assert!(first.stats.errors.is_empty(), "{:?}", first.stats.errors);
    let protection = first
        .records
        .iter()
        .find(|r| r.locator.ends_with("/branches/main/protection"))
        .expect("protection listed");
    assert_eq!(protection.event, RecordEvent::Observed);

    // Protection readable before, refused now: an error, not a gone.
    let key = repo("branches/main/protection");
    gh.set_status(
        &key,
        403,
        &json!({"message": "Resource not accessible by integration"}),
    );
    let e = c.list().await.unwrap_err().to_string();
    assert!(e.contains("readable before"), "{e}");

    // A fresh agent whose token never could read it: not listed, no error.
    let fresh_cache = tempfile::tempdir().unwrap();
    let fresh = collector(&gh, fresh_cache.path());
    let listing = fresh.list().await.unwrap();
    assert!(!listing.iter().any(|a| a.locator.ends_with("/protection")));
    gh.set_json(
        &key,
        &aims_collect_github::testkit::fixture_json("branch_protection_main.json").unwrap(),
    );

    // A listed deployment whose statuses vanish: an error.
    let statuses = repo("deployments/1870001001/statuses");
    let saved =
        aims_collect_github::testkit::fixture_json("deployment_statuses_1870001001.json").unwrap();
    gh.remove(&statuses);
    let e = c.list().await.unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    gh.set_json(&statuses, &saved);

    // An expired workflow run: its approvals stay as last listed.
    gh.remove(&repo("actions/runs/5432100020/approvals"));
    let again = poll_once(&c, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    assert!(again.stats.errors.is_empty(), "{:?}", again.stats.errors);
    assert!(
        again.records.iter().all(|r| r.event != RecordEvent::Gone),
        "{:?}",
        again.records
    );
    assert!(again.records.is_empty(), "{:?}", again.records);
}

/// Issue 18, A4 (GitHub): JSON answers are read up to a bound, and a blob served larger than the
/// tree said fails that file only.
#[tokio::test]
async fn issue_18_a4_github_answers_and_blobs_are_bounded() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let small = collector(&gh, cache.path()).with_limits(Limits {
        max_json_bytes: 512,
        ..Limits::default()
    });
    let e = small.list().await.unwrap_err().to_string();
    assert!(e.contains("at most 512 bytes"), "{e}");

    // notes.txt is 12 bytes in the tree; served as 8 MiB.
    gh.set_blob(
        "b10f51519960e0046e969d188e5ec0c57b343384",
        &vec![b'x'; 8 * 1024 * 1024],
    );
    let c = collector(&gh, cache.path());
    let rule = SourceConfig::Github(cfg(&gh.url, None))
        .system_rule()
        .unwrap();
    let out = poll_once(&c, &Cursor::new(), &catalog(), &rule, Timestamp::now()).await;
    assert_eq!(out.stats.errors.len(), 1, "{:?}", out.stats.errors);
    assert!(
        out.stats.errors[0].contains("notes.txt")
            && out.stats.errors[0].contains("more than the 12 bytes"),
        "{:?}",
        out.stats.errors
    );
    assert!(
        out.stats.bytes_hashed < 1024 * 1024,
        "{}",
        out.stats.bytes_hashed
    );
    assert!(!out.records.is_empty());
}

/// Issue 18, A5 (GitHub): `retry-after: 900` three times held a poll for 45 minutes. A wait
/// longer than the cap (60 s by default) is not started: the poll fails at once with a transient
/// error naming when to come back.
#[tokio::test]
async fn issue_18_a5_github_long_waits_are_not_started() {
    let (url, log) = server(|_| {
        Response::builder()
            .status(429)
            .header("retry-after", "900")
            .body(Body::from(r#"{"message":"secondary rate limit"}"#))
            .unwrap()
    })
    .await;
    let cache = tempfile::tempdir().unwrap();
    let c = build(&cfg(&url, None), cache.path()).unwrap();
    let started = Instant::now();
    let e = c.list().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), CollectErrorKind::Transient);
    assert!(e.to_string().contains("900 s"), "{e}");
    assert_eq!(log.lock().unwrap().len(), 1);
}
