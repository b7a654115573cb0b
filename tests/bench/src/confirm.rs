//! `confirm-git`, `confirm-s3`: what a confirmation of an unchanged source costs (issue 11),
//! beside the first poll of the same source.
//!
//! A local git repository (or a moto S3 prefix) of `git_files` small reports is polled once
//! through the real collector and engine and the records are appended to a fresh SQLite ledger
//! (real `LogKeys` signer). Then, as the agent does once a day: a re-poll of the unchanged source
//! (listing only), the confirmation request built from it, and `Store::ingest_confirmation` (the
//! server's write: one leaf, the listing kept by digest, artifact confirmation times). Measured:
//! time of each step, bytes of content read and objects downloaded (must be 0), ledger entries
//! added (must be 1), request size.

use aims_store::LedgerStore;
use std::time::Instant;

use anyhow::{Result, bail};

use aims_catalog::Catalog;
use aims_collect::{Cursor, PollContext, SystemRule, poll};
use aims_collect_git::GitCollector;
use aims_model::{Confirmation, Listing, SourceRef, SourceType, Timestamp};
use aims_store::ConfirmationInput;

use crate::Ctx;
use crate::report::Row;
use crate::util::{fmt_dur, group, have, secs};

const SUITE: &str = "confirm-git";

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    if !have("git") {
        bail!("git is not installed");
    }
    let files = ctx.scale.git_files;
    let repo = ctx.tmp.path().join("confirm-repo");
    crate::repoll::make_repo(&repo, files)?;
    let cache = ctx.tmp.path().join("confirm-cache");
    std::fs::create_dir_all(&cache)?;
    let source = crate::repoll::local_git_source(&repo);
    let collector = GitCollector::new(&source, &cache).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rule = SystemRule::FromPath(
        aims_collect::system::PathPattern::parse("systems/{system}/**")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    measure(
        ctx,
        SUITE,
        "git source",
        &collector,
        &rule,
        files,
        SourceType::Git,
        || None,
    )
}

/// The S3 variant: `git_files` objects under a prefix of a bucket on a real moto server
/// (`AIMS_MOTO_SERVER`, as the tests use); downloads are counted from moto's request log.
pub fn run_s3(ctx: &mut Ctx) -> Result<Vec<Row>> {
    let files = ctx.scale.git_files;
    let moto = aims_collect_s3::testkit::Moto::start();
    let client = moto.client();
    ctx.rt.block_on(async {
        aims_collect_s3::testkit::create_bucket(&client, "confirm").await;
        let t = Instant::now();
        for i in 0..files {
            let key = format!("systems/sys-{:02}/reports/report-{i:05}.json", i % 20);
            aims_collect_s3::testkit::put(&client, "confirm", &key, crate::repoll::report(i)).await;
        }
        eprintln!("    {files} objects put in {}", fmt_dur(t.elapsed()));
    });
    let collector = moto.collector(&moto.source("confirm", ""));
    let rule = SystemRule::FromPath(
        aims_collect::system::PathPattern::parse("systems/{system}/**")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    measure(
        ctx,
        "confirm-s3",
        "S3 prefix",
        &collector,
        &rule,
        files,
        SourceType::S3,
        || Some(moto.object_gets("confirm")),
    )
}

#[allow(clippy::too_many_arguments)]
fn measure(
    ctx: &mut Ctx,
    suite: &str,
    what: &str,
    collector: &dyn aims_collect::Collector,
    rule: &SystemRule,
    files: usize,
    source_type: SourceType,
    downloads: impl Fn() -> Option<usize>,
) -> Result<Vec<Row>> {
    let catalog = Catalog::embedded()?;
    let dir = ctx.tmp.path().join(format!("{suite}-ledger"));
    std::fs::create_dir_all(&dir)?;
    ctx.rt.block_on(async {
        let (_, store, keys) = crate::ledger::open(&dir).await?;
        let pctx = PollContext {
            agent_id: "bench-agent",
            catalog: &catalog,
            system_rule: rule,
            now: Timestamp::now(),
            max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
        };
        // First poll and its ingest: the reference.
        let d0 = downloads();
        let t = Instant::now();
        let first = poll(collector, &Cursor::default(), &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let first_poll = t.elapsed();
        let t = Instant::now();
        for chunk in first.records.chunks(500) {
            store
                .ingest("bench-agent", chunk, Timestamp::now(), keys.as_ref())
                .await?;
        }
        let first_ingest = t.elapsed();
        let size_before = store.tree_size().await?;

        // The daily confirmation.
        let t = Instant::now();
        let d1 = downloads();
        let first_downloads = d1.zip(d0).map(|(a, b)| a - b);
        let second = poll(collector, &first.cursor, &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let relist = t.elapsed();
        let second_downloads = downloads().zip(d1).map(|(a, b)| a - b);
        let t = Instant::now();
        let listing = Listing::new(second.confirmable.clone());
        let confirmation = Confirmation::of(
            "bench-agent",
            SourceRef {
                id: collector.source().id.clone(),
                source_type,
            },
            Timestamp::now(),
            &listing,
        )?;
        let request = serde_json::to_vec(&aims_model::wire::ConfirmationRequest {
            confirmation: confirmation.clone(),
            artifacts: listing.artifacts.clone(),
        })?;
        let build = t.elapsed();
        let bytes = listing.canonical_bytes()?;
        let t = Instant::now();
        let out = store
            .ingest_confirmation(
                "bench-agent",
                &ConfirmationInput {
                    confirmation: &confirmation,
                    listing: &bytes,
                    artifacts: &listing.artifacts,
                },
                Timestamp::now(),
                keys.as_ref(),
            )
            .await?;
        let ingest = t.elapsed();
        let added = store.tree_size().await? - size_before;
        if out.matched != files as u64 {
            bail!("confirmation matched {} of {files} artifacts", out.matched);
        }
        let total = relist + build + ingest;
        let first_total = first_poll + first_ingest;
        Ok(vec![
            Row::new(
                suite,
                format!(
                    "confirmation of an unchanged {}-file {what}: re-list + build + ingest",
                    group(files as u64)
                ),
                format!(
                    "{} (list {}, build {}, server ingest {})",
                    fmt_dur(total),
                    fmt_dur(relist),
                    fmt_dur(build),
                    fmt_dur(ingest)
                ),
            )
            .reference(
                format!(
                    "{} (first poll {} + ingest of {} records {})",
                    fmt_dur(first_total),
                    fmt_dur(first_poll),
                    group(first.records.len() as u64),
                    fmt_dur(first_ingest)
                ),
                Some(secs(first_total) / secs(total)),
            ),
            Row::new(
                suite,
                "confirmation: content bytes read / artifacts fetched",
                format!(
                    "{} bytes, {} fetched{} (first poll: {} bytes, {} fetched{})",
                    group(second.stats.bytes_hashed),
                    second.stats.fetched,
                    second_downloads.map_or(String::new(), |n| format!(", {n} GetObject")),
                    group(first.stats.bytes_hashed),
                    first.stats.fetched,
                    first_downloads.map_or(String::new(), |n| format!(", {n} GetObject")),
                ),
            )
            .goal(
                "listing only (0 bytes)",
                second.stats.bytes_hashed == 0 && second_downloads.unwrap_or(0) == 0,
            ),
            Row::new(
                suite,
                "confirmation: ledger entries added",
                format!(
                    "{added} (first poll: {} entries); request {} bytes, listing {} bytes",
                    size_before,
                    group(request.len() as u64),
                    group(bytes.len() as u64)
                ),
            )
            .goal("O(1): 1 entry", added == 1),
        ])
    })
}
