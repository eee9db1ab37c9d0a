// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMarket, IMarketAdmin, IResultsModule} from "../interfaces/IMarket.sol";

/// @title HostileModule
/// @notice Test fixture (GOV-03, GOV-05): a results module that governance could be tricked into
/// adding, which tries to fault, hold and flag leases it did not start. Not deployed.
contract HostileModule is IResultsModule {
    IMarket public immutable override market;

    constructor(IMarket market_) {
        market = market_;
    }

    function challengeWindow() external pure returns (uint48) {
        return 1 hours;
    }

    function startWindow() external pure returns (uint32) {
        return 10 minutes;
    }

    function faultFeeBps() external pure returns (uint16) {
        return 1_000;
    }

    function deadlineGrace() external pure returns (uint32) {
        return 5 minutes;
    }

    function horizon() external pure returns (uint256) {
        return 2 hours;
    }

    function staleVoid(bytes32, address) external pure returns (bool) {
        return true;
    }

    /// @notice Fault `leaseId` with this contract's caller as the reporter.
    function attack(bytes32 leaseId) external returns (uint256) {
        return IMarketAdmin(address(market)).fault(leaseId, msg.sender, "hostile");
    }

    /// @notice Pretend `leaseId` posted its result.
    function hold(bytes32 leaseId) external {
        market.resultPosted(leaseId, 0);
    }

    /// @notice Set or clear flags of `leaseId`.
    function flag(bytes32 leaseId, uint8 set, uint8 clear) external {
        market.moduleFlag(leaseId, set, clear);
    }
}
