//! The GitHub source against recorded REST responses served over real HTTP (see
//! `aims_collect_github::testkit`):
//! the shared compliance harness, pagination, conditional re-polls, rate limits, unprotected
//! branches and the metadata of environment approvals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aims_collect::testkit::{SourceFixture, assert_collector_compliance, catalog, poll_once};
use aims_collect::{CollectErrorKind, Collector, Cursor, GithubSource, SourceConfig, SystemRule};
use aims_collect_github::testkit::{COMMIT, FakeGithub, OWNER, REPO, fixture, fixture_json};
use aims_collect_github::{GithubCollector, GithubError, build};
use aims_model::{EvidenceRecord, Timestamp};
use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn cfg(gh: &FakeGithub) -> GithubSource {
    GithubSource {
        id: "gh".into(),
        owner: OWNER.into(),
        repo: REPO.into(),
        git_ref: None,
        token_env: None,
        token_file: None,
        api_url: Some(gh.url.clone()),
        system: Some("fraud-scoring".into()),
        system_from_path: None,
        interval_secs: 300,
    }
}

fn rule(cfg: &GithubSource) -> SystemRule {
    SourceConfig::Github(cfg.clone()).system_rule().unwrap()
}

fn collector(gh: &FakeGithub, cache: &Path) -> GithubCollector {
    build(&cfg(gh), cache).unwrap()
}

fn by_locator<'a>(records: &'a [EvidenceRecord], locator: &str) -> &'a EvidenceRecord {
    records
        .iter()
        .find(|r| r.locator == locator)
        .unwrap_or_else(|| panic!("no record for {locator}"))
}

fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Edits the served fixtures: a new commit changing one blob, then one removing another.
struct ServedRepo<'a> {
    gh: &'a FakeGithub,
}

#[async_trait]
impl SourceFixture for ServedRepo<'_> {
    async fn change_one(&mut self) -> String {
        let path = "systems/fraud/notes.txt";
        let bytes = b"second notes, longer than the first\n";
        let sha = hex::encode(Sha256::digest(bytes))[..40].to_owned();
        self.gh.set_blob(&sha, bytes);
        let mut tree = self.gh.tree(&self.gh.current_commit()).unwrap();
        for e in tree["tree"].as_array_mut().unwrap() {
            if e["path"] == path {
                e["sha"] = json!(sha);
                e["size"] = json!(bytes.len());
                e["url"] = json!(format!(
                    "https://api.github.com/repos/acme/fraud/git/blobs/{sha}"
                ));
            }
        }
        self.gh.push_tree(&tree);
        path.into()
    }

    async fn remove_one(&mut self) -> String {
        let path = "systems/fraud/README.md";
        let mut tree = self.gh.tree(&self.gh.current_commit()).unwrap();
        tree["tree"]
            .as_array_mut()
            .unwrap()
            .retain(|e| e["path"] != path);
        self.gh.push_tree(&tree);
        path.into()
    }

    async fn bytes(&self, path: &str) -> Option<Vec<u8>> {
        let tree = self.gh.tree(&self.gh.current_commit()).unwrap();
        let sha = tree["tree"]
            .as_array()?
            .iter()
            .find(|e| e["path"] == path)?["sha"]
            .as_str()?
            .to_owned();
        self.gh.blob(&sha)
    }
}

#[tokio::test]
async fn compliance() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cfg = cfg(&gh);
    let rule = rule(&cfg);
    let cache_path = cache.path().to_owned();
    let mut fixture = ServedRepo { gh: &gh };
    assert_collector_compliance(
        move || Box::new(build(&cfg, &cache_path).unwrap()) as Box<dyn Collector>,
        &mut fixture,
        &rule,
    )
    .await;
}

#[tokio::test]
async fn lists_every_family_and_classifies() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    c.check().await.unwrap();
    let listing = c.list().await.unwrap();
    let locators: Vec<&str> = listing.iter().map(|a| a.locator.as_str()).collect();
    for expected in [
        "github://acme/fraud/blob/systems/fraud/validation_report.json",
        "github://acme/fraud/blob/.github/CODEOWNERS",
        "github://acme/fraud/deployments/1870001003",
        "github://acme/fraud/deployments/1870001001",
        "github://acme/fraud/actions/runs/5432100020/approvals",
        "github://acme/fraud/pulls/42",
        "github://acme/fraud/pulls/40",
        "github://acme/fraud/branches/main/protection",
    ] {
        assert!(
            locators.contains(&expected),
            "{expected} missing from {locators:?}"
        );
    }
    // PR 41 was closed without merging; run 5432100010 never waited for reviewers (empty
    // history); run 5432000001 has no approvals history at all (404).
    assert!(!locators.iter().any(|l| l.ends_with("/pulls/41")));
    assert_eq!(
        locators.iter().filter(|l| l.contains("/approvals")).count(),
        1
    );
    assert_eq!(listing.len(), 5 + 3 + 1 + 2 + 1, "{locators:?}");
    let file = listing
        .iter()
        .find(|a| a.path == "systems/fraud/notes.txt")
        .unwrap();
    assert_eq!(file.version, "b10f51519960e0046e969d188e5ec0c57b343384");
    assert_eq!(file.extra["commit"], COMMIT);
    assert_eq!(file.extra["ref"], "main");
    assert!(
        gh.log().iter().all(|l| l.authorization.is_none()),
        "unauthenticated"
    );

    let catalog = catalog();
    let out = poll_once(
        &c,
        &Cursor::new(),
        &catalog,
        &rule(&cfg(&gh)),
        Timestamp::now(),
    )
    .await;
    assert!(out.stats.errors.is_empty(), "{:?}", out.stats.errors);
    let kind = |l: &str| by_locator(&out.records, l).kind.clone();
    assert_eq!(
        kind("github://acme/fraud/blob/systems/fraud/validation_report.json"),
        "validation_report"
    );
    assert_eq!(
        kind("github://acme/fraud/blob/systems/fraud/README.md"),
        "model_card"
    );
    assert_eq!(
        kind("github://acme/fraud/blob/.github/CODEOWNERS"),
        "process_control"
    );
    assert_eq!(
        kind("github://acme/fraud/actions/runs/5432100020/approvals"),
        "deployment_approval"
    );
    assert_eq!(
        kind("github://acme/fraud/branches/main/protection"),
        "process_control"
    );
    let pr = by_locator(&out.records, "github://acme/fraud/pulls/42");
    assert_eq!(pr.metadata["format"], "github_pull_request");
    assert_eq!(pr.metadata["approvers"], json!(["octocat", "risk-officer"]));
    assert_eq!(pr.metadata["review_count"], 3);
    assert_eq!(pr.metadata["approval_count"], 2);
    assert_eq!(
        pr.artifact_time,
        Timestamp::parse_lenient("2026-11-20T10:05:00Z")
    );
    let dep = by_locator(&out.records, "github://acme/fraud/deployments/1870001003");
    assert_eq!(dep.metadata["format"], "github_deployment");
    assert_eq!(dep.version, "status-4400000013");
    assert_eq!(dep.metadata["environment"], "production");
    assert_eq!(dep.metadata["state"], "success");
    assert_eq!(
        dep.metadata["model"],
        json!({"name": "fraud", "version": "3"})
    );
    let prot = by_locator(&out.records, "github://acme/fraud/branches/main/protection");
    assert_eq!(prot.metadata["protected"], true);
    assert_eq!(prot.metadata["required_approving_review_count"], 2);
    assert_eq!(
        prot.metadata["required_status_checks"],
        json!(["validate-model", "data-quality"])
    );
}

#[tokio::test]
async fn approval_record_metadata() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let catalog = catalog();
    let out = poll_once(
        &c,
        &Cursor::new(),
        &catalog,
        &rule(&cfg(&gh)),
        Timestamp::now(),
    )
    .await;
    let r = by_locator(
        &out.records,
        "github://acme/fraud/actions/runs/5432100020/approvals",
    );
    assert_eq!(r.kind, "deployment_approval");
    assert_eq!(r.system, "fraud-scoring");
    let m = &r.metadata;
    assert_eq!(m["format"], "github_deployment_review");
    assert_eq!(m["approved_by"], json!(["risk-officer"]));
    assert_eq!(m["environment"], "production");
    assert_eq!(m["state"], "approved");
    assert_eq!(m["approved_at"], "2026-11-21T09:00:05Z");
    assert_eq!(m["model"], json!({"name": "fraud", "version": "3"}));
    assert_eq!(m["run_id"], 5432100020u64);
    assert_eq!(m["deployment_id"], 1870001003u64);
    assert!(m["comment"].as_str().unwrap().contains("Ship it"));
    assert_eq!(
        r.artifact_time,
        Timestamp::parse_lenient("2026-11-21T09:00:05Z")
    );
    // The artifact bytes are the run's approvals history as GitHub served it.
    let doc: Value = serde_json::from_slice(
        &read_all(&c, "github://acme/fraud/actions/runs/5432100020/approvals").await,
    )
    .unwrap();
    assert_eq!(doc["workflow_run_id"], 5432100020u64);
    assert_eq!(
        doc["approvals"],
        fixture_json("run_approvals_5432100020.json").unwrap()
    );
}

async fn read_all(c: &GithubCollector, locator: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let listing = c.list().await.unwrap();
    let a = listing.iter().find(|a| a.locator == locator).unwrap();
    let mut r = c.fetch(a).await.unwrap();
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).await.unwrap();
    buf
}

#[tokio::test]
async fn paginates_with_link_headers() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let listing = c.list().await.unwrap();
    let pq: Vec<String> = gh.log().iter().map(|l| l.path_and_query.clone()).collect();
    assert!(
        pq.contains(&"/repos/acme/fraud/deployments?per_page=100&page=2".to_owned()),
        "{pq:?}"
    );
    assert!(
        pq.contains(
            &"/repos/acme/fraud/pulls?state=closed&sort=updated&direction=desc&per_page=100&page=2"
                .to_owned()
        ),
        "{pq:?}"
    );
    // Both pages made it into the listing.
    assert!(
        listing
            .iter()
            .any(|a| a.locator.ends_with("/deployments/1870001001"))
    );
    assert!(listing.iter().any(|a| a.locator.ends_with("/pulls/40")));

    // A window of one page is partial: what was seen beyond it is kept, not reported gone.
    let narrow = collector(&gh, cache.path()).with_limits(aims_collect_github::Limits {
        deployment_pages: 1,
        pull_pages: 1,
        max_trees: 100,
        ..aims_collect_github::Limits::default()
    });
    let catalog = catalog();
    let rule = rule(&cfg(&gh));
    let first = poll_once(&c, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    let again = poll_once(&narrow, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    assert!(again.records.is_empty(), "{:?}", again.records);
    assert_eq!(again.stats.gone, 0);
}

#[tokio::test]
async fn unchanged_repoll_is_all_304_and_fetches_nothing() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let catalog = catalog();
    let rule = rule(&cfg(&gh));
    let first = poll_once(&c, &Cursor::new(), &catalog, &rule, Timestamp::now()).await;
    assert!(gh.count(|l| l.path.contains("/git/blobs/")) == 5);

    gh.clear_log();
    let second = poll_once(&c, &first.cursor, &catalog, &rule, Timestamp::now()).await;
    assert!(second.records.is_empty());
    assert_eq!(second.stats.fetched, 0);
    let log = gh.log();
    assert!(!log.is_empty());
    assert_eq!(
        gh.count(|l| l.path.contains("/git/blobs/")),
        0,
        "no content downloads"
    );
    assert_eq!(gh.count(|l| l.status == 200), 0, "{log:#?}");
    // Reviews of unchanged pull requests are not even asked for.
    assert_eq!(gh.count(|l| l.path.ends_with("/reviews")), 0);
    let not_modified = gh.count(|l| l.status == 304);
    assert!(not_modified >= 10, "{log:#?}");

    // A restarted collector keeps its ETags (cache file): still no 200s.
    gh.clear_log();
    let restarted = collector(&gh, cache.path());
    let third = poll_once(
        &restarted,
        &second.cursor,
        &catalog,
        &rule,
        Timestamp::now(),
    )
    .await;
    assert!(third.records.is_empty());
    assert_eq!(gh.count(|l| l.status == 200), 0, "{:#?}", gh.log());
}

#[tokio::test]
async fn waits_out_the_rate_limit() {
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let start = Instant::now();
    let start_ms = epoch_millis();
    let reset = start_ms / 1000 + 2;
    gh.rate_limit_until(reset);
    let listing = c.list().await.unwrap();
    assert!(!listing.is_empty());
    let waited = start.elapsed();
    let until_reset = Duration::from_millis((reset * 1000 - start_ms) as u64);
    assert!(
        waited >= until_reset,
        "waited {waited:?}, reset was {until_reset:?} away"
    );
    assert!(waited < until_reset + Duration::from_secs(5), "{waited:?}");
    assert_eq!(
        gh.count(|l| l.status == 403),
        1,
        "one 403, then a wait, no hot loop"
    );

    // Beyond the maximum wait: a transient error naming the reset time, no waiting.
    let c = collector(&gh, cache.path()).with_max_rate_limit_wait(Duration::from_secs(1));
    let reset = epoch_millis() / 1000 + 120;
    gh.rate_limit_until(reset);
    let start = Instant::now();
    let err = c.list().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(err.kind(), CollectErrorKind::Transient);
    let when = chrono::DateTime::from_timestamp(reset, 0)
        .unwrap()
        .to_rfc3339();
    assert!(err.to_string().contains(&when), "{err}");
}

#[tokio::test]
async fn unprotected_branch_is_evidence_too() {
    let gh = FakeGithub::start().await.unwrap();
    gh.set_status(
        "/repos/acme/fraud/branches/main/protection",
        404,
        &fixture_json("branch_not_protected.json").unwrap(),
    );
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let catalog = catalog();
    let out = poll_once(
        &c,
        &Cursor::new(),
        &catalog,
        &rule(&cfg(&gh)),
        Timestamp::now(),
    )
    .await;
    let r = by_locator(&out.records, "github://acme/fraud/branches/main/protection");
    assert_eq!(r.kind, "process_control");
    assert_eq!(r.metadata["protected"], false);
    assert_eq!(r.metadata["branch"], "main");
    assert_eq!(r.metadata["format"], "github_branch_protection");
    let doc: Value = serde_json::from_slice(&read_all(&c, &r.locator).await).unwrap();
    assert_eq!(doc, json!({"branch": "main", "protected": false}));

    // Protection added later: the same artifact changes.
    gh.set_json(
        "/repos/acme/fraud/branches/main/protection",
        &fixture_json("branch_protection_main.json").unwrap(),
    );
    let next = poll_once(
        &c,
        &out.cursor,
        &catalog,
        &rule(&cfg(&gh)),
        Timestamp::now(),
    )
    .await;
    assert_eq!(next.records.len(), 1);
    assert_eq!(next.records[0].metadata["protected"], true);
}

#[tokio::test]
async fn token_is_sent_and_never_shown() {
    let gh = FakeGithub::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "ghp_TESTTOKEN0123456789\n").unwrap();
    let mut cfg = cfg(&gh);
    cfg.token_file = Some(token_file);
    let c = build(&cfg, dir.path()).unwrap();
    c.check().await.unwrap();
    let log = gh.log();
    assert_eq!(
        log[0].authorization.as_deref(),
        Some("Bearer ghp_TESTTOKEN0123456789")
    );
    assert!(!format!("{c:?}").contains("TESTTOKEN"));

    let mut missing = self::cfg(&gh);
    missing.token_env = Some("AIMS_TEST_GITHUB_TOKEN_THAT_IS_NOT_SET".into());
    let err = build(&missing, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            GithubError::Config {
                field: "token_env",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), CollectErrorKind::Permanent);

    // A missing repository is a not-found error.
    let mut other = self::cfg(&gh);
    other.repo = "nope".into();
    let err = build(&other, dir.path())
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), CollectErrorKind::NotFound);
}

#[tokio::test]
async fn blob_json_and_raw_agree() {
    // The server speaks both media types of the blobs API; the collector streams the raw one.
    let gh = FakeGithub::start().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = collector(&gh, cache.path());
    let bytes = read_all(
        &c,
        "github://acme/fraud/blob/systems/fraud/validation_report.json",
    )
    .await;
    assert_eq!(
        bytes,
        fixture("blobs/6eb6fd99757cd3a1a8327c1f44918c2bfa43bc32").unwrap()
    );
    let raw = gh
        .log()
        .into_iter()
        .filter(|l| l.path.contains("/git/blobs/"))
        .count();
    assert_eq!(raw, 1);
}

#[tokio::test]
async fn truncated_tree_is_walked() {
    let gh = FakeGithub::start().await.unwrap();
    let full = gh.tree(COMMIT).unwrap();
    let entries = full["tree"].as_array().unwrap().clone();
    // Non-recursive trees, as `GET /git/trees/{sha}` serves them.
    let dirs = [("", full["sha"].as_str().unwrap().to_owned())]
        .into_iter()
        .chain(entries.iter().filter(|e| e["type"] == "tree").map(|e| {
            (
                e["path"].as_str().unwrap(),
                e["sha"].as_str().unwrap().to_owned(),
            )
        }))
        .collect::<Vec<_>>();
    for (dir, sha) in &dirs {
        let children: Vec<Value> = entries
            .iter()
            .filter_map(|e| {
                let p = e["path"].as_str().unwrap();
                let rest = if dir.is_empty() {
                    Some(p)
                } else {
                    p.strip_prefix(&format!("{dir}/"))
                }?;
                (!rest.contains('/')).then(|| {
                    let mut c = e.clone();
                    c["path"] = json!(rest);
                    c
                })
            })
            .collect();
        gh.set_json(
            &format!("/repos/acme/fraud/git/trees/{sha}"),
            &json!({"sha": sha, "url": format!("https://api.github.com/repos/acme/fraud/git/trees/{sha}"), "tree": children, "truncated": false}),
        );
    }
    let mut truncated = full.clone();
    truncated["tree"] = json!(entries[..2]);
    truncated["truncated"] = json!(true);
    gh.set_json(&format!("/repos/acme/fraud/git/trees/{COMMIT}"), &truncated);

    let cache = tempfile::tempdir().unwrap();
    let listing = collector(&gh, cache.path()).list().await.unwrap();
    let mut files: Vec<(&str, &str)> = listing
        .iter()
        .filter(|a| a.locator.contains("/blob/"))
        .map(|a| (a.path.as_str(), a.version.as_str()))
        .collect();
    files.sort();
    let mut expected: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["type"] == "blob")
        .map(|e| (e["path"].as_str().unwrap(), e["sha"].as_str().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(files, expected);
}
