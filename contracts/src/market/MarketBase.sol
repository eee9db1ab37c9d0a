// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IMarket} from "../interfaces/IMarket.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {LeaseMath} from "../libraries/LeaseMath.sol";
import {MarketLayout as L} from "../libraries/MarketLayout.sol";
import {TokenFlow} from "../libraries/TokenFlow.sol";

/// @title MarketBase
/// @notice The storage and shared internals of `Market` and `MarketAdmin`, which runs in the
/// market's storage through its fallback (delegatecall). Both inherit this one base, so their layouts
/// are the same by construction; `MarketLayout` documents it for readers of raw slots.
abstract contract MarketBase is Ownable2Step, ReentrancyGuardTransient, EIP712 {
    using TokenFlow for IERC20;

    /// @dev One order/lease, four slots (layout in `MarketLayout`).
    struct Job {
        State state;
        address bidder;
        uint96 bidPrice;
        address tenant;
        uint96 collateral;
        uint256 d;
    }

    /// @dev Slot A, read and written whole on the settlement path.
    struct State {
        IMarket.Status status;
        uint8 tokenId;
        uint16 protocolFeeBps;
        uint16 keeperFeeBps;
        uint8 flags;
        uint48 settledAt;
        uint48 end;
        uint96 escrow;
        uint8 moduleId;
    }

    /// @dev Allow-list entry looked up by token address when an order is created.
    struct TokenInfo {
        uint8 id;
        uint8 decimals;
        bool allowed;
    }

    /// @dev Allow-list entry looked up by id when a lease pays: address and 10^(18-decimals).
    struct TokenSlot {
        address token;
        uint64 scale;
    }

    /// @dev Running sums of one settlement batch, flushed whenever the provider or token changes.
    struct Tally {
        uint8 tokenId;
        address provider;
        uint32 lowBalanceWindow;
        uint256 paid;
        uint256 toProvider;
        uint256 protocolFees;
        uint256 keeperFees;
        IStaking.Liveness live;
    }

    /// @dev Everything but settledAt and escrow.
    uint256 internal constant A_ESCROW_MASK = uint256(type(uint96).max) << L.A_ESCROW;
    uint256 internal constant A_KEEP_ON_SETTLE = ~((uint256(type(uint48).max) << L.A_SETTLED_AT) | A_ESCROW_MASK);
    uint256 internal constant A_LOW_BALANCE = uint256(L.F_LOW_BALANCE) << L.A_FLAGS;

    IStaking internal immutable _staking;

    // Storage order is fixed by `MarketLayout` (slots 4..11).
    IMarket.Params internal _params;
    address internal _treasury;
    uint8 internal _tokenCount;
    mapping(uint8 id => IMarket.Module) internal _modules;
    mapping(address token => TokenInfo) internal _tokenInfo;
    mapping(uint8 id => TokenSlot) internal _tokenSlots;
    mapping(bytes32 id => Job) internal _jobs;
    mapping(address token => mapping(address account => uint256)) internal _credits;
    mapping(address token => uint256) internal _protocolFees;

    constructor(IStaking staking_, address owner_) Ownable(owner_) EIP712("gridlease Market", "1") {
        if (address(staking_) == address(0)) revert IMarket.ZeroAddressMarket();
        _staking = staking_;
    }

    /// @dev Settle lease `id`, whose slot A is `a`, up to `until` into `tally`; returns slot A after
    /// it (equal to `a` when nothing was owed). The caller stores it. `ongoing` is false when the
    /// lease is about to close: its LeaseClosed event then carries the settlement.
    function _accrue(
        bytes32 id,
        uint256 a,
        uint96 rate,
        uint256 scale,
        Tally memory tally,
        uint256 until,
        bool keeperPaid,
        bool ongoing
    ) internal returns (uint256) {
        uint256 from = uint48(a >> L.A_SETTLED_AT);
        if (until <= from) return a;
        uint256 elapsed;
        // Safe: until > from.
        unchecked {
            elapsed = until - from;
        }
        uint256 amount = scale < LeaseMath.CARRY_SCALE
            ? LeaseMath.owed(rate, elapsed, scale, _escrowOf(a))
            : _owedCarrying(id, rate, elapsed, scale, _escrowOf(a), ongoing);
        // Nothing owed: no state change and no fee (KPR-04).
        if (amount == 0) return a;
        uint256 escrow;
        // Safe: amount <= escrow by LeaseMath.owed.
        unchecked {
            escrow = _escrowOf(a) - amount;
        }
        (uint256 protocolFee, uint256 keeperFee, uint256 toProvider) = LeaseMath.split(
            amount, uint16(a >> L.A_PROTOCOL_FEE), keeperPaid ? uint16(a >> L.A_KEEPER_FEE) : 0
        );
        tally.paid += amount;
        tally.toProvider += toProvider;
        tally.protocolFees += protocolFee;
        tally.keeperFees += keeperFee;
        a = (a & A_KEEP_ON_SETTLE) | (until << L.A_SETTLED_AT) | (escrow << L.A_ESCROW);
        if (!ongoing) return a;
        emit IMarket.LeaseSettled(id, uint96(amount), uint48(until), uint96(escrow));
        if (a & A_LOW_BALANCE == 0 && escrow * scale < uint256(rate) * tally.lowBalanceWindow) {
            a |= A_LOW_BALANCE;
            emit IMarket.LowBalance(id, uint96(escrow), LeaseMath.depletesAt(until, escrow, rate, scale));
        }
        return a;
    }

    /// @dev What lease `id` owes for `elapsed` seconds at `rate` on a coarse token (scale at least
    /// `LeaseMath.CARRY_SCALE`), with the remainder earlier settlements could not pay in whole
    /// units; the new remainder is kept in the lease's slot B (`bidPrice`, empty once awarded) for
    /// the next one, so settling often rounds nothing away (TOK-08). Nothing paid: the time is not
    /// settled, so the remainder stays as it was. The last settlement (`ongoing` false) leaves
    /// none: the tenant keeps the fraction, which is still in the escrow.
    function _owedCarrying(bytes32 id, uint96 rate, uint256 elapsed, uint256 scale, uint256 escrow, bool ongoing)
        private
        returns (uint256 amount)
    {
        Job storage job = _jobs[id];
        uint256 carry = job.bidPrice;
        uint256 rest;
        (amount, rest) = LeaseMath.owedCarrying(rate, elapsed, carry, scale, escrow);
        if (amount == 0) rest = carry;
        if (!ongoing) rest = 0;
        // Safe: rest < scale <= 10^18 < 2^96.
        if (rest != carry) job.bidPrice = uint96(rest);
    }

    /// @dev Until when a running service lease (slot A `a`) can be paid now: not past now or its
    /// end, and not past its provider's liveness: through the current epoch's last heartbeat +
    /// period if that epoch already ran at its last settlement; to the previous epoch's end if it
    /// ran in that one; not past its last settlement otherwise. Pay never crosses a lapse and stops
    /// at the first one (O(1)). Nothing before the provider acknowledged the lease.
    function _serviceUntil(uint256 a, IStaking.Liveness memory live) internal view returns (uint256 until) {
        uint256 settledAt = uint48(a >> L.A_SETTLED_AT);
        if (uint8(a >> L.A_FLAGS) & L.F_ACKED == 0) return settledAt;
        until = uint48(a >> L.A_END);
        if (block.timestamp < until) until = block.timestamp;
        uint256 cap = settledAt;
        if (live.epochStart <= settledAt) cap = uint256(live.at) + live.period;
        else if (live.prevStart != 0 && live.prevStart <= settledAt) cap = live.prevEnd;
        if (cap < until) until = cap;
    }

    /// @dev A service lease settled up to `settledAt` lapsed: its provider's heartbeat is stale now,
    /// or a new epoch began since (MEC-09).
    function _lapsed(IStaking.Liveness memory live, uint256 settledAt) internal view returns (bool) {
        return live.epochStart > settledAt || block.timestamp > uint256(live.at) + live.period;
    }

    /// @dev The module the lease (slot A `a`) is bound to.
    function _module(uint256 a) internal view returns (IMarket.Module memory) {
        return _modules[uint8(a >> L.A_MODULE)];
    }

    /// @dev The module of the lease whose slot A is `a`; reverts unless it is the caller.
    function _onlyModule(uint256 a) internal view returns (IMarket.Module memory m) {
        m = _modules[uint8(a >> L.A_MODULE)];
        // A cleared or unknown lease has module id 0, whose module is the zero address.
        if (msg.sender != m.module || m.module == address(0)) revert IMarket.NotLeaseModule(msg.sender, m.module);
    }

    /// @dev Escrow field of slot A.
    function _escrowOf(uint256 a) internal pure returns (uint96) {
        return uint96(a >> L.A_ESCROW);
    }

    /// @dev Slot A of `job` as one word.
    function _loadState(Job storage job) internal view returns (uint256 a) {
        assembly ("memory-safe") {
            a := sload(job.slot)
        }
    }

    /// @dev Write slot A of `job` whole.
    function _storeState(Job storage job, uint256 a) internal {
        assembly ("memory-safe") {
            sstore(job.slot, a)
        }
    }

    /// @dev Book a batch's running sums as credits.
    function _flush(Tally memory tally, address token) internal {
        if (tally.toProvider != 0) _credits[token][tally.provider] += tally.toProvider;
        if (tally.protocolFees != 0) _protocolFees[token] += tally.protocolFees;
        if (tally.keeperFees != 0) _credits[token][msg.sender] += tally.keeperFees;
    }

    function _credit(address token, address to, uint256 amount) internal {
        _credits[token][to] += amount;
        emit IMarket.Credited(token, to, amount);
    }

    /// @dev Push `amount` to `to`; if the token refuses (blacklist, pause), book a credit so
    /// nobody else's exit is blocked (TOK-05).
    function _pay(address token, address to, uint256 amount) internal {
        if (IERC20(token).trySend(to, amount)) return;
        _credit(token, to, amount);
    }

    /// @dev Mark terminal and free every other field (gas refund); the status stays so the id can
    /// never be reused.
    function _clear(bytes32 id, IMarket.Status status) internal {
        delete _jobs[id];
        _jobs[id].state.status = status;
    }

    /// @dev The stake token's scale, 10^(18 - decimals).
    function _stakeScaleOf(IStaking staking_) internal view returns (uint256) {
        return 10 ** (18 - IERC20Metadata(staking_.stakeToken()).decimals());
    }
}
