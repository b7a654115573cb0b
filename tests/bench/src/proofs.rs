//! `proof-gen`: inclusion and consistency proofs from stored subtree hashes (in memory at 1M
//! leaves, and through `Store` on the SQLite ledger), against recomputing the root from every leaf.

use aims_store::LedgerStore;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use aims_ledger::merkle::{self, Hash, MemoryHashStore};

use crate::report::Row;
use crate::util::{Rng, fmt_dur, fmt_us, group};
use crate::{Ctx, ledger};

const SUITE: &str = "proof-gen";
const INCLUSION: usize = 10_000;
const CONSISTENCY: usize = 1_000;
/// Naive root recomputations timed per reference (the mean is reported).
const NAIVE_CALLS: usize = 3;

fn pairs(rng: &mut Rng, size: u64, count: usize) -> Vec<(u64, u64)> {
    (0..count)
        .map(|_| {
            let n = 2 + rng.below(size - 1); // 2..=size
            let m = 1 + rng.below(n - 1); // 1..n
            (m, n)
        })
        .collect()
}

fn per_call_us(total: Duration, calls: usize) -> f64 {
    total.as_secs_f64() * 1e6 / calls as f64
}

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    let mut rows = memory(ctx)?;
    ledger::ensure(ctx)?;
    rows.extend(sqlite(ctx)?);
    Ok(rows)
}

fn memory(ctx: &Ctx) -> Result<Vec<Row>> {
    let size = ctx.scale.memory_leaves;
    let leaves: Vec<Hash> = (0..size)
        .map(|i| merkle::leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    let t = Instant::now();
    let mut tree = MemoryHashStore::new();
    for chunk in leaves.chunks(1 << 16) {
        tree.append_all(chunk).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let build = t.elapsed();
    let root = tree.root().map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut rng = Rng::new(42);
    let indices: Vec<u64> = (0..INCLUSION).map(|_| rng.below(size)).collect();
    let t = Instant::now();
    let mut proofs = Vec::with_capacity(INCLUSION);
    for &i in &indices {
        proofs.push(merkle::inclusion_proof(i, size, &tree).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let incl = t.elapsed();
    for (&i, p) in indices.iter().zip(&proofs).take(100) {
        merkle::verify_inclusion(&leaves[i as usize], i, size, p, &root)
            .map_err(|e| anyhow::anyhow!("inclusion proof of {i} does not verify: {e}"))?;
    }

    let ps = pairs(&mut rng, size, CONSISTENCY);
    let t = Instant::now();
    let mut cproofs = Vec::with_capacity(CONSISTENCY);
    for &(m, n) in &ps {
        cproofs.push(merkle::consistency_proof(m, n, &tree).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let cons = t.elapsed();
    for (&(m, n), p) in ps.iter().zip(&cproofs).take(20) {
        let rm = merkle::root_from_leaves(&leaves[..m as usize]);
        let rn = merkle::root_from_leaves(&leaves[..n as usize]);
        merkle::verify_consistency(m, n, p, &rm, &rn)
            .map_err(|e| anyhow::anyhow!("consistency proof {m}->{n} does not verify: {e}"))?;
    }

    let t = Instant::now();
    for _ in 0..NAIVE_CALLS {
        if merkle::root_from_leaves(std::hint::black_box(&leaves)) != root {
            bail!("naive root differs from the tree's root");
        }
    }
    let naive_us = per_call_us(t.elapsed(), NAIVE_CALLS);
    let incl_us = per_call_us(incl, INCLUSION);
    let cons_us = per_call_us(cons, CONSISTENCY);
    let reference = format!(
        "{} per `root_from_leaves` over all {} leaves (mean of {NAIVE_CALLS})",
        fmt_us(naive_us),
        group(size)
    );
    Ok(vec![
        Row::new(
            SUITE,
            format!(
                "MemoryHashStore, {} leaves: build (`append_all` in 64Ki-leaf batches)",
                group(size)
            ),
            fmt_dur(build),
        ),
        Row::new(
            SUITE,
            format!(
                "MemoryHashStore, {} leaves: inclusion proof (mean of {} random indices)",
                group(size),
                group(INCLUSION as u64)
            ),
            fmt_us(incl_us),
        )
        .reference(reference.clone(), Some(naive_us / incl_us)),
        Row::new(
            SUITE,
            format!(
                "MemoryHashStore, {} leaves: consistency proof (mean of {} random pairs)",
                group(size),
                group(CONSISTENCY as u64)
            ),
            fmt_us(cons_us),
        )
        .reference(reference, Some(naive_us / cons_us)),
    ])
}

fn sqlite(ctx: &Ctx) -> Result<Vec<Row>> {
    let l = ctx.ledger.as_ref().context("ledger missing")?;
    let size = l.size;
    let store = l.store.clone();
    let db = l.db_path();
    ctx.rt.block_on(async move {
        let root = store.tree_root(size).await?;
        let mut rng = Rng::new(7);
        let indices: Vec<u64> = (0..INCLUSION).map(|_| rng.below(size)).collect();
        let t = Instant::now();
        let mut proofs = Vec::with_capacity(INCLUSION);
        for &i in &indices {
            proofs.push(store.inclusion_proof(i, size).await?);
        }
        let incl = t.elapsed();
        let ps = pairs(&mut rng, size, CONSISTENCY);
        let t = Instant::now();
        for &(m, n) in &ps {
            store.consistency_proof(m, n).await?;
        }
        let cons = t.elapsed();

        // Reference: read every leaf hash back from the database and recompute the root.
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .read_only(true)
            .connect()
            .await?;
        let mut leaves: Vec<Hash> = Vec::new();
        let t = Instant::now();
        for _ in 0..NAIVE_CALLS {
            let rows: Vec<Vec<u8>> =
                sqlx::query_scalar("SELECT leaf_hash FROM ledger_entries ORDER BY idx")
                    .fetch_all(&mut conn)
                    .await?;
            leaves = rows
                .iter()
                .map(|r| Hash::try_from(r.as_slice()))
                .collect::<Result<_, _>>()?;
            if merkle::root_from_leaves(&leaves) != root {
                bail!("naive root over the stored leaves differs from the store's root");
            }
        }
        let naive_us = per_call_us(t.elapsed(), NAIVE_CALLS);
        for (&i, p) in indices.iter().zip(&proofs).take(100) {
            merkle::verify_inclusion(&leaves[i as usize], i, size, p, &root)
                .map_err(|e| anyhow::anyhow!("stored inclusion proof of {i}: {e}"))?;
        }
        let incl_us = per_call_us(incl, INCLUSION);
        let cons_us = per_call_us(cons, CONSISTENCY);
        let reference = format!(
            "{} per naive root: `SELECT leaf_hash … ORDER BY idx` of all {} + `root_from_leaves` (mean of {NAIVE_CALLS})",
            fmt_us(naive_us),
            group(size)
        );
        Ok(vec![
            Row::new(
                SUITE,
                format!(
                    "SQLite ledger, {} leaves: `Store::inclusion_proof` (mean of {} random indices)",
                    group(size),
                    group(INCLUSION as u64)
                ),
                fmt_us(incl_us),
            )
            .reference(reference.clone(), Some(naive_us / incl_us)),
            Row::new(
                SUITE,
                format!(
                    "SQLite ledger, {} leaves: `Store::consistency_proof` (mean of {} random pairs)",
                    group(size),
                    group(CONSISTENCY as u64)
                ),
                fmt_us(cons_us),
            )
            .reference(reference, Some(naive_us / cons_us)),
        ])
    })
}
