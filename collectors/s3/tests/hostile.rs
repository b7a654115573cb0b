//! Issue 18, S3 rows: the collector against small hostile S3 endpoints on 127.0.0.1:0 (a
//! redirecting proxy, a listing that never ends), with small limits set here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::sync::{Arc, Mutex};

use aims_collect::{ArtifactRef, Collector, S3Source};
use aims_collect_s3::S3Collector;
use aims_collect_s3::aws_config::{BehaviorVersion, SdkConfig};
use aims_collect_s3::aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

type Log = Arc<Mutex<Vec<(Method, String, Option<String>)>>>;

/// A server logging (method, path and query, authorization) and answering `respond`.
async fn server(respond: impl Fn(&Uri) -> Response + Send + Sync + 'static) -> (String, Log) {
    let log: Log = Arc::default();
    let respond = Arc::new(respond);
    let l = log.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let l = l.clone();
        let respond = respond.clone();
        async move {
            l.lock().unwrap().push((
                method,
                uri.path_and_query()
                    .map_or(String::new(), |p| p.to_string()),
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ));
            respond(&uri)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, log)
}

fn collector(endpoint: &str) -> S3Collector {
    collector_mode(endpoint, false)
}

fn collector_mode(endpoint: &str, versions: bool) -> S3Collector {
    let cfg = S3Source {
        id: "bucket".into(),
        bucket: "evidence".into(),
        prefix: String::new(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        force_path_style: true,
        versions,
        system: Some("fraud".into()),
        system_from_path: None,
        interval_secs: 300,
    };
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "s3cr3t-key",
            None,
            None,
            "static",
        )))
        .build();
    S3Collector::new(&cfg, &sdk).unwrap()
}

/// Issue 18, A1 (S3): credentials must go only to the configured endpoint. The SDK follows no
/// redirect: a 3xx from the endpoint (a redirecting proxy) fails the request, and the signed
/// request never reaches the `Location`.
#[tokio::test]
async fn issue_18_a1_s3_requests_are_not_redirected() {
    let (b, b_log) = server(|_| {
        Response::builder()
            .status(200)
            .body(Body::from("<ListBucketResult/>"))
            .unwrap()
    })
    .await;
    for status in [301, 302, 307, 308] {
        let target = b.clone();
        let (a, a_log) = server(move |uri| {
            Response::builder()
                .status(status)
                .header(
                    "location",
                    format!("{target}{}", uri.path_and_query().unwrap()),
                )
                .body(Body::empty())
                .unwrap()
        })
        .await;
        let c = collector(&a);
        let e = c.list().await.unwrap_err().to_string();
        assert!(e.contains("ListObjectsV2"), "{e}");
        assert!(!e.contains("s3cr3t-key"), "{e}");
        let mut a_ref = ArtifactRef::new("x.json", "s3://evidence/x.json", "abc");
        a_ref.extra.insert("key".into(), "x.json".into());
        a_ref.extra.insert("etag".into(), "abc".into());
        assert!(c.fetch(&a_ref).await.is_err());
        assert!(c.check().await.is_err());
        let a_log = a_log.lock().unwrap().clone();
        assert!(!a_log.is_empty());
        assert!(
            a_log.iter().all(|(_, _, auth)| auth.is_some()),
            "signed: {a_log:?}"
        );
    }
    assert!(
        b_log.lock().unwrap().is_empty(),
        "the other host saw {:?}",
        b_log.lock().unwrap()
    );
}

fn page(n: u64, next: &str) -> Response {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>evidence</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>{next}</NextContinuationToken><Contents><Key>k{n}.json</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;e{n}&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"#
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/xml")
        .body(Body::from(body))
        .unwrap()
}

fn token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("continuation-token=").map(str::to_owned))
}

/// Issue 18, A2/A5 (S3): a listing that never ends (a new continuation token every page, or
/// tokens that cycle) is an error after `max_pages` or at the repeated token, never a truncated
/// listing that would make the engine report the rest gone, and never an endless loop.
#[tokio::test]
async fn issue_18_a5_s3_listing_pages_are_bounded() {
    let counter = Arc::new(Mutex::new(0u64));
    let c2 = counter.clone();
    let (endless, log) = server(move |_| {
        let mut n = c2.lock().unwrap();
        *n += 1;
        page(*n, &format!("t{n}"))
    })
    .await;
    let e = collector(&endless)
        .with_max_pages(5)
        .list()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than 5 listing pages"), "{e}");
    assert_eq!(log.lock().unwrap().len(), 5);

    // t1 → t2 → t1: a cycle.
    let (cycling, log) = server(|uri| match token(uri).as_deref() {
        Some("t1") => page(2, "t2"),
        _ => page(1, "t1"),
    })
    .await;
    let e = collector(&cycling).list().await.unwrap_err().to_string();
    assert!(e.contains("repeated"), "{e}");
    assert_eq!(log.lock().unwrap().len(), 3);
}

fn xml(body: String) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/xml")
        .body(Body::from(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>{body}"#
        )))
        .unwrap()
}

/// Issue 18, A2 (S3): a listing whose entries lost their key (or, listing versions, their
/// IsLatest) used to skip them, which reads as their removal. Such a listing is an error.
#[tokio::test]
async fn issue_18_a2_s3_malformed_listing_is_an_error() {
    let (url, _) = server(|_| {
        xml(r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>evidence</Name><IsTruncated>false</IsTruncated><Contents><Key>a.json</Key><ETag>&quot;e1&quot;</ETag><Size>3</Size></Contents><Contents><ETag>&quot;e2&quot;</ETag><Size>3</Size></Contents></ListBucketResult>"#.into())
    })
    .await;
    let e = collector(&url).list().await.unwrap_err().to_string();
    assert!(e.contains("an object without a key"), "{e}");

    let (url, _) = server(|_| {
        xml(r#"<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>evidence</Name><IsTruncated>false</IsTruncated><Version><Key>a.json</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest><ETag>&quot;e1&quot;</ETag><Size>3</Size></Version><Version><Key>b.json</Key><VersionId>v2</VersionId><ETag>&quot;e2&quot;</ETag><Size>3</Size></Version></ListVersionsResult>"#.into())
    })
    .await;
    let e = collector_mode(&url, true)
        .list()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("a version without IsLatest"), "{e}");
}
