//! Spool durability: atomic batch files, restart, ack, reject and quarantine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

mod common;

use aims_agent::spool::{SPOOL_FORMAT_VERSION, Spool};

#[test]
fn append_splits_into_batches_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let first = {
        let spool = Spool::open(&spool_dir, 2).unwrap();
        let paths = spool
            .append("ml-repo", &common::records("ml-repo", 5))
            .unwrap();
        assert_eq!(paths.len(), 3, "5 records in batches of 2");
        assert_eq!(spool.pending().unwrap(), paths);
        paths
    };
    // Names are `<seq:020>-<source>.json`.
    let name = first[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(name.len(), 20 + 1 + "ml-repo.json".len());
    assert!(name.ends_with("-ml-repo.json"));

    // A new instance (a restarted agent) sees the same files, in order, and continues the
    // sequence after them.
    let spool = Spool::open(&spool_dir, 2).unwrap();
    assert_eq!(spool.pending().unwrap(), first);
    let batch = spool.read(&first[0]).unwrap();
    assert_eq!(batch.v, SPOOL_FORMAT_VERSION);
    assert_eq!(batch.records, common::records("ml-repo", 2));
    let later = spool.append("other", &common::records("other", 1)).unwrap();
    let all = spool.pending().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.last(), later.last(), "new batches sort after old ones");

    // The on-disk format is {"v":1,"records":[...]}.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&first[2]).unwrap()).unwrap();
    assert_eq!(v["v"], 1);
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
}

#[test]
fn empty_append_writes_nothing_and_no_temp_files_remain() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    assert!(spool.append("s", &[]).unwrap().is_empty());
    spool.append("s", &common::records("s", 3)).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    assert_eq!(spool.pending().unwrap().len(), 1);
}

#[test]
fn crash_leftover_temp_files_are_removed_and_never_shipped() {
    let dir = tempfile::tempdir().unwrap();
    // A half-written batch from a crash: not a pending file, and removed on open.
    let tmp = dir.path().join(".tmp-00000000000000000007-s.json");
    std::fs::write(&tmp, b"{\"v\":1,\"reco").unwrap();
    let spool = Spool::open(dir.path(), 500).unwrap();
    assert!(!tmp.exists());
    assert!(spool.pending().unwrap().is_empty());
}

#[test]
fn ack_deletes_and_reject_moves_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1).unwrap();
    let paths = spool.append("s", &common::records("s", 2)).unwrap();
    spool.ack(&paths[0]).unwrap();
    assert!(!paths[0].exists());
    spool.ack(&paths[0]).unwrap(); // idempotent

    let moved = spool
        .reject(&paths[1], "HTTP 400: invalid_record: bad")
        .unwrap();
    assert!(!paths[1].exists());
    assert!(moved.exists());
    assert_eq!(moved.parent().unwrap(), spool.rejected_dir());
    let reason = std::fs::read_to_string(spool.rejected_dir().join(format!(
        "{}.reason",
        moved.file_name().unwrap().to_str().unwrap()
    )))
    .unwrap();
    assert!(reason.contains("invalid_record"));
    assert!(spool.pending().unwrap().is_empty());
    assert_eq!(spool.rejected().unwrap(), vec![moved.clone()]);

    // Rejected files keep the sequence moving forward after a restart.
    let spool = Spool::open(dir.path(), 1).unwrap();
    let next = spool.append("s", &common::records("s", 1)).unwrap();
    assert!(next[0].file_name().unwrap() > moved.file_name().unwrap());
}

#[test]
fn corrupt_file_is_quarantined_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 10).unwrap();
    let bad = dir.path().join("00000000000000000001-s.json");
    std::fs::write(&bad, b"not json").unwrap();
    assert_eq!(spool.pending().unwrap(), vec![bad.clone()]);
    assert!(spool.read(&bad).is_err());
    assert!(spool.read_or_quarantine(&bad).unwrap().is_none());
    assert!(!bad.exists());
    let kept = spool.rejected_dir().join("00000000000000000001-s.json");
    assert_eq!(std::fs::read(&kept).unwrap(), b"not json");
    assert!(
        spool
            .rejected_dir()
            .join("00000000000000000001-s.json.reason")
            .exists()
    );

    // A wrong format version is corrupt too.
    let v2 = dir.path().join("00000000000000000002-s.json");
    std::fs::write(&v2, br#"{"v":2,"records":[]}"#).unwrap();
    assert!(spool.read_or_quarantine(&v2).unwrap().is_none());
    assert!(spool.pending().unwrap().is_empty());
}
