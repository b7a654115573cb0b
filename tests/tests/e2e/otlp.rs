//! OpenTelemetry export, end to end over the real protocol: an OTLP/HTTP receiver (axum, bodies
//! decoded with `opentelemetry-proto`) runs on 127.0.0.1; `aims-server` and `aims-agent once`
//! export to it because their `otlp_endpoint` is configured. The receiver must get the agent's
//! poll-cycle span and the server's ingest span with their fields, and metric data points whose
//! values match what happened (records shipped, records accepted). An agent with no endpoint
//! exports nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aims_e2e::{ServerProcess, agent_once};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

type Attrs = BTreeMap<String, String>;

#[derive(Clone, Debug)]
struct SpanSeen {
    service: String,
    name: String,
    attrs: Attrs,
}

#[derive(Clone, Debug)]
struct PointSeen {
    service: String,
    name: String,
    attrs: Attrs,
    /// The value of a sum or gauge point; the count of a histogram point.
    value: f64,
}

#[derive(Debug, Default)]
struct Received {
    spans: Vec<SpanSeen>,
    /// In arrival order: the last matching point is the newest cumulative value.
    points: Vec<PointSeen>,
    /// Export requests per `service.name`.
    requests: BTreeMap<String, usize>,
}

type Shared = Arc<Mutex<Received>>;

fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn service(r: Option<&Resource>) -> String {
    r.map(|r| attrs(&r.attributes))
        .and_then(|a| a.get("service.name").cloned())
        .unwrap_or_default()
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-protobuf"))
}

fn protobuf(body: Vec<u8>) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
}

async fn traces(
    State(rx): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl axum::response::IntoResponse, StatusCode> {
    if !is_protobuf(&headers) {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let req = ExportTraceServiceRequest::decode(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut r = rx.lock().unwrap();
    for rs in &req.resource_spans {
        let service = service(rs.resource.as_ref());
        *r.requests.entry(service.clone()).or_default() += 1;
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                r.spans.push(SpanSeen {
                    service: service.clone(),
                    name: s.name.clone(),
                    attrs: attrs(&s.attributes),
                });
            }
        }
    }
    Ok(protobuf(
        ExportTraceServiceResponse::default().encode_to_vec(),
    ))
}

async fn metrics(
    State(rx): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl axum::response::IntoResponse, StatusCode> {
    if !is_protobuf(&headers) {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let req = ExportMetricsServiceRequest::decode(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut r = rx.lock().unwrap();
    for rm in &req.resource_metrics {
        let service = service(rm.resource.as_ref());
        *r.requests.entry(service.clone()).or_default() += 1;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let mut push = |attributes: &[KeyValue], value: f64| {
                    r.points.push(PointSeen {
                        service: service.clone(),
                        name: m.name.clone(),
                        attrs: attrs(attributes),
                        value,
                    });
                };
                let number = |v: &Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsInt(i)) => *i as f64,
                    Some(number_data_point::Value::AsDouble(d)) => *d,
                    None => f64::NAN,
                };
                match &m.data {
                    Some(metric::Data::Sum(s)) => {
                        for p in &s.data_points {
                            push(&p.attributes, number(&p.value));
                        }
                    }
                    Some(metric::Data::Gauge(g)) => {
                        for p in &g.data_points {
                            push(&p.attributes, number(&p.value));
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in &h.data_points {
                            push(&p.attributes, p.count as f64);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(protobuf(
        ExportMetricsServiceResponse::default().encode_to_vec(),
    ))
}

/// Starts the receiver on its own thread and runtime; returns its address.
fn start_receiver(rx: Shared) -> SocketAddr {
    let (tx, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new()
                .route("/v1/traces", axum::routing::post(traces))
                .route("/v1/metrics", axum::routing::post(metrics))
                .with_state(rx);
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr.recv_timeout(Duration::from_secs(10)).unwrap()
}

fn write_files(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("report-{i}.json")),
            format!("{{\"n\": {i}}}"),
        )
        .unwrap();
    }
}

/// An agent config with one `dir` source; `otlp` adds the `otlp_endpoint` key.
fn agent_config(root: &Path, name: &str, url: &str, token: &str, otlp: Option<&str>) -> String {
    let data = root.join(format!("{name}-data"));
    let otlp = otlp.map_or(String::new(), |e| format!("otlp_endpoint: \"{e}\"\n"));
    format!(
        "version: 1\nagent: {{ id: {name} }}\nserver: {{ url: \"{url}\", token: \"{token}\" }}\n\
         spool_dir: \"{spool}\"\n{otlp}sources:\n  \
         - {{ id: {name}, type: dir, path: \"{data}\", system: demo, interval_secs: 60 }}\n",
        spool = root.join(format!("{name}-spool")).display(),
        data = data.display(),
    )
}

fn span<'a>(r: &'a Received, service: &str, name: &str, key: (&str, &str)) -> Option<&'a SpanSeen> {
    r.spans.iter().find(|s| {
        s.service == service
            && s.name == name
            && s.attrs.get(key.0).map(String::as_str) == Some(key.1)
    })
}

/// The newest value of a metric point with exactly these attributes.
fn point(r: &Received, service: &str, name: &str, attrs: &[(&str, &str)]) -> Option<f64> {
    let want: Attrs = attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    r.points
        .iter()
        .rev()
        .find(|p| p.service == service && p.name == name && p.attrs == want)
        .map(|p| p.value)
}

fn field<'a>(s: &'a SpanSeen, key: &str) -> &'a str {
    s.attrs.get(key).map_or("<missing>", String::as_str)
}

#[test]
fn traces_and_metrics_reach_an_otlp_receiver() {
    let received = Shared::default();
    let addr = start_receiver(received.clone());
    let endpoint = format!("http://{addr}");
    let tmp = tempfile::tempdir().unwrap();

    // The server reads `otlp_endpoint` from its settings file.
    let server_dir = tmp.path().join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let settings = server_dir.join("server.yaml");
    std::fs::write(&settings, format!("otlp_endpoint: \"{endpoint}\"\n")).unwrap();
    let database = format!("sqlite://{}", server_dir.join("aims.db").display());
    let settings_arg = settings.to_string_lossy().into_owned();
    let mut server = ServerProcess::start_with(
        &server_dir,
        &database,
        "127.0.0.1:0",
        &["--config", &settings_arg],
    )
    .unwrap();

    // Agent "exporter": endpoint in its config file, three files to ship.
    let token = server.token("agent", "exporter").unwrap();
    write_files(&tmp.path().join("exporter-data"), 3);
    let cfg = tmp.path().join("exporter.yaml");
    std::fs::write(
        &cfg,
        agent_config(tmp.path(), "exporter", &server.url, &token, Some(&endpoint)),
    )
    .unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(120)).unwrap();
    assert_eq!(run.code, Some(0), "agent failed: {}", run.stderr);

    // `once` exports before exiting: its span and metrics are already here.
    {
        let r = received.lock().unwrap();
        let cycle = span(&r, "aims-agent", "poll_cycle", ("collector.id", "exporter"))
            .unwrap_or_else(|| panic!("no poll_cycle span from the agent: {:#?}", r.spans));
        assert_eq!(field(cycle, "collector.kind"), "dir", "{cycle:?}");
        assert_eq!(field(cycle, "fetched"), "3", "{cycle:?}");
        assert_eq!(field(cycle, "spooled"), "3", "{cycle:?}");
        assert_eq!(field(cycle, "errors"), "0", "{cycle:?}");
        let agent_metric =
            |name: &str, attrs: &[(&str, &str)]| point(&r, "aims-agent", name, attrs);
        assert_eq!(
            agent_metric("aims_agent_records_shipped_total", &[]),
            Some(3.0),
            "{:#?}",
            r.points
        );
        assert_eq!(
            agent_metric(
                "aims_agent_artifacts_fetched_total",
                &[("source", "exporter")]
            ),
            Some(3.0)
        );
        assert!(
            agent_metric("aims_agent_bytes_hashed_total", &[("source", "exporter")])
                .is_some_and(|v| v > 0.0)
        );
        assert_eq!(
            agent_metric("aims_agent_poll_errors_total", &[("source", "exporter")]),
            Some(0.0)
        );
        assert_eq!(agent_metric("aims_agent_spool_depth", &[]), Some(0.0));
    }
    let agent_requests = received.lock().unwrap().requests.get("aims-agent").copied();

    // Agent "quiet": no endpoint anywhere (a blank OTEL_EXPORTER_OTLP_ENDPOINT counts as unset),
    // so nothing of it reaches the receiver. Its two records still reach the server.
    let token = server.token("agent", "quiet").unwrap();
    write_files(&tmp.path().join("quiet-data"), 2);
    let cfg = tmp.path().join("quiet.yaml");
    std::fs::write(
        &cfg,
        agent_config(tmp.path(), "quiet", &server.url, &token, None),
    )
    .unwrap();
    let run = agent_once(
        &cfg,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")],
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(run.code, Some(0), "agent failed: {}", run.stderr);
    {
        let r = received.lock().unwrap();
        assert_eq!(r.requests.get("aims-agent").copied(), agent_requests);
        assert!(
            span(&r, "aims-agent", "poll_cycle", ("collector.id", "quiet")).is_none(),
            "an agent without an endpoint exported spans"
        );
    }

    // The server exports on its schedule and on shutdown: stop it gracefully, then wait for
    // both ingest spans and the final counters (bounded).
    server.stop();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        {
            let r = received.lock().unwrap();
            let ingest = |agent: &str| span(&r, "aims-server", "ingest", ("agent", agent));
            let accepted = point(
                &r,
                "aims-server",
                "aims_evidence_records_accepted_total",
                &[],
            );
            if let (Some(a), Some(b), Some(5.0)) = (ingest("exporter"), ingest("quiet"), accepted) {
                for (s, n) in [(a, "3"), (b, "2")] {
                    assert_eq!(field(s, "records"), n, "{s:?}");
                    assert_eq!(field(s, "accepted"), n, "{s:?}");
                    assert_eq!(field(s, "duplicates"), "0", "{s:?}");
                    assert_eq!(field(s, "status"), "200", "{s:?}");
                }
                let server_metric =
                    |name: &str, attrs: &[(&str, &str)]| point(&r, "aims-server", name, attrs);
                assert_eq!(
                    server_metric("aims_ingest_requests_total", &[("status", "2xx")]),
                    Some(2.0),
                    "{:#?}",
                    r.points
                );
                assert_eq!(
                    server_metric("aims_evidence_records_duplicate_total", &[]),
                    Some(0.0)
                );
                // Histogram points carry their count.
                assert_eq!(
                    server_metric("aims_ingest_duration_seconds", &[]),
                    Some(2.0)
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server's ingest spans and metrics did not arrive within 15 s\n\
                 spans: {:#?}\npoints: {:#?}\nserver log:\n{}",
                r.spans,
                r.points
                    .iter()
                    .filter(|p| p.service == "aims-server")
                    .collect::<Vec<_>>(),
                server.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
