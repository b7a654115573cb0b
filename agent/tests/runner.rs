//! `run_once` end to end: a dir source, the spool, cursors and a real HTTP collector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use aims_agent::runner::run_once;
use common::Reply;

#[tokio::test]
async fn polls_spools_and_ships_then_second_run_fetches_nothing() {
    let (url, st) = common::spawn_server(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = common::data_dir(tmp.path());
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "",
        &format!(
            "  - {{ id: reports, type: dir, path: '{}', system: fraud }}\n",
            data.display()
        ),
    );

    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(report.success(), "{report:?}");
    let s = &report.sources[0];
    assert_eq!(
        (s.listed, s.fetched, s.unchanged, s.gone),
        (3, 3, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.spooled, 3);
    assert_eq!(s.shipped, 3);
    assert_eq!(report.ship.files_acked, 2, "batch_size 2");
    assert_eq!(st.count(), 2);
    assert!(cfg.cursor_path("reports").exists(), "cursor saved");
    assert!(cfg.spool_dir.join("cache").exists());

    // Nothing changed: list only, nothing fetched, nothing sent.
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(report.success(), "{report:?}");
    let s = &report.sources[0];
    assert_eq!(
        (s.listed, s.fetched, s.unchanged, s.spooled),
        (3, 0, 3, 0),
        "{s:?}"
    );
    assert_eq!(st.count(), 2);

    // One file changes: exactly one record.
    std::fs::write(data.join("fraud/notes.txt"), "more notes").unwrap();
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert_eq!(report.sources[0].fetched, 1);
    assert_eq!(report.sources[0].shipped, 1);
    assert_eq!(st.count(), 3);
}

#[tokio::test]
async fn server_down_keeps_records_in_the_spool_until_a_later_run() {
    let script = vec![Reply::Status(503, None, String::new()); 4];
    let (url, st) = common::spawn_server(script).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = common::data_dir(tmp.path());
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "",
        &format!(
            "  - {{ id: reports, type: dir, path: '{}', system: fraud }}\n",
            data.display()
        ),
    );

    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(!report.success());
    assert_eq!(report.sources[0].spooled, 3);
    assert_eq!(report.sources[0].shipped, 0);
    assert_eq!(report.ship.files_remaining, 2);
    assert_eq!(st.count(), 2, "bounded by max_attempts");

    // The cursor advanced (records are durable in the spool), so the next run fetches nothing
    // new but still ships what the first run left behind.
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert_eq!(report.sources[0].fetched, 0);
    assert_eq!(report.ship.files_remaining, 2, "still down: {report:?}");

    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.ship.records_acked, 3);
    assert_eq!(report.ship.files_remaining, 0);
}

#[tokio::test]
async fn a_failing_source_does_not_stop_the_others() {
    let (url, _st) = common::spawn_server(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = common::data_dir(tmp.path());
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "",
        &format!(
            "  - {{ id: missing, type: dir, path: '{}', system: fraud }}\n  - {{ id: reports, type: dir, path: '{}', system: fraud }}\n",
            tmp.path().join("does-not-exist").display(),
            data.display()
        ),
    );
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(!report.success());
    assert_eq!(report.sources.len(), 2);
    assert_eq!(report.sources[0].id, "missing");
    assert!(report.sources[0].failed(), "{report:?}");
    assert_eq!(report.sources[1].id, "reports");
    assert!(!report.sources[1].failed());
    assert_eq!(report.sources[1].shipped, 3);
}

#[tokio::test]
async fn run_polls_ships_and_stops_on_shutdown() {
    let (url, st) = common::spawn_server(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = common::data_dir(tmp.path());
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "",
        &format!(
            "  - {{ id: reports, type: dir, path: '{}', system: fraud, interval_secs: 1 }}\n",
            data.display()
        ),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        aims_agent::runner::run(&cfg, &common::opts(), async {
            let _ = rx.await;
        })
        .await
    });
    // The first poll spools 3 records (2 batches) and wakes the shipper.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while st.count() < 2 {
        assert!(std::time::Instant::now() < deadline, "nothing shipped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A change is picked up by a later cycle.
    std::fs::write(data.join("fraud/notes.txt"), "changed").unwrap();
    while st.count() < 3 {
        assert!(std::time::Instant::now() < deadline, "change not shipped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .expect("run stops promptly")
        .unwrap()
        .unwrap();
    let spool = tmp.path().join("state/spool");
    let leftovers: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "rejected")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn git_source_uses_its_cache_dir_and_ships() {
    let (url, st) = common::spawn_server(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("systems/fraud")).unwrap();
    std::fs::write(repo.join("systems/fraud/model_card.md"), "# card\n").unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    let cfg = common::write_config(
        tmp.path(),
        &url,
        "",
        &format!(
            "  - {{ id: ml-repo, type: git, path: '{}', system_from_path: 'systems/{{system}}/**' }}\n",
            repo.display()
        ),
    );
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.sources[0].fetched, 1);
    assert_eq!(report.sources[0].shipped, 1);
    assert_eq!(st.count(), 1);
    let report = run_once(&cfg, &common::opts()).await.unwrap();
    assert_eq!(report.sources[0].unchanged, 1);
    assert_eq!(st.count(), 1);
}
