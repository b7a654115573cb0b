//! One conformance suite, run against every [`Store`] implementation (Quickwit's
//! `metastore_test_suite!` pattern): `store_test_suite!(sqlite)` on a temp file and
//! `store_test_suite!(postgres)` on a fresh database per test at 127.0.0.1:5432 (or
//! `AIMS_TEST_POSTGRES`). The PostgreSQL tests fail, not skip, when the server is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

/// The suite: each is an `async fn(&dyn Store)` in [`suite`].
macro_rules! store_test_suite {
    ($backend:ident) => {
        store_test_suite!(@tests $backend:
            ingest_assigns_dense_indices,
            same_record_twice_is_one_leaf,
            reobservation_returns_old_index,
            changed_artifact_links_prev,
            gone_is_a_new_entry,
            history_and_evidence,
            entries_pages_the_stored_bytes,
            roots_and_proofs_verify,
            checkpoints,
            assessment_round_trip,
            tokens,
            signer_error_rolls_the_batch_back,
            concurrent_ingests_in_one_store,
            confirmations_are_one_leaf_and_move_observation_time,
            heartbeats_and_source_health,
            issue_18_sessions_and_system_scope,
            issue_16_evidence_by_content_sha256,
            issue_16_evidence_by_source,
            issue_15_outbox,
            issue_14_blobs,
        );
    };
    (@tests $backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let db = crate::common::$backend().await;
                    crate::suite::$test(db.store()).await;
                }
            )*
        }
    };
}

store_test_suite!(sqlite);
store_test_suite!(postgres);

mod suite {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use aims_ledger::merkle::{self, root_from_leaves};
    use aims_model::wire::{ControlView, StatusCounts};
    use aims_model::{ControlStatus, EvidenceRecord, Finding, FindingKind};
    use aims_store::{
        LedgerEntry, NewSession, NewToken, Role, Store, StoreError, StoredAssessment,
        StoredCheckpoint, TokenScope,
    };

    use crate::common::{FailingSigner, TestSigner, at, gone, record, stored_leaves};

    fn ids_of(out: &aims_store::IngestOutcome) -> Vec<(u64, bool)> {
        out.results.iter().map(|(_, i, d)| (*i, *d)).collect()
    }

    pub async fn ingest_assigns_dense_indices(s: &dyn Store) {
        assert_eq!(s.tree_size().await.unwrap(), 0);
        assert!(s.latest_checkpoint().await.unwrap().is_none());
        let batch: Vec<_> = (0..5)
            .map(|i| record("sys-a", &format!("f{i}"), "v1", i))
            .collect();
        let out = s
            .ingest("agent-1", &batch, at(100), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), (0..5).map(|i| (i, false)).collect::<Vec<_>>());
        assert_eq!(out.tree_size, 5);
        assert_eq!(out.systems_touched, vec!["sys-a".to_owned()]);
        for ((id, _, _), r) in out.results.iter().zip(&batch) {
            assert_eq!(id, &r.record_id().unwrap());
        }
        let batch2 = vec![
            record("sys-b", "g0", "v1", 10),
            record("sys-a", "g1", "v1", 11),
            record("sys-b", "g2", "v1", 12),
        ];
        let out = s
            .ingest("agent-2", &batch2, at(101), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(5, false), (6, false), (7, false)]);
        assert_eq!(out.tree_size, 8);
        assert_eq!(
            out.systems_touched,
            vec!["sys-b".to_owned(), "sys-a".to_owned()]
        );
        assert_eq!(s.tree_size().await.unwrap(), 8);
        assert_eq!(stored_leaves(s).await.len(), 8);
        // An empty batch changes nothing.
        let out = s
            .ingest("agent-1", &[], at(102), &TestSigner)
            .await
            .unwrap();
        assert!(out.results.is_empty());
        assert_eq!(out.tree_size, 8);
        assert_eq!(out.checkpoint.map(|c| c.size), Some(8));
    }

    pub async fn same_record_twice_is_one_leaf(s: &dyn Store) {
        let a = record("sys", "a", "1", 0);
        let b = record("sys", "b", "1", 0);
        let out = s
            .ingest("agent-1", &[a.clone(), b.clone()], at(1), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(0, false), (1, false)]);
        let cp = out.checkpoint.unwrap();
        // Again, in another batch: the old index, flagged duplicate, no growth, same checkpoint.
        let out = s
            .ingest("agent-2", &[b.clone(), a.clone()], at(2), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(1, true), (0, true)]);
        assert_eq!(out.tree_size, 2);
        assert_eq!(out.checkpoint.as_ref(), Some(&cp));
        assert!(out.systems_touched.is_empty());
        // Twice within one batch: one leaf.
        let c = record("sys", "c", "1", 0);
        let out = s
            .ingest("agent-1", &[c.clone(), c.clone(), a], at(3), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(2, false), (2, true), (0, true)]);
        assert_eq!(s.tree_size().await.unwrap(), 3);
        // The stored record keeps the first sender and time.
        let e = s
            .evidence(b.record_id().unwrap().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.agent, "agent-1");
        assert_eq!(e.received_at, at(1));
    }

    pub async fn reobservation_returns_old_index(s: &dyn Store) {
        let first = record("sys", "card.md", "same bytes", 0);
        s.ingest("agent-1", std::slice::from_ref(&first), at(1), &TestSigner)
            .await
            .unwrap();
        // The agent crashed before saving its cursor and observes the same artifact again.
        let again = record("sys", "card.md", "same bytes", 60);
        assert_ne!(again.record_id().unwrap(), first.record_id().unwrap());
        let out = s
            .ingest("agent-1", std::slice::from_ref(&again), at(2), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(0, true)]);
        assert_eq!(out.tree_size, 1);
        assert!(
            s.evidence(again.record_id().unwrap().as_str())
                .await
                .unwrap()
                .is_none()
        );
        // The same content under another source id is another artifact.
        let mut other = again.clone();
        other.source.id = "other-src".to_owned();
        let out = s
            .ingest("agent-1", &[other], at(3), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(1, false)]);
        // Within a batch too: the second observation of an artifact appended in the batch.
        let n1 = record("sys", "new.md", "x", 0);
        let n2 = record("sys", "new.md", "x", 5);
        let out = s
            .ingest("agent-1", &[n1, n2], at(4), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(2, false), (2, true)]);
    }

    pub async fn changed_artifact_links_prev(s: &dyn Store) {
        let v1 = record("sys", "model.json", "v1", 0);
        let out = s
            .ingest("agent-1", std::slice::from_ref(&v1), at(1), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(0, false)]);
        let other = record("sys", "other.json", "v1", 0);
        let v2 = record("sys", "model.json", "v2", 10);
        let out = s
            .ingest("agent-1", &[other, v2.clone()], at(2), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(1, false), (2, false)]);
        let e2 = s
            .evidence(v2.record_id().unwrap().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e2.prev, Some(0));
        assert_eq!(e2.leaf_index, 2);
        // A chain inside one batch, and back to the first content (new leaf: the newest differs).
        let v3 = record("sys", "model.json", "v3", 20);
        let v1_again = record("sys", "model.json", "v1", 30);
        let out = s
            .ingest(
                "agent-1",
                &[v3.clone(), v1_again.clone()],
                at(3),
                &TestSigner,
            )
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(3, false), (4, false)]);
        let prevs: Vec<_> = s
            .history("sys")
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.record.locator == "model.json")
            .map(|e| (e.leaf_index, e.prev))
            .collect();
        assert_eq!(
            prevs,
            vec![(0, None), (2, Some(0)), (3, Some(2)), (4, Some(3))]
        );
        // `prev` is inside the hashed entry bytes.
        let rows = s.entries(4, 1).await.unwrap();
        let entry: LedgerEntry = serde_json::from_slice(&rows[0].entry).unwrap();
        assert_eq!(entry.prev, Some(3));
        assert_eq!(entry.record, Some(v1_again));
    }

    pub async fn gone_is_a_new_entry(s: &dyn Store) {
        let seen = record("sys", "data.csv", "rows", 0);
        s.ingest("agent-1", std::slice::from_ref(&seen), at(1), &TestSigner)
            .await
            .unwrap();
        let g = gone(&seen, 50);
        let out = s
            .ingest("agent-1", std::slice::from_ref(&g), at(2), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(1, false)]);
        let e = s
            .evidence(g.record_id().unwrap().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.prev, Some(0));
        assert_eq!(e.record.event, aims_model::RecordEvent::Gone);
        // Reported gone again later: a re-observation of the gone entry.
        let out = s
            .ingest("agent-1", &[gone(&seen, 90)], at(3), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(1, true)]);
        // Back with the same bytes: new leaf after the gone one.
        let back = record("sys", "data.csv", "rows", 120);
        let out = s
            .ingest("agent-1", std::slice::from_ref(&back), at(4), &TestSigner)
            .await
            .unwrap();
        assert_eq!(ids_of(&out), vec![(2, false)]);
        let e = s
            .evidence(back.record_id().unwrap().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.prev, Some(1));
    }

    pub async fn history_and_evidence(s: &dyn Store) {
        let mut all: Vec<EvidenceRecord> = Vec::new();
        for b in 0..4 {
            let batch: Vec<_> = (0..6)
                .map(|i| {
                    let sys = ["sys-b", "sys-a", "sys-c"][i % 3];
                    record(sys, &format!("f{b}-{i}"), "x", (b * 10 + i) as i64)
                })
                .collect();
            s.ingest("agent-1", &batch, at(b as i64), &TestSigner)
                .await
                .unwrap();
            all.extend(batch);
        }
        for sys in ["sys-a", "sys-b", "sys-c"] {
            let h = s.history(sys).await.unwrap();
            let want: Vec<(u64, &EvidenceRecord)> = all
                .iter()
                .enumerate()
                .filter(|(_, r)| r.system == sys)
                .map(|(i, r)| (i as u64, r))
                .collect();
            assert_eq!(h.len(), want.len());
            for (e, (i, r)) in h.iter().zip(want) {
                assert_eq!(e.leaf_index, i, "history is in ledger order");
                assert_eq!(&e.record, r);
                assert_eq!(e.record_id, r.record_id().unwrap());
            }
        }
        assert!(s.history("nope").await.unwrap().is_empty());
        assert_eq!(
            s.system_ids().await.unwrap(),
            vec!["sys-a".to_owned(), "sys-b".to_owned(), "sys-c".to_owned()]
        );
        let r = &all[13];
        let e = s
            .evidence(r.record_id().unwrap().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.leaf_index, 13);
        assert_eq!(&e.record, r);
        assert_eq!(e.agent, "agent-1");
        assert_eq!(e.received_at, at(2));
        assert_eq!(e.prev, None);
        assert!(s.evidence(&"0".repeat(64)).await.unwrap().is_none());
    }

    pub async fn entries_pages_the_stored_bytes(s: &dyn Store) {
        let batch: Vec<_> = (0..25)
            .map(|i| record("sys", &format!("f{i}"), "x", i))
            .collect();
        s.ingest("agent-1", &batch, at(0), &TestSigner)
            .await
            .unwrap();
        let page = s.entries(10, 5).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14]
        );
        for row in &page {
            let entry: LedgerEntry = serde_json::from_slice(&row.entry).unwrap();
            assert_eq!(entry.record.as_ref(), Some(&batch[row.index as usize]));
            assert_eq!(
                row.entry,
                aims_store::entry_bytes(
                    entry.record.as_ref().unwrap(),
                    &entry.agent,
                    entry.received_at,
                    entry.prev
                )
                .unwrap(),
                "stored bytes are the canonical entry"
            );
        }
        assert_eq!(s.entries(20, 100).await.unwrap().len(), 5);
        assert!(s.entries(25, 10).await.unwrap().is_empty());
        assert!(s.entries(3, 0).await.unwrap().is_empty());
        let leaves = stored_leaves(s).await;
        assert_eq!(s.tree_root(25).await.unwrap(), root_from_leaves(&leaves));
    }

    pub async fn roots_and_proofs_verify(s: &dyn Store) {
        assert_eq!(s.tree_root(0).await.unwrap(), merkle::empty_root());
        let sizes = [1usize, 1, 2, 3, 5, 8, 13, 1, 31, 32, 64, 7, 100, 33];
        let mut n = 0usize;
        let mut checked = Vec::new();
        for (b, len) in sizes.iter().enumerate() {
            let batch: Vec<_> = (n..n + len)
                .map(|i| record(&format!("sys-{}", i % 4), &format!("f{i}"), "x", b as i64))
                .collect();
            let out = s
                .ingest("agent-1", &batch, at(b as i64), &TestSigner)
                .await
                .unwrap();
            n += len;
            assert_eq!(out.tree_size, n as u64);
            let leaves = stored_leaves(s).await;
            let root = s.tree_root(n as u64).await.unwrap();
            assert_eq!(root, root_from_leaves(&leaves), "root at size {n}");
            assert_eq!(out.checkpoint.unwrap().root, root);
            checked.push(n as u64);
        }
        assert_eq!(n, 301);
        let leaves = stored_leaves(s).await;
        let root_at = |m: u64| root_from_leaves(&leaves[..m as usize]);
        for size in [
            1u64, 2, 3, 4, 5, 7, 8, 9, 16, 17, 63, 64, 65, 127, 128, 129, 200, 255, 256, 300, 301,
        ] {
            assert_eq!(
                s.tree_root(size).await.unwrap(),
                root_at(size),
                "root at {size}"
            );
            let root = root_at(size);
            let mut idxs: Vec<u64> = vec![0, size / 3, size / 2, size - 1];
            idxs.dedup();
            for i in idxs {
                let proof = s.inclusion_proof(i, size).await.unwrap();
                merkle::verify_inclusion(&leaves[i as usize], i, size, &proof, &root)
                    .unwrap_or_else(|e| panic!("inclusion of {i} in {size}: {e}"));
            }
        }
        for (m, n) in [
            (1u64, 1u64),
            (1, 2),
            (2, 3),
            (3, 8),
            (7, 8),
            (8, 9),
            (13, 64),
            (64, 65),
            (100, 301),
            (255, 256),
            (256, 301),
            (300, 301),
            (301, 301),
        ] {
            let proof = s.consistency_proof(m, n).await.unwrap();
            merkle::verify_consistency(m, n, &proof, &root_at(m), &root_at(n))
                .unwrap_or_else(|e| panic!("consistency {m} -> {n}: {e}"));
        }
        // Every size a batch ended at is provable against every later one.
        for w in checked.windows(2) {
            let proof = s.consistency_proof(w[0], w[1]).await.unwrap();
            merkle::verify_consistency(w[0], w[1], &proof, &root_at(w[0]), &root_at(w[1])).unwrap();
        }
        // Out of range: errors, not garbage.
        assert!(s.inclusion_proof(301, 301).await.is_err());
        assert!(s.consistency_proof(10, 5).await.is_err());
        assert!(s.tree_root(302).await.is_err());
        // read_hashes answers in the order asked, and a node never stored is an error.
        let ids = [
            merkle::NodeId::new(1, 3),
            merkle::NodeId::leaf(0),
            merkle::NodeId::new(8, 0),
        ];
        let hs = s.read_hashes(&ids).await.unwrap();
        assert_eq!(hs[0], root_from_leaves(&leaves[6..8]));
        assert_eq!(hs[1], leaves[0]);
        assert_eq!(hs[2], root_from_leaves(&leaves[..256]));
        let missing = s.read_hashes(&[merkle::NodeId::new(9, 0)]).await;
        assert!(
            matches!(missing, Err(StoreError::Corrupt(_))),
            "{missing:?}"
        );
    }

    pub async fn checkpoints(s: &dyn Store) {
        // Before any entry, the server signs the empty tree (first start).
        let empty = StoredCheckpoint {
            size: 0,
            root: merkle::empty_root(),
            note: "empty".to_owned(),
            created_at: at(0),
        };
        s.put_checkpoint(&empty).await.unwrap();
        assert_eq!(s.latest_checkpoint().await.unwrap(), Some(empty.clone()));
        let mut sizes = Vec::new();
        for b in 0..5i64 {
            let batch: Vec<_> = (0..=b)
                .map(|i| record("sys", &format!("f{b}-{i}"), "x", i))
                .collect();
            let out = s
                .ingest("agent-1", &batch, at(10 + b), &TestSigner)
                .await
                .unwrap();
            let cp = out.checkpoint.unwrap();
            assert_eq!(cp.size, out.tree_size);
            assert_eq!(cp.root, s.tree_root(cp.size).await.unwrap());
            assert_eq!(
                cp.created_at,
                at(10 + b),
                "created_at is the ingest's received_at"
            );
            assert_eq!(
                cp.note,
                format!("aims.test/log\n{}\n{}\n", cp.size, hex::encode(cp.root))
            );
            assert_eq!(s.checkpoint_at(cp.size).await.unwrap(), Some(cp.clone()));
            assert_eq!(s.latest_checkpoint().await.unwrap(), Some(cp.clone()));
            sizes.push(cp.size);
        }
        assert_eq!(sizes, vec![1, 3, 6, 10, 15]);
        assert_eq!(s.checkpoint_at(0).await.unwrap(), Some(empty));
        assert!(s.checkpoint_at(2).await.unwrap().is_none());
        assert!(s.checkpoint_at(16).await.unwrap().is_none());
        // Re-signing the current head replaces its note; a different root for a signed size
        // is not stored.
        let root = s.tree_root(15).await.unwrap();
        let resigned = StoredCheckpoint {
            size: 15,
            root,
            note: "cosigned".to_owned(),
            created_at: at(99),
        };
        s.put_checkpoint(&resigned).await.unwrap();
        assert_eq!(s.latest_checkpoint().await.unwrap(), Some(resigned.clone()));
        let forged = StoredCheckpoint {
            root: [7u8; 32],
            note: "forged".to_owned(),
            ..resigned.clone()
        };
        s.put_checkpoint(&forged).await.unwrap();
        assert_eq!(s.checkpoint_at(15).await.unwrap(), Some(resigned.clone()));
        // A batch of duplicates returns the checkpoint of the current size.
        let dup = record("sys", "f0-0", "x", 0);
        let out = s
            .ingest("agent-1", &[dup], at(200), &TestSigner)
            .await
            .unwrap();
        assert_eq!(out.checkpoint, Some(resigned));
    }

    fn control(id: &str, status: ControlStatus) -> ControlView {
        ControlView {
            control: id.to_owned(),
            title: format!("control {id}"),
            status,
            reason: "because".to_owned(),
            evidence: Vec::new(),
            findings: Vec::new(),
            maturity: 0,
            maturity_reason: String::new(),
            fresh_until: (status == ControlStatus::Fresh).then(|| at(1_000_000)),
        }
    }

    fn finding(kind: FindingKind, system: &str, control: &str, since: i64, msg: &str) -> Finding {
        Finding::new(
            kind,
            system,
            vec![control.to_owned()],
            at(since),
            Vec::new(),
            msg.to_owned(),
        )
    }

    pub async fn assessment_round_trip(s: &dyn Store) {
        assert!(s.systems().await.unwrap().is_empty());
        assert!(s.system_controls("sys-a").await.unwrap().is_none());
        let controls = vec![
            control("A.6.2.10", ControlStatus::Fresh),
            control("A.10.2", ControlStatus::Missing),
            control("A.6.2.9", ControlStatus::Stale),
            control("A.6.2.4", ControlStatus::Drifted),
            control("A.7.2", ControlStatus::NotApplicable),
            control("A.9.4", ControlStatus::Fresh),
            control("A.10.3", ControlStatus::Excluded),
        ];
        let f_stale = finding(FindingKind::Stale, "sys-a", "A.6.2.4", 5, "old");
        let f_changed_late = finding(FindingKind::Changed, "sys-a", "A.6.2.4", 9, "late");
        let f_changed_early = finding(FindingKind::Changed, "sys-a", "A.6.2.9", 3, "early");
        let a = StoredAssessment {
            system: "sys-a".to_owned(),
            assessed_at: at(100),
            evidence: 42,
            controls: controls.clone(),
            findings: vec![
                f_stale.clone(),
                f_changed_late.clone(),
                f_changed_early.clone(),
            ],
            events: None,
        };
        s.put_assessment(&a).await.unwrap();
        let b = StoredAssessment {
            system: "sys-b".to_owned(),
            assessed_at: at(101),
            evidence: 1,
            controls: vec![control("A.6.2.4", ControlStatus::Missing)],
            findings: vec![finding(FindingKind::Missing, "sys-b", "A.6.2.4", 1, "none")],
            events: None,
        };
        s.put_assessment(&b).await.unwrap();

        let systems = s.systems().await.unwrap();
        assert_eq!(
            systems.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            vec!["sys-a", "sys-b"]
        );
        assert_eq!(
            systems[0].controls,
            StatusCounts {
                fresh: 2,
                stale: 1,
                drifted: 1,
                missing: 1,
                not_applicable: 1,
                excluded: 1,
            }
        );
        assert_eq!(systems[0].evidence, 42);
        assert_eq!(systems[0].assessed_at, Some(at(100)));
        let got = s.system_controls("sys-a").await.unwrap().unwrap();
        assert_eq!(
            got.iter().map(|c| c.control.as_str()).collect::<Vec<_>>(),
            vec![
                "A.6.2.4", "A.6.2.9", "A.6.2.10", "A.7.2", "A.9.4", "A.10.2", "A.10.3"
            ],
            "controls in numeric order"
        );
        assert_eq!(
            got.iter().find(|c| c.control == "A.9.4"),
            controls.iter().find(|c| c.control == "A.9.4")
        );
        // Per system: by kind (as text), then since, then id.
        assert_eq!(
            s.findings(Some("sys-a")).await.unwrap(),
            vec![
                f_changed_early.clone(),
                f_changed_late.clone(),
                f_stale.clone()
            ]
        );
        let all = s.findings(None).await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].system, "sys-b");
        let mut by_kind: HashMap<String, u64> = HashMap::new();
        for f in &all {
            *by_kind.entry(f.kind.as_str().to_owned()).or_default() += 1;
        }
        assert_eq!(
            s.finding_counts()
                .await
                .unwrap()
                .into_iter()
                .collect::<HashMap<_, _>>(),
            by_kind,
            "counts agree with the findings"
        );
        assert!(s.findings(Some("nope")).await.unwrap().is_empty());

        // Replacing drops what is no longer there; a finding listed twice is kept once (last).
        let mut again = f_stale.clone();
        again.message = "still old".to_owned();
        let a2 = StoredAssessment {
            system: "sys-a".to_owned(),
            assessed_at: at(200),
            evidence: 43,
            controls: vec![control("A.6.2.4", ControlStatus::Fresh)],
            findings: vec![f_stale, again.clone()],
            events: None,
        };
        s.put_assessment(&a2).await.unwrap();
        assert_eq!(s.findings(Some("sys-a")).await.unwrap(), vec![again]);
        let got = s.system_controls("sys-a").await.unwrap().unwrap();
        assert_eq!(got, vec![control("A.6.2.4", ControlStatus::Fresh)]);
        let systems = s.systems().await.unwrap();
        assert_eq!(systems[0].evidence, 43);
        assert_eq!(systems[0].controls.fresh, 1);
        assert_eq!(systems[0].assessed_at, Some(at(200)));
        assert_eq!(s.findings(Some("sys-b")).await.unwrap().len(), 1);
        // A system with no controls is known, with an empty list.
        let empty = StoredAssessment {
            system: "sys-c".to_owned(),
            assessed_at: at(300),
            evidence: 0,
            controls: Vec::new(),
            findings: Vec::new(),
            events: None,
        };
        s.put_assessment(&empty).await.unwrap();
        assert_eq!(s.system_controls("sys-c").await.unwrap(), Some(Vec::new()));
    }

    pub async fn tokens(s: &dyn Store) {
        let t = |name: &str, role, hash: &str, expires| NewToken {
            name: name.to_owned(),
            role,
            token_hash: hash.to_owned(),
            created_at: at(0),
            expires_at: expires,
            scope: TokenScope::default(),
        };
        s.create_token(&t("agent-1", Role::Agent, "h1", None))
            .await
            .unwrap();
        s.create_token(&t("agent-1", Role::Agent, "h2", Some(at(1000))))
            .await
            .unwrap();
        s.create_token(&t("alice", Role::Auditor, "h3", None))
            .await
            .unwrap();
        assert!(
            s.create_token(&t("bob", Role::Admin, "h3", None))
                .await
                .is_err(),
            "token hashes are unique"
        );
        let info = s.token_by_hash("h2").await.unwrap().unwrap();
        assert_eq!(info.name, "agent-1");
        assert_eq!(info.role, Role::Agent);
        assert_eq!(info.expires_at, Some(at(1000)));
        assert_eq!(info.revoked_at, None);
        assert_eq!(
            s.token_by_hash("h3").await.unwrap().unwrap().role,
            Role::Auditor
        );
        assert!(s.token_by_hash("nope").await.unwrap().is_none());
        assert_eq!(info.scope, TokenScope::default(), "unscoped by default");
        let scope = TokenScope {
            agent_id: Some("agent-7".to_owned()),
            sources: Some(vec!["pipeline".to_owned(), "registry \"x\"".to_owned()]),
            systems: None,
        };
        s.create_token(&NewToken {
            scope: scope.clone(),
            ..t("agent-7", Role::Agent, "h7", None)
        })
        .await
        .unwrap();
        let bound = s.token_by_hash("h7").await.unwrap().unwrap();
        assert_eq!(bound.scope, scope);
        assert_eq!(bound.scope.refusal("agent-7", "pipeline"), None);
        assert!(bound.scope.refusal("agent-8", "pipeline").is_some());
        assert!(bound.scope.refusal("agent-7", "other").is_some());
        assert_eq!(s.revoke_tokens("agent-1", at(50)).await.unwrap(), 2);
        assert_eq!(s.revoke_tokens("agent-1", at(60)).await.unwrap(), 0);
        assert_eq!(s.revoke_tokens("nobody", at(60)).await.unwrap(), 0);
        assert_eq!(
            s.token_by_hash("h1").await.unwrap().unwrap().revoked_at,
            Some(at(50))
        );
        assert_eq!(
            s.token_by_hash("h3").await.unwrap().unwrap().revoked_at,
            None
        );
    }

    pub async fn signer_error_rolls_the_batch_back(s: &dyn Store) {
        let first: Vec<_> = (0..3)
            .map(|i| record("sys", &format!("f{i}"), "x", i))
            .collect();
        let out = s
            .ingest("agent-1", &first, at(1), &TestSigner)
            .await
            .unwrap();
        let cp = out.checkpoint.unwrap();
        let root = s.tree_root(3).await.unwrap();
        // New records, a changed artifact and a duplicate: all or nothing.
        let batch = vec![
            record("sys", "g0", "x", 10),
            record("sys", "f1", "changed", 10),
            first[0].clone(),
            record("sys-new", "g1", "x", 10),
        ];
        let err = s
            .ingest("agent-1", &batch, at(2), &FailingSigner)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Signing(_)), "{err:?}");
        assert_eq!(s.tree_size().await.unwrap(), 3);
        assert_eq!(s.tree_root(3).await.unwrap(), root);
        assert_eq!(s.entries(0, 100).await.unwrap().len(), 3);
        for r in &batch[..2] {
            assert!(
                s.evidence(r.record_id().unwrap().as_str())
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert!(s.history("sys-new").await.unwrap().is_empty());
        assert_eq!(s.latest_checkpoint().await.unwrap(), Some(cp));
        assert!(s.checkpoint_at(6).await.unwrap().is_none());
        assert!(
            s.read_hashes(&[merkle::NodeId::leaf(3)]).await.is_err(),
            "no subtree hash left behind"
        );
        // The same batch then goes in at the next dense indices.
        let out = s
            .ingest("agent-1", &batch, at(3), &TestSigner)
            .await
            .unwrap();
        assert_eq!(
            ids_of(&out),
            vec![(3, false), (4, false), (0, true), (5, false)]
        );
        let e = s
            .evidence(batch[1].record_id().unwrap().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.prev, Some(1));
        assert_eq!(
            s.tree_root(6).await.unwrap(),
            root_from_leaves(&stored_leaves(s).await)
        );
    }

    /// Several tasks on one store instance, overlapping batches: every record once, dense.
    pub async fn concurrent_ingests_in_one_store(s: &dyn Store) {
        // `&dyn Store` is not 'static: the tasks are futures polled together (the queries
        // still overlap in the store); the replica test spawns real tasks on two instances.
        let pool: Vec<EvidenceRecord> = (0..120)
            .map(|i| record("sys", &format!("f{i}"), "x", i))
            .collect();
        let pool = Arc::new(pool);
        let tasks = (0..4).map(|t| {
            let pool = pool.clone();
            async move {
                let mut seen = Vec::new();
                for b in 0..10 {
                    let batch: Vec<_> = (0..12)
                        .map(|k| pool[(t * 17 + b * 11 + k * 3) % pool.len()].clone())
                        .collect();
                    let out = s
                        .ingest("agent-1", &batch, at(b as i64), &TestSigner)
                        .await
                        .unwrap();
                    seen.extend(out.results.into_iter().map(|(id, i, _)| (id, i)));
                }
                seen
            }
        });
        let results = futures_util::future::join_all(tasks).await;
        let mut index_of = HashMap::new();
        for (id, i) in results.into_iter().flatten() {
            let prev = index_of.insert(id.clone(), i);
            assert!(prev.is_none() || prev == Some(i), "{id:?} got two indices");
        }
        let size = s.tree_size().await.unwrap();
        assert_eq!(size, index_of.len() as u64, "every record exactly once");
        let idxs: HashSet<u64> = index_of.values().copied().collect();
        assert_eq!(idxs, (0..size).collect::<HashSet<_>>(), "dense indices");
        assert_eq!(
            s.tree_root(size).await.unwrap(),
            root_from_leaves(&stored_leaves(s).await)
        );
    }

    fn listing(items: &[(&str, &str)]) -> (aims_model::Listing, Vec<u8>) {
        let l = aims_model::Listing::new(
            items
                .iter()
                .map(|(loc, content)| aims_model::ListedArtifact {
                    locator: (*loc).to_owned(),
                    sha256: aims_model::ContentHash::of(content.as_bytes()),
                })
                .collect(),
        );
        let bytes = l.canonical_bytes().unwrap();
        (l, bytes)
    }

    fn confirmation(l: &aims_model::Listing, secs: i64) -> aims_model::Confirmation {
        aims_model::Confirmation::of(
            "agent-1",
            aims_model::SourceRef {
                id: "src".to_owned(),
                source_type: aims_model::SourceType::Dir,
            },
            crate::common::at(secs),
            l,
        )
        .unwrap()
    }

    /// Issue 16 ("check a file"): the records whose content has a SHA-256, in ledger order and
    /// up to the limit, across systems and locators; a confirmation's listing digest is not a
    /// record's content and is never returned.
    pub async fn issue_16_evidence_by_content_sha256(s: &dyn Store) {
        let a = record("sys-a", "a.md", "same", 0);
        let b = record("sys-b", "b.md", "same", 1);
        let c = record("sys-a", "c.md", "other", 2);
        s.ingest("agent-1", &[a.clone(), c.clone()], at(10), &TestSigner)
            .await
            .unwrap();
        s.ingest("agent-1", &[b.clone(), gone(&a, 20)], at(20), &TestSigner)
            .await
            .unwrap();
        let hash = a.sha256.as_str();
        let found = s.evidence_by_sha256(hash, 10).await.unwrap();
        let got: Vec<(u64, &str, &str)> = found
            .iter()
            .map(|e| {
                (
                    e.leaf_index,
                    e.record.system.as_str(),
                    e.record.locator.as_str(),
                )
            })
            .collect();
        // The gone record keeps the content hash it had: it says where the file was.
        assert_eq!(
            got,
            vec![
                (0, "sys-a", "a.md"),
                (2, "sys-b", "b.md"),
                (3, "sys-a", "a.md")
            ]
        );
        assert_eq!(found[0].record, a);
        assert_eq!(found[0].received_at, at(10));
        assert_eq!(found[1].record_id, b.record_id().unwrap());
        assert_eq!(s.evidence_by_sha256(hash, 1).await.unwrap().len(), 1);
        assert!(
            s.evidence_by_sha256(&"0".repeat(64), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let (l, bytes) = listing(&[("c.md", "other")]);
        let conf = confirmation(&l, 30);
        let input = aims_store::ConfirmationInput {
            confirmation: &conf,
            listing: &bytes,
            artifacts: &l.artifacts,
        };
        s.ingest_confirmation("agent-1", &input, at(31), &TestSigner)
            .await
            .unwrap();
        assert!(
            s.evidence_by_sha256(conf.digest.as_str(), 10)
                .await
                .unwrap()
                .is_empty(),
            "a confirmation is not a record"
        );
        let found = s.evidence_by_sha256(c.sha256.as_str(), 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].confirmed_at, Some(at(30)));
    }

    /// Issue 16: the records a source produced, newest first, bounded; never its confirmations,
    /// never another source's records.
    pub async fn issue_16_evidence_by_source(s: &dyn Store) {
        let a = record("sys-a", "a.md", "one", 0);
        let c = record("sys-a", "c.md", "two", 1);
        let mut b = record("sys-b", "b.md", "three", 2);
        b.source.id = "other".to_owned();
        s.ingest("agent-1", &[a.clone(), c.clone()], at(10), &TestSigner)
            .await
            .unwrap();
        s.ingest("agent-1", &[b.clone()], at(20), &TestSigner)
            .await
            .unwrap();
        s.ingest("agent-1", &[gone(&a, 25)], at(25), &TestSigner)
            .await
            .unwrap();
        let (l, bytes) = listing(&[("c.md", "two")]);
        let conf = confirmation(&l, 30);
        let input = aims_store::ConfirmationInput {
            confirmation: &conf,
            listing: &bytes,
            artifacts: &l.artifacts,
        };
        s.ingest_confirmation("agent-1", &input, at(31), &TestSigner)
            .await
            .unwrap();
        let found = s.evidence_by_source("src", 10).await.unwrap();
        let got: Vec<(u64, &str, aims_model::RecordEvent)> = found
            .iter()
            .map(|e| (e.leaf_index, e.record.locator.as_str(), e.record.event))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "a.md", aims_model::RecordEvent::Gone),
                (1, "c.md", aims_model::RecordEvent::Observed),
                (0, "a.md", aims_model::RecordEvent::Observed),
            ]
        );
        assert_eq!(found[1].confirmed_at, Some(at(30)));
        assert_eq!(s.evidence_by_source("src", 1).await.unwrap().len(), 1);
        let other = s.evidence_by_source("other", 10).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].record, b);
        assert!(s.evidence_by_source("none", 10).await.unwrap().is_empty());
    }

    /// DESIGN §12.1: one leaf per confirmation however many artifacts; the listing is kept by
    /// digest; artifacts whose newest record has the listed content get the confirmation's time;
    /// a changed, gone or unknown artifact does not; a repeat is the same leaf.
    pub async fn confirmations_are_one_leaf_and_move_observation_time(s: &dyn Store) {
        let a = record("sys", "a", "x", 0);
        let b = record("sys", "b", "y", 0);
        let c = record("sys", "c", "z", 0);
        s.ingest(
            "agent-1",
            &[a.clone(), b.clone(), c.clone()],
            at(1),
            &TestSigner,
        )
        .await
        .unwrap();
        s.ingest("agent-1", &[gone(&c, 5)], at(5), &TestSigner)
            .await
            .unwrap();
        // a unchanged, b listed with other content, c gone, d never shipped.
        let (l, bytes) = listing(&[("a", "x"), ("b", "other"), ("c", "z"), ("d", "w")]);
        let conf = confirmation(&l, 100);
        let input = aims_store::ConfirmationInput {
            confirmation: &conf,
            listing: &bytes,
            artifacts: &l.artifacts,
        };
        let out = s
            .ingest_confirmation("agent-1", &input, at(101), &TestSigner)
            .await
            .unwrap();
        assert_eq!((out.leaf_index, out.duplicate), (4, false));
        assert_eq!((out.matched, out.unmatched), (1, 3));
        assert_eq!(out.tree_size, 5);
        assert_eq!(out.systems_touched, vec!["sys".to_owned()]);
        assert_eq!(out.checkpoint.as_ref().unwrap().size, 5);
        assert_eq!(
            s.confirmation_listing(conf.digest.as_str()).await.unwrap(),
            Some(bytes.clone())
        );
        // The entry is a confirmation entry with no prev; a second one links to it.
        let row = &s.entries(4, 1).await.unwrap()[0];
        let entry = LedgerEntry::parse(&row.entry).unwrap();
        assert_eq!(entry.confirmation.as_ref(), Some(&conf));
        assert_eq!(entry.prev, None);
        let h = s.history("sys").await.unwrap();
        let by_loc = |l: &str| h.iter().rfind(|e| e.record.locator == l).unwrap();
        assert_eq!(by_loc("a").confirmed_at, Some(at(100)));
        assert_eq!(by_loc("b").confirmed_at, None);
        assert_eq!(by_loc("c").confirmed_at, None);
        assert_eq!(s.system_ids().await.unwrap(), vec!["sys".to_owned()]);
        assert!(
            s.evidence(out.confirmation_id.as_str())
                .await
                .unwrap()
                .is_none(),
            "a confirmation is not an evidence record"
        );
        // The same confirmation again: the same leaf, nothing appended.
        let again = s
            .ingest_confirmation("agent-1", &input, at(102), &TestSigner)
            .await
            .unwrap();
        assert_eq!(
            (again.leaf_index, again.duplicate, again.tree_size),
            (4, true, 5)
        );
        // A later one: a new leaf chained to the first, and a newer time.
        let conf2 = confirmation(&l, 200);
        let out2 = s
            .ingest_confirmation(
                "agent-1",
                &aims_store::ConfirmationInput {
                    confirmation: &conf2,
                    listing: &bytes,
                    artifacts: &l.artifacts,
                },
                at(201),
                &TestSigner,
            )
            .await
            .unwrap();
        assert_eq!(out2.leaf_index, 5);
        let entry = LedgerEntry::parse(&s.entries(5, 1).await.unwrap()[0].entry).unwrap();
        assert_eq!(entry.prev, Some(4));
        let h = s.history("sys").await.unwrap();
        assert_eq!(
            h.iter()
                .find(|e| e.record.locator == "a")
                .unwrap()
                .confirmed_at,
            Some(at(200))
        );
        // New content for a: the old confirmation no longer applies to it.
        s.ingest(
            "agent-1",
            &[record("sys", "a", "x2", 300)],
            at(300),
            &TestSigner,
        )
        .await
        .unwrap();
        let h = s.history("sys").await.unwrap();
        assert_eq!(
            h.iter()
                .rfind(|e| e.record.locator == "a")
                .unwrap()
                .confirmed_at,
            None
        );
        assert_eq!(
            s.tree_root(7).await.unwrap(),
            root_from_leaves(&stored_leaves(s).await)
        );
        let src = &s.sources(at(300)).await.unwrap()[0];
        assert_eq!(src.last_confirmed_at, Some(at(200)));
    }

    pub async fn heartbeats_and_source_health(s: &dyn Store) {
        use aims_model::wire::{SourceHeartbeat, SourceStatus};
        let beat = |id: &str, secs: i64, ok: bool| SourceHeartbeat {
            source: aims_model::SourceRef {
                id: id.to_owned(),
                source_type: aims_model::SourceType::Git,
            },
            interval_secs: 300,
            polled_at: at(secs),
            ok,
            error: (!ok).then(|| "list failed: unreachable".to_owned()),
            listed: 7,
            records: 2,
        };
        s.put_heartbeats(
            "agent-1",
            &[beat("repo", 0, true), beat("bucket", 0, false)],
        )
        .await
        .unwrap();
        let now = at(60);
        let got = s.sources(now).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].source.as_str(), got[0].status),
            ("bucket", SourceStatus::Failing)
        );
        assert_eq!(
            got[0].last_error.as_deref(),
            Some("list failed: unreachable")
        );
        assert_eq!(
            (got[1].source.as_str(), got[1].status),
            ("repo", SourceStatus::Ok)
        );
        assert_eq!(got[1].last_poll_at, Some(at(0)));
        assert_eq!(
            (got[1].listed, got[1].records, got[1].interval_secs),
            (7, 2, 300)
        );
        // Recovery clears the error; an older heartbeat arriving late changes nothing.
        s.put_heartbeats("agent-1", &[beat("bucket", 30, true)])
            .await
            .unwrap();
        s.put_heartbeats("agent-1", &[beat("bucket", 10, false)])
            .await
            .unwrap();
        let got = s.sources(now).await.unwrap();
        assert_eq!(got[0].status, SourceStatus::Ok);
        assert_eq!(got[0].last_error, None);
        assert_eq!(got[0].last_poll_at, Some(at(30)));
        // Silent after 3 intervals, at least an hour: 300 s interval → 3600 s.
        let later = s.sources(at(3601)).await.unwrap();
        assert_eq!(later[1].status, SourceStatus::Silent);
        assert_eq!(later[1].silent_since, Some(at(0)));
        assert_eq!(
            s.sources(at(3600)).await.unwrap()[1].status,
            SourceStatus::Ok
        );
    }
    /// Issue 18 (M4, M8): tokens keep their `systems` scope; sessions join their token's current
    /// state, are revoked by token name, deleted on sign-out, and expired ones are swept.
    pub async fn issue_18_sessions_and_system_scope(s: &dyn Store) {
        let scope = TokenScope {
            agent_id: Some("cluster-a".to_owned()),
            sources: None,
            systems: Some(vec!["fraud".to_owned(), "churn".to_owned()]),
        };
        let token = |name: &str, role, hash: &str, expires, scope: TokenScope| NewToken {
            name: name.to_owned(),
            role,
            token_hash: hash.to_owned(),
            created_at: at(0),
            expires_at: expires,
            scope,
        };
        s.create_token(&token("cluster-a", Role::Agent, "ha", None, scope.clone()))
            .await
            .unwrap();
        let got = s.token_by_hash("ha").await.unwrap().unwrap();
        assert_eq!(got.scope, scope);
        assert_eq!(got.name, "cluster-a");
        assert!(s.token_by_hash("nope").await.unwrap().is_none());
        // A token made the old way reads as any system.
        s.create_token(&token(
            "old",
            Role::Agent,
            "ho",
            None,
            TokenScope::default(),
        ))
        .await
        .unwrap();
        assert_eq!(
            s.token_by_hash("ho").await.unwrap().unwrap().scope,
            TokenScope::default()
        );

        s.create_token(&token(
            "lead",
            Role::Viewer,
            "hv",
            Some(at(5000)),
            TokenScope::default(),
        ))
        .await
        .unwrap();
        let session = |id: &str, created: i64, expires: i64| NewSession {
            id_hash: id.to_owned(),
            token_hash: "hv".to_owned(),
            token_name: "lead".to_owned(),
            role: Role::Viewer,
            created_at: at(created),
            expires_at: at(expires),
        };
        s.create_session(&session("s1", 100, 200)).await.unwrap();
        s.create_session(&session("s2", 100, 1000)).await.unwrap();
        assert!(
            s.create_session(&session("s2", 100, 1000)).await.is_err(),
            "session ids are unique"
        );
        let s1 = s.session_by_hash("s1").await.unwrap().unwrap();
        assert_eq!(s1.created_at, at(100));
        assert_eq!(s1.expires_at, at(200));
        assert_eq!(s1.revoked_at, None);
        assert_eq!(s1.token.name, "lead");
        assert_eq!(s1.token.role, Role::Viewer);
        assert_eq!(s1.token.expires_at, Some(at(5000)));
        assert!(s1.is_valid_at(at(150)));
        assert!(!s1.is_valid_at(at(200)), "expired at its expiry");
        assert!(s.session_by_hash("nope").await.unwrap().is_none());

        // Creating a session sweeps the ones that expired by then.
        s.create_session(&session("s3", 300, 1000)).await.unwrap();
        assert!(s.session_by_hash("s1").await.unwrap().is_none(), "swept");
        assert!(s.session_by_hash("s2").await.unwrap().is_some());

        // Sign-out deletes one session.
        assert!(s.delete_session("s3").await.unwrap());
        assert!(!s.delete_session("s3").await.unwrap());
        assert!(s.session_by_hash("s3").await.unwrap().is_none());

        // Revoking the token ends its sessions through the join, and by name explicitly.
        assert_eq!(s.revoke_tokens("lead", at(400)).await.unwrap(), 1);
        let s2 = s.session_by_hash("s2").await.unwrap().unwrap();
        assert_eq!(s2.token.revoked_at, Some(at(400)));
        assert!(!s2.is_valid_at(at(500)));
        assert_eq!(s.revoke_sessions("lead", at(410)).await.unwrap(), 1);
        assert_eq!(s.revoke_sessions("lead", at(420)).await.unwrap(), 0);
        assert_eq!(s.revoke_sessions("nobody", at(420)).await.unwrap(), 0);
        assert_eq!(
            s.session_by_hash("s2").await.unwrap().unwrap().revoked_at,
            Some(at(410))
        );
    }

    /// Issue 15: finding events written with the assessment that produced them (once per key,
    /// whoever computes them), routed per sink from its floor, claimed once under a lease,
    /// retried, delivered, and counted.
    pub async fn issue_15_outbox(s: &dyn Store) {
        use aims_store::outbox::{DeliveryResult, NewEvent, delivery_id, state};
        let f1 = finding(FindingKind::Stale, "sys-a", "A.6.2.4", 5, "old");
        let f2 = finding(FindingKind::Changed, "sys-a", "A.6.2.6", 6, "new");
        // Without events requested, nothing is recorded; a sink first seen now starts here.
        let quiet = StoredAssessment {
            system: "sys-a".to_owned(),
            assessed_at: at(100),
            evidence: 1,
            controls: Vec::new(),
            findings: vec![f1.clone()],
            events: None,
        };
        s.put_assessment(&quiet).await.unwrap();
        assert_eq!(s.sink_floor("hook").await.unwrap(), 0);
        assert!(s.unrouted_events("hook", 0, 10).await.unwrap().is_empty());

        // f1 resolves, f2 opens, plus an extra event; the same assessment again adds nothing.
        let extra = NewEvent {
            key: "evidence.expiring:sys-a:x:1".to_owned(),
            event: "evidence.expiring".to_owned(),
            system: Some("sys-a".to_owned()),
            payload: "{}".to_owned(),
            created_at: at(101),
        };
        let next = StoredAssessment {
            system: "sys-a".to_owned(),
            assessed_at: at(101),
            evidence: 2,
            controls: Vec::new(),
            findings: vec![f2.clone()],
            events: Some(vec![extra.clone()]),
        };
        s.put_assessment(&next).await.unwrap();
        s.put_assessment(&next).await.unwrap();
        let events = s.unrouted_events("hook", 0, 10).await.unwrap();
        let mut kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            ["evidence.expiring", "finding.opened", "finding.resolved"]
        );
        assert_eq!(s.put_events(&[extra]).await.unwrap(), 0, "one row per key");
        // A sink first seen after these events is not told about them.
        let late_floor = s.sink_floor("late").await.unwrap();
        assert!(
            s.unrouted_events("late", late_floor, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.sink_floor("hook").await.unwrap(), 0, "a floor is kept");

        // Route: the expiring event is not wanted (skipped), the others pending.
        let routes: Vec<(u64, bool)> = events
            .iter()
            .map(|e| (e.seq, e.event != "evidence.expiring"))
            .collect();
        s.route_events("hook", &routes, at(102)).await.unwrap();
        s.route_events("hook", &routes, at(102)).await.unwrap();
        assert!(s.unrouted_events("hook", 0, 10).await.unwrap().is_empty());

        // Claimed once while leased; the delivery id is derived from the key and the sink.
        let claimed = s.claim_deliveries(at(103), at(160), 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        for c in &claimed {
            assert_eq!(c.delivery, delivery_id(&c.event.key, "hook"));
            assert_eq!(c.attempts, 0);
        }
        assert!(
            s.claim_deliveries(at(104), at(160), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // One retried later, one delivered.
        let (a, b) = (&claimed[0], &claimed[1]);
        s.finish_delivery(
            a.event.seq,
            "hook",
            &DeliveryResult::Retry {
                next_at: at(200),
                error: "503".into(),
            },
            at(105),
        )
        .await
        .unwrap();
        s.finish_delivery(b.event.seq, "hook", &DeliveryResult::Delivered, at(105))
            .await
            .unwrap();
        assert!(
            s.claim_deliveries(at(150), at(260), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = s.claim_deliveries(at(200), at(260), 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery, a.delivery, "the same id on every retry");
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].first_attempt_at, Some(at(105)));
        // A lease that ran out (a replica died mid-attempt) is claimed again.
        let after_lease = s.claim_deliveries(at(261), at(300), 10).await.unwrap();
        assert_eq!(after_lease.len(), 1);
        s.finish_delivery(
            a.event.seq,
            "hook",
            &DeliveryResult::Dead {
                error: "gave up".into(),
            },
            at(262),
        )
        .await
        .unwrap();

        let counts = s.outbox_counts().await.unwrap();
        let get = |st: &str| {
            counts
                .iter()
                .find(|c| c.sink == "hook" && c.state == st)
                .map(|c| (c.count, c.last_error.clone()))
        };
        assert_eq!(get(state::DELIVERED), Some((1, None)));
        assert_eq!(get(state::DEAD), Some((1, Some("gave up".to_owned()))));
        assert_eq!(get(state::SKIPPED), Some((1, None)));
        assert_eq!(get(state::PENDING), None);
    }

    /// Issue 14: uploaded bytes kept by digest, once, read back whole, removable.
    pub async fn issue_14_blobs(s: &dyn Store) {
        use aims_store::BlobData;
        let bytes = b"%PDF-1.7 the AI policy".to_vec();
        let digest = aims_model::ContentHash::of(&bytes);
        let stage = |name: &str| {
            let dir = s.blob_staging_dir();
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(name);
            std::fs::write(&p, &bytes).unwrap();
            p
        };
        assert!(s.blob(&digest).await.unwrap().is_none());
        let first = stage("a");
        assert!(
            s.put_blob(&digest, bytes.len() as u64, &first)
                .await
                .unwrap()
        );
        assert!(!first.exists(), "the staged file is consumed");
        let second = stage("b");
        assert!(
            !s.put_blob(&digest, bytes.len() as u64, &second)
                .await
                .unwrap()
        );
        assert!(!second.exists());
        let blob = s.blob(&digest).await.unwrap().unwrap();
        assert_eq!(blob.size, bytes.len() as u64);
        let read = match blob.data {
            BlobData::File(p) => std::fs::read(p).unwrap(),
            BlobData::Bytes(b) => b,
        };
        assert_eq!(read, bytes);
        s.delete_blob(&digest).await.unwrap();
        assert!(s.blob(&digest).await.unwrap().is_none());
    }
}
