// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MatmulProof
/// @notice On-chain check of one element of a built-in `matmul_i8` result: C = A x B with A (m x k)
/// and B (k x n) INT8 generated from a seed, C INT32 committed as a positional keccak Merkle tree.
/// Byte-for-byte the scheme of `gridlease_core::matmul` and `gridlease_core::merkle`:
/// - input byte x of stream `tag` is byte `x % 32` of `keccak256(seed ‖ tag ‖ uint64(x / 32))`;
///   `A[i][t]` is stream 'A' at `i*k + t`, `B[t][j]` is stream 'B' at `j*k + t`;
/// - C is row-major big-endian int32, 8 elements per leaf, leaf `l` hashed as
///   `keccak256(0x00 ‖ uint64(l) ‖ bytes)`, nodes as `keccak256(0x01 ‖ left ‖ right)`, the leaf
///   level zero-padded to a power of two.
/// @dev Recomputing one element costs O(k): one row of A and one column of B are regenerated in
/// memory-free assembly, so no input data travels in calldata.
library MatmulProof {
    /// @notice Elements of C per Merkle leaf.
    uint256 internal constant LEAF_ELEMS = 8;
    /// @notice Largest k with exact INT32 accumulation.
    uint256 internal constant MAX_K = 65_536;
    /// @notice Type hash of a matmul job, the order's spec hash is `keccak256(abi.encode(TYPEHASH,
    /// seed, m, k, n))`.
    bytes32 internal constant TYPEHASH = keccak256("gridlease.matmul_i8.v1(bytes32 seed,uint32 m,uint32 k,uint32 n)");

    /// @notice A matmul job.
    struct Job {
        bytes32 seed;
        uint32 m;
        uint32 k;
        uint32 n;
    }

    /// @notice (i, j) is outside C, or the shape is invalid.
    error ElementOutOfRange(uint256 i, uint256 j);
    /// @notice The leaf does not have the length its position implies.
    error BadLeafLength(uint256 got, uint256 want);
    /// @notice The proof does not have the tree's depth.
    error BadProofLength(uint256 got, uint256 want);
    /// @notice The leaf is not part of the committed result.
    error NotInResult(bytes32 root, bytes32 computed);

    /// @notice The spec hash an order for `job` carries.
    function specHash(Job memory job) internal pure returns (bytes32) {
        return keccak256(abi.encode(TYPEHASH, job.seed, job.m, job.k, job.n));
    }

    /// @notice Check element (i, j) of the result committed as `root`: proves `leaf` is C's leaf
    /// holding it, and returns what the result claims there and the true value.
    function check(
        Job memory job,
        bytes32 root,
        uint256 i,
        uint256 j,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) internal pure returns (int256 claimed, int256 correct) {
        if (i >= job.m || j >= job.n || job.k == 0 || job.k > MAX_K) revert ElementOutOfRange(i, j);
        uint256 total = uint256(job.m) * job.n;
        uint256 e = i * job.n + j;
        uint256 leafIndex = e / LEAF_ELEMS;
        uint256 leaves = (total + LEAF_ELEMS - 1) / LEAF_ELEMS;
        uint256 inLeaf = total - (e - e % LEAF_ELEMS);
        if (inLeaf > LEAF_ELEMS) inLeaf = LEAF_ELEMS;
        if (leaf.length != inLeaf * 4) revert BadLeafLength(leaf.length, inLeaf * 4);
        uint256 depth = _depth(leaves);
        if (proof.length != depth) revert BadProofLength(proof.length, depth);

        bytes32 h = keccak256(abi.encodePacked(bytes1(0x00), uint64(leafIndex), leaf));
        for (uint256 d; d < depth; ++d) {
            h = (leafIndex >> d) & 1 == 1
                ? keccak256(abi.encodePacked(bytes1(0x01), proof[d], h))
                : keccak256(abi.encodePacked(bytes1(0x01), h, proof[d]));
        }
        if (h != root) revert NotInResult(root, h);

        uint256 off = (e % LEAF_ELEMS) * 4;
        claimed = int256(int32(uint32(bytes4(leaf[off:off + 4]))));
        correct = dot(job.seed, job.k, i * job.k, j * job.k);
    }

    /// @notice Σ_t A_stream[aStart + t] * B_stream[bStart + t] for t < k, from the seed.
    /// @dev Eight products per MUL (SWAR): each group of 8 bytes is moved to offset binary
    /// (x + 128 = x XOR 0x80), spread into 32-bit lanes (A's lanes reversed), and multiplied; lane 7
    /// of the product is Σ a'b' (no lane overflows: each partial sum < 8 * 255^2 < 2^32). Then
    /// Σ ab = Σ a'b' - 128 (Σ a' + Σ b') + 128^2 * k, the lane sums accumulated lane-wise.
    function dot(bytes32 seed, uint256 k, uint256 aStart, uint256 bStart) internal pure returns (int256 acc) {
        assembly ("memory-safe") {
            // byte p of a 64-bit word (p = 0 least significant) -> 32-bit lane p
            function spread(x) -> y {
                y := or(and(x, 0xffffffff), shl(96, and(x, 0xffffffff00000000)))
                let m := 0xffff0000000000000000000000000000ffff0000
                y := or(and(y, not(m)), shl(48, and(y, m)))
                m := 0xff00000000000000ff00000000000000ff00000000000000ff00
                y := or(and(y, not(m)), shl(24, and(y, m)))
            }
            // byte p -> lane 7 - p
            function spreadReversed(x) -> y {
                y := or(shr(32, x), shl(128, and(x, 0xffffffff)))
                y := or(shl(64, and(y, 0xffff0000000000000000000000000000ffff)), shr(16, and(y, 0xffff0000000000000000000000000000ffff0000)))
                y := or(shl(32, and(y, 0xff00000000000000ff00000000000000ff00000000000000ff)), shr(8, and(y, 0xff00000000000000ff00000000000000ff00000000000000ff00)))
            }
            let buf := mload(0x40)
            mstore(buf, seed)
            let sumA := 0
            let sumB := 0
            let raw := 0
            let t := 0
            for {} lt(t, k) {} {
                let xa := add(aStart, t)
                let xb := add(bStart, t)
                mstore8(add(buf, 32), 0x41)
                mstore(add(buf, 33), shl(192, shr(5, xa)))
                let oa := and(xa, 31)
                let wa := shl(shl(3, oa), keccak256(buf, 41))
                mstore8(add(buf, 32), 0x42)
                mstore(add(buf, 33), shl(192, shr(5, xb)))
                let ob := and(xb, 31)
                let wb := shl(shl(3, ob), keccak256(buf, 41))
                // Elements until either stream crosses its 32-byte block, or k runs out.
                let run := sub(32, oa)
                if lt(oa, ob) { run := sub(32, ob) }
                if gt(run, sub(k, t)) { run := sub(k, t) }
                t := add(t, run)
                for {} run {} {
                    let cnt := 8
                    // Top `cnt` bytes of a 64-bit group, offset binary; unused bytes zero.
                    let keep := 0xffffffffffffffff
                    if lt(run, 8) {
                        cnt := run
                        keep := shl(sub(64, shl(3, cnt)), sub(exp(256, cnt), 1))
                    }
                    let ga := and(xor(shr(192, wa), 0x8080808080808080), keep)
                    let gb := and(xor(shr(192, wb), 0x8080808080808080), keep)
                    // Group element 0 is the most significant byte (p = 7): A reversed puts element
                    // e in lane e, B natural puts it in lane 7 - e, so lane 7 pairs equal elements.
                    let sa := spreadReversed(ga)
                    let sb := spread(gb)
                    raw := add(raw, shr(224, mul(sa, sb)))
                    sumA := add(sumA, sa)
                    sumB := add(sumB, sb)
                    wa := shl(64, wa)
                    wb := shl(64, wb)
                    run := sub(run, cnt)
                }
            }
            // Σ of all lanes: lane 7 of x * (1 in every lane).
            let ones := 0x0000000100000001000000010000000100000001000000010000000100000001
            let lanes := add(shr(224, mul(sumA, ones)), shr(224, mul(sumB, ones)))
            acc := add(sub(raw, shl(7, lanes)), shl(14, k))
        }
    }

    /// @notice `count` bytes of stream `tag` from element `start` (used by tests and tools).
    function generate(bytes32 seed, bytes1 tag, uint256 start, uint256 count) internal pure returns (bytes memory out) {
        out = new bytes(count);
        for (uint256 x = start; x < start + count; ++x) {
            bytes32 w = keccak256(abi.encodePacked(seed, tag, uint64(x / 32)));
            out[x - start] = w[x % 32];
        }
    }

    function _depth(uint256 leaves) private pure returns (uint256 d) {
        while ((uint256(1) << d) < leaves) ++d;
    }
}
