//! The end-to-end suites, as one test binary: each module drives the real `aims-server`,
//! `aims-agent` and `aims-verify` binaries (built first by `scripts/test.sh`) against real
//! sources. One binary instead of one per suite: each suite links the whole server, agent and
//! collector stack, so linking it once saves minutes of every build on two cores.
//!
//! Run one suite with `cargo test -p aims-e2e --test e2e -- <module>::` (e.g. `audit::`; several
//! filters may follow the `--`).

mod agent_run;
mod audit;
mod bad_input;
mod compliance;
mod dashboard;
mod deploy_files;
mod examples;
mod faults;
mod forms;
mod freshness;
mod hostile;
mod integrity;
mod notify;
mod otlp;
mod replicas;
mod schemathesis;
mod security;
mod slice;
mod sources;
mod tls;
mod uploads;
