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
        /// Catalog directory overriding the embedded one.
        #[arg(long, value_name = "DIR")]
        catalog: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it on stdout (it is not shown again).
    Create {
        /// agent (writes evidence), viewer (reads), auditor (reads and exports), admin.
        #[arg(long, value_parser = ["agent", "viewer", "auditor", "admin"])]
        role: String,
        /// A name for the token (for agents, the agent's id).
        #[arg(long)]
        name: String,
        /// Expire after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
        /// Agent tokens: accept only records whose `agent` is this ID (403 otherwise).
        #[arg(long, value_name = "ID")]
        agent_id: Option<String>,
        /// Agent tokens: accept only records from these source IDs (repeat, or separate with
        /// commas; 403 otherwise). Default: any source.
        #[arg(long = "source", value_name = "ID", value_delimiter = ',')]
        sources: Vec<String>,
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
            sources,
            common,
        }) => {
            let settings = common.settings()?;
            let store = aims_server::open_store(&settings.database).await?;
            let role = Role::parse(&role).context("unknown role")?;
            aims_model::record::validate_ident("name", &name).context("invalid token name")?;
            if (agent_id.is_some() || !sources.is_empty()) && role != Role::Agent {
                anyhow::bail!("--agent-id and --source only apply to agent tokens");
            }
            if let Some(a) = &agent_id {
                aims_model::record::validate_ident("agent-id", a).context("invalid --agent-id")?;
            }
            for s in &sources {
                aims_model::record::validate_ident("source", s).context("invalid --source")?;
            }
            let scope = aims_store::TokenScope {
                agent_id,
                sources: (!sources.is_empty()).then_some(sources),
            };
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
            let n = store.revoke_tokens(&name, Timestamp::now()).await?;
            eprintln!("revoked {n} token(s) named {name}");
        }
        Command::Keys(KeysCommand::Show { common }) => {
            let settings = common.settings()?;
            let keys =
                aims_server::keys::LogKeys::load_or_create(&settings.keys_dir(), &settings.origin)?;
            print!("{}", keys.trust_policy());
        }
        Command::Export {
            common,
            out,
            system,
            since,
            catalog,
        } => {
            let mut settings = common.settings()?;
            if let Some(c) = catalog {
                settings.catalog_dir = Some(c);
            }
            if let Some(s) = &system {
                aims_model::record::validate_ident("system", s).context("invalid --system")?;
            }
            let state = aims_server::export::open_state(&settings).await?;
            let opts = aims_server::export::ExportOptions { system, since };
            let bytes = aims_server::export::export_bundle(&state, &opts)
                .await
                .context("exporting")?;
            let tmp = out.with_extension("tmp");
            std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::rename(&tmp, &out))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} ({} bytes)", out.display(), bytes.len());
        }
    }
    Ok(())
}
