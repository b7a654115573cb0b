//! `aims-server`: the collector's command line (DESIGN §7).

// Standard output is this command's interface (addresses, tokens, summaries).
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use aims_model::Timestamp;
use aims_server::{Server, Settings, auth};
use aims_store::{NewToken, Role};

/// The aims-evidence collector: ingests evidence from agents into a tamper-evident ledger,
/// assesses ISO/IEC 42001 Annex A controls and serves the dashboard, API and auditor proofs.
#[derive(Debug, Parser)]
#[command(name = "aims-server", version, about, long_about = None)]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// OTLP/HTTP base URL (e.g. http://127.0.0.1:4318) to export traces and metrics to when
    /// serving; overrides the `otlp_endpoint` setting and OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, global = true, value_name = "URL")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Where the settings come from; flags override the file and the environment.
#[derive(Debug, Args)]
struct Common {
    /// Settings file (YAML or TOML); `AIMS_SERVER__*` environment variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default sqlite://aims.db).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

impl Common {
    fn settings(&self) -> Result<Settings> {
        let mut s = Settings::load(self.config.as_deref())?;
        if let Some(db) = &self.database {
            s.database = db.clone();
        }
        s.validate()?;
        Ok(s)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and dashboard. Prints `listening on http://ADDR` once bound.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (127.0.0.1:0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Catalog directory overriding the embedded one.
        #[arg(long, value_name = "DIR")]
        catalog: Option<PathBuf>,
    },
    /// Manage bearer tokens (stored only as SHA-256 hashes).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show the ledger's public keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write an auditor's bundle (the same as GET /v1/export) without the HTTP server.
    Export {
        #[command(flatten)]
        common: Common,
        /// Where to write the bundle (bundle.tar.gz).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only this AI system's evidence (a partial export).
        #[arg(long, value_name = "ID")]
        system: Option<String>,
        /// Include the consistency proof from this earlier tree size.
        #[arg(long, value_name = "SIZE")]
        since: Option<u64>,
        /// Audit period start (RFC 3339 UTC): the bundle then carries `report/period.json`,
        /// which aims-verify recomputes.
        #[arg(long, value_name = "TIME", requires = "to")]
        from: Option<String>,
        /// Audit period end (exclusive; capped at the checkpoint's time).
        #[arg(long, value_name = "TIME", requires = "from")]
        to: Option<String>,
        /// Catalog directory overriding the embedded one.
        #[arg(long, value_name = "DIR")]
        catalog: Option<PathBuf>,
        /// Also a receipt (inclusion proof) per entry in a full export; a full export needs
        /// none (the verifier recomputes the root), partial exports always carry them.
        #[arg(long)]
        receipts: bool,
        /// Leave out the bytes of uploaded documents (`blobs/`); their records stay.
        #[arg(long)]
        no_blobs: bool,
    },
    /// The statement of applicability: which Annex A controls do not apply to an AI system, and
    /// why (each change is a ledger record; as PUT/GET /v1/systems/{id}/applicability).
    #[command(subcommand)]
    Applicability(ApplicabilityCommand),
    /// Notifications (DESIGN §12.4): check the `notifications:` sinks of a settings file.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Print the period report: per AI system and control, the share of the period the control
    /// was fresh, its worst status and every gap with its reason (as GET /v1/report).
    Report {
        #[command(flatten)]
        common: Common,
        /// Period start (RFC 3339 UTC, inclusive).
        #[arg(long, value_name = "TIME")]
        from: String,
        /// Period end (exclusive; default now).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Only this AI system.
        #[arg(long, value_name = "ID")]
        system: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
    },
}

/// `aims-server report --format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ReportFormat {
    /// JSON, as GET /v1/report.
    Json,
    /// One row per system × control.
    Csv,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it on stdout (it is not shown again).
    ///
    /// An agent token is bound to the agent ID equal to its name unless `--agent-id` names
    /// another or `--any-agent` lifts the binding; `--source` and `--system` narrow it further.
    Create {
        /// agent (writes evidence), viewer (reads), auditor (reads and exports), admin.
        #[arg(long, value_parser = ["agent", "viewer", "auditor", "admin"])]
        role: String,
        /// A name for the token (for agents, the agent's id).
        #[arg(long)]
        name: String,
        /// Expire after this many days, at least 1 (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        expires_days: Option<u32>,
        /// Agent tokens: accept only records whose `agent` is this ID (403 otherwise). Default:
        /// the token's name.
        #[arg(long, value_name = "ID", conflicts_with = "any_agent")]
        agent_id: Option<String>,
        /// Agent tokens: accept records from any agent ID (no binding; not recommended).
        #[arg(long)]
        any_agent: bool,
        /// Agent tokens: accept only records from these source IDs (repeat, or separate with
        /// commas; 403 otherwise). Default: any source.
        #[arg(long = "source", value_name = "ID", value_delimiter = ',')]
        sources: Vec<String>,
        /// Agent tokens: accept only records about these AI systems (repeat, or separate with
        /// commas; 403 otherwise). Default: any system.
        #[arg(long = "system", value_name = "ID", value_delimiter = ',')]
        systems: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke every token with this name.
    Revoke {
        /// The token name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Send one `test` event to every configured sink and print each result (exit 1 when any
    /// sink did not take it). Nothing is written to the database.
    Test {
        /// Settings file with the `notifications:` list (and `notify:` knobs).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ApplicabilityCommand {
    /// Declare a control not applicable to a system (with a justification), or applicable again.
    ///
    /// Example: aims-server applicability set --system fraud-scoring --control A.10.3
    ///   --not-applicable --justification "in-house model, no third-party suppliers"
    Set {
        /// The AI system.
        #[arg(long, value_name = "ID")]
        system: String,
        /// The Annex A control (repeat, or separate with commas, for several).
        #[arg(
            long,
            value_name = "ID",
            value_delimiter = ',',
            required_unless_present = "group"
        )]
        control: Vec<String>,
        /// Every control of an Annex A objective, such as A.10 (repeat or comma-separate for
        /// several); a control also named with --control gets the same decision.
        #[arg(long, value_name = "ID", value_delimiter = ',')]
        group: Vec<String>,
        /// The control does not apply (the default is: it applies again).
        #[arg(long)]
        not_applicable: bool,
        /// Why (required with --not-applicable; kept in the ledger).
        #[arg(long, value_name = "TEXT", default_value = "")]
        justification: String,
        /// Who decides, as recorded in the ledger (default: cli:$USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the decisions in force for a system (JSON, as GET .../applicability).
    Show {
        /// The AI system.
        #[arg(long, value_name = "ID")]
        system: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print the trust policy (C2SP tlog-policy lines) that `aims-verify --trust` reads.
    Show {
        #[command(flatten)]
        common: Common,
    },
}

/// Installs logging, and OTLP export of traces and metrics when `otlp_endpoint` is set.
fn telemetry(
    format: LogFormat,
    otlp_endpoint: Option<String>,
) -> Result<aims_telemetry::TelemetryGuard> {
    const FILTER: &str = "info,sqlx=warn,tower_http=warn";
    let mut opts = aims_telemetry::TelemetryOptions::new("aims-server", FILTER);
    opts.service_version = env!("CARGO_PKG_VERSION");
    opts.log_format = match format {
        LogFormat::Human => aims_telemetry::LogFormat::Human,
        LogFormat::Json => aims_telemetry::LogFormat::Json,
    };
    opts.otlp_endpoint = otlp_endpoint;
    opts.otlp_filter = FILTER.to_owned();
    Ok(aims_telemetry::init(&opts)?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // `serve` installs logging once its settings (which may name an OTLP endpoint) are read.
    let _logging = match cli.command {
        Command::Serve { .. } => None,
        _ => Some(telemetry(cli.log_format, None)?),
    };
    match cli.command {
        Command::Serve {
            common,
            listen,
            catalog,
        } => {
            let mut settings = common.settings()?;
            if let Some(l) = listen {
                settings.listen = l;
            }
            if let Some(c) = catalog {
                settings.catalog_dir = Some(c);
            }
            let endpoint = aims_telemetry::resolve_endpoint(
                cli.otlp_endpoint.as_deref(),
                settings.otlp_endpoint.as_deref(),
            );
            let telemetry = telemetry(cli.log_format, endpoint)?;
            let server = Server::build(settings)
                .await
                .context("starting the server")?;
            if let Some(meter) = telemetry.meter() {
                aims_server::metrics::register_otel(&meter, server.state().metrics.clone());
            }
            let listener = server.bind().await?;
            let addr = listener.local_addr().context("reading the bound address")?;
            println!("listening on {}://{addr}", server.scheme());
            tracing::info!(%addr, "listening");
            server.serve(listener, shutdown_signal()).await?;
            // Export what is pending; the shutdown blocks, so off the async workers.
            let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
        }
        Command::Token(TokenCommand::Create {
            role,
            name,
            expires_days,
            agent_id,
            any_agent,
            sources,
            systems,
            common,
        }) => {
            let settings = common.settings()?;
            let role = Role::parse(&role).context("unknown role")?;
            aims_model::record::validate_ident("name", &name).context("invalid token name")?;
            if (agent_id.is_some() || any_agent || !sources.is_empty() || !systems.is_empty())
                && role != Role::Agent
            {
                anyhow::bail!(
                    "--agent-id, --any-agent, --source and --system only apply to agent tokens"
                );
            }
            if let Some(a) = &agent_id {
                aims_model::record::validate_ident("agent-id", a).context("invalid --agent-id")?;
            }
            for s in &sources {
                aims_model::record::validate_ident("source", s).context("invalid --source")?;
            }
            for s in &systems {
                aims_model::record::validate_ident("system", s).context("invalid --system")?;
            }
            // Agent tokens are bound to their own name unless told otherwise (issue 18 M4).
            let agent_id = match role {
                Role::Agent if !any_agent => Some(agent_id.unwrap_or_else(|| name.clone())),
                _ => None,
            };
            let scope = aims_store::TokenScope {
                agent_id,
                sources: (!sources.is_empty()).then_some(sources),
                systems: (!systems.is_empty()).then_some(systems),
            };
            let store = aims_server::open_store(&settings.database).await?;
            let token = auth::generate_token()
                .map_err(|e| anyhow::anyhow!("generating random bytes: {e}"))?;
            let now = Timestamp::now();
            let expires_at = expires_days.map(|d| {
                Timestamp::from_datetime(now.as_datetime() + chrono::Duration::days(i64::from(d)))
            });
            store
                .create_token(&NewToken {
                    name,
                    role,
                    token_hash: auth::token_hash(&token),
                    created_at: now,
                    expires_at,
                    scope,
                })
                .await
                .context("storing the token")?;
            println!("{token}");
        }
        Command::Token(TokenCommand::Revoke { name, common }) => {
            let settings = common.settings()?;
            let store = aims_server::open_store(&settings.database).await?;
            let now = Timestamp::now();
            let n = store.revoke_tokens(&name, now).await?;
            // Sessions end with their token anyway (they are checked against it); this records
            // it on the sessions too, including those of tokens revoked earlier.
            let sessions = store.revoke_sessions(&name, now).await?;
            if n == 0 {
                anyhow::bail!("no token named {name} to revoke (unknown, or already revoked)");
            }
            eprintln!("revoked {n} token(s) named {name} and {sessions} dashboard session(s)");
        }
        Command::Applicability(ApplicabilityCommand::Set {
            system,
            control,
            group,
            not_applicable,
            justification,
            by,
            common,
        }) => {
            let settings = common.settings()?;
            let by = match by {
                Some(b) => b,
                None => std::env::var("USER")
                    .ok()
                    .map(|u| format!("cli:{u}"))
                    .filter(|b| aims_model::record::validate_ident("by", b).is_ok())
                    .unwrap_or_else(|| "cli".to_owned()),
            };
            aims_model::record::validate_ident("by", &by).context("invalid --by")?;
            let decision = aims_model::applicability::Applicability {
                applicable: !not_applicable,
                justification,
            };
            let state = aims_server::export::open_state(&settings).await?;
            let pick = |ids: Vec<String>| -> std::collections::BTreeMap<_, _> {
                ids.into_iter().map(|c| (c, decision.clone())).collect()
            };
            let decisions = aims_server::applicability::expand_groups(
                &state.catalog,
                &pick(control),
                &pick(group),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let out = aims_server::applicability::set_statements(
                &state,
                &by,
                &system,
                &decisions,
                Timestamp::now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!(
                "{} statement(s) written for {system} and its status re-assessed",
                out.written.len()
            );
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Notify(NotifyCommand::Test { config }) => {
            let settings = Settings::load(Some(&config))
                .with_context(|| format!("reading {}", config.display()))?;
            let Some(notifier) = aims_server::notify::Notifier::from_settings(&settings)? else {
                anyhow::bail!("{} configures no notifications", config.display());
            };
            let mut failed = 0;
            for (name, kind, outcome) in notifier.test_all().await {
                let (label, detail) = match &outcome {
                    aims_notify::Outcome::Delivered { detail } => ("ok", detail.clone()),
                    aims_notify::Outcome::Retry { reason, .. } => {
                        failed += 1;
                        ("retry", reason.clone())
                    }
                    aims_notify::Outcome::Failed { reason } => {
                        failed += 1;
                        ("failed", reason.clone())
                    }
                };
                println!("{name} ({kind}): {label}: {detail}");
            }
            if failed > 0 {
                anyhow::bail!("{failed} sink(s) did not take the test event");
            }
        }
        Command::Applicability(ApplicabilityCommand::Show { system, common }) => {
            let settings = common.settings()?;
            let state = aims_server::export::open_state(&settings).await?;
            let out = aims_server::applicability::statements(&state, &system)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Keys(KeysCommand::Show { common }) => {
            let settings = common.settings()?;
            let keys =
                aims_server::keys::LogKeys::load_or_create(&settings.keys_dir(), &settings.origin)?;
            print!("{}", keys.trust_policy());
        }
        Command::Report {
            common,
            from,
            to,
            system,
            format,
        } => {
            let settings = common.settings()?;
            if let Some(s) = &system {
                aims_model::record::validate_ident("system", s).context("invalid --system")?;
            }
            let (from, to) = aims_server::history::parse_period(
                &from,
                to.as_deref(),
                aims_model::Timestamp::now(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let state = aims_server::export::open_state(&settings).await?;
            let report = aims_server::history::period_report(&state, system.as_deref(), from, to)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            match format {
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ReportFormat::Csv => print!("{}", aims_server::history::report_csv(&report)),
            }
        }
        Command::Export {
            common,
            out,
            system,
            since,
            from,
            to,
            catalog,
            receipts,
            no_blobs,
        } => {
            let mut settings = common.settings()?;
            if let Some(c) = catalog {
                settings.catalog_dir = Some(c);
            }
            if let Some(s) = &system {
                aims_model::record::validate_ident("system", s).context("invalid --system")?;
            }
            let state = aims_server::export::open_state(&settings).await?;
            let period = match from {
                Some(f) => Some(
                    aims_server::history::parse_period(
                        &f,
                        to.as_deref(),
                        aims_model::Timestamp::now(),
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                ),
                None => None,
            };
            let opts = aims_server::export::ExportOptions {
                system,
                since,
                period,
                receipts,
                blobs: !no_blobs,
            };
            // Streamed to a temporary file beside the target, renamed when complete: a failed
            // export never leaves a partial bundle under the requested name.
            let tmp = out.with_extension("tmp");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let result = aims_server::export::export_bundle(&state, &opts, file).await;
            let (file, n) = match result {
                Ok(ok) => ok,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(anyhow::Error::new(e).context("exporting"));
                }
            };
            drop(file);
            aims_fsutil::persist(&tmp, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} ({n} bytes)", out.display());
        }
    }
    Ok(())
}
