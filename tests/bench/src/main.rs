//! `aims-bench`: the figures of BENCHMARKS.md, each measured next to a reference in the same run.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p aims-bench -- [--quick] [--out BENCHMARKS-results.md] [SUITE...]
//! ```
//!
//! Suites: `ledger-append`, `ledger-append-pg`, `proof-gen`, `verify`, `hash`, `repoll-git`,
//! `repoll-dir`, `confirm-git`, `confirm-s3`,
//! `rss`, `scale` (default: all, in that order). Every suite reports rows of (measurement, ours, reference, ratio, goal, met?);
//! the ratio is always "ours relative to the reference, in throughput terms": above 1 means ours
//! is faster (or smaller). A suite that fails reports its error as a row and the run goes on.
//! The `rss` suite runs the release binaries `aims-server` and `aims-agent` found next to this
//! executable, so build them first.

// Standard output is this command's interface: the results table (also written to --out).
#![allow(clippy::print_stdout)]

mod confirm;
mod hash;
mod ledger;
mod ledger_pg;
mod proofs;
mod repoll;
mod report;
mod rss;
mod scale;
mod util;
mod verify;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use report::{Results, Row};

/// Every suite, in the order they run.
const SUITES: [&str; 11] = [
    "ledger-append",
    "ledger-append-pg",
    "proof-gen",
    "verify",
    "hash",
    "repoll-git",
    "repoll-dir",
    "confirm-git",
    "confirm-s3",
    "rss",
    "scale",
];

/// Command-line options.
#[derive(Debug)]
struct Args {
    quick: bool,
    out: PathBuf,
    suites: Vec<String>,
    hash_bytes: Option<u64>,
}

const USAGE: &str = "usage: aims-bench [--quick] [--out FILE] [--hash-bytes N] [SUITE...]\n\
suites: ledger-append ledger-append-pg proof-gen verify hash repoll-git repoll-dir confirm-git confirm-s3 rss
scale
(default: all)";

fn parse_args() -> Result<Args> {
    let mut args = Args {
        quick: false,
        out: PathBuf::from("BENCHMARKS-results.md"),
        suites: Vec::new(),
        hash_bytes: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--out" => args.out = PathBuf::from(it.next().context("--out needs a file")?),
            "--hash-bytes" => {
                let v = it.next().context("--hash-bytes needs a number")?;
                args.hash_bytes = Some(v.parse().context("--hash-bytes: not a number")?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if SUITES.contains(&s) => {
                if !args.suites.iter().any(|x| x == s) {
                    args.suites.push(s.to_owned());
                }
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if args.suites.is_empty() {
        args.suites = SUITES.iter().map(|s| (*s).to_owned()).collect();
    } else {
        // Run in the canonical order (later suites reuse what earlier ones built).
        args.suites
            .sort_by_key(|s| SUITES.iter().position(|x| x == s).unwrap_or(usize::MAX));
    }
    Ok(args)
}

/// Sizes of one run (`--quick` shrinks the slow parts).
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Records appended in `ledger-append` (and exported in `verify`).
    pub ledger_records: u64,
    /// Leaves of the in-memory tree in `proof-gen`.
    pub memory_leaves: u64,
    /// Bytes of each file hashed in `hash` and `rss`.
    pub hash_bytes: u64,
    /// Files in the git repository of `repoll-git`.
    pub git_files: usize,
    /// Files in the directory of `repoll-dir`.
    pub dir_files: usize,
    /// Whether --quick was given.
    pub quick: bool,
}

impl Scale {
    fn new(args: &Args) -> Self {
        let mut s = if args.quick {
            Self {
                ledger_records: 20_000,
                memory_leaves: 200_000,
                hash_bytes: 256 << 20,
                git_files: 2_000,
                dir_files: 4_000,
                quick: true,
            }
        } else {
            Self {
                ledger_records: 100_000,
                memory_leaves: 1_000_000,
                hash_bytes: 2 << 30,
                git_files: 10_000,
                dir_files: 20_000,
                quick: false,
            }
        };
        if let Some(b) = args.hash_bytes {
            s.hash_bytes = b;
        }
        s
    }
}

/// What suites share: the scratch directory, the ledger built by `ledger-append` and the big
/// file written by `hash`.
pub struct Ctx {
    /// Scratch space, removed at exit.
    pub tmp: tempfile::TempDir,
    /// Sizes.
    pub scale: Scale,
    /// The SQLite ledger of `ledger-append`, once built.
    pub ledger: Option<ledger::Ledger>,
    /// The directories holding one big random file each (`hash`), once written.
    pub big_files: Vec<PathBuf>,
    /// A multi-threaded runtime with two workers (the machine has two cores).
    pub rt: tokio::runtime::Runtime,
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let scale = Scale::new(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    // Scratch on the same disk as the workspace target (not tmpfs), so file IO is real IO.
    let base = std::env::var_os("AIMS_BENCH_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("aims-bench-")
        .tempdir_in(&base)
        .context("creating the scratch directory")?;
    let mut ctx = Ctx {
        tmp,
        scale,
        ledger: None,
        big_files: Vec::new(),
        rt,
    };
    let mut results = Results::new(&args.suites, scale);
    eprintln!(
        "aims-bench: suites {:?}{}; scratch {}",
        args.suites,
        if scale.quick { " (--quick)" } else { "" },
        ctx.tmp.path().display()
    );
    for suite in &args.suites {
        eprintln!("==> {suite}");
        let started = std::time::Instant::now();
        let rows: Result<Vec<Row>> = match suite.as_str() {
            "ledger-append" => ledger::run(&mut ctx),
            "ledger-append-pg" => ledger_pg::run(&mut ctx),
            "proof-gen" => proofs::run(&mut ctx),
            "verify" => verify::run(&mut ctx),
            "hash" => hash::run(&mut ctx),
            "repoll-git" => repoll::run(&mut ctx),
            "repoll-dir" => repoll::run_dir(&mut ctx),
            "confirm-git" => confirm::run(&mut ctx),
            "confirm-s3" => confirm::run_s3(&mut ctx),
            "rss" => rss::run(&mut ctx),
            "scale" => scale::run(&mut ctx),
            other => Err(anyhow::anyhow!("unknown suite {other}")),
        };
        let rows = rows.unwrap_or_else(|e| {
            eprintln!("    {suite} failed: {e:#}");
            vec![Row::error(suite, format!("{e:#}"))]
        });
        for r in &rows {
            eprintln!("    {}", r.plain());
        }
        results.add(suite, rows, started.elapsed());
        // Write after every suite so an interrupted run keeps what it measured.
        std::fs::write(&args.out, results.markdown())
            .with_context(|| format!("writing {}", args.out.display()))?;
    }
    if let Some(l) = ctx.ledger.take() {
        ctx.rt.block_on(l.close());
    }
    let md = results.markdown();
    std::fs::write(&args.out, &md).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{md}");
    eprintln!("aims-bench: results written to {}", args.out.display());
    Ok(())
}
