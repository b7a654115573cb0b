//! The `aims-agent` binary: `once`, `run` and `validate` (DESIGN §7).
//!
//! Exit codes: 0 success; 1 a source failed or evidence remains unshipped (`once`), or the agent
//! failed at run time; 2 the configuration is invalid or the command line is wrong.

// Standard output is this command's interface (validate's verdict).
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use aims_agent::{AgentConfig, RetryPolicy, RunOptions};
use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

/// Continuous compliance evidence for ISO/IEC 42001: polls sources of AI-lifecycle artifacts,
/// hashes them and ships evidence records to the aims-server collector.
///
/// Configuration comes from a YAML or TOML file (`version: 1`), overridden by
/// `AIMS_AGENT__*` environment variables such as `AIMS_AGENT__SERVER__URL` and
/// `AIMS_AGENT__SERVER__TOKEN`. Logs go to stderr; `RUST_LOG` selects levels. Traces and metrics
/// are exported over OTLP/HTTP when an endpoint is set (`--otlp-endpoint`, the config's
/// `otlp_endpoint`, or `OTEL_EXPORTER_OTLP_ENDPOINT`, in that order).
#[derive(Debug, Parser)]
#[command(
    name = "aims-agent",
    version,
    after_help = "Exit codes: 0 success; 1 a source failed or evidence remains unshipped; 2 invalid configuration or usage."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    /// OTLP/HTTP base URL (e.g. http://127.0.0.1:4318) to export traces and metrics to;
    /// overrides the config's `otlp_endpoint` and OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, value_name = "URL", global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll every source once, spool the evidence and ship everything pending.
    ///
    /// Prints one summary line per source on stderr. Exits 0 only when every record was
    /// acknowledged by the server; 1 when a source failed or records remain in the spool
    /// (they are shipped by the next run).
    Once {
        /// Agent configuration file (.yaml, .yml or .toml).
        #[arg(long, short)]
        config: PathBuf,
        /// Delivery attempts per batch before giving up for this run.
        #[arg(long, default_value_t = 6)]
        max_attempts: u32,
        /// Time budget for retrying deliveries, in seconds.
        #[arg(long, default_value_t = 120)]
        ship_deadline_secs: u64,
    },
    /// Keep polling every source on its interval and ship continuously until Ctrl-C or SIGTERM.
    Run {
        /// Agent configuration file (.yaml, .yml or .toml).
        #[arg(long, short)]
        config: PathBuf,
        /// How often the shipper retries pending batches on its own, in seconds.
        #[arg(long, default_value_t = 30)]
        ship_interval_secs: u64,
    },
    /// Inspect the spool, or offer rejected batches to the server again.
    Spool {
        #[command(subcommand)]
        action: SpoolAction,
    },
    /// Check the configuration file and build every source, without contacting any source.
    ///
    /// Refuses exactly what `once` and `run` would refuse at start-up: unknown keys, bad values,
    /// and sources that cannot be built (a missing token file, an S3 source without a region).
    /// Prints `config ok: N sources` on success; exits 2 with the error otherwise.
    Validate {
        /// Agent configuration file (.yaml, .yml or .toml).
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SpoolAction {
    /// List the pending and the rejected batches, with their record counts and, for rejected
    /// ones, why the server refused them.
    List {
        /// Agent configuration file (.yaml, .yml or .toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Move every batch in `spool/rejected/` back to the pending spool; the next `once` or `run`
    /// offers it to the server again. Prints how many were moved.
    Retry {
        /// Agent configuration file (.yaml, .yml or .toml).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Spool { action } => {
            if let Err(code) = telemetry(cli.log_format, None) {
                return code;
            }
            let config = match &action {
                SpoolAction::List { config } | SpoolAction::Retry { config } => config,
            };
            let cfg = match load(config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            report_result(spool_command(&cfg, &action))
        }
        Command::Validate { config } => {
            if let Err(code) = telemetry(cli.log_format, None) {
                return code;
            }
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            // Build every source as `once` would, so a type or setting that parses but cannot
            // run is refused here and not at 3 a.m.
            let built = runtime().and_then(|rt| {
                rt.block_on(async {
                    let mut errors = Vec::new();
                    for s in &cfg.sources {
                        if let Err(e) =
                            aims_agent::sources::build_collector(s, &cfg.cache_path(s.id())).await
                        {
                            errors.push(e.to_string());
                        }
                    }
                    Ok(errors)
                })
            });
            match built {
                Ok(errors) if errors.is_empty() => {
                    println!("config ok: {} sources", cfg.sources.len());
                    ExitCode::SUCCESS
                }
                Ok(errors) => {
                    for e in errors {
                        eprintln!("error: invalid configuration: {}: {e}", cfg.file.display());
                    }
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Once {
            config,
            max_attempts,
            ship_deadline_secs,
        } => {
            let (cfg, guard) = match start(cli.log_format, &cli.otlp_endpoint, &config) {
                Ok(started) => started,
                Err(code) => return code,
            };
            let opts = RunOptions {
                retry: RetryPolicy {
                    max_attempts,
                    deadline: Some(Duration::from_secs(ship_deadline_secs)),
                    ..RetryPolicy::default()
                },
                meter: guard.meter(),
                ..RunOptions::default()
            };
            let code = report_result(runtime().and_then(|rt| rt.block_on(once(&cfg, &opts))));
            // Exports the spans and metrics of this run before the process exits.
            drop(guard);
            code
        }
        Command::Run {
            config,
            ship_interval_secs,
        } => {
            let (cfg, guard) = match start(cli.log_format, &cli.otlp_endpoint, &config) {
                Ok(started) => started,
                Err(code) => return code,
            };
            let opts = RunOptions {
                ship_interval: Duration::from_secs(ship_interval_secs.max(1)),
                meter: guard.meter(),
                ..RunOptions::default()
            };
            let res = runtime().and_then(|rt| {
                rt.block_on(async {
                    aims_agent::run(&cfg, &opts, shutdown_signal())
                        .await
                        .context("agent failed")?;
                    Ok(true)
                })
            });
            let code = report_result(res);
            drop(guard);
            code
        }
    }
}

/// `spool list` and `spool retry`.
fn spool_command(cfg: &AgentConfig, action: &SpoolAction) -> anyhow::Result<bool> {
    use aims_agent::Spool;
    let dir = cfg.spool_path();
    let spool = Spool::open_existing(&dir)
        .with_context(|| format!("no spool at {} (has the agent run yet?)", dir.display()))?;
    match action {
        SpoolAction::Retry { .. } => {
            let moved = spool.retry_rejected().context("moving rejected batches")?;
            println!(
                "moved {} rejected batches back to the spool ({})",
                moved.len(),
                dir.display()
            );
        }
        SpoolAction::List { .. } => {
            let describe = |p: &Path| match spool.read(p) {
                Ok(b) => format!("{} records", b.records.len()),
                Err(e) => format!("unreadable: {e}"),
            };
            let name = |p: &Path| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let pending = spool.pending().context("listing the spool")?;
            for p in &pending {
                println!("pending   {}  {}", name(p), describe(p));
            }
            let rejected = spool.rejected().context("listing rejected batches")?;
            for p in &rejected {
                let mut reason_path = p.clone().into_os_string();
                reason_path.push(".reason");
                let reason = std::fs::read_to_string(&reason_path)
                    .ok()
                    .and_then(|r| r.lines().next().map(str::to_owned))
                    .unwrap_or_else(|| "(no reason recorded)".into());
                println!("rejected  {}  {}: {reason}", name(p), describe(p));
            }
            println!(
                "{} pending batches ({} bytes), {} rejected batches",
                pending.len(),
                spool.pending_bytes().unwrap_or(0),
                rejected.len()
            );
        }
    }
    Ok(true)
}

/// Loads and validates the configuration; when it is invalid, says why (exit code 2).
fn load(path: &Path) -> Result<AgentConfig, ExitCode> {
    AgentConfig::load_and_validate(path).map_err(|e| {
        eprintln!("error: invalid configuration: {e}");
        ExitCode::from(2)
    })
}

/// For the commands that poll: the configuration, then logging and OTLP export as it asks.
fn start(
    format: LogFormat,
    otlp_flag: &Option<String>,
    config: &Path,
) -> Result<(AgentConfig, aims_telemetry::TelemetryGuard), ExitCode> {
    let cfg = load(config)?;
    let guard = telemetry(format, otlp_endpoint(otlp_flag, &cfg))?;
    Ok((cfg, guard))
}

fn report_result(res: anyhow::Result<bool>) -> ExitCode {
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Runs one cycle and prints the summary; `Ok(true)` when everything was acknowledged.
async fn once(cfg: &AgentConfig, opts: &RunOptions) -> anyhow::Result<bool> {
    // On a terminal, a progress line for long scans; nothing when stderr is a file or pipe.
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        tokio::spawn(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tick.tick().await;
                let (files, bytes) = aims_collect::progress::snapshot();
                if files > 0 || bytes > 0 {
                    eprint!(
                        "\r  fetched {files} artifacts, hashed {:.1} MiB   ",
                        bytes as f64 / 1048576.0
                    );
                }
            }
        })
    });
    let result = aims_agent::run_once(cfg, opts).await;
    if let Some(p) = progress {
        p.abort();
        if aims_collect::progress::snapshot() != (0, 0) {
            eprintln!();
        }
    }
    let report = result.with_context(|| format!("agent run failed ({})", cfg.file.display()))?;
    for s in &report.sources {
        eprintln!("{}", aims_agent::runner::summary_line(s));
    }
    let ship = &report.ship;
    eprintln!(
        "shipped {} records in {} batches ({} duplicates), {} batches rejected, {} batches remaining",
        ship.records_acked,
        ship.files_acked,
        ship.duplicates,
        ship.files_rejected,
        ship.files_remaining
    );
    for e in &ship.errors {
        eprintln!("error: {e}");
    }
    Ok(report.success())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The OTLP endpoint: the flag, else the config's `otlp_endpoint`, else
/// OTEL_EXPORTER_OTLP_ENDPOINT.
fn otlp_endpoint(flag: &Option<String>, cfg: &AgentConfig) -> Option<String> {
    aims_telemetry::resolve_endpoint(flag.as_deref(), cfg.otlp_endpoint.as_deref())
}

/// Installs logging (and OTLP export when `otlp_endpoint` is set); exit code 2 when it cannot.
fn telemetry(
    format: LogFormat,
    otlp_endpoint: Option<String>,
) -> Result<aims_telemetry::TelemetryGuard, ExitCode> {
    // Quiet by default (the per-source summary is the output of `once`); RUST_LOG=info or
    // debug for detail. Exported spans are `info` and above whatever RUST_LOG says.
    let mut opts = aims_telemetry::TelemetryOptions::new("aims-agent", "warn");
    opts.service_version = env!("CARGO_PKG_VERSION");
    opts.log_format = match format {
        LogFormat::Human => aims_telemetry::LogFormat::Human,
        LogFormat::Json => aims_telemetry::LogFormat::Json,
    };
    opts.otlp_endpoint = otlp_endpoint;
    aims_telemetry::init(&opts).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}
