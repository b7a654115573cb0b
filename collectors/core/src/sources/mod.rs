//! Sources that need nothing beyond std and tokio live here; the others have their own crates.

pub mod dir;
