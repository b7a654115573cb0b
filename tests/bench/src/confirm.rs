//! `confirm-git`: what a confirmation of an unchanged source costs (issue 11), beside the first
//! poll of the same source.
//!
//! A local git repository of `git_files` small reports is polled once through the real git
//! collector and engine and the records are appended to a fresh SQLite ledger (real `LogKeys`
//! signer). Then, as the agent does once a day: a re-poll of the unchanged repository (listing
//! only), the confirmation request built from it, and `Store::ingest_confirmation` (the server's
//! write: one leaf, the listing kept by digest, artifact confirmation times). Measured: time of
//! each step, bytes of content read (must be 0), ledger entries added (must be 1), request size.

use std::time::Instant;

use anyhow::{Result, bail};

use aims_catalog::Catalog;
use aims_collect::{Cursor, GitSource, PollContext, SystemRule, poll};
use aims_collect_git::GitCollector;
use aims_model::{Confirmation, Listing, SourceRef, SourceType, Timestamp};
use aims_store::{ConfirmationInput, Store};

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
    let source = GitSource {
        id: "repo".into(),
        url: None,
        path: Some(repo.clone()),
        branch: None,
        system: None,
        system_from_path: Some("systems/{system}/**".into()),
        interval_secs: 60,
        include: Vec::new(),
        exclude: Vec::new(),
    };
    let collector = GitCollector::new(&source, &cache).map_err(|e| anyhow::anyhow!("{e}"))?;
    let catalog = Catalog::embedded()?;
    let rule = SystemRule::FromPath(
        aims_collect::system::PathPattern::parse("systems/{system}/**")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let dir = ctx.tmp.path().join("confirm-ledger");
    std::fs::create_dir_all(&dir)?;
    ctx.rt.block_on(async {
        let (_, store, keys) = crate::ledger::open(&dir).await?;
        let pctx = PollContext {
            agent_id: "bench-agent",
            catalog: &catalog,
            system_rule: &rule,
            now: Timestamp::now(),
            max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
        };
        // First poll and its ingest: the reference.
        let t = Instant::now();
        let first = poll(&collector, &Cursor::default(), &pctx)
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
        let second = poll(&collector, &first.cursor, &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let relist = t.elapsed();
        let t = Instant::now();
        let listing = Listing::new(second.confirmable.clone());
        let confirmation = Confirmation::of(
            "bench-agent",
            SourceRef {
                id: "repo".into(),
                source_type: SourceType::Git,
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
                SUITE,
                format!(
                    "confirmation of an unchanged {}-file git source: re-list + build + ingest",
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
                SUITE,
                "confirmation: content bytes read / artifacts fetched",
                format!(
                    "{} bytes, {} fetched (first poll: {} bytes, {} fetched)",
                    group(second.stats.bytes_hashed),
                    second.stats.fetched,
                    group(first.stats.bytes_hashed),
                    first.stats.fetched
                ),
            )
            .goal("listing only (0 bytes)", second.stats.bytes_hashed == 0),
            Row::new(
                SUITE,
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
