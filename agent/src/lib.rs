//! aims-agent: polls configured sources of AI-lifecycle artifacts, spools evidence records
//! durably and ships them to the collector server.
//!
//! - [`config`]: the agent configuration file (DESIGN §3a), environment overrides, validation.
//! - [`spool`]: the durable directory of batches waiting for acknowledgement.
//! - [`shipper`]: `POST /v1/evidence` with typed outcomes, bounded retries and acknowledgement
//!   checks.
//! - [`runner`]: one cycle (`once`) and the long-running scheduler (`run`): its source loop,
//!   shipper loop, heartbeats and confirmations.
//! - [`report`]: what a run did, per source (printed by `once`, counted by [`metrics`]).
//!
//! Durability invariants (the reason this crate exists):
//! 1. poll → spool append (fsynced, renamed, directory fsynced) → cursor save. The cursor never
//!    runs ahead of the spool, so a crash re-sends records instead of losing them.
//! 2. A spool file is deleted only after the server acknowledged every record in it with the
//!    record's own id. The server deduplicates by record id, so re-sending is harmless.
//! 3. Nothing is dropped silently: batches aims-server refuses with a typed error, and unreadable
//!    ones, go to `spool/rejected/` with a reason file and an ERROR log (`aims-agent spool retry`
//!    offers them again); any other answer (a proxy's 404, a redirect) keeps the spool.
//! 4. Bounded against hostile servers and sources (issue 18): credentials go only to the
//!    configured origin, response bodies and downloads are read with limits, every request and
//!    every poll has a deadline, and the spool has a maximum size.

pub mod config;
pub mod confirm;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod shipper;
pub mod sources;
pub mod spool;
pub mod witness;

pub use config::{AgentConfig, ConfigError, SecretToken};
pub use runner::{RunError, RunOptions, RunReport, SourceReport, run, run_once};
pub use shipper::{RetryPolicy, SendOutcome, ShipError, ShipReport, Shipper, ShipperSettings};
pub use spool::{Spool, SpoolBatch, SpoolError};
