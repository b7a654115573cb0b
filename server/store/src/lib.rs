//! aims-store
