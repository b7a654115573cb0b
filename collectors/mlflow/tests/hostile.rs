//! Issue 18, MLflow rows: the collector against a scriptable misbehaving MLflow REST server
//! (`aims_collect_mlflow::testkit::fake`) on 127.0.0.1:0, with small limits set here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::time::{Duration, Instant};

use aims_collect::{
    CollectError, Collector, Cursor, MlflowSource, PollContext, PollOutcome, SourceConfig,
};
use aims_collect_mlflow::api::ApiLimits;
use aims_collect_mlflow::testkit::fake::{EVAL, FakeMlflow, Fault};
use aims_collect_mlflow::{MlflowCollector, MlflowOptions, build};
use aims_model::{RecordEvent, Timestamp};

const TOKEN: &str = "mlflow-token-s3cr3t";

fn cfg(url: &str, token_file: Option<std::path::PathBuf>) -> MlflowSource {
    MlflowSource {
        id: "registry".into(),
        tracking_uri: url.into(),
        system: None,
        system_from_path: None,
        interval_secs: 300,
        token_env: None,
        token_file,
    }
}

fn collector(url: &str) -> MlflowCollector {
    build(&cfg(url, None)).unwrap()
}

async fn poll(c: &dyn Collector, cursor: &Cursor) -> Result<PollOutcome, CollectError> {
    let catalog = aims_collect::testkit::catalog();
    let rule = SourceConfig::Mlflow(cfg("http://x", None))
        .system_rule()
        .unwrap();
    let ctx = PollContext {
        agent_id: "test-agent",
        catalog: &catalog,
        system_rule: &rule,
        now: Timestamp::now(),
        max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
    };
    aims_collect::poll(c, cursor, &ctx).await
}

/// Issue 18, A2: a transient MLflow error (artifact listing 500/503/HTML, `runs/get` 403) wrote
/// false `gone` records, and the next healthy poll re-added them. Any failed part fails the
/// listing (so the engine keeps the cursor and emits nothing); only MLflow's typed
/// `RESOURCE_DOES_NOT_EXIST` is evidence of removal.
#[tokio::test]
async fn issue_18_a2_mlflow_failed_listing_is_never_evidence_of_removal() {
    let fake = FakeMlflow::start().await;
    let c = collector(&fake.url);
    let first = poll(&c, &Cursor::new()).await.unwrap();
    assert!(first.stats.errors.is_empty(), "{:?}", first.stats.errors);
    assert_eq!(
        first.records.len(),
        5,
        "version, alias, validation, two run files"
    );
    let cursor = first.cursor;

    for (fault, says) in [
        (Fault::ArtifactList503, "HTTP 503"),
        (Fault::ArtifactListHtml, "unexpected response body"),
        (Fault::RunsGet403, "HTTP 403"),
        (Fault::RunsGet404Html, "HTTP 404"),
    ] {
        fake.set_fault(fault.clone());
        let e = poll(&c, &cursor)
            .await
            .err()
            .unwrap_or_else(|| panic!("{fault:?}: the listing did not fail"));
        assert!(e.to_string().contains(says), "{fault:?}: {e}");
    }

    // Healthy again: nothing was reported gone, so nothing is re-added.
    fake.set_fault(Fault::None);
    let again = poll(&c, &cursor).await.unwrap();
    assert!(again.records.is_empty(), "{:?}", again.records);
    assert_eq!(again.stats.unchanged, 5);

    // The server's own word that the run is gone: its three artifacts are gone, once.
    fake.set_fault(Fault::RunGone);
    let gone = poll(&c, &cursor).await.unwrap();
    assert_eq!(gone.stats.gone, 3, "{:?}", gone.records);
    assert!(gone.records.iter().all(|r| r.event == RecordEvent::Gone));
    assert!(
        gone.records.iter().all(|r| r.locator.contains("/runs/r1/")),
        "{:?}",
        gone.records
    );
}

/// Issue 18, A1: the MLflow token reached another host after two redirects. Redirects are
/// followed only on the tracking server's origin; a redirect elsewhere fails the request, and
/// the other host never sees a request.
#[tokio::test]
async fn issue_18_a1_mlflow_token_stays_on_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let b = FakeMlflow::start().await;
    // B redirects to itself: the hop that gave the token back.
    b.set_fault(Fault::Redirect(307, format!("{}/again", b.url)));
    for status in [301, 302, 307, 308] {
        let a = FakeMlflow::start().await;
        a.set_fault(Fault::Redirect(status, format!("{}/hop", b.url)));
        let c = build(&cfg(&a.url, Some(token_file.clone()))).unwrap();
        let e = c.list().await.unwrap_err().to_string();
        assert!(
            e.contains(&format!("redirect to {}/hop/api/2.0/mlflow/", b.url)),
            "{e}"
        );
        assert!(!e.contains(TOKEN), "{e}");
        assert_eq!(a.log().len(), 1);
        assert_eq!(
            a.log()[0].authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
        // Artifact downloads go through the same client.
        let artifact = aims_collect::ArtifactRef::new(
            "models/fraud/runs/r1/eval.json",
            format!("{}runs/r1/artifacts/eval.json", c.locator_base()),
            "1:eval.json",
        );
        assert!(c.fetch(&artifact).await.is_err());
    }
    assert!(b.log().is_empty(), "the other host saw {:?}", b.log());

    // A redirect on the same origin is followed, with the token.
    let same = FakeMlflow::start().await;
    same.set_fault(Fault::RedirectSameOrigin);
    let c = build(&cfg(&same.url, Some(token_file))).unwrap();
    assert_eq!(c.list().await.unwrap().len(), 5);
    let log = same.log();
    assert!(log.iter().any(|s| s.path_and_query.starts_with("/moved/")));
    assert!(
        log.iter()
            .all(|s| s.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}")))
    );
}

/// Issue 18, A4: a 3 GB MLflow answer took the agent to 3.1 GB, and an artifact listed at 28
/// bytes and served as 2 GB was hashed whole. JSON answers are read up to a bound (32 MiB by
/// default, 64 KiB here); a download stops at its listed size and fails that artifact only.
#[tokio::test]
async fn issue_18_a4_mlflow_answers_and_downloads_are_bounded() {
    let fake = FakeMlflow::start().await;
    let c = collector(&fake.url).with_options(MlflowOptions {
        limits: ApiLimits {
            max_json_bytes: 64 * 1024,
            ..ApiLimits::default()
        },
        ..MlflowOptions::default()
    });
    fake.set_fault(Fault::HugeSearch(256 * 1024));
    let e = c.list().await.unwrap_err().to_string();
    assert!(e.contains("larger than 65536 bytes"), "{e}");

    fake.set_fault(Fault::OversizeArtifact(10 * 1024 * 1024));
    let out = poll(&c, &Cursor::new()).await.unwrap();
    assert_eq!(out.records.len(), 4, "the other artifacts are collected");
    assert_eq!(out.stats.errors.len(), 1, "{:?}", out.stats.errors);
    let err = &out.stats.errors[0];
    assert!(err.contains("artifacts/eval.json"), "{err}");
    assert!(
        err.contains(&format!("more than the {} bytes", EVAL.len())),
        "{err}"
    );
    assert!(
        out.stats.bytes_hashed < 4096,
        "hashed {} bytes",
        out.stats.bytes_hashed
    );
    assert!(!out.cursor.entries.keys().any(|k| k.ends_with("eval.json")));
}

/// Issue 18, A5: an endless `next_page_token` kept `once` busy for 6,817 pages, and a slow
/// answer had no total limit. Pagination stops with an error (never a truncated listing) after
/// `max_pages` or at a repeated token; every request has a total timeout.
#[tokio::test]
async fn issue_18_a5_mlflow_pagination_and_requests_are_bounded() {
    let fake = FakeMlflow::start().await;
    let limits = ApiLimits {
        max_pages: 20,
        request_timeout: Duration::from_secs(1),
        ..ApiLimits::default()
    };
    let c = collector(&fake.url).with_options(MlflowOptions {
        limits,
        ..MlflowOptions::default()
    });

    fake.set_fault(Fault::EndlessPages);
    let e = c.list().await.unwrap_err().to_string();
    assert!(e.contains("more than 20 pages"), "{e}");
    let searches = fake
        .log()
        .iter()
        .filter(|s| s.path_and_query.contains("registered-models/search"))
        .count();
    assert_eq!(searches, 20);

    fake.set_fault(Fault::CyclingPages);
    let e = c.list().await.unwrap_err().to_string();
    assert!(e.contains("a page token repeated"), "{e}");

    // One byte every 300 ms: the 1 s total limit ends it.
    fake.set_fault(Fault::TrickleSearch(300));
    let started = Instant::now();
    let e = c.list().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(e.contains("registered-models/search"), "{e}");

    fake.set_fault(Fault::None);
    assert_eq!(c.list().await.unwrap().len(), 5);
}
