//! Issue 11: unchanged evidence the agent still sees stays fresh; evidence nobody looks at goes
//! stale and its source silent. The clock moves with libfaketime (Debian's `faketime`, installed
//! by the test command): the real binaries run 40 days in the future, nothing sleeps.
//!
//! A git repository holds a CODEOWNERS file (`process_control` → A.6.1.3, a 30-day window on
//! the observation time). Day 0: the agent ships it, A.6.1.3 is fresh. Day 40, agent stopped:
//! A.6.1.3 is stale, the source is `silent` in `GET /v1/sources` and the reason says so. Day 40,
//! agent runs: it confirms the unchanged file (one ledger entry, no content download), A.6.1.3
//! is fresh again, the source is `ok`, and an export of the ledger verifies offline with the
//! confirmation's listing checked against its signed digest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aims_e2e::{ServerProcess, agent_once, bin, create_token, git, http};
use serde_json::Value;

/// libfaketime's preload library (Debian's path), or a clear failure.
fn libfaketime() -> PathBuf {
    for p in [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("libfaketime not found: the test command installs it (apt-get install faketime)");
}

/// Environment that runs a process `days` in the future. Only the wall clock moves: monotonic
/// time (tokio's timers) stays real.
fn future(days: u32) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".into(),
            libfaketime().to_string_lossy().into_owned(),
        ),
        ("FAKETIME".into(), format!("+{days}d")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("FAKETIME_DONT_RESET".into(), "1".into()),
    ]
}

/// `aims-server serve` with extra environment (the shared helper has no such knob), killed on
/// drop.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, database: &str, env: &[(String, String)]) -> Self {
        let log = dir.join(format!("server-{}.log", env.len()));
        let logf = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(bin("aims-server").unwrap())
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "server did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Self { child, url, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(url: &str, token: &str) -> Value {
    let r = http()
        .unwrap()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "GET {url}: {status} {body}");
    serde_json::from_str(&body).unwrap()
}

/// The A.6.1.3 entry of `system`, once `pred` holds for it (bounded: the server re-assesses on
/// start-up and on ingest, both within seconds).
async fn control_when(
    url: &str,
    token: &str,
    system: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = get(&format!("{url}/v1/systems/{system}/controls"), token).await;
        let c = v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["control"] == "A.6.1.3")
            .cloned()
            .unwrap();
        if pred(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "A.6.1.3 never matched: {c:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn agent_config(dir: &Path, url: &str, token: &str, repo: &Path) -> PathBuf {
    let text = format!(
        "version: 1\nagent: {{ id: cluster-a }}\nserver: {{ url: \"{url}\", token: \"{token}\" }}\n\
         spool_dir: \"{spool}\"\nsources:\n  - {{ id: ml-repo, type: git, path: \"{repo}\", \
         system: fraud, interval_secs: 300 }}\n",
        spool = dir.join("spool").display(),
        repo = repo.display()
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_agent(cfg: &Path, env: &[(String, String)]) -> String {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = agent_once(cfg, &env, Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "agent failed:\n{}", run.stderr);
    run.stderr
}

#[tokio::test]
async fn unchanged_evidence_the_agent_still_sees_stays_fresh() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join(".github")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    std::fs::write(repo.join("CODEOWNERS"), "* @acme/ml-platform\n").unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "owners"]).unwrap();

    let sdir = work.path().join("server");
    std::fs::create_dir_all(&sdir).unwrap();
    let db = format!("sqlite://{}", sdir.join("aims.db").display());
    let (agent_token, viewer, auditor) = {
        let s = ServerProcess::start_with(&sdir, &db, "127.0.0.1:0", &[]).unwrap();
        let t = (
            s.token("agent", "cluster-a").unwrap(),
            s.token("viewer", "lead").unwrap(),
            create_token(&db, "auditor", "auditor").unwrap(),
        );
        drop(s);
        t
    };

    // Day 0: shipped and fresh.
    let day0 = Server::start(&sdir, &db, &[]);
    let cfg = agent_config(work.path(), &day0.url, &agent_token, &repo);
    let out = run_agent(&cfg, &[]);
    assert!(out.contains("ml-repo: 1 listed, 1 fetched"), "{out}");
    let c = control_when(&day0.url, &viewer, "fraud", |c| c["status"] == "fresh").await;
    assert!(
        c["evidence"][0]["locator"]
            .as_str()
            .unwrap()
            .ends_with("#CODEOWNERS")
    );
    let size0 = get(&format!("{}/v1/systems", day0.url), &viewer).await;
    let evidence0 = size0["systems"][0]["evidence"].as_u64().unwrap();
    let sources = get(&format!("{}/v1/sources", day0.url), &viewer).await;
    assert_eq!(sources["sources"][0]["status"], "ok", "{sources:#}");
    assert_eq!(sources["sources"][0]["agent"], "cluster-a");
    assert_eq!(sources["sources"][0]["source"], "ml-repo");
    assert_eq!(sources["sources"][0]["type"], "git");
    drop(day0);

    // Day 40, the agent stopped: stale, and the source is silent.
    let day40 = Server::start(&sdir, &db, &future(40));
    let c = control_when(&day40.url, &viewer, "fraud", |c| c["status"] == "stale").await;
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.contains("silent"), "{reason}");
    assert!(reason.contains("cluster-a/ml-repo"), "{reason}");
    let sources = get(&format!("{}/v1/sources", day40.url), &viewer).await;
    let s = &sources["sources"][0];
    assert_eq!(s["status"], "silent", "{sources:#}");
    assert!(
        s["last_poll_at"].is_string() && s["last_confirmed_at"].is_null(),
        "{s:#}"
    );
    let metrics = http()
        .unwrap()
        .get(format!("{}/metrics", day40.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "aims_source_status{agent=\"cluster-a\",source=\"ml-repo\",status=\"silent\"} 1"
        ),
        "{metrics}"
    );

    // Day 40, the agent runs again: the unchanged file is confirmed, not re-downloaded.
    let cfg = agent_config(work.path(), &day40.url, &agent_token, &repo);
    let out = run_agent(&cfg, &future(40));
    assert!(
        out.contains("ml-repo: 1 listed, 0 fetched, 1 unchanged, 0 gone, 0 shipped, 1 confirmed"),
        "{out}\n{}",
        day40.logs()
    );
    let c = control_when(&day40.url, &viewer, "fraud", |c| c["status"] == "fresh").await;
    assert!(!c["reason"].as_str().unwrap().contains("silent"), "{c:#}");
    let sources = get(&format!("{}/v1/sources", day40.url), &viewer).await;
    let s = &sources["sources"][0];
    assert_eq!(s["status"], "ok", "{sources:#}");
    assert!(s["last_confirmed_at"].is_string(), "{s:#}");
    // No new evidence record; one ledger entry (the confirmation).
    let systems = get(&format!("{}/v1/systems", day40.url), &viewer).await;
    assert_eq!(
        systems["systems"][0]["evidence"].as_u64().unwrap(),
        evidence0
    );
    let cp = http()
        .unwrap()
        .get(format!("{}/v1/log/checkpoint", day40.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let size: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size, evidence0 + 1, "{cp}");
    // A second run the same day confirms nothing more (at most once a day).
    let out = run_agent(&cfg, &future(40));
    assert!(!out.contains("confirmed"), "{out}");

    // The auditor's export carries the listing; the verifier checks it offline.
    let bundle = http()
        .unwrap()
        .get(format!("{}/v1/export", day40.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert!(bundle.status().is_success());
    let bytes = bundle.bytes().await.unwrap();
    let path = work.path().join("bundle.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    let trust = work.path().join("trust.txt");
    let keys = Command::new(bin("aims-server").unwrap())
        .args(["keys", "show", "--database", &db])
        .current_dir(&sdir)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    std::fs::write(&trust, &keys.stdout).unwrap();
    let verify = Command::new(bin("aims-verify").unwrap())
        .arg(&path)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(
        report.contains("1 confirmations (1 listed artifacts in 1 listing files)"),
        "{report}"
    );
}
