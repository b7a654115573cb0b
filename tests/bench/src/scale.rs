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

    let mut rng = Rng::new(42);
    type PathOf = fn(u64) -> String;
    let endpoints: [(&str, PathOf); 3] = [
        ("`GET /v1/systems` (JSON, every system)", |_| {
            "/v1/systems".to_owned()
        }),
        ("`GET /v1/systems/{id}/controls` (JSON)", |s| {
            format!("/v1/systems/sys-{s:04}/controls")
        }),
        ("`GET /systems/{id}` (dashboard page, HTML)", |s| {
            format!("/systems/sys-{s:04}")
        }),
    ];
    for (label, path) in &endpoints {
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
            .goal("p99 < 100 ms (issue 5)", p99 < Duration::from_millis(100)),
        );
    }
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
