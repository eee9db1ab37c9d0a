//! Positional keccak Merkle trees (DESIGN 4.3): the result commitment of protocol v2, byte for
//! byte what `ResultTree.sol` and `MatmulProof.sol` verify.
//!
//! - leaf over `bytes`: `keccak256(0x00 ‖ bytes)`
//! - node: `keccak256(0x01 ‖ left ‖ right)`
//! - the leaf level is padded with `bytes32(0)` up to a power of two (at least one leaf), so the
//!   depth is `ceil(log2(leaves))` and a proof is exactly `depth` siblings, bottom-up; bit `d` of
//!   the leaf index says whether the running hash is the right child at level `d`.
//! - a **result** of `size` bytes is cut into leaves of [`RESULT_LEAF_BYTES`] (the last shorter;
//!   an empty result is one empty leaf, so its root is `keccak256(0x00)`, never zero) and posted
//!   as (root, size) ([`Commitment`]).
//!
//! Unlike OpenZeppelin's sorted-pair `MerkleProof`, the position is bound: the proof's length is
//! fixed by the tree's size and its bits are the index, so a leaf proven at index `i` cannot be
//! replayed at another index (the leaf itself needs no index).

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::SolValue;

/// Bytes per leaf of a result tree (1 KiB: a GPU hashes it at memory speed; a proof carries it).
pub const RESULT_LEAF_BYTES: usize = 1024;

/// Hash of a leaf carrying `bytes`.
pub fn leaf_hash(bytes: &[u8]) -> B256 {
    let mut buf = Vec::with_capacity(1 + bytes.len());
    buf.push(0x00);
    buf.extend_from_slice(bytes);
    keccak256(&buf)
}

/// Root of an all-padding subtree `level` levels high (`bytes32(0)` at level 0).
pub fn zero_hash(level: u32) -> B256 {
    (0..level).fold(B256::ZERO, |h, _| node_hash(h, h))
}

/// Leaves of a result of `size` bytes (at least one).
pub fn result_leaves(size: u64) -> u64 {
    size.div_ceil(RESULT_LEAF_BYTES as u64).max(1)
}

/// A posted result: the root of its tree and its length, as `Results.postResult` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Commitment {
    /// Root of the tree over the result in [`RESULT_LEAF_BYTES`] leaves.
    pub root: B256,
    /// The result's length in bytes.
    pub size: u64,
}

impl Commitment {
    /// The commitment of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self {
            root: MerkleTree::result(data).root(),
            size: data.len() as u64,
        }
    }

    /// What `Results.resultOf` stores: `keccak256(abi.encode(root, size))`.
    pub fn hash(&self) -> B256 {
        keccak256((self.root, alloy_primitives::U256::from(self.size)).abi_encode())
    }

    /// Leaves of the result's tree.
    pub fn leaves(&self) -> u64 {
        result_leaves(self.size)
    }
}

/// Hash of an inner node.
pub fn node_hash(left: B256, right: B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// Depth of a tree of `leaves` leaves.
pub fn depth(leaves: u64) -> u32 {
    leaves.max(1).next_power_of_two().trailing_zeros()
}

/// A whole tree, every level kept (for proving).
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// `levels[0]` are the (padded) leaves, the last level is the root alone.
    levels: Vec<Vec<B256>>,
    leaves: u64,
}

impl MerkleTree {
    /// Build over leaf hashes.
    pub fn from_leaf_hashes(mut level: Vec<B256>) -> Self {
        let leaves = level.len() as u64;
        let width = (leaves.max(1)).next_power_of_two() as usize;
        level.resize(width, B256::ZERO);
        let mut levels = vec![level];
        while levels.last().map_or(0, Vec::len) > 1 {
            let prev = levels.last().expect("a level");
            let next = prev.chunks(2).map(|p| node_hash(p[0], p[1])).collect();
            levels.push(next);
        }
        Self { levels, leaves }
    }

    /// Build over `data` cut into leaves of `leaf_bytes` (the last may be shorter; no data is one
    /// empty leaf).
    pub fn from_chunks(data: &[u8], leaf_bytes: usize) -> Self {
        if data.is_empty() {
            return Self::from_leaf_hashes(vec![leaf_hash(&[])]);
        }
        let hashes = data.chunks(leaf_bytes).map(leaf_hash).collect();
        Self::from_leaf_hashes(hashes)
    }

    /// The result tree of `data` ([`RESULT_LEAF_BYTES`] leaves).
    pub fn result(data: &[u8]) -> Self {
        Self::from_chunks(data, RESULT_LEAF_BYTES)
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_default()
    }

    /// Number of real (unpadded) leaves.
    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// Siblings of leaf `index`, bottom-up.
    pub fn proof(&self, index: u64) -> Vec<B256> {
        self.proof_at(0, index)
    }

    /// Depth of the tree (levels above the leaves).
    pub fn depth(&self) -> usize {
        self.levels.len() - 1
    }

    /// The node at position `index` of `level` (0: the padded leaves).
    pub fn node(&self, level: usize, index: u64) -> B256 {
        self.levels[level][index as usize]
    }

    /// Siblings of the node at (`level`, `index`) up to the root, bottom-up.
    pub fn proof_at(&self, level: usize, index: u64) -> Vec<B256> {
        let mut idx = index as usize;
        let mut out = Vec::with_capacity(self.depth().saturating_sub(level));
        for nodes in &self.levels[level..self.levels.len() - 1] {
            out.push(nodes[idx ^ 1]);
            idx /= 2;
        }
        out
    }
}

/// Root implied by `leaf` at `index` and its `proof`.
pub fn root_from_proof(leaf: B256, index: u64, proof: &[B256]) -> B256 {
    let mut h = leaf;
    for (d, sib) in proof.iter().enumerate() {
        h = if (index >> d) & 1 == 1 {
            node_hash(*sib, h)
        } else {
            node_hash(h, *sib)
        };
    }
    h
}

/// Check a proof of `bytes` at leaf `index` under `root` in a tree of `leaves` leaves.
pub fn verify(root: B256, leaves: u64, index: u64, bytes: &[u8], proof: &[B256]) -> bool {
    index < leaves
        && proof.len() == depth(leaves) as usize
        && root_from_proof(leaf_hash(bytes), index, proof) == root
}

/// The bytes of leaf `index` of a result `data` (empty past the end).
pub fn result_chunk(data: &[u8], index: u64) -> &[u8] {
    let from = (index as usize)
        .saturating_mul(RESULT_LEAF_BYTES)
        .min(data.len());
    let to = from.saturating_add(RESULT_LEAF_BYTES).min(data.len());
    &data[from..to]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_proves_and_only_at_its_position() {
        for n in [1usize, 2, 3, 5, 8, 13] {
            let data: Vec<u8> = (0..n * 4).map(|b| b as u8).collect();
            let t = MerkleTree::from_chunks(&data, 4);
            assert_eq!(t.leaves(), n as u64);
            for (i, chunk) in data.chunks(4).enumerate() {
                let p = t.proof(i as u64);
                assert_eq!(p.len(), depth(n as u64) as usize);
                assert!(verify(t.root(), n as u64, i as u64, chunk, &p));
                // Same bytes, other position: refused.
                let other = (i as u64 + 1) % n as u64;
                if other != i as u64 {
                    assert!(!verify(t.root(), n as u64, other, chunk, &p));
                }
                let mut bad = chunk.to_vec();
                bad[0] ^= 1;
                assert!(!verify(t.root(), n as u64, i as u64, &bad, &p));
            }
        }
    }

    #[test]
    fn single_leaf_root_is_the_leaf() {
        let t = MerkleTree::from_chunks(b"abc", 32);
        assert_eq!(t.root(), leaf_hash(b"abc"));
        assert!(verify(t.root(), 1, 0, b"abc", &[]));
    }

    #[test]
    fn an_empty_result_has_a_non_zero_root() {
        let c = Commitment::of(&[]);
        assert_eq!(c.root, keccak256([0u8]));
        assert_ne!(c.root, B256::ZERO);
        assert_eq!((c.size, c.leaves()), (0, 1));
        assert!(verify(c.root, 1, 0, &[], &[]));
    }

    #[test]
    fn result_leaves_are_one_kib_and_padding_is_zero_subtrees() {
        let data: Vec<u8> = (0..RESULT_LEAF_BYTES * 5 + 7).map(|b| b as u8).collect();
        let c = Commitment::of(&data);
        assert_eq!(c.leaves(), 6);
        let t = MerkleTree::result(&data);
        // 6 leaves pad to 8: leaves 6 and 7 are zero, their parent is zero_hash(1).
        assert_eq!(t.levels[0][6], B256::ZERO);
        assert_eq!(t.levels[1][3], zero_hash(1));
        assert_eq!(result_chunk(&data, 5).len(), 7);
        assert!(result_chunk(&data, 6).is_empty());
        for i in 0..6 {
            assert!(verify(c.root, 6, i, result_chunk(&data, i), &t.proof(i)));
        }
    }
}
