//! Bridges the pure Merkle functions of `aims_ledger::merkle` (which read stored hashes
//! through a synchronous [`HashReader`], one batch per operation) to an async database.
//!
//! Every tree operation first runs against a [`Recorder`] that only notes which nodes it asks for
//! (the node set depends on sizes and indices, never on hash values), the caller fetches exactly
//! those rows in one go, and the operation runs again against a [`MapReader`] holding them.

use std::cell::RefCell;
use std::collections::HashMap;

use aims_ledger::merkle::{Hash, HashReader, MerkleError, NodeId};

use crate::StoreError;

/// The nodes of `ids` that `map` does not hold yet: what a backend's `fill_hashes` reads.
pub(crate) fn missing(map: &HashMap<NodeId, Hash>, ids: &[NodeId]) -> Vec<NodeId> {
    ids.iter()
        .filter(|id| !map.contains_key(id))
        .copied()
        .collect()
}

/// Decodes a `ledger_hashes` row (level, index, hash) as both backends select it.
pub(crate) fn node_hash(level: i64, idx: i64, hash: &[u8]) -> Result<(NodeId, Hash), StoreError> {
    let level = u8::try_from(level)
        .map_err(|_| StoreError::Corrupt("subtree level out of range".to_owned()))?;
    Ok((
        NodeId::new(level, crate::decode::unsigned(idx)?),
        crate::decode::hash32(hash)?,
    ))
}

/// Notes requested node IDs and answers with zero hashes.
#[derive(Default)]
pub(crate) struct Recorder(RefCell<Vec<NodeId>>);

impl HashReader for Recorder {
    type Error = std::convert::Infallible;
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        self.0.borrow_mut().extend_from_slice(ids);
        Ok(vec![[0u8; 32]; ids.len()])
    }
}

/// A node that should have been stored was not.
#[derive(Debug)]
pub(crate) struct MissingNode(NodeId);

/// Answers from a prefetched map.
pub(crate) struct MapReader<'a>(pub(crate) &'a HashMap<NodeId, Hash>);

impl HashReader for MapReader<'_> {
    type Error = MissingNode;
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        ids.iter()
            .map(|id| self.0.get(id).copied().ok_or(MissingNode(*id)))
            .collect()
    }
}

/// The node IDs an operation will read.
pub(crate) fn needed<T>(
    op: impl Fn(&Recorder) -> Result<T, MerkleError<std::convert::Infallible>>,
) -> Result<Vec<NodeId>, StoreError> {
    let rec = Recorder::default();
    op(&rec).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let mut ids = rec.0.into_inner();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Runs an operation against prefetched hashes.
pub(crate) fn run<T>(
    map: &HashMap<NodeId, Hash>,
    op: impl Fn(&MapReader<'_>) -> Result<T, MerkleError<MissingNode>>,
) -> Result<T, StoreError> {
    op(&MapReader(map)).map_err(|e| match e {
        MerkleError::Storage(MissingNode(id)) => StoreError::Corrupt(format!(
            "missing subtree hash (level {}, index {})",
            id.level, id.index
        )),
        other => StoreError::Conflict(other.to_string()),
    })
}

/// The hashes of `ids` from a fetched map, in the order asked; a node that is not there is
/// corruption (the caller asked only for nodes the tree size implies exist).
pub(crate) fn ids_in_order(
    map: &HashMap<NodeId, Hash>,
    ids: &[NodeId],
) -> Result<Vec<Hash>, StoreError> {
    ids.iter()
        .map(|id| {
            map.get(id).copied().ok_or_else(|| {
                StoreError::Corrupt(format!("missing subtree hash ({}, {})", id.level, id.index))
            })
        })
        .collect()
}
