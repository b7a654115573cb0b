//! The bundle layout, shared with the server that writes bundles ([`aims_model::bundle`]).

pub use aims_model::bundle::*;
