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
    git_at(dir, None, args)
}

/// [`git`], with author and committer dates set to `secs` (Unix time) when given.
fn git_at(dir: &Path, secs: Option<i64>, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    if let Some(t) = secs {
        cmd.env("GIT_AUTHOR_DATE", format!("@{t} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{t} +0000"));
    }
    let out = cmd
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
async fn a_vanished_blob_is_a_not_found_error_not_a_short_read() {
    let (_dir, root) = sample_repo();
    let cfg = cfg_local(&root);
    let cache = tempfile::tempdir().unwrap();
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let mut a = c.list().await.unwrap().remove(0);
    a.version = "0123456789012345678901234567890123456789".into();
    let Err(e) = c.fetch(&a).await else {
        panic!("a missing blob was served");
    };
    assert_eq!(e.kind(), CollectErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&a.version), "{e}");
    // The shared cat-file process is still in step: the real blobs read fine.
    let list = c.list().await.unwrap();
    let bytes = read_all(&c, &list[0]).await;
    assert_eq!(bytes.len() as u64, list[0].size.unwrap());
}

async fn read_all(c: &GitCollector, a: &aims_collect::ArtifactRef) -> Vec<u8> {
    let mut r = c.fetch(a).await.unwrap();
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf)
        .await
        .unwrap();
    buf
}

/// What `git --literal-pathspecs log -1 --format=%ct HEAD -- <path>` prints: the committer time
/// the per-file implementation recorded as `artifact_time`.
fn last_commit_time(root: &Path, path: &str) -> Option<i64> {
    git(
        root,
        &[
            "--literal-pathspecs",
            "log",
            "-1",
            "--format=%ct",
            "HEAD",
            "--",
            path,
        ],
    )
    .trim()
    .parse()
    .ok()
}

/// A history with renames, edits, deletions, a re-added file, merges (a side-branch change, a
/// conflict resolved to new content, the same edit on both sides), a commit dated before its
/// parent, paths with spaces and non-ASCII characters, a file in a subdirectory and an empty
/// file.
fn history_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    let t0 = 1_700_000_000;
    let commit = |t: i64, msg: &str| {
        git(&root, &["add", "-A"]);
        git_at(&root, Some(t), &["commit", "-q", "-m", msg]);
    };
    let merge = |t: i64, branch: &str| {
        git_at(
            &root,
            Some(t),
            &["merge", "-q", "--no-ff", "--no-edit", branch],
        );
    };
    git(&root, &["init", "-q", "-b", "main"]);
    for (p, b) in [
        ("systems/s/keep.txt", "keep\n"),
        ("systems/s/modify.txt", "v1\n"),
        ("systems/s/rename-me.txt", "renamed content\n"),
        ("systems/s/delete-me.txt", "short-lived\n"),
        (
            "systems/s/with space/\u{fc}n\u{ef}code \u{2713}.txt",
            "unicode\n",
        ),
        ("systems/s/empty.txt", ""),
        ("systems/s/sub/dir/deep.txt", "deep\n"),
        ("systems/s/both.txt", "base\n"),
        ("README.md", "# repo\n"),
    ] {
        write(&root, p, b.as_bytes());
    }
    commit(t0, "c1");
    write(&root, "systems/s/modify.txt", b"v2\n");
    git(
        &root,
        &["mv", "systems/s/rename-me.txt", "systems/s/renamed.txt"],
    );
    git(&root, &["rm", "-q", "systems/s/delete-me.txt"]);
    commit(t0 + 100, "c2: modify, rename, delete");
    git(&root, &["checkout", "-q", "-b", "side"]);
    write(&root, "systems/s/sub/dir/deep.txt", b"deep from side\n");
    commit(t0 + 200, "side: deep");
    write(&root, "systems/s/side-only.txt", b"side\n");
    commit(t0 + 250, "side: new file");
    git(&root, &["checkout", "-q", "main"]);
    write(&root, "systems/s/modify.txt", b"v3\n");
    write(&root, "systems/s/both.txt", b"main\n");
    commit(t0 + 300, "main: modify, both");
    git(&root, &["checkout", "-q", "side"]);
    write(&root, "systems/s/both.txt", b"side\n");
    commit(t0 + 350, "side: both");
    git(&root, &["checkout", "-q", "main"]);
    let conflict = Command::new("git")
        .current_dir(&root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(["merge", "-q", "--no-ff", "--no-edit", "side"])
        .output()
        .unwrap();
    assert!(!conflict.status.success(), "the merge should conflict");
    write(&root, "systems/s/both.txt", b"resolved\n");
    commit(t0 + 400, "merge side, resolving both.txt");
    // Committer clock behind its parent's.
    write(
        &root,
        "systems/s/with space/\u{fc}n\u{ef}code \u{2713}.txt",
        b"unicode, edited\n",
    );
    commit(t0 + 50, "skewed clock");
    // The same edit on both sides: git follows the first parent.
    git(&root, &["checkout", "-q", "-b", "side2"]);
    write(&root, "systems/s/keep.txt", b"same edit\n");
    commit(t0 + 600, "side2: keep");
    git(&root, &["checkout", "-q", "main"]);
    write(&root, "systems/s/keep.txt", b"same edit\n");
    write(&root, "systems/s/main-only.txt", b"main\n");
    commit(t0 + 650, "main: keep");
    merge(t0 + 700, "side2");
    write(&root, "systems/s/delete-me.txt", b"short-lived\n");
    commit(t0 + 800, "re-add");
    (dir, root)
}

/// Issue 17: the first poll reads blobs through one `cat-file --batch` process and last-commit
/// times from one `git log` pass. Every record must be what the per-file implementation produced:
/// the locator, the blob id, the SHA-256 and size of `git cat-file blob`, the commit and branch,
/// and the time `git log -1 -- <path>` prints.
#[tokio::test]
async fn issue_17_first_poll_records_match_per_file_git() {
    let (_dir, root) = history_repo();
    let cfg = cfg_local(&root);
    let cache = tempfile::tempdir().unwrap();
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let cat = catalog();
    let out = poll_once(&c, &Cursor::new(), &cat, &rule(&cfg), Timestamp::now()).await;
    assert!(out.stats.errors.is_empty(), "{:?}", out.stats.errors);

    let head = git(&root, &["rev-parse", "HEAD"]).trim().to_owned();
    let abs = std::path::absolute(&root).unwrap();
    let tree = git(&root, &["ls-tree", "-r", "-z", "HEAD"]);
    let mut expected = 0;
    let mut times = std::collections::BTreeSet::new();
    for entry in tree.split('\0').filter(|e| !e.is_empty()) {
        let (head_fields, path) = entry.split_once('\t').unwrap();
        if !path.starts_with("systems/") {
            continue;
        }
        expected += 1;
        let blob = head_fields.split(' ').nth(2).unwrap();
        let content = Command::new("git")
            .current_dir(&root)
            .args(["cat-file", "blob", blob])
            .output()
            .unwrap()
            .stdout;
        let r = out
            .records
            .iter()
            .find(|r| r.meta_str("path") == Some(path))
            .unwrap_or_else(|| panic!("no record of {path:?}"));
        assert_eq!(r.locator, format!("git+file://{}#{path}", abs.display()));
        assert_eq!(r.version, blob, "{path}");
        assert_eq!(r.sha256, aims_model::ContentHash::of(&content), "{path}");
        assert_eq!(r.size, content.len() as u64, "{path}");
        assert_eq!(r.meta_str("commit"), Some(head.as_str()), "{path}");
        assert_eq!(r.meta_str("branch"), Some("main"), "{path}");
        let ct = last_commit_time(&root, path);
        assert_eq!(
            r.artifact_time,
            ct.and_then(Timestamp::from_unix_secs),
            "{path}: artifact_time"
        );
        times.insert(ct);
    }
    assert_eq!(out.records.len(), expected);
    assert!(
        times.len() >= 7,
        "the history should exercise many cases: {times:?}"
    );
    let empty = out
        .records
        .iter()
        .find(|r| r.meta_str("path") == Some("systems/s/empty.txt"))
        .unwrap();
    assert_eq!(empty.size, 0);

    // An edit after the first poll: only the changed file is fetched, with its new time.
    write(&root, "systems/s/sub/dir/deep.txt", b"deep, again\n");
    git(&root, &["add", "-A"]);
    git_at(
        &root,
        Some(1_700_009_999),
        &["commit", "-q", "-m", "edit deep"],
    );
    let counting = CountingCollector::new(Box::new(c));
    let again = poll_once(&counting, &out.cursor, &cat, &rule(&cfg), Timestamp::now()).await;
    assert_eq!(counting.fetches(), 1);
    assert_eq!(again.records.len(), 1);
    assert_eq!(
        again.records[0].artifact_time,
        Timestamp::from_unix_secs(1_700_009_999)
    );
}

/// Hostile input to the shared `cat-file --batch` process and the `git log` pass: a path with a
/// newline, a 3 MiB blob abandoned after a few bytes (the process owes more than it drains, so it
/// is replaced), a small read abandoned midway (drained), and two readers open at once.
#[tokio::test]
async fn issue_17_hostile_paths_and_abandoned_reads_keep_the_stream_in_step() {
    let (_dir, root) = sample_repo();
    let newline = "systems/fraud/new\nline.txt";
    write(&root, newline, b"a path with a newline\n");
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    write(&root, "systems/fraud/big.bin", &big);
    git(&root, &["add", "-A"]);
    git_at(
        &root,
        Some(1_700_000_123),
        &["commit", "-q", "-m", "hostile"],
    );
    let cfg = cfg_local(&root);
    let cache = tempfile::tempdir().unwrap();
    let c = GitCollector::new(&cfg, cache.path()).unwrap();
    let list = c.list().await.unwrap();
    let by_path = |p: &str| list.iter().find(|a| a.path == p).unwrap().clone();
    let big_ref = by_path("systems/fraud/big.bin");
    let notes = by_path("systems/fraud/notes.txt");
    let nl = by_path(newline);

    // Abandon the big blob after 10 bytes, then a small one after 3.
    let mut r = c.fetch(&big_ref).await.unwrap();
    let mut ten = [0u8; 10];
    tokio::io::AsyncReadExt::read_exact(&mut r, &mut ten)
        .await
        .unwrap();
    assert_eq!(&ten[..], &big[..10]);
    drop(r);
    let mut r = c.fetch(&notes).await.unwrap();
    let mut three = [0u8; 3];
    tokio::io::AsyncReadExt::read_exact(&mut r, &mut three)
        .await
        .unwrap();
    drop(r);
    assert_eq!(read_all(&c, &nl).await, b"a path with a newline\n");
    assert_eq!(read_all(&c, &notes).await, b"first notes\n");
    // Two readers at once, read in the opposite order.
    let mut first = c.fetch(&big_ref).await.unwrap();
    let mut second = c.fetch(&nl).await.unwrap();
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut second, &mut buf)
        .await
        .unwrap();
    assert_eq!(buf, b"a path with a newline\n");
    buf.clear();
    tokio::io::AsyncReadExt::read_to_end(&mut first, &mut buf)
        .await
        .unwrap();
    assert_eq!(buf, big);

    let cat = catalog();
    let out = poll_once(&c, &Cursor::new(), &cat, &rule(&cfg), Timestamp::now()).await;
    // A record cannot carry a newline in its locator (as before issue 17): that one artifact
    // fails, every other is collected.
    assert_eq!(out.stats.errors.len(), 1, "{:?}", out.stats.errors);
    assert!(
        out.stats.errors[0].contains("control characters"),
        "{:?}",
        out.stats.errors
    );
    assert_eq!(
        out.records.len(),
        list.len() - 2,
        "all but README.md and the newline path"
    );
    let rec = |p: &str| {
        out.records
            .iter()
            .find(|r| r.meta_str("path") == Some(p))
            .unwrap()
    };
    // The `git log` pass still reads the newline path's time, as `git log -1 -- <path>` does.
    let meta = c.fetch_metadata(&nl).await.unwrap();
    assert_eq!(
        meta.artifact_time,
        last_commit_time(&root, newline).and_then(Timestamp::from_unix_secs)
    );
    assert_eq!(meta.artifact_time, Timestamp::from_unix_secs(1_700_000_123));
    assert_eq!(
        rec("systems/fraud/big.bin").sha256,
        aims_model::ContentHash::of(&big)
    );
    assert_eq!(
        rec("systems/fraud/notes.txt").artifact_time,
        last_commit_time(&root, "systems/fraud/notes.txt").and_then(Timestamp::from_unix_secs)
    );
}
