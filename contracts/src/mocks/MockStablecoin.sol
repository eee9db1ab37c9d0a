// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title MockStablecoin
/// @notice USDC-like test token: EIP-2612 permit, configurable decimals, a blacklist and a pause.
/// Anyone may mint (it is a devnet faucet); only the admin may blacklist and pause.
/// @dev Never deploy to a real network.
contract MockStablecoin is ERC20Permit {
    /// @notice The account is blacklisted.
    error Blacklisted(address account);
    /// @notice Transfers are paused.
    error TokenPaused();
    /// @notice Only the admin may do this.
    error NotAdmin(address caller);

    uint8 private immutable _decimals;
    address public immutable admin;
    bool public paused;
    mapping(address => bool) public blacklisted;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) ERC20Permit(name_) {
        _decimals = decimals_;
        admin = msg.sender;
    }

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Mint `amount` to `to` (faucet).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Blacklist or un-blacklist `account` (USDC-style).
    function setBlacklisted(address account, bool value) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        blacklisted[account] = value;
    }

    /// @notice Pause or unpause all transfers.
    function setPaused(bool value) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        paused = value;
    }

    function _update(address from, address to, uint256 value) internal virtual override {
        if (paused) revert TokenPaused();
        if (blacklisted[from]) revert Blacklisted(from);
        if (blacklisted[to]) revert Blacklisted(to);
        super._update(from, to, value);
    }
}
