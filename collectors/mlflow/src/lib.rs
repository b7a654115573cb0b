//! aims-collect-mlflow: the `mlflow` source. It watches the model registry of an MLflow
//! tracking server over its REST API and turns what it finds into artifacts for the poll engine
//! of `aims-collect`:
//!
//! - every **model version** (its registry entry, tags and aliases) → `registry_model_version`;
//! - every **alias** and legacy **stage** → `registry_alias`, versioned by the version number it
//!   points to, so the ledger builds the "which version held `champion` when" timeline that
//!   MLflow itself does not keep;
//! - a **validation report** derived from the metrics of each version's finished run →
//!   `validation_report` (DESIGN §3b shape, thresholds and decision from tags or params);
//! - small **files logged under the run** (`MLmodel`, model cards, JSON/YAML reports), hashed
//!   as the server serves them.
//!
//! Registry entries have no bytes of their own, so the collector serves a deterministic JSON
//! document per entry (RFC 8785 canonical form) and the evidence hash is over exactly those
//! bytes. See [`collector`] for the artifacts, tokens and costs, [`locator`] for the locator
//! scheme, [`docs`] for the documents, [`api`] for the REST client.
//!
//! The system of an artifact is its registered model name unless the source configures
//! `system` or `system_from_path` (matched against `models/<name>/…`).
//!
//! HTTP goes through `reqwest` with rustls and the ring provider ([`install_crypto_provider`]);
//! a bearer token from `token_env` / `token_file` is sent when configured and never logged.
//!
//! Feature `testkit`: [`testkit::MlflowServer`], a real `mlflow server` on a free port,
//! [`testkit::Mlf`], a REST client that builds registries, and [`testkit::fake::FakeMlflow`], a
//! scriptable misbehaving server (issue 18), for this crate's tests and the
//! end-to-end suite.

pub mod api;
pub mod collector;
pub mod docs;
pub mod error;
pub mod locator;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

use std::sync::Once;

use aims_collect::MlflowSource;

pub use collector::{MlflowCollector, MlflowOptions};
pub use error::MlflowError;

/// Builds the collector of an `mlflow` source (validates the configuration and reads the token;
/// no network IO).
pub fn build(cfg: &MlflowSource) -> Result<MlflowCollector, MlflowError> {
    MlflowCollector::new(cfg)
}

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs rustls' ring provider as the process default once; a provider installed earlier (by
/// this or another crate) is kept.
pub fn install_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        let _already = rustls::crypto::ring::default_provider().install_default();
    });
}
