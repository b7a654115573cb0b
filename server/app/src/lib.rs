//! aims-server: the collector. It accepts evidence from agents into the ledger, keeps the
//! per-(system, control) assessment current, and serves the JSON API, the dashboard and the
//! auditor's proofs.
//!
//! `main.rs` is a thin CLI over this library; tests build the same [`Server`] on port 0.

pub mod api;
pub mod applicability;
pub mod assess;
pub mod audit;
pub mod auth;
pub mod charts;
pub mod csrf;
pub mod dashboard;
pub mod display;
pub mod error;
pub mod evidence;
pub mod export;
pub mod forms;
pub mod history;
pub mod http_util;
pub mod integrity;
pub mod keys;
pub mod manual;
pub mod metrics;
pub mod notify;
pub mod oscal;
pub mod pages;
pub mod proofs;
pub mod serve;
pub mod settings;
pub mod sources;
pub mod timelines;
pub mod tls;
pub mod trend;
pub mod uploads;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
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
    /// Largest accepted upload (`POST /v1/uploads`).
    pub max_upload_bytes: usize,
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
    /// The background check of the whole ledger (`/readyz`; no signing once it failed).
    pub integrity: Arc<integrity::Integrity>,
    /// The server speaks TLS: session cookies are `Secure`, responses carry HSTS.
    pub tls: bool,
    /// `GET /metrics` is served without a token.
    pub metrics_public: bool,
    /// Days before a freshness window closes that `evidence.expiring` is recorded.
    pub warn_days: u32,
    /// The notification sender, when sinks are configured (set by [`Server::build`]).
    pub notifier: Option<Arc<notify::Notifier>>,
    /// The dashboard's last computed trends (reused while the ledger does not grow).
    pub trend: Arc<trend::TrendCache>,
    /// Each system's history, materialised (`timelines.rs`).
    pub timelines: Arc<timelines::Timelines>,
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
                max_upload_bytes: settings.max_upload_bytes,
            },
            assess_lock: Arc::new(Mutex::new(())),
            metrics: Arc::new(metrics::Metrics::default()),
            dirty: Arc::default(),
            flushing: Arc::default(),
            integrity: Arc::default(),
            tls: settings.tls.is_some(),
            metrics_public: settings.metrics_public,
            // Expiring windows are recorded as far ahead as any sink wants to hear of them.
            warn_days: settings
                .notifications
                .iter()
                .filter_map(aims_notify::SinkConfig::warn_days)
                .fold(settings.notify.warn_days, u32::max),
            notifier: None,
            trend: Arc::default(),
            timelines: Arc::default(),
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
    match aims_store::DatabaseUrl::parse(url).map_err(err)? {
        aims_store::DatabaseUrl::Sqlite { url, .. } => {
            Ok(Arc::new(SqliteStore::open(&url).await.map_err(err)?))
        }
        aims_store::DatabaseUrl::Postgres { url } => Ok(Arc::new(
            aims_store::PgStore::open(&url).await.map_err(err)?,
        )),
    }
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
        let mut state = AppState::new(store, catalog, keys, &settings);
        state.notifier = notify::Notifier::from_settings(&settings)?;
        // The ledger at rest is checked before anything is served or signed (issue 18 M5).
        integrity::check_tail(state.store.as_ref(), state.keys.last_signed())
            .await
            .map_err(|e| ServerError::Startup(format!("the ledger does not check out: {e}")))?;
        proofs::ensure_checkpoint(&state)
            .await
            .map_err(|e| ServerError::Startup(e.to_string()))?;
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

    /// Serves on `listener` until `shutdown` resolves, then drains in-flight requests. The
    /// connection limits and timeouts of the `http` settings apply (see [`serve`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        // The whole ledger is checked in the background (the tail was checked in `build`).
        tokio::spawn(integrity::run_background(
            self.state.store.clone(),
            self.state.integrity.clone(),
        ));
        // Notification sinks start from the newest event now, before any assessment of this
        // run records more; then the sender runs beside the ticker.
        let sender = match &self.state.notifier {
            Some(n) => {
                if let Ok(addr) = listener.local_addr() {
                    n.default_public_url(&format!("{}://{addr}", self.scheme()));
                }
                n.init(&self.state)
                    .await
                    .map_err(|e| ServerError::Startup(format!("notification outbox: {e}")))?;
                Some(tokio::spawn(notify::run(
                    self.state.clone(),
                    n.clone(),
                    rx.clone(),
                )))
            }
            None => None,
        };
        let ticker = tokio::spawn(assess::ticker(
            self.state.clone(),
            Duration::from_secs(self.settings.assess_interval_secs.max(1)),
            rx,
        ));
        let limits = self.settings.http.limits();
        if let Some(fds) = settings::open_file_limit()
            && limits.max_connections as u64 > fds.saturating_sub(settings::FD_HEADROOM)
        {
            tracing::warn!(
                max_connections = limits.max_connections,
                open_file_limit = fds,
                "http.max_connections leaves fewer than 128 file descriptors for the database and \
                 outgoing connections; raise the open-file limit or lower max_connections"
            );
        }
        tracing::debug!(?limits, "connection limits");
        let app = router(self.state.clone());
        let result = serve::serve(listener, self.tls.clone(), app, limits, shutdown)
            .await
            .map_err(ServerError::Serve);
        let _ = tx.send(true);
        let _ = ticker.await;
        if let Some(sender) = sender {
            let _ = sender.await;
        }
        result
    }
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

/// Ready when the database answers, the append lock is not held by a stuck replica, and the
/// ledger check has not failed (`ledger check under way` while it runs is still ready: the
/// start-up check already covered the tail).
async fn readyz(State(state): State<AppState>) -> Result<String, error::ApiError> {
    state.store.tree_size().await?;
    if let Some(reason) = state.integrity.failure() {
        return Err(error::ApiError::unavailable(format!(
            "the ledger failed its integrity check: {reason}"
        )));
    }
    if !state
        .store
        .append_lock_available(Duration::from_secs(2))
        .await?
    {
        return Err(error::ApiError::unavailable(
            "the ledger's append lock has been held for more than 2 s (a stuck replica?)",
        ));
    }
    Ok(match state.integrity.state() {
        integrity::IntegrityState::Verified => "ready".to_owned(),
        _ => format!(
            "ready (ledger check under way: {} leaves verified)",
            state
                .integrity
                .checked
                .load(std::sync::atomic::Ordering::Relaxed)
        ),
    })
}

async fn fallback() -> error::ApiError {
    error::ApiError::not_found("no such endpoint")
}

/// `GET /metrics`: a token of any role, unless the settings make it public.
async fn metrics_route(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if !state.metrics_public
        && let Err(e) = auth::request_principal(&state, &method, &headers).await
    {
        return e.into_response();
    }
    match metrics::get_metrics(State(state)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The span of one HTTP request: method, path and the query with token values redacted (the
/// dashboard's `/?token=` must never reach a log).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let query = req.uri().query().map(http_util::redact_query);
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        query = query.as_deref().unwrap_or(""),
    )
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let tls = state.tls;
    Router::new()
        .route("/v1/evidence", post(api::post_evidence))
        .route("/v1/evidence/{id}", get(api::get_evidence))
        .route("/v1/evidence/{id}/proof", get(proofs::get_tlog_proof))
        .route("/v1/uploads", post(uploads::post_upload))
        .route("/v1/blobs/{sha256}", get(uploads::get_blob))
        .route("/v1/systems", get(api::get_systems))
        .route("/v1/systems/{id}/controls", get(api::get_controls))
        .route("/v1/systems/{id}/history", get(history::get_history))
        .route("/v1/systems/{id}/aliases", get(history::get_aliases))
        .route(
            "/v1/systems/{id}/applicability",
            get(applicability::get_applicability).put(applicability::put_applicability),
        )
        .route("/v1/report", get(history::get_report))
        .route("/v1/findings", get(api::get_findings))
        .route(
            "/v1/findings/{id}/acknowledge",
            post(manual::post_acknowledge),
        )
        .route("/v1/catalog", get(api::get_catalog))
        .route("/v1/confirmations", post(sources::post_confirmation))
        .route("/v1/heartbeats", post(sources::post_heartbeats))
        .route("/v1/sources", get(sources::get_sources))
        .route("/v1/log/checkpoint", get(proofs::get_checkpoint))
        .route("/v1/log/proof/inclusion", get(proofs::get_inclusion))
        .route("/v1/log/proof/consistency", get(proofs::get_consistency))
        .route("/v1/export", get(export::get_export))
        .route("/v1/export/oscal", get(export::get_export_oscal))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics_route))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(dashboard::index))
        .route(
            "/login",
            get(dashboard::get_login).post(dashboard::post_login),
        )
        .route(
            "/logout",
            get(dashboard::get_logout).post(dashboard::post_logout),
        )
        .route("/systems/{id}", get(dashboard::system_page))
        .route(
            "/systems/{id}/applicability",
            post(forms::post_applicability),
        )
        .route("/systems/{id}/acknowledge", post(forms::post_acknowledge))
        // The upload form bounds its own fields and file (max_upload_bytes).
        .route(
            "/systems/{id}/uploads",
            post(forms::post_upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/systems/{id}/controls/{control}", get(pages::control_page))
        .route("/controls/{control}", get(pages::control_across_systems))
        .route("/sources", get(pages::sources_page))
        .route("/sources/{agent}/{source}", get(pages::source_page))
        .route("/evidence/{id}", get(evidence::evidence_page))
        .route("/audit", get(audit::audit_page))
        .route("/audit/check", get(audit::check_page))
        .route("/audit/population.csv", get(audit::population_csv))
        .fallback(fallback)
        // Ingest reads its own body with a JSON 413; this caps every other extractor.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::map_response(
            move |mut resp: Response| async move {
                http_util::add_security_headers(resp.headers_mut(), tls);
                resp
            },
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}
