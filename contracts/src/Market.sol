// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {IMarket, IResultsModule} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {MarketLayout as L} from "./libraries/MarketLayout.sol";
import {TokenFlow} from "./libraries/TokenFlow.sol";
import {MarketBase} from "./market/MarketBase.sol";

/// @title Market
/// @notice Reverse auction and escrow that pays for delivered work. An order becomes its lease in
/// place. This contract holds the hot paths (orders, bids, awards, settlement, closes, withdrawals,
/// the results module's hooks); the cold paths (cancels, top-ups, faults, governance) are
/// `MarketAdmin`, reached through the fallback in this contract's storage. Views live in
/// `MarketLens`, which reads the storage (`MarketLayout`) through `extsload`.
/// @dev Token conservation, per payment token: `balanceOf(this) == Σ escrow of open orders and
/// running leases + Σ credits + protocol fees` for standard tokens.
contract Market is IMarket, MarketBase {
    using TokenFlow for IERC20;

    /// @dev EIP-712 type of a signed bid.
    bytes32 private constant BID_TYPEHASH = keccak256("Bid(bytes32 orderId,uint96 pricePerSecond,uint48 expiry)");
    /// @dev Flags a results module may set or clear.
    uint8 private constant MODULE_FLAGS = L.F_ACKED | L.F_CHALLENGED | L.F_STALE;

    /// @dev Unpacked slot D of an open order.
    struct Terms {
        uint96 maxPrice;
        uint48 biddingEnd;
        uint32 maxDuration;
        uint8 gpuClass;
        uint8 gpuCount;
        uint16 vramGiB;
        bool instant;
        bool service;
    }

    /// @dev The cold paths, run in this contract's storage.
    address private immutable _admin;

    /// @param staking_ The staking contract (which must bind this market with `setMarket`).
    /// @param owner_ Governance (a TimelockController once deployed). It sets the parameters, the
    /// payment tokens and the results module before any order can be made.
    /// @param treasury_ Receiver of protocol fees.
    /// @param admin_ The `MarketAdmin` deployed for the same staking contract.
    constructor(IStaking staking_, address owner_, address treasury_, address admin_) MarketBase(staking_, owner_) {
        if (treasury_ == address(0) || IMarket(admin_).staking() != address(staking_)) revert ZeroAddressMarket();
        _admin = admin_;
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    /// @dev The cold paths (`IMarketAdmin`), in this contract's storage.
    fallback() external {
        address target = _admin;
        assembly ("memory-safe") {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), target, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    // ================================================================ tenant

    /// @inheritdoc IMarket
    function createOrder(OrderParams calldata p) external nonReentrant returns (bytes32 orderId) {
        orderId = _createOrder(p);
    }

    /// @inheritdoc IMarket
    function createOrderWithPermit(OrderParams calldata p, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
        returns (bytes32 orderId)
    {
        IERC20(p.token).permitOrAllowance(msg.sender, p.deposit, deadline, v, r, s);
        orderId = _createOrder(p);
    }

    // ================================================================ provider

    /// @inheritdoc IMarket
    function bid(bytes32 orderId, uint96 price) external nonReentrant {
        _bid(orderId, msg.sender, price, false);
    }

    /// @inheritdoc IMarket
    function bidSigned(bytes32 orderId, SignedBid calldata b) external nonReentrant {
        if (b.expiry < block.timestamp) revert BidExpired(orderId, b.expiry);
        (address operator, ECDSA.RecoverError err,) = ECDSA.tryRecover(
            _hashTypedDataV4(keccak256(abi.encode(BID_TYPEHASH, orderId, b.pricePerSecond, b.expiry))), b.signature
        );
        // A signature that recovers to nobody is nobody's bid (NotAnOperator(0)).
        if (err != ECDSA.RecoverError.NoError) operator = address(0);
        _bid(orderId, operator, b.pricePerSecond, true);
    }

    /// @dev A bid of `operator`'s provider at `price`, sent by the operator or, `signed`, by anyone
    /// with the operator's EIP-712 signature. Every bid that can win is on chain by the window's
    /// end (AFR-02): a bid signed later cannot be placed, and the award has nothing to choose.
    function _bid(bytes32 orderId, address operator, uint96 price, bool signed) private {
        Params memory params_ = _params;
        if (params_.paused) revert MarketPaused();
        Job storage job = _jobs[orderId];
        if (job.state.status != Status.Open) revert OrderNotOpen(orderId, job.state.status);
        Terms memory terms = _unpackTerms(job.d);
        if (block.timestamp > terms.biddingEnd) revert BiddingClosed(orderId, terms.biddingEnd);
        _checkPrice(price, terms.maxPrice, params_.minPricePerSecond);

        IStaking.BidderInfo memory info = _staking.bidderInfo(operator);
        if (info.provider == address(0)) revert NotAnOperator(operator);
        uint96 collateral = job.collateral;
        if (!_fits(terms, info.capacity)) revert CapacityMismatch(info.provider);
        if (terms.service && !_live(info.provider)) revert ProviderNotLive(info.provider);

        if (terms.instant) {
            if (!_staking.tryLock(info.provider, collateral)) {
                revert InsufficientCollateral(info.provider, info.freeStake, collateral);
            }
            // The operator's own transaction started the lease: it is acknowledged. A signed bid
            // placed by someone else must be acknowledged within the start window.
            _startLease(orderId, job, terms, info.provider, price, params_, signed, signed ? 0 : L.F_ACKED);
            return;
        }
        // Bids are binding and only the lowest is kept, so award never loops over bids (AUC-08)
        // and equal prices go to the earliest (AUC-09).
        address outbid = job.bidder;
        if (outbid != address(0) && price >= job.bidPrice) revert BidNotLowest(price, job.bidPrice);
        // The bid reserves its collateral until it is outbid or the order is cancelled: one stake
        // cannot back the lowest bid on many orders and then fail them all at award, and locked
        // stake cannot be unbonded (AFR-01). The award starts the lease on it. A provider
        // improving its own bid keeps the reservation it has.
        if (outbid != info.provider) {
            if (!_staking.tryLock(info.provider, collateral)) {
                revert InsufficientCollateral(info.provider, info.freeStake, collateral);
            }
            if (outbid != address(0)) _staking.release(outbid, collateral);
        }
        (job.bidder, job.bidPrice) = (info.provider, price);
        uint8 f = job.state.flags;
        if ((f & L.F_SIGNED_BID != 0) != signed) job.state.flags = f ^ L.F_SIGNED_BID;
        emit BidPlaced(orderId, info.provider, price);
    }

    // ================================================================ anyone

    /// @inheritdoc IMarket
    function award(bytes32 orderId) external nonReentrant returns (address winner) {
        Params memory params_ = _params;
        if (params_.paused) revert MarketPaused();
        Job storage job = _jobs[orderId];
        if (job.state.status != Status.Open) revert OrderNotOpen(orderId, job.state.status);
        Terms memory terms = _unpackTerms(job.d);
        if (!terms.instant && block.timestamp <= terms.biddingEnd) revert BiddingStillOpen(orderId, terms.biddingEnd);
        // The lowest bid on chain when the window closed wins; the caller chooses nothing (AFR-02).
        // Its collateral has been locked since it was placed (AFR-01), so it can be honoured; a
        // service provider no longer live cannot, and the order is left to be cancelled (AUC-12).
        winner = job.bidder;
        if (winner == address(0) || (terms.service && !_live(winner))) revert NoValidBid(orderId);
        uint96 price = job.bidPrice;
        (job.bidder, job.bidPrice) = (address(0), 0);
        _startLease(orderId, job, terms, winner, price, params_, job.state.flags & L.F_SIGNED_BID != 0, 0);
    }

    /// @inheritdoc IMarket
    function settle(bytes32[] calldata leaseIds) external nonReentrant returns (uint256 settled) {
        Tally memory tally;
        tally.lowBalanceWindow = _params.lowBalanceWindow;
        TokenSlot memory slot;
        // min(now, the provider's last heartbeat + period): the cap of every lease settled since
        // its provider's current epoch began (the common case, computed once per provider).
        uint256 liveUntil;
        for (uint256 i; i < leaseIds.length; ++i) {
            bytes32 id;
            // Safe: i < leaseIds.length (the loop bound), so the word is inside the array.
            assembly ("memory-safe") {
                id := calldataload(add(leaseIds.offset, shl(5, i)))
            }
            Job storage job = _jobs[id];
            uint256 a = _loadState(job);
            // Only running, acknowledged service leases are paid as they go; batch leases are paid
            // when their result stands. Others are skipped, never a batch revert (ESC-16).
            if (
                uint8(a) != uint8(Status.Leased)
                    || (uint8(a >> L.A_FLAGS) & (L.KIND_MASK | L.F_ACKED)) != (L.KIND_SERVICE | L.F_ACKED)
            ) continue;
            uint8 tokenId = uint8(a >> L.A_TOKEN);
            uint256 d = job.d;
            address provider = address(uint160(d));
            if (tokenId != tally.tokenId || provider != tally.provider) {
                _flush(tally, slot.token);
                (tally.paid, tally.toProvider, tally.protocolFees, tally.keeperFees) = (0, 0, 0, 0);
                if (tokenId != tally.tokenId) slot = _tokenSlots[tokenId];
                if (provider != tally.provider) {
                    tally.live = _staking.liveness(provider);
                    liveUntil = uint256(tally.live.at) + tally.live.period;
                    if (block.timestamp < liveUntil) liveUntil = block.timestamp;
                }
                (tally.tokenId, tally.provider) = (tokenId, provider);
            }
            uint256 until = uint48(a >> L.A_END);
            if (tally.live.epochStart <= uint48(a >> L.A_SETTLED_AT)) {
                if (liveUntil < until) until = liveUntil;
            } else {
                until = _serviceUntil(a, tally.live);
            }
            uint256 after_ = _accrue(id, a, uint96(d >> 160), slot.scale, tally, until, true, true);
            if (after_ != a) {
                _storeState(job, after_);
                ++settled;
            }
        }
        _flush(tally, slot.token);
    }

    /// @inheritdoc IMarket
    function close(bytes32 leaseId) external nonReentrant {
        Job storage job = _jobs[leaseId];
        uint256 a = _loadState(job);
        if (uint8(a) != uint8(Status.Leased)) revert LeaseNotActive(leaseId, Status(uint8(a)));
        address tenant = job.tenant;
        uint256 d = job.d;
        address provider = address(uint160(d));
        uint8 f = uint8(a >> L.A_FLAGS);
        uint256 end = uint48(a >> L.A_END);
        uint256 settledAt = uint48(a >> L.A_SETTLED_AT);
        // 1 tenant, 2 provider (owner or operator), 0 anyone else
        uint256 party = msg.sender == tenant ? 1 : 0;
        if (party == 0 && (msg.sender == provider || _staking.providerOf(msg.sender) == provider)) party = 2;

        Tally memory tally;
        (tally.tokenId, tally.provider) = (uint8(a >> L.A_TOKEN), provider);
        CloseReason reason = party == 1 ? CloseReason.TenantClosed : CloseReason.ProviderClosed;
        uint256 payUntil = settledAt;
        bool hold_;
        uint8 kind = f & L.KIND_MASK;
        if (kind == L.KIND_BATCH) {
            // No result: only the tenant may close it. The provider cannot walk away paid (it may
            // `abandon`, which is the fault, MEC-01), and no third-party close can race a no-show or
            // missed-deadline proof (MEC-02): only those faults end it.
            if (party != 1) revert LeaseNotClosable(leaseId, uint48(end), _escrowOf(a));
            bool acked = f & L.F_ACKED != 0;
            // Past the end, a result may still come within the deadline grace, and stands (MEC-10):
            // a close then would void it, the provider's finished work unpaid (the pending post in
            // plain view). The tenant waits, then proves the missed deadline or closes.
            if (block.timestamp > end) {
                uint256 deadline = end + IResultsModule(_module(a).module).deadlineGrace();
                if (block.timestamp <= deadline) revert ResultStillDue(leaseId, deadline);
            }
            // The tenant ends its own job: it pays the time used by an acknowledged lease before its
            // deadline, nothing otherwise; a no-show or a missed deadline stays provable (MEC-05).
            if (acked && block.timestamp <= end) payUntil = block.timestamp;
            hold_ = block.timestamp > end || (!acked && block.timestamp > settledAt + _module(a).startWindow);
        } else if (kind == L.KIND_HELD) {
            // `end` is the end of the hold, and `end - settledAt` the time from start to result.
            payUntil = end;
            if (block.timestamp <= end || f & L.F_CHALLENGED != 0) {
                // Only the tenant may accept inside the window; faults on the result stay provable.
                if (party != 1) {
                    if (block.timestamp > end) revert LeaseChallenged(leaseId);
                    revert LeaseHeld(leaseId, end);
                }
                reason = CloseReason.Accepted;
                hold_ = true;
            } else {
                reason = CloseReason.Completed;
            }
        } else {
            tally.live = _staking.liveness(provider);
            payUntil = _serviceUntil(a, tally.live);
            if (party == 0) {
                if (block.timestamp >= end) reason = CloseReason.Expired;
                else if (_lapsed(tally.live, settledAt)) reason = CloseReason.Lapsed;
                else reason = CloseReason.Exhausted;
            }
            // A stale report holds the collateral for the fault horizon while its fault can still
            // be proven; one its provider answered by beating within the grace holds nothing.
            hold_ = (f & L.F_STALE != 0 && !IResultsModule(_module(a).module).staleVoid(leaseId, provider))
                || (f & L.F_ACKED == 0 && block.timestamp > settledAt + _module(a).startWindow);
        }
        TokenSlot memory slot = _tokenSlots[tally.tokenId];
        a = _accrue(leaseId, a, uint96(d >> 160), slot.scale, tally, payUntil, party == 0, false);
        uint96 refund = _escrowOf(a);
        if (reason == CloseReason.Exhausted && refund != 0) revert LeaseNotClosable(leaseId, uint48(end), refund);
        _flush(tally, slot.token);
        if (hold_) {
            // The collateral stays locked, and what a later fault needs stays here (tenant, collateral,
            // provider, module, the end); the tenant's loss is what it paid for a result (MEC-06).
            // `releaseHeld` frees it once the fault horizon has passed.
            uint256 loss = kind == L.KIND_HELD ? tally.paid : 0;
            _storeState(
                job,
                (a & A_KEEP_ON_SETTLE & ~uint256(0xff)) | uint8(Status.Closed) | (uint256(L.F_HELD) << L.A_FLAGS)
                    | (block.timestamp << L.A_SETTLED_AT) | (loss << L.A_ESCROW)
            );
        } else {
            uint96 collateral = job.collateral;
            _clear(leaseId, Status.Closed);
            _staking.release(provider, collateral);
        }
        _pay(slot.token, tenant, refund);
        emit LeaseClosed(
            leaseId,
            reason,
            uint96(tally.paid),
            uint96(tally.toProvider),
            uint96(tally.protocolFees),
            uint96(tally.keeperFees),
            refund,
            uint48(block.timestamp),
            hold_
        );
    }

    /// @inheritdoc IMarket
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddressMarket();
        amount = _credits[token][msg.sender];
        if (amount == 0) revert NothingToWithdrawMarket(token, msg.sender);
        // A frozen account's credit is not redirected past the token's freeze (MEC-16).
        if (to != msg.sender && !IERC20(token).accepts(msg.sender)) revert AccountFrozenMarket(token, msg.sender);
        _credits[token][msg.sender] = 0;
        IERC20(token).send(to, amount);
        emit Withdrawn(token, msg.sender, to, amount);
    }

    // ================================================================ results module hooks

    /// @inheritdoc IMarket
    function moduleFlag(bytes32 leaseId, uint8 set, uint8 clear) external returns (uint256 a, uint256 d) {
        Job storage job = _jobs[leaseId];
        a = _loadState(job);
        d = job.d;
        // A closed lease's flags are final (a held record keeps what it closed with).
        if (uint8(a) != uint8(Status.Leased)) return (a, d);
        _onlyModule(a);
        uint256 f = (uint8(a >> L.A_FLAGS) | (set & MODULE_FLAGS)) & ~uint256(clear & MODULE_FLAGS);
        _storeState(job, (a & ~(uint256(0xff) << L.A_FLAGS)) | (f << L.A_FLAGS));
    }

    /// @inheritdoc IMarket
    function resultPosted(bytes32 leaseId, uint256 grace) external returns (uint256 a, uint256 d) {
        Job storage job = _jobs[leaseId];
        a = _loadState(job);
        d = job.d;
        Module memory m = _onlyModule(a);
        uint256 f = uint8(a >> L.A_FLAGS);
        uint256 end = uint48(a >> L.A_END);
        if (uint8(a) != uint8(Status.Leased) || f & L.KIND_MASK != L.KIND_BATCH || block.timestamp > end + grace) {
            return (a, d);
        }
        // Pay stops at the result, never past the deadline (a result in the grace is not paid for
        // the grace), and is held for the challenge window: `end` becomes the hold's end, and
        // `settledAt` moves with it, so `end - settledAt` is still the time paid for.
        uint256 paidUntil = block.timestamp < end ? block.timestamp : end;
        uint256 start = uint48(a >> L.A_SETTLED_AT);
        f = (f & ~uint256(L.KIND_MASK)) | L.KIND_HELD | L.F_ACKED;
        _storeState(
            job,
            (a & A_KEEP_ON_SETTLE & ~((uint256(0xff) << L.A_FLAGS) | (uint256(type(uint48).max) << L.A_END)))
                | (f << L.A_FLAGS) | ((start + m.challengeWindow) << L.A_SETTLED_AT)
                | ((paidUntil + m.challengeWindow) << L.A_END) | (uint256(_escrowOf(a)) << L.A_ESCROW)
        );
    }

    // ================================================================ views

    /// @inheritdoc IMarket
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @inheritdoc IMarket
    function staking() external view returns (address) {
        return address(_staking);
    }

    /// @inheritdoc IMarket
    function admin() external view returns (address) {
        return _admin;
    }

    /// @inheritdoc IMarket
    function extsload(bytes32 slot) external view returns (bytes32 value) {
        assembly ("memory-safe") {
            value := sload(slot)
        }
    }

    /// @inheritdoc IMarket
    function extsload(bytes32[] calldata slots) external view returns (bytes32[] memory values) {
        values = new bytes32[](slots.length);
        for (uint256 i; i < slots.length; ++i) {
            bytes32 s = slots[i];
            bytes32 v;
            assembly ("memory-safe") {
                v := sload(s)
            }
            values[i] = v;
        }
    }

    // ================================================================ internal

    function _createOrder(OrderParams calldata p) private returns (bytes32 orderId) {
        Params memory params_ = _params;
        if (params_.paused) revert MarketPaused();
        TokenInfo memory info = _tokenInfo[p.token];
        if (!info.allowed) revert TokenNotAllowed(p.token);
        if (p.maxPricePerSecond < params_.minPricePerSecond) revert InvalidOrder("maxPricePerSecond", p.maxPricePerSecond);
        // An order nobody can serve is refused: its deposit must pay one minimum billing period at
        // its own reserve, a known kind, and collateral to slash should the provider fail (MEC-14).
        if (uint256(p.deposit) * 10 ** (18 - info.decimals) < uint256(p.maxPricePerSecond) * params_.minBillingPeriod || p.deposit == 0) {
            revert InvalidOrder("deposit", p.deposit);
        }
        if (p.maxDuration == 0 || p.maxDuration > params_.maxLeaseDuration) revert InvalidOrder("maxDuration", p.maxDuration);
        if (p.bidWindow == 0 || p.bidWindow > params_.maxBidWindow) revert InvalidOrder("bidWindow", p.bidWindow);
        if (p.gpuCount == 0) revert InvalidOrder("gpuCount", 0);
        if (p.gpuClass > 63) revert InvalidOrder("gpuClass", p.gpuClass);
        if (p.jobKind > 2) revert InvalidOrder("jobKind", p.jobKind);
        if (p.collateral == 0) revert InvalidOrder("collateral", 0);

        orderId = keccak256(abi.encode(msg.sender, p));
        Job storage job = _jobs[orderId];
        if (job.state.status != Status.None) revert OrderExists(orderId);
        uint48 biddingEnd = uint48(block.timestamp) + p.bidWindow;

        job.state.status = Status.Open;
        job.state.tokenId = info.id;
        job.state.escrow = p.deposit;
        (job.tenant, job.collateral) = (msg.sender, p.collateral);
        job.d = _packTerms(
            Terms(
                p.maxPricePerSecond, biddingEnd, p.maxDuration, p.gpuClass, p.gpuCount, p.vramGiB, p.instant, p.jobKind == 2
            )
        );

        IERC20(p.token).pullExact(p.deposit);
        emit OrderCreated(orderId, msg.sender, p.token, p, biddingEnd);
    }

    function _startLease(
        bytes32 orderId,
        Job storage job,
        Terms memory terms,
        address provider,
        uint96 price,
        Params memory params_,
        bool signed,
        uint8 flags
    ) private {
        uint8 moduleId = params_.module;
        if (moduleId == 0) revert ModuleUnavailable(0);
        uint48 start = uint48(block.timestamp);
        uint48 end = start + terms.maxDuration;
        job.state.status = Status.Leased;
        job.state.protocolFeeBps = params_.protocolFeeBps;
        job.state.keeperFeeBps = params_.keeperFeeBps;
        job.state.flags = flags | (terms.service ? L.KIND_SERVICE : L.KIND_BATCH);
        job.state.settledAt = start;
        job.state.end = end;
        job.state.moduleId = moduleId;
        job.d = uint256(uint160(provider)) | (uint256(price) << 160);
        emit LeaseStarted(
            orderId,
            provider,
            job.tenant,
            price,
            job.collateral,
            start,
            end,
            params_.protocolFeeBps,
            params_.keeperFeeBps,
            signed,
            moduleId
        );
    }

    /// @dev Whether `provider` heart-beat within its period.
    function _live(address provider) private view returns (bool) {
        IStaking.Liveness memory live = _staking.liveness(provider);
        return live.at != 0 && block.timestamp <= uint256(live.at) + live.period;
    }

    function _checkPrice(uint96 price, uint96 maxPrice, uint64 minPrice) private pure {
        if (price > maxPrice) revert BidAboveReserve(price, maxPrice);
        // minPricePerSecond >= 1 (see _setParams), so this also refuses a zero price (AUC-04).
        if (price < minPrice) revert BidBelowMinimum(price, minPrice);
    }

    function _fits(Terms memory t, IStaking.Capacity memory c) private pure returns (bool) {
        return (c.gpuClasses >> t.gpuClass) & 1 == 1 && c.gpuCount >= t.gpuCount && c.vramGiB >= t.vramGiB;
    }

    /// @dev Slot D of an open order: maxPrice (96) | biddingEnd (48) | maxDuration (32) |
    /// gpuClass (8) | gpuCount (8) | vramGiB (16) | instant (8) | service (8), low bits first.
    function _packTerms(Terms memory t) private pure returns (uint256) {
        return uint256(t.maxPrice) | (uint256(t.biddingEnd) << 96) | (uint256(t.maxDuration) << 144)
            | (uint256(t.gpuClass) << 176) | (uint256(t.gpuCount) << 184) | (uint256(t.vramGiB) << 192)
            | (t.instant ? uint256(1) << 208 : 0) | (t.service ? uint256(1) << 216 : 0);
    }

    function _unpackTerms(uint256 d) private pure returns (Terms memory t) {
        t.maxPrice = uint96(d);
        t.biddingEnd = uint48(d >> 96);
        t.maxDuration = uint32(d >> 144);
        t.gpuClass = uint8(d >> 176);
        t.gpuCount = uint8(d >> 184);
        t.vramGiB = uint16(d >> 192);
        t.instant = (d >> 208) & 1 == 1;
        t.service = (d >> 216) & 1 == 1;
    }
}
