//! aims-catalog
