//! [`MlflowCollector`]: the model registry of one MLflow tracking server as artifacts.
//!
//! `list` costs, per poll: the pages of `registered-models/search`; per model the pages of
//! `model-versions/search` (`filter=name='<name>'`) and one `registered-models/get` (aliases;
//! versions in search results carry none); per distinct run behind a version one `runs/get`
//! and a few `artifacts/list` calls (the run root, and recursively the directory the version's
//! `source` names). No content is downloaded. Calls per model and per run run with bounded
//! concurrency ([`MlflowOptions::concurrency`]).
//!
//! Artifacts and their version tokens (see [`crate::locator`] for locators and paths):
//! - **model version** (format `mlflow_model_version` → `registry_model_version`): token
//!   `<last_updated_timestamp>-<16 hex of the document hash>`. MLflow does not bump
//!   `last_updated_timestamp` when a version tag is set or when an alias moves, so the token also
//!   covers the document the listing already determines (tags, aliases); a token therefore
//!   changes exactly when the served bytes do. `artifact_time` = last update.
//! - **alias** and **`stage:<Stage>`** (format `mlflow_alias` → `registry_alias`): token = the
//!   version number it points to, so an alias moving from 2 to 3 is a new observation and the
//!   ledger holds which version held the alias when. A stage names the highest version in it.
//!   Metadata `model {name, version}`, `alias`, `environment` (the alias or stage name).
//! - **run validation** (format `json`, document `kind: validation_report` →
//!   `validation_report`): for a version whose run has ended and has metrics; token
//!   `<run end ms>-<16 hex of the document hash>` (metrics, thresholds and decision included).
//!   A run behind several versions is attributed to the first model by name and its highest
//!   version.
//! - **run files**: `MLmodel`, `*.md`, `*.json`, `*.yaml`/`*.yml` up to
//!   [`MlflowOptions::max_artifact_bytes`] in the run's root directory and under the version's
//!   source path; token `<file_size>:<path>` (files of a run are immutable once logged); fetched
//!   through `GET /get-artifact?path=&run_uuid=`.
//!
//! The system is the registered model name ([`ArtifactRef::system`], used by
//! `SystemRule::FromListing`) unless the source configures `system` or `system_from_path`.
//!
//! Failure policy for `list` (issue 18, A2): a listing is complete or it is an error. Any failed
//! call — transport error, timeout, 5xx, 401/403, an HTML or empty answer, a bare 404, an
//! answer over the size bound, pagination that does not end, the per-run `artifacts/list`
//! budget ([`MlflowOptions::max_artifact_lists`]) spent — fails the whole listing, so the engine
//! keeps its cursor and reports nothing gone, and the source is reported failing. Only MLflow's
//! own typed answer that an object does not exist (`RESOURCE_DOES_NOT_EXIST`) for a model or
//! run that disappeared between calls makes the collector leave it out.

use std::collections::{BTreeMap, BTreeSet};

use aims_collect::collector::ArtifactReader;
use aims_collect::{ArtifactRef, CollectError, Collector, MlflowSource};
use aims_model::{SourceRef, SourceType, Timestamp};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::Url;
use serde_json::{Map, Value, json};

use crate::api::{Api, FileInfo, ModelVersion, RegisteredModel, SecretToken};
use crate::docs;
use crate::error::MlflowError;
use crate::locator::{self, STAGE_PREFIX, Target};

/// Tunables with defaults suitable for an agent (the source configuration has no fields for
/// them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlflowOptions {
    /// Derive a validation report from the metrics of each version's run.
    pub run_validations: bool,
    /// List small files logged under each version's run.
    pub run_artifacts: bool,
    /// Largest run file listed as an artifact.
    pub max_artifact_bytes: u64,
    /// Registry calls in flight at once.
    pub concurrency: usize,
    /// Directory levels walked below a version's source path.
    pub max_artifact_depth: usize,
    /// `artifacts/list` calls per run and poll; a run needing more fails the listing.
    pub max_artifact_lists: usize,
    /// Timeouts and size and page bounds of every request.
    pub limits: crate::api::ApiLimits,
}

impl Default for MlflowOptions {
    fn default() -> Self {
        Self {
            run_validations: true,
            run_artifacts: true,
            max_artifact_bytes: 1024 * 1024,
            concurrency: 4,
            max_artifact_depth: 4,
            max_artifact_lists: 32,
            limits: crate::api::ApiLimits::default(),
        }
    }
}

/// A collector over the model registry of one MLflow tracking server.
#[derive(Debug)]
pub struct MlflowCollector {
    source: SourceRef,
    api: Api,
    base: String,
    options: MlflowOptions,
}

/// The versions of one model and its aliases, as listed.
struct ModelListing {
    model: RegisteredModel,
    versions: Vec<ModelVersion>,
}

/// Which version a run is attributed to, and which artifact directories to walk.
struct RunClaim {
    version: ModelVersion,
    subpaths: BTreeSet<String>,
}

impl MlflowCollector {
    /// Builds the collector; reads the token from `token_env` / `token_file` when one is set.
    /// No network IO.
    pub fn new(cfg: &MlflowSource) -> Result<Self, MlflowError> {
        aims_collect::SourceConfig::Mlflow(cfg.clone()).validate()?;
        let url = Url::parse(&cfg.tracking_uri).map_err(|e| aims_collect::ConfigError {
            id: cfg.id.clone(),
            field: "tracking_uri",
            reason: e.to_string(),
        })?;
        let token = read_token(cfg)?;
        Ok(Self {
            source: SourceRef {
                id: cfg.id.clone(),
                source_type: SourceType::Mlflow,
            },
            base: locator::locator_base(&url),
            api: Api::new(url, token)?,
            options: MlflowOptions::default(),
        })
    }

    /// Replaces the tunables (rebuilding the HTTP client when the limits change).
    pub fn with_options(mut self, options: MlflowOptions) -> Self {
        if options.limits != self.options.limits {
            match self.api.relimit(options.limits) {
                Ok(api) => self.api = api,
                Err(e) => {
                    tracing::warn!(error = %e, "MLflow client not rebuilt, default limits kept");
                }
            }
        }
        self.options = options;
        self
    }

    /// `mlflow://<host>[:port][/<prefix>]/`, the start of every locator of this source.
    pub fn locator_base(&self) -> &str {
        &self.base
    }

    fn concurrency(&self) -> usize {
        self.options.concurrency.max(1)
    }

    async fn list_inner(&self) -> Result<Vec<ArtifactRef>, MlflowError> {
        let mut models = self.api.search_models().await?;
        models.sort_by(|a, b| a.name.cmp(&b.name));
        models.dedup_by(|a, b| a.name == b.name);
        let listings: Vec<Option<ModelListing>> = stream::iter(models)
            .map(|m| self.list_model(m))
            .buffered(self.concurrency())
            .try_collect()
            .await?;

        let mut out = Vec::new();
        // run id → claim; first model by name wins, then its highest version.
        let mut runs: BTreeMap<String, RunClaim> = BTreeMap::new();
        for l in listings.into_iter().flatten() {
            self.model_artifacts(&l, &mut out)?;
            for v in &l.versions {
                let Some(run_id) = v.run() else { continue };
                let claim = runs.entry(run_id.to_owned()).or_insert_with(|| RunClaim {
                    version: v.clone(),
                    subpaths: BTreeSet::new(),
                });
                if claim.version.name == v.name {
                    if v.number() > claim.version.number() {
                        claim.version = v.clone();
                    }
                    if let Some(p) = v.source.as_deref().and_then(|s| source_subpath(s, run_id)) {
                        claim.subpaths.insert(p);
                    }
                }
            }
        }

        if self.options.run_validations || self.options.run_artifacts {
            let per_run: Vec<Vec<ArtifactRef>> = stream::iter(runs)
                .map(|(run_id, claim)| async move { self.run_artifacts(&run_id, &claim).await })
                .buffered(self.concurrency())
                .try_collect()
                .await?;
            out.extend(per_run.into_iter().flatten());
        }
        tracing::debug!(source = %self.source.id, artifacts = out.len(), "MLflow listing");
        Ok(out)
    }

    /// Versions and aliases of one model; `None` when it vanished meanwhile.
    async fn list_model(&self, m: RegisteredModel) -> Result<Option<ModelListing>, MlflowError> {
        let name = m.name.clone();
        let model = match self.api.get_model(&name).await {
            Ok(rm) => rm,
            Err(e) if e.is_absent() => {
                tracing::debug!(model = %name, "registered model vanished during listing");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut versions = match self.api.search_versions(&name).await {
            Ok(v) => v,
            Err(MlflowError::Encode { reason, .. }) => {
                tracing::warn!(model = %name, reason, "model versions cannot be searched, skipped");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        versions.sort_by(|a, b| a.number().cmp(&b.number()).then(a.version.cmp(&b.version)));
        versions.dedup_by(|a, b| a.version == b.version);
        Ok(Some(ModelListing { model, versions }))
    }

    fn model_system(name: &str) -> Option<String> {
        Some(name.to_owned())
    }

    /// Version, alias and stage artifacts of one model.
    fn model_artifacts(
        &self,
        l: &ModelListing,
        out: &mut Vec<ArtifactRef>,
    ) -> Result<(), MlflowError> {
        let name = &l.model.name;
        let mut aliases_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for a in &l.model.aliases {
            aliases_of
                .entry(a.version.as_str())
                .or_default()
                .push(a.alias.clone());
        }
        let mut stages: BTreeMap<String, &ModelVersion> = BTreeMap::new();
        for v in &l.versions {
            let aliases = aliases_of
                .get(v.version.as_str())
                .cloned()
                .unwrap_or_default();
            let target = Target::Version {
                model: name.clone(),
                version: v.version.clone(),
            };
            let bytes = docs::canonical(&docs::version_document(v, &aliases), "model version")?;
            let mut a = ArtifactRef::new(
                locator::path(name, &target),
                locator::locator(&self.base, &target),
                format!(
                    "{}-{}",
                    v.last_updated_timestamp.unwrap_or(0),
                    docs::short_hash(&bytes)
                ),
            );
            a.size = Some(bytes.len() as u64);
            a.system = Self::model_system(name);
            a.artifact_time = v
                .last_updated_timestamp
                .or(v.creation_timestamp)
                .and_then(Timestamp::from_unix_millis);
            a.extra = version_extra(v, &aliases);
            out.push(a);
            if let Some(stage) = v
                .current_stage
                .as_deref()
                .filter(|s| !s.is_empty() && *s != "None")
            {
                let e = stages.entry(stage.to_owned()).or_insert(v);
                if v.number() > e.number() {
                    *e = v;
                }
            }
        }
        let mut aliases: Vec<(String, String, Option<String>)> = l
            .model
            .aliases
            .iter()
            .map(|a| (a.alias.clone(), a.version.clone(), None))
            .collect();
        aliases.sort();
        aliases.dedup_by(|a, b| a.0 == b.0);
        aliases.extend(
            stages
                .into_iter()
                .map(|(s, v)| (format!("{STAGE_PREFIX}{s}"), v.version.clone(), Some(s))),
        );
        for (alias, version, stage) in aliases {
            let target = Target::Alias {
                model: name.clone(),
                alias: alias.clone(),
            };
            let mut a = ArtifactRef::new(
                locator::path(name, &target),
                locator::locator(&self.base, &target),
                version.clone(),
            );
            a.system = Self::model_system(name);
            a.extra = alias_extra(name, &version, &alias, stage.as_deref());
            out.push(a);
        }
        Ok(())
    }

    /// The validation and file artifacts of one run.
    async fn run_artifacts(
        &self,
        run_id: &str,
        claim: &RunClaim,
    ) -> Result<Vec<ArtifactRef>, MlflowError> {
        let model = claim.version.name.as_str();
        let run = match self.api.get_run(run_id).await {
            Ok(r) => r,
            Err(e) if e.is_absent() => {
                tracing::debug!(run_id, error = %e, "run no longer exists, skipped");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        if run.info.lifecycle_stage.as_deref() == Some("deleted") {
            tracing::debug!(run_id, "run is deleted, skipped");
            return Ok(Vec::new());
        }
        let run_time = run
            .info
            .end_time
            .or(run.info.start_time)
            .and_then(Timestamp::from_unix_millis);
        let mut out = Vec::new();
        if self.options.run_validations
            && let Some(doc) =
                docs::validation_document(&claim.version, &run, &self.evaluator(run_id))
        {
            let bytes = docs::canonical(&doc, "run validation")?;
            let target = Target::Validation {
                run_id: run_id.to_owned(),
            };
            let mut a = ArtifactRef::new(
                locator::path(model, &target),
                locator::locator(&self.base, &target),
                format!(
                    "{}-{}",
                    run.info.end_time.unwrap_or(0),
                    docs::short_hash(&bytes)
                ),
            );
            a.size = Some(bytes.len() as u64);
            a.system = Self::model_system(model);
            a.artifact_time = run.info.end_time.and_then(Timestamp::from_unix_millis);
            a.extra = validation_extra(&claim.version, run_id);
            out.push(a);
        }
        if self.options.run_artifacts {
            let files = match self.walk_run(run_id, &claim.subpaths).await {
                Ok(f) => f,
                // The run was deleted between `runs/get` and `artifacts/list`.
                Err(e) if e.is_absent() => {
                    tracing::debug!(run_id, error = %e, "run no longer exists, skipped");
                    BTreeMap::new()
                }
                Err(e) => return Err(e),
            };
            for (path, size) in files {
                let target = Target::RunArtifact {
                    run_id: run_id.to_owned(),
                    path: path.clone(),
                };
                let mut a = ArtifactRef::new(
                    locator::path(model, &target),
                    locator::locator(&self.base, &target),
                    format!("{size}:{path}"),
                );
                a.size = Some(size);
                a.system = Self::model_system(model);
                a.artifact_time = run_time;
                let mut extra = Map::new();
                extra.insert("run_id".into(), json!(run_id));
                extra.insert("artifact_path".into(), json!(path));
                extra.insert(
                    "registered_model".into(),
                    json!({"name": model, "version": claim.version.version}),
                );
                a.extra = extra;
                out.push(a);
            }
        }
        Ok(out)
    }

    fn evaluator(&self, run_id: &str) -> String {
        locator::locator(
            &self.base,
            &Target::Validation {
                run_id: run_id.to_owned(),
            },
        )
        .trim_end_matches("/validation")
        .to_owned()
    }

    /// Small interesting files at the run root and below each source path: path → size.
    async fn walk_run(
        &self,
        run_id: &str,
        subpaths: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, u64>, MlflowError> {
        let mut files = BTreeMap::new();
        let mut budget = self.options.max_artifact_lists;
        let root = self.api.list_artifacts(run_id, None).await?;
        budget = budget.saturating_sub(1);
        self.keep_files(&root, &mut files);
        let mut queue: Vec<(String, usize)> = subpaths
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| (p.clone(), 0))
            .collect();
        let mut seen = BTreeSet::new();
        while let Some((dir, depth)) = queue.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            if budget == 0 {
                // Stopping here would list fewer files than the run has: the ones left out
                // would be reported gone. Fail instead.
                return Err(MlflowError::Incomplete(format!(
                    "run {run_id}: listing its artifacts needs more than {} artifacts/list calls",
                    self.options.max_artifact_lists
                )));
            }
            budget -= 1;
            let entries = self.api.list_artifacts(run_id, Some(&dir)).await?;
            self.keep_files(&entries, &mut files);
            if depth < self.options.max_artifact_depth {
                queue.extend(
                    entries
                        .iter()
                        .filter(|e| e.is_dir && e.path.starts_with(&dir) && e.path != dir)
                        .map(|e| (e.path.clone(), depth + 1)),
                );
            }
        }
        Ok(files)
    }

    fn keep_files(&self, entries: &[FileInfo], files: &mut BTreeMap<String, u64>) {
        for e in entries {
            if e.is_dir || e.path.is_empty() || e.path.split('/').any(|s| s == "..") {
                continue;
            }
            let Some(size) = e.file_size.and_then(|s| u64::try_from(s).ok()) else {
                continue;
            };
            if size <= self.options.max_artifact_bytes && interesting(&e.path) {
                files.insert(e.path.clone(), size);
            }
        }
    }

    async fn fetch_inner(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, MlflowError> {
        let target = locator::parse(&self.base, &artifact.locator)
            .ok_or_else(|| MlflowError::ForeignArtifact(artifact.locator.clone()))?;
        let bytes = match target {
            Target::Version { model, version } => {
                let v = self.api.get_version(&model, &version).await?;
                docs::canonical(&docs::version_document(&v, &v.aliases), "model version")?
            }
            Target::Alias { model, alias } => {
                let doc = self.alias_doc(&model, &alias).await?;
                docs::canonical(&doc, "alias")?
            }
            Target::Validation { run_id } => {
                let (name, version) = model_of_extra(&artifact.extra)
                    .ok_or_else(|| MlflowError::ForeignArtifact(artifact.locator.clone()))?;
                let v = self.api.get_version(&name, &version).await?;
                let run = self.api.get_run(&run_id).await?;
                let doc = docs::validation_document(&v, &run, &self.evaluator(&run_id))
                    .ok_or_else(|| {
                        MlflowError::NotFound(format!("finished run {run_id} with metrics"))
                    })?;
                docs::canonical(&doc, "run validation")?
            }
            Target::RunArtifact { run_id, path } => {
                let reader = self.api.artifact_stream(&run_id, &path).await?;
                return Ok(Box::new(reader));
            }
        };
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }

    async fn alias_doc(&self, model: &str, alias: &str) -> Result<Value, MlflowError> {
        let rm = self.api.get_model(model).await?;
        if let Some(stage) = alias.strip_prefix(STAGE_PREFIX) {
            let versions = self.api.search_versions(model).await?;
            let v = versions
                .iter()
                .filter(|v| v.current_stage.as_deref() == Some(stage))
                .max_by_key(|v| v.number())
                .ok_or_else(|| {
                    MlflowError::NotFound(format!("model {model:?} has no version in {stage}"))
                })?;
            return Ok(docs::alias_document(
                model,
                &v.version,
                alias,
                Some(stage),
                rm.last_updated_timestamp,
            ));
        }
        let a = rm
            .aliases
            .iter()
            .find(|a| a.alias == alias)
            .ok_or_else(|| MlflowError::NotFound(format!("alias {alias:?} of model {model:?}")))?;
        Ok(docs::alias_document(
            model,
            &a.version,
            alias,
            None,
            rm.last_updated_timestamp,
        ))
    }
}

/// Files worth keeping as evidence: model descriptors, cards and reports.
fn interesting(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "MLmodel" {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(ext, "md" | "json" | "yaml" | "yml")
}

/// The artifact directory a version's `source` names inside its run, if any:
/// `runs:/<run>/model` → `model`; `…/<run>/artifacts/model` (local, `mlflow-artifacts:`, S3) →
/// `model`.
fn source_subpath(source: &str, run_id: &str) -> Option<String> {
    let rest = if let Some(r) = source.strip_prefix("runs:/") {
        let r = r.trim_start_matches('/');
        r.strip_prefix(run_id)?.to_owned()
    } else {
        let marker = format!("/{run_id}/artifacts");
        let i = source.find(&marker)?;
        source[i + marker.len()..].to_owned()
    };
    let p = rest.trim_matches('/');
    (!p.is_empty() && !p.split('/').any(|s| s == "..")).then(|| p.to_owned())
}

fn model_json(name: &str, version: &str) -> Value {
    json!({"name": name, "version": version})
}

fn model_of_extra(extra: &Map<String, Value>) -> Option<(String, String)> {
    let m = extra.get("model")?.as_object()?;
    Some((
        m.get("name")?.as_str()?.to_owned(),
        m.get("version")?.as_str()?.to_owned(),
    ))
}

/// Most tags kept in record metadata, and the longest value.
const MAX_TAGS: usize = 100;
const MAX_TAG_VALUE: usize = 512;

fn version_extra(v: &ModelVersion, aliases: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("format".into(), json!("mlflow_model_version"));
    m.insert("model".into(), model_json(&v.name, &v.version));
    if let Some(r) = v.run() {
        m.insert("run_id".into(), json!(r));
    }
    for (key, val) in [
        ("source", v.source.as_deref()),
        ("status", v.status.as_deref()),
        ("stage", v.current_stage.as_deref()),
    ] {
        if let Some(s) = val.filter(|s| !s.is_empty()) {
            m.insert(key.into(), json!(s));
        }
    }
    let tags: Map<String, Value> = docs::tag_map(&v.tags)
        .into_iter()
        .take(MAX_TAGS)
        .map(|(k, v)| match v {
            Value::String(s) if s.len() > MAX_TAG_VALUE => {
                let mut end = MAX_TAG_VALUE;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                (k, Value::String(s[..end].to_owned()))
            }
            other => (k, other),
        })
        .collect();
    m.insert("tags".into(), Value::Object(tags));
    let mut a = aliases.to_vec();
    a.sort();
    m.insert("aliases".into(), json!(a));
    m
}

fn alias_extra(model: &str, version: &str, alias: &str, stage: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("format".into(), json!("mlflow_alias"));
    m.insert("model".into(), model_json(model, version));
    m.insert("alias".into(), json!(alias));
    m.insert("environment".into(), json!(stage.unwrap_or(alias)));
    if let Some(s) = stage {
        m.insert("stage".into(), json!(s));
    }
    m
}

fn validation_extra(v: &ModelVersion, run_id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("format".into(), json!("json"));
    m.insert("model".into(), model_json(&v.name, &v.version));
    m.insert("run_id".into(), json!(run_id));
    m
}

fn read_token(cfg: &MlflowSource) -> Result<Option<SecretToken>, MlflowError> {
    let err = |reason: String| MlflowError::Token {
        id: cfg.id.clone(),
        reason,
    };
    let raw = match (&cfg.token_env, &cfg.token_file) {
        (Some(var), _) => {
            std::env::var(var).map_err(|_| err(format!("environment variable {var} is not set")))?
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| err(format!("reading {}: {e}", path.display())))?,
        (None, None) => return Ok(None),
    };
    if raw.trim().is_empty() {
        return Err(err("the token is empty".into()));
    }
    Ok(Some(SecretToken::new(&raw)))
}

#[async_trait]
impl Collector for MlflowCollector {
    fn source(&self) -> &SourceRef {
        &self.source
    }

    async fn check(&self) -> Result<(), CollectError> {
        self.api.probe_registry().await.map_err(Into::into)
    }

    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
        self.list_inner().await.map_err(Into::into)
    }

    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
        self.fetch_inner(artifact).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_collect::CollectErrorKind;

    #[test]
    fn subpaths() {
        assert_eq!(
            source_subpath("runs:/r1/model", "r1").as_deref(),
            Some("model")
        );
        assert_eq!(source_subpath("runs:/r1", "r1"), None);
        assert_eq!(source_subpath("runs:/r2/model", "r1"), None);
        assert_eq!(
            source_subpath("mlflow-artifacts:/1/r1/artifacts/m/x", "r1").as_deref(),
            Some("m/x")
        );
        assert_eq!(
            source_subpath("/data/1/r1/artifacts/model", "r1").as_deref(),
            Some("model")
        );
        assert_eq!(source_subpath("models:/m-abc", "r1"), None);
        assert_eq!(source_subpath("runs:/r1/../x", "r1"), None);
    }

    #[test]
    fn interesting_files() {
        for p in ["model/MLmodel", "README.md", "eval/report.json", "x.YAML"] {
            assert!(interesting(p), "{p}");
        }
        for p in ["model/model.pkl", "requirements.txt", "MLmodel.bak"] {
            assert!(!interesting(p), "{p}");
        }
    }

    #[test]
    fn tokens() {
        let cfg = MlflowSource {
            id: "reg".into(),
            tracking_uri: "http://127.0.0.1:5000".into(),
            system: None,
            system_from_path: None,
            interval_secs: 300,
            token_env: Some("AIMS_MLFLOW_TEST_TOKEN_SURELY_UNSET".into()),
            token_file: None,
        };
        let e = MlflowCollector::new(&cfg).unwrap_err();
        assert!(matches!(e, MlflowError::Token { .. }), "{e}");
        assert_eq!(e.kind(), CollectErrorKind::Permanent);
        let dir = std::env::temp_dir().join(format!("aims-mlflow-token-{}", std::process::id()));
        std::fs::write(&dir, "  tok\n").unwrap();
        let cfg = MlflowSource {
            token_env: None,
            token_file: Some(dir.clone()),
            ..cfg
        };
        let c = MlflowCollector::new(&cfg).unwrap();
        assert!(format!("{c:?}").contains("SecretToken(<redacted>)"));
        assert_eq!(c.locator_base(), "mlflow://127.0.0.1:5000/");
        std::fs::remove_file(&dir).unwrap();
        let bad = MlflowSource {
            tracking_uri: "ftp://x".into(),
            token_file: None,
            ..cfg
        };
        assert!(matches!(
            MlflowCollector::new(&bad),
            Err(MlflowError::Config(_))
        ));
    }
}
