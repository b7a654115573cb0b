//! aims-agent
