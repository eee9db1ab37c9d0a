// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ResultTree} from "./ResultTree.sol";

/// @title MatmulProof
/// @notice On-chain check of one element of a built-in `matmul_i8` result: C = A x B with A (m x k)
/// and B (k x n) INT8 generated from a seed, C INT32 committed as a positional keccak Merkle tree.
/// Byte-for-byte the scheme of `gridlease_workload::matmul` and `gridlease_workload::merkle`:
/// - input byte x of stream `tag` is byte `x % 32` of `keccak256(seed ‖ tag ‖ uint64(x / 32))`;
///   `A[i][t]` is stream 'A' at `i*k + t`, `B[t][j]` is stream 'B' at `j*k + t`;
/// - C is row-major big-endian int32 (m * n * 4 bytes), committed as a `ResultTree`: 256 elements
///   (1 KiB) per leaf, leaf hashed as `keccak256(0x00 ‖ bytes)`, nodes as `keccak256(0x01 ‖ left ‖
///   right)`, the leaf level zero-padded to a power of two.
/// Inputs may instead be given as data (`DataJob`): A committed as a positional tree whose leaf i
/// is row i of A (k bytes), B as one whose leaf j is column j of B (k bytes); the proof then
/// carries that row and column with their Merkle proofs.
/// @dev Recomputing one element costs O(k): for a seeded job one row of A and one column of B are
/// regenerated in memory-free assembly, so no input data travels in calldata.
library MatmulProof {
    /// @notice Elements of C per Merkle leaf.
    uint256 internal constant LEAF_ELEMS = ResultTree.LEAF_BYTES / 4;
    /// @notice Largest k with exact INT32 accumulation.
    uint256 internal constant MAX_K = 65_536;
    /// @notice Type hash of a matmul job, the order's spec hash is `keccak256(abi.encode(TYPEHASH,
    /// seed, m, k, n))`.
    bytes32 internal constant TYPEHASH = keccak256("gridlease.matmul_i8.v1(bytes32 seed,uint32 m,uint32 k,uint32 n)");

    /// @notice Type hash of a matmul job with data inputs: its spec hash is
    /// `keccak256(abi.encode(DATA_TYPEHASH, aRoot, bRoot, m, k, n))`.
    bytes32 internal constant DATA_TYPEHASH =
        keccak256("gridlease.matmul_i8_data.v1(bytes32 aRoot,bytes32 bRoot,uint32 m,uint32 k,uint32 n)");

    /// @notice A matmul job.
    struct Job {
        bytes32 seed;
        uint32 m;
        uint32 k;
        uint32 n;
    }

    /// @notice A matmul job whose inputs are data: the roots of A's row tree and B's column tree.
    struct DataJob {
        bytes32 aRoot;
        bytes32 bRoot;
        uint32 m;
        uint32 k;
        uint32 n;
    }

    /// @notice Row i of A and column j of B of a data job, with their Merkle proofs.
    struct Operands {
        bytes aRow;
        bytes32[] aProof;
        bytes bCol;
        bytes32[] bProof;
    }

    /// @notice (i, j) is outside C, or the shape is invalid.
    error ElementOutOfRange(uint256 i, uint256 j);
    /// @notice The leaf does not have the length its position implies.
    error BadLeafLength(uint256 got, uint256 want);

    /// @notice The spec hash an order for `job` carries.
    function specHash(Job memory job) internal pure returns (bytes32) {
        return keccak256(abi.encode(TYPEHASH, job.seed, job.m, job.k, job.n));
    }

    /// @notice The spec hash an order for data job `job` carries.
    function dataSpecHash(DataJob memory job) internal pure returns (bytes32) {
        return keccak256(abi.encode(DATA_TYPEHASH, job.aRoot, job.bRoot, job.m, job.k, job.n));
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
        claimed = _claimed(job.m, job.k, job.n, root, i, j, leaf, proof);
        correct = dot(job.seed, job.k, i * job.k, j * job.k);
    }

    /// @notice `check` for a data job: row i of A and column j of B come in `ops`, proven against
    /// the job's input roots.
    function checkData(
        DataJob memory job,
        bytes32 root,
        uint256 i,
        uint256 j,
        Operands calldata ops,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) internal pure returns (int256 claimed, int256 correct) {
        claimed = _claimed(job.m, job.k, job.n, root, i, j, leaf, proof);
        if (ops.aRow.length != job.k) revert BadLeafLength(ops.aRow.length, job.k);
        if (ops.bCol.length != job.k) revert BadLeafLength(ops.bCol.length, job.k);
        ResultTree.verifyLeaf(job.aRoot, i, job.m, ops.aRow, ops.aProof);
        ResultTree.verifyLeaf(job.bRoot, j, job.n, ops.bCol, ops.bProof);
        correct = _dot(0, job.k, 0, 0, _offset(ops.aRow), _offset(ops.bCol));
    }

    /// @dev Checks (i, j) and the shape, proves `leaf` is C's leaf holding (i, j) under `root`,
    /// returns the element it claims.
    function _claimed(
        uint256 m,
        uint256 k,
        uint256 n,
        bytes32 root,
        uint256 i,
        uint256 j,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) private pure returns (int256) {
        if (i >= m || j >= n || k == 0 || k > MAX_K) revert ElementOutOfRange(i, j);
        uint256 total = m * n;
        uint256 e = i * n + j;
        uint256 inLeaf = total - (e - e % LEAF_ELEMS);
        if (inLeaf > LEAF_ELEMS) inLeaf = LEAF_ELEMS;
        if (leaf.length != inLeaf * 4) revert BadLeafLength(leaf.length, inLeaf * 4);
        ResultTree.verifyLeaf(root, e / LEAF_ELEMS, (total + LEAF_ELEMS - 1) / LEAF_ELEMS, leaf, proof);
        uint256 off = (e % LEAF_ELEMS) * 4;
        return int256(int32(uint32(bytes4(leaf[off:off + 4]))));
    }

    function _offset(bytes calldata b) private pure returns (uint256 o) {
        assembly ("memory-safe") {
            o := b.offset
        }
    }

    /// @notice Σ_t A_stream[aStart + t] * B_stream[bStart + t] for t < k, from the seed.
    /// @dev Eight products per MUL (SWAR): each group of 8 bytes is moved to offset binary
    /// (x + 128 = x XOR 0x80), spread into 32-bit lanes (A's lanes reversed), and multiplied; lane 7
    /// of the product is Σ a'b' (no lane overflows: each partial sum < 8 * 255^2 < 2^32). Then
    /// Σ ab = Σ a'b' - 128 (Σ a' + Σ b') + 128^2 * k, the lane sums accumulated lane-wise.
    function dot(bytes32 seed, uint256 k, uint256 aStart, uint256 bStart) internal pure returns (int256 acc) {
        return _dot(seed, k, aStart, bStart, 0, 0);
    }

    /// @dev `dot`, where a non-zero `aData` / `bData` is the calldata offset of k bytes to read that
    /// operand from instead of the seed's stream.
    function _dot(bytes32 seed, uint256 k, uint256 aStart, uint256 bStart, uint256 aData, uint256 bData)
        private
        pure
        returns (int256 acc)
    {
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
                // Data operands are read 32 bytes at a time from t (offset 0 in the word); bytes
                // past k are masked off below by `run`. (A and B stay written out: a shared Yul
                // function with two returns puts the loop one slot past the stack limit.)
                let oa := 0
                let wa := 0
                switch aData
                case 0 {
                    mstore8(add(buf, 32), 0x41)
                    mstore(add(buf, 33), shl(192, shr(5, xa)))
                    oa := and(xa, 31)
                    wa := shl(shl(3, oa), keccak256(buf, 41))
                }
                default { wa := calldataload(add(aData, t)) }
                let ob := 0
                let wb := 0
                switch bData
                case 0 {
                    mstore8(add(buf, 32), 0x42)
                    mstore(add(buf, 33), shl(192, shr(5, xb)))
                    ob := and(xb, 31)
                    wb := shl(shl(3, ob), keccak256(buf, 41))
                }
                default { wb := calldataload(add(bData, t)) }
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
}
