//! aims-collect-git
