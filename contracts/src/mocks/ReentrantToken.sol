// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MockStablecoin} from "./MockStablecoin.sol";

/// @title ReentrantToken
/// @notice ERC-777-style hook fixture (ESC-13): on every transfer it calls a configured target
/// with configured calldata, and records whether that re-entrant call succeeded.
contract ReentrantToken is MockStablecoin {
    address public hookTarget;
    bytes public hookData;
    bool public lastHookSucceeded;
    bytes public lastHookReturn;
    bool private _inHook;

    constructor() MockStablecoin("Hook Token", "HOOK", 6) {}

    /// @notice Arm the hook (empty data disarms it).
    function setHook(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (hookData.length != 0 && !_inHook && from != address(0)) {
            _inHook = true;
            (lastHookSucceeded, lastHookReturn) = hookTarget.call(hookData);
            _inHook = false;
        }
    }
}
