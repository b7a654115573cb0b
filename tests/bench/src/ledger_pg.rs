//! `ledger-append-pg`: the records of `ledger-append` through `Store::ingest` on PostgreSQL
//! (the replicas' store: sequencer row, array queries), against `psql` loading the same rows with
//! `COPY` in one transaction into an empty database with the same schema.
//!
//! PostgreSQL is reached at `AIMS_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432`, trust
//! auth); two scratch databases are created and dropped.

use aims_store::LedgerStore;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use aims_server::keys::LogKeys;
use aims_store::PgStore;

use crate::Ctx;
use crate::ledger::{BATCH, ORIGIN, append, records};
use crate::report::Row;
use crate::util::{fmt_dur, fmt_rate, group, have, sh_output, time_sh};

const SUITE: &str = "ledger-append-pg";
const TABLES: [(&str, &str); 3] = [
    ("ledger_entries", "idx"),
    ("ledger_hashes", "level, idx"),
    ("ledger_checkpoints", "size"),
];

/// The server URL without a database, e.g. `postgres://postgres@127.0.0.1:5432`.
fn base_url() -> String {
    std::env::var("AIMS_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Runs one SQL statement against the `postgres` maintenance database.
fn admin(dir: &Path, sql: &str) -> Result<()> {
    time_sh(
        dir,
        &format!(
            "psql '{}/postgres' -v ON_ERROR_STOP=1 -qc '{sql}'",
            base_url()
        ),
    )?;
    Ok(())
}

/// Drops the scratch databases when the suite ends, however it ends.
struct Scratch<'a> {
    dir: &'a Path,
    names: Vec<String>,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = admin(
                self.dir,
                &format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"),
            );
        }
    }
}

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    if !have("psql") {
        bail!("psql not installed (PostgreSQL client)");
    }
    let dir = ctx.tmp.path().join("ledger-pg");
    std::fs::create_dir_all(&dir)?;
    let pid = std::process::id();
    let (src, dst) = (format!("aims_bench_{pid}"), format!("aims_bench_{pid}_ref"));
    let _scratch = Scratch {
        dir: &dir,
        names: vec![src.clone(), dst.clone()],
    };
    for db in [&src, &dst] {
        admin(&dir, &format!("CREATE DATABASE {db}"))
            .with_context(|| format!("creating {db} at {} (is PostgreSQL running?)", base_url()))?;
    }
    let (src_url, dst_url) = (
        format!("{}/{src}", base_url()),
        format!("{}/{dst}", base_url()),
    );

    let n = ctx.scale.ledger_records;
    let recs = records(n)?;
    let keys = LogKeys::load_or_create(&dir.join("aims-keys"), ORIGIN)?;
    let (times, total) = ctx.rt.block_on(async {
        let store = PgStore::open(&src_url).await?;
        let started = Instant::now();
        let times = append(&store, &keys, &recs).await?;
        let total = started.elapsed();
        let size = store.tree_size().await?;
        store.close().await;
        if size != n {
            bail!("ledger holds {size} entries, expected {n}");
        }
        // The reference database gets the same schema from the same migrations.
        PgStore::open(&dst_url).await?.close().await;
        anyhow::Ok((times, total))
    })?;

    let ref_time = reference(&dir, &src_url, &dst_url)?;
    let count = sh_output(
        &dir,
        &format!("psql '{dst_url}' -tAc 'SELECT COUNT(*) FROM ledger_entries'"),
    )?;
    if count.trim().parse::<u64>().ok() != Some(n) {
        bail!("reference database holds {} entries", count.trim());
    }

    let ours = n as f64 / total.as_secs_f64();
    let reference = n as f64 / ref_time.as_secs_f64();
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    let worst = sorted.last().copied().unwrap_or_default();
    Ok(vec![
        Row::new(
            SUITE,
            format!(
                "append {} records, {} × `Store::ingest` of {BATCH} (PostgreSQL 127.0.0.1, sequencer row, Ed25519 log + clock signatures)",
                group(n),
                times.len()
            ),
            format!("{} ({})", fmt_rate(ours, "records"), fmt_dur(total)),
        )
        .reference(
            format!(
                "{} ({}; `psql -1` with `\\copy … FROM` of the same entry, subtree-hash and checkpoint rows into the same schema)",
                fmt_rate(reference, "records"),
                fmt_dur(ref_time)
            ),
            Some(ours / reference),
        )
        .goal("≥ 20,000 records/s (issue 5)", ours >= 20_000.0),
        Row::new(
            SUITE,
            format!("latency of one {BATCH}-record ingest on PostgreSQL (median / worst)"),
            format!("{} / {}", fmt_dur(median), fmt_dur(worst)),
        ),
    ])
}

/// Dumps the three ledger tables of `src` (untimed) and times loading them into `dst` with COPY.
fn reference(dir: &Path, src: &str, dst: &str) -> Result<Duration> {
    let mut load = String::new();
    for (t, order) in TABLES {
        let file = dir.join(format!("{t}.copy"));
        time_sh(
            dir,
            &format!(
                "psql '{src}' -v ON_ERROR_STOP=1 -qc \"\\copy (SELECT * FROM {t} ORDER BY {order}) TO '{}'\"",
                file.display()
            ),
        )?;
        load.push_str(&format!("\\copy {t} FROM '{}'\n", file.display()));
    }
    std::fs::write(dir.join("load.sql"), load)?;
    time_sh(
        dir,
        &format!("psql '{dst}' -v ON_ERROR_STOP=1 -q -1 -f load.sql"),
    )
}
