//! Prometheus metrics of the server (`GET /metrics`, text format 0.0.4).
//!
//! Counters and the latency histogram live in process-wide atomics updated on the request path;
//! gauges that describe stored state (ledger size, systems, findings by kind) are read from the
//! store when scraped, so every replica reports the shared database's values. Labels are bounded
//! (status class, finding kind): never a path, a system or a hash.
//!
//! With OTLP export on, [`register_otel`] publishes the counters under the same names and labels
//! as observable instruments that read these atomics, and the latency as an OTel histogram with
//! the same buckets. The store-backed gauges are only served here: OTel callbacks are
//! synchronous and run on the SDK's thread, where the async store cannot be queried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use aims_telemetry::prometheus::{CONTENT_TYPE, family, sample};

use crate::AppState;
use crate::error::ApiError;

/// Upper bounds (seconds) of the ingest latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    records_accepted: AtomicU64,
    records_duplicate: AtomicU64,
    ingest_ok: AtomicU64,
    ingest_client_error: AtomicU64,
    ingest_server_error: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// The OTLP latency histogram, once [`register_otel`] ran.
    otel_latency: OnceLock<opentelemetry::metrics::Histogram<f64>>,
}

impl Metrics {
    /// Records one ingest request's outcome and latency.
    pub fn ingest(&self, status: u16, elapsed: Duration, accepted: u64, duplicates: u64) {
        match status {
            200..=299 => &self.ingest_ok,
            400..=499 => &self.ingest_client_error,
            _ => &self.ingest_server_error,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.records_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.records_duplicate
            .fetch_add(duplicates, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(h) = self.otel_latency.get() {
            h.record(secs, &[]);
        }
    }
}

/// Publishes the counters on `meter` (OTLP export) under their Prometheus names and labels; the
/// callbacks read the same atomics as `GET /metrics`.
pub fn register_otel(meter: &opentelemetry::metrics::Meter, metrics: Arc<Metrics>) {
    use opentelemetry::KeyValue;
    type Read = fn(&Metrics) -> &AtomicU64;
    let counters: [(&'static str, &'static str, Read); 2] = [
        (
            "aims_evidence_records_accepted_total",
            "Evidence records appended to the ledger by this process.",
            |m| &m.records_accepted,
        ),
        (
            "aims_evidence_records_duplicate_total",
            "Records received that the ledger already held.",
            |m| &m.records_duplicate,
        ),
    ];
    for (name, help, get) in counters {
        let m = metrics.clone();
        let _counter = meter
            .u64_observable_counter(name)
            .with_description(help)
            .with_callback(move |obs| obs.observe(get(&m).load(Ordering::Relaxed), &[]))
            .build();
    }
    let m = metrics.clone();
    let _requests = meter
        .u64_observable_counter("aims_ingest_requests_total")
        .with_description("POST /v1/evidence requests by status class.")
        .with_callback(move |obs| {
            for (class, a) in [
                ("2xx", &m.ingest_ok),
                ("4xx", &m.ingest_client_error),
                ("5xx", &m.ingest_server_error),
            ] {
                obs.observe(a.load(Ordering::Relaxed), &[KeyValue::new("status", class)]);
            }
        })
        .build();
    let histogram = meter
        .f64_histogram("aims_ingest_duration_seconds")
        .with_description("Latency of POST /v1/evidence.")
        .with_unit("s")
        .with_boundaries(BUCKETS.to_vec())
        .build();
    let _ = metrics.otel_latency.set(histogram);
}

/// A label value escaped for the Prometheus text format (identifiers are already restricted to
/// `[A-Za-z0-9._:/@-]`, this is defence in depth).
/// `GET /metrics`.
pub async fn get_metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = &state.metrics;
    let mut out = String::with_capacity(4096);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);

    family(
        &mut out,
        "aims_evidence_records_accepted_total",
        "Evidence records appended to the ledger by this process.",
        "counter",
    );
    sample(
        &mut out,
        "aims_evidence_records_accepted_total",
        &[],
        get(&m.records_accepted),
    );
    family(
        &mut out,
        "aims_evidence_records_duplicate_total",
        "Records received that the ledger already held.",
        "counter",
    );
    sample(
        &mut out,
        "aims_evidence_records_duplicate_total",
        &[],
        get(&m.records_duplicate),
    );
    family(
        &mut out,
        "aims_ingest_requests_total",
        "POST /v1/evidence requests by status class.",
        "counter",
    );
    for (class, a) in [
        ("2xx", &m.ingest_ok),
        ("4xx", &m.ingest_client_error),
        ("5xx", &m.ingest_server_error),
    ] {
        sample(
            &mut out,
            "aims_ingest_requests_total",
            &[("status", class)],
            get(a),
        );
    }
    family(
        &mut out,
        "aims_ingest_duration_seconds",
        "Latency of POST /v1/evidence.",
        "histogram",
    );
    for (i, b) in BUCKETS.iter().enumerate() {
        let le = b.to_string();
        sample(
            &mut out,
            "aims_ingest_duration_seconds_bucket",
            &[("le", &le)],
            get(&m.latency_buckets[i]),
        );
    }
    let count = get(&m.latency_count);
    sample(
        &mut out,
        "aims_ingest_duration_seconds_bucket",
        &[("le", "+Inf")],
        count,
    );
    sample(
        &mut out,
        "aims_ingest_duration_seconds_sum",
        &[],
        get(&m.latency_sum_micros) as f64 / 1e6,
    );
    sample(&mut out, "aims_ingest_duration_seconds_count", &[], count);

    crate::assess::flush(&state).await?;
    let size = state.store.tree_size().await?;
    family(
        &mut out,
        "aims_ledger_size",
        "Leaves in the ledger (shared by all replicas).",
        "gauge",
    );
    sample(&mut out, "aims_ledger_size", &[], size);
    let systems = state.store.systems().await?;
    family(
        &mut out,
        "aims_systems",
        "AI systems with evidence.",
        "gauge",
    );
    sample(&mut out, "aims_systems", &[], systems.len());
    family(
        &mut out,
        "aims_controls",
        "Controls per status, summed over systems.",
        "gauge",
    );
    let mut totals = aims_model::wire::StatusCounts::default();
    for s in &systems {
        totals.merge(&s.controls);
    }
    for (st, n) in [
        ("fresh", totals.fresh),
        ("stale", totals.stale),
        ("drifted", totals.drifted),
        ("missing", totals.missing),
        ("not_applicable", totals.not_applicable),
        ("excluded", totals.excluded),
    ] {
        sample(&mut out, "aims_controls", &[("status", st)], n);
    }
    let counts = state.store.finding_counts().await?;
    family(&mut out, "aims_findings", "Open findings by kind.", "gauge");
    for kind in [
        "stale",
        "missing",
        "changed",
        "inconsistent",
        "failed",
        "gone",
    ] {
        let n = counts
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n);
        sample(&mut out, "aims_findings", &[("kind", kind)], n);
    }
    let sources = state.store.sources(aims_model::Timestamp::now()).await?;
    family(
        &mut out,
        "aims_source_status",
        "1 for the current status of each agent's source (ok, failing, silent).",
        "gauge",
    );
    for src in &sources {
        for st in [
            aims_model::wire::SourceStatus::Ok,
            aims_model::wire::SourceStatus::Failing,
            aims_model::wire::SourceStatus::Silent,
        ] {
            sample(
                &mut out,
                "aims_source_status",
                &[
                    ("agent", &src.agent),
                    ("source", &src.source),
                    ("status", st.as_str()),
                ],
                u8::from(src.status == st),
            );
        }
    }
    let (held, changes) = state.timelines.size();
    family(
        &mut out,
        "aims_timeline_systems",
        "Systems whose history is materialised in this process.",
        "gauge",
    );
    sample(&mut out, "aims_timeline_systems", &[], held);
    family(
        &mut out,
        "aims_timeline_changes",
        "Status changes held by the materialised histories (all systems and controls).",
        "gauge",
    );
    sample(&mut out, "aims_timeline_changes", &[], changes);
    // Notification deliveries (issue 15): dead letters and failures show here and on /sources.
    let outbox = state.store.outbox_counts().await?;
    family(
        &mut out,
        "aims_notifications",
        "Notification deliveries by sink and state (pending, delivered, failed, dead, skipped).",
        "gauge",
    );
    for c in &outbox {
        sample(
            &mut out,
            "aims_notifications",
            &[("sink", &c.sink), ("state", &c.state)],
            c.count,
        );
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response())
}
