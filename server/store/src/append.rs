//! The append sequence, written once for every backend: new leaves → their complete-subtree
//! hashes → the new root → a signed checkpoint, all inside the caller's transaction (which holds
//! the store's append lock), so a crash leaves either all or none of it.
//!
//! A backend provides four small operations ([`AppendOps`]); the order, the Merkle work and the
//! signing live here. Round trips are constant in the batch size: one insert of the leaves, one
//! read of the stored siblings the new subtrees need, one insert of the new subtree hashes, one
//! read of the nodes the root needs, one checkpoint write.

use std::collections::HashMap;

use async_trait::async_trait;

use aims_ledger::merkle::{self, Hash, NodeId};
use aims_model::Timestamp;

use crate::hashes;
use crate::ingest::NewLeaf;
use crate::{CheckpointSigner, StoreError, StoredCheckpoint};

/// What a backend does inside its append transaction.
#[async_trait]
pub(crate) trait AppendOps: Send {
    /// Inserts the leaves' `ledger_entries` rows.
    async fn insert_leaves(
        &mut self,
        leaves: &[NewLeaf],
        agent: &str,
        received_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Reads the stored hashes of `ids` not yet in `map` into it (absent nodes are left out).
    async fn fill_hashes(
        &mut self,
        map: &mut HashMap<NodeId, Hash>,
        ids: &[NodeId],
    ) -> Result<(), StoreError>;

    /// Stores complete-subtree hashes.
    async fn insert_hashes(&mut self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError>;

    /// Stores the checkpoint of the new head (and advances any head counter the backend keeps).
    async fn insert_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), StoreError>;
}

/// Appends `leaves` (dense, starting at `start`, the current size) and signs the new head.
/// Returns `None` when there is nothing to append.
pub(crate) async fn append(
    ops: &mut dyn AppendOps,
    start: u64,
    leaves: &[NewLeaf],
    agent: &str,
    received_at: Timestamp,
    signer: &(dyn CheckpointSigner + Sync),
) -> Result<Option<StoredCheckpoint>, StoreError> {
    if leaves.is_empty() {
        return Ok(None);
    }
    debug_assert!(
        leaves
            .iter()
            .enumerate()
            .all(|(i, l)| l.idx == start + i as u64)
    );
    ops.insert_leaves(leaves, agent, received_at).await?;
    let hashes_of: Vec<Hash> = leaves.iter().map(|l| l.leaf).collect();
    let next = start + leaves.len() as u64;
    // Complete-subtree hashes for the new leaves, then the new root, each from one batch of
    // stored siblings.
    let ids = hashes::needed(|r| merkle::stored_hashes_for_batch(start, &hashes_of, r))?;
    let mut map = HashMap::new();
    ops.fill_hashes(&mut map, &ids).await?;
    let nodes = hashes::run(&map, |r| {
        merkle::stored_hashes_for_batch(start, &hashes_of, r)
    })?;
    ops.insert_hashes(&nodes).await?;
    map.extend(nodes.iter().copied());
    let ids = hashes::needed(|r| merkle::tree_root(next, r))?;
    ops.fill_hashes(&mut map, &ids).await?;
    let root = hashes::run(&map, |r| merkle::tree_root(next, r))?;
    let note = signer.sign(next, &root).map_err(StoreError::Signing)?;
    let cp = StoredCheckpoint {
        size: next,
        root,
        note,
        created_at: received_at,
    };
    ops.insert_checkpoint(&cp).await?;
    Ok(Some(cp))
}
