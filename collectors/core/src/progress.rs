//! Process-wide progress counters of content fetching, for a terminal progress line. Updated on
//! the hashing path with relaxed atomics (no locking, no allocation).

use std::sync::atomic::{AtomicU64, Ordering};

static FILES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Adds hashed bytes.
pub fn add_bytes(n: u64) {
    BYTES.fetch_add(n, Ordering::Relaxed);
}

/// Counts a finished artifact.
pub fn add_file() {
    FILES.fetch_add(1, Ordering::Relaxed);
}

/// `(artifacts fetched, bytes hashed)` since the process started.
pub fn snapshot() -> (u64, u64) {
    (FILES.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed))
}
