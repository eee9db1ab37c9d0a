// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title MockStablecoin
/// @notice The devnet stablecoin: a plain ERC-20 with EIP-2612 permit and configurable decimals.
/// Anyone may mint (it is a devnet faucet).
/// @dev Never deploy to a real network. USDC's blacklist and pause live in `UsdcLikeToken`.
contract MockStablecoin is ERC20Permit {
    uint8 private immutable _decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) ERC20Permit(name_) {
        _decimals = decimals_;
    }

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Mint `amount` to `to` (faucet).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
