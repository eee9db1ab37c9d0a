// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MatmulProof} from "../libraries/MatmulProof.sol";

/// @notice Exposes `MatmulProof` for the shared test vectors and gas figures (not deployed).
contract MatmulProofHarness {
    /// @notice Emitted by `checkTx` so a transaction's gas can be measured.
    event Checked(int256 claimed, int256 correct);

    function specHash(MatmulProof.Job calldata job) external pure returns (bytes32) {
        return MatmulProof.specHash(job);
    }

    function generate(bytes32 seed, bytes1 tag, uint256 start, uint256 count) external pure returns (bytes memory) {
        return MatmulProof.generate(seed, tag, start, count);
    }

    function dot(bytes32 seed, uint256 k, uint256 i, uint256 j) external pure returns (int256) {
        return MatmulProof.dot(seed, k, i * k, j * k);
    }

    function check(
        MatmulProof.Job calldata job,
        bytes32 root,
        uint256 i,
        uint256 j,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) external pure returns (int256 claimed, int256 correct) {
        return MatmulProof.check(job, root, i, j, leaf, proof);
    }

    /// @notice `check` as a state-changing call, for gas measurement.
    function checkTx(
        MatmulProof.Job calldata job,
        bytes32 root,
        uint256 i,
        uint256 j,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) external returns (bool fraud) {
        (int256 claimed, int256 correct) = MatmulProof.check(job, root, i, j, leaf, proof);
        emit Checked(claimed, correct);
        return claimed != correct;
    }
}
