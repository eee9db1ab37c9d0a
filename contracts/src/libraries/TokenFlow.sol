// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice The token moved a different amount than requested (fee-on-transfer or rebasing token).
error TokenTransferMismatch(address token, uint256 expected, uint256 received);
/// @notice Neither the permit nor an existing allowance covers the amount.
error InsufficientAllowance(address token, address owner, uint256 allowance, uint256 needed);

/// @title TokenFlow
/// @notice Token movements shared by the gridlease contracts.
/// @dev Every pull measures the balance change, so fee-on-transfer tokens are rejected instead of
/// mis-accounted (ESC-01, TOK-04). Permits are tried and their failure tolerated as long as the
/// allowance covers the amount, so a front-run permit cannot block the caller (ESC-02).
library TokenFlow {
    using SafeERC20 for IERC20;

    /// @notice Pull exactly `amount` of `token` from the caller; reverts if the contract receives
    /// less. Only ever from `msg.sender`: nobody can move a third party's approved funds.
    function pullExact(IERC20 token, uint256 amount) internal {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert TokenTransferMismatch(address(token), amount, received);
    }

    /// @notice Apply an EIP-2612 permit of `owner` to this contract, tolerating a permit that was
    /// already used (front-run) as long as the resulting allowance covers `amount`.
    /// @dev The owner is always the caller of the public entry point, never a parameter (ESC-03).
    function permitOrAllowance(
        IERC20 token,
        address owner,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) internal {
        try IERC20Permit(address(token)).permit(owner, address(this), amount, deadline, v, r, s) {}
        catch {
            uint256 allowance = token.allowance(owner, address(this));
            if (allowance < amount) revert InsufficientAllowance(address(token), owner, allowance, amount);
        }
    }

    /// @notice Send `amount` to `to` if possible; returns false instead of reverting when the token
    /// refuses (blacklisted or paused recipient), so the caller can book a pull credit instead.
    /// Zero amounts are skipped (TOK-07).
    function trySend(IERC20 token, address to, uint256 amount) internal returns (bool) {
        if (amount == 0) return true;
        return token.trySafeTransfer(to, amount);
    }

    /// @notice Whether `token` would pay `account` at all: a zero-amount transfer to it succeeds.
    /// False for an account the token froze (a USDC-style blacklist), and for tokens that refuse
    /// zero transfers; the protocol then pays such an account only to itself (MEC-16).
    function accepts(IERC20 token, address account) internal returns (bool) {
        return token.trySafeTransfer(account, 0);
    }

    /// @notice Send `amount` to `to`, reverting on failure. Zero amounts are skipped (TOK-07).
    function send(IERC20 token, address to, uint256 amount) internal {
        if (amount == 0) return;
        token.safeTransfer(to, amount);
    }
}
