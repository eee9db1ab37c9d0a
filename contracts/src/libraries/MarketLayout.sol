// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarket} from "../interfaces/IMarket.sol";

/// @title MarketLayout
/// @notice The storage layout of `Market`, which `MarketLens` and the results module read through
/// `extsload` (as Uniswap v4's StateLibrary reads PoolManager). One source of truth: the market
/// itself uses these offsets, and a test checks every slot number against a live market.
/// @dev Slots 0-3 are inherited (Ownable `_owner`, Ownable2Step `_pendingOwner`, EIP712's two
/// fallback strings); the market's own state follows in declaration order.
///
/// A job (order, then lease) is four slots from `jobSlot(id)`:
/// A: status (8) | tokenId (8) | protocolFeeBps (16) | keeperFeeBps (16) | flags (8) |
///    settledAt (48) | end (48) | escrow (96) | moduleId (8)                         = 256 bits
/// B: bidder (160) | bidPrice (96)     the lowest on-chain bid of an open order; empty once awarded,
///    then, for a lease in a token of at most 4 decimals, bidPrice is the remainder its last
///    settlement could not pay in whole units (`LeaseMath.owedCarrying`)
/// C: tenant (160) | collateral (96)
/// D: an open order's terms (see `Market._packTerms`); a lease's provider (160) | rate (96)
/// Settlement reads and writes only A and reads D. After a close that holds the collateral (flag
/// HELD), A keeps the lease's flags, `settledAt` becomes the close time and `escrow` what the tenant
/// paid for the lease; C and D stay, so a fault can still be proven and slashed, and the collateral
/// stays locked until `releaseHeld`. A held batch result's `end` is the end of its hold (result time
/// + challenge window) and its `settledAt` moved by the same amount, so `end - settledAt` is the
/// time paid for.
library MarketLayout {
    uint256 internal constant PARAMS_SLOT = 4;
    /// @dev treasury (160) | tokenCount (8)
    uint256 internal constant GLOBALS_SLOT = 5;
    uint256 internal constant MODULES_SLOT = 6;
    uint256 internal constant TOKEN_INFO_SLOT = 7;
    uint256 internal constant TOKEN_SLOTS_SLOT = 8;
    uint256 internal constant JOBS_SLOT = 9;
    uint256 internal constant CREDITS_SLOT = 10;
    uint256 internal constant PROTOCOL_FEES_SLOT = 11;

    /// @dev Bit offsets of slot A's fields (first struct member lowest).
    uint256 internal constant A_TOKEN = 8;
    uint256 internal constant A_PROTOCOL_FEE = 16;
    uint256 internal constant A_KEEPER_FEE = 32;
    uint256 internal constant A_FLAGS = 48;
    uint256 internal constant A_SETTLED_AT = 56;
    uint256 internal constant A_END = 104;
    uint256 internal constant A_ESCROW = 152;
    uint256 internal constant A_MODULE = 248;

    /// @dev Flag bits (slot A's flags byte). Bits 0-1: the lease kind.
    uint8 internal constant KIND_MASK = 3;
    /// @dev A batch lease (container or built-in) with no result yet.
    uint8 internal constant KIND_BATCH = 0;
    /// @dev A service lease, paid per second of provider liveness.
    uint8 internal constant KIND_SERVICE = 1;
    /// @dev A batch lease whose result was posted: its pay stopped and is held.
    uint8 internal constant KIND_HELD = 2;
    /// @dev The escrow of a service lease covers less than the low-balance window.
    uint8 internal constant F_LOW_BALANCE = 4;
    /// @dev The provider acknowledged the lease (or posted its result).
    uint8 internal constant F_ACKED = 8;
    /// @dev A data-availability challenge on the result is open.
    uint8 internal constant F_CHALLENGED = 16;
    /// @dev A heartbeat lapse of the provider was reported against the lease.
    uint8 internal constant F_STALE = 32;
    /// @dev Closed with its collateral held: a fault may still be proven within the horizon.
    uint8 internal constant F_HELD = 64;
    /// @dev An open auction's stored lowest bid came signed (`bidSigned`), not from its operator.
    uint8 internal constant F_SIGNED_BID = 128;

    /// @notice First of job `id`'s four slots.
    function jobSlot(bytes32 id) internal pure returns (bytes32 slot) {
        assembly ("memory-safe") {
            mstore(0x00, id)
            mstore(0x20, JOBS_SLOT)
            slot := keccak256(0x00, 0x40)
        }
    }

    /// @notice Slot of entry `key` of the mapping at `base` (a value-type key).
    function entry(uint256 key, uint256 base) internal pure returns (bytes32 slot) {
        assembly ("memory-safe") {
            mstore(0x00, key)
            mstore(0x20, base)
            slot := keccak256(0x00, 0x40)
        }
    }

    /// @notice Slots A and D of job `id` on `market` (everything the module needs of a lease).
    function lease(IMarket market, bytes32 id) internal view returns (uint256 a, uint256 d) {
        bytes32 s = jobSlot(id);
        bytes32[] memory slots = new bytes32[](2);
        slots[0] = s;
        slots[1] = bytes32(uint256(s) + 3);
        bytes32[] memory w = market.extsload(slots);
        return (uint256(w[0]), uint256(w[1]));
    }

    function status(uint256 a) internal pure returns (IMarket.Status) {
        return IMarket.Status(uint8(a));
    }

    function flags(uint256 a) internal pure returns (uint8) {
        return uint8(a >> A_FLAGS);
    }

    function kind(uint256 a) internal pure returns (uint8) {
        return uint8(a >> A_FLAGS) & KIND_MASK;
    }

    function settledAt(uint256 a) internal pure returns (uint256) {
        return uint48(a >> A_SETTLED_AT);
    }

    function end(uint256 a) internal pure returns (uint256) {
        return uint48(a >> A_END);
    }

    function escrow(uint256 a) internal pure returns (uint96) {
        return uint96(a >> A_ESCROW);
    }

    function moduleId(uint256 a) internal pure returns (uint8) {
        return uint8(a >> A_MODULE);
    }

    function provider(uint256 d) internal pure returns (address) {
        return address(uint160(d));
    }
}
