// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MockStablecoin} from "./MockStablecoin.sol";

/// @title UsdcLikeToken
/// @notice USDC-like fixture (TOK-01, TOK-05, TOK-06): 6 decimals, permit, a blacklist that blocks
/// sending and receiving, and a global pause. Only the deployer (admin) may blacklist and pause.
contract UsdcLikeToken is MockStablecoin {
    /// @notice The account is blacklisted.
    error Blacklisted(address account);
    /// @notice Transfers are paused.
    error TokenPaused();
    /// @notice Only the admin may do this.
    error NotAdmin(address caller);

    address public immutable admin;
    bool public paused;
    mapping(address => bool) public blacklisted;

    constructor() MockStablecoin("USD Coin", "USDC", 6) {
        admin = msg.sender;
    }

    /// @notice Blacklist or un-blacklist `account`.
    function setBlacklisted(address account, bool value) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        blacklisted[account] = value;
    }

    /// @notice Pause or unpause all transfers.
    function setPaused(bool value) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        paused = value;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (paused) revert TokenPaused();
        if (blacklisted[from]) revert Blacklisted(from);
        if (blacklisted[to]) revert Blacklisted(to);
        super._update(from, to, value);
    }
}
