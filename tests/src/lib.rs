//! aims-e2e
