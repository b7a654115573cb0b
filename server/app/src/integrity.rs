//! The ledger at rest is checked before it is served or signed (issue 18 M5, A6).
//!
//! Someone with write access to the database could edit, delete or swap `ledger_entries` rows,
//! or edit an indexed column (`system`, say) to hide a system. The signed checkpoints make every
//! such change detectable; this module detects it:
//!
//! - **Before serving** ([`check_tail`], at start-up, bounded work): every entry after the last
//!   checkpoint the database says it signed, and a window before it, hashes to its `leaf_hash`
//!   and agrees with its indexed columns; the stored subtree hashes reproduce the signed root of
//!   that checkpoint and of the newest checkpoint the key directory remembers. A failure stops the
//!   server before it listens, naming the first bad leaf.
//! - **In the background** ([`check_all`], started by `serve`): every entry from leaf 0, in pages,
//!   the same per-entry checks, and the root recomputed from the entry bytes at every signed
//!   checkpoint size. Until it has finished `/readyz` says `ledger check under way`; if it
//!   fails, the server stops signing (ingest answers 503), `/readyz` answers 503 with the first bad
//!   leaf, and the reason is logged at ERROR.
//!
//! `history()` additionally refuses a row whose signed entry names another system than the column
//! it was selected by, so an edited column cannot move evidence between systems unnoticed even
//! before the background check reaches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aims_ledger::merkle::{self, Hash};
use aims_store::Store;

/// Rows read per page.
const PAGE: u64 = 2_000;
/// Entries before the newest signed checkpoint that the start-up check also reads.
const TAIL_WINDOW: u64 = 1_000;

/// What the background check has established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntegrityState {
    /// Still reading; `checked` leaves so far.
    Checking,
    /// Every entry up to `size` agrees with its leaf hash, its columns and the signed roots.
    Verified,
    /// The first problem found.
    Failed(String),
}

/// Shared status of the ledger check (served by `/readyz` and `/metrics`).
#[derive(Debug)]
pub struct Integrity {
    state: std::sync::RwLock<IntegrityState>,
    /// Leaves the background check has verified.
    pub checked: AtomicU64,
}

impl Default for Integrity {
    fn default() -> Self {
        Self {
            state: std::sync::RwLock::new(IntegrityState::Checking),
            checked: AtomicU64::new(0),
        }
    }
}

impl Integrity {
    /// The current state.
    pub fn state(&self) -> IntegrityState {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set(&self, s: IntegrityState) {
        match self.state.write() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }

    /// The failure, once one was found: the server must not sign on top of it.
    pub fn failure(&self) -> Option<String> {
        match self.state() {
            IntegrityState::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// Why the ledger does not check out.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// A row disagrees with its signed bytes or the signed roots.
    #[error("ledger leaf {index}: {reason}")]
    Leaf {
        /// The first bad leaf.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A signed root does not match.
    #[error("{0}")]
    Root(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] aims_store::StoreError),
}

/// RFC 6962 roots of every prefix, one leaf at a time (a stack of perfect subtrees).
#[derive(Default)]
struct Compact {
    /// (height, hash) of the perfect subtrees covering the leaves so far, largest first.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl Compact {
    fn push(&mut self, leaf: Hash) {
        let mut cur = (0u32, leaf);
        while let Some(&(h, left)) = self.stack.last() {
            if h != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (h + 1, merkle::node_hash(&left, &cur.1));
        }
        self.stack.push(cur);
        self.size += 1;
    }

    fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return merkle::empty_root();
        };
        for &(_, left) in it {
            r = merkle::node_hash(&left, &r);
        }
        r
    }
}

/// Checks the rows `[from, to)`: each entry against its leaf hash and columns.
async fn check_rows(
    store: &dyn Store,
    from: u64,
    to: u64,
    mut each: impl FnMut(u64, Hash),
) -> Result<(), IntegrityError> {
    let mut next = from;
    while next < to {
        let rows = store.entry_rows(next, PAGE.min(to - next)).await?;
        if rows.is_empty() {
            return Err(IntegrityError::Leaf {
                index: next,
                reason: "missing: the ledger has a gap".to_owned(),
            });
        }
        for r in rows {
            if r.index != next {
                return Err(IntegrityError::Leaf {
                    index: next,
                    reason: format!("missing: the next stored leaf is {}", r.index),
                });
            }
            if let Some(reason) = r.mismatch() {
                return Err(IntegrityError::Leaf {
                    index: r.index,
                    reason,
                });
            }
            each(r.index, merkle::leaf_hash(&r.entry));
            next += 1;
        }
    }
    Ok(())
}

/// The start-up check (see the module docs). `remembered` is the newest head the key directory
/// holds, if any.
pub async fn check_tail(
    store: &dyn Store,
    remembered: Option<(u64, Hash)>,
) -> Result<(), IntegrityError> {
    let size = store.tree_size().await?;
    let latest = store.latest_checkpoint().await?;
    let signed = latest.as_ref().map_or(0, |c| c.size);
    let from = signed.min(size).saturating_sub(TAIL_WINDOW);
    check_rows(store, from, size, |_, _| {}).await?;
    // The stored subtree hashes must reproduce the signed roots.
    let mut heads: Vec<(u64, Hash, &str)> = Vec::new();
    if let Some(c) = &latest {
        heads.push((c.size, c.root, "the newest checkpoint in the database"));
    }
    if let Some((s, r)) = remembered {
        heads.push((
            s,
            r,
            "the newest checkpoint this server's key directory remembers",
        ));
    }
    for (s, root, what) in heads {
        if s > size {
            return Err(IntegrityError::Root(format!(
                "{what} covers {s} leaves but the database holds {size}: entries were deleted"
            )));
        }
        if store.tree_root(s).await? != root {
            return Err(IntegrityError::Root(format!(
                "the stored tree at size {s} does not have the root of {what}: the ledger was altered"
            )));
        }
    }
    Ok(())
}

/// The whole-ledger check (see the module docs); returns the number of leaves verified.
pub async fn check_all(store: &dyn Store, progress: &AtomicU64) -> Result<u64, IntegrityError> {
    let size = store.tree_size().await?;
    // The signed roots to recompute: the newest checkpoint (and, if it is not at `size`, none
    // other is needed: the tail check covered what came after it).
    let targets: std::collections::HashMap<u64, Hash> = store
        .latest_checkpoint()
        .await?
        .filter(|c| c.size <= size)
        .map(|c| (c.size, c.root))
        .into_iter()
        .collect();
    let mut compact = Compact::default();
    let mut first_root_error: Option<IntegrityError> = None;
    check_rows(store, 0, size, |i, leaf| {
        compact.push(leaf);
        progress.store(i + 1, Ordering::Relaxed);
        if let Some(want) = targets.get(&(i + 1))
            && compact.root() != *want
            && first_root_error.is_none()
        {
            first_root_error = Some(IntegrityError::Root(format!(
                "the root over entries 0..{} differs from the checkpoint signed at that size: an entry before it was altered together with its leaf hash",
                i + 1
            )));
        }
    })
    .await?;
    if let Some(e) = first_root_error {
        return Err(e);
    }
    if compact.size == size && size > 0 && store.tree_root(size).await? != compact.root() {
        return Err(IntegrityError::Root(format!(
            "the stored subtree hashes at size {size} do not match the entries"
        )));
    }
    Ok(size)
}

/// Runs [`check_all`] and records the outcome in `status`.
pub async fn run_background(store: Arc<dyn Store>, status: Arc<Integrity>) {
    let started = std::time::Instant::now();
    match check_all(store.as_ref(), &status.checked).await {
        Ok(n) => {
            tracing::info!(
                leaves = n,
                ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "ledger verified"
            );
            status.set(IntegrityState::Verified);
        }
        Err(e) => {
            tracing::error!(error = %e, "ledger check failed: the server stops signing");
            status.set(IntegrityState::Failed(e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_roots_match_the_reference() {
        let leaves: Vec<Hash> = (0u32..70)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut c = Compact::default();
        assert_eq!(c.root(), merkle::root_from_leaves(&[]));
        for (i, l) in leaves.iter().enumerate() {
            c.push(*l);
            assert_eq!(
                c.root(),
                merkle::root_from_leaves(&leaves[..=i]),
                "size {}",
                i + 1
            );
        }
    }
}
