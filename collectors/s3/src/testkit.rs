//! A real moto S3 server for tests and the benchmark (feature `testkit`), plus an SDK client
//! pointed at it. Used by this crate's tests and bench and by the end-to-end suite
//! (`tests/tests/sources.rs`), which points a real `aims-agent` at [`Moto::endpoint`].
//!
//! `moto_server` is found through `AIMS_MOTO_SERVER` (a path) or
//! `$HOME/.cache/aims-evidence/venv-s3/bin/moto_server`; when neither exists the virtualenv is
//! created there (`python3 -m venv` + `pip install 'moto[server]' boto3`, about a minute once).
//! Each [`Moto`] runs on its own free port with its own request log and is killed on drop.
//!
//! Addressing: path style (`http://127.0.0.1:PORT/BUCKET/KEY`) always works. Virtual-host style
//! (`force_path_style: false` with endpoint [`Moto::virtual_host_endpoint`],
//! `http://localhost:PORT`) makes the SDK send `Host: BUCKET.localhost:PORT`; moto takes the
//! bucket from that Host header by itself (only hosts *starting* with `localhost` are path
//! style to it), as long as `S3_IGNORE_SUBDOMAIN_BUCKETNAME` is unset, which [`Moto::start`]
//! ensures. The client must resolve `BUCKET.localhost` to loopback: glibc does with
//! `myhostname` on the `hosts:` line of `/etc/nsswitch.conf` (Debian's `libnss-myhostname`,
//! which the test command installs).

// A test helper: failing loudly is its job, and it only builds for tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::S3Collector;
use aims_collect::S3Source;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_s3::primitives::ByteStream;

static INSTALL: Mutex<()> = Mutex::new(());

/// The `moto_server` executable, installing it into the cache virtualenv when missing.
pub fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AIMS_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    let venv = Path::new(&home).join(".cache/aims-evidence/venv-s3");
    let bin = venv.join("bin/moto_server");
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !bin.exists() {
        eprintln!("installing moto[server] into {}", venv.display());
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv")
            .success();
        assert!(ok, "python3 -m venv {} failed", venv.display());
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "moto[server]", "boto3"])
            .status()
            .expect("pip install moto[server]")
            .success();
        assert!(
            ok && bin.exists(),
            "pip install 'moto[server]' boto3 failed"
        );
    }
    bin
}

/// A running moto server; killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Self {
        let bin = moto_server_path();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        for _attempt in 0..5 {
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let out = std::fs::File::create(&log).unwrap();
            let err = out.try_clone().unwrap();
            let child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("PYTHONUNBUFFERED", "1")
                // Take the bucket from a virtual-host `Host` header (see the module docs).
                .env_remove("S3_IGNORE_SUBDOMAIN_BUCKETNAME")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut moto = Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
                _dir: tempfile::tempdir().unwrap(),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break; // exited: port taken? try another one
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    moto._dir = dir;
                    return moto;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(moto);
        }
        panic!(
            "moto did not start; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `http://localhost:PORT`: the endpoint for virtual-host addressing (`force_path_style:
    /// false`), under which the SDK addresses `http://BUCKET.localhost:PORT`.
    pub fn virtual_host_endpoint(&self) -> String {
        self.endpoint.replace("127.0.0.1", "localhost")
    }

    /// The requests moto served so far, as `(METHOD, PATH?QUERY)`.
    pub fn requests(&self) -> Vec<(String, String)> {
        // The log line is written as the response goes out: give it a moment.
        std::thread::sleep(Duration::from_millis(200));
        self.logged_requests()
    }

    /// The requests in moto's log right now, as `(METHOD, PATH?QUERY)` (a request whose
    /// response just went out may not be logged yet: see [`Moto::wait_for_requests`]).
    pub fn logged_requests(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let clean = strip_ansi(line);
                let start = clean.find("] \"")? + 3;
                let rest = &clean[start..];
                let end = rest.find('"')?;
                let mut parts = rest[..end].split(' ');
                Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
            })
            .collect()
    }

    /// Polls moto's log (every 20 ms, at most `timeout`) until `done` holds for the requests
    /// logged so far; returns them either way, for the caller's assertion and message.
    pub fn wait_for_requests(
        &self,
        timeout: Duration,
        done: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.logged_requests();
            if done(&requests) || Instant::now() >= deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Object downloads (`GET /bucket/key`, not listings) served so far for `bucket`.
    pub fn object_gets(&self, bucket: &str) -> usize {
        let prefix = format!("/{bucket}/");
        self.requests()
            .iter()
            .filter(|(m, p)| {
                m == "GET"
                    && p.strip_prefix(&prefix)
                        .is_some_and(|key| !key.is_empty() && !key.starts_with('?'))
            })
            .count()
    }

    /// Listing requests (`GET /bucket?list-type=2…` or `?versions…`) served so far for `bucket`.
    pub fn list_requests(&self, bucket: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(m, p)| {
                m == "GET"
                    && (p.starts_with(&format!("/{bucket}?"))
                        || p.starts_with(&format!("/{bucket}/?")))
                    && (p.contains("list-type=2") || p.contains("versions"))
            })
            .count()
    }

    /// SDK configuration with static test credentials and region us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "static",
            )))
            .build()
    }

    /// A plain SDK client (path style) for setting up buckets and objects.
    pub fn client(&self) -> Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        Client::from_conf(conf)
    }

    /// An `s3` source over `bucket`/`prefix` on this server.
    pub fn source(&self, bucket: &str, prefix: &str) -> S3Source {
        S3Source {
            id: "evidence-bucket".into(),
            bucket: bucket.into(),
            prefix: prefix.into(),
            region: None,
            endpoint: Some(self.endpoint.clone()),
            force_path_style: true,
            versions: false,
            system: None,
            system_from_path: Some("systems/{system}/**".into()),
            interval_secs: 300,
        }
    }

    /// A collector for `cfg` with the test credentials.
    pub fn collector(&self, cfg: &S3Source) -> S3Collector {
        S3Collector::new(cfg, &self.sdk_config()).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Creates `bucket`.
pub async fn create_bucket(client: &Client, bucket: &str) {
    client.create_bucket().bucket(bucket).send().await.unwrap();
}

/// Uploads `bytes` to `bucket/key`.
pub async fn put(client: &Client, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

/// Deletes `bucket/key`.
pub async fn delete(client: &Client, bucket: &str, key: &str) {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for hashing tests.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
