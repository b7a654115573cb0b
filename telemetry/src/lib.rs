//! aims-telemetry: logging and OpenTelemetry export for `aims-agent` and `aims-server`.
//!
//! [`init`] installs the process-wide `tracing` subscriber:
//!
//! - always a `fmt` layer on stderr (human or JSON) filtered by `RUST_LOG`, or by the binary's
//!   default filter when `RUST_LOG` is unset;
//! - when an OTLP endpoint is configured, also a `tracing-opentelemetry` layer that exports spans
//!   over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces` through a batch processor, and an SDK
//!   meter provider whose periodic reader exports to `{endpoint}/v1/metrics`.
//!
//! The exporters send with a blocking HTTP client on the SDK's own background threads, so
//! nothing here needs (or blocks) the async runtime. The returned [`TelemetryGuard`] flushes and
//! shuts both providers down when dropped: keep it alive until the process is about to exit.
//!
//! Standard OpenTelemetry variables still apply where the SDK reads them:
//! `OTEL_EXPORTER_OTLP_HEADERS` (e.g. an authorization header for the collector),
//! `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds, default 60000), `OTEL_BSP_SCHEDULE_DELAY`
//! (milliseconds, default 5000), `OTEL_RESOURCE_ATTRIBUTES`.

pub mod prometheus;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The standard variable naming the OTLP base endpoint, used when neither a flag nor a
/// configuration key sets one.
pub const ENV_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Per-request timeout of the OTLP exporters.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dropping the guard may wait for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Targets whose spans are never exported: the exporter's own machinery (exporting a span about
/// sending spans would feed itself).
const OTLP_NEVER: &str = "opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                          opentelemetry_http=off,reqwest=off,hyper=off,hyper_util=off,h2=off";

/// The SDK's own diagnostics (export failures are warnings) without its chatter.
const SDK_LOGS: &str = "opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn,\
                        opentelemetry_http=warn";

/// Format of the log lines on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// What [`init`] sets up.
#[derive(Clone, Debug)]
pub struct TelemetryOptions {
    /// `service.name` of the exported resource, and the name of the tracer and meter.
    pub service_name: &'static str,
    /// `service.version` of the exported resource.
    pub service_version: &'static str,
    /// Format of the log lines on stderr.
    pub log_format: LogFormat,
    /// Log filter used when `RUST_LOG` is unset (`EnvFilter` directives, e.g. `warn`).
    pub default_filter: String,
    /// OTLP base URL (`http(s)://host:4318`); no export when `None`.
    pub otlp_endpoint: Option<String>,
    /// Which spans are exported (`EnvFilter` directives, independent of `RUST_LOG`, so a quiet
    /// log still exports its `info` spans).
    pub otlp_filter: String,
}

impl TelemetryOptions {
    /// Human logs filtered by `default_filter`, no export, `info` spans when export is enabled.
    pub fn new(service_name: &'static str, default_filter: impl Into<String>) -> Self {
        Self {
            service_name,
            service_version: "",
            log_format: LogFormat::Human,
            default_filter: default_filter.into(),
            otlp_endpoint: None,
            otlp_filter: "info".to_owned(),
        }
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP endpoint is not an `http` or `https` URL.
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The value given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An OTLP exporter could not be built.
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global `tracing` subscriber was already installed.
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the OTLP providers alive; dropping it flushes and shuts them down.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    service_name: &'static str,
}

impl TelemetryGuard {
    /// True when spans and metrics are exported over OTLP.
    pub fn otlp_enabled(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// A meter of the OTLP meter provider to register instruments on; `None` without export.
    pub fn meter(&self) -> Option<Meter> {
        self.meter_provider
            .as_ref()
            .map(|p| p.meter(self.service_name))
    }

    /// Exports what is pending and stops the exporters (also done on drop). Both providers shut
    /// down at the same time, so an unreachable collector delays the caller by one timeout, not
    /// two. Blocks: call it off async worker threads. Idempotent.
    pub fn shutdown(&mut self) {
        let tracer = self.tracer_provider.take();
        let meter = self.meter_provider.take();
        std::thread::scope(|scope| {
            if let Some(p) = tracer {
                // Should the thread not start, dropping the provider still shuts it down.
                let _thread = std::thread::Builder::new()
                    .name("otlp-shutdown".to_owned())
                    .spawn_scoped(scope, move || {
                        if let Err(e) = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                            tracing::warn!(error = %e, "OTLP trace export did not shut down cleanly");
                        }
                    });
            }
            if let Some(p) = meter
                && let Err(e) = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
            {
                tracing::warn!(error = %e, "OTLP metric export did not shut down cleanly");
            }
        });
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The endpoint to use: the first of `flag`, `configured` and the `OTEL_EXPORTER_OTLP_ENDPOINT`
/// variable that is set and not blank.
pub fn resolve_endpoint(flag: Option<&str>, configured: Option<&str>) -> Option<String> {
    let env = std::env::var(ENV_OTLP_ENDPOINT).ok();
    resolve_endpoint_with(flag, configured, env.as_deref())
}

/// [`resolve_endpoint`] with the variable's value passed in.
pub fn resolve_endpoint_with(
    flag: Option<&str>,
    configured: Option<&str>,
    env: Option<&str>,
) -> Option<String> {
    [flag, configured, env]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Checks that `endpoint` is an `http` or `https` URL with a host and no query or fragment.
pub fn validate_endpoint(endpoint: &str) -> Result<url::Url, TelemetryError> {
    let bad = |reason: String| TelemetryError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let url = url::Url::parse(endpoint.trim()).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme must be http or https, got {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment".to_owned()));
    }
    Ok(url)
}

/// `{base}/v1/{signal}` (the OTLP/HTTP paths), keeping any path prefix of the base.
pub fn signal_url(base: &url::Url, signal: &str) -> String {
    format!("{}/v1/{signal}", base.as_str().trim_end_matches('/'))
}

/// Installs logging and, when `opts.otlp_endpoint` is set, OTLP export of spans and metrics.
/// See the crate docs.
pub fn init(opts: &TelemetryOptions) -> Result<TelemetryGuard, TelemetryError> {
    let log_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},{SDK_LOGS}", opts.default_filter)));
    let fmt_layer = match opts.log_format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour only for a person at a terminal; files and log collectors get plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
    };
    let Some(endpoint) = opts.otlp_endpoint.as_deref() else {
        tracing_subscriber::registry().with(fmt_layer).try_init()?;
        return Ok(TelemetryGuard::default());
    };
    let base = validate_endpoint(endpoint)?;
    // reqwest is built with rustls and no default crypto provider; https endpoints use ring.
    let _already = rustls::crypto::ring::default_provider().install_default();

    let mut resource = Resource::builder().with_service_name(opts.service_name);
    if !opts.service_version.is_empty() {
        resource = resource.with_attribute(KeyValue::new("service.version", opts.service_version));
    }
    let resource = resource.build();

    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(signal_url(&base, "traces"))
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(signal_url(&base, "metrics"))
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(span_exporter)
        .with_resource(resource.clone())
        .build();
    // The interval comes from OTEL_METRIC_EXPORT_INTERVAL (default 60 s).
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metric_exporter).build())
        .with_resource(resource)
        .build();
    let tracer = tracer_provider.tracer(opts.service_name);
    // From here on, an early return drops the guard, which shuts the providers down.
    let guard = TelemetryGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider: Some(meter_provider),
        service_name: opts.service_name,
    };
    let otlp_filter = EnvFilter::new(format!("{},{OTLP_NEVER}", opts.otlp_filter));
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(otlp_filter);
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    tracing::info!(endpoint = %base, service = opts.service_name, "exporting traces and metrics over OTLP");
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        let r = resolve_endpoint_with;
        assert_eq!(
            r(Some("http://a:1"), Some("http://b:2"), Some("http://c:3")).as_deref(),
            Some("http://a:1")
        );
        assert_eq!(
            r(None, Some("http://b:2"), Some("http://c:3")).as_deref(),
            Some("http://b:2")
        );
        assert_eq!(
            r(None, None, Some(" http://c:3 ")).as_deref(),
            Some("http://c:3")
        );
        assert_eq!(
            r(Some(""), Some("  "), Some("http://c:3")).as_deref(),
            Some("http://c:3")
        );
        assert_eq!(r(None, None, None), None);
        assert_eq!(r(None, None, Some("")), None);
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(validate_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(validate_endpoint("https://otel.example.com/prefix/").is_ok());
        for bad in [
            "127.0.0.1:4318",
            "grpc://collector:4317",
            "http://",
            "http://h:1/?x=1",
            "",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn signal_paths() {
        let u = validate_endpoint("http://127.0.0.1:4318").unwrap();
        assert_eq!(signal_url(&u, "traces"), "http://127.0.0.1:4318/v1/traces");
        let u = validate_endpoint("https://c.example.com/otlp/").unwrap();
        assert_eq!(
            signal_url(&u, "metrics"),
            "https://c.example.com/otlp/v1/metrics"
        );
    }

    #[test]
    fn no_endpoint_means_no_export() {
        let g = TelemetryGuard::default();
        assert!(!g.otlp_enabled());
        assert!(g.meter().is_none());
    }
}
