//! Issue 18 M5/A6: a ledger altered at rest never serves and is never signed.
//!
//! A real `aims-server` on SQLite receives evidence from a real agent; the database is then
//! edited behind its back (a column, the entry bytes, a deleted row, or bytes and hashes changed
//! consistently below the signed root) and the server restarted. Rows the start-up check reads
//! stop the server before it listens, naming the leaf; an alteration only the whole-ledger
//! check can see makes `/readyz` and ingest answer 503. The same on PostgreSQL for an edited
//! column, plus a sequencer held by a frozen replica: ingest answers 503 with `Retry-After` and
//! `/readyz` says why, instead of hanging.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aims_e2e::{PgDb, ServerProcess, agent_once};

/// Ships three small files from a `dir` source to `server`.
fn ship(server: &ServerProcess, work: &Path) {
    let token = server.token("agent", "cluster-a").unwrap();
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (n, body) in [
        ("a.json", "{}"),
        ("b.json", "[]"),
        ("CODEOWNERS", "* @acme\n"),
    ] {
        std::fs::write(data.join(n), body).unwrap();
    }
    let cfg = work.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nagent: {{ id: cluster-a }}\nserver: {{ url: \"{}\", token: \"{token}\" }}\n\
             spool_dir: \"{}\"\nsources:\n  - {{ id: files, type: dir, path: \"{}\", system: fraud }}\n",
            server.url,
            work.join("spool").display(),
            data.display()
        ),
    )
    .unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

/// Runs a Python sqlite3 script against the database file (python3 is on every test machine;
/// the sqlite3 CLI may not be).
fn sqlite(db: &Path, script: &str) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3, hashlib\ndb = sqlite3.connect({:?})\n{script}\ndb.commit()\n",
            db.display().to_string()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A fresh copy of the server directory (database and keys), tampered by `script`.
fn tampered(original: &Path, name: &str, script: &str) -> (PathBuf, String) {
    let dir = original.parent().unwrap().join(name);
    copy_dir(original, &dir);
    let db = dir.join("aims.db");
    sqlite(&db, script);
    (dir, format!("sqlite://{}", db.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_18_m5_an_altered_ledger_never_serves() {
    let work = tempfile::tempdir().unwrap();
    let sdir = work.path().join("server");
    let mut server = ServerProcess::start(&sdir).unwrap();
    ship(&server, work.path());
    let viewer = server.token("viewer", "lead").unwrap();
    server.stop();
    // SQLite's WAL is folded into the file on a clean stop; copies below are consistent.

    let cases = [
        (
            "column",
            "db.execute(\"UPDATE ledger_entries SET system = 'ghost' WHERE idx = 1\")",
            vec!["leaf 1", "column system"],
        ),
        (
            "bytes",
            "db.execute(\"UPDATE ledger_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'cluster-a', 'cluster-b') AS BLOB) WHERE idx = 0\")",
            vec!["leaf 0", "leaf_hash does not hash"],
        ),
        (
            "deleted",
            "db.execute(\"DELETE FROM ledger_entries WHERE idx = (SELECT MAX(idx) FROM ledger_entries)\")",
            vec!["deleted"],
        ),
    ];
    for (name, script, needles) in cases {
        let (dir, db) = tampered(&sdir, name, script);
        let err = match ServerProcess::start_with(&dir, &db, "127.0.0.1:0", &[]) {
            Ok(_) => panic!("{name}: the server started on an altered ledger"),
            Err(e) => format!("{e:#}"),
        };
        for n in needles {
            assert!(err.contains(n), "{name}: {n:?} not in:\n{err}");
        }
        assert!(
            !err.contains("ApiError"),
            "{name}: the real reason is printed:\n{err}"
        );
    }

    // Bytes, leaf hash and level-0 hash changed together: the start-up check cannot see it
    // (the stored upper levels still give the signed root); the whole-ledger check can.
    let (dir, db) = tampered(
        &sdir,
        "consistent",
        "row = db.execute('SELECT entry FROM ledger_entries WHERE idx = 0').fetchone()[0]\n\
         import re\n\
         new = re.sub(rb'\"size\":(\\d+)', lambda m: b'\"size\":' + str(int(m.group(1)) + 1).encode(), bytes(row), count=1)\n\
         assert new != bytes(row)\n\
         h = hashlib.sha256(b'\\x00' + new).digest()\n\
         import json\n\
         rec = json.loads(new)['record']\n\
         rid = hashlib.sha256(json.dumps(rec, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()).hexdigest()\n\
         db.execute('UPDATE ledger_entries SET entry = ?, leaf_hash = ?, record_id = ? WHERE idx = 0', (new, h, rid))\n\
         db.execute('UPDATE ledger_hashes SET hash = ? WHERE level = 0 AND idx = 0', (h,))",
    );
    let altered = ServerProcess::start_with(&dir, &db, "127.0.0.1:0", &[]).unwrap();
    let client = aims_e2e::http().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let r = client
            .get(format!("{}/readyz", altered.url))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            assert_eq!(r.headers()["retry-after"], "5");
            break r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "readyz never failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("integrity") && body.contains("root over entries"),
        "{body}"
    );
    let agent = altered.token("agent", "late").unwrap();
    let r = client
        .post(format!("{}/v1/evidence", altered.url))
        .bearer_auth(&agent)
        .header("content-type", "application/json")
        .body(r#"{"records":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "no signing on an altered ledger");
    assert!(
        altered.logs().contains("ledger check failed"),
        "{}",
        altered.logs()
    );
    // Reads keep working (so an operator can look), the viewer token still authenticates.
    let r = client
        .get(format!("{}/v1/systems", altered.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// PostgreSQL: an edited column stops the server; a sequencer held by a frozen replica makes
/// ingest answer 503 with Retry-After within seconds and `/readyz` say so.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_a6_postgres_altered_rows_and_a_frozen_replica() {
    let pg = PgDb::create().unwrap();
    let work = tempfile::tempdir().unwrap();
    let sdir = work.path().join("server");
    let keys = work.path().join("keys");
    let settings = work.path().join("server.yaml");
    std::fs::write(&settings, format!("keys_dir: \"{}\"\n", keys.display())).unwrap();
    let extra = ["--config", settings.to_str().unwrap()];
    let mut server = ServerProcess::start_with(&sdir, &pg.url(), "127.0.0.1:0", &extra).unwrap();
    ship(&server, work.path());
    let agent = server.token("agent", "cluster-b").unwrap();

    // A frozen replica: a session holding the sequencer row inside an open transaction.
    let mut holder = Command::new("psql")
        .args([
            &pg.url(),
            "-qc",
            "BEGIN; SELECT size FROM ledger_head FOR UPDATE; SELECT pg_sleep(30); ROLLBACK;",
        ])
        .spawn()
        .unwrap();
    let client = aims_e2e::http().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            assert!(r.text().await.unwrap().contains("append lock"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never noticed the held lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let r = client
        .post(format!("{}/v1/evidence", server.url))
        .bearer_auth(&agent)
        .header("content-type", "application/json")
        .body(
            r#"{"records":[{"v":1,"agent":"cluster-b","source":{"id":"s","type":"dir"},"locator":"file:///x","version":"1","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"observed_at":"2026-01-01T00:00:00Z","system":"fraud","kind":"unclassified"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    let _ = holder.kill();
    let _ = holder.wait();
    server.stop();

    // An edited column: the restart fails naming the leaf.
    let out = Command::new("psql")
        .args([
            &pg.url(),
            "-qc",
            "UPDATE ledger_entries SET system = 'ghost' WHERE idx = 2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = match ServerProcess::start_with(&sdir, &pg.url(), "127.0.0.1:0", &extra) {
        Ok(_) => panic!("the server started on an altered ledger"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("leaf 2") && err.contains("column system"),
        "{err}"
    );
}

/// Issue 18 H1: whatever Unicode a locator holds, an honest ledger exports and verifies; the
/// characters no single-line format can carry (U+2028/U+2029) and bidi overrides are refused at
/// ingest with a 400 that names the field, and NUL in metadata too.
#[tokio::test(flavor = "multi_thread")]
async fn issue_18_h1_every_accepted_locator_verifies() {
    let work = tempfile::tempdir().unwrap();
    let sdir = work.path().join("server");
    let server = ServerProcess::start(&sdir).unwrap();
    let agent = server.token("agent", "cluster-a").unwrap();
    let auditor = server.token("auditor", "auditor").unwrap();
    let client = aims_e2e::http().unwrap();
    let record = |locator: &str, metadata: serde_json::Value| {
        serde_json::json!({"v":1,"agent":"cluster-a","source":{"id":"s","type":"dir"},
            "locator":locator,"version":"1",
            "sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size":0,"observed_at":"2026-01-01T00:00:00Z","system":"fraud","kind":"unclassified",
            "metadata":metadata})
    };
    let post = |records: serde_json::Value| {
        let client = client.clone();
        let url = format!("{}/v1/evidence", server.url);
        let agent = agent.clone();
        async move {
            let r = client
                .post(url)
                .bearer_auth(&agent)
                .json(&serde_json::json!({ "records": records }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for (bad, what) in [
        ("file:///a\u{2028}b", "locator"),
        ("file:///a\u{2029}b", "locator"),
        ("file:///invoice\u{202E}fdp.exe", "locator"),
    ] {
        let (status, body) = post(serde_json::json!([record(bad, serde_json::json!({}))])).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(body.contains(what), "{body}");
    }
    let (status, body) = post(serde_json::json!([record(
        "file:///ok",
        serde_json::json!({"title": "a\u{0}b"})
    )]))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("metadata.title"), "{body}");
    // Valid but awkward locators: non-breaking and ideographic spaces, trailing space, emoji,
    // right-to-left script, a tab-free but long path.
    let odd = [
        "file:///data/a\u{a0}b.json",
        "file:///data/\u{3000}lead.json",
        "file:///data/trailing ",
        "file:///data/\u{1F600}.md",
        "file:///data/\u{5e7}\u{5d1}\u{5d5}\u{5e8}.md",
    ];
    let records: Vec<_> = odd
        .iter()
        .map(|l| {
            record(
                l,
                serde_json::json!({"note": "line\u{2028}separators are fine here"}),
            )
        })
        .collect();
    let (status, body) = post(serde_json::Value::Array(records)).await;
    assert_eq!(status, 200, "{body}");
    let bundle = client
        .get(format!("{}/v1/export", server.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = work.path().join("bundle.tar.gz");
    std::fs::write(&path, &bundle).unwrap();
    let trust = work.path().join("trust.txt");
    let keys = Command::new(aims_e2e::bin("aims-server").unwrap())
        .args(["keys", "show", "--database", &server.database])
        .output()
        .unwrap();
    std::fs::write(&trust, &keys.stdout).unwrap();
    let out = Command::new(aims_e2e::bin("aims-verify").unwrap())
        .arg(&path)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
