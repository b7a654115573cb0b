//! Source configuration (DESIGN §3a): one entry of the agent's `sources:` list.
//!
//! The set of sources is closed, so [`SourceConfig`] is a serde enum tagged by `type`, one
//! parameter struct per source, every struct `deny_unknown_fields`. [`SourceConfig::validate`]
//! does no IO (no file reads, no network); connectivity is [`crate::Collector::check`]. Checking
//! that ids are unique across sources is the caller's job (it sees the whole list).
//!
//! Only `git` and `dir` are implemented in this workspace's first crates; `mlflow`, `s3` and
//! `github` carry their parameters here so one configuration file describes every source.

use std::path::PathBuf;

use aims_model::record::validate_ident;
use aims_model::{SourceRef, SourceType};
use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::system::{PathPattern, SystemRule};

/// Default polling interval.
pub const fn default_interval_secs() -> u64 {
    300
}

/// A configuration value that is not acceptable, naming the source and the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("source {id:?}: {field}: {reason}")]
pub struct ConfigError {
    /// The source's `id` as written.
    pub id: String,
    /// The offending field, e.g. `system_from_path`.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// A `git` source: a local working repository or a remote URL kept as a bare mirror.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    /// Source id (unique within the agent).
    pub id: String,
    /// Remote URL (`https://…`, `ssh://…`, `git@host:path`, `file://…`). Exclusive with `path`.
    #[serde(default)]
    pub url: Option<String>,
    /// Local repository path. Exclusive with `url`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Branch to read; default: the remote HEAD (mirror) or the current HEAD (local).
    #[serde(default)]
    pub branch: Option<String>,
    /// Fixed AI system.
    #[serde(default)]
    pub system: Option<String>,
    /// Pattern with `{system}`, e.g. `systems/{system}/**`.
    #[serde(default)]
    pub system_from_path: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Globs of paths to read (default: everything).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of paths to ignore.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A `dir` source: a plain directory tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSource {
    /// Source id.
    pub id: String,
    /// Root directory.
    pub path: PathBuf,
    /// Fixed AI system.
    #[serde(default)]
    pub system: Option<String>,
    /// Pattern with `{system}`.
    #[serde(default)]
    pub system_from_path: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Globs of paths to read (default: everything).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of paths to ignore.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Read files through symlinks that resolve outside `path` (default: such files are skipped,
    /// so a link planted in the tree cannot make the agent read and report files elsewhere).
    /// Symlinks to files inside the root are always read; directory symlinks are never followed.
    #[serde(default)]
    pub follow_symlinks: bool,
}

/// An `mlflow` source (implemented in its own crate). The system defaults to the registered
/// model name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowSource {
    /// Source id.
    pub id: String,
    /// Tracking server URL, `http(s)://host:port`.
    pub tracking_uri: String,
    /// Fixed AI system (default: registered model name).
    #[serde(default)]
    pub system: Option<String>,
    /// Pattern with `{system}` matched against `models/<name>/versions/<n>`.
    #[serde(default)]
    pub system_from_path: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Environment variable holding a bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding a bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// An `s3` source (implemented in its own crate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Source {
    /// Source id.
    pub id: String,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (default: the whole bucket).
    #[serde(default)]
    pub prefix: String,
    /// Region (default: the SDK's resolution).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override for S3-compatible stores.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (MinIO, moto).
    #[serde(default)]
    pub force_path_style: bool,
    /// List object versions instead of current objects.
    #[serde(default)]
    pub versions: bool,
    /// Fixed AI system.
    #[serde(default)]
    pub system: Option<String>,
    /// Pattern with `{system}` matched against the key relative to `prefix`.
    #[serde(default)]
    pub system_from_path: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

/// A `github` source (implemented in its own crate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSource {
    /// Source id.
    pub id: String,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Branch, tag or commit (default: the default branch).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Environment variable holding a token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding a token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// API base URL (default `https://api.github.com`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// Fixed AI system.
    #[serde(default)]
    pub system: Option<String>,
    /// Pattern with `{system}`.
    #[serde(default)]
    pub system_from_path: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

/// One configured source, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A git repository.
    Git(GitSource),
    /// A plain directory.
    Dir(DirSource),
    /// An MLflow tracking server / model registry.
    Mlflow(MlflowSource),
    /// An S3 bucket.
    S3(S3Source),
    /// The GitHub API.
    Github(GithubSource),
}

impl SourceConfig {
    /// The source id.
    pub fn id(&self) -> &str {
        match self {
            Self::Git(c) => &c.id,
            Self::Dir(c) => &c.id,
            Self::Mlflow(c) => &c.id,
            Self::S3(c) => &c.id,
            Self::Github(c) => &c.id,
        }
    }

    /// The source type.
    pub fn source_type(&self) -> SourceType {
        match self {
            Self::Git(_) => SourceType::Git,
            Self::Dir(_) => SourceType::Dir,
            Self::Mlflow(_) => SourceType::Mlflow,
            Self::S3(_) => SourceType::S3,
            Self::Github(_) => SourceType::Github,
        }
    }

    /// `{id, type}` for records.
    pub fn source_ref(&self) -> SourceRef {
        SourceRef {
            id: self.id().to_owned(),
            source_type: self.source_type(),
        }
    }

    /// Seconds between polls.
    pub fn interval_secs(&self) -> u64 {
        match self {
            Self::Git(c) => c.interval_secs,
            Self::Dir(c) => c.interval_secs,
            Self::Mlflow(c) => c.interval_secs,
            Self::S3(c) => c.interval_secs,
            Self::Github(c) => c.interval_secs,
        }
    }

    fn system_fields(&self) -> (Option<&str>, Option<&str>) {
        let (s, p) = match self {
            Self::Git(c) => (&c.system, &c.system_from_path),
            Self::Dir(c) => (&c.system, &c.system_from_path),
            Self::Mlflow(c) => (&c.system, &c.system_from_path),
            Self::S3(c) => (&c.system, &c.system_from_path),
            Self::Github(c) => (&c.system, &c.system_from_path),
        };
        (s.as_deref(), p.as_deref())
    }

    /// The compiled system rule. Fails exactly when [`Self::validate`] fails on the system fields.
    pub fn system_rule(&self) -> Result<SystemRule, ConfigError> {
        let err = |field, reason: String| ConfigError {
            id: self.id().to_owned(),
            field,
            reason,
        };
        match self.system_fields() {
            (Some(_), Some(_)) => Err(err(
                "system",
                "set either system or system_from_path, not both".into(),
            )),
            (Some(s), None) => {
                validate_ident("system", s).map_err(|e| err("system", e.to_string()))?;
                Ok(SystemRule::Fixed(s.to_owned()))
            }
            (None, Some(p)) => PathPattern::parse(p)
                .map(SystemRule::FromPath)
                .map_err(|e| err("system_from_path", e.to_string())),
            (None, None) if matches!(self, Self::Mlflow(_)) => Ok(SystemRule::FromListing),
            (None, None) => Err(err(
                "system",
                "one of system or system_from_path is required".into(),
            )),
        }
    }

    /// Checks everything that can be checked without IO.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let id = self.id();
        let err = |field, reason: &str| ConfigError {
            id: id.to_owned(),
            field,
            reason: reason.to_owned(),
        };
        validate_ident("id", id).map_err(|e| err("id", &e.to_string()))?;
        if self.interval_secs() == 0 {
            return Err(err("interval_secs", "must be at least 1"));
        }
        self.system_rule()?;
        match self {
            Self::Git(c) => {
                match (&c.url, &c.path) {
                    (Some(_), Some(_)) => {
                        return Err(err("url", "set either url or path, not both"));
                    }
                    (None, None) => return Err(err("url", "one of url or path is required")),
                    (Some(u), None) => {
                        if u.trim().is_empty()
                            || u.starts_with('-')
                            || u.chars().any(char::is_control)
                        {
                            return Err(err("url", "must be a repository URL"));
                        }
                    }
                    (None, Some(p)) => {
                        if p.as_os_str().is_empty() {
                            return Err(err("path", "must not be empty"));
                        }
                    }
                }
                if let Some(b) = &c.branch
                    && !valid_ref_name(b)
                {
                    return Err(err("branch", "not a valid branch name"));
                }
                PathFilter::new(&c.include, &c.exclude).map_err(|(f, r)| err(f, &r))?;
            }
            Self::Dir(c) => {
                if c.path.as_os_str().is_empty() {
                    return Err(err("path", "must not be empty"));
                }
                PathFilter::new(&c.include, &c.exclude).map_err(|(f, r)| err(f, &r))?;
            }
            Self::Mlflow(c) => {
                if !is_http_url(&c.tracking_uri) {
                    return Err(err("tracking_uri", "must be an http:// or https:// URL"));
                }
                token_fields(&c.token_env, &c.token_file).map_err(|(f, r)| err(f, r))?;
            }
            Self::S3(c) => {
                let b = &c.bucket;
                if b.len() < 3
                    || b.len() > 63
                    || !b
                        .bytes()
                        .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b".-".contains(&x))
                {
                    return Err(err(
                        "bucket",
                        "must be 3 to 63 characters of a-z, 0-9, '.' and '-'",
                    ));
                }
                if let Some(e) = &c.endpoint
                    && !is_http_url(e)
                {
                    return Err(err("endpoint", "must be an http:// or https:// URL"));
                }
                if c.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    return Err(err("region", "must not be empty"));
                }
            }
            Self::Github(c) => {
                let name_ok = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|x| x.is_ascii_alphanumeric() || b"-_.".contains(&x))
                };
                if !name_ok(&c.owner) {
                    return Err(err("owner", "not a GitHub owner name"));
                }
                if !name_ok(&c.repo) {
                    return Err(err("repo", "not a GitHub repository name"));
                }
                if let Some(r) = &c.git_ref
                    && !valid_ref_name(r)
                {
                    return Err(err("ref", "not a valid ref name"));
                }
                if let Some(u) = &c.api_url
                    && !is_http_url(u)
                {
                    return Err(err("api_url", "must be an http:// or https:// URL"));
                }
                token_fields(&c.token_env, &c.token_file).map_err(|(f, r)| err(f, r))?;
            }
        }
        Ok(())
    }
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://"))
        && s.len() > "https://".len()
        && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A conservative subset of `git check-ref-format` (also keeps refs from looking like options).
fn valid_ref_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.ends_with(".lock")
        && !s.contains("..")
        && !s.contains("@{")
        && !s
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
}

fn token_fields(
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<(), (&'static str, &'static str)> {
    match (env, file) {
        (Some(_), Some(_)) => Err(("token_env", "set either token_env or token_file, not both")),
        (Some(e), None) if e.is_empty() || e.contains('=') => {
            Err(("token_env", "must be an environment variable name"))
        }
        (None, Some(f)) if f.as_os_str().is_empty() => Err(("token_file", "must not be empty")),
        _ => Ok(()),
    }
}

/// `include` / `exclude` globs over source-relative paths. An empty `include` means everything;
/// `exclude` wins over `include`. `*` does not cross `/`; use `**` for any depth.
#[derive(Clone, Debug)]
pub struct PathFilter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl PathFilter {
    /// Compiles the globs; the error names the field and the bad glob.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, (&'static str, String)> {
        let build = |field: &'static str, globs: &[String]| {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                let glob = globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| (field, format!("bad glob {g:?}: {e}")))?;
                b.add(glob);
            }
            b.build().map_err(|e| (field, e.to_string()))
        };
        let include = if include.is_empty() {
            None
        } else {
            Some(build("include", include)?)
        };
        Ok(Self {
            include,
            exclude: build("exclude", exclude)?,
        })
    }

    /// A filter that admits every path.
    pub fn all() -> Self {
        Self {
            include: None,
            exclude: GlobSet::empty(),
        }
    }

    /// Whether `path` is read.
    pub fn admits(&self, path: &str) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(path)) && !self.exclude.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Result<SourceConfig, serde_yaml::Error> {
        serde_yaml::from_str(s)
    }

    #[test]
    fn parses_design_examples() {
        let git = yaml(
            "{ id: ml-repo, type: git, url: 'https://github.com/acme/fraud.git', branch: main, \
             system_from_path: 'systems/{system}/**', interval_secs: 300 }",
        )
        .unwrap();
        git.validate().unwrap();
        assert_eq!(git.source_type(), SourceType::Git);
        let dir =
            yaml("{ id: local-reports, type: dir, path: /data/reports, system: fraud-scoring }")
                .unwrap();
        dir.validate().unwrap();
        assert_eq!(dir.interval_secs(), 300);
        let ml =
            yaml("{ id: registry, type: mlflow, tracking_uri: 'http://mlflow:5000' }").unwrap();
        ml.validate().unwrap();
        assert_eq!(ml.system_rule().unwrap(), SystemRule::FromListing);
        let s3 = yaml(
            "{ id: evidence-bucket, type: s3, bucket: ml-evidence, prefix: fraud/, region: eu-west-1, \
             endpoint: 'http://minio:9000', force_path_style: true, system: fraud-scoring }",
        )
        .unwrap();
        s3.validate().unwrap();
        let gh = yaml(
            "{ id: gh, type: github, owner: acme, repo: fraud, token_env: GITHUB_TOKEN, system: fraud-scoring }",
        )
        .unwrap();
        gh.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_fields_and_types() {
        assert!(yaml("{ id: a, type: dir, path: /x, system: s, colour: red }").is_err());
        let e = yaml("{ id: a, type: ftp, path: /x }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("git"), "{e}");
    }

    #[test]
    fn validation_names_id_and_field() {
        let cases = [
            ("{ id: a, type: dir, path: /x }", "system"),
            (
                "{ id: a, type: dir, path: /x, system: s, system_from_path: 'x/{system}' }",
                "system",
            ),
            (
                "{ id: a, type: dir, path: /x, system_from_path: 'systems/**' }",
                "system_from_path",
            ),
            ("{ id: a, type: git, system: s }", "url"),
            ("{ id: a, type: git, url: u, path: /p, system: s }", "url"),
            (
                "{ id: a, type: git, path: /p, branch: '-x', system: s }",
                "branch",
            ),
            (
                "{ id: a, type: git, path: /p, include: ['a[' ], system: s }",
                "include",
            ),
            (
                "{ id: a, type: dir, path: /x, system: s, interval_secs: 0 }",
                "interval_secs",
            ),
            ("{ id: 'bad id', type: dir, path: /x, system: s }", "id"),
            (
                "{ id: a, type: mlflow, tracking_uri: 'mlflow:5000' }",
                "tracking_uri",
            ),
            (
                "{ id: a, type: mlflow, tracking_uri: 'http://mlflow', token_env: T, token_file: /f }",
                "token_env",
            ),
            ("{ id: a, type: s3, bucket: ab, system: s }", "bucket"),
            (
                "{ id: a, type: github, owner: 'a b', repo: r, system: s }",
                "owner",
            ),
        ];
        for (src, field) in cases {
            let e = yaml(src).unwrap().validate().unwrap_err();
            assert_eq!(e.field, field, "{src}: {e}");
            assert!(e.to_string().contains("source \""), "{e}");
        }
    }

    #[test]
    fn path_filter() {
        let f = PathFilter::new(&["systems/**".into()], &["**/*.bin".into()]).unwrap();
        assert!(f.admits("systems/a/card.md"));
        assert!(!f.admits("systems/a/w.bin"));
        assert!(!f.admits("README.md"));
        assert!(PathFilter::all().admits("x"));
    }
}
