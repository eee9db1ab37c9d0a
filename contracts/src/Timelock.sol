// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title Timelock
/// @notice Governance of gridlease: OpenZeppelin's TimelockController, owner of `Market` and
/// `Staking`. Every parameter and module change is scheduled, waits `getMinDelay()` and is then
/// executed, so users see it coming; the market refuses a new results module unless the delay covers
/// the module's fault horizon (GOV-01). Changes never reach running leases (GOV-02).
contract Timelock is TimelockController {
    /// @param minDelay Seconds between scheduling and executing an operation.
    /// @param proposers Who may schedule (and cancel) operations.
    /// @param executors Who may execute ready operations (`address(0)`: anyone).
    /// @param admin Optional bootstrap admin (zero for none: the timelock administers itself).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
