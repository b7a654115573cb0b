//! Prometheus metrics of the agent, served at `GET /metrics` on `metrics_listen` in `run` mode.
//!
//! Counters are process-wide and labelled only by the configured source id (bounded by the
//! config). The spool depth is read from the spool directory when scraped, so it is the truth on
//! disk, not a counter that could drift.
//!
//! With OTLP export on, [`register_otel`] publishes the same values under the same names and
//! labels as observable instruments, read from these counters when the SDK collects, so OTLP
//! and `/metrics` always agree.

use std::collections::BTreeMap;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::report::SourceReport;
use crate::shipper::ShipReport;
use crate::spool::Spool;
use aims_telemetry::prometheus::{family, sample};

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

/// The per-source counters, labelled `source`.
const PER_SOURCE: [Series; 6] = [
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

/// The unlabelled counters: name, help, value.
static TOTALS: [(&str, &str, &AtomicU64); 3] = [
    (
        "aims_agent_records_shipped_total",
        "Records acknowledged by the server.",
        &SHIPPED,
    ),
    (
        "aims_agent_records_rejected_total",
        "Records the server rejected (moved to spool/rejected).",
        &REJECTED,
    ),
    (
        "aims_agent_ship_errors_total",
        "Problems reported by shipping passes.",
        &SHIP_ERRORS,
    ),
];

const SPOOL_DEPTH: (&str, &str) = (
    "aims_agent_spool_depth",
    "Batch files waiting in the spool.",
);

const SPOOL_FULL: (&str, &str) = (
    "aims_agent_spool_full",
    "1 when the spool reached spool_max_bytes and refused new records, else 0.",
);

fn snapshot() -> BTreeMap<String, SourceCounters> {
    SOURCES.lock().map(|m| m.clone()).unwrap_or_default()
}

/// Registers every metric of [`render`] on `meter` as an observable counter or gauge with the
/// same name and labels (OTLP export). The spool depth is read from `spool` at collection time.
pub fn register_otel(meter: &opentelemetry::metrics::Meter, spool: Spool) {
    use opentelemetry::KeyValue;
    for (name, help, get) in PER_SOURCE {
        let _counter = meter
            .u64_observable_counter(name)
            .with_description(help)
            .with_callback(move |obs| {
                for (id, c) in snapshot() {
                    obs.observe(get(&c), &[KeyValue::new("source", id)]);
                }
            })
            .build();
    }
    for (name, help, value) in TOTALS {
        let _counter = meter
            .u64_observable_counter(name)
            .with_description(help)
            .with_callback(move |obs| obs.observe(value.load(Ordering::Relaxed), &[]))
            .build();
    }
    let _gauge = meter
        .u64_observable_gauge(SPOOL_DEPTH.0)
        .with_description(SPOOL_DEPTH.1)
        .with_callback({
            let spool = spool.clone();
            move |obs| {
                if let Ok(p) = spool.pending() {
                    obs.observe(p.len() as u64, &[]);
                }
            }
        })
        .build();
    let _full = meter
        .u64_observable_gauge(SPOOL_FULL.0)
        .with_description(SPOOL_FULL.1)
        .with_callback(move |obs| obs.observe(u64::from(spool.is_full()), &[]))
        .build();
}

/// The metrics in Prometheus text format.
pub fn render(spool: &Spool) -> String {
    let mut out = String::with_capacity(2048);
    let sources = snapshot();
    for (name, help, get) in PER_SOURCE {
        family(&mut out, name, help, "counter");
        for (id, c) in &sources {
            sample(&mut out, name, &[("source", id.as_str())], get(c));
        }
    }
    for (name, help, value) in TOTALS {
        family(&mut out, name, help, "counter");
        sample(&mut out, name, &[], value.load(Ordering::Relaxed));
    }
    let (name, help) = SPOOL_DEPTH;
    family(&mut out, name, help, "gauge");
    let depth = spool.pending().map(|p| p.len()).unwrap_or(0);
    sample(&mut out, name, &[], depth);
    let (name, help) = SPOOL_FULL;
    family(&mut out, name, help, "gauge");
    sample(&mut out, name, &[], u64::from(spool.is_full()));
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
                            aims_telemetry::prometheus::CONTENT_TYPE,
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
