//! aims-collect
