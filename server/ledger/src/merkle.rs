//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs over stored complete subtrees, and
//! storage-independent proof verifiers.
//!
//! Hashing (RFC 6962 §2.1): the empty tree hashes to `SHA-256("")`, a leaf holding the entry `d` to
//! `SHA-256(0x00 ‖ d)`, and an interior node to `SHA-256(0x01 ‖ left ‖ right)`, where a tree of
//! `n > 1` leaves splits at the largest power of two strictly below `n`. Nothing is padded.
//!
//! Storage follows the Go sumdb "stored hashes" idea: only the hashes of *complete* subtrees are
//! ever stored, named by [`NodeId`] `{level, index}` = the subtree over leaves
//! `[index << level, (index + 1) << level)`. A complete subtree never changes once its last leaf is
//! appended, so storage is append-only. Appending leaf `n` creates exactly `1 + trailing_ones(n)`
//! such hashes ([`stored_hashes_for_append`]). The hash of any range that the RFC algorithms ask for
//! is the right fold of the complete subtrees that tile it, so roots and proofs need only
//! O(log n) stored hashes. Every function here first works out *which* [`NodeId`]s it needs and
//! then asks the [`HashReader`] for all of them in one call, so a database-backed reader can answer
//! with a single query.
//!
//! The verifiers ([`verify_inclusion`], [`verify_consistency`]) do not depend on storage. They
//! check the exact proof length (RFC 9162 §2.1.3.2 / §2.1.4.2, as decomposed by
//! transparency-dev/merkle) before hashing, so a proof with a missing or extra hash is rejected
//! even if the root happened to match.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Hash of one log entry: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
///
/// The input always has 65 bytes, so this pads it by hand into two SHA-256 blocks (FIPS 180-4
/// §5.1.1) and calls the non-generic compression function of `sha2`. The result is identical to
/// the `Digest` API (tested) but avoids its generic buffering code, which dominates proof work in
/// unoptimised builds.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    const H0: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    let mut blocks = [[0u8; 64]; 2];
    blocks[0][0] = 0x01;
    blocks[0][1..33].copy_from_slice(left);
    blocks[0][33..64].copy_from_slice(&right[..31]);
    blocks[1][0] = right[31];
    blocks[1][1] = 0x80;
    blocks[1][56..64].copy_from_slice(&(65u64 * 8).to_be_bytes());
    let mut state = H0;
    sha2::block_api::compress256(&mut state, &blocks);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A complete subtree: the `2^level` leaves `[index << level, (index + 1) << level)`.
///
/// Level 0 nodes are leaf hashes. Ordering is by level, then index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height of the subtree; it covers `2^level` leaves.
    pub level: u8,
    /// Position of the subtree among the subtrees of the same level, counted from the left.
    pub index: u64,
}

impl NodeId {
    /// The subtree of `2^level` leaves starting at leaf `index << level`.
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// The leaf hash at `index`.
    pub const fn leaf(index: u64) -> Self {
        Self { level: 0, index }
    }
}

/// Read access to stored complete-subtree hashes.
pub trait HashReader {
    /// Why a read failed (for example a database error, or a hash that was never stored).
    type Error;

    /// Returns the hashes of `ids`, in the same order and of the same length. Callers ask for all
    /// the ids an operation needs in one call.
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    type Error = R::Error;
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        (**self).read_hashes(ids)
    }
}

/// Why a tree operation over stored hashes failed.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError<E> {
    /// The hash storage failed.
    #[error("hash storage failed")]
    Storage(#[source] E),
    /// The reader answered with the wrong number of hashes.
    #[error("hash reader returned {got} hashes for {wanted} node ids")]
    ShortRead {
        /// Number of ids asked for.
        wanted: usize,
        /// Number of hashes returned.
        got: usize,
    },
    /// An inclusion proof was asked for a leaf outside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof was asked for sizes outside `0 < m <= n`.
    #[error("consistency proof needs 0 < m <= n, got m = {m}, n = {n}")]
    InvalidSizes {
        /// Old tree size.
        m: u64,
        /// New tree size.
        n: u64,
    },
    /// The tree would grow past `u64::MAX` leaves.
    #[error("tree size overflow")]
    Overflow,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// Consistency sizes outside `0 < m <= n`.
    #[error("consistency proof needs 0 < m <= n, got m = {m}, n = {n}")]
    InvalidSizes {
        /// Old tree size.
        m: u64,
        /// New tree size.
        n: u64,
    },
    /// The proof has the wrong number of hashes for its index and size(s).
    #[error("proof has {got} hashes, expected exactly {expected}")]
    WrongLength {
        /// Length required by the index and size(s).
        expected: usize,
        /// Length supplied.
        got: usize,
    },
    /// The proof does not lead to the expected root.
    #[error("proof does not match the root hash")]
    RootMismatch,
}

/// Largest power of two strictly below `n`; requires `n >= 2`.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees tiling `[lo, hi)`, left to right, largest first. For the ranges the RFC
/// recursion produces (`lo` is a multiple of a power of two that is at least `hi - lo`), the right
/// fold of their hashes is the MTH of the range.
fn tiling(mut lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    while lo < hi {
        let fit = 63 - (hi - lo).leading_zeros(); // log2 of the largest power of two <= hi - lo
        let align = if lo == 0 { 63 } else { lo.trailing_zeros() };
        let level = fit.min(align);
        // level <= 63, so the cast is lossless.
        out.push(NodeId::new(level as u8, lo >> level));
        lo += 1u64 << level;
    }
}

fn fold_right(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

fn read_checked<R: HashReader>(
    reader: &R,
    ids: &[NodeId],
) -> Result<Vec<Hash>, MerkleError<R::Error>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(ids).map_err(MerkleError::Storage)?;
    if hashes.len() != ids.len() {
        return Err(MerkleError::ShortRead {
            wanted: ids.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// Computes the MTH of each `[lo, hi)` range with one batched read.
fn range_hashes<R: HashReader>(
    ranges: &[(u64, u64)],
    reader: &R,
) -> Result<Vec<Hash>, MerkleError<R::Error>> {
    let mut ids = Vec::new();
    let mut bounds = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let start = ids.len();
        tiling(lo, hi, &mut ids);
        bounds.push(start..ids.len());
    }
    let hashes = read_checked(reader, &ids)?;
    let mut out = Vec::with_capacity(ranges.len());
    for b in bounds {
        // Every range in a proof is non-empty; an empty one would be a bug in the range planning.
        let h = hashes
            .get(b)
            .and_then(fold_right)
            .ok_or(MerkleError::ShortRead {
                wanted: ids.len(),
                got: hashes.len(),
            })?;
        out.push(h);
    }
    Ok(out)
}

/// The complete-subtree hashes created when leaf `n` (zero-based, so the tree grows from `n` to
/// `n + 1` leaves) with hash `leaf` is appended: `(0, n)` and then one node per trailing one bit
/// of `n`, bottom-up. Reads the `trailing_ones(n)` left siblings from `reader` in one call.
pub fn stored_hashes_for_append<R: HashReader>(
    n: u64,
    leaf: Hash,
    reader: &R,
) -> Result<Vec<(NodeId, Hash)>, MerkleError<R::Error>> {
    stored_hashes_for_batch(n, &[leaf], reader)
}

/// The complete-subtree hashes created when `leaves` are appended to a tree of `n` leaves, in
/// creation order. Siblings that already exist are read in one call; those created inside the
/// batch are taken from the batch itself.
pub fn stored_hashes_for_batch<R: HashReader>(
    n: u64,
    leaves: &[Hash],
    reader: &R,
) -> Result<Vec<(NodeId, Hash)>, MerkleError<R::Error>> {
    let count = u64::try_from(leaves.len()).map_err(|_| MerkleError::Overflow)?;
    // end <= u64::MAX keeps every leaf index below u64::MAX, so trailing_ones(i) <= 63.
    let end = n.checked_add(count).ok_or(MerkleError::Overflow)?;
    // A node exists before the batch iff its last leaf is below n.
    let mut needed = Vec::new();
    for i in n..end {
        for l in 0..i.trailing_ones() {
            let boundary = (i >> l) << l; // one past the sibling's last leaf
            if boundary <= n {
                needed.push(NodeId::new(l as u8, (i >> l) - 1));
            }
        }
    }
    needed.sort_unstable();
    needed.dedup();
    let read = read_checked(reader, &needed)?;
    let mut known: BTreeMap<NodeId, Hash> = needed.into_iter().zip(read).collect();

    let mut out = Vec::new();
    for (i, leaf) in (n..end).zip(leaves) {
        let mut h = *leaf;
        let id = NodeId::leaf(i);
        out.push((id, h));
        known.insert(id, h);
        for l in 0..i.trailing_ones() {
            let sibling = NodeId::new(l as u8, (i >> l) - 1);
            let left = known
                .get(&sibling)
                .ok_or(MerkleError::ShortRead { wanted: 1, got: 0 })?;
            h = node_hash(left, &h);
            let id = NodeId::new(l as u8 + 1, i >> (l + 1));
            out.push((id, h));
            known.insert(id, h);
        }
    }
    Ok(out)
}

/// Root of the tree of the first `size` leaves (the empty root for `size == 0`), from at most 64
/// stored hashes.
pub fn tree_root<R: HashReader>(size: u64, reader: &R) -> Result<Hash, MerkleError<R::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    Ok(range_hashes(&[(0, size)], reader)?
        .first()
        .copied()
        .unwrap_or_else(empty_root))
}

/// The ranges whose MTHs form PATH(index, D[0:size]) (RFC 6962 §2.1.1), leaf sibling first.
fn inclusion_ranges(mut index: u64, size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0u64, size);
    let mut ranges = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            index -= k;
        }
    }
    ranges.reverse();
    ranges
}

/// The ranges whose MTHs form PROOF(m, D[0:n]) (RFC 6962 §2.1.2), in proof order.
fn consistency_ranges(mut m: u64, n: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0u64, n);
    let mut complete = true; // the `b` flag of SUBPROOF
    let mut ranges = Vec::new();
    while m != hi - lo {
        let k = split_point(hi - lo);
        if m <= k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            m -= k;
            complete = false;
        }
    }
    if !complete {
        ranges.push((lo, hi));
    }
    ranges.reverse();
    ranges
}

/// Inclusion proof (RFC 6962 §2.1.1 PATH) for leaf `index` in the tree of `size` leaves, leaf
/// sibling first. Reads at most 2·64 stored hashes in one call.
pub fn inclusion_proof<R: HashReader>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, MerkleError<R::Error>> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    range_hashes(&inclusion_ranges(index, size), reader)
}

/// Consistency proof (RFC 6962 §2.1.2 PROOF) from the tree of `m` leaves to the tree of `n`
/// leaves; needs `0 < m <= n` and is empty when `m == n`.
pub fn consistency_proof<R: HashReader>(
    m: u64,
    n: u64,
    reader: &R,
) -> Result<Vec<Hash>, MerkleError<R::Error>> {
    if m == 0 || m > n {
        return Err(MerkleError::InvalidSizes { m, n });
    }
    range_hashes(&consistency_ranges(m, n), reader)
}

/// `(inner, border)`: an inclusion proof for `index` in a tree of `size` leaves has
/// `inner = bitlen(index XOR (size − 1))` hashes below the point where the path leaves the right
/// edge, then `border = popcount(index >> inner)` hashes of left siblings on the right edge.
fn decompose_inclusion(index: u64, size: u64) -> (u32, u32) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        seed = if (index >> i) & 1 == 0 {
            node_hash(&seed, h)
        } else {
            node_hash(h, &seed)
        };
    }
    seed
}

fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 1 {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Verifies that `leaf` (a leaf hash, see [`leaf_hash`]) is at `index` in the tree of `size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2). The proof length must be exactly
/// `bitlen(index XOR (size − 1)) + popcount(index >> inner)`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion(index, size);
    let expected = (inner + border) as usize;
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (inner_part, border_part) = proof.split_at(inner as usize);
    let computed = chain_border_right(chain_inner(*leaf, inner_part, index), border_part);
    if &computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `m` leaves with root `root_m` is a prefix of the tree of `n` leaves
/// with root `root_n` (RFC 9162 §2.1.4.2). Needs `0 < m <= n`; the proof is empty exactly when
/// `m == n` (and then the roots must be equal), otherwise its length is fixed by `m` and `n`.
pub fn verify_consistency(
    m: u64,
    n: u64,
    proof: &[Hash],
    root_m: &Hash,
    root_n: &Hash,
) -> Result<(), ProofError> {
    if m == 0 || m > n {
        return Err(ProofError::InvalidSizes { m, n });
    }
    if m == n {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        return if root_m == root_n {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // The path of leaf m − 1 in tree n; the lowest `shift` levels sit inside the complete subtree
    // of size 2^shift that ends tree m, whose hash is either root_m or the first proof hash.
    let (inner, border) = decompose_inclusion(m - 1, n);
    let shift = m.trailing_zeros();
    let inner = inner - shift; // m < n, so the path leaves the right edge above level `shift`
    let seeded_by_root = m == 1u64 << shift;
    let start = usize::from(!seeded_by_root);
    let expected = start + (inner + border) as usize;
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let seed = match proof.first() {
        Some(first) if !seeded_by_root => *first,
        _ => *root_m,
    };
    let rest = &proof[start..];
    let (inner_part, border_part) = rest.split_at(inner as usize);
    let mask = (m - 1) >> shift;
    let computed_m = chain_border_right(chain_inner_right(seed, inner_part, mask), border_part);
    if &computed_m != root_m {
        return Err(ProofError::RootMismatch);
    }
    let computed_n = chain_border_right(chain_inner(seed, inner_part, mask), border_part);
    if &computed_n != root_n {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Streaming root computation for a verifier that reads every leaf in order: O(1) amortised work
/// per leaf and O(log n) memory (one hash per set bit of the size).
#[derive(Clone, Debug, Default)]
pub struct RootBuilder {
    /// Complete subtrees of the leaves pushed so far, strictly decreasing levels.
    stack: Vec<(u8, Hash)>,
    size: u64,
}

impl RootBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the next leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut level = 0u8;
        while let Some(&(top_level, top)) = self.stack.last()
            && top_level == level
        {
            self.stack.pop();
            h = node_hash(&top, &h);
            level += 1;
        }
        self.stack.push((level, h));
        self.size += 1;
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.stack.iter().map(|&(_, h)| h).collect();
        fold_right(&hashes).unwrap_or_else(empty_root)
    }
}

/// Root of a tree given every leaf hash (see [`RootBuilder`] to stream them instead).
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    let mut b = RootBuilder::new();
    for leaf in leaves {
        b.push(*leaf);
    }
    b.root()
}

/// Why the in-memory store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStoreError {
    /// A hash was asked for that has not been stored.
    #[error("no stored hash for level {} index {}", .0.level, .0.index)]
    Missing(NodeId),
}

/// Complete-subtree hashes in memory, one vector per level. For tests and for a verifier that
/// rebuilds the tree from an exported entry list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryHashStore {
    levels: Vec<Vec<Hash>>,
}

impl MemoryHashStore {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one leaf hash; returns its index.
    pub fn append(&mut self, leaf: Hash) -> Result<u64, MerkleError<MemoryStoreError>> {
        let index = self.size();
        self.append_all(&[leaf])?;
        Ok(index)
    }

    /// Appends leaf hashes in order.
    pub fn append_all(&mut self, leaves: &[Hash]) -> Result<(), MerkleError<MemoryStoreError>> {
        let new = stored_hashes_for_batch(self.size(), leaves, &*self)?;
        for (id, h) in new {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            // Hashes are created in index order within each level, so a push lands at `id.index`.
            self.levels[level].push(h);
        }
        Ok(())
    }

    /// Root of the current tree.
    pub fn root(&self) -> Result<Hash, MerkleError<MemoryStoreError>> {
        tree_root(self.size(), self)
    }
}

impl HashReader for MemoryHashStore {
    type Error = MemoryStoreError;

    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        ids.iter()
            .map(|id| {
                self.levels
                    .get(usize::from(id.level))
                    .and_then(|l| l.get(usize::try_from(id.index).ok()?))
                    .copied()
                    .ok_or(MemoryStoreError::Missing(*id))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// RFC 6962 §2.1 definitions, written straightforwardly over leaf hashes, with MTH memoised by
    /// range so that all sizes up to 1024 stay fast.
    struct Oracle {
        leaves: Vec<Hash>,
        memo: HashMap<(usize, usize), Hash>,
    }

    impl Oracle {
        fn new(leaves: Vec<Hash>) -> Self {
            Self {
                leaves,
                memo: HashMap::new(),
            }
        }

        fn k(n: usize) -> usize {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            k
        }

        fn mth(&mut self, lo: usize, hi: usize) -> Hash {
            if let Some(h) = self.memo.get(&(lo, hi)) {
                return *h;
            }
            let n = hi - lo;
            let h = match n {
                0 => Sha256::digest([]).into(),
                1 => self.leaves[lo],
                _ => {
                    let k = Self::k(n);
                    let l = self.mth(lo, lo + k);
                    let r = self.mth(lo + k, hi);
                    node_hash(&l, &r)
                }
            };
            self.memo.insert((lo, hi), h);
            h
        }

        fn path(&mut self, m: usize, lo: usize, hi: usize) -> Vec<Hash> {
            let n = hi - lo;
            if n <= 1 {
                return vec![];
            }
            let k = Self::k(n);
            if m < k {
                let mut p = self.path(m, lo, lo + k);
                p.push(self.mth(lo + k, hi));
                p
            } else {
                let mut p = self.path(m - k, lo + k, hi);
                p.push(self.mth(lo, lo + k));
                p
            }
        }

        fn subproof(&mut self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Hash> {
            let n = hi - lo;
            if m == n {
                return if b { vec![] } else { vec![self.mth(lo, hi)] };
            }
            let k = Self::k(n);
            if m <= k {
                let mut p = self.subproof(m, lo, lo + k, b);
                p.push(self.mth(lo + k, hi));
                p
            } else {
                let mut p = self.subproof(m - k, lo + k, hi, false);
                p.push(self.mth(lo, lo + k));
                p
            }
        }

        fn proof(&mut self, m: usize, n: usize) -> Vec<Hash> {
            self.subproof(m, 0, n, true)
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u32).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn rfc_leaves() -> Vec<Hash> {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        inputs.iter().map(|d| leaf_hash(d)).collect()
    }

    #[test]
    fn rfc6962_known_answer() {
        let leaves = rfc_leaves();
        let want = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
        assert_eq!(hex::encode(root_from_leaves(&leaves)), want);
        let mut store = MemoryHashStore::new();
        store.append_all(&leaves).unwrap();
        assert_eq!(hex::encode(store.root().unwrap()), want);
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(root_from_leaves(&[])),
            hex::encode(empty_root())
        );
        // Leaf hash of the empty entry (RFC 6962 test vectors).
        assert_eq!(
            hex::encode(leaves[0]),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn node_hash_matches_digest_api() {
        let mut l = [0u8; 32];
        let mut r = [0u8; 32];
        for i in 0..200u32 {
            l = leaf_hash(&i.to_le_bytes());
            let mut h = Sha256::new();
            h.update([0x01]);
            h.update(l);
            h.update(r);
            let want: Hash = h.finalize().into();
            assert_eq!(node_hash(&l, &r), want);
            r = l;
        }
        let _ = l;
    }

    #[test]
    fn stored_hash_counts() {
        let mut store = MemoryHashStore::new();
        for (n, leaf) in leaves(300).into_iter().enumerate() {
            let n = n as u64;
            let new = stored_hashes_for_append(n, leaf, &store).unwrap();
            assert_eq!(new.len() as u32, 1 + n.trailing_ones());
            store.append(leaf).unwrap();
        }
    }

    #[test]
    fn batch_append_matches_single_appends() {
        let all = leaves(200);
        let mut one = MemoryHashStore::new();
        for l in &all {
            one.append(*l).unwrap();
        }
        for chunk in [1usize, 2, 3, 7, 16, 33] {
            let mut batched = MemoryHashStore::new();
            for c in all.chunks(chunk) {
                batched.append_all(c).unwrap();
            }
            assert_eq!(batched, one, "chunk {chunk}");
        }
    }

    /// Roots (stored and streamed) and every inclusion proof for sizes in `sizes`, against the
    /// oracle. Split in two tests (equal work) so they run in parallel.
    fn check_inclusion_sizes(sizes: std::ops::RangeInclusive<usize>) {
        let all = leaves(*sizes.end());
        let mut oracle = Oracle::new(all.clone());
        let mut store = MemoryHashStore::new();
        let mut builder = RootBuilder::new();
        for size in 1..=*sizes.end() {
            store.append(all[size - 1]).unwrap();
            builder.push(all[size - 1]);
            let root = oracle.mth(0, size);
            assert_eq!(store.root().unwrap(), root, "root of {size}");
            assert_eq!(builder.root(), root, "streamed root of {size}");
            if !sizes.contains(&size) {
                continue;
            }
            let size64 = size as u64;
            for (index, leaf) in all[..size].iter().enumerate() {
                let want = oracle.path(index, 0, size);
                let got = inclusion_proof(index as u64, size64, &store).unwrap();
                assert_eq!(got, want, "path {index} in {size}");
                verify_inclusion(leaf, index as u64, size64, &got, &root).unwrap();
            }
        }
        assert_eq!(root_from_leaves(&all), oracle.mth(0, all.len()));
    }

    #[test]
    fn roots_and_inclusion_against_oracle_sizes_1_to_724() {
        check_inclusion_sizes(1..=724);
    }

    #[test]
    fn roots_and_inclusion_against_oracle_sizes_725_to_1024() {
        check_inclusion_sizes(725..=1024);
    }

    #[test]
    fn consistency_against_oracle_up_to_128() {
        let all = leaves(128);
        let mut oracle = Oracle::new(all.clone());
        let mut store = MemoryHashStore::new();
        store.append_all(&all).unwrap();
        for n in 1..=128usize {
            let root_n = oracle.mth(0, n);
            for m in 1..=n {
                let root_m = oracle.mth(0, m);
                let want = oracle.proof(m, n);
                let got = consistency_proof(m as u64, n as u64, &store).unwrap();
                assert_eq!(got, want, "proof {m} -> {n}");
                verify_consistency(m as u64, n as u64, &got, &root_m, &root_n).unwrap();
                // The stored tree is 128 leaves but the proof must only depend on m and n.
                assert_eq!(tree_root(n as u64, &store).unwrap(), root_n);
            }
        }
    }

    #[test]
    fn out_of_range_requests() {
        let mut store = MemoryHashStore::new();
        store.append_all(&leaves(5)).unwrap();
        assert!(matches!(
            inclusion_proof(5, 5, &store),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            consistency_proof(0, 5, &store),
            Err(MerkleError::InvalidSizes { .. })
        ));
        assert!(matches!(
            consistency_proof(6, 5, &store),
            Err(MerkleError::InvalidSizes { .. })
        ));
        assert!(matches!(
            tree_root(6, &store),
            Err(MerkleError::Storage(MemoryStoreError::Missing(_)))
        ));
        assert!(consistency_proof(5, 5, &store).unwrap().is_empty());
    }

    fn flip(h: &mut Hash, bit: usize) {
        h[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn tampered_inclusion_proofs_are_rejected() {
        let all = leaves(100);
        let mut store = MemoryHashStore::new();
        store.append_all(&all).unwrap();
        for size in [1u64, 2, 3, 7, 8, 9, 31, 64, 65, 100] {
            let root = tree_root(size, &store).unwrap();
            for index in 0..size {
                let leaf = all[index as usize];
                let proof = inclusion_proof(index, size, &store).unwrap();
                verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
                for i in 0..proof.len() {
                    for bit in [0, 77, 255] {
                        let mut p = proof.clone();
                        flip(&mut p[i], bit);
                        assert!(verify_inclusion(&leaf, index, size, &p, &root).is_err());
                    }
                }
                let mut bad_leaf = leaf;
                flip(&mut bad_leaf, 3);
                assert!(verify_inclusion(&bad_leaf, index, size, &proof, &root).is_err());
                let mut bad_root = root;
                flip(&mut bad_root, 200);
                assert!(verify_inclusion(&leaf, index, size, &proof, &bad_root).is_err());
                if index + 1 < size {
                    assert!(verify_inclusion(&leaf, index + 1, size, &proof, &root).is_err());
                }
                if index > 0 {
                    assert!(verify_inclusion(&leaf, index - 1, size, &proof, &root).is_err());
                }
                // The proof binds the size only through its shape (the signed checkpoint binds the
                // size itself), so a wrong size must be rejected whenever the shape differs.
                for other in [size - 1, size + 1, size * 2, index] {
                    if other != size
                        && (index >= other
                            || decompose_inclusion(index, other)
                                != decompose_inclusion(index, size))
                    {
                        assert!(verify_inclusion(&leaf, index, other, &proof, &root).is_err());
                    }
                }
                let mut extra = proof.clone();
                extra.push(root);
                assert!(matches!(
                    verify_inclusion(&leaf, index, size, &extra, &root),
                    Err(ProofError::WrongLength { .. })
                ));
                let mut extra_front = vec![leaf];
                extra_front.extend_from_slice(&proof);
                assert!(verify_inclusion(&leaf, index, size, &extra_front, &root).is_err());
                if !proof.is_empty() {
                    let missing = &proof[..proof.len() - 1];
                    assert!(matches!(
                        verify_inclusion(&leaf, index, size, missing, &root),
                        Err(ProofError::WrongLength { .. })
                    ));
                }
            }
        }
        assert_eq!(
            verify_inclusion(&all[0], 0, 0, &[], &empty_root()),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
    }

    #[test]
    fn tampered_consistency_proofs_are_rejected() {
        let all = leaves(70);
        let mut store = MemoryHashStore::new();
        store.append_all(&all).unwrap();
        let roots: Vec<Hash> = (0..=70u64).map(|s| tree_root(s, &store).unwrap()).collect();
        for n in 1..=70u64 {
            for m in 1..=n {
                let (rm, rn) = (roots[m as usize], roots[n as usize]);
                let proof = consistency_proof(m, n, &store).unwrap();
                verify_consistency(m, n, &proof, &rm, &rn).unwrap();
                for i in 0..proof.len() {
                    let mut p = proof.clone();
                    flip(&mut p[i], 9);
                    assert!(
                        verify_consistency(m, n, &p, &rm, &rn).is_err(),
                        "{m}->{n} #{i}"
                    );
                }
                let mut extra = proof.clone();
                extra.push(rn);
                assert!(verify_consistency(m, n, &extra, &rm, &rn).is_err());
                if !proof.is_empty() {
                    assert!(verify_consistency(m, n, &proof[1..], &rm, &rn).is_err());
                    assert!(verify_consistency(m, n, &proof[..proof.len() - 1], &rm, &rn).is_err());
                }
                if m < n {
                    assert!(verify_consistency(m, n, &proof, &rn, &rn).is_err());
                    assert!(verify_consistency(m, n, &proof, &rm, &rm).is_err());
                    assert!(verify_consistency(m + 1, n, &proof, &rm, &rn).is_err());
                    if m > 1 {
                        assert!(verify_consistency(m - 1, n, &proof, &rm, &rn).is_err());
                    }
                    // As for inclusion, n is bound by root_n's checkpoint; a wrong n is caught
                    // whenever it changes the proof's shape.
                    for other in [n - 1, n + 1] {
                        if consistency_ranges(m, other).len() != proof.len() {
                            assert!(verify_consistency(m, other, &proof, &rm, &rn).is_err());
                        }
                    }
                }
            }
        }
        let r = roots[3];
        assert!(matches!(
            verify_consistency(0, 3, &[], &empty_root(), &r),
            Err(ProofError::InvalidSizes { .. })
        ));
        assert!(matches!(
            verify_consistency(4, 3, &[], &r, &r),
            Err(ProofError::InvalidSizes { .. })
        ));
        assert!(matches!(
            verify_consistency(3, 3, &[r], &r, &r),
            Err(ProofError::WrongLength { .. })
        ));
        assert_eq!(
            verify_consistency(3, 3, &[], &r, &roots[4]),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn large_indices_do_not_overflow() {
        // Proof lengths for huge trees are computed without overflow.
        assert_eq!(decompose_inclusion(u64::MAX - 1, u64::MAX), (0, 63));
        assert_eq!(decompose_inclusion(0, u64::MAX), (64, 0));
        let r = inclusion_ranges(0, u64::MAX);
        assert_eq!(r.len(), 64);
        let r = consistency_ranges(1, u64::MAX);
        assert_eq!(r.len(), 64);
    }
}
