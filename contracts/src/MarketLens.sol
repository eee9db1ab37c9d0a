// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMarket} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {LeaseMath} from "./libraries/LeaseMath.sol";
import {MarketLayout as L} from "./libraries/MarketLayout.sol";

/// @title MarketLens
/// @notice Read-only views of a `Market`, computed from its raw storage (`extsload`), so the market
/// itself carries no view code (Uniswap v4's StateLibrary pattern). Costs nothing on any write path.
contract MarketLens {
    /// @notice The market read.
    IMarket public immutable market;
    /// @notice Its staking contract.
    IStaking public immutable staking;

    constructor(IMarket market_) {
        market = market_;
        staking = IStaking(market_.staking());
    }

    /// @notice The order or lease `id`.
    function getJob(bytes32 id) external view returns (IMarket.JobView memory v) {
        bytes32[] memory w = _job(id);
        (uint256 a, uint256 b, uint256 c, uint256 d) = (uint256(w[0]), uint256(w[1]), uint256(w[2]), uint256(w[3]));
        v.status = L.status(a);
        v.tenant = address(uint160(c));
        v.collateral = uint96(c >> 160);
        v.token = _token(uint8(a >> L.A_TOKEN));
        v.escrow = L.escrow(a);
        v.settledAt = uint48(L.settledAt(a));
        v.end = uint48(L.end(a));
        v.protocolFeeBps = uint16(a >> L.A_PROTOCOL_FEE);
        v.keeperFeeBps = uint16(a >> L.A_KEEPER_FEE);
        uint8 f = L.flags(a);
        v.kind = f & L.KIND_MASK;
        v.lowBalance = f & L.F_LOW_BALANCE != 0;
        v.acknowledged = f & L.F_ACKED != 0;
        v.challenged = f & L.F_CHALLENGED != 0;
        v.stalePending = f & L.F_STALE != 0;
        v.held = f & L.F_HELD != 0;
        v.module = module(L.moduleId(a)).module;
        if (v.status == IMarket.Status.Open) {
            (v.provider, v.ratePerSecond) = (address(uint160(b)), uint96(b >> 160));
            v.maxPricePerSecond = uint96(d);
            v.biddingEnd = uint48(d >> 96);
            v.maxDuration = uint32(d >> 144);
            v.instant = (d >> 208) & 1 == 1;
            v.kind = (d >> 216) & 1 == 1 ? L.KIND_SERVICE : L.KIND_BATCH;
        } else if (v.status == IMarket.Status.Leased || v.held) {
            (v.provider, v.ratePerSecond) = (L.provider(d), uint96(d >> 160));
        }
    }

    /// @notice What lease `id` has earned and not been paid: for a service lease what a settlement
    /// would move now; for a batch lease the pay it holds until its result stands (0 if it has no
    /// result and is not acknowledged).
    function accrued(bytes32 id) external view returns (uint96) {
        (uint256 a, uint256 d) = L.lease(market, id);
        if (L.status(a) != IMarket.Status.Leased || L.flags(a) & L.F_ACKED == 0) return 0;
        uint256 until = L.end(a);
        // A held result is owed in full (its end is the end of the hold).
        if (block.timestamp < until && L.kind(a) != L.KIND_HELD) until = block.timestamp;
        if (L.kind(a) == L.KIND_SERVICE) {
            IStaking.Liveness memory live = staking.liveness(L.provider(d));
            uint256 s = L.settledAt(a);
            uint256 cap = live.epochStart <= s
                ? uint256(live.at) + live.period
                : (live.prevStart != 0 && live.prevStart <= s ? live.prevEnd : s);
            if (cap < until) until = cap;
        }
        uint256 from = L.settledAt(a);
        if (until <= from) return 0;
        uint256 scale = uint64(uint256(market.extsload(L.entry(uint8(a >> L.A_TOKEN), L.TOKEN_SLOTS_SLOT))) >> 160);
        if (scale < LeaseMath.CARRY_SCALE) {
            return uint96(LeaseMath.owed(uint96(d >> 160), until - from, scale, L.escrow(a)));
        }
        uint256 carry = uint256(market.extsload(bytes32(uint256(L.jobSlot(id)) + 1))) >> 160;
        (uint256 amount,) = LeaseMath.owedCarrying(uint96(d >> 160), until - from, carry, scale, L.escrow(a));
        return uint96(amount);
    }

    /// @notice When the held result of lease `id` stands (end of its challenge window), 0 if none.
    function holdEnd(bytes32 id) external view returns (uint256) {
        uint256 a = uint256(market.extsload(L.jobSlot(id)));
        return L.kind(a) == L.KIND_HELD ? L.end(a) : 0;
    }

    /// @notice Credit of `account` in `token` (withdraw with `Market.withdraw`).
    function creditOf(address token, address account) external view returns (uint256) {
        bytes32 inner = L.entry(uint256(uint160(token)), L.CREDITS_SLOT);
        return uint256(market.extsload(L.entry(uint256(uint160(account)), uint256(inner))));
    }

    /// @notice Protocol fees collected in `token` and not yet sent to the treasury.
    function protocolFees(address token) external view returns (uint256) {
        return uint256(market.extsload(L.entry(uint256(uint160(token)), L.PROTOCOL_FEES_SLOT)));
    }

    /// @notice The allow-list entry of `token`.
    function tokenInfo(address token) external view returns (uint8 id, uint8 decimals, bool allowed) {
        uint256 x = uint256(market.extsload(L.entry(uint256(uint160(token)), L.TOKEN_INFO_SLOT)));
        return (uint8(x), uint8(x >> 8), uint8(x >> 16) != 0);
    }

    /// @notice Receiver of protocol fees.
    function treasury() external view returns (address) {
        return address(uint160(uint256(market.extsload(bytes32(L.GLOBALS_SLOT)))));
    }

    /// @notice Results modules added so far (the latest binds new leases).
    function moduleCount() public view returns (uint8) {
        return market.params().module;
    }

    /// @notice Results module `id` (1-based; 0 is none).
    function module(uint8 id) public view returns (IMarket.Module memory m) {
        uint256 x = uint256(market.extsload(L.entry(id, L.MODULES_SLOT)));
        m.module = address(uint160(x));
        m.challengeWindow = uint48(x >> 160);
        m.faultFeeBps = uint16(x >> 208);
        m.startWindow = uint32(x >> 224);
    }

    /// @notice The module new leases are bound to.
    function currentModule() external view returns (IMarket.Module memory) {
        return module(moduleCount());
    }

    /// @notice Governance parameters.
    function params() external view returns (IMarket.Params memory) {
        return market.params();
    }

    /// @dev The four slots of job `id`.
    function _job(bytes32 id) private view returns (bytes32[] memory) {
        bytes32 s = L.jobSlot(id);
        bytes32[] memory slots = new bytes32[](4);
        for (uint256 i; i < 4; ++i) {
            slots[i] = bytes32(uint256(s) + i);
        }
        return market.extsload(slots);
    }

    function _token(uint8 id) private view returns (address) {
        return address(uint160(uint256(market.extsload(L.entry(id, L.TOKEN_SLOTS_SLOT)))));
    }
}
