//! The git source against real repositories made with the `git` CLI: the shared compliance
//! harness in local and mirror mode, plus the git-specific behaviour (committed tree only,
//! commit metadata, gone files, unknown branches, `build`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::path::{Path, PathBuf};
use std::process::Command;

use aims_collect::testkit::{
    CountingCollector, SourceFixture, assert_collector_compliance, catalog, poll_once,
};
use aims_collect::{CollectErrorKind, Collector, Cursor, GitSource, SourceConfig, SystemRule};
use aims_collect_git::{BuildError, GitCollector, build};
use aims_model::{RecordEvent, Timestamp};
use async_trait::async_trait;

/// Runs git in `dir` with an isolated configuration; panics on failure (test helper).
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn commit_all(root: &Path, msg: &str) {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", msg]);
}

/// A working repository with three files under `systems/fraud/` and one outside.
fn sample_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    write(
        &root,
        "systems/fraud/validation.json",
        br#"{"kind":"validation_report","model":{"name":"fraud","version":"3"},"metrics":[{"name":"auc","value":0.91,"threshold":0.85,"direction":"min"}],"decision":"pass","evaluated_at":"2026-11-20T10:00:00Z"}"#,
    );
    write(
        &root,
        "systems/fraud/README.md",
        b"---\nlicense: apache-2.0\nbase_model: bert-base-uncased\npipeline_tag: text-classification\n---\n# Fraud model\n",
    );
    write(&root, "systems/fraud/notes.txt", b"first notes\n");
    write(&root, "README.md", b"# repository\n");
    commit_all(&root, "initial");
    (dir, root)
}

fn cfg_local(root: &Path) -> GitSource {
    GitSource {
        id: "ml-repo".into(),
        url: None,
        path: Some(root.to_owned()),
        branch: None,
        system: None,
        system_from_path: Some("systems/{system}/**".into()),
        interval_secs: 300,
        include: vec![],
        exclude: vec![],
    }
}

fn rule(cfg: &GitSource) -> SystemRule {
    SourceConfig::Git(cfg.clone()).system_rule().unwrap()
}

/// Mutates the working repository by committing.
struct RepoFixture {
    root: PathBuf,
}

#[async_trait]
impl SourceFixture for RepoFixture {
    async fn change_one(&mut self) -> String {
        let p = "systems/fraud/notes.txt";
        write(&self.root, p, b"second notes\n");
        commit_all(&self.root, "edit notes");
        p.into()
    }
    async fn remove_one(&mut self) -> String {
        let p = "systems/fraud/README.md";
        git(&self.root, &["rm", "-q", p]);
        git(&self.root, &["commit", "-q", "-m", "remove card"]);
        p.into()
    }
    async fn bytes(&self, path: &str) -> Option<Vec<u8>> {
        let out = Command::new("git")
            .current_dir(&self.root)
            .args(["show", &format!("HEAD:{path}")])
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }
}

#[tokio::test]
async fn compliance_local_repository() {
    let (_dir, root) = sample_repo();
    let cfg = cfg_local(&root);
    let rule = rule(&cfg);
    let cache = tempfile::tempdir().unwrap();
    let cache_path = cache.path().to_owned();
    let mut fixture = RepoFixture { root };
    assert_collector_compliance(
        move || Box::new(GitCollector::new(&cfg, &cache_path).unwrap()) as Box<dyn Collector>,
        &mut fixture,
        &rule,
    )
    .await;
}

#[tokio::test]
async fn compliance_remote_mirror() {
    let (_dir, root) = sample_repo();
    let mut cfg = cfg_local(&root);
    cfg.path = None;
    cfg.url = Some(format!("file://{}", root.display()));
    cfg.branch = Some("main".into());
    let rule = rule(&cfg);
    let cache = tempfile::tempdir().unwrap();
    let cache_path = cache.path().to_owned();
    let make_cfg = cfg.clone();
    let mut fixture = RepoFixture { root: root.clone() };
    assert_collector_compliance(
        move || Box::new(GitCollector::new(&make_cfg, &cache_path).unwrap()) as Box<dyn Collector>,
        &mut fixture,
        &rule,
    )
    .await;
    // The mirror lives under the cache directory, and locators name the URL.
    let mirrors: Vec<_> = std::fs::read_dir(cache.path().join("git"))
        .unwrap()
        .collect();
    assert_eq!(mirrors.len(), 1);
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let list = c.list().await.unwrap();
    assert!(list.iter().all(|a| {
        a.locator
            .starts_with(&format!("git+file://{}#", root.display()))
    }));
}

#[tokio::test]
async fn records_carry_commit_metadata_and_ignore_the_working_tree() {
    let (_dir, root) = sample_repo();
    let head = git(&root, &["rev-parse", "HEAD"]).trim().to_owned();
    let commit_time: i64 = git(&root, &["log", "-1", "--format=%ct"])
        .trim()
        .parse()
        .unwrap();
    // Uncommitted edits and untracked files are not evidence.
    write(&root, "systems/fraud/notes.txt", b"dirty, uncommitted\n");
    write(&root, "systems/fraud/untracked.json", b"{}");
    let cfg = cfg_local(&root);
    let cache = tempfile::tempdir().unwrap();
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let cat = catalog();
    let out = poll_once(&c, &Cursor::new(), &cat, &rule(&cfg), Timestamp::now()).await;
    assert_eq!(out.records.len(), 3, "{:?}", out.records);
    assert_eq!(
        out.stats.skipped, 1,
        "README.md outside systems/ has no system"
    );
    let by_path = |p: &str| {
        out.records
            .iter()
            .find(|r| r.meta_str("path") == Some(p))
            .unwrap()
    };
    let notes = by_path("systems/fraud/notes.txt");
    assert_eq!(notes.sha256, aims_model::ContentHash::of(b"first notes\n"));
    assert_eq!(notes.meta_str("commit"), Some(head.as_str()));
    assert_eq!(notes.meta_str("branch"), Some("main"));
    assert_eq!(notes.artifact_time, Timestamp::from_unix_secs(commit_time));
    assert_eq!(notes.system, "fraud");
    assert_eq!(
        notes.locator,
        format!("git+file://{}#systems/fraud/notes.txt", root.display())
    );
    // Blob id as version token.
    let blob = git(&root, &["rev-parse", "HEAD:systems/fraud/notes.txt"]);
    assert_eq!(notes.version, blob.trim());
    // Parsed date beats commit time; catalog classification applies.
    let val = by_path("systems/fraud/validation.json");
    assert_eq!(val.kind, "validation_report");
    assert_eq!(
        val.artifact_time.unwrap().to_string(),
        "2026-11-20T10:00:00.000Z"
    );
    assert_eq!(val.metadata["metrics"][0]["passed"], true);
    let card = by_path("systems/fraud/README.md");
    assert_eq!(card.kind, "model_card");
    assert_eq!(card.metadata["format"], "hf_card");
}

#[tokio::test]
async fn removal_is_gone_and_an_edit_is_one_fetch() {
    let (_dir, root) = sample_repo();
    let cfg = cfg_local(&root);
    let rule = rule(&cfg);
    let cache = tempfile::tempdir().unwrap();
    let cat = catalog();
    let c = CountingCollector::new(Box::new(GitCollector::new(&cfg, cache.path()).unwrap()));
    let first = poll_once(&c, &Cursor::new(), &cat, &rule, Timestamp::now()).await;
    assert_eq!(c.fetches(), 3);

    // A commit that touches nothing we read costs no fetch.
    write(&root, "README.md", b"# repository, edited\n");
    commit_all(&root, "edit readme");
    let quiet = poll_once(&c, &first.cursor, &cat, &rule, Timestamp::now()).await;
    assert_eq!(c.fetches(), 3);
    assert!(quiet.records.is_empty());

    write(
        &root,
        "systems/fraud/validation.json",
        br#"{"kind":"validation_report","decision":"fail"}"#,
    );
    commit_all(&root, "fail");
    let edited = poll_once(&c, &quiet.cursor, &cat, &rule, Timestamp::now()).await;
    assert_eq!(c.fetches(), 4, "exactly one fetch for one edited file");
    assert_eq!(edited.records.len(), 1);
    assert_eq!(edited.records[0].metadata["decision"], "fail");

    git(&root, &["rm", "-q", "systems/fraud/notes.txt"]);
    git(&root, &["commit", "-q", "-m", "rm"]);
    let gone = poll_once(&c, &edited.cursor, &cat, &rule, Timestamp::now()).await;
    assert_eq!(gone.records.len(), 1);
    assert_eq!(gone.records[0].event, RecordEvent::Gone);
    assert_eq!(
        gone.records[0].meta_str("path"),
        Some("systems/fraud/notes.txt")
    );
    assert_eq!(
        gone.records[0].sha256,
        aims_model::ContentHash::of(b"first notes\n")
    );
    assert_eq!(c.fetches(), 4);
}

#[tokio::test]
async fn branches_include_and_exclude() {
    let (_dir, root) = sample_repo();
    git(&root, &["checkout", "-q", "-b", "release"]);
    write(
        &root,
        "systems/fraud/release.yaml",
        b"kind: deployment_approval\nenvironment: production\n",
    );
    commit_all(&root, "release");
    git(&root, &["checkout", "-q", "main"]);
    let cache = tempfile::tempdir().unwrap();

    let mut cfg = cfg_local(&root);
    cfg.branch = Some("release".into());
    cfg.exclude = vec!["**/*.txt".into()];
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let paths: Vec<String> = c
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert!(paths.contains(&"systems/fraud/release.yaml".to_owned()));
    assert!(!paths.iter().any(|p| p.ends_with(".txt")));

    let mut cfg = cfg_local(&root);
    cfg.include = vec!["systems/**/*.json".into()];
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let paths: Vec<String> = c
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(paths, ["systems/fraud/validation.json"]);
}

#[tokio::test]
async fn unknown_branch_is_a_clear_error() {
    let (_dir, root) = sample_repo();
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = cfg_local(&root);
    cfg.branch = Some("no-such-branch".into());
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let e = c.list().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-branch"), "{e}");
    assert!(c.check().await.is_err());

    // Same through a mirror.
    cfg.path = None;
    cfg.url = Some(format!("file://{}", root.display()));
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let e = c.list().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("no-such-branch"), "{e}");
    let e = c.check().await.unwrap_err();
    assert_eq!(e.kind(), CollectErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn missing_repository_errors_carry_git_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_local(dir.path());
    let c = GitCollector::new(&cfg, dir.path()).unwrap();
    let e = c.list().await.unwrap_err();
    assert!(e.to_string().contains("not a git repository"), "{e}");
    assert_eq!(e.kind(), CollectErrorKind::Permanent);

    let mut cfg = cfg_local(dir.path());
    cfg.path = None;
    cfg.url = Some(format!("file://{}/nope", dir.path().display()));
    let c = GitCollector::new(&cfg, dir.path()).unwrap();
    let e = c.list().await.unwrap_err();
    assert!(e.to_string().contains("clone"), "{e}");
    // A failed first clone leaves nothing behind, so the next poll retries it cleanly.
    assert!(!dir.path().join("git").read_dir().unwrap().any(|_| true));
}

#[test]
fn build_supports_git_and_dir_only() {
    let dir = tempfile::tempdir().unwrap();
    let parse = |y: &str| serde_yaml::from_str::<SourceConfig>(y).unwrap();
    let git_cfg = parse("{ id: r, type: git, path: /srv/repo, system: s }");
    assert!(build(&git_cfg, dir.path()).is_ok());
    let dir_cfg = parse("{ id: d, type: dir, path: /data, system: s }");
    assert!(build(&dir_cfg, dir.path()).is_ok());
    let ml = parse("{ id: m, type: mlflow, tracking_uri: 'http://mlflow:5000' }");
    let Err(e) = build(&ml, dir.path()) else {
        panic!("mlflow must not build here")
    };
    assert!(matches!(e, BuildError::NotSupported { .. }));
    assert!(e.to_string().contains("not supported"), "{e}");
    let bad = parse("{ id: r, type: git, path: /srv/repo }");
    assert!(matches!(
        build(&bad, dir.path()),
        Err(BuildError::Invalid(_))
    ));
}

#[tokio::test]
async fn large_blobs_are_streamed_and_hashed_but_not_parsed() {
    let (_dir, root) = sample_repo();
    // 5 MiB of JSON-looking bytes: above the 4 MiB parse limit.
    let mut big = b"{\"kind\":\"validation_report\",\"pad\":\"".to_vec();
    big.resize(5 * 1024 * 1024, b'x');
    big.extend_from_slice(b"\"}");
    write(&root, "systems/fraud/big.json", &big);
    commit_all(&root, "big");
    let cfg = cfg_local(&root);
    let cache = tempfile::tempdir().unwrap();
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let cat = catalog();
    let out = poll_once(&c, &Cursor::new(), &cat, &rule(&cfg), Timestamp::now()).await;
    let r = out
        .records
        .iter()
        .find(|r| r.meta_str("path") == Some("systems/fraud/big.json"))
        .unwrap();
    assert_eq!(r.sha256, aims_model::ContentHash::of(&big));
    assert_eq!(r.size, big.len() as u64);
    assert_eq!(r.meta_str("parse_skipped"), Some("too large"));
}

#[tokio::test]
async fn a_vanished_blob_is_a_read_error_not_a_short_read() {
    let (_dir, root) = sample_repo();
    let cfg = cfg_local(&root);
    let cache = tempfile::tempdir().unwrap();
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let mut a = c.list().await.unwrap().remove(0);
    a.version = "0123456789012345678901234567890123456789".into();
    let mut r = c.fetch(&a).await.unwrap();
    let mut buf = Vec::new();
    let e = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cat-file"), "{e}");
}
