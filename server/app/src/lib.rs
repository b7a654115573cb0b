//! aims-server: the collector. It accepts evidence from agents into the ledger, keeps the
//! per-(system, control) assessment current, and serves the JSON API, the dashboard and the
//! auditor's proofs.
//!
//! `main.rs` is a thin CLI over this library; tests build the same [`Server`] on port 0.

pub mod api;
pub mod assess;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod oscal;
pub mod settings;
pub mod sources;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use aims_catalog::Catalog;
use aims_store::{SqliteStore, Store};

pub use settings::Settings;

/// Limits applied to client input.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest accepted confirmation body.
    pub max_confirmation_bytes: usize,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Controls, kinds, rules.
    pub catalog: Arc<Catalog>,
    /// Log and clock keys that sign checkpoints.
    pub keys: Arc<keys::LogKeys>,
    /// Input limits.
    pub limits: Limits,
    /// Serialises re-assessment so two ingests do not interleave writes for one system.
    pub assess_lock: Arc<Mutex<()>>,
    /// Request counters served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Systems whose evidence changed since they were last assessed.
    pub dirty: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Held for a whole flush of `dirty`, so a reader that flushes waits for a flush already
    /// under way (by the timer or another request) instead of reading status it has not written.
    pub flushing: Arc<Mutex<()>>,
}

impl AppState {
    /// The state of a server (or a CLI command) over an opened store, catalog and keys.
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Catalog,
        keys: keys::LogKeys,
        settings: &Settings,
    ) -> Self {
        Self {
            store,
            catalog: Arc::new(catalog),
            keys: Arc::new(keys),
            limits: Limits {
                max_body_bytes: settings.max_body_bytes,
                max_confirmation_bytes: settings.max_confirmation_bytes,
            },
            assess_lock: Arc::new(Mutex::new(())),
            metrics: Arc::new(metrics::Metrics::default()),
            dirty: Arc::default(),
            flushing: Arc::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened.
    #[error("cannot open database {url}: {source}")]
    Store {
        /// The URL.
        url: String,
        /// The cause.
        source: aims_store::StoreError,
    },
    /// The catalog could not be loaded.
    #[error("cannot load catalog: {0}")]
    Catalog(#[from] aims_catalog::CatalogError),
    /// Keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Anything the store reported while starting.
    #[error("startup failed: {0}")]
    Startup(String),
}

/// Opens the store named by a database URL (`sqlite://PATH` or `postgres://…`).
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, ServerError> {
    let err = |source| ServerError::Store {
        url: aims_store::redact_url(url),
        source,
    };
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await.map_err(err)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(aims_store::PgStore::open(url).await.map_err(err)?));
    }
    Err(err(aims_store::StoreError::Url {
        url: aims_store::redact_url(url),
        reason: "expected sqlite://PATH or postgres://USER@HOST/DB".to_owned(),
    }))
}

/// A built server: state plus settings, ready to serve.
pub struct Server {
    state: AppState,
    settings: Settings,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// Opens the store, loads the catalog and keys, and makes sure the ledger has a signed
    /// checkpoint for its current size.
    pub async fn build(settings: Settings) -> Result<Self, ServerError> {
        // Certificate problems surface before anything else starts.
        let tls = settings.tls.as_ref().map(tls::server_config).transpose()?;
        let store = open_store(&settings.database).await?;
        let catalog = match &settings.catalog_dir {
            Some(dir) => Catalog::load_dir(dir)?,
            None => Catalog::embedded()?,
        };
        let keys = keys::LogKeys::load_or_create(&settings.keys_dir(), &settings.origin)?;
        let state = AppState::new(store, catalog, keys, &settings);
        log::ensure_checkpoint(&state)
            .await
            .map_err(|e| ServerError::Startup(format!("{e:?}")))?;
        Ok(Self {
            state,
            settings,
            tls,
        })
    }

    /// The shared state (for tests and subcommands).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// `https` when TLS is configured, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Binds the configured address.
    pub async fn bind(&self) -> Result<TcpListener, ServerError> {
        TcpListener::bind(&self.settings.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.settings.listen.clone(),
                source,
            })
    }

    /// Serves on `listener` until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let ticker = tokio::spawn(assess::ticker(
            self.state.clone(),
            Duration::from_secs(self.settings.assess_interval_secs.max(1)),
            rx,
        ));
        let app = router(self.state.clone());
        let result = match self.tls.clone() {
            Some(config) => {
                let listener =
                    tls::TlsListener::new(listener, config).map_err(ServerError::Serve)?;
                serve_on(listener, app, shutdown).await
            }
            None => serve_on(listener, app, shutdown).await,
        };
        let _ = tx.send(true);
        let _ = ticker.await;
        result
    }
}

async fn serve_on<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)
}

/// The OpenAPI 3 description of the v1 API (`api/openapi.json`, kept next to the code).
pub const OPENAPI: &str = include_str!("../api/openapi.json");

async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, error::ApiError> {
    state.store.tree_size().await?;
    Ok("ready")
}

async fn fallback() -> error::ApiError {
    error::ApiError::not_found("no such endpoint")
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/evidence", post(api::post_evidence))
        .route("/v1/evidence/{id}", get(api::get_evidence))
        .route("/v1/evidence/{id}/proof", get(log::get_tlog_proof))
        .route("/v1/systems", get(api::get_systems))
        .route("/v1/systems/{id}/controls", get(api::get_controls))
        .route("/v1/findings", get(api::get_findings))
        .route("/v1/confirmations", post(sources::post_confirmation))
        .route("/v1/heartbeats", post(sources::post_heartbeats))
        .route("/v1/sources", get(sources::get_sources))
        .route("/v1/log/checkpoint", get(log::get_checkpoint))
        .route("/v1/log/proof/inclusion", get(log::get_inclusion))
        .route("/v1/log/proof/consistency", get(log::get_consistency))
        .route("/v1/export", get(export::get_export))
        .route("/v1/export/oscal", get(export::get_export_oscal))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics::get_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(dashboard::index))
        .route(
            "/login",
            get(dashboard::get_login).post(dashboard::post_login),
        )
        .route("/logout", get(dashboard::logout))
        .route("/systems/{id}", get(dashboard::system_page))
        .route("/evidence/{id}", get(dashboard::evidence_page))
        .fallback(fallback)
        // Ingest reads its own body with a JSON 413; this caps every other extractor.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
