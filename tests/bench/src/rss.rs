//! `rss`: memory of the release binaries. Peak RSS of `aims-agent once` hashing the big file of
//! `hash` through a `dir` source and shipping to a real `aims-server`; idle RSS of `aims-agent
//! run` after its first cycle; the server's RSS (and on the `ledger-append` ledger).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::report::Row;
use crate::util::{fmt_kib, group, have, proc_status_kib};
use crate::{Ctx, hash};

const SUITE: &str = "rss";
const TIME: &str = "/usr/bin/time";

/// A child process killed (by its pid) when dropped.
pub(crate) struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("    stopping {}", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The directory of the release binaries (next to this executable).
pub(crate) fn bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable without a directory")?;
    let p = dir.join(name);
    if !p.exists() {
        bail!(
            "{} not found: run `cargo build --release --workspace --bins` first",
            p.display()
        );
    }
    Ok(p)
}

/// Starts `aims-server serve` on a free port; returns the process and its URL.
pub(crate) fn start_server(dir: &Path, database: &str) -> Result<(Proc, String)> {
    std::fs::create_dir_all(dir)?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let mut child = Command::new(bin("aims-server")?)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("spawning aims-server")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let proc = Proc {
        child,
        name: "aims-server",
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(120)).map_err(|_| {
        let logs = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        anyhow::anyhow!("aims-server did not report its address; log:\n{logs}")
    })?;
    Ok((proc, url))
}

fn token(database: &str) -> Result<String> {
    token_for(database, "agent", "bench-agent")
}

/// Creates a token with `role` through `aims-server token create`.
pub(crate) fn token_for(database: &str, role: &str, name: &str) -> Result<String> {
    let out = Command::new(bin("aims-server")?)
        .args([
            "token",
            "create",
            "--role",
            role,
            "--name",
            name,
            "--database",
            database,
        ])
        .output()
        .context("running aims-server token create")?;
    if !out.status.success() {
        bail!(
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn agent_config(dir: &Path, url: &str, token: &str, source: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let cfg = format!(
        "version: 1\nagent: {{ id: bench-agent }}\nserver: {{ url: \"{url}\", token: \"{token}\" }}\n\
         spool_dir: \"{spool}\"\nsources:\n  - {{ id: big, type: dir, path: \"{src}\", system: bench, interval_secs: 3600 }}\n",
        spool = dir.join("spool").display(),
        src = source.display(),
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, cfg)?;
    Ok(path)
}

/// Runs `cmd` to completion and returns its peak RSS in KiB: from `/usr/bin/time -v` when
/// installed, else by sampling `/proc/<pid>/status` every 5 ms.
pub(crate) fn peak_rss(program: &Path, args: &[&str], log: &Path) -> Result<u64> {
    let logf = std::fs::File::create(log)?;
    if Path::new(TIME).exists() {
        let out = Command::new(TIME)
            .arg("-v")
            .arg(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running {TIME} -v {}", program.display()))?;
        let err = String::from_utf8_lossy(&out.stderr);
        std::fs::write(log, err.as_bytes())?;
        if !out.status.success() {
            bail!(
                "{} {args:?} failed ({}): see {}",
                program.display(),
                out.status,
                log.display()
            );
        }
        return err
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes):")
                    .and_then(|v| v.trim().parse().ok())
            })
            .context("no maximum RSS in /usr/bin/time -v output");
    }
    let mut child = Command::new(program)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()?;
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Ok(hwm) = proc_status_kib(pid, "VmHWM") {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{} {args:?} failed ({status})", program.display());
            }
            return Ok(peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_for_log(path: &Path, needles: &[&str], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if needles.iter().all(|n| text.contains(n)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} never showed {needles:?}:\n{text}", path.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    let agent = bin("aims-agent")?;
    hash::ensure_files(ctx, 1)?;
    let src = ctx.big_files.first().context("no big file")?.clone();
    let big = src.join(hash::FILE);
    let mib = ctx.scale.hash_bytes >> 20;
    let base = ctx.tmp.path().join("rss");
    let mut rows = Vec::new();

    let sdir = base.join("server");
    let database = format!("sqlite://{}", sdir.join("aims.db").display());
    std::fs::create_dir_all(&sdir)?;
    let (mut server, url) = start_server(&sdir, &database)?;
    let server_start = proc_status_kib(server.pid(), "VmRSS")?;
    let tok = token(&database)?;

    // 1. aims-agent once: peak RSS while hashing the big file and shipping its record.
    let cfg = agent_config(&base.join("once"), &url, &tok, &src)?;
    let cfg_s = cfg.display().to_string();
    let t = Instant::now();
    let peak = peak_rss(
        &agent,
        &["once", "--config", &cfg_s],
        &base.join("once/agent.log"),
    )?;
    let once_took = t.elapsed();
    let ref_peak = if Path::new(TIME).exists() && have("sha256sum") {
        let b = big.display().to_string();
        Some(peak_rss(
            Path::new("/usr/bin/sha256sum"),
            &[&b],
            &base.join("sha256sum.log"),
        )?)
    } else {
        None
    };
    let goal = 60 * 1024;
    let row = Row::new(
        SUITE,
        format!(
            "`aims-agent once` peak RSS: `dir` source with one {mib} MiB file, hashed and shipped to `aims-server` ({:.1} s)",
            once_took.as_secs_f64()
        ),
        format!("{} ({} KiB)", fmt_kib(peak), group(peak)),
    );
    let row = match ref_peak {
        Some(r) => row.reference(
            format!("{} (`sha256sum` of the same file)", fmt_kib(r)),
            Some(r as f64 / peak as f64),
        ),
        None => row,
    };
    rows.push(row.goal("< 60 MiB", peak < goal));

    // 2. aims-agent run: RSS once the first cycle is polled and shipped, then idle.
    let rdir = base.join("run");
    let cfg = agent_config(&rdir, &url, &tok, &src)?;
    let log = rdir.join("agent.log");
    let mut run = Proc {
        child: Command::new(&agent)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("spawning aims-agent run")?,
        name: "aims-agent run",
    };
    wait_for_log(
        &log,
        &["poll cycle done", "batch delivered"],
        Duration::from_secs(600),
    )?;
    std::thread::sleep(Duration::from_secs(5));
    let idle = proc_status_kib(run.pid(), "VmRSS")?;
    let run_hwm = proc_status_kib(run.pid(), "VmHWM")?;
    run.stop();
    rows.push(
        Row::new(
            SUITE,
            format!(
                "`aims-agent run` RSS 5 s after its first cycle (that hashed and shipped the {mib} MiB file; peak {})",
                fmt_kib(run_hwm)
            ),
            format!("{} ({} KiB)", fmt_kib(idle), group(idle)),
        )
        .goal("< 30 MiB", idle < 30 * 1024),
    );

    let srv_rss = proc_status_kib(server.pid(), "VmRSS")?;
    let srv_hwm = proc_status_kib(server.pid(), "VmHWM")?;
    server.stop();
    rows.push(Row::new(
        SUITE,
        "`aims-server serve` RSS: at start (empty SQLite) / after the two agent runs (peak)",
        format!(
            "{} / {} (peak {})",
            fmt_kib(server_start),
            fmt_kib(srv_rss),
            fmt_kib(srv_hwm)
        ),
    ));

    // 3. The server on the ledger of ledger-append: start-up checks and the first re-assessment
    // of every system read the whole ledger.
    if let Some(l) = &ctx.ledger {
        let (mut server, _) = start_server(&base.join("server-ledger"), &l.url)?;
        std::thread::sleep(Duration::from_secs(5));
        let rss = proc_status_kib(server.pid(), "VmRSS")?;
        let hwm = proc_status_kib(server.pid(), "VmHWM")?;
        server.stop();
        rows.push(Row::new(
            SUITE,
            format!(
                "`aims-server serve` on the {}-record ledger of ledger-append: RSS 5 s after start (peak)",
                group(l.size)
            ),
            format!("{} (peak {})", fmt_kib(rss), fmt_kib(hwm)),
        ));
    }
    hash::remove_files(ctx);
    Ok(rows)
}
