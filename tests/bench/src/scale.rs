//! `scale`: the read side at 1M records across 1k AI systems (100k across 100 with `--quick`).
//! The ledger is built through `Store::ingest` (timed: ingest throughput on a large ledger), then
//! the release `aims-server` serves it and plain HTTP/1.1 GETs time `/v1/systems`, one system's
//! `/v1/systems/{id}/controls` and its dashboard page, each request on a fresh connection.
//! The server's RSS is read afterwards.

use aims_store::LedgerStore;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use aims_model::Timestamp;

use crate::Ctx;
use crate::ledger::{BATCH, open, records_in};
use crate::report::Row;
use crate::rss::{start_server, token_for};
use crate::util::{Rng, fmt_dur, fmt_kib, fmt_rate, group, proc_status_kib};

const SUITE: &str = "scale";
/// Timed requests per endpoint.
const REQUESTS: usize = 200;

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    let (n, systems) = if ctx.scale.quick {
        (100_000, 100)
    } else {
        (1_000_000, 1_000)
    };
    let dir = ctx.tmp.path().join("scale");
    let (url, store, keys) = ctx.rt.block_on(open(&dir))?;
    let mut rows = Vec::new();
    let started = Instant::now();
    for (i, chunk) in records_in(n, systems)?.chunks(BATCH).enumerate() {
        ctx.rt
            .block_on(store.ingest("bench-agent", chunk, Timestamp::now(), keys.as_ref()))?;
        if i % 200 == 199 {
            eprintln!("    {} records ingested", group(((i + 1) * BATCH) as u64));
        }
    }
    let took = started.elapsed();
    ctx.rt.block_on(store.close());
    rows.push(
        Row::new(
            SUITE,
            format!(
                "ingest {} records across {} systems, `Store::ingest` of {BATCH} (SQLite), into a growing ledger",
                group(n),
                group(systems)
            ),
            format!("{} ({})", fmt_rate(n as f64 / took.as_secs_f64(), "records"), fmt_dur(took)),
        )
        .goal(
            "≥ 20,000 records/s (issue 5)",
            n as f64 / took.as_secs_f64() >= 20_000.0,
        ),
    );

    let viewer = token_for(&url, "viewer", "bench-viewer")?;
    let (mut server, base) = start_server(&dir.join("server"), &url)?;
    let addr = base
        .strip_prefix("http://")
        .context("server URL without http://")?
        .to_owned();
    // A server that starts on a ledger assesses every system once (the periodic pass); until
    // it is through, `/v1/systems` lists the systems done so far. Wait for all of them.
    let t = Instant::now();
    let mut first = None;
    loop {
        let (status, body) = get_body(&addr, "/v1/systems", &viewer)?;
        if status != 200 {
            bail!("GET /v1/systems answered {status}");
        }
        first.get_or_insert(t.elapsed());
        let listed = body.matches("\"id\"").count() as u64;
        if listed >= systems {
            break;
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!("only {listed} of {systems} systems assessed after 30 min");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let pass = t.elapsed();
    rows.push(Row::new(
        SUITE,
        format!(
            "start on the ledger: first `GET /v1/systems` / all {} systems assessed by the start-up pass",
            group(systems)
        ),
        format!("{} / {}", fmt_dur(first.unwrap_or_default()), fmt_dur(pass)),
    ));

    // The server then materialises every system's history in the background (issue 13).
    let t = Instant::now();
    loop {
        let (status, body) = get_body(&addr, "/metrics", &viewer)?;
        if status != 200 {
            bail!("GET /metrics answered {status}");
        }
        let held: u64 = body
            .lines()
            .find_map(|l| l.strip_prefix("aims_timeline_systems "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if held >= systems {
            let changes = body
                .lines()
                .find_map(|l| l.strip_prefix("aims_timeline_changes "))
                .unwrap_or("?")
                .trim()
                .to_owned();
            rows.push(Row::new(
                SUITE,
                format!(
                    "history of all {} systems materialised in the background after the start-up pass (status changes held)",
                    group(systems)
                ),
                format!("{} ({changes} changes)", fmt_dur(t.elapsed())),
            ));
            break;
        }
        if t.elapsed() > Duration::from_secs(3600) {
            bail!("only {held} of {systems} timelines built after 60 min");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let auditor = token_for(&url, "auditor", "bench-auditor")?;
    let now = Timestamp::now();
    let days_ago = |d: i64| {
        now.checked_add_millis(-d * 86_400_000)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let (year, quarter) = (days_ago(365), days_ago(91));

    let mut rng = Rng::new(42);
    let page = |label: &str, path: fn(u64) -> String| Endpoint {
        label: label.to_owned(),
        path: Box::new(path),
        goal: ("p99 < 100 ms (issues 5, 16)", Duration::from_millis(100)),
    };
    let all = vec![
        page("`GET /v1/systems` (JSON, every system)", |_| {
            "/v1/systems".to_owned()
        }),
        page("`GET /v1/systems/{id}/controls` (JSON)", |s| {
            format!("/v1/systems/sys-{s:04}/controls")
        }),
        // History over a year for one system (issue 13: p99 < 50 ms), beside the current
        // status of a system (the row above, the reference).
        Endpoint {
            label: "`GET /v1/systems/{id}/history?from=<365 days ago>` (JSON)".to_owned(),
            path: Box::new(move |s| format!("/v1/systems/sys-{s:04}/history?from={year}")),
            goal: ("p99 < 50 ms (issue 13)", Duration::from_millis(50)),
        },
        page("`GET /systems/{id}` (dashboard page, HTML)", |s| {
            format!("/systems/sys-{s:04}")
        }),
        page(
            "`GET /` (dashboard grid with the 90-day trends, HTML)",
            |_| "/".to_owned(),
        ),
        page(
            "`GET /systems/{id}/controls/A.6.2.4` (drill-down with the history strip, HTML)",
            |s| format!("/systems/sys-{s:04}/controls/A.6.2.4"),
        ),
        page(
            "`GET /controls/A.6.2.4` (one control across every system, HTML)",
            |_| "/controls/A.6.2.4".to_owned(),
        ),
        page("`GET /sources` (HTML)", |_| "/sources".to_owned()),
    ];
    for Endpoint { label, path, goal } in &all {
        let mut lat = Vec::with_capacity(REQUESTS);
        let mut bytes = 0;
        for _ in 0..REQUESTS {
            let p = path(rng.below(systems));
            let t = Instant::now();
            let (status, len) = get(&addr, &p, &viewer)?;
            lat.push(t.elapsed());
            if status != 200 {
                bail!("GET {p} answered {status}");
            }
            bytes = len;
        }
        lat.sort();
        let p50 = lat[lat.len() / 2];
        let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
        rows.push(
            Row::new(
                SUITE,
                format!(
                    "{label} at {} records / {} systems: p50 / p99 of {REQUESTS} ({} KiB response)",
                    group(n),
                    group(systems),
                    bytes / 1024
                ),
                format!("{} / {}", fmt_dur(p50), fmt_dur(p99)),
            )
            .goal(goal.0, p99 < goal.1),
        );
    }
    // The period report of every system over a quarter (issue 13: < 5 s, bounded memory), and
    // the auditor's page that shows it.
    let before = proc_status_kib(server.pid(), "VmRSS")?;
    for (label, path, token) in [
        (
            "`GET /v1/report?from=<91 days ago>` (JSON, every system × control)",
            format!("/v1/report?from={quarter}"),
            &viewer,
        ),
        (
            "`GET /audit?from=<91 days ago>` (auditor workspace with the period report, HTML)",
            format!("/audit?from={}", &quarter[..10]),
            &auditor,
        ),
    ] {
        let mut worst = Duration::ZERO;
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let (status, len) = get(&addr, &path, token)?;
            worst = worst.max(t.elapsed());
            if status != 200 {
                bail!("GET {path} answered {status}");
            }
            bytes = len;
        }
        rows.push(
            Row::new(
                SUITE,
                format!(
                    "{label} at {} records / {} systems: worst of 5 ({} KiB response)",
                    group(n),
                    group(systems),
                    bytes / 1024
                ),
                fmt_dur(worst),
            )
            .goal("< 5 s (issue 13)", worst < Duration::from_secs(5)),
        );
    }
    let after = proc_status_kib(server.pid(), "VmHWM")?;
    rows.push(Row::new(
        SUITE,
        "server RSS before the reports / peak after them".to_owned(),
        format!("{} / {}", fmt_kib(before), fmt_kib(after)),
    ));
    let rss = proc_status_kib(server.pid(), "VmRSS")?;
    let hwm = proc_status_kib(server.pid(), "VmHWM")?;
    server.stop();
    rows.push(Row::new(
        SUITE,
        format!(
            "`aims-server serve` RSS at {} records after the requests above (peak)",
            group(n)
        ),
        format!("{} (peak {})", fmt_kib(rss), fmt_kib(hwm)),
    ));
    Ok(rows)
}

/// A page or API route timed at scale.
struct Endpoint {
    label: String,
    path: Box<dyn Fn(u64) -> String>,
    /// The goal's text and the p99 it sets.
    goal: (&'static str, Duration),
}

/// One HTTP/1.1 GET on a fresh connection; returns the status and the body's length.
fn get(addr: &str, path: &str, token: &str) -> Result<(u16, usize)> {
    let (status, body) = get_body(addr, path, token)?;
    Ok((status, body.len()))
}

/// One HTTP/1.1 GET on a fresh connection; returns the status and the body.
fn get_body(addr: &str, path: &str, token: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nCookie: aims_token={token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without a header end")?;
    let status = std::str::from_utf8(&buf[..head_end])?
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("response without a status code")?;
    Ok((
        status,
        String::from_utf8_lossy(&buf[head_end + 4..]).into_owned(),
    ))
}
