//! The s3 source against a real moto server (see `aims_collect_s3::testkit`): the shared compliance harness in
//! current-object and versions mode, plus the S3-specific behaviour (paging, prefix scoping,
//! directory markers, empty and large objects, If-Match, error classes, `build` and the
//! credential chain). Downloads are counted twice: by the testkit's `CountingCollector` and in
//! moto's own request log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::collections::BTreeMap;

use aims_collect::testkit::{
    CountingCollector, SourceFixture, assert_collector_compliance, catalog, poll_once,
};
use aims_collect::{CollectErrorKind, Collector, Cursor, SourceConfig, SystemRule};
use aims_collect_s3::aws_sdk_s3::Client;
use aims_collect_s3::aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use aims_collect_s3::testkit::{Moto, create_bucket, delete, pseudo_random, put};
use aims_collect_s3::{S3Error, build};
use aims_model::{ContentHash, RecordEvent, Timestamp};
use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

const VALIDATION: &[u8] = br#"{"kind":"validation_report","model":{"name":"fraud","version":"3"},"metrics":[{"name":"auc","value":0.91,"threshold":0.85,"direction":"min"}],"decision":"pass","evaluated_at":"2026-11-20T10:00:00Z"}"#;
const MODEL_CARD: &[u8] = b"---\nlicense: apache-2.0\nbase_model: bert-base-uncased\npipeline_tag: text-classification\n---\n# Fraud model\n";

fn rule_for(cfg: &aims_collect::S3Source) -> SystemRule {
    SourceConfig::S3(cfg.clone()).system_rule().unwrap()
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The objects of a bucket prefix as the tests wrote them, and the mutations the harness asks for.
struct BucketFixture {
    client: Client,
    bucket: String,
    prefix: String,
    objects: BTreeMap<String, Vec<u8>>,
}

impl BucketFixture {
    /// Three objects the system rule resolves, one it does not, one outside the prefix.
    async fn new(moto: &Moto, bucket: &str, prefix: &str, versioned: bool) -> Self {
        let client = moto.client();
        create_bucket(&client, bucket).await;
        if versioned {
            client
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        let mut f = Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            objects: BTreeMap::new(),
        };
        f.write("systems/fraud/validation.json", VALIDATION).await;
        f.write("systems/fraud/README.md", MODEL_CARD).await;
        f.write("systems/fraud/notes.txt", b"first notes\n").await;
        f.write("README.md", b"# bucket\n").await;
        put(
            &f.client,
            bucket,
            "elsewhere/systems/fraud/x.txt",
            b"not ours".to_vec(),
        )
        .await;
        f
    }

    async fn write(&mut self, path: &str, bytes: &[u8]) {
        let key = format!("{}{path}", self.prefix);
        put(&self.client, &self.bucket, &key, bytes.to_vec()).await;
        self.objects.insert(path.into(), bytes.to_vec());
    }
}

#[async_trait]
impl SourceFixture for BucketFixture {
    async fn change_one(&mut self) -> String {
        self.write("systems/fraud/notes.txt", b"second notes\n")
            .await;
        "systems/fraud/notes.txt".into()
    }

    async fn remove_one(&mut self) -> String {
        let path = "systems/fraud/README.md";
        delete(
            &self.client,
            &self.bucket,
            &format!("{}{path}", self.prefix),
        )
        .await;
        self.objects.remove(path);
        path.into()
    }

    async fn bytes(&self, path: &str) -> Option<Vec<u8>> {
        self.objects.get(path).cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_current_objects() {
    let moto = Moto::start();
    let mut fixture = BucketFixture::new(&moto, "compliance", "fraud-team/", false).await;
    let cfg = moto.source("compliance", "fraud-team/");
    let rule = rule_for(&cfg);
    assert_collector_compliance(|| Box::new(moto.collector(&cfg)), &mut fixture, &rule).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_versions_mode() {
    let moto = Moto::start();
    let mut fixture = BucketFixture::new(&moto, "versioned", "fraud-team/", true).await;
    let mut cfg = moto.source("versioned", "fraud-team/");
    cfg.versions = true;
    let rule = rule_for(&cfg);
    assert_collector_compliance(|| Box::new(moto.collector(&cfg)), &mut fixture, &rule).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_prefix_costs_list_requests_only() {
    let moto = Moto::start();
    let _fixture = BucketFixture::new(&moto, "quiet", "p/", false).await;
    let cfg = moto.source("quiet", "p/");
    let rule = rule_for(&cfg);
    let catalog = catalog();
    let c = moto.collector(&cfg);
    let first = poll_once(&c, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    assert_eq!(first.records.len(), 3);
    let (gets, lists) = (moto.object_gets("quiet"), moto.list_requests("quiet"));
    assert_eq!(gets, 3, "one download per resolved object");
    let before = c.requests();

    let second = poll_once(&c, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    assert!(second.records.is_empty());
    assert_eq!(second.stats.bytes_hashed, 0);
    let after = c.requests();
    assert_eq!(after.get, before.get, "no GetObject on an unchanged prefix");
    assert_eq!(after.list, before.list + 1, "one page");
    assert_eq!(moto.object_gets("quiet"), gets, "moto served no download");
    assert_eq!(
        moto.list_requests("quiet"),
        lists + 1,
        "moto served one listing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_with_continuation_tokens() {
    let moto = Moto::start();
    let client = moto.client();
    create_bucket(&client, "paged").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..120 {
        let client = client.clone();
        set.spawn(async move {
            let key = format!("many/systems/fraud/obj-{i:03}.txt");
            put(&client, "paged", &key, format!("object {i}\n")).await;
        });
    }
    for i in 0..3 {
        let client = client.clone();
        set.spawn(async move {
            put(&client, "paged", &format!("z-other/{i}.txt"), b"x".to_vec()).await;
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }

    let cfg = moto.source("paged", "many/");
    let s3 = moto.collector(&cfg).with_page_size(50);
    let lists_before = moto.list_requests("paged");
    let listing = s3.list().await.unwrap();
    assert_eq!(listing.len(), 120);
    assert_eq!(s3.requests().list, 3, "120 keys in pages of 50");
    assert_eq!(moto.list_requests("paged") - lists_before, 3);
    let mut paths: Vec<_> = listing.iter().map(|a| a.path.clone()).collect();
    paths.dedup();
    assert_eq!(paths.len(), 120, "no key listed twice");
    assert_eq!(paths[0], "systems/fraud/obj-000.txt");
    assert_eq!(paths[119], "systems/fraud/obj-119.txt");

    // Through the engine with the testkit's counting wrapper: 120 fetches, then none.
    let counting = CountingCollector::new(Box::new(moto.collector(&cfg).with_page_size(50)));
    let rule = rule_for(&cfg);
    let catalog = catalog();
    let first = poll_once(&counting, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    assert_eq!(first.records.len(), 120);
    assert_eq!(counting.fetches(), 120);
    let gets = moto.object_gets("paged");
    let second = poll_once(&counting, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    assert!(second.records.is_empty());
    assert_eq!(second.stats.unchanged, 120);
    assert_eq!(counting.fetches(), 120, "second poll fetches nothing");
    assert_eq!(moto.object_gets("paged"), gets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_large_objects_are_streamed_and_hashed() {
    let moto = Moto::start();
    let client = moto.client();
    create_bucket(&client, "sizes").await;
    let big = pseudo_random(20 * 1024 * 1024, 42);
    put(&client, "sizes", "systems/fraud/empty.json", Vec::new()).await;
    put(&client, "sizes", "systems/fraud/weights.bin", big.clone()).await;
    let cfg = moto.source("sizes", "");
    let c = moto.collector(&cfg);
    let out = poll_once(
        &c,
        &Cursor::new(),
        &catalog(),
        &rule_for(&cfg),
        Timestamp::now(),
    )
    .await;
    assert!(out.stats.errors.is_empty(), "{:?}", out.stats.errors);
    assert_eq!(out.records.len(), 2);
    let by_path = |p: &str| {
        out.records
            .iter()
            .find(|r| r.meta_str("path") == Some(p))
            .unwrap()
    };
    let empty = by_path("systems/fraud/empty.json");
    assert_eq!(empty.size, 0);
    assert_eq!(empty.sha256, ContentHash::of(b""));
    assert_eq!(
        empty.sha256.to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let large = by_path("systems/fraud/weights.bin");
    assert_eq!(large.size, big.len() as u64);
    assert_eq!(large.sha256.to_string(), sha_hex(&big));
    assert_eq!(
        large.metadata.get("parse_skipped"),
        Some(&Value::String("too large".into()))
    );
    assert_eq!(out.stats.bytes_hashed, big.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_scoping_paths_locators_and_metadata() {
    let moto = Moto::start();
    let client = moto.client();
    create_bucket(&client, "scoped").await;
    let etag = client
        .put_object()
        .bucket("scoped")
        .key("team-a/systems/fraud/validation.json")
        .body(VALIDATION.to_vec().into())
        .send()
        .await
        .unwrap()
        .e_tag
        .unwrap();
    put(&client, "scoped", "team-a/systems/fraud/dir/", Vec::new()).await; // directory marker
    put(
        &client,
        "scoped",
        "team-ab/systems/fraud/b.json",
        b"{}".to_vec(),
    )
    .await;
    put(
        &client,
        "scoped",
        "team-b/systems/fraud/c.json",
        b"{}".to_vec(),
    )
    .await;
    put(&client, "scoped", "root.json", b"{}".to_vec()).await;

    let cfg = moto.source("scoped", "team-a/");
    let c = moto.collector(&cfg);
    c.check().await.unwrap();
    let listing = c.list().await.unwrap();
    assert_eq!(listing.len(), 1, "{listing:?}");
    let a = &listing[0];
    assert_eq!(a.path, "systems/fraud/validation.json");
    assert_eq!(
        a.locator,
        "s3://scoped/team-a/systems/fraud/validation.json"
    );
    let bare = etag.trim_matches('"');
    assert_eq!(a.version, bare, "ETag without quotes");
    assert_eq!(a.size, Some(VALIDATION.len() as u64));
    let t = a.artifact_time.unwrap();
    assert!((Timestamp::now().unix_millis() - t.unix_millis()).abs() < 300_000);
    assert_eq!(a.extra["etag"], Value::String(bare.into()));
    assert_eq!(a.extra["last_modified"], Value::String(t.to_string()));
    assert_eq!(a.extra["storage_class"], Value::String("STANDARD".into()));
    assert!(a.extra.get("version_id").is_none());

    // The record carries the listing's metadata and the parsed validation report.
    let out = poll_once(
        &c,
        &Cursor::new(),
        &catalog(),
        &rule_for(&cfg),
        Timestamp::now(),
    )
    .await;
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0];
    assert_eq!(r.system, "fraud");
    assert_eq!(r.kind, "validation_report");
    assert_eq!(r.sha256.to_string(), sha_hex(VALIDATION));
    assert_eq!(r.metadata["etag"], Value::String(bare.into()));

    // Whole bucket: every object except the directory marker.
    let all = moto
        .collector(&moto.source("scoped", ""))
        .list()
        .await
        .unwrap();
    let keys: Vec<_> = all.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        keys,
        [
            "root.json",
            "team-a/systems/fraud/validation.json",
            "team-ab/systems/fraud/b.json",
            "team-b/systems/fraud/c.json"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_permanent_with_a_clear_message() {
    let moto = Moto::start();
    let cfg = moto.source("no-such-bucket", "x/");
    let c = moto.collector(&cfg);

    let e = c.list().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::Permanent, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("ListObjectsV2"), "{msg}");
    assert!(msg.contains("s3://no-such-bucket/x/"), "{msg}");
    assert!(msg.contains("NoSuchBucket"), "{msg}");

    let e = c.check().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::Permanent, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("HeadBucket s3://no-such-bucket"), "{msg}");
    assert!(msg.contains("404"), "{msg}");
    assert!(msg.contains("bucket does not exist"), "{msg}");

    // The poll fails as a whole (nothing can be diffed) with the same class.
    let rule = rule_for(&cfg);
    let catalog = catalog();
    let ctx = aims_collect::PollContext {
        agent_id: "test-agent",
        catalog: &catalog,
        system_rule: &rule,
        now: Timestamp::now(),
        max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
    };
    let e = aims_collect::poll(&c, &Cursor::new(), &ctx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::Permanent);
    // The S3 error is kept in the chain with its code.
    let inner = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<S3Error>())
        .unwrap();
    assert_eq!(inner.code(), Some("NoSuchBucket"));
    assert_eq!(inner.status(), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_errors_missing_key_and_changed_object() {
    let moto = Moto::start();
    let client = moto.client();
    create_bucket(&client, "races").await;
    put(&client, "races", "systems/fraud/a.txt", b"one".to_vec()).await;
    put(&client, "races", "systems/fraud/b.txt", b"bee".to_vec()).await;
    let cfg = moto.source("races", "");
    let c = moto.collector(&cfg);
    let listing = c.list().await.unwrap();
    let a = listing.iter().find(|x| x.path.ends_with("a.txt")).unwrap();
    let b = listing.iter().find(|x| x.path.ends_with("b.txt")).unwrap();

    // Deleted after listing → NotFound.
    delete(&client, "races", "systems/fraud/b.txt").await;
    let e = c.fetch(b).await.err().unwrap();
    assert_eq!(e.kind(), CollectErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("NoSuchKey"), "{e}");

    // Overwritten after listing → If-Match fails (transient), never the new bytes under the
    // old version token.
    put(&client, "races", "systems/fraud/a.txt", b"two".to_vec()).await;
    let e = c.fetch(a).await.err().unwrap();
    assert_eq!(e.kind(), CollectErrorKind::Transient, "{e}");
    assert!(e.to_string().contains("412"), "{e}");

    // Through the engine: reported, kept for the next cycle, which collects the new bytes.
    let rule = rule_for(&cfg);
    let catalog = catalog();
    let mut cursor = Cursor::new();
    let stale = vec![a.clone()];
    let racing = StaleListing {
        inner: &c,
        listing: stale,
    };
    let out = poll_once(&racing, &cursor, &catalog, &rule, Timestamp::now()).await;
    assert_eq!(out.stats.errors.len(), 1, "{:?}", out.stats.errors);
    assert!(out.records.is_empty());
    cursor = out.cursor;
    let out = poll_once(&c, &cursor, &catalog, &rule, Timestamp::now()).await;
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].sha256, ContentHash::of(b"two"));
}

/// A collector whose listing is frozen (as if the object changed right after `list`).
struct StaleListing<'a> {
    inner: &'a aims_collect_s3::S3Collector,
    listing: Vec<aims_collect::ArtifactRef>,
}

#[async_trait]
impl Collector for StaleListing<'_> {
    fn source(&self) -> &aims_model::SourceRef {
        self.inner.source()
    }
    async fn check(&self) -> Result<(), aims_collect::CollectError> {
        Ok(())
    }
    async fn list(&self) -> Result<Vec<aims_collect::ArtifactRef>, aims_collect::CollectError> {
        Ok(self.listing.clone())
    }
    async fn fetch(
        &self,
        a: &aims_collect::ArtifactRef,
    ) -> Result<aims_collect::ArtifactReader, aims_collect::CollectError> {
        self.inner.fetch(a).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_mode_lists_latest_versions_with_stable_locators() {
    let moto = Moto::start();
    let fixture = BucketFixture::new(&moto, "history", "", true).await;
    let client = &fixture.client;
    let v2 = client
        .put_object()
        .bucket("history")
        .key("systems/fraud/notes.txt")
        .body(b"second notes\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let v2_id = v2.version_id.clone().unwrap();
    let v2_etag = v2.e_tag.clone().unwrap();
    delete(client, "history", "systems/fraud/README.md").await; // latest = delete marker

    let mut cfg = moto.source("history", "");
    cfg.versions = true;
    let c = moto.collector(&cfg);
    let listing = c.list().await.unwrap();
    let mut paths: Vec<_> = listing.iter().map(|a| a.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "README.md",
            "elsewhere/systems/fraud/x.txt",
            "systems/fraud/notes.txt",
            "systems/fraud/validation.json"
        ],
        "latest versions only; the deleted key is absent"
    );
    let notes = listing
        .iter()
        .find(|a| a.path == "systems/fraud/notes.txt")
        .unwrap();
    assert_eq!(notes.locator, "s3://history/systems/fraud/notes.txt");
    assert_eq!(
        notes.version,
        format!("{}@{v2_id}", v2_etag.trim_matches('"'))
    );
    assert_eq!(notes.extra["version_id"], Value::String(v2_id.clone()));
    assert_eq!(
        notes.extra["versioned_locator"],
        Value::String(format!(
            "s3://history/systems/fraud/notes.txt?versionId={v2_id}"
        ))
    );
    let mut body = Vec::new();
    c.fetch(notes)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert_eq!(body, b"second notes\n");

    // A new version of a key → one record for the same locator, no gone record.
    let rule = rule_for(&cfg);
    let catalog = catalog();
    let first = poll_once(&c, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    put(
        client,
        "history",
        "systems/fraud/notes.txt",
        b"third notes\n".to_vec(),
    )
    .await;
    let second = poll_once(&c, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    assert_eq!(second.records.len(), 1, "{:?}", second.records);
    assert_eq!(second.records[0].event, RecordEvent::Observed);
    assert_eq!(second.records[0].locator, notes.locator);
    assert_eq!(second.records[0].sha256, ContentHash::of(b"third notes\n"));
    assert_ne!(second.records[0].version, notes.version);
}

/// `build` resolves credentials through the standard chain. Environment variables cannot be set
/// safely inside a multi-threaded test process, so the test re-runs itself as a child process
/// with a prepared environment (`AIMS_S3_CHILD_ENDPOINT` set) and checks the child's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_uses_the_standard_credential_chain() {
    const NAME: &str = "build_uses_the_standard_credential_chain";
    if let Ok(endpoint) = std::env::var("AIMS_S3_CHILD_ENDPOINT") {
        let cfg = aims_collect::S3Source {
            id: "chain".into(),
            bucket: "chain".into(),
            prefix: String::new(),
            region: None,
            endpoint: Some(endpoint),
            force_path_style: true,
            versions: false,
            system: Some("fraud".into()),
            system_from_path: None,
            interval_secs: 60,
        };
        let c = build(&cfg).await.unwrap();
        match std::env::var("AIMS_S3_CHILD_EXPECT").as_deref() {
            Ok("ok") => {
                c.check().await.unwrap();
                let l = c.list().await.unwrap();
                assert_eq!(l.len(), 1);
            }
            _ => {
                let e = c.list().await.unwrap_err();
                eprintln!("CHILD-ERROR kind={:?} {e}", e.kind());
            }
        }
        return;
    }

    let moto = Moto::start();
    let client = moto.client();
    create_bucket(&client, "chain").await;
    put(&client, "chain", "a.json", b"{}".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let missing = dir.path().join("missing");
    let run = |mode: &str, env: &[(&str, &std::path::Path)], keys: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("AIMS_S3_CHILD_ENDPOINT", &moto.endpoint)
            .env("AIMS_S3_CHILD_EXPECT", mode)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &missing)
            .env("AWS_SHARED_CREDENTIALS_FILE", &missing);
        for v in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            cmd.env_remove(v);
        }
        if keys {
            cmd.env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child ({mode}) failed:\n{stdout}\n{stderr}"
        );
        stderr
    };
    // Environment variables, no region anywhere (custom endpoint → us-east-1).
    run("ok", &[], true);
    // A shared credentials file (the profile provider).
    run("ok", &[("AWS_SHARED_CREDENTIALS_FILE", &creds)], false);
    // No credentials at all: the listing fails, permanently, saying so.
    let stderr = run("err", &[], false);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("CHILD-ERROR"))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(line.contains("ListObjectsV2 s3://chain/"), "{line}");
    assert!(line.to_lowercase().contains("credentials"), "{line}");
    assert!(line.contains("kind=Permanent"), "{line}");
}

#[tokio::test]
async fn build_rejects_invalid_configuration_without_io() {
    let cfg = aims_collect::S3Source {
        id: "bad".into(),
        bucket: "Bad_Bucket".into(),
        prefix: String::new(),
        region: Some("eu-west-1".into()),
        endpoint: None,
        force_path_style: false,
        versions: false,
        system: Some("fraud".into()),
        system_from_path: None,
        interval_secs: 60,
    };
    let e = build(&cfg).await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::Permanent);
    assert!(e.to_string().contains("bucket"), "{e}");
}
