//! Builds the collector for each configured source: the one `match` over source types
//! (STYLE §3.1). Building validates and prepares clients; it does no network IO except where an
//! SDK loads its credential chain.

use std::path::Path;
use std::sync::Arc;

use aims_collect::{Collector, SourceConfig};

/// Builds the collector for `cfg`, with `cache_dir` for sources that keep local state.
pub async fn build_collector(
    cfg: &SourceConfig,
    cache_dir: &Path,
) -> Result<Arc<dyn Collector>, String> {
    match cfg {
        SourceConfig::Git(_) | SourceConfig::Dir(_) => aims_collect_git::build(cfg, cache_dir)
            .map(Arc::<dyn Collector>::from)
            .map_err(|e| e.to_string()),
        SourceConfig::Mlflow(m) => aims_collect_mlflow::build(m)
            .map(|c| Arc::new(c) as Arc<dyn Collector>)
            .map_err(|e| e.to_string()),
        SourceConfig::Github(g) => aims_collect_github::build(g, cache_dir)
            .map(|c| Arc::new(c) as Arc<dyn Collector>)
            .map_err(|e| e.to_string()),
        SourceConfig::S3(_) => Err(format!(
            "source {:?}: this source type is not available in this build",
            cfg.id()
        )),
    }
}
