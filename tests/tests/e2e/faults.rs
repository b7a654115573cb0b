#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
//! Fault injection, end to end, with the real binaries: nothing is lost and nothing is
//! duplicated when the server is down, when the agent or the server is killed with SIGKILL,
//! when the server answers 5xx/429 or hangs, when the spool cannot be written, and when a
//! source misbehaves.
//!
//! Every test uses a `dir` source of small generated files (each with distinct content) and
//! proves "exactly once" from the ledger itself: the checkpoint size equals the number of files,
//! an export passes `aims-verify`, and every file's locator appears in exactly one entry whose
//! sha256 is the file's. Every process wait is bounded. The tests take a file-wide lock so they
//! run one at a time: they are CPU-bound on a 2-core machine and their timings (kill points,
//! backoff gaps) are only meaningful without three servers competing. Each prints its figures
//! (`--nocapture` shows them). `AIMS_FAULT_SEED` changes the kill points of the kill tests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aims_e2e::{AgentRun, PgDb, ServerProcess, bin, http};
use aims_ledger::merkle::{self, Hash};
use aims_model::EvidenceRecord;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::new(());

/// One fault test at a time (see the module docs).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tiny deterministic PRNG (xorshift64), so kill points are reproducible from the seed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn seed() -> u64 {
    std::env::var("AIMS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_f417)
}

/// Writes `n` small files with distinct content under `root` (50 sub-directories); returns
/// their paths in creation order.
fn make_files(root: &Path, n: usize, tag: &str) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let dir = root.join(format!("d{:02}", i % 50));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{tag}-{i:05}.txt"));
        std::fs::write(&p, format!("artifact {tag} {i}\n")).unwrap();
        out.push(p);
    }
    out
}

fn locator(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn dir_source(id: &str, path: &Path) -> String {
    format!(
        "  - {{ id: {id}, type: dir, path: \"{}\", system: sys, interval_secs: 60 }}\n",
        path.display()
    )
}

/// Writes `dir/agent.yaml`; state goes to `dir/state`.
fn write_config(
    dir: &Path,
    url: &str,
    token: &str,
    server_extra: &str,
    batch_size: usize,
    sources: &[String],
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = format!(
        "version: 1\nagent: {{ id: fault-agent }}\n\
         server: {{ url: \"{url}\", token: \"{token}\"{server_extra} }}\n\
         spool_dir: \"{state}\"\nbatch_size: {batch_size}\nsources:\n{sources}",
        state = dir.join("state").display(),
        sources = sources.concat(),
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// `<spool_dir>` of a config written by [`write_config`].
fn state_dir(cfg: &Path) -> PathBuf {
    cfg.parent().unwrap().join("state")
}

/// Pending batch files (`<seq>-<source>.json`, not temp files) in `<spool_dir>/spool`.
fn pending(cfg: &Path) -> Vec<PathBuf> {
    let dir = state_dir(cfg).join("spool");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.as_bytes().first().is_some_and(u8::is_ascii_digit))
        })
        .collect();
    v.sort();
    v
}

fn rejected(cfg: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state_dir(cfg).join("spool").join("rejected"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Records held in the pending spool files.
fn spooled_records(cfg: &Path) -> usize {
    pending(cfg)
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["records"].as_array().unwrap().len()
        })
        .sum()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A spawned process, SIGKILLed on drop (so a failing assertion never leaks an agent).
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// `aims-agent once --config CFG ARGS…`, stdout and stderr into a log file beside `cfg`.
    fn agent(cfg: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin("aims-agent").unwrap());
        cmd.arg("once").arg("--config").arg(cfg).args(args);
        Self::spawn(cmd, cfg, envs)
    }

    fn spawn(mut cmd: Command, cfg: &Path, envs: &[(&str, &str)]) -> Self {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let log = cfg.with_file_name(format!("agent-{n}.log"));
        let f = File::create(&log).unwrap();
        // The agent is quiet by default; the tests follow its phases in the info lines.
        cmd.env(
            "RUST_LOG",
            "warn,aims_agent=info,aims_collect=info,aims_collect_git=info",
        );
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawning aims-agent");
        Self { child, log }
    }

    fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL (std's `Child::kill` sends SIGKILL on Unix) and reap.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the exit (killing it and failing after `timeout`).
    fn finish(mut self, timeout: Duration) -> AgentRun {
        let Some(status) = self.wait(timeout) else {
            self.kill9();
            panic!(
                "aims-agent did not finish within {timeout:?}; log:\n{}",
                self.log()
            );
        };
        AgentRun {
            code: status.code(),
            stdout: String::new(),
            stderr: self.log(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

fn run_agent(cfg: &Path, args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> AgentRun {
    Proc::agent(cfg, args, envs).finish(timeout)
}

/// Runs a command to completion within `timeout`; returns (exit code, stdout, stderr).
fn run_cmd(cmd: &mut Command, timeout: Duration) -> (Option<i32>, Vec<u8>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.code(), t1.join().unwrap(), t2.join().unwrap())
}

/// A signed checkpoint, parsed.
#[derive(Clone, Debug)]
struct Head {
    size: u64,
    root: Hash,
}

/// A small synchronous API client for the assertions.
struct Api {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Api {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            rt,
            client: http().unwrap(),
        }
    }

    fn get(&self, url: &str, token: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                self.client.get(url).bearer_auth(token).send(),
            )
            .await
            .unwrap_or_else(|_| panic!("GET {url} timed out"))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        })
    }

    fn head(&self, base: &str, token: &str) -> Head {
        let (status, text) = self.get(&format!("{base}/v1/log/checkpoint"), token);
        assert_eq!(status, 200, "checkpoint: {text}");
        let mut lines = text.lines();
        let _origin = lines.next().unwrap();
        let size = lines.next().unwrap().parse().unwrap();
        let root: Hash = base64::engine::general_purpose::STANDARD
            .decode(lines.next().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        Head { size, root }
    }

    fn size(&self, base: &str, token: &str) -> u64 {
        self.head(base, token).size
    }

    /// Fetches `GET /v1/log/proof/consistency` and verifies it between two heads.
    fn check_consistent(&self, base: &str, token: &str, old: &Head, new: &Head) {
        assert!(old.size <= new.size, "tree shrank: {old:?} -> {new:?}");
        if old.size == 0 {
            return;
        }
        let proof: Vec<Hash> = if old.size == new.size {
            Vec::new()
        } else {
            let (status, text) = self.get(
                &format!(
                    "{base}/v1/log/proof/consistency?from={}&to={}",
                    old.size, new.size
                ),
                token,
            );
            assert_eq!(status, 200, "consistency: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            v["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    base64::engine::general_purpose::STANDARD
                        .decode(h.as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap()
                })
                .collect()
        };
        merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root)
            .unwrap_or_else(|e| panic!("checkpoints {old:?} and {new:?} are inconsistent: {e}"));
    }

    /// `GET /v1/evidence/{id}` status.
    fn evidence_status(&self, base: &str, token: &str, id: &str) -> u16 {
        self.get(&format!("{base}/v1/evidence/{id}"), token).0
    }
}

/// Exports the whole ledger with the CLI, checks it with `aims-verify` against the policy of
/// `aims-server keys show`, and returns the ledger entries.
fn export_and_verify(database: &str, work: &Path) -> Vec<Value> {
    export_and_verify_with(&["--database", database], work)
}

/// [`export_and_verify`] with the server's settings given as arguments (`--database`,
/// `--config`).
fn export_and_verify_with(settings: &[&str], work: &Path) -> Vec<Value> {
    std::fs::create_dir_all(work).unwrap();
    let t = Instant::now();
    let (code, trust, err) = run_cmd(
        Command::new(bin("aims-server").unwrap())
            .args(["keys", "show"])
            .args(settings),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "keys show: {err}");
    let trust_path = work.join("policy.txt");
    std::fs::write(&trust_path, trust).unwrap();
    let bundle = work.join("bundle.tar.gz");
    let (code, _, err) = run_cmd(
        Command::new(bin("aims-server").unwrap())
            .arg("export")
            .args(settings)
            .arg("--out")
            .arg(&bundle),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "aims-server export: {err}");
    let exported = t.elapsed();
    let (code, out, err) = run_cmd(
        Command::new(bin("aims-verify").unwrap())
            .arg(&bundle)
            .arg("--trust")
            .arg(&trust_path),
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&out).into_owned() + &err;
    assert_eq!(code, Some(0), "aims-verify failed:\n{out}");
    assert!(out.contains("VERIFIED"), "{out}");
    eprintln!(
        "  export {:.1}s + aims-verify {:.1}s: exit 0",
        exported.as_secs_f64(),
        (t.elapsed() - exported).as_secs_f64()
    );

    let bytes = std::fs::read(&bundle).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "log/entries.jsonl" {
            let mut data = String::new();
            e.read_to_string(&mut data).unwrap();
            return data
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
    }
    panic!("bundle has no log/entries.jsonl")
}

/// Ledger entries grouped by locator, after checking that no record id and no
/// (locator, sha256, event) appears twice.
fn index_entries(entries: &[Value]) -> HashMap<String, Vec<EvidenceRecord>> {
    let mut ids = HashSet::new();
    let mut content = HashSet::new();
    let mut by_loc: HashMap<String, Vec<EvidenceRecord>> = HashMap::new();
    for e in entries {
        let r: EvidenceRecord = serde_json::from_value(e["record"].clone()).unwrap();
        let id = r.record_id().unwrap().to_string();
        assert!(ids.insert(id.clone()), "record {id} is in the ledger twice");
        let key = (r.locator.clone(), r.sha256.to_string(), r.event);
        assert!(
            content.insert(key.clone()),
            "the same content is in the ledger twice: {key:?}"
        );
        by_loc.entry(r.locator.clone()).or_default().push(r);
    }
    by_loc
}

/// Every file has exactly one `observed` entry, with the file's sha256, and nothing else is in
/// the ledger. Returns a few record ids to look up through the API.
fn assert_exactly_once(entries: &[Value], files: &[PathBuf]) -> Vec<String> {
    let by_loc = index_entries(entries);
    let mut sample = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let loc = locator(f);
        let recs = by_loc
            .get(&loc)
            .unwrap_or_else(|| panic!("{loc} is not in the ledger (lost)"));
        assert_eq!(recs.len(), 1, "{loc} is in the ledger {} times", recs.len());
        let r = &recs[0];
        assert_eq!(r.event, aims_model::RecordEvent::Observed, "{loc}");
        let sha = hex::encode(Sha256::digest(std::fs::read(f).unwrap()));
        assert_eq!(r.sha256.as_str(), sha, "{loc}: wrong sha256");
        if i % (files.len() / 10).max(1) == 0 {
            sample.push(r.record_id().unwrap().to_string());
        }
    }
    assert_eq!(
        entries.len(),
        files.len(),
        "the ledger holds entries that are not one per file"
    );
    sample
}

fn summary_line<'a>(stderr: &'a str, source: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.starts_with(&format!("{source}: ")) && l.contains(" listed, "))
        .unwrap_or_else(|| panic!("no summary line for {source} in:\n{stderr}"))
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// 1. The server is down
// ---------------------------------------------------------------------------------------------

/// The server is down for a whole `once`: the agent spools everything, saves its cursor and
/// exits 1 within its retry budget. A new server process on the same database (on another
/// port, given by `AIMS_AGENT__SERVER__URL`) then receives every record exactly once.
#[test]
fn server_down_spools_then_a_new_server_gets_everything_once() {
    let _g = serial();
    let started = Instant::now();
    const N: usize = 5000;
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("server");
    let mut server = ServerProcess::start(&sdir).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let database = server.database.clone();
    let files = make_files(&tmp.path().join("src"), N, "down");
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        500,
        &[dir_source("files", &tmp.path().join("src"))],
    );
    let old_url = server.url.clone();
    server.kill();

    // Three attempts per batch: the retry budget of one `once` is spent in ~2-4 s.
    let t = Instant::now();
    let run = run_agent(
        &cfg,
        &["--max-attempts", "3"],
        &[],
        Duration::from_secs(120),
    );
    let down_secs = t.elapsed().as_secs_f64();
    assert_eq!(run.code, Some(1), "{}", tail(&run.stderr));
    let line = summary_line(&run.stderr, "files");
    assert!(
        line.contains("5000 listed") && line.contains("0 shipped (5000 spooled)"),
        "{line}"
    );
    assert!(
        run.stderr.contains("not delivered after 3 attempts"),
        "{}",
        tail(&run.stderr)
    );
    let batches = pending(&cfg).len();
    assert_eq!(batches, N / 500, "spool files");
    assert_eq!(spooled_records(&cfg), N);
    let cursor = state_dir(&cfg).join("cursors/files.json");
    assert!(cursor.is_file(), "the cursor was not saved");
    eprintln!(
        "server down: once exited 1 after {down_secs:.1}s with {batches} batch files ({N} records) spooled"
    );

    // A new server process on the same database and key directory, on a new port.
    let server2 = ServerProcess::start_with(&sdir, &database, "127.0.0.1:0", &[]).unwrap();
    assert_ne!(server2.url, old_url);
    let t = Instant::now();
    let run = run_agent(
        &cfg,
        &[],
        &[("AIMS_AGENT__SERVER__URL", &server2.url)],
        Duration::from_secs(180),
    );
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{}",
        tail(&run.stderr),
        server2.logs()
    );
    let line = summary_line(&run.stderr, "files");
    assert!(
        line.contains("0 fetched") && line.contains("5000 unchanged"),
        "{line}"
    );
    assert!(
        run.stderr
            .contains("shipped 5000 records in 10 batches (0 duplicates)"),
        "{}",
        tail(&run.stderr)
    );
    eprintln!(
        "server back: once exited 0 after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    assert!(pending(&cfg).is_empty(), "spool not empty");
    assert!(rejected(&cfg).is_empty(), "batches rejected");

    let api = Api::new();
    assert_eq!(api.size(&server2.url, &viewer), N as u64);
    let entries = export_and_verify(&database, &tmp.path().join("export"));
    let sample = assert_exactly_once(&entries, &files);
    for id in &sample {
        assert_eq!(api.evidence_status(&server2.url, &viewer, id), 200, "{id}");
    }
    eprintln!(
        "server down: ledger {N} == files, all once; {:.1}s in total",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 of the agent
// ---------------------------------------------------------------------------------------------

/// `aims-agent once` is SIGKILLed five times at seeded random points, then runs to completion.
///
/// A first poll of 5,000 files takes ~3-4 s here, longer than the 50–800 ms the plan gives for
/// a kill point, so most rounds wait for a phase (an info line of the agent) before their
/// random 50–800 ms delay: two "blind" rounds count from the start (start-up, listing,
/// hashing), one from the end of the poll (spool writes: ten fsynced files, cursor save), one
/// from the first delivered batch (between or during `POST`s, possibly after the server
/// committed a batch but before the agent deleted it) and one from the end of a spool write
/// (cursor save, first `POST`s). After the fourth kill the cursor is deleted as well: that is
/// the state a crash between the spool write and the cursor save leaves, so the fifth run
/// re-polls everything and spools 5,000 records again with new `observed_at` values, which
/// the server must recognise as re-observations.
#[test]
fn agent_killed_at_random_points_loses_and_duplicates_nothing() {
    let _g = serial();
    let started = Instant::now();
    const N: usize = 5000;
    let seed = seed();
    let mut rng = XorShift::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let files = make_files(&tmp.path().join("src"), N, "kill");
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        500,
        &[dir_source("files", &tmp.path().join("src"))],
    );
    let api = Api::new();
    let cursor = state_dir(&cfg).join("cursors/files.json");
    eprintln!("agent kill -9: seed {seed}");
    // (name, log line to wait for before the random delay, delete the cursor after the kill)
    let rounds: [(&str, Option<&str>, bool); 5] = [
        ("blind", None, false),
        ("blind", None, false),
        ("after poll", Some("poll finished"), false),
        (
            "while shipping, cursor dropped",
            Some("batch delivered"),
            true,
        ),
        ("after spool", Some("records spooled"), false),
    ];
    for (i, (kind, marker, drop_cursor)) in rounds.iter().enumerate() {
        let mut p = Proc::agent(&cfg, &[], &[]);
        let t = Instant::now();
        if let Some(marker) = marker {
            while !p.log().contains(marker) && t.elapsed() < Duration::from_secs(60) {
                if p.child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let delay = rng.range(50, 800);
        let exited_early = p.wait(Duration::from_millis(delay));
        let at = t.elapsed();
        p.kill9();
        if *drop_cursor {
            let _ = std::fs::remove_file(&cursor);
        }
        eprintln!(
            "  round {i} ({kind}): SIGKILL at {:.0} ms{}; spool {} files ({} records), cursor {}, ledger {}",
            at.as_secs_f64() * 1000.0,
            if exited_early.is_some() {
                " (had already exited)"
            } else {
                ""
            },
            pending(&cfg).len(),
            spooled_records(&cfg),
            if cursor.exists() { "saved" } else { "absent" },
            api.size(&server.url, &viewer)
        );
    }
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(180));
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{}",
        tail(&run.stderr),
        server.logs()
    );
    eprintln!(
        "  final run: {} / {}",
        summary_line(&run.stderr, "files"),
        run.stderr
            .lines()
            .find(|l| l.starts_with("shipped "))
            .unwrap_or("")
    );
    assert!(pending(&cfg).is_empty() && rejected(&cfg).is_empty());
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    let entries = export_and_verify(&server.database, &tmp.path().join("export"));
    let sample = assert_exactly_once(&entries, &files);
    for id in &sample {
        assert_eq!(api.evidence_status(&server.url, &viewer, id), 200, "{id}");
    }
    // Nothing left to do: a further run ships nothing.
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "{}", tail(&run.stderr));
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    eprintln!(
        "agent kill -9: ledger {N} == files, all once; {:.1}s in total",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. kill -9 of the server during ingest
// ---------------------------------------------------------------------------------------------

/// The server (SQLite) is SIGKILLed three times while an agent ships 5,000 records in batches of
/// 100, at a seeded random point (a tree size, then 0–400 ms more); each time a new server process on the same database must
/// start, its checkpoint must be consistent with the one fetched before the kill, and the next
/// `once` completes the delivery without duplicates.
///
/// Known flake, a real server bug: a kill that lands between the signer writing
/// `aims-keys/last-checkpoint` and the SQLite commit makes the restart fail (see
/// [`server_killed_repeatedly_always_restarts`], ignored, which reproduces it within a few
/// kills). With batches of 100 that window is a few ms of each ~200 ms append, so roughly one
/// run in twenty or thirty hits it.
#[test]
fn server_killed_during_ingest_keeps_a_consistent_ledger() {
    server_killed_during_ingest(None);
}

#[test]
fn server_killed_during_ingest_keeps_a_consistent_ledger_on_postgres() {
    let db = PgDb::create().unwrap();
    server_killed_during_ingest(Some(&db.url()));
}

/// SIGKILLs of the server in the middle of a 5k-artifact ingest, on SQLite (`None`) or on the
/// given PostgreSQL database.
fn server_killed_during_ingest(postgres: Option<&str>) {
    let _g = serial();
    let started = Instant::now();
    const N: usize = 5000;
    let seed = seed() ^ 0x3;
    let mut rng = XorShift::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("server");
    let database = postgres.map_or_else(
        || format!("sqlite://{}", sdir.join("aims.db").display()),
        str::to_owned,
    );
    // The keys live in the server directory whatever the database, so the export below finds them.
    std::fs::create_dir_all(&sdir).unwrap();
    let settings = sdir.join("server.yaml");
    std::fs::write(
        &settings,
        format!("keys_dir: \"{}\"\n", sdir.join("aims-keys").display()),
    )
    .unwrap();
    let settings = settings.display().to_string();
    let start =
        || ServerProcess::start_with(&sdir, &database, "127.0.0.1:0", &["--config", &settings]);
    let mut server = start().unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let store = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let files = make_files(&tmp.path().join("src"), N, "ingest");
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        100,
        &[dir_source("files", &tmp.path().join("src"))],
    );
    let api = Api::new();
    eprintln!("server kill -9 ({store}): seed {seed}");
    for round in 0..3 {
        let before_round = api.size(&server.url, &viewer);
        let target = before_round + rng.range(1, 12) * 100;
        let mut p = Proc::agent(
            &cfg,
            &["--max-attempts", "2"],
            &[("AIMS_AGENT__SERVER__URL", &server.url)],
        );
        let t = Instant::now();
        let mut head = api.head(&server.url, &viewer);
        while head.size < target {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "ingest did not reach {target}: {}",
                p.log()
            );
            assert!(
                p.child.try_wait().unwrap().is_none(),
                "agent ended before the kill: {}",
                tail(&p.log())
            );
            std::thread::sleep(Duration::from_millis(5));
            head = api.head(&server.url, &viewer);
        }
        // A little further into the ingest, so the kill lands inside a request as often as
        // between two; the checkpoint is fetched just before the kill.
        std::thread::sleep(Duration::from_millis(rng.range(0, 400)));
        let before = api.head(&server.url, &viewer);
        server.kill();
        let killed_at = t.elapsed();
        let code = p.wait(Duration::from_secs(60)).map(|s| s.code());
        let log = p.log();
        assert_eq!(code, Some(Some(1)), "{}", tail(&log));
        // Restart on the same database: it must come up (no rollback refusal).
        server = start().unwrap_or_else(|e| {
            panic!(
                "the server does not restart after SIGKILL (if its log says \"was the database \
                 rolled back?\", this is the bug documented on \
                 server_killed_repeatedly_always_restarts): {e:#}"
            )
        });
        let after = api.head(&server.url, &viewer);
        api.check_consistent(&server.url, &viewer, &before, &after);
        eprintln!(
            "  round {round}: SIGKILL at {:.1}s with checkpoint {} fetched just before; after restart {} (consistent); agent exited 1 with {} batch files left",
            killed_at.as_secs_f64(),
            before.size,
            after.size,
            pending(&cfg).len()
        );
    }
    let before = api.head(&server.url, &viewer);
    let run = run_agent(
        &cfg,
        &[],
        &[("AIMS_AGENT__SERVER__URL", &server.url)],
        Duration::from_secs(180),
    );
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{}",
        tail(&run.stderr),
        server.logs()
    );
    assert!(pending(&cfg).is_empty() && rejected(&cfg).is_empty());
    let after = api.head(&server.url, &viewer);
    assert_eq!(after.size, N as u64);
    api.check_consistent(&server.url, &viewer, &before, &after);
    let entries = export_and_verify_with(
        &["--database", &database, "--config", &settings],
        &tmp.path().join("export"),
    );
    let sample = assert_exactly_once(&entries, &files);
    for id in &sample {
        assert_eq!(api.evidence_status(&server.url, &viewer, id), 200, "{id}");
    }
    eprintln!(
        "server kill -9 ({store}): final run {}; ledger {N} == files, all once; {:.1}s in total",
        run.stderr
            .lines()
            .find(|l| l.starts_with("shipped "))
            .unwrap_or(""),
        started.elapsed().as_secs_f64()
    );
}

/// Many SIGKILLs of the server while it ingests tiny batches (one transaction per two records),
/// each followed by a restart on the same database. Regression test for a bug this test found:
/// the key directory used to remember a signed head before the database committed it, so a kill
/// in between made every later start refuse ("was the database rolled back?"). The head is now
/// remembered only after the commit (`LogKeys::remember`).
#[test]
fn server_killed_repeatedly_always_restarts() {
    let _g = serial();
    let started = Instant::now();
    const N: usize = 3000;
    let seed = seed() ^ 0x5;
    let mut rng = XorShift::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("server");
    let mut server = ServerProcess::start(&sdir).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let database = server.database.clone();
    let files = make_files(&tmp.path().join("src"), N, "stress");
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        2,
        &[dir_source("files", &tmp.path().join("src"))],
    );
    let api = Api::new();
    let mut kills = 0;
    while kills < 40 && started.elapsed() < Duration::from_secs(120) {
        let mut p = Proc::agent(
            &cfg,
            &["--max-attempts", "1"],
            &[("AIMS_AGENT__SERVER__URL", &server.url)],
        );
        let t = Instant::now();
        while !p.log().contains("batch delivered") && t.elapsed() < Duration::from_secs(30) {
            if p.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if p.child.try_wait().unwrap().is_some() {
            break; // everything delivered before a kill
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 800)));
        let before = api.head(&server.url, &viewer);
        server.kill();
        kills += 1;
        let _ = p.wait(Duration::from_secs(30));
        drop(p);
        server = ServerProcess::start_with(&sdir, &database, "127.0.0.1:0", &[])
            .unwrap_or_else(|e| {
                panic!("the server does not restart after SIGKILL number {kills} (checkpoint {} before it): {e:#}", before.size)
            });
        let after = api.head(&server.url, &viewer);
        api.check_consistent(&server.url, &viewer, &before, &after);
    }
    let run = run_agent(
        &cfg,
        &[],
        &[("AIMS_AGENT__SERVER__URL", &server.url)],
        Duration::from_secs(240),
    );
    assert_eq!(run.code, Some(0), "{}", tail(&run.stderr));
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    let entries = export_and_verify(&database, &tmp.path().join("export"));
    assert_exactly_once(&entries, &files);
    eprintln!(
        "server kill -9 x{kills}: every restart worked; {:.1}s in total",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. 500/503/429 and a hanging server, through a fault proxy
// ---------------------------------------------------------------------------------------------

/// What the proxy does with the next `POST /v1/evidence`.
#[derive(Clone, Debug)]
enum Fault {
    /// Answer this status with a JSON error body, and `Retry-After: secs` if given.
    Status(u16, Option<u64>),
    /// Hold the request this long, then forward it.
    Hang(Duration),
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: String,
    path: String,
    /// The status answered (0: the client went away before the answer).
    status: u16,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// An HTTP/1.1 proxy in front of the real server that injects [`Fault`]s into the first
/// `POST /v1/evidence` requests and forwards everything else.
struct FaultProxy {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Serves the proxy until the test drops it.
    _rt: tokio::runtime::Runtime,
}

impl FaultProxy {
    fn start(upstream: &str, faults: Vec<Fault>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: http().unwrap(),
            faults: Arc::new(Mutex::new(faults.into())),
            seen: seen.clone(),
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(proxy_handler)
            .with_state(state);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, seen, _rt: rt }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn proxy_handler(
    axum::extract::State(st): axum::extract::State<ProxyState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    let at = Instant::now();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let record = |status: u16| {
        st.seen.lock().unwrap().push(Seen {
            at,
            method: method.to_string(),
            path: path.clone(),
            status,
        });
    };
    // Register the request now (status 0) so that a request abandoned mid-hang is still seen;
    // the status is filled in when the answer is known.
    record(0);
    let idx = st.seen.lock().unwrap().len() - 1;
    let set_status = |status: u16| {
        if let Some(s) = st.seen.lock().unwrap().get_mut(idx) {
            s.status = status;
        }
    };
    let fault = if method == axum::http::Method::POST && path == "/v1/evidence" {
        st.faults.lock().unwrap().pop_front()
    } else {
        None
    };
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            set_status(code);
            let mut resp = axum::response::Response::new(axum::body::Body::from(format!(
                r#"{{"error":{{"code":"injected","message":"fault proxy answered {code}"}}}}"#
            )));
            *resp.status_mut() = StatusCode::from_u16(code).unwrap();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(s) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            return resp;
        }
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut out = st
        .client
        .request(parts.method, format!("{}{path}", st.upstream))
        .body(body);
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            out = out.header(k, v);
        }
    }
    match out.send().await {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let bytes = r.bytes().await.unwrap_or_default();
            set_status(status.as_u16());
            let mut resp = axum::response::Response::new(axum::body::Body::from(bytes));
            *resp.status_mut() = status;
            for (k, v) in &headers {
                if !matches!(
                    k.as_str(),
                    "content-length" | "connection" | "transfer-encoding"
                ) {
                    resp.headers_mut().insert(k, v.clone());
                }
            }
            resp
        }
        Err(e) => {
            set_status(502);
            let mut resp = axum::response::Response::new(axum::body::Body::from(e.to_string()));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp
        }
    }
}

fn posts(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| s.method == "POST" && s.path == "/v1/evidence")
        .collect()
}

/// 500, 503, then 429 with `Retry-After: 2`, then the real server: the agent backs off
/// (growing delays, the 429's two seconds honoured), delivers everything once and exits 0,
/// with a handful of requests in all.
#[test]
fn server_errors_and_retry_after_are_retried_without_a_hot_loop() {
    let _g = serial();
    let started = Instant::now();
    // 1,000 files (two batches) are enough to see the retry schedule; 5,000 would only add
    // export time.
    const N: usize = 1000;
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let files = make_files(&tmp.path().join("src"), N, "retry");
    let proxy = FaultProxy::start(
        &server.url,
        vec![
            Fault::Status(500, None),
            Fault::Status(503, None),
            Fault::Status(429, Some(2)),
        ],
    );
    let cfg = write_config(
        &tmp.path().join("agent"),
        &proxy.url,
        &token,
        "",
        500,
        &[dir_source("files", &tmp.path().join("src"))],
    );
    let t = Instant::now();
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    let took = t.elapsed();
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{}",
        tail(&run.stderr),
        server.logs()
    );
    let seen = proxy.seen();
    let posts = posts(&seen);
    let statuses: Vec<u16> = posts.iter().map(|s| s.status).collect();
    let gaps: Vec<u128> = posts
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_millis())
        .collect();
    eprintln!(
        "retry: once exited 0 in {:.1}s; {} requests in all ({} POST /v1/evidence: {statuses:?}, gaps {gaps:?} ms)",
        took.as_secs_f64(),
        seen.len(),
        posts.len()
    );
    assert_eq!(statuses, [500, 503, 429, 200, 200], "{seen:?}");
    // Backoff: at least half of 500 ms, then of 1 s, then the Retry-After.
    assert!(gaps[0] >= 250, "retry after 500 came after {} ms", gaps[0]);
    assert!(gaps[1] >= 500, "retry after 503 came after {} ms", gaps[1]);
    assert!(
        gaps[2] >= 2000,
        "Retry-After: 2 not honoured: {} ms",
        gaps[2]
    );
    assert!(seen.len() < 20, "too many requests: {seen:?}");
    assert!(pending(&cfg).is_empty() && rejected(&cfg).is_empty());

    let api = Api::new();
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    let entries = export_and_verify(&server.database, &tmp.path().join("export"));
    assert_exactly_once(&entries, &files);
    eprintln!("retry: {:.1}s in total", started.elapsed().as_secs_f64());
}

/// The proxy holds the first `POST` for 6 s, past the agent's 2 s timeout, and then forwards
/// it anyway (as a slow server would eventually commit it). The agent times out, retries,
/// succeeds, and the batch that may have landed twice is in the ledger once.
#[test]
fn a_hanging_server_times_out_and_is_retried() {
    let _g = serial();
    let started = Instant::now();
    const N: usize = 300;
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let files = make_files(&tmp.path().join("src"), N, "hang");
    let proxy = FaultProxy::start(&server.url, vec![Fault::Hang(Duration::from_secs(6))]);
    let cfg = write_config(
        &tmp.path().join("agent"),
        &proxy.url,
        &token,
        ", timeout_secs: 2",
        500,
        &[dir_source("files", &tmp.path().join("src"))],
    );
    let t = Instant::now();
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    let took = t.elapsed();
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{}",
        tail(&run.stderr),
        server.logs()
    );
    assert!(
        run.stderr.contains("will retry"),
        "the first attempt should have timed out and been retried: {}",
        tail(&run.stderr)
    );
    let seen = proxy.seen();
    let posts = posts(&seen);
    assert!(posts.len() >= 2, "{seen:?}");
    let gap = posts[1].at.duration_since(posts[0].at);
    eprintln!(
        "hang: once exited 0 in {:.1}s; {} requests, {} POSTs, retry {:.2}s after the hung one",
        took.as_secs_f64(),
        seen.len(),
        posts.len(),
        gap.as_secs_f64()
    );
    // The retry came after the 2 s timeout (+ backoff), well before the hang ended.
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_secs(6),
        "{gap:?}"
    );
    assert!(seen.len() < 20, "too many requests: {seen:?}");
    assert!(pending(&cfg).is_empty() && rejected(&cfg).is_empty());
    // Let the held request finish (it forwards the batch late) before counting.
    std::thread::sleep(
        Duration::from_secs(6).saturating_sub(t.elapsed()) + Duration::from_millis(500),
    );
    let api = Api::new();
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    let entries = export_and_verify(&server.database, &tmp.path().join("export"));
    assert_exactly_once(&entries, &files);
    eprintln!("hang: {:.1}s in total", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// 5. The spool cannot be written
// ---------------------------------------------------------------------------------------------

fn is_root() -> bool {
    let (code, out, _) = run_cmd(Command::new("id").arg("-u"), Duration::from_secs(10));
    code == Some(0) && String::from_utf8_lossy(&out).trim() == "0"
}

/// What can be simulated as root (the tests run as root, where `chmod 0555` does not stop
/// writes and no tmpfs can be mounted):
/// - **disk full**: the agent runs under `RLIMIT_FSIZE` = 64 KiB with `SIGXFSZ` ignored
///   (`prlimit --fsize`, the ignored disposition survives `exec`), so writing a spool batch
///   larger than that fails with `EFBIG` ("File too large") part-way through the write, exactly
///   where `ENOSPC` would. Reading, listing, the cursor load and the network are unaffected.
/// - **the spool is not a directory**: `<spool_dir>/spool` replaced by a regular file (start-up
///   fails), and a `spool_dir` whose parent is a regular file.
/// - **read-only** (`chmod 0555`): only when not root.
///
/// In every case the agent exits 1 naming the spool, the cursor does not move, nothing is
/// reported shipped, and the next normal run delivers everything exactly once.
#[test]
fn unwritable_spool_fails_clearly_and_loses_nothing() {
    let _g = serial();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let src = tmp.path().join("src");
    let mut files = make_files(&src, 200, "first");
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        500,
        &[dir_source("files", &src)],
    );
    let api = Api::new();
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{}", tail(&run.stderr));
    assert_eq!(api.size(&server.url, &viewer), 200);
    let spool = state_dir(&cfg).join("spool");
    let cursor_path = state_dir(&cfg).join("cursors/files.json");
    let cursor0 = std::fs::read(&cursor_path).unwrap();
    files.extend(make_files(&src, 2000, "second"));

    // Disk full: RLIMIT_FSIZE 64 KiB, SIGXFSZ ignored.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=65536 \"$@\"")
        .arg("sh")
        .arg(bin("aims-agent").unwrap())
        .args(["once", "--config"])
        .arg(&cfg);
    let run = Proc::spawn(cmd, &cfg, &[]).finish(Duration::from_secs(60));
    eprintln!(
        "disk full: exit {:?}; {}",
        run.code,
        summary_line(&run.stderr, "files")
    );
    assert_eq!(run.code, Some(1), "{}", tail(&run.stderr));
    let line = summary_line(&run.stderr, "files");
    assert!(
        line.contains("spool write failed")
            && line.contains(&spool.display().to_string())
            && line.contains("File too large"),
        "{line}"
    );
    assert!(line.contains(" 0 shipped"), "{line}");
    assert_eq!(
        std::fs::read(&cursor_path).unwrap(),
        cursor0,
        "the cursor advanced"
    );
    assert!(pending(&cfg).is_empty(), "{:?}", pending(&cfg));
    let leftovers: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "rejected")
        .collect();
    assert!(leftovers.is_empty(), "spool leftovers {leftovers:?}");
    assert_eq!(api.size(&server.url, &viewer), 200);

    // The spool is a regular file.
    std::fs::rename(&spool, spool.with_extension("moved")).unwrap();
    std::fs::write(&spool, b"not a directory").unwrap();
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(60));
    eprintln!(
        "spool is a file: exit {:?}: {}",
        run.code,
        run.stderr.lines().last().unwrap_or("")
    );
    assert_eq!(run.code, Some(1), "{}", tail(&run.stderr));
    assert!(
        run.stderr
            .contains(&format!("cannot create {}", spool.display())),
        "{}",
        tail(&run.stderr)
    );
    assert_eq!(std::fs::read(&cursor_path).unwrap(), cursor0);
    std::fs::remove_file(&spool).unwrap();
    std::fs::rename(spool.with_extension("moved"), &spool).unwrap();

    // A spool_dir whose parent is a regular file.
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad_state = blocker.join("state");
    let run = run_agent(
        &cfg,
        &[],
        &[("AIMS_AGENT__SPOOL_DIR", bad_state.to_str().unwrap())],
        Duration::from_secs(60),
    );
    eprintln!(
        "spool_dir under a file: exit {:?}: {}",
        run.code,
        run.stderr.lines().last().unwrap_or("")
    );
    assert_eq!(run.code, Some(1), "{}", tail(&run.stderr));
    assert!(
        run.stderr.contains("cannot create")
            && run.stderr.contains(&bad_state.display().to_string()),
        "{}",
        tail(&run.stderr)
    );

    // Read-only spool directory: meaningful only without root's override.
    if is_root() {
        eprintln!("read-only spool: skipped, running as root (chmod 0555 does not stop root)");
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o555)).unwrap();
        let run = run_agent(&cfg, &[], &[], Duration::from_secs(60));
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(run.code, Some(1), "{}", tail(&run.stderr));
        assert!(run.stderr.contains("spool"), "{}", tail(&run.stderr));
        assert_eq!(std::fs::read(&cursor_path).unwrap(), cursor0);
    }

    // A normal run ships all of the second wave.
    assert_eq!(api.size(&server.url, &viewer), 200, "nothing was shipped");
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "{}", tail(&run.stderr));
    let line = summary_line(&run.stderr, "files");
    assert!(
        line.contains("2000 fetched") && line.contains("2000 shipped"),
        "{line}"
    );
    assert_ne!(std::fs::read(&cursor_path).unwrap(), cursor0);
    assert_eq!(api.size(&server.url, &viewer), 2200);
    let entries = export_and_verify(&server.database, &tmp.path().join("export"));
    assert_exactly_once(&entries, &files);
    eprintln!(
        "unwritable spool: ledger 2200 == files, all once; {:.1}s in total",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. A source misbehaves
// ---------------------------------------------------------------------------------------------

/// A dir source whose path does not exist and a git source with an unreachable remote fail and
/// are named in the summary (exit 1), while the healthy dir source beside them, which holds a
/// directory symlink loop, ships every file.
#[test]
fn failing_sources_do_not_stop_a_healthy_one() {
    let _g = serial();
    let started = Instant::now();
    const N: usize = 500;
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let src = tmp.path().join("src");
    let files = make_files(&src, N, "healthy");
    std::os::unix::fs::symlink(".", src.join("loop")).unwrap();
    std::os::unix::fs::symlink("..", src.join("d00/up")).unwrap();
    let missing = tmp.path().join("no-such-dir");
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        500,
        &[
            dir_source("missing-dir", &missing),
            "  - { id: dead-git, type: git, url: \"file:///nonexistent/repo.git\", system: sys, interval_secs: 60 }\n".to_owned(),
            dir_source("healthy", &src),
        ],
    );
    let t = Instant::now();
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    eprintln!(
        "misbehaving sources: exit {:?} in {:.1}s\n  {}\n  {}\n  {}",
        run.code,
        t.elapsed().as_secs_f64(),
        summary_line(&run.stderr, "missing-dir"),
        summary_line(&run.stderr, "dead-git"),
        summary_line(&run.stderr, "healthy"),
    );
    assert_eq!(run.code, Some(1), "{}", tail(&run.stderr));
    for id in ["missing-dir", "dead-git"] {
        let line = summary_line(&run.stderr, id);
        assert!(line.contains(" errors: "), "{line}");
    }
    assert!(
        summary_line(&run.stderr, "missing-dir").contains(&missing.display().to_string()),
        "the error should name the path"
    );
    let line = summary_line(&run.stderr, "healthy");
    assert!(
        line.contains(&format!("{N} listed"))
            && line.contains(&format!("{N} shipped"))
            && !line.contains("errors"),
        "{line}"
    );
    let api = Api::new();
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    let entries = export_and_verify(&server.database, &tmp.path().join("export"));
    assert_exactly_once(&entries, &files);
    eprintln!(
        "misbehaving sources: {:.1}s in total",
        started.elapsed().as_secs_f64()
    );
}

/// File symlinks that loop (`a -> a`, `x -> y -> x`) inside a dir source: the run finishes
/// promptly and every regular file is shipped.
#[test]
fn looping_file_symlinks_do_not_hang_or_break_the_source() {
    let _g = serial();
    const N: usize = 100;
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let src = tmp.path().join("src");
    let files = make_files(&src, N, "links");
    std::os::unix::fs::symlink("self", src.join("self")).unwrap();
    std::os::unix::fs::symlink("y", src.join("d01/x")).unwrap();
    std::os::unix::fs::symlink("x", src.join("d01/y")).unwrap();
    std::os::unix::fs::symlink(".", src.join("loop")).unwrap();
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        500,
        &[dir_source("files", &src)],
    );
    let t = Instant::now();
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(60));
    eprintln!(
        "symlink loops: exit {:?} in {:.1}s: {}",
        run.code,
        t.elapsed().as_secs_f64(),
        summary_line(&run.stderr, "files")
    );
    assert_eq!(run.code, Some(0), "{}", tail(&run.stderr));
    let api = Api::new();
    assert_eq!(api.size(&server.url, &viewer), N as u64);
    let entries = export_and_verify(&server.database, &tmp.path().join("export"));
    assert_exactly_once(&entries, &files);
}

/// A 50 MB file grows (64 KiB appends) while the agent hashes it: the record, if any, must
/// describe a prefix the file really had (its sha256 equals that of the first `size` bytes of
/// the final file), or the artifact must be reported as an error; the agent does not crash.
/// Once the writer stops, the next run records the final content.
#[test]
fn a_file_growing_while_hashed_gives_a_consistent_record() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "fault-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();
    let src = tmp.path().join("src");
    let files = make_files(&src, 50, "small");
    let big = src.join("big.bin");
    let mut rng = XorShift::new(seed());
    let chunk: Vec<u8> = (0..64 * 1024).map(|_| rng.next() as u8).collect();
    {
        use std::io::Write as _;
        let mut f = File::create(&big).unwrap();
        for _ in 0..800 {
            f.write_all(&chunk).unwrap();
        }
    }
    let cfg = write_config(
        &tmp.path().join("agent"),
        &server.url,
        &token,
        "",
        500,
        &[dir_source("files", &src)],
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let big = big.clone();
        let chunk = chunk.clone();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
            let mut appended = 0usize;
            while !stop.load(Ordering::SeqCst) && appended < 400 {
                f.write_all(&chunk).unwrap();
                appended += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            appended
        })
    };
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    stop.store(true, Ordering::SeqCst);
    let appended = writer.join().unwrap();
    let final_bytes = std::fs::read(&big).unwrap();
    eprintln!(
        "growing file: exit {:?}, {appended} chunks appended during the run, final size {} bytes: {}",
        run.code,
        final_bytes.len(),
        summary_line(&run.stderr, "files")
    );
    assert!(matches!(run.code, Some(0 | 1)), "{}", tail(&run.stderr));
    let entries = export_and_verify(&server.database, &tmp.path().join("export1"));
    let by_loc = index_entries(&entries);
    match by_loc.get(&locator(&big)) {
        Some(recs) => {
            assert_eq!(recs.len(), 1);
            let r = &recs[0];
            let size = usize::try_from(r.size).unwrap();
            assert!(
                size >= 800 * chunk.len() && size <= final_bytes.len(),
                "{size}"
            );
            assert_eq!(
                r.sha256.as_str(),
                hex::encode(Sha256::digest(&final_bytes[..size])),
                "the record's sha256 is not that of any prefix the file had"
            );
            eprintln!("  record: size {size}, sha256 = that of the file's first {size} bytes");
        }
        None => {
            assert!(
                summary_line(&run.stderr, "files").contains("big.bin"),
                "no record and no error for the growing file"
            );
            eprintln!("  no record, reported as an error");
        }
    }
    // The writer stopped: the next run records the final content.
    let run = run_agent(&cfg, &[], &[], Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "{}", tail(&run.stderr));
    let entries = export_and_verify(&server.database, &tmp.path().join("export2"));
    let by_loc = index_entries(&entries);
    let newest = by_loc[&locator(&big)].last().unwrap();
    assert_eq!(
        newest.sha256.as_str(),
        hex::encode(Sha256::digest(&final_bytes))
    );
    let small: Vec<Value> = entries
        .iter()
        .filter(|e| e["record"]["locator"] != locator(&big).as_str())
        .cloned()
        .collect();
    assert_exactly_once(&small, &files);
    let api = Api::new();
    assert_eq!(
        api.size(&server.url, &viewer),
        entries.len() as u64,
        "checkpoint and export disagree"
    );
}
