// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ResultTree
/// @notice The result commitment of gridlease v2, byte for byte `gridlease_workload::merkle`:
/// a result of `size` bytes is cut into leaves of `LEAF_BYTES` (the last one shorter; an empty
/// result is one empty leaf), leaf hash `keccak256(0x00 ‖ bytes)`, node hash `keccak256(0x01 ‖
/// left ‖ right)`, the leaf level padded with `bytes32(0)` up to a power of two. A posted result is
/// the pair (root, size), stored as `keccak256(abi.encode(root, size))`.
/// @dev The leaf carries no index: a proof has exactly `depth(leafCount(size))` siblings and its
/// bits are the position, so a leaf cannot be replayed elsewhere. 1 KiB leaves keep a GPU's Merkle
/// commitment near its memory bandwidth (eight keccak permutations per KiB instead of sixty-four
/// for 32-byte leaves) for 1 KiB more calldata per proof or challenge answer.
library ResultTree {
    /// @notice Bytes per leaf.
    uint256 internal constant LEAF_BYTES = 1024;
    /// @notice Largest result size (2^48 - 1 bytes).
    uint256 internal constant MAX_SIZE = type(uint48).max;

    /// @notice The proof does not have the tree's depth.
    error BadProofLength(uint256 got, uint256 want);
    /// @notice The leaf is not part of the committed tree.
    error NotInResult(bytes32 root, bytes32 computed);

    /// @notice The stored commitment of a result.
    function commitment(bytes32 root, uint256 size) internal pure returns (bytes32) {
        return keccak256(abi.encode(root, size));
    }

    /// @notice Leaves of a `size`-byte result (at least one).
    function leafCount(uint256 size) internal pure returns (uint256) {
        return size == 0 ? 1 : (size + LEAF_BYTES - 1) / LEAF_BYTES;
    }

    /// @notice Length of leaf `index` of a `size`-byte result (`index < leafCount(size)`).
    function leafLength(uint256 size, uint256 index) internal pure returns (uint256) {
        uint256 from = index * LEAF_BYTES;
        uint256 rest = size > from ? size - from : 0;
        return rest < LEAF_BYTES ? rest : LEAF_BYTES;
    }

    /// @notice Depth of a tree of `leaves` leaves: ceil(log2(leaves)).
    function depth(uint256 leaves) internal pure returns (uint256 d) {
        while ((uint256(1) << d) < leaves) ++d;
    }

    /// @notice Hash of a leaf carrying `bytes_`.
    function leafHash(bytes calldata bytes_) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x00)
            calldatacopy(add(p, 1), bytes_.offset, bytes_.length)
            h := keccak256(p, add(bytes_.length, 1))
        }
    }

    /// @notice Root of an all-padding subtree of height `level`.
    function zeroHash(uint256 level) internal pure returns (bytes32 h) {
        for (uint256 l; l < level; ++l) {
            h = _node(h, h);
        }
    }

    /// @notice Reverts unless `bytes_` is leaf `index` of a tree of `leaves` leaves under `root`.
    function verifyLeaf(bytes32 root, uint256 index, uint256 leaves, bytes calldata bytes_, bytes32[] calldata proof)
        internal
        pure
    {
        verifyNode(root, leafHash(bytes_), index, depth(leaves), proof);
    }

    /// @notice Reverts unless `node` sits at position `index` of its level, `height` levels below
    /// `root` (`proof` holds exactly `height` siblings, bottom-up).
    function verifyNode(bytes32 root, bytes32 node, uint256 index, uint256 height, bytes32[] calldata proof)
        internal
        pure
    {
        if (proof.length != height) revert BadProofLength(proof.length, height);
        bytes32 h = node;
        for (uint256 d; d < height; ++d) {
            h = (index >> d) & 1 == 1 ? _node(proof[d], h) : _node(h, proof[d]);
        }
        if (h != root) revert NotInResult(root, h);
    }

    function _node(bytes32 left, bytes32 right) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            h := keccak256(p, 65)
        }
    }
}
