//! S3 source benchmark against a real moto server (issue 3). Run with
//! `cargo bench -p aims-collect-s3` (a plain `harness = false` binary; figures go to stdout).
//!
//! 1. Streaming fetch + SHA-256 of one large object through the collector and the poll engine,
//!    next to `openssl dgst -sha256` over the same bytes in a temp file.
//!    Size: `AIMS_S3_BENCH_MIB` (default 256).
//! 2. Polls of a prefix of `AIMS_S3_BENCH_OBJECTS` (default 10000) small objects: the first poll
//!    (lists and downloads everything), then a re-poll of the unchanged prefix, which should make
//!    ⌈objects / 1000⌉ list requests and download 0 bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::io::Write;
use std::time::{Duration, Instant};

use aims_collect::testkit::{CountingCollector, catalog, poll_once};
use aims_collect::{Collector, Cursor, SourceConfig};
use aims_collect_s3::aws_sdk_s3::primitives::ByteStream;
use aims_collect_s3::testkit::{Moto, create_bucket, pseudo_random};
use aims_model::Timestamp;
use sha2::{Digest, Sha256};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes other flags: run only for
    // the former so a test run stays fast.
    if !std::env::args().any(|a| a == "--bench") {
        println!("s3 bench: skipped (run with `cargo bench -p aims-collect-s3`)");
        return;
    }
    let mib = env_usize("AIMS_S3_BENCH_MIB", 256);
    let objects = env_usize("AIMS_S3_BENCH_OBJECTS", 10_000);
    let moto = Moto::start();
    let client = moto.client();
    println!("moto at {}", moto.endpoint);

    // ---- 1. large object: streaming fetch + hash ------------------------------------------
    create_bucket(&client, "bench-large").await;
    let len = mib * 1024 * 1024;
    let data = pseudo_random(len, 7);
    let t = Instant::now();
    let expected = hex::encode(Sha256::digest(&data));
    let mem = t.elapsed();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.as_file().write_all(&data).unwrap();
    tmp.as_file().sync_all().unwrap();
    let t = Instant::now();
    client
        .put_object()
        .bucket("bench-large")
        .key("systems/bench/model.bin")
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap();
    println!(
        "upload {mib} MiB to moto: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let cfg = moto.source("bench-large", "");
    let rule = SourceConfig::S3(cfg.clone()).system_rule().unwrap();
    let catalog = catalog();
    let c = moto.collector(&cfg);
    let mut best = Duration::MAX;
    for round in 1..=3 {
        let t = Instant::now();
        let out = poll_once(&c, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
        let d = t.elapsed();
        assert_eq!(out.records.len(), 1, "{:?}", out.stats.errors);
        assert_eq!(out.records[0].sha256.to_string(), expected, "hash mismatch");
        assert_eq!(out.stats.bytes_hashed, len as u64);
        println!(
            "  poll {round}: list + GetObject stream + SHA-256 of {mib} MiB: {:.2} s = {:.0} MiB/s",
            d.as_secs_f64(),
            mib_s(len as u64, d)
        );
        best = best.min(d);
    }
    let t = Instant::now();
    let openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(tmp.path())
        .output();
    let od = t.elapsed();
    match openssl {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.trim_end().ends_with(&expected), "openssl: {text}");
            println!(
                "  openssl dgst -sha256 on the same bytes (page-cached file): {:.2} s = {:.0} MiB/s",
                od.as_secs_f64(),
                mib_s(len as u64, od)
            );
        }
        other => println!("  openssl dgst -sha256 unavailable: {other:?}"),
    }
    println!(
        "  sha2 over the same bytes in memory (this build): {:.2} s = {:.0} MiB/s",
        mem.as_secs_f64(),
        mib_s(len as u64, mem)
    );
    // Where the time goes: the same GetObject stream read into a sink, without hashing.
    let listing = c.list().await.unwrap();
    let t = Instant::now();
    let mut body = c.fetch(&listing[0]).await.unwrap();
    let n = tokio::io::copy(&mut body, &mut tokio::io::sink())
        .await
        .unwrap();
    let sd = t.elapsed();
    assert_eq!(n, len as u64);
    println!(
        "  GetObject stream alone (no hashing): {:.2} s = {:.0} MiB/s",
        sd.as_secs_f64(),
        mib_s(len as u64, sd)
    );
    println!(
        "RESULT large_object_mib_s={:.0} openssl_mib_s={:.0}",
        mib_s(len as u64, best),
        mib_s(len as u64, od)
    );
    drop(tmp);

    // ---- 2. unchanged prefix: list calls only ----------------------------------------------
    create_bucket(&client, "bench-many").await;
    let t = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..objects {
        let client = client.clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        set.spawn(async move {
            let key = format!("prefix/systems/s{:02}/evidence-{i:05}.json", i % 20);
            let body = format!("{{\"n\":{i}}}\n").into_bytes();
            client
                .put_object()
                .bucket("bench-many")
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
            drop(permit);
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    println!(
        "upload {objects} objects: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let cfg = moto.source("bench-many", "prefix/");
    let rule = SourceConfig::S3(cfg.clone()).system_rule().unwrap();
    let counting = CountingCollector::new(Box::new(moto.collector(&cfg)));
    // A second collector with the same configuration reads the request counters.
    let c = moto.collector(&cfg);

    let lists0 = moto.list_requests("bench-many");
    let gets0 = moto.object_gets("bench-many");
    let t = Instant::now();
    let first = poll_once(&counting, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    let d1 = t.elapsed();
    assert_eq!(first.records.len(), objects, "{:?}", first.stats.errors);
    let lists1 = moto.list_requests("bench-many");
    let gets1 = moto.object_gets("bench-many");
    println!(
        "  first poll: {objects} objects, {} list requests, {} GETs, {} content bytes, {:.2} s",
        lists1 - lists0,
        gets1 - gets0,
        first.stats.bytes_hashed,
        d1.as_secs_f64()
    );

    let t = Instant::now();
    let second = poll_once(&c, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    let d2 = t.elapsed();
    assert!(second.records.is_empty());
    let lists2 = moto.list_requests("bench-many");
    let gets2 = moto.object_gets("bench-many");
    let req = c.requests();
    println!(
        "  re-poll unchanged: {} list requests (collector counted {}), {} GETs, {} content bytes, {:.2} s ({:.1}% of the first poll)",
        lists2 - lists1,
        req.list,
        gets2 - gets1,
        second.stats.bytes_hashed,
        d2.as_secs_f64(),
        100.0 * d2.as_secs_f64() / d1.as_secs_f64()
    );
    assert_eq!(gets2, gets1, "an unchanged prefix must not download");
    assert_eq!(second.stats.bytes_hashed, 0);
    println!(
        "RESULT repoll_list_requests={} repoll_content_bytes={} first_poll_s={:.2} repoll_s={:.2}",
        lists2 - lists1,
        second.stats.bytes_hashed,
        d1.as_secs_f64(),
        d2.as_secs_f64()
    );
}
