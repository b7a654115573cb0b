//! [`GithubCollector`]: one repository's files and its lifecycle records on GitHub.
//!
//! A listing is made of five families (locators are stable across versions):
//!
//! | family | locator | `path` | version token | format |
//! |---|---|---|---|---|
//! | files at the ref | `github://o/r/blob/{path}` | the repository path | blob sha | parsed from content |
//! | deployments | `github://o/r/deployments/{id}` | `github+api/deployments/{id}` | newest status id | `github_deployment` |
//! | environment approvals | `github://o/r/actions/runs/{run}/approvals` | `github+api/actions/runs/{run}/approvals` | digest of the document | `github_deployment_review` |
//! | merged pull requests | `github://o/r/pulls/{n}` | `github+api/pulls/{n}` | `merged_at/reviews/digest` | `github_pull_request` |
//! | default-branch protection | `github://o/r/branches/{b}/protection` | `github+api/branches/{b}/protection` | digest of the document | `github_branch_protection` |
//!
//! Files are the git tree of the configured ref (default: the default branch), read with
//! `GET /repos/o/r/commits/{ref}` (commit id only) and `GET /repos/o/r/git/trees/{commit}?recursive=1`;
//! a truncated recursive tree is walked one tree at a time instead. `fetch` streams
//! `GET /repos/o/r/git/blobs/{sha}` with the raw media type. `extra` carries `ref` and `commit`.
//! The `+` in the API paths keeps `system_from_path` patterns from capturing a system out of
//! them (`+` is not allowed in system names): with `system_from_path` only files get a system,
//! and a source that wants API evidence names a fixed `system`.
//!
//! Environment approvals are found through deployments: GitHub creates a deployment for every
//! job that targets an environment, and its statuses link the workflow run (`log_url`,
//! `target_url`). Each linked run's approvals history
//! (`GET /repos/o/r/actions/runs/{run}/approvals`) becomes one artifact, with `environment`,
//! `state` (`rejected` if any reviewer rejected, else `approved`), `approved_by` (logins),
//! `approved_at` (when the waiting deployment went on — the approvals API has no timestamp) and
//! `model {name, version}` when the deployment payload names one.
//!
//! Deployments and pull requests are windows (newest pages only, see [`Limits`]). An artifact
//! seen before that merely fell out of a partial window is kept in the listing with its last
//! version (remembered in memory and in the cache file), so the engine does not report it gone;
//! when the window covered everything, a missing artifact really is gone.
//!
//! A listing is never taken as complete when part of it failed (issue 18, A2): any failed
//! request fails `list` (the engine keeps its cursor), with three deliberate exceptions that
//! cannot produce a false `gone` — a deployment whose statuses answer 404 is left out only if it
//! was never listed before (a deletion racing the listing; otherwise the listing fails), a
//! workflow run whose approvals answer 404 keeps its remembered artifact (GitHub expires old
//! runs; the approval evidence stands), and branch protection the token cannot read is left out
//! only if it was never listed (a token that could read it before and cannot now fails the
//! listing: an operator must look). A truncated sub-tree while walking a large tree fails too.
//!
//! `fetch` rebuilds a document from the API (a handful of requests, most answered `304` from
//! the ETag cache) and never depends on an earlier `list`, so a restarted collector fetches
//! exactly what a running one would.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aims_collect::{ArtifactReader, ArtifactRef, CollectError, Collector};
use aims_model::{SourceRef, SourceType, Timestamp};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api::{ACCEPT_RAW, ACCEPT_SHA, Api};
use crate::documents;
use crate::error::GithubError;

/// How many pages (of 100) of each windowed listing are read per poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deployment pages (newest first).
    pub deployment_pages: usize,
    /// Closed pull-request pages (most recently updated first).
    pub pull_pages: usize,
    /// Trees read one by one when a recursive tree is truncated.
    pub max_trees: usize,
    /// Largest JSON answer read ([`crate::api::MAX_JSON_BODY`]).
    pub max_json_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deployment_pages: 2,
            pull_pages: 3,
            max_trees: 10_000,
            max_json_bytes: crate::api::MAX_JSON_BODY,
        }
    }
}

/// Review pages read per pull request (list and fetch must agree).
const REVIEW_PAGES: usize = 3;
/// Path prefix of artifacts that are API objects rather than files.
const API_PATH: &str = "github+api";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Family {
    Deployment,
    Approval,
    Pull,
    /// Not windowed: remembered so that protection the token can no longer read is an error,
    /// not a `gone`.
    Protection,
}

/// An artifact of a windowed family as remembered between listings.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Remembered {
    family: Family,
    path: String,
    locator: String,
    version: String,
    artifact_time: Option<Timestamp>,
    extra: Map<String, Value>,
}

impl Remembered {
    fn new(family: Family, a: &ArtifactRef) -> Self {
        Self {
            family,
            path: a.path.clone(),
            locator: a.locator.clone(),
            version: a.version.clone(),
            artifact_time: a.artifact_time,
            extra: a.extra.clone(),
        }
    }

    fn to_ref(&self) -> ArtifactRef {
        let mut a = ArtifactRef::new(&self.path, &self.locator, &self.version);
        a.artifact_time = self.artifact_time;
        a.extra = self.extra.clone();
        a
    }
}

/// What `list` keeps between calls.
#[derive(Debug, Default)]
struct ListState {
    loaded: bool,
    /// Windowed artifacts of the last listing, by locator.
    windowed: BTreeMap<String, Remembered>,
    /// Pull number → (`updated_at`, reviews): reviews are re-read only when the PR moved.
    reviews: HashMap<u64, (String, Vec<Value>)>,
}

#[derive(Debug, Deserialize)]
struct RepoInfo {
    default_branch: String,
}

#[derive(Debug, Deserialize)]
struct Tree {
    sha: String,
    #[serde(default)]
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct TreeEntry {
    path: String,
    mode: String,
    #[serde(rename = "type")]
    kind: String,
    sha: String,
    #[serde(default)]
    size: Option<u64>,
}

/// What a deployment's statuses say about the workflow run behind it.
#[derive(Debug, Clone)]
struct RunLink {
    deployment_id: u64,
    environment: Option<String>,
    resumed_at: Option<String>,
    model: Option<Value>,
}

/// A collector over one GitHub repository. Built by [`crate::build`].
#[derive(Debug)]
pub struct GithubCollector {
    source: SourceRef,
    owner: String,
    repo: String,
    git_ref: Option<String>,
    api: Api,
    limits: Limits,
    /// `github://owner/repo/`.
    locator_base: String,
    state: tokio::sync::Mutex<ListState>,
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Drops repeated values, keeping the first occurrence of each (order is GitHub's).
fn unique(v: &mut Vec<Value>) {
    let mut seen = Vec::new();
    v.retain(|x| {
        if seen.contains(x) {
            false
        } else {
            seen.push(x.clone());
            true
        }
    });
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn time_of(v: Option<&str>) -> Option<Timestamp> {
    v.and_then(Timestamp::parse_lenient)
}

fn insert_opt(m: &mut Map<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        m.insert(key.into(), v.into());
    }
}

impl GithubCollector {
    pub(crate) fn new(
        source_id: &str,
        owner: &str,
        repo: &str,
        git_ref: Option<String>,
        api: Api,
    ) -> Self {
        Self {
            source: SourceRef {
                id: source_id.to_owned(),
                source_type: SourceType::Github,
            },
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            git_ref,
            api,
            limits: Limits::default(),
            locator_base: format!("github://{owner}/{repo}/"),
            state: tokio::sync::Mutex::new(ListState::default()),
        }
    }

    /// Caps one rate-limit wait (default 15 minutes); a longer wait fails the request with a
    /// transient error naming the reset time.
    pub fn with_max_rate_limit_wait(mut self, max_wait: Duration) -> Self {
        self.api.set_max_wait(max_wait);
        self
    }

    /// Changes how much of the windowed listings is read, and the JSON size bound.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.api.set_max_json_bytes(limits.max_json_bytes);
        self.limits = limits;
        self
    }

    fn repo_root(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.repo)
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
    }

    fn api_artifact(&self, rest: &str, version: String, format: &str) -> ArtifactRef {
        let mut a = ArtifactRef::new(
            format!("{API_PATH}/{rest}"),
            format!("{}{rest}", self.locator_base),
            version,
        );
        a.extra
            .insert("format".into(), Value::String(format.into()));
        a
    }

    // ---- files -----------------------------------------------------------------------

    async fn commit_of(&self, git_ref: &str) -> Result<String, GithubError> {
        let path = self.repo_path(&format!("commits/{git_ref}"));
        let page = self.api.get_cached(&path, ACCEPT_SHA).await?;
        let sha = String::from_utf8_lossy(&page.body).trim().to_owned();
        if is_object_id(&sha) {
            Ok(sha)
        } else {
            Err(GithubError::Decode {
                path,
                reason: "expected a commit id".into(),
            })
        }
    }

    /// `(path, blob sha, size)` of every regular file at `commit`.
    async fn files(&self, commit: &str) -> Result<Vec<(String, String, Option<u64>)>, GithubError> {
        let tree: Tree = self
            .api
            .get_json(&self.repo_path(&format!("git/trees/{commit}?recursive=1")))
            .await?;
        let keep = |e: &TreeEntry| e.kind == "blob" && e.mode != "120000";
        if !tree.truncated {
            return Ok(tree
                .tree
                .into_iter()
                .filter(keep)
                .map(|e| (e.path, e.sha, e.size))
                .collect());
        }
        tracing::info!(commit, "recursive tree truncated, walking trees one by one");
        let mut out = Vec::new();
        let mut queue = vec![(String::new(), tree.sha)];
        let mut read = 0;
        while let Some((prefix, sha)) = queue.pop() {
            read += 1;
            if read > self.limits.max_trees {
                return Err(GithubError::Decode {
                    path: self.repo_path("git/trees"),
                    reason: format!("more than {} trees", self.limits.max_trees),
                });
            }
            let sub_path = self.repo_path(&format!("git/trees/{sha}"));
            let sub: Tree = self.api.get_json(&sub_path).await?;
            if sub.truncated {
                // Files left out of a truncated tree would be reported gone.
                return Err(GithubError::Decode {
                    path: sub_path,
                    reason: "tree truncated by the API: the file listing would be incomplete"
                        .into(),
                });
            }
            for e in sub.tree {
                let full = format!("{prefix}{}", e.path);
                if e.kind == "tree" {
                    queue.push((format!("{full}/"), e.sha));
                } else if keep(&e) {
                    out.push((full, e.sha, e.size));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    // ---- deployments and approvals ---------------------------------------------------

    async fn statuses(&self, id: u64) -> Result<Vec<Value>, GithubError> {
        let path = self.repo_path(&format!("deployments/{id}/statuses?per_page=100"));
        Ok(self.api.get_pages(&path, None, 1).await?.0)
    }

    async fn deployments(
        &self,
        remembered: &BTreeMap<String, Remembered>,
    ) -> Result<(Vec<ArtifactRef>, BTreeMap<u64, RunLink>, bool), GithubError> {
        let (items, complete) = self
            .api
            .get_pages(
                &self.repo_path("deployments?per_page=100"),
                None,
                self.limits.deployment_pages,
            )
            .await?;
        let mut out = Vec::new();
        let mut runs = BTreeMap::new();
        for d in &items {
            let Some(id) = d.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let statuses = match self.statuses(id).await {
                Ok(s) => s,
                // Listed a moment ago, never seen before: a deletion racing this listing.
                Err(e)
                    if e.is_not_found()
                        && !remembered
                            .contains_key(&format!("{}deployments/{id}", self.locator_base)) =>
                {
                    tracing::debug!(deployment = id, "deployment vanished while listing");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let newest = statuses.first();
            let version = newest
                .and_then(|s| s.get("id"))
                .and_then(Value::as_u64)
                .map_or_else(|| "no-status".to_owned(), |s| format!("status-{s}"));
            let mut a =
                self.api_artifact(&format!("deployments/{id}"), version, "github_deployment");
            let environment = str_field(d, "environment");
            let model = d.get("payload").and_then(documents::model_from_payload);
            let m = &mut a.extra;
            m.insert("deployment_id".into(), json!(id));
            insert_opt(m, "environment", environment.clone());
            insert_opt(m, "ref", str_field(d, "ref"));
            insert_opt(m, "commit", str_field(d, "sha"));
            insert_opt(m, "task", str_field(d, "task"));
            insert_opt(m, "creator", d.pointer("/creator/login").cloned());
            insert_opt(m, "state", newest.and_then(|s| str_field(s, "state")));
            insert_opt(m, "model", model.clone());
            a.artifact_time = time_of(d.get("created_at").and_then(Value::as_str));
            out.push(a);

            let resumed = documents::resumed_at(&statuses);
            for s in &statuses {
                let run = ["log_url", "target_url"]
                    .iter()
                    .filter_map(|k| s.get(*k).and_then(Value::as_str))
                    .find_map(documents::run_id_from_url);
                if let Some(run) = run {
                    runs.entry(run).or_insert_with(|| RunLink {
                        deployment_id: id,
                        environment: environment.clone(),
                        resumed_at: resumed.clone(),
                        model: model.clone(),
                    });
                }
            }
        }
        Ok((out, runs, complete))
    }

    async fn approvals_json(&self, run: u64) -> Result<Value, GithubError> {
        self.api
            .get_json(&self.repo_path(&format!("actions/runs/{run}/approvals")))
            .await
    }

    async fn approvals(
        &self,
        runs: &BTreeMap<u64, RunLink>,
        remembered: &BTreeMap<String, Remembered>,
    ) -> Result<Vec<ArtifactRef>, GithubError> {
        let mut out = Vec::new();
        for (run, link) in runs {
            let approvals = match self.approvals_json(*run).await {
                Ok(v) => v,
                Err(e) if e.is_not_found() => {
                    let locator = format!("{}actions/runs/{run}/approvals", self.locator_base);
                    if let Some(old) = remembered.get(&locator) {
                        // An expired run: the approvals it had stand as last seen.
                        tracing::debug!(
                            run,
                            "workflow run gone, its approvals kept as last listed"
                        );
                        out.push(old.to_ref());
                    } else {
                        tracing::debug!(run, "workflow run has no approvals history");
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(entries) = approvals.as_array().filter(|a| !a.is_empty()) else {
                continue;
            };
            let doc = documents::to_bytes(&documents::run_approvals(*run, &approvals));
            let mut a = self.api_artifact(
                &format!("actions/runs/{run}/approvals"),
                documents::digest_token(&doc),
                "github_deployment_review",
            );
            let logins = |state: &str| -> Vec<Value> {
                let mut v: Vec<Value> = entries
                    .iter()
                    .filter(|e| e.get("state").and_then(Value::as_str) == Some(state))
                    .filter_map(|e| e.pointer("/user/login").cloned())
                    .collect();
                unique(&mut v);
                v
            };
            let approved_by = logins("approved");
            let rejected_by = logins("rejected");
            let state = if !rejected_by.is_empty() {
                "rejected"
            } else if !approved_by.is_empty() {
                "approved"
            } else {
                "pending"
            };
            let mut environments: Vec<Value> = entries
                .iter()
                .filter_map(|e| e.get("environments").and_then(Value::as_array))
                .flatten()
                .filter_map(|env| env.get("name").cloned())
                .collect();
            unique(&mut environments);
            let environment = environments
                .first()
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| link.environment.clone());
            let comment = entries.iter().find_map(|e| {
                e.get("comment")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
            });
            let m = &mut a.extra;
            m.insert("run_id".into(), json!(run));
            m.insert("deployment_id".into(), json!(link.deployment_id));
            insert_opt(m, "environment", environment);
            m.insert("environments".into(), Value::Array(environments));
            m.insert("state".into(), json!(state));
            m.insert("decision".into(), json!(state));
            m.insert("approved_by".into(), Value::Array(approved_by));
            if !rejected_by.is_empty() {
                m.insert("rejected_by".into(), Value::Array(rejected_by));
            }
            insert_opt(m, "comment", comment);
            if state == "approved" {
                insert_opt(m, "approved_at", link.resumed_at.clone());
                a.artifact_time = time_of(link.resumed_at.as_deref());
            }
            insert_opt(m, "model", link.model.clone());
            out.push(a);
        }
        Ok(out)
    }

    // ---- pull requests ----------------------------------------------------------------

    async fn reviews(&self, number: u64) -> Result<Vec<Value>, GithubError> {
        let path = self.repo_path(&format!("pulls/{number}/reviews?per_page=100"));
        Ok(self.api.get_pages(&path, None, REVIEW_PAGES).await?.0)
    }

    async fn pulls(&self, state: &mut ListState) -> Result<(Vec<ArtifactRef>, bool), GithubError> {
        let (items, complete) = self
            .api
            .get_pages(
                &self.repo_path("pulls?state=closed&sort=updated&direction=desc&per_page=100"),
                None,
                self.limits.pull_pages,
            )
            .await?;
        let mut out = Vec::new();
        let mut memo = HashMap::new();
        for pr in &items {
            let (Some(number), Some(merged_at)) = (
                pr.get("number").and_then(Value::as_u64),
                pr.get("merged_at").and_then(Value::as_str),
            ) else {
                continue;
            };
            let updated = str_field(pr, "updated_at").unwrap_or_default();
            let reviews = match state.reviews.remove(&number) {
                Some((u, r)) if u == updated && !updated.is_empty() => r,
                _ => self.reviews(number).await?,
            };
            let approvers = documents::approvers(&reviews);
            let decisions: Vec<(Option<u64>, Option<&str>)> = reviews
                .iter()
                .map(|r| {
                    (
                        r.get("id").and_then(Value::as_u64),
                        r.get("state").and_then(Value::as_str),
                    )
                })
                .collect();
            let digest = documents::digest_token(format!("{decisions:?}").as_bytes());
            let version = format!("{merged_at}/{}/{}", reviews.len(), &digest[7..19]);
            let mut a =
                self.api_artifact(&format!("pulls/{number}"), version, "github_pull_request");
            let m = &mut a.extra;
            m.insert("number".into(), json!(number));
            m.insert("merged_at".into(), json!(merged_at));
            m.insert("review_count".into(), json!(reviews.len()));
            m.insert("approval_count".into(), json!(approvers.len()));
            m.insert("approvers".into(), json!(approvers));
            insert_opt(m, "author", pr.pointer("/user/login").cloned());
            insert_opt(m, "base_ref", pr.pointer("/base/ref").cloned());
            insert_opt(
                m,
                "merge_commit_sha",
                pr.get("merge_commit_sha")
                    .filter(|v| v.is_string())
                    .cloned(),
            );
            a.artifact_time = time_of(Some(merged_at));
            out.push(a);
            memo.insert(number, (updated, reviews));
        }
        state.reviews = memo;
        Ok((out, complete))
    }

    // ---- branch protection ------------------------------------------------------------

    /// The protection document of `branch`: `Ok(None)` when it is unknowable with this token.
    async fn protection_doc(&self, branch: &str) -> Result<Option<Value>, GithubError> {
        let path = self.repo_path(&format!("branches/{branch}/protection"));
        match self.api.get_json::<Value>(&path).await {
            Ok(p) => Ok(Some(documents::protection(branch, Some(&p)))),
            Err(GithubError::Status {
                status: 404,
                message,
                ..
            }) if message.to_ascii_lowercase().contains("not protected") => {
                Ok(Some(documents::protection(branch, None)))
            }
            Err(
                e @ GithubError::Status {
                    status: 403 | 404, ..
                },
            ) => {
                tracing::warn!(branch, error = %e, "branch protection not readable with this token");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn protection(
        &self,
        branch: &str,
        listed_before: bool,
    ) -> Result<Option<ArtifactRef>, GithubError> {
        let Some(doc) = self.protection_doc(branch).await? else {
            if listed_before {
                // Readable before, refused now: not evidence that the protection went away.
                return Err(GithubError::Status {
                    path: self.repo_path(&format!("branches/{branch}/protection")),
                    status: 403,
                    message: "branch protection was readable before and is not any more \
                              (token permissions changed?)"
                        .into(),
                });
            }
            return Ok(None);
        };
        let bytes = documents::to_bytes(&doc);
        let mut a = self.api_artifact(
            &format!("branches/{branch}/protection"),
            documents::digest_token(&bytes),
            "github_branch_protection",
        );
        let p = doc.get("protection");
        let m = &mut a.extra;
        m.insert("branch".into(), json!(branch));
        m.insert("protected".into(), json!(p.is_some()));
        if let Some(p) = p {
            insert_opt(
                m,
                "required_approving_review_count",
                p.pointer("/required_pull_request_reviews/required_approving_review_count")
                    .cloned(),
            );
            insert_opt(
                m,
                "require_code_owner_reviews",
                p.pointer("/required_pull_request_reviews/require_code_owner_reviews")
                    .cloned(),
            );
            insert_opt(
                m,
                "dismiss_stale_reviews",
                p.pointer("/required_pull_request_reviews/dismiss_stale_reviews")
                    .cloned(),
            );
            insert_opt(
                m,
                "required_status_checks",
                p.pointer("/required_status_checks/contexts").cloned(),
            );
            insert_opt(
                m,
                "enforce_admins",
                p.pointer("/enforce_admins/enabled").cloned(),
            );
        }
        Ok(Some(a))
    }

    // ---- listing ------------------------------------------------------------------------

    async fn list_inner(&self) -> Result<Vec<ArtifactRef>, GithubError> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            state.loaded = true;
            if let Some(saved) = self.api.load_state().await.get("windowed")
                && let Ok(w) = serde_json::from_value::<Vec<Remembered>>(saved.clone())
            {
                state.windowed = w.into_iter().map(|r| (r.locator.clone(), r)).collect();
            }
        }
        let repo: RepoInfo = self.api.get_json(&self.repo_root()).await?;
        let git_ref = self
            .git_ref
            .clone()
            .unwrap_or_else(|| repo.default_branch.clone());
        let commit = self.commit_of(&git_ref).await?;

        let mut out = Vec::new();
        for (path, sha, size) in self.files(&commit).await? {
            let mut a = ArtifactRef::new(
                path.clone(),
                format!("{}blob/{path}", self.locator_base),
                sha,
            );
            a.size = size;
            a.extra.insert("ref".into(), Value::String(git_ref.clone()));
            a.extra
                .insert("commit".into(), Value::String(commit.clone()));
            out.push(a);
        }
        let files = out.len();

        let (deployments, runs, deployments_complete) = self.deployments(&state.windowed).await?;
        let approvals = self.approvals(&runs, &state.windowed).await?;
        let (pulls, pulls_complete) = self.pulls(&mut state).await?;

        let mut windowed = BTreeMap::new();
        for (family, list) in [
            (Family::Deployment, &deployments),
            (Family::Approval, &approvals),
            (Family::Pull, &pulls),
        ] {
            for a in list {
                windowed.insert(a.locator.clone(), Remembered::new(family, a));
            }
        }
        let (d, ap, pl) = (deployments.len(), approvals.len(), pulls.len());
        out.extend(deployments);
        out.extend(approvals);
        out.extend(pulls);
        let mut retained = 0;
        for (locator, old) in &state.windowed {
            let partial = match old.family {
                Family::Deployment | Family::Approval => !deployments_complete,
                Family::Pull => !pulls_complete,
                // Listed every time (or the listing fails): never carried over.
                Family::Protection => false,
            };
            if partial && !windowed.contains_key(locator) {
                out.push(old.to_ref());
                windowed.insert(locator.clone(), old.clone());
                retained += 1;
            }
        }
        let protection_locator = format!(
            "{}branches/{}/protection",
            self.locator_base, repo.default_branch
        );
        let listed_before = state.windowed.contains_key(&protection_locator);
        if let Some(p) = self.protection(&repo.default_branch, listed_before).await? {
            windowed.insert(p.locator.clone(), Remembered::new(Family::Protection, &p));
            out.push(p);
        }
        // Only a listing that succeeded as a whole updates what is remembered.
        state.windowed = windowed;
        let saved = json!({"windowed": state.windowed.values().collect::<Vec<_>>()});
        if let Err(e) = self.api.save(saved).await {
            tracing::warn!(error = %e, "github cache not saved");
        }
        tracing::debug!(
            repo = %format!("{}/{}", self.owner, self.repo),
            commit = %commit,
            files,
            deployments = d,
            approvals = ap,
            pulls = pl,
            retained,
            "listed github repository"
        );
        Ok(out)
    }

    // ---- fetching -----------------------------------------------------------------------

    async fn document(&self, rest: &str) -> Result<Value, GithubError> {
        let bad = || GithubError::Locator(format!("{}{rest}", self.locator_base));
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["deployments", id] => {
                let id: u64 = id.parse().map_err(|_| bad())?;
                let d: Value = self
                    .api
                    .get_json(&self.repo_path(&format!("deployments/{id}")))
                    .await?;
                let statuses = self.statuses(id).await?;
                Ok(documents::deployment(&d, &statuses))
            }
            ["actions", "runs", run, "approvals"] => {
                let run: u64 = run.parse().map_err(|_| bad())?;
                let approvals = self.approvals_json(run).await?;
                Ok(documents::run_approvals(run, &approvals))
            }
            ["pulls", n] => {
                let n: u64 = n.parse().map_err(|_| bad())?;
                let pr: Value = self
                    .api
                    .get_json(&self.repo_path(&format!("pulls/{n}")))
                    .await?;
                let reviews = self.reviews(n).await?;
                Ok(documents::pull_request(&pr, &reviews))
            }
            ["branches", .., "protection"] if parts.len() >= 3 => {
                let branch = parts[1..parts.len() - 1].join("/");
                self.protection_doc(&branch)
                    .await?
                    .ok_or_else(|| GithubError::Status {
                        path: self.repo_path(&format!("branches/{branch}/protection")),
                        status: 403,
                        message: "branch protection not readable with this token".into(),
                    })
            }
            _ => Err(bad()),
        }
    }

    async fn fetch_inner(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, GithubError> {
        let rest = artifact
            .locator
            .strip_prefix(&self.locator_base)
            .ok_or_else(|| GithubError::Locator(artifact.locator.clone()))?;
        if rest.starts_with("blob/") {
            if !is_object_id(&artifact.version) {
                return Err(GithubError::Locator(format!(
                    "{} (version {:?} is not a blob id)",
                    artifact.locator, artifact.version
                )));
            }
            let path = self.repo_path(&format!("git/blobs/{}", artifact.version));
            return self.api.stream(&path, ACCEPT_RAW).await;
        }
        let doc = self.document(rest).await?;
        Ok(Box::new(std::io::Cursor::new(documents::to_bytes(&doc))))
    }
}

#[async_trait]
impl Collector for GithubCollector {
    fn source(&self) -> &SourceRef {
        &self.source
    }

    async fn check(&self) -> Result<(), CollectError> {
        self.api.get_json::<RepoInfo>(&self.repo_root()).await?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
        Ok(self.list_inner().await?)
    }

    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
        Ok(self.fetch_inner(artifact).await?)
    }
}
