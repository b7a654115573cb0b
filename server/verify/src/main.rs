//! `aims-verify BUNDLE --trust FILE [--trust-bundled-keys] [--previous CHECKPOINT] [--json]`.
//!
//! Exit codes: 0 verified; 1 a check failed (the output names the file and index); 2 usage or
//! IO error (unreadable bundle or trust file).

// Standard output is this command's interface: the report.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use aims_ledger::policy::TrustPolicy;
use aims_verify::{Bundle, Options, Trust, verify};

/// Verify an aims-evidence export bundle offline against pinned keys.
#[derive(Debug, Parser)]
#[command(name = "aims-verify", version, about, long_about = None)]
struct Cli {
    /// The bundle (`bundle.tar.gz` from GET /v1/export or `aims-server export`).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// The pinned trust policy (C2SP tlog-policy lines, from `aims-server keys show`).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "trust_bundled_keys"
    )]
    trust: Option<PathBuf>,
    /// Trust the keys shipped inside the bundle (trust/policy.txt) instead. This only shows
    /// that the bundle is internally consistent, not who signed it.
    #[arg(long, conflicts_with = "trust")]
    trust_bundled_keys: bool,
    /// A checkpoint (signed note) kept from an earlier export: the bundle's log must extend it.
    #[arg(long, value_name = "CHECKPOINT_FILE")]
    previous: Option<PathBuf>,
    /// Largest total of uncompressed bytes to read from the bundle (default: 100× the archive's
    /// size, at least 256 MiB, at most 4 GiB), so a decompression bomb cannot exhaust memory.
    #[arg(long, value_name = "BYTES")]
    max_uncompressed_bytes: Option<u64>,
    /// Print a machine-readable JSON report instead of one line per check.
    #[arg(long)]
    json: bool,
}

fn usage_error(msg: String) -> ExitCode {
    eprintln!("aims-verify: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let trust = match &cli.trust {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    return usage_error(format!("cannot read trust file {}: {e}", path.display()));
                }
            };
            match TrustPolicy::parse(&text) {
                Ok(p) if !p.logs.is_empty() => Trust::Pinned(p),
                Ok(_) => {
                    return usage_error(format!("trust file {} names no log key", path.display()));
                }
                Err(e) => {
                    return usage_error(format!(
                        "trust file {} is not a trust policy: {e}",
                        path.display()
                    ));
                }
            }
        }
        None => Trust::Bundled,
    };
    let previous = match &cli.previous {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                return usage_error(format!(
                    "cannot read previous checkpoint {}: {e}",
                    path.display()
                ));
            }
        },
        None => None,
    };
    let bytes = match std::fs::read(&cli.bundle) {
        Ok(b) => b,
        Err(e) => {
            return usage_error(format!("cannot read bundle {}: {e}", cli.bundle.display()));
        }
    };
    let limit = cli
        .max_uncompressed_bytes
        .unwrap_or_else(|| aims_verify::bundle::default_limit(bytes.len() as u64));
    let bundle = match Bundle::read_tar_gz_limited(&bytes, limit) {
        Ok(b) => b,
        Err(e) => return usage_error(format!("cannot read bundle {}: {e}", cli.bundle.display())),
    };
    let report = verify(&bundle, &Options { trust, previous });
    if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return usage_error(format!("cannot encode the report: {e}")),
        }
    } else {
        print!("{report}");
    }
    if report.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
