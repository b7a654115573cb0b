//! The shipper against a real HTTP server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

mod common;

use std::time::{Duration, Instant};

use aims_agent::shipper::SendOutcome;
use aims_agent::spool::Spool;
use common::Reply;

const TOKEN: &str = "agent-token";

#[tokio::test]
async fn delivers_acks_and_deletes_with_bearer_token() {
    let (url, st) = common::spawn_server(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 2).unwrap();
    spool
        .append("ml-repo", &common::records("ml-repo", 3))
        .unwrap();
    let s = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry());
    let report = s.ship_pending().await.unwrap();
    assert_eq!(report.files_acked, 2);
    assert_eq!(report.records_acked, 3);
    assert_eq!(report.acked_by_source.get("ml-repo"), Some(&3));
    assert!(report.all_delivered(), "{report:?}");
    assert!(spool.pending().unwrap().is_empty());
    let reqs = st.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].1.as_deref(), Some("Bearer agent-token"));
    assert_eq!(reqs[0].2, 2, "oldest batch first");
}

#[tokio::test]
async fn retries_503_then_delivers() {
    let (url, st) = common::spawn_server(vec![Reply::Status(
        503,
        None,
        r#"{"error":{"code":"unavailable","message":"try later"}}"#.into(),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 2)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(st.count(), 2);
    assert_eq!(report.records_acked, 2);
    assert!(report.all_delivered());
    assert!(spool.pending().unwrap().is_empty());
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let (url, st) = common::spawn_server(vec![Reply::Status(429, Some(1), String::new())]).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    let started = Instant::now();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert!(report.all_delivered());
    assert_eq!(st.count(), 2, "exactly one retry, no hot loop");
    let t = st.times();
    assert!(t[1] - t[0] >= Duration::from_secs(1), "{:?}", t[1] - t[0]);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn gives_up_within_the_budget_and_keeps_the_batch() {
    let script = vec![Reply::Status(500, None, String::new()); 10];
    let (url, st) = common::spawn_server(script).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(st.count(), 4, "max_attempts bounds the retries");
    assert_eq!(report.files_remaining, 2);
    assert!(!report.all_delivered());
    assert_eq!(spool.pending().unwrap().len(), 2);
    // The gaps between attempts grow (backoff, not a hot loop).
    let t = st.times();
    assert!(t[1] - t[0] >= Duration::from_millis(10));
}

#[tokio::test]
async fn unreachable_server_is_retryable() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    let s = common::shipper(
        &format!("http://127.0.0.1:{port}"),
        TOKEN,
        spool.clone(),
        common::fast_retry(),
    );
    assert!(matches!(
        s.send(&common::records("s", 1)).await,
        SendOutcome::Retryable { .. }
    ));
    let report = s.ship_pending().await.unwrap();
    assert_eq!(report.files_remaining, 1);
}

#[tokio::test]
async fn rejects_400_into_rejected_with_reason() {
    let (url, st) = common::spawn_server(vec![Reply::Status(
        400,
        None,
        r#"{"error":{"code":"invalid_record","message":"records[0].kind: unknown kind"}}"#.into(),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    let paths = spool.append("s", &common::records("s", 2)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(st.count(), 1, "a 4xx is not retried");
    assert_eq!(report.files_rejected, 1);
    assert_eq!(report.records_rejected, 2);
    assert!(spool.pending().unwrap().is_empty());
    let name = paths[0].file_name().unwrap().to_str().unwrap();
    assert!(spool.rejected_dir().join(name).exists());
    let reason =
        std::fs::read_to_string(spool.rejected_dir().join(format!("{name}.reason"))).unwrap();
    assert!(reason.contains("HTTP 400"), "{reason}");
    assert!(reason.contains("unknown kind"), "{reason}");
}

#[tokio::test]
async fn unauthorized_keeps_the_batch() {
    let (url, st) = common::spawn_server(vec![Reply::Status(401, None, String::new())]).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(st.count(), 1, "shipping stops at the first 401");
    assert_eq!(report.files_remaining, 2);
    assert!(spool.rejected().unwrap().is_empty());
}

#[tokio::test]
async fn mismatched_ack_is_not_deleted() {
    let (url, st) = common::spawn_server(vec![Reply::BadAck]).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    let paths = spool.append("s", &common::records("s", 2)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(st.count(), 1);
    assert_eq!(report.files_acked, 0);
    assert_eq!(report.files_remaining, 1);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("names record"),
        "{:?}",
        report.errors
    );
    assert!(paths[0].exists());

    // The next pass (the server now answers correctly) delivers it.
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert!(report.all_delivered());
    assert!(!paths[0].exists());
}

#[tokio::test]
async fn corrupt_spool_file_is_quarantined_by_the_shipper() {
    let (url, st) = common::spawn_server(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    std::fs::write(dir.path().join("00000000000000000001-s.json"), b"{").unwrap();
    spool.append("s", &common::records("s", 1)).unwrap();
    let report = common::shipper(&url, TOKEN, spool.clone(), common::fast_retry())
        .ship_pending()
        .await
        .unwrap();
    assert_eq!(st.count(), 1);
    assert_eq!(report.files_acked, 1);
    assert_eq!(report.files_rejected, 1);
    assert_eq!(spool.rejected().unwrap().len(), 1);
}
