//! Several server replicas on one PostgreSQL database: two [`PgStore`]s with separate pools (as
//! two processes would have) ingest overlapping batches from several tasks at once. The ledger
//! must come out linear: every record exactly once, dense indices, and every checkpoint signed
//! on the way a prefix of the final tree (no fork).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aims_store::{AccessStore, LedgerStore};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aims_ledger::merkle::{self, root_from_leaves};
use aims_model::{EvidenceRecord, RecordId};
use aims_store::{IngestOutcome, PgStore, Store};

use common::{PgDatabase, TestSigner, at, record, stored_leaves};

const TASKS: usize = 4;
const BATCHES: usize = 50;
const BATCH: usize = 20;
/// Records of each batch taken from the pool every task draws from.
const SHARED: usize = 6; // 30 %

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_replicas_never_fork() {
    let db = PgDatabase::create().await;
    // Opening both at once also races the migrations.
    let (a, b) = tokio::join!(PgStore::open(&db.url), PgStore::open(&db.url));
    let replicas = [Arc::new(a.unwrap()), Arc::new(b.unwrap())];

    // Records every task may send (so the same record reaches both replicas at about the same
    // time), plus each task's own.
    let shared: Arc<Vec<EvidenceRecord>> = Arc::new(
        (0..300)
            .map(|i| record(&format!("sys-{}", i % 5), &format!("shared/{i}"), "x", 0))
            .collect(),
    );
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = replicas[t % 2].clone();
        let shared = shared.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
            let mut outcomes: Vec<(Vec<EvidenceRecord>, IngestOutcome)> = Vec::new();
            for b in 0..BATCHES {
                let mut batch: Vec<EvidenceRecord> = (0..BATCH - SHARED)
                    .map(|k| {
                        record(
                            &format!("sys-{}", k % 5),
                            &format!("own/{t}/{b}/{k}"),
                            "x",
                            b as i64,
                        )
                    })
                    .collect();
                for _ in 0..SHARED {
                    let pick = &shared[(rng.next() % shared.len() as u64) as usize];
                    batch.insert(
                        (rng.next() % (batch.len() as u64 + 1)) as usize,
                        pick.clone(),
                    );
                }
                let out = store
                    .ingest(&format!("agent-{t}"), &batch, at(b as i64), &TestSigner)
                    .await
                    .unwrap();
                outcomes.push((batch, out));
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.extend(h.await.unwrap());
    }

    // Every record has one index, whichever replica answered.
    let mut index_of: HashMap<RecordId, u64> = HashMap::new();
    let mut sent: HashSet<RecordId> = HashSet::new();
    for (batch, out) in &outcomes {
        assert_eq!(out.results.len(), batch.len());
        for ((id, idx, _), r) in out.results.iter().zip(batch) {
            assert_eq!(id, &r.record_id().unwrap());
            sent.insert(id.clone());
            if let Some(old) = index_of.insert(id.clone(), *idx) {
                assert_eq!(old, *idx, "record {id:?} answered with two indices");
            }
        }
    }
    let store: &dyn Store = &*replicas[0];
    let size = store.tree_size().await.unwrap();
    assert_eq!(size, sent.len() as u64, "every record exactly once");
    assert!(size > (TASKS * BATCHES * (BATCH - SHARED)) as u64);
    let leaves = stored_leaves(store).await; // asserts dense 0..size
    let stored_ids: HashSet<RecordId> = store
        .entries(0, size)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let e: aims_store::LedgerEntry = serde_json::from_slice(&row.entry).unwrap();
            let id = e.record.as_ref().unwrap().record_id().unwrap();
            assert_eq!(index_of.get(&id), Some(&row.index));
            id
        })
        .collect();
    assert_eq!(stored_ids, sent);

    // One tree: the root from stored subtree hashes equals the root of all leaves, on both
    // replicas, and every checkpoint (returned or stored) is the root of its prefix.
    let root = root_from_leaves(&leaves);
    for r in &replicas {
        assert_eq!(r.tree_root(size).await.unwrap(), root);
    }
    let mut grown = 0;
    for (_, out) in &outcomes {
        let cp = out.checkpoint.as_ref().unwrap();
        assert_eq!(cp.size, out.tree_size);
        assert_eq!(cp.root, root_from_leaves(&leaves[..cp.size as usize]));
        if out.results.iter().any(|(_, _, dup)| !dup) {
            grown += 1;
        }
    }
    let mut stored = 0;
    let mut last = None;
    for n in 1..=size {
        if let Some(cp) = store.checkpoint_at(n).await.unwrap() {
            assert_eq!(
                cp.root,
                root_from_leaves(&leaves[..n as usize]),
                "checkpoint {n} forks"
            );
            if let Some((m, root_m)) = last {
                let proof = store.consistency_proof(m, n).await.unwrap();
                merkle::verify_consistency(m, n, &proof, &root_m, &cp.root).unwrap();
            }
            last = Some((n, cp.root));
            stored += 1;
        }
    }
    assert_eq!(
        stored, grown,
        "one checkpoint per ingest that grew the tree"
    );
    assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().size, size);
    for r in &replicas {
        r.close().await;
    }
}

/// The same batch sent to both replicas at the same moment, many times over: one leaf each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_batch_on_two_replicas_is_one_leaf() {
    let db = PgDatabase::create().await;
    let a = Arc::new(PgStore::open(&db.url).await.unwrap());
    let b = Arc::new(PgStore::open(&db.url).await.unwrap());
    for round in 0..30i64 {
        let batch: Vec<_> = (0..5)
            .map(|k| record("sys", &format!("f{round}/{k}"), "x", round))
            .collect();
        let (x, y) = tokio::join!(
            a.ingest("agent-1", &batch, at(round), &TestSigner),
            b.ingest("agent-1", &batch, at(round), &TestSigner)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let xi: Vec<u64> = x.results.iter().map(|r| r.1).collect();
        let yi: Vec<u64> = y.results.iter().map(|r| r.1).collect();
        assert_eq!(
            xi, yi,
            "round {round}: both replicas answer with the same indices"
        );
        let first = round as u64 * 5;
        assert_eq!(xi, (first..first + 5).collect::<Vec<_>>());
        // Exactly one of the two appended.
        let appended = [&x, &y]
            .iter()
            .filter(|o| o.results.iter().all(|r| !r.2))
            .count();
        assert_eq!(appended, 1, "round {round}");
    }
    assert_eq!(a.tree_size().await.unwrap(), 150);
    assert_eq!(b.tree_size().await.unwrap(), 150);
    let leaves = stored_leaves(&*a).await;
    assert_eq!(b.tree_root(150).await.unwrap(), root_from_leaves(&leaves));
    a.close().await;
    b.close().await;
}

/// While one replica holds the sequencer (an ingest in flight), reads on another go through and
/// an ingest on another waits, then lands after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_do_not_wait_for_the_sequencer() {
    use sqlx::{Connection, PgConnection};
    use std::time::Duration;

    let db = PgDatabase::create().await;
    let store = Arc::new(PgStore::open(&db.url).await.unwrap());
    let batch: Vec<_> = (0..10)
        .map(|i| record("sys", &format!("f{i}"), "x", i))
        .collect();
    store
        .ingest("agent-1", &batch, at(0), &TestSigner)
        .await
        .unwrap();

    // A stand-in for a replica in the middle of an ingest.
    let mut other = PgConnection::connect(&db.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT size FROM ledger_head FOR UPDATE")
        .execute(&mut *tx)
        .await
        .unwrap();

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let more = vec![record("sys", "late", "x", 99)];
            store
                .ingest("agent-2", &more, at(1), &TestSigner)
                .await
                .unwrap()
        })
    };
    let reads = async {
        assert_eq!(store.tree_size().await.unwrap(), 10);
        let root = store.tree_root(10).await.unwrap();
        let proof = store.inclusion_proof(3, 10).await.unwrap();
        let leaves = stored_leaves(&*store).await;
        merkle::verify_inclusion(&leaves[3], 3, 10, &proof, &root).unwrap();
        assert_eq!(store.history("sys").await.unwrap().len(), 10);
        assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().size, 10);
        assert!(store.token_by_hash("none").await.unwrap().is_none());
    };
    tokio::time::timeout(Duration::from_secs(5), reads)
        .await
        .expect("reads waited for the sequencer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !writer.is_finished(),
        "an ingest must wait for the sequencer"
    );
    tx.rollback().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the ingest went through once the sequencer was free")
        .unwrap();
    assert_eq!(out.results[0].1, 10);
    assert_eq!(out.tree_size, 11);
    other.close().await.unwrap();
    store.close().await;
}
