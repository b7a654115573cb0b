//! aims-e2e: helpers that run the real binaries against real sources, for the end-to-end suites
//! in `tests/` and for the demo.
//!
//! The binaries are found next to the test executable (`target/<profile>/`); the README's test
//! command builds them first. Every spawned process is killed when its handle drops, and every
//! server gets its own temporary directory, database and free port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod deploy;
pub mod seeds;

/// The source types `tests/tests/e2e/sources.rs` drives end to end through the binaries, each with the
/// test function that does. `tests/tests/e2e/examples.rs` checks that these functions exist and that the
/// types are exactly those the agent accepts and the shipped examples name.
pub const SOURCE_TYPE_TESTS: &[(&str, &str)] = &[
    ("git", "git_repository"),
    ("dir", "plain_directory"),
    ("mlflow", "mlflow_registry"),
    ("s3", "s3_path_style"),
    ("s3", "s3_virtual_host_style"),
    ("github", "github_repository"),
];

/// The directory holding the workspace's binaries (`target/debug` or `target/release`).
pub fn bin_dir() -> Result<PathBuf> {
    if let Ok(d) = std::env::var("AIMS_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("locating the current executable")?;
    let mut dir = exe
        .parent()
        .context("executable has no parent")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Path of a workspace binary, with a clear error if it was not built.
pub fn bin(name: &str) -> Result<PathBuf> {
    let p = bin_dir()?.join(name);
    if !p.exists() {
        bail!(
            "{} not found: build it first with `cargo build --workspace --bins`",
            p.display()
        );
    }
    Ok(p)
}

/// The workspace root (for seeds and fixtures).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A running `aims-server serve`, killed on drop.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The database URL it serves.
    pub database: String,
    /// Its working directory.
    pub dir: PathBuf,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts a server on a free port with a SQLite database in `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        let database = format!("sqlite://{}", dir.join("aims.db").display());
        Self::start_with(dir, &database, "127.0.0.1:0", &[])
    }

    /// Starts a server with a given database URL, listen address and extra arguments.
    pub fn start_with(dir: &Path, database: &str, listen: &str, extra: &[&str]) -> Result<Self> {
        Self::start_with_env(dir, database, listen, extra, &[])
    }

    /// [`Self::start_with`] with extra environment variables (e.g. `RUST_LOG`, which otherwise
    /// is `info`, or `debug` under `TEST_LOG`).
    pub fn start_with_env(
        dir: &Path,
        database: &str,
        listen: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let log = dir.join("server.log");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut child = Command::new(bin("aims-server")?)
            .args(["serve", "--listen", listen, "--database", database])
            .args(extra)
            .current_dir(dir)
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").map_or("info".to_owned(), |_| "debug".to_owned()),
            )
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .context("spawning aims-server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let logs = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("aims-server did not report its address within 30 s; log:\n{logs}");
            }
        };
        Ok(Self {
            child,
            url,
            database: database.to_owned(),
            dir: dir.to_path_buf(),
            log,
        })
    }

    /// Creates a token with `aims-server token create`.
    pub fn token(&self, role: &str, name: &str) -> Result<String> {
        create_token(&self.database, role, name)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server gracefully (SIGTERM) and waits up to 10 s.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A scratch PostgreSQL database, dropped when this value is. The server is
/// `AIMS_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`, trust auth; the
/// test command starts one where it is absent).
pub struct PgDb {
    admin: String,
    name: String,
}

impl PgDb {
    /// Creates an empty database with a unique name.
    pub fn create() -> Result<Self> {
        let admin = std::env::var("AIMS_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!(
            "aims_e2e_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        );
        let out = Command::new("psql")
            .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "PostgreSQL must be reachable at {admin} (the test command starts it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self { admin, name })
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map_or(self.admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// `aims-server token create --role ROLE --name NAME --database URL`.
pub fn create_token(database: &str, role: &str, name: &str) -> Result<String> {
    create_token_with(database, role, name, &[])
}

/// `aims-server token create --role ROLE --name NAME --database URL EXTRA…` (e.g. a scope).
pub fn create_token_with(database: &str, role: &str, name: &str, extra: &[&str]) -> Result<String> {
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
        .args(extra)
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

/// Output of one agent run.
#[derive(Debug)]
pub struct AgentRun {
    /// Exit code.
    pub code: Option<i32>,
    /// Stdout.
    pub stdout: String,
    /// Stderr (the per-source summary and logs).
    pub stderr: String,
}

/// Runs `aims-agent once --config FILE` to completion (at most `timeout`).
pub fn agent_once(config: &Path, envs: &[(&str, &str)], timeout: Duration) -> Result<AgentRun> {
    let mut cmd = Command::new(bin("aims-agent")?);
    cmd.args(["once", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().context("spawning aims-agent")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(timeout)
        .map_err(|_| anyhow::anyhow!("aims-agent once did not finish within {timeout:?}"))??;
    Ok(AgentRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `git` in `dir` with a fixed identity, failing on a non-zero exit.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=aims demo",
            "-c",
            "user.email=demo@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .with_context(|| format!("running git {args:?}"))?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A small blocking HTTP client for assertions (rustls with ring).
pub fn http() -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `GET url` with a bearer token, parsed as JSON; a non-success status is an error that carries
/// the body.
pub async fn get_json(url: &str, token: &str) -> Result<serde_json::Value> {
    let r = http()?.get(url).bearer_auth(token).send().await?;
    let status = r.status();
    let body = r.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// `GET url` with a bearer token, the body as text, whatever the status.
pub async fn get_text(url: &str, token: &str) -> Result<String> {
    Ok(http()?
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .text()
        .await?)
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1/localhost signed by it
/// (`server.pem`, `server.key`) in `dir`, made with the openssl CLI.
pub fn make_certs(dir: &Path) -> Result<()> {
    let sh = |script: &str| -> Result<()> {
        let out = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .output()?;
        if !out.status.success() {
            bail!("{script}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -subj /CN=aims-test-ca -days 2 2>/dev/null",
    )?;
    sh(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null",
    )?;
    sh(
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile ext.cnf 2>/dev/null",
    )
}

/// The agent ID of [`write_agent_config`]; its tokens are created with this name, which
/// `aims-server token create` binds them to.
pub const E2E_AGENT: &str = "e2e-agent";

/// The demo's agent ID, also its token's name.
pub const DEMO_AGENT: &str = "demo-agent";

/// Writes an agent config for one git source into `dir/agent.yaml` (agent ID [`E2E_AGENT`]) and
/// returns its path.
pub fn write_agent_config(
    dir: &Path,
    server_url: &str,
    token: &str,
    repo: &Path,
) -> Result<PathBuf> {
    write_agent_config_as(dir, E2E_AGENT, server_url, token, repo)
}

/// [`write_agent_config`] for the agent ID `agent_id`.
pub fn write_agent_config_as(
    dir: &Path,
    agent_id: &str,
    server_url: &str,
    token: &str,
    repo: &Path,
) -> Result<PathBuf> {
    let cfg = format!(
        "version: 1\nagent: {{ id: {agent_id} }}\nserver: {{ url: \"{server_url}\", token: \"{token}\" }}\n\
         spool_dir: \"{spool}\"\nsources:\n  - {{ id: pipeline, type: git, path: \"{repo}\", \
         system_from_path: \"systems/{{system}}/**\", interval_secs: 60 }}\n",
        spool = dir.join("spool").display(),
        repo = repo.display(),
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, cfg)?;
    Ok(path)
}

/// Runs the demo pipeline against `server`: builds the seeds repository in `work`, runs the
/// agent, applies `seeds/changes` and runs it again. Returns a viewer token.
pub fn run_seed_pipeline(server: &ServerProcess, work: &Path) -> Result<String> {
    let agent_token = server.token("agent", DEMO_AGENT)?;
    let viewer = server.token("viewer", "compliance-lead")?;
    let repo = work.join("pipeline");
    seeds::build_repo(&repo)?;
    let cfg = write_agent_config_as(work, DEMO_AGENT, &server.url, &agent_token, &repo)?;
    for step in ["first", "second"] {
        if step == "second" {
            seeds::apply_changes(&repo)?;
        }
        let run = agent_once(&cfg, &[], Duration::from_secs(300))?;
        if run.code != Some(0) {
            bail!(
                "{step} agent run failed: {}\nserver log:\n{}",
                run.stderr,
                server.logs()
            );
        }
    }
    Ok(viewer)
}

/// Headless Chromium (Debian's `chromium`, or `AIMS_CHROMIUM`).
pub fn chromium() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("AIMS_CHROMIUM")
        && !p.is_empty()
    {
        return Ok(PathBuf::from(p));
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("chromium not found: the test command installs it (apt-get install chromium)")
}

/// Loads `url` in headless Chromium and returns the DOM after scripts (if any) ran. With
/// `screenshot`, also writes a PNG there.
pub fn browse(url: &str, screenshot: Option<&Path>) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let base = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut cmd = Command::new(chromium()?);
    base(&mut cmd);
    let out = cmd
        .arg("--dump-dom")
        .arg(url)
        .output()
        .context("running chromium")?;
    if !out.status.success() {
        bail!("chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(png) = screenshot {
        let mut cmd = Command::new(chromium()?);
        base(&mut cmd);
        let out = cmd
            .arg(format!("--screenshot={}", png.display()))
            .arg(url)
            .output()?;
        if !out.status.success() {
            bail!(
                "chromium screenshot failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// libfaketime's preload library (Debian's path), or a clear failure.
pub fn libfaketime() -> Result<PathBuf> {
    for p in [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("libfaketime not found: the test command installs it (apt-get install faketime)")
}

/// Environment that runs a process `days` in the future (libfaketime). Only the wall clock
/// moves: monotonic time (tokio's timers) stays real.
pub fn future(days: u32) -> Result<Vec<(String, String)>> {
    Ok(vec![
        (
            "LD_PRELOAD".into(),
            libfaketime()?.to_string_lossy().into_owned(),
        ),
        ("FAKETIME".into(), format!("+{days}d")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("FAKETIME_DONT_RESET".into(), "1".into()),
    ])
}
