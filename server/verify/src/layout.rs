//! The bundle layout, shared with the server that writes bundles ([`aims_ledger::bundle`]).

pub use aims_ledger::bundle::*;
