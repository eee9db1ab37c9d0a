// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MockStablecoin} from "./MockStablecoin.sol";

/// @title UsdcLikeToken
/// @notice USDC-like fixture (TOK-01, TOK-05, TOK-06): 6 decimals, permit, a blacklist that blocks
/// sending and receiving, and a global pause. Only the deployer (admin) may blacklist and pause.
/// As Circle's FiatToken, a paused token also refuses `permit`, with Circle's require message: a
/// permitted order then finds no allowance, and the client must find the pause behind that.
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

    /// @notice EIP-2612 permit, refused while paused (Circle's `whenNotPaused`).
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        public
        override
    {
        require(!paused, "Pausable: paused");
        super.permit(owner, spender, value, deadline, v, r, s);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (paused) revert TokenPaused();
        if (blacklisted[from]) revert Blacklisted(from);
        if (blacklisted[to]) revert Blacklisted(to);
        super._update(from, to, value);
    }
}
