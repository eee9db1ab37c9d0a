//! Positional keccak Merkle trees (DESIGN 4.3), byte-for-byte what `MatmulProof.sol` verifies.
//!
//! - leaf `i` over `bytes`: `keccak256(0x00 ‖ uint64_be(i) ‖ bytes)`
//! - node: `keccak256(0x01 ‖ left ‖ right)`
//! - the leaf level is padded with `bytes32(0)` up to a power of two (at least one leaf), so the
//!   depth is `ceil(log2(leaves))` and a proof is exactly `depth` siblings, bottom-up; bit `d` of
//!   the leaf index says whether the running hash is the right child at level `d`.
//!
//! Unlike OpenZeppelin's sorted-pair `MerkleProof`, the position is bound: a leaf proven at index
//! `i` cannot be replayed at another index.

use alloy::primitives::{B256, keccak256};

/// Hash of leaf `index` carrying `bytes`.
pub fn leaf_hash(index: u64, bytes: &[u8]) -> B256 {
    let mut buf = Vec::with_capacity(9 + bytes.len());
    buf.push(0x00);
    buf.extend_from_slice(&index.to_be_bytes());
    buf.extend_from_slice(bytes);
    keccak256(&buf)
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

    /// Build over `data` cut into leaves of `leaf_bytes` (the last may be shorter).
    pub fn from_chunks(data: &[u8], leaf_bytes: usize) -> Self {
        let hashes = data
            .chunks(leaf_bytes)
            .enumerate()
            .map(|(i, c)| leaf_hash(i as u64, c))
            .collect();
        Self::from_leaf_hashes(hashes)
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
        let mut idx = index as usize;
        let mut out = Vec::with_capacity(self.levels.len().saturating_sub(1));
        for level in &self.levels[..self.levels.len() - 1] {
            out.push(level[idx ^ 1]);
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
        && root_from_proof(leaf_hash(index, bytes), index, proof) == root
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
        assert_eq!(t.root(), leaf_hash(0, b"abc"));
        assert!(verify(t.root(), 1, 0, b"abc", &[]));
    }
}
