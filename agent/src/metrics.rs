//! Prometheus metrics of the agent, served at `GET /metrics` on `metrics_listen` in `run` mode.
//!
//! Counters are process-wide and labelled only by the configured source id (bounded by the
//! config). The spool depth is read from the spool directory when scraped, so it is the truth on
//! disk, not a counter that could drift.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::runner::SourceReport;
use crate::shipper::ShipReport;
use crate::spool::Spool;

#[derive(Debug, Default, Clone)]
struct SourceCounters {
    polls: u64,
    poll_errors: u64,
    fetched: u64,
    bytes_hashed: u64,
    spooled: u64,
    gone: u64,
}

static SOURCES: Mutex<BTreeMap<String, SourceCounters>> = Mutex::new(BTreeMap::new());
static SHIPPED: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);
static SHIP_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts one poll cycle of a source.
pub fn record_poll(r: &SourceReport) {
    if let Ok(mut map) = SOURCES.lock() {
        let c = map.entry(r.id.clone()).or_default();
        c.polls += 1;
        c.poll_errors += u64::from(r.failed());
        c.fetched += r.fetched as u64;
        c.bytes_hashed += r.bytes_hashed;
        c.spooled += r.spooled as u64;
        c.gone += r.gone as u64;
    }
}

/// Counts one shipping pass.
pub fn record_ship(r: &ShipReport) {
    SHIPPED.fetch_add(r.records_acked as u64, Ordering::Relaxed);
    REJECTED.fetch_add(r.records_rejected as u64, Ordering::Relaxed);
    SHIP_ERRORS.fetch_add(r.errors.len() as u64, Ordering::Relaxed);
}

/// A per-source series: name, help, and how to read it.
type Series = (&'static str, &'static str, fn(&SourceCounters) -> u64);

fn head(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The metrics in Prometheus text format.
pub fn render(spool: &Spool) -> String {
    let mut out = String::with_capacity(2048);
    let sources = SOURCES.lock().map(|m| m.clone()).unwrap_or_default();
    let per_source: [Series; 6] = [
        ("aims_agent_polls_total", "Poll cycles per source.", |c| {
            c.polls
        }),
        (
            "aims_agent_poll_errors_total",
            "Poll cycles that reported an error, per source.",
            |c| c.poll_errors,
        ),
        (
            "aims_agent_artifacts_fetched_total",
            "Artifacts whose content was downloaded, per source.",
            |c| c.fetched,
        ),
        (
            "aims_agent_bytes_hashed_total",
            "Bytes SHA-256 hashed, per source.",
            |c| c.bytes_hashed,
        ),
        (
            "aims_agent_records_spooled_total",
            "Evidence records written to the spool, per source.",
            |c| c.spooled,
        ),
        (
            "aims_agent_gone_total",
            "Artifacts that vanished at their source, per source.",
            |c| c.gone,
        ),
    ];
    for (name, help, get) in per_source {
        head(&mut out, name, help, "counter");
        for (id, c) in &sources {
            let _ = writeln!(out, "{name}{{source=\"{id}\"}} {}", get(c));
        }
    }
    head(
        &mut out,
        "aims_agent_records_shipped_total",
        "Records acknowledged by the server.",
        "counter",
    );
    let _ = writeln!(
        out,
        "aims_agent_records_shipped_total {}",
        SHIPPED.load(Ordering::Relaxed)
    );
    head(
        &mut out,
        "aims_agent_records_rejected_total",
        "Records the server rejected (moved to spool/rejected).",
        "counter",
    );
    let _ = writeln!(
        out,
        "aims_agent_records_rejected_total {}",
        REJECTED.load(Ordering::Relaxed)
    );
    head(
        &mut out,
        "aims_agent_ship_errors_total",
        "Problems reported by shipping passes.",
        "counter",
    );
    let _ = writeln!(
        out,
        "aims_agent_ship_errors_total {}",
        SHIP_ERRORS.load(Ordering::Relaxed)
    );
    head(
        &mut out,
        "aims_agent_spool_depth",
        "Batch files waiting in the spool.",
        "gauge",
    );
    let depth = spool.pending().map(|p| p.len()).unwrap_or(0);
    let _ = writeln!(out, "aims_agent_spool_depth {depth}");
    out
}

/// Serves `/metrics` and `/healthz` on `addr` until `stop` fires.
pub async fn serve(
    addr: &str,
    spool: Spool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<std::net::SocketAddr, std::io::Error> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let spool = spool.clone();
                async move {
                    let body = tokio::task::spawn_blocking(move || render(&spool))
                        .await
                        .unwrap_or_default();
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    tracing::info!(%local, "metrics listening");
    Ok(local)
}
