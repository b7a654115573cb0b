//! Which complete-subtree hashes an append creates and which ones a root needs (RFC 6962 tree,
//! Go sumdb "stored hashes" layout). Pure functions; the store does the reading and writing.

use sha2::{Digest, Sha256};

use crate::NodeRef;

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The left siblings that appending leaf `n` needs, lowest level first.
pub fn append_needs(n: u64) -> Vec<NodeRef> {
    (0..n.trailing_ones())
        .map(|l| NodeRef {
            level: l as u8,
            index: (n >> l) - 1,
        })
        .collect()
}

/// The hashes appending leaf `n` creates: the leaf itself and one node per trailing one bit.
/// `lefts` are the hashes of [`append_needs`]`(n)` in the same order.
pub fn append_hashes(n: u64, leaf: [u8; 32], lefts: &[[u8; 32]]) -> Vec<(NodeRef, [u8; 32])> {
    let mut out = vec![(NodeRef { level: 0, index: n }, leaf)];
    let mut cur = leaf;
    for (l, left) in lefts.iter().enumerate() {
        cur = node_hash(left, &cur);
        let level = (l + 1) as u8;
        out.push((
            NodeRef {
                level,
                index: n >> level,
            },
            cur,
        ));
    }
    out
}

/// The complete subtrees that make up a tree of `size` leaves, left to right.
pub fn root_nodes(size: u64) -> Vec<NodeRef> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for bit in (0..64u32).rev() {
        if size & (1u64 << bit) != 0 {
            out.push(NodeRef {
                level: bit as u8,
                index: offset >> bit,
            });
            offset += 1u64 << bit;
        }
    }
    out
}

/// Folds the hashes of [`root_nodes`] into the tree head (SHA-256("") for an empty tree).
pub fn fold_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return Sha256::digest([]).into();
    };
    iter.fold(*last, |acc, h| node_hash(h, &acc))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn leaf(d: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(d);
        h.finalize().into()
    }

    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn stored_hashes_give_the_rfc_root_for_every_size() {
        let mut store: HashMap<NodeRef, [u8; 32]> = HashMap::new();
        let mut leaves = Vec::new();
        for n in 0..300u64 {
            let l = leaf(&n.to_be_bytes());
            leaves.push(l);
            let lefts: Vec<_> = append_needs(n).iter().map(|id| store[id]).collect();
            for (id, h) in append_hashes(n, l, &lefts) {
                store.insert(id, h);
            }
            let hs: Vec<_> = root_nodes(n + 1).iter().map(|id| store[id]).collect();
            assert_eq!(fold_root(&hs), mth(&leaves), "size {}", n + 1);
        }
    }

    #[test]
    fn rfc6962_known_answer() {
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
        let leaves: Vec<_> = inputs.iter().map(|d| leaf(d)).collect();
        assert_eq!(
            hex::encode(mth(&leaves)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }
}
