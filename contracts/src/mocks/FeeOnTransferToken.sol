// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MockStablecoin} from "./MockStablecoin.sol";

/// @title FeeOnTransferToken
/// @notice Burns 1% of every transfer between two non-zero accounts (TOK-04 fixture).
contract FeeOnTransferToken is MockStablecoin {
    constructor() MockStablecoin("Fee Token", "FEE", 6) {}

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}
