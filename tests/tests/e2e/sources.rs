//! Every source type through the shipped binaries (issue 11): a real `aims-server serve` on
//! SQLite, a real `aims-agent once --config FILE` against a real instance of the source, and the
//! JSON API (`GET /v1/systems/{id}/controls`, viewer token) showing which Annex A controls the
//! artifacts reach, with the evidence's locator and kind.
//!
//! - `git`: a repository made with the `git` CLI (validation report, approval, CODEOWNERS).
//! - `dir`: a plain directory (a Hugging Face dataset card).
//! - `mlflow`: a real `mlflow server` (`aims_collect_mlflow::testkit`, `AIMS_MLFLOW`): a
//!   registered model version from a finished run with metrics, an alias, a model card logged
//!   under the run.
//! - `s3`, path style and virtual-host style: a real moto server (`aims_collect_s3::testkit`,
//!   `AIMS_MOTO_SERVER`). Virtual-host addressing sends `Host: BUCKET.localhost:PORT`, which needs
//!   `*.localhost` to resolve (`myhostname` in /etc/nsswitch.conf; the test command sets it up).
//! - `github`: recorded REST responses over real HTTP (`aims_collect_github::testkit`), reached
//!   through the source's `api_url`.
//!
//! A last test runs `aims-agent run` over all of them at once until the server holds evidence of
//! every source, then stops it with SIGTERM. `aims_e2e::SOURCE_TYPE_TESTS` names the test of each
//! type; `tests/examples.rs` checks it against the types the agent and the examples know.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aims_collect_github::testkit::FakeGithub;
use aims_collect_mlflow::testkit::{Mlf, MlflowServer, write_artifact};
use aims_collect_s3::testkit::{Moto, create_bucket, put};
use aims_e2e::{AgentRun, ServerProcess, agent_once, bin, create_token_with, get_json, git, http};
use chrono::{Duration as CDuration, Utc};
use serde_json::Value;

const AGENT_TIMEOUT: Duration = Duration::from_secs(240);

// ---------------------------------------------------------------------------------------------
// The harness: a server, tokens, an agent configuration

struct Harness {
    tmp: tempfile::TempDir,
    server: ServerProcess,
    agent_token: String,
    viewer: String,
    /// An empty file standing in for the AWS config and credentials files.
    aws_empty: PathBuf,
}

impl Harness {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
        // Bound to this agent and the source ids the tests use, as the deploy docs advise.
        let agent_token = create_token_with(
            &server.database,
            "agent",
            "e2e-sources",
            &[
                "--agent-id",
                "e2e-sources",
                "--source",
                "repo,datasets,registry,bucket,vhost-bucket,gh",
            ],
        )
        .unwrap();
        let viewer = server.token("viewer", "lead").unwrap();
        let aws_empty = tmp.path().join("aws-empty");
        std::fs::write(&aws_empty, "").unwrap();
        Self {
            tmp,
            server,
            agent_token,
            viewer,
            aws_empty,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes an agent configuration with these `sources:` entries (YAML flow mappings, one per
    /// item) and returns its path.
    fn config(&self, sources: &[String]) -> PathBuf {
        let mut cfg = format!(
            "version: 1\nagent: {{ id: e2e-sources }}\nserver: {{ url: \"{}\", token: \"{}\" }}\n\
             spool_dir: \"{}\"\nsources:\n",
            self.server.url,
            self.agent_token,
            self.path("spool").display()
        );
        for s in sources {
            cfg.push_str(&format!("  - {s}\n"));
        }
        let path = self.path("agent.yaml");
        std::fs::write(&path, cfg).unwrap();
        path
    }

    /// The environment of every agent run: static credentials for moto, no AWS profile files,
    /// no instance metadata service, and the GitHub token the github source names.
    fn agent_env(&self) -> Vec<(String, String)> {
        let empty = self.aws_empty.display().to_string();
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", empty.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.as_str()),
            ("E2E_GITHUB_TOKEN", GITHUB_TOKEN),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// `aims-agent once --config FILE`, off the async runtime (the recorded GitHub is served by
    /// this test's runtime while the agent runs).
    async fn once(&self, cfg: &Path) -> AgentRun {
        let cfg = cfg.to_owned();
        let env = self.agent_env();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            agent_once(&cfg, &env, AGENT_TIMEOUT).unwrap()
        })
        .await
        .unwrap()
    }

    /// `GET /v1/systems/{system}/controls` with the viewer token; `None` while the system is
    /// unknown (404).
    async fn try_controls(&self, system: &str) -> Option<Value> {
        let url = format!("{}/v1/systems/{system}/controls", self.server.url);
        let r = http()
            .unwrap()
            .get(&url)
            .bearer_auth(&self.viewer)
            .send()
            .await
            .unwrap();
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(r.status().is_success(), "{url}: {}", r.status());
        Some(r.json().await.unwrap())
    }

    async fn controls(&self, system: &str) -> Value {
        self.try_controls(system).await.unwrap_or_else(|| {
            panic!(
                "system {system} is unknown to the server; log:\n{}",
                self.server.logs()
            )
        })
    }
}

const GITHUB_TOKEN: &str = "ghp_e2eDummyTokenForTheRecordedApi";

/// The counts of one source's summary line of `aims-agent once`
/// (`<id>: N listed, M fetched, U unchanged, G gone, S shipped[ (P spooled)][, E errors: …]`).
#[derive(Debug)]
struct Summary {
    listed: u64,
    fetched: u64,
    shipped: u64,
}

/// Asserts the run exited 0 with a summary line for `source` that lists, fetches and ships
/// records and reports no error; returns its counts.
fn assert_shipped(run: &AgentRun, source: &str) -> Summary {
    assert_eq!(run.code, Some(0), "aims-agent once failed:\n{}", run.stderr);
    let prefix = format!("{source}: ");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains(" listed, "))
        .unwrap_or_else(|| panic!("no summary line for {source}:\n{}", run.stderr));
    assert!(!line.contains("errors"), "{line}");
    let count = |name: &str| -> u64 {
        line[prefix.len()..]
            .split(", ")
            .find_map(|part| {
                let mut words = part.split_whitespace();
                let n = words.next()?.parse().ok()?;
                (words.next()? == name).then_some(n)
            })
            .unwrap_or_else(|| panic!("no {name} count in {line:?}"))
    };
    let s = Summary {
        listed: count("listed"),
        fetched: count("fetched"),
        shipped: count("shipped"),
    };
    assert!(
        s.listed > 0 && s.fetched > 0 && s.shipped > 0,
        "{source} shipped nothing: {line}"
    );
    assert!(s.shipped <= s.fetched && s.fetched <= s.listed, "{line}");
    let total = run
        .stderr
        .lines()
        .find(|l| l.starts_with("shipped "))
        .unwrap_or_else(|| panic!("no shipping summary:\n{}", run.stderr));
    assert!(
        total.contains("0 batches rejected, 0 batches remaining"),
        "{total}"
    );
    s
}

fn control<'a>(controls: &'a Value, id: &str) -> &'a Value {
    controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == id)
        .unwrap_or_else(|| panic!("control {id} not listed: {controls:#}"))
}

/// Whether `control` is not missing and lists evidence of `kind` at `locator`.
fn reaches(controls: &Value, id: &str, kind: &str, locator: &str) -> bool {
    let Some(c) = controls["controls"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["control"] == id))
    else {
        return false;
    };
    c["status"] != "missing"
        && c["evidence"].as_array().is_some_and(|ev| {
            ev.iter().any(|e| {
                e["kind"] == kind
                    && e["locator"] == locator
                    && e["sha256"].as_str().is_some_and(|h| h.len() == 64)
            })
        })
}

#[track_caller]
fn assert_reaches(controls: &Value, id: &str, kind: &str, locator: &str) {
    assert!(
        reaches(controls, id, kind, locator),
        "{id} is missing or lacks {kind} at {locator}: {:#}",
        control(controls, id)
    );
}

fn days_ago(n: i64) -> String {
    (Utc::now() - CDuration::days(n))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A passing validation report in the project's own format (DESIGN §3b), evaluated 3 days ago.
fn validation_report(model: &str) -> String {
    format!(
        r#"{{"kind":"validation_report","model":{{"name":"{model}","version":"3"}},
"dataset":{{"name":"applications","revision":"2026-10-01","sha256":"{}"}},
"metrics":[{{"name":"auc","value":0.91,"threshold":0.85,"direction":"min"}}],
"decision":"pass","evaluated_at":"{}","evaluator":"ci/run/123"}}"#,
        "a".repeat(64),
        days_ago(3)
    )
}

/// A deployment approval (DESIGN §3b) of the validated version, 2 days ago.
fn deployment_approval(model: &str) -> String {
    format!(
        "kind: deployment_approval\nmodel: {{ name: {model}, version: \"3\" }}\nenvironment: production\n\
         approved_by: [risk-officer@example.com]\napproved_at: {}\n",
        days_ago(2)
    )
}

/// A Hugging Face dataset card (front matter with `dataset_info`, `task_categories`…).
const DATASET_CARD: &str = "---\nlicense: cc-by-4.0\ntask_categories: [tabular-classification]\n\
source_datasets: [original]\nannotations_creators: [expert-generated]\nsize_categories: [10K<n<100K]\n\
dataset_info:\n  features:\n  - name: amount\n    dtype: float64\n  splits:\n  - name: train\n    \
num_examples: 50000\n---\n# Card transactions\n\nLabelled card transactions, 2024-2026.\n";

const CODEOWNERS: &str = "* @acme/ml-platform\n/models/ @acme/risk-officers\n";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The sources

/// A git repository: a validation report, a deployment approval and CODEOWNERS.
fn git_repo(repo: &Path, model: &str) {
    std::fs::create_dir_all(repo).unwrap();
    git(repo, &["init", "-q", "-b", "main"]).unwrap();
    write(repo, "reports/validation.json", &validation_report(model));
    write(
        repo,
        "approvals/production.yaml",
        &deployment_approval(model),
    );
    write(repo, ".github/CODEOWNERS", CODEOWNERS);
    write(repo, "src/train.py", "print('training')\n");
    git(repo, &["add", "-A"]).unwrap();
    git(repo, &["commit", "-q", "-m", "evidence"]).unwrap();
}

fn git_source(repo: &Path, system: &str, interval: u64) -> String {
    format!(
        "{{ id: repo, type: git, path: \"{}\", branch: main, system: {system}, interval_secs: {interval} }}",
        repo.display()
    )
}

fn git_locator(repo: &Path, rel: &str) -> String {
    format!("git+file://{}#{rel}", repo.display())
}

/// A plain directory with a dataset card.
fn data_dir(dir: &Path) {
    write(dir, "transactions/README.md", DATASET_CARD);
    write(dir, "transactions/notes.txt", "not evidence\n");
}

fn dir_source(dir: &Path, system: &str, interval: u64) -> String {
    format!(
        "{{ id: datasets, type: dir, path: \"{}\", system: {system}, interval_secs: {interval} }}",
        dir.display()
    )
}

/// One MLflow server for the whole file (start-up takes ~15 s), killed when the test process
/// exits; each test uses its own model names.
fn mlflow_server() -> &'static MlflowServer {
    static SERVER: OnceLock<MlflowServer> = OnceLock::new();
    SERVER.get_or_init(MlflowServer::start)
}

async fn mlflow_url() -> String {
    tokio::task::spawn_blocking(|| mlflow_server().url.clone())
        .await
        .unwrap()
}

/// Registers `model`: version 1 from a finished run with metrics and a threshold (the
/// collector derives a validation report from it) and a model card logged under the run,
/// alias `champion` on version 1. Returns the run id.
async fn build_mlflow_registry(url: &str, model: &str) -> String {
    let mlf = Mlf::new(url);
    let exp = mlf.experiment(&format!("{model}-training")).await;
    let (run, dir) = mlf
        .run(
            &exp,
            &[("auc", 0.91), ("recall", 0.8)],
            &[("threshold.auc", "0.85"), ("epochs", "3")],
        )
        .await;
    write_artifact(
        &dir,
        "model/MLmodel",
        b"artifact_path: model\nflavors: {}\n",
    );
    write_artifact(
        &dir,
        "model/README.md",
        b"---\nlicense: apache-2.0\nlibrary_name: sklearn\npipeline_tag: tabular-classification\n---\n# Fraud model\n",
    );
    mlf.model(model).await;
    let v = mlf.version(model, Some(&run), &[("team", "risk")]).await;
    assert_eq!(v, "1");
    mlf.alias(model, "champion", "1").await;
    run
}

fn mlflow_source(url: &str, interval: u64) -> String {
    format!("{{ id: registry, type: mlflow, tracking_uri: \"{url}\", interval_secs: {interval} }}")
}

fn mlflow_locator(url: &str, tail: &str) -> String {
    format!("mlflow://{}/{tail}", url.trim_start_matches("http://"))
}

/// Puts a validation report and an approval under `fraud/` of a new bucket, and one object
/// outside the prefix.
async fn s3_bucket(moto: &Moto, bucket: &str, model: &str) {
    let client = moto.client();
    create_bucket(&client, bucket).await;
    put(
        &client,
        bucket,
        "fraud/validation_report.json",
        validation_report(model),
    )
    .await;
    put(
        &client,
        bucket,
        "fraud/approvals/production.yaml",
        deployment_approval(model),
    )
    .await;
    put(&client, bucket, "other/ignored.json", b"{}".to_vec()).await;
}

fn s3_source(id: &str, bucket: &str, endpoint: &str, path_style: bool, system: &str) -> String {
    format!(
        "{{ id: {id}, type: s3, bucket: {bucket}, prefix: fraud/, region: us-east-1, \
         endpoint: \"{endpoint}\", force_path_style: {path_style}, system: {system}, interval_secs: 1 }}"
    )
}

/// Virtual-host requests go to `BUCKET.localhost`: it must resolve to loopback.
fn assert_resolves_to_loopback(host: &str) {
    let addrs: Vec<_> = (host, 80)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "{host} does not resolve to loopback ({addrs:?}): install Debian's libnss-myhostname and \
         put `myhostname` on the `hosts:` line of /etc/nsswitch.conf (scripts/test.sh does)"
    );
}

fn github_source(api_url: &str, system: &str, interval: u64) -> String {
    format!(
        "{{ id: gh, type: github, owner: acme, repo: fraud, api_url: \"{api_url}\", \
         token_env: E2E_GITHUB_TOKEN, system: {system}, interval_secs: {interval} }}"
    )
}

// ---------------------------------------------------------------------------------------------
// One test per source type

#[tokio::test(flavor = "multi_thread")]
async fn git_repository() {
    let h = Harness::start();
    let repo = h.path("repo");
    git_repo(&repo, "fraud-git");
    let cfg = h.config(&[git_source(&repo, "fraud-git", 60)]);

    let run = h.once(&cfg).await;
    let s = assert_shipped(&run, "repo");
    assert_eq!((s.listed, s.shipped), (4, 4), "{}", run.stderr);

    let c = h.controls("fraud-git").await;
    assert_reaches(
        &c,
        "A.6.2.4",
        "validation_report",
        &git_locator(&repo, "reports/validation.json"),
    );
    assert_eq!(control(&c, "A.6.2.4")["status"], "fresh", "{c:#}");
    assert_reaches(
        &c,
        "A.6.2.5",
        "deployment_approval",
        &git_locator(&repo, "approvals/production.yaml"),
    );
    assert_reaches(
        &c,
        "A.6.1.3",
        "process_control",
        &git_locator(&repo, ".github/CODEOWNERS"),
    );
    assert_eq!(control(&c, "A.6.1.3")["status"], "fresh", "{c:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_directory() {
    let h = Harness::start();
    let dir = h.path("datasets");
    data_dir(&dir);
    let cfg = h.config(&[dir_source(&dir, "fraud-dir", 60)]);

    let run = h.once(&cfg).await;
    let s = assert_shipped(&run, "datasets");
    assert_eq!((s.listed, s.shipped), (2, 2), "{}", run.stderr);

    let c = h.controls("fraud-dir").await;
    let card = format!("file://{}/transactions/README.md", dir.display());
    assert_reaches(&c, "A.7.3", "dataset_card", &card);
    assert_eq!(control(&c, "A.7.3")["status"], "fresh", "{c:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mlflow_registry() {
    let url = mlflow_url().await;
    let model = "fraud-mlflow";
    let run_id = build_mlflow_registry(&url, model).await;
    let h = Harness::start();
    let cfg = h.config(&[mlflow_source(&url, 60)]);

    let run = h.once(&cfg).await;
    let s = assert_shipped(&run, "registry");
    // Version 1, alias champion, the run's validation report, MLmodel and the model card.
    assert!(s.shipped >= 5, "{}", run.stderr);

    // The registered model name is the AI system.
    let c = h.controls(model).await;
    let version = mlflow_locator(&url, &format!("models/{model}/versions/1"));
    let alias = mlflow_locator(&url, &format!("models/{model}/aliases/champion"));
    assert_reaches(&c, "A.6.2.5", "registry_alias", &alias);
    assert_reaches(&c, "A.6.2.5", "registry_model_version", &version);
    assert_reaches(&c, "A.6.2.3", "registry_model_version", &version);
    // The finished run's metrics with a threshold: a validation report.
    assert_reaches(
        &c,
        "A.6.2.4",
        "validation_report",
        &mlflow_locator(&url, &format!("runs/{run_id}/validation")),
    );
    assert_reaches(
        &c,
        "A.6.2.7",
        "model_card",
        &mlflow_locator(&url, &format!("runs/{run_id}/artifacts/model/README.md")),
    );
    // Issue 13: which version held which alias at an instant, with the record that proves it.
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let a = get_json(
        &format!("{}/v1/systems/{model}/aliases?at={now}", h.server.url),
        &h.viewer,
    )
    .await
    .unwrap();
    let champion = &a["aliases"][0];
    assert_eq!(champion["alias"], "champion", "{a:#}");
    assert_eq!(champion["version"], "1", "{a:#}");
    assert!(
        champion["record_id"]
            .as_str()
            .is_some_and(|r| r.len() == 64),
        "{a:#}"
    );
    let before = (Utc::now() - CDuration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let a = get_json(
        &format!("{}/v1/systems/{model}/aliases?at={before}", h.server.url),
        &h.viewer,
    )
    .await
    .unwrap();
    assert_eq!(a["aliases"].as_array().unwrap().len(), 0, "{a:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_path_style() {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    s3_bucket(&moto, "evidence-path", "fraud-s3").await;
    let h = Harness::start();
    let cfg = h.config(&[s3_source(
        "bucket",
        "evidence-path",
        &moto.endpoint,
        true,
        "fraud-s3",
    )]);

    let run = h.once(&cfg).await;
    let s = assert_shipped(&run, "bucket");
    assert_eq!((s.listed, s.shipped), (2, 2), "{}", run.stderr);
    // Both objects were downloaded, path style (`GET /BUCKET/KEY`), and nothing outside the prefix.
    let gets = |r: &[(String, String)]| -> Vec<String> {
        r.iter()
            .filter(|(m, p)| {
                m == "GET"
                    && p.strip_prefix("/evidence-path/")
                        .is_some_and(|key| !key.is_empty() && !key.starts_with('?'))
            })
            .map(|(_, p)| p.split('?').next().unwrap_or_default().to_owned())
            .collect()
    };
    let requests = moto.wait_for_requests(Duration::from_secs(10), |r| gets(r).len() >= 2);
    let mut got = gets(&requests);
    got.sort();
    assert_eq!(
        got,
        [
            "/evidence-path/fraud/approvals/production.yaml",
            "/evidence-path/fraud/validation_report.json"
        ],
        "{requests:?}"
    );

    let c = h.controls("fraud-s3").await;
    assert_reaches(
        &c,
        "A.6.2.4",
        "validation_report",
        "s3://evidence-path/fraud/validation_report.json",
    );
    assert_eq!(control(&c, "A.6.2.4")["status"], "fresh", "{c:#}");
    assert_reaches(
        &c,
        "A.6.2.5",
        "deployment_approval",
        "s3://evidence-path/fraud/approvals/production.yaml",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_virtual_host_style() {
    assert_resolves_to_loopback("evidence-vhost.localhost");
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    s3_bucket(&moto, "evidence-vhost", "fraud-s3vh").await;
    let h = Harness::start();
    let cfg = h.config(&[s3_source(
        "vhost-bucket",
        "evidence-vhost",
        &moto.virtual_host_endpoint(),
        false,
        "fraud-s3vh",
    )]);

    let run = h.once(&cfg).await;
    let s = assert_shipped(&run, "vhost-bucket");
    assert_eq!((s.listed, s.shipped), (2, 2), "{}", run.stderr);
    // The agent addressed the bucket by host name: moto saw paths without the bucket in them
    // (the set-up's path-style PUTs carry it).
    let vhost_get = |r: &[(String, String)]| {
        r.iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/fraud/validation_report.json"))
    };
    let requests = moto.wait_for_requests(Duration::from_secs(10), vhost_get);
    assert!(
        requests
            .iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/?list-type=2")),
        "no virtual-host listing in {requests:?}"
    );
    assert!(vhost_get(&requests), "no virtual-host GET in {requests:?}");
    assert!(
        !requests
            .iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/evidence-vhost")),
        "a path-style GET in {requests:?}"
    );

    let c = h.controls("fraud-s3vh").await;
    assert_reaches(
        &c,
        "A.6.2.4",
        "validation_report",
        "s3://evidence-vhost/fraud/validation_report.json",
    );
    assert_reaches(
        &c,
        "A.6.2.5",
        "deployment_approval",
        "s3://evidence-vhost/fraud/approvals/production.yaml",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn github_repository() {
    let gh = FakeGithub::start().await.unwrap();
    let h = Harness::start();
    let cfg = h.config(&[github_source(&gh.url, "fraud-gh", 60)]);

    let run = h.once(&cfg).await;
    let s = assert_shipped(&run, "gh");
    // 5 files, 3 deployments, 1 environment approval, 2 merged pull requests, branch protection.
    assert_eq!(s.listed, 12, "{}", run.stderr);
    // Every request carried the token from `token_env`.
    let log = gh.log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|l| l
            .authorization
            .as_deref()
            .is_some_and(|a| a.contains(GITHUB_TOKEN))),
        "unauthenticated requests: {log:?}"
    );

    let c = h.controls("fraud-gh").await;
    assert_reaches(
        &c,
        "A.6.1.3",
        "process_control",
        "github://acme/fraud/branches/main/protection",
    );
    assert_reaches(
        &c,
        "A.6.1.3",
        "process_control",
        "github://acme/fraud/blob/.github/CODEOWNERS",
    );
    assert_reaches(
        &c,
        "A.6.1.3",
        "process_control",
        "github://acme/fraud/pulls/42",
    );
    assert_reaches(
        &c,
        "A.6.2.5",
        "deployment_approval",
        "github://acme/fraud/actions/runs/5432100020/approvals",
    );
    assert_reaches(
        &c,
        "A.6.2.4",
        "validation_report",
        "github://acme/fraud/blob/systems/fraud/validation_report.json",
    );
    assert_reaches(
        &c,
        "A.6.2.7",
        "model_card",
        "github://acme/fraud/blob/systems/fraud/README.md",
    );
}

// ---------------------------------------------------------------------------------------------
// `aims-agent run` over every type at once

#[tokio::test(flavor = "multi_thread")]
async fn run_mode_over_every_source_type() {
    let gh = FakeGithub::start().await.unwrap();
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    s3_bucket(&moto, "run-path", "run-s3").await;
    s3_bucket(&moto, "run-vhost", "run-s3vh").await;
    let url = mlflow_url().await;
    let model = "run-mlflow";
    build_mlflow_registry(&url, model).await;
    let h = Harness::start();
    let repo = h.path("repo");
    git_repo(&repo, "run-git");
    let dir = h.path("datasets");
    data_dir(&dir);
    let vhost = moto.virtual_host_endpoint();
    let cfg = h.config(&[
        git_source(&repo, "run-git", 1),
        dir_source(&dir, "run-dir", 1),
        mlflow_source(&url, 1),
        s3_source("bucket", "run-path", &moto.endpoint, true, "run-s3"),
        s3_source("vhost-bucket", "run-vhost", &vhost, false, "run-s3vh"),
        github_source(&gh.url, "run-gh", 1),
    ]);
    // (system, control, kind, locator): one piece of evidence of every source.
    let want: Vec<(&str, &str, &str, String)> = vec![
        (
            "run-git",
            "A.6.1.3",
            "process_control",
            git_locator(&repo, ".github/CODEOWNERS"),
        ),
        (
            "run-dir",
            "A.7.3",
            "dataset_card",
            format!("file://{}/transactions/README.md", dir.display()),
        ),
        (
            model,
            "A.6.2.5",
            "registry_alias",
            mlflow_locator(&url, &format!("models/{model}/aliases/champion")),
        ),
        (
            "run-s3",
            "A.6.2.4",
            "validation_report",
            "s3://run-path/fraud/validation_report.json".into(),
        ),
        (
            "run-s3vh",
            "A.6.2.4",
            "validation_report",
            "s3://run-vhost/fraud/validation_report.json".into(),
        ),
        (
            "run-gh",
            "A.6.1.3",
            "process_control",
            "github://acme/fraud/branches/main/protection".into(),
        ),
    ];

    let stderr = h.path("agent-run.log");
    let mut cmd = Command::new(bin("aims-agent").unwrap());
    cmd.args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    for (k, v) in h.agent_env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();

    let deadline = Instant::now() + Duration::from_secs(180);
    let mut missing: Vec<String>;
    loop {
        missing = Vec::new();
        for (system, ctl, kind, locator) in &want {
            let ok = match h.try_controls(system).await {
                Some(c) => reaches(&c, ctl, kind, locator),
                None => false,
            };
            if !ok {
                missing.push(format!("{system} {ctl} {kind} {locator}"));
            }
        }
        if missing.is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("aims-agent run exited early with {status}:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "after 180 s the server still lacks {missing:#?}\nagent:\n{}\nserver:\n{}",
            log(),
            h.server.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // SIGTERM: a prompt, clean exit.
    let stopped = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!(
                "aims-agent run did not stop within 20 s of SIGTERM:\n{}",
                log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.success(),
        "aims-agent run exited with {status}:\n{}",
        log()
    );
    assert!(!log().contains("ERROR"), "{}", log());
}
