//! Builds the collector for each configured source: the one place that maps a source type to
//! its crate (STYLE §3.1).
//!
//! The `match` below is exhaustive over [`SourceConfig`], so a source type that parses but has no
//! collector cannot compile: adding a source is one variant in `aims_collect::config` and one arm
//! here. `aims-agent validate` calls [`build_collector`] for every source, so it refuses exactly
//! what `once` and `run` would refuse.
//!
//! Building validates and prepares clients. It does no network IO, with one exception: the S3
//! SDK resolves a region the configuration does not name through its provider chain (which may
//! ask the instance metadata service); credentials are resolved lazily. Token files of the
//! GitHub and MLflow sources are read here, so a missing token file fails at build time.

use std::path::Path;
use std::sync::Arc;

use aims_collect::{Collector, SourceConfig};
use aims_model::SourceType;

/// Why a source's collector could not be built.
#[derive(Debug, thiserror::Error)]
#[error("source {id:?} ({source_type}): {reason}")]
pub struct BuildError {
    /// The source id.
    pub id: String,
    /// Its type.
    pub source_type: SourceType,
    /// What is wrong, from the source's own crate.
    pub reason: String,
}

fn fail(cfg: &SourceConfig, e: impl std::fmt::Display) -> BuildError {
    BuildError {
        id: cfg.id().to_owned(),
        source_type: cfg.source_type(),
        reason: e.to_string(),
    }
}

/// Builds the collector for `cfg`, with `cache_dir` for sources that keep local state (git
/// mirrors, GitHub ETags).
pub async fn build_collector(
    cfg: &SourceConfig,
    cache_dir: &Path,
) -> Result<Arc<dyn Collector>, BuildError> {
    cfg.validate().map_err(|e| fail(cfg, e))?;
    match cfg {
        SourceConfig::Git(_) | SourceConfig::Dir(_) => aims_collect_git::build(cfg, cache_dir)
            .map(Arc::<dyn Collector>::from)
            .map_err(|e| fail(cfg, e)),
        SourceConfig::Mlflow(m) => aims_collect_mlflow::build(m)
            .map(|c| Arc::new(c) as Arc<dyn Collector>)
            .map_err(|e| fail(cfg, e)),
        SourceConfig::Github(g) => aims_collect_github::build(g, cache_dir)
            .map(|c| Arc::new(c) as Arc<dyn Collector>)
            .map_err(|e| fail(cfg, e)),
        SourceConfig::S3(s) => aims_collect_s3::build(s)
            .await
            .map(|c| Arc::new(c) as Arc<dyn Collector>)
            .map_err(|e| fail(cfg, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One configuration of every source type the config enum knows: each must build.
    #[tokio::test]
    async fn every_source_type_builds() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "- {{ id: g, type: git, path: {d}, system: s }}\n\
             - {{ id: d, type: dir, path: {d}, system: s }}\n\
             - {{ id: m, type: mlflow, tracking_uri: 'http://127.0.0.1:1' }}\n\
             - {{ id: b, type: s3, bucket: bucket, endpoint: 'http://127.0.0.1:1', force_path_style: true, system: s }}\n\
             - {{ id: h, type: github, owner: o, repo: r, api_url: 'http://127.0.0.1:1', system: s }}\n",
            d = dir.path().display()
        );
        let sources: Vec<SourceConfig> = serde_yaml::from_str(&yaml).unwrap();
        let mut types: Vec<SourceType> = Vec::new();
        for s in &sources {
            build_collector(s, &dir.path().join("cache"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            types.push(s.source_type());
        }
        for t in [
            SourceType::Git,
            SourceType::Dir,
            SourceType::Mlflow,
            SourceType::S3,
            SourceType::Github,
        ] {
            assert!(types.contains(&t), "{t} not covered");
        }
    }
}
