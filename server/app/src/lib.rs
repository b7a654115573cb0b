//! aims-server
