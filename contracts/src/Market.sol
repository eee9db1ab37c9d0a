// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IMarket, IResults} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {LeaseMath} from "./libraries/LeaseMath.sol";
import {TokenFlow} from "./libraries/TokenFlow.sol";

/// @title Market
/// @notice Reverse auction and per-second streaming escrow. An order becomes its lease in place.
/// @dev Token conservation, per payment token: `balanceOf(this) == Σ escrow of open orders and
/// active leases + Σ credits` for standard tokens.
contract Market is IMarket, Ownable2Step, ReentrancyGuardTransient, EIP712 {
    using TokenFlow for IERC20;

    /// @dev Hard cap on the protocol fee (10%).
    uint16 private constant MAX_PROTOCOL_FEE_BPS = 1_000;
    /// @dev Hard cap on the keeper fee (1%).
    uint16 private constant MAX_KEEPER_FEE_BPS = 100;
    /// @dev Most signed bids one award considers.
    uint256 private constant MAX_SIGNED_BIDS = 32;
    /// @dev EIP-712 type of a signed bid.
    bytes32 private constant BID_TYPEHASH = keccak256("Bid(bytes32 orderId,uint96 pricePerSecond,uint48 expiry)");

    /// @dev One order/lease, four slots. Settlement touches only slots A and D.
    /// A: status (8) | tokenId (8) | protocolFeeBps (16) | keeperFeeBps (16) | lowBalance (8) |
    ///    settledAt (48) | end (48) | escrow (96)                                     = 248 bits
    /// B: bidder (160) | bidPrice (96)     lowest on-chain bid; empty once awarded
    /// C: tenant (160) | collateral (96)
    /// D: before award, the order's terms (see `_packTerms`); after award the lease:
    ///    provider (160) | rate (96). Reusing D means an award writes no fresh slot.
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
        Status status;
        uint8 tokenId;
        uint16 protocolFeeBps;
        uint16 keeperFeeBps;
        bool lowBalance;
        uint48 settledAt;
        uint48 end;
        uint96 escrow;
        uint8 kind;
    }

    /// @dev `State.kind`: how a lease accrues. A batch lease whose result was posted stops accruing
    /// at that moment (its end becomes the result time) and is held for the challenge window.
    uint8 private constant KIND_BATCH = 0;
    uint8 private constant KIND_SERVICE = 1;
    uint8 private constant KIND_HELD = 2;

    /// @dev Bit offsets of slot A's fields, as the compiler packs `State` (first member lowest).
    /// The settlement path reads and writes slot A as one word through these.
    uint256 private constant A_TOKEN = 8;
    uint256 private constant A_PROTOCOL_FEE = 16;
    uint256 private constant A_KEEPER_FEE = 32;
    uint256 private constant A_LOW_BALANCE_BIT = 48;
    uint256 private constant A_SETTLED_AT = 56;
    uint256 private constant A_END = 104;
    uint256 private constant A_ESCROW = 152;
    uint256 private constant A_KIND = 248;
    uint256 private constant A_LOW_BALANCE = 1 << A_LOW_BALANCE_BIT;
    /// @dev Everything but settledAt and escrow.
    uint256 private constant A_ESCROW_MASK = uint256(type(uint96).max) << A_ESCROW;
    uint256 private constant A_KEEP_ON_SETTLE = ~((uint256(type(uint48).max) << A_SETTLED_AT) | A_ESCROW_MASK);

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

    /// @dev Allow-list entry looked up by token address when an order is created.
    struct TokenInfo {
        uint8 id;
        uint8 decimals;
        bool allowed;
    }

    /// @dev Allow-list entry looked up by id when a lease settles: address and 10^(18-decimals).
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
    }

    IStaking private immutable _staking;

    Params private _params;
    address private _treasury;
    uint8 private _tokenCount;
    address private _results;
    /// @dev The results contract's challenge window (read when it is set).
    uint48 private _challengeWindow;


    mapping(address token => TokenInfo) private _tokenInfo;
    mapping(uint8 id => TokenSlot) private _tokenSlots;
    mapping(bytes32 id => Job) private _jobs;
    mapping(address token => mapping(address account => uint256)) private _credits;
    mapping(address token => uint256) private _protocolFees;

    /// @param staking_ The staking contract (this market must be set as its market).
    /// @param owner_ Governance.
    /// @param treasury_ Receiver of protocol fees.
    /// @param params_ Initial parameters (bounded like every later change).
    constructor(IStaking staking_, address owner_, address treasury_, Params memory params_)
        Ownable(owner_)
        EIP712("gridlease Market", "1")
    {
        if (address(staking_) == address(0) || treasury_ == address(0)) revert ZeroAddressMarket();
        _staking = staking_;
        _treasury = treasury_;
        emit TreasurySet(treasury_);
        _setParams(params_);
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

    /// @inheritdoc IMarket
    function cancelOrder(bytes32 orderId) external nonReentrant {
        Job storage job = _jobs[orderId];
        if (job.state.status != Status.Open) revert OrderNotOpen(orderId, job.state.status);
        address tenant = job.tenant;
        // Anyone may clean up an order nobody awarded in time, so no escrow is ever stuck (AUC-13).
        if (msg.sender != tenant && block.timestamp <= uint256(_unpackTerms(job.d).biddingEnd) + _params.awardGrace) {
            revert NotTenant(msg.sender);
        }
        uint96 refund = job.state.escrow;
        uint8 tokenId = job.state.tokenId;
        _clear(orderId, Status.Cancelled);
        _pay(_tokenSlots[tokenId].token, tenant, refund);
        emit OrderCancelled(orderId, msg.sender, refund);
    }

    /// @inheritdoc IMarket
    function topUp(bytes32 id, uint96 amount, address expectedProvider) external nonReentrant {
        if (amount == 0) revert ZeroAmountMarket();
        Job storage job = _jobs[id];
        uint256 a = _loadState(job);
        Status status = Status(uint8(a));
        if (status != Status.Open && status != Status.Leased) revert LeaseNotActive(id, status);
        uint8 tokenId = uint8(a >> A_TOKEN);
        TokenSlot memory slot = _tokenSlots[tokenId];
        if (status == Status.Leased) {
            uint256 d = job.d;
            address provider = address(uint160(d));
            if (provider != expectedProvider) revert ProviderMismatch(id, expectedProvider, provider);
            // Settle first so the new money only pays for time from now on; a lease that already
            // ran dry cannot be revived, so nothing is ever paid for the gap (ESC-08).
            Tally memory tally = Tally(tokenId, provider, _params.lowBalanceWindow, 0, 0, 0, 0);
            a = _accrue(id, job, a, uint96(d >> 160), slot.scale, tally, false, true);
            if (_escrowOf(a) == 0) revert LeaseDepleted(id);
            _flush(tally, slot.token);
        }
        uint256 escrow = uint256(_escrowOf(a)) + amount;
        if (escrow > type(uint96).max) revert EscrowOverflow(escrow);
        _storeState(job, (a & ~(A_ESCROW_MASK | A_LOW_BALANCE)) | (escrow << A_ESCROW));
        IERC20(slot.token).pullExact(amount);
        emit ToppedUp(id, amount, uint96(escrow));
    }

    // ================================================================ provider

    /// @inheritdoc IMarket
    function bid(bytes32 orderId, uint96 price) external nonReentrant {
        Params memory params_ = _params;
        if (params_.paused) revert MarketPaused();
        Job storage job = _jobs[orderId];
        if (job.state.status != Status.Open) revert OrderNotOpen(orderId, job.state.status);
        Terms memory terms = _unpackTerms(job.d);
        if (block.timestamp > terms.biddingEnd) revert BiddingClosed(orderId, terms.biddingEnd);
        _checkPrice(price, terms.maxPrice, params_.minPricePerSecond);

        IStaking.BidderInfo memory info = _staking.bidderInfo(msg.sender);
        if (info.provider == address(0)) revert NotAnOperator(msg.sender);
        uint96 collateral = job.collateral;
        if (info.freeStake < collateral) revert InsufficientCollateral(info.provider, info.freeStake, collateral);
        if (!_fits(terms, info.capacity)) revert CapacityMismatch(info.provider);
        if (terms.service && !_live(info.provider)) revert ProviderNotLive(info.provider);

        if (terms.instant) {
            if (!_staking.tryLock(info.provider, collateral)) {
                revert InsufficientCollateral(info.provider, info.freeStake, collateral);
            }
            _startLease(orderId, job, terms, info.provider, price, params_, false);
            return;
        }
        // Bids are binding and only the lowest is kept, so award never loops over bids (AUC-08)
        // and equal prices go to the earliest (AUC-09).
        if (job.bidder != address(0) && price >= job.bidPrice) revert BidNotLowest(price, job.bidPrice);
        (job.bidder, job.bidPrice) = (info.provider, price);
        emit BidPlaced(orderId, info.provider, price);
    }

    // ================================================================ anyone

    /// @inheritdoc IMarket
    function award(bytes32 orderId, SignedBid[] calldata signedBids) external nonReentrant returns (address winner) {
        Params memory params_ = _params;
        if (params_.paused) revert MarketPaused();
        if (signedBids.length > MAX_SIGNED_BIDS) revert TooManySignedBids(signedBids.length, MAX_SIGNED_BIDS);
        Job storage job = _jobs[orderId];
        if (job.state.status != Status.Open) revert OrderNotOpen(orderId, job.state.status);
        Terms memory terms = _unpackTerms(job.d);
        if (!terms.instant && block.timestamp <= terms.biddingEnd) revert BiddingStillOpen(orderId, terms.biddingEnd);

        uint96 collateral = job.collateral;
        // Lowest valid signed bid; invalid ones are skipped so nobody can grief an award.
        (address signedProvider, uint96 signedPrice) =
            _bestSignedBid(orderId, terms, collateral, signedBids, params_.minPricePerSecond);
        (address onchain, uint96 onchainPrice) = (job.bidder, job.bidPrice);
        if (onchain != address(0)) (job.bidder, job.bidPrice) = (address(0), 0);
        // The on-chain bid was placed before any signed bid is revealed, so it wins ties. It is
        // re-checked here: a provider slashed or unbonded since bidding is passed over (AUC-12).
        if (
            onchain != address(0) && (signedProvider == address(0) || onchainPrice <= signedPrice)
                && (!terms.service || _live(onchain)) && _staking.tryLock(onchain, collateral)
        ) {
            _startLease(orderId, job, terms, onchain, onchainPrice, params_, false);
            return onchain;
        }
        if (signedProvider != address(0) && _staking.tryLock(signedProvider, collateral)) {
            _startLease(orderId, job, terms, signedProvider, signedPrice, params_, true);
            return signedProvider;
        }
        revert NoValidBid(orderId);
    }

    /// @inheritdoc IMarket
    function settle(bytes32[] calldata leaseIds) external nonReentrant returns (uint256 settled) {
        Tally memory tally = Tally(0, address(0), _params.lowBalanceWindow, 0, 0, 0, 0);
        TokenSlot memory slot = TokenSlot(address(0), 0);
        for (uint256 i; i < leaseIds.length; ++i) {
            bytes32 id = leaseIds[i];
            Job storage job = _jobs[id];
            uint256 a = _loadState(job);
            // Inactive leases are skipped (counted out of `settled`), never a batch revert (ESC-16).
            if (uint8(a) != uint8(Status.Leased)) continue;
            uint8 tokenId = uint8(a >> A_TOKEN);
            uint256 d = job.d;
            address provider = address(uint160(d));
            if (tokenId != tally.tokenId || provider != tally.provider) {
                _flush(tally, slot.token);
                (tally.paid, tally.toProvider, tally.protocolFees, tally.keeperFees) = (0, 0, 0, 0);
                if (tokenId != tally.tokenId) slot = _tokenSlots[tokenId];
                (tally.tokenId, tally.provider) = (tokenId, provider);
            }
            uint256 after_ = _accrue(id, job, a, uint96(d >> 160), slot.scale, tally, true, true);
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
        (address tenant, uint96 collateral) = (job.tenant, job.collateral);
        uint256 d = job.d;
        address provider = address(uint160(d));
        uint8 tokenId = uint8(a >> A_TOKEN);
        TokenSlot memory slot = _tokenSlots[tokenId];

        CloseReason reason = CloseReason.TenantClosed;
        bool party = true;
        if (msg.sender == tenant) {
            // reason stays TenantClosed; on a held lease this accepts the result and pays for it
        } else if (msg.sender == provider || _staking.providerOf(msg.sender) == provider) {
            reason = CloseReason.ProviderClosed;
        } else {
            party = false;
        }
        Tally memory tally = Tally(tokenId, provider, 0, 0, 0, 0, 0);
        // The settled word is not stored: the lease is cleared right below.
        a = _accrue(leaseId, job, a, uint96(d >> 160), slot.scale, tally, !party, false);
        uint96 refund = _escrowOf(a);
        uint48 end = uint48(a >> A_END);
        if (!party) {
            if (a >> A_KIND == KIND_HELD) {
                // Nothing accrued above while the result can still be challenged.
                if (block.timestamp <= _holdEnd(a)) revert LeaseNotClosable(leaseId, uint48(_holdEnd(a)), refund);
                reason = CloseReason.Completed;
            } else if (block.timestamp >= end) {
                reason = CloseReason.Expired;
            } else if (refund == 0) {
                reason = CloseReason.Exhausted;
            } else {
                revert LeaseNotClosable(leaseId, end, refund);
            }
        }
        _flush(tally, slot.token);
        _clear(leaseId, Status.Closed);
        _pay(slot.token, tenant, refund);
        _staking.release(provider, collateral);
        emit LeaseClosed(
            leaseId,
            reason,
            uint96(tally.paid),
            uint96(tally.toProvider),
            uint96(tally.protocolFees),
            uint96(tally.keeperFees),
            refund,
            uint48(block.timestamp)
        );
    }

    /// @inheritdoc IMarket
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddressMarket();
        amount = _credits[token][msg.sender];
        if (amount == 0) revert NothingToWithdrawMarket(token, msg.sender);
        _credits[token][msg.sender] = 0;
        IERC20(token).send(to, amount);
        emit Withdrawn(token, msg.sender, to, amount);
    }

    /// @notice Send the protocol fees collected in `token` to the treasury (anyone may call).
    function withdrawFees(address token) external nonReentrant returns (uint256 amount) {
        amount = _protocolFees[token];
        if (amount == 0) revert NothingToWithdrawMarket(token, _treasury);
        _protocolFees[token] = 0;
        address to = _treasury;
        IERC20(token).send(to, amount);
        emit FeesWithdrawn(token, to, amount);
    }

    // ================================================================ governance

    /// @notice Add a payment token to the allow-list, or enable/disable it for new orders.
    /// @dev Disabling never blocks existing orders and leases from settling or exiting (TOK-12).
    function configureToken(address token, bool allowed) external onlyOwner {
        if (token == address(0)) revert ZeroAddressMarket();
        TokenInfo memory info = _tokenInfo[token];
        if (info.id == 0) {
            uint8 decimals = IERC20Metadata(token).decimals();
            if (decimals > 18) revert TokenDecimalsUnsupported(token, decimals);
            if (_tokenCount == type(uint8).max) revert TooManyTokens();
            info.id = ++_tokenCount;
            info.decimals = decimals;
            _tokenSlots[info.id] = TokenSlot(token, uint64(10 ** (18 - decimals)));
        }
        info.allowed = allowed;
        _tokenInfo[token] = info;
        emit TokenConfigured(token, info.id, info.decimals, allowed);
    }

    /// @notice Change governance parameters. Fees apply to leases awarded afterwards (ESC-11).
    function setParams(Params calldata params_) external onlyOwner {
        _setParams(params_);
    }

    /// @notice Set the results contract, the one caller of `fault` and `resultPosted`, and take
    /// its challenge window.
    function setResults(address results_) external onlyOwner {
        if (results_ == address(0)) revert ZeroAddressMarket();
        (_results, _challengeWindow) = (results_, IResults(results_).challengeWindow());
        emit ResultsSet(results_);
    }

    /// @notice The operator of batch lease `leaseId`'s provider posted its result (called by the
    /// results contract). The lease stops accruing now: its end becomes this moment. What is not
    /// yet settled, and the collateral, are held for the challenge window: until it ends only the
    /// tenant can settle or close the lease (accepting the result), a fraud proof refunds it all,
    /// and a provider that closes it forfeits what is held; after it anyone can close it as
    /// Completed. Service leases are not touched.
    function resultPosted(bytes32 leaseId) external {
        if (msg.sender != _results) revert NotResults(msg.sender);
        Job storage job = _jobs[leaseId];
        uint256 a = _loadState(job);
        if (uint8(a) != uint8(Status.Leased) || a >> A_KIND != KIND_BATCH) return;
        _storeState(
            job,
            (a & ~(uint256(type(uint48).max) << A_END)) | (block.timestamp << A_END)
                | (uint256(KIND_HELD) << A_KIND)
        );
    }

    /// @notice Results contract this market takes faults from.
    function results() external view returns (address) {
        return _results;
    }

    /// @notice A fault of `provider` on lease `leaseId` was proven (by the results contract, which
    /// checked the proof and that it was not reported before). A running lease closes as Faulted:
    /// nothing unsettled is paid, all escrow goes back to the tenant, and the lease's collateral is
    /// slashed. A lease that already closed is not touched; the provider's stake (free, then
    /// unbonding) is slashed all the same, so closing early does not escape a proof.
    /// Of the slash the tenant receives half first, the reporter its share of the rest, the
    /// treasury the remainder (`Staking.slash`).
    /// @param collateral The lease's collateral (from its order terms, checked by the caller).
    function fault(
        bytes32 leaseId,
        address provider,
        address tenant,
        uint96 collateral,
        bytes32 evidence,
        address reporter
    ) external nonReentrant returns (uint256 slashed) {
        // An unset results contract (zero) can never be the caller.
        if (msg.sender != _results) revert NotResults(msg.sender);
        Job storage job = _jobs[leaseId];
        uint256 a = _loadState(job);
        uint96 refund = 0;
        uint256 locked = 0;
        if (uint8(a) == uint8(Status.Leased) && address(uint160(job.d)) == provider) {
            refund = _escrowOf(a);
            locked = collateral;
            address token = _tokenSlots[uint8(a >> A_TOKEN)].token;
            _clear(leaseId, Status.Closed);
            _pay(token, tenant, refund);
            emit LeaseClosed(leaseId, CloseReason.Faulted, 0, 0, 0, 0, refund, uint48(block.timestamp));
        }
        slashed = _staking.slash(provider, collateral, locked, evidence, tenant, uint256(collateral) / 2, reporter);
        emit LeaseFaulted(leaseId, provider, evidence, slashed, refund);
    }

    /// @notice Change the treasury.
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddressMarket();
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    // ================================================================ views

    /// @inheritdoc IMarket
    function getJob(bytes32 id) external view returns (JobView memory v) {
        Job storage job = _jobs[id];
        v.status = job.state.status;
        v.tenant = job.tenant;
        v.token = _tokenSlots[job.state.tokenId].token;
        v.escrow = job.state.escrow;
        v.collateral = job.collateral;
        v.settledAt = job.state.settledAt;
        v.end = job.state.end;
        v.protocolFeeBps = job.state.protocolFeeBps;
        v.keeperFeeBps = job.state.keeperFeeBps;
        v.lowBalance = job.state.lowBalance;
        if (v.status == Status.Open) {
            Terms memory terms = _unpackTerms(job.d);
            (v.provider, v.ratePerSecond) = (job.bidder, job.bidPrice);
            v.maxPricePerSecond = terms.maxPrice;
            v.biddingEnd = terms.biddingEnd;
            v.maxDuration = terms.maxDuration;
            v.instant = terms.instant;
        } else if (v.status == Status.Leased) {
            (v.provider, v.ratePerSecond) = (address(uint160(job.d)), uint96(job.d >> 160));
            v.maxDuration = uint32(job.state.end - job.state.settledAt);
        }
    }

    /// @inheritdoc IMarket
    function accrued(bytes32 leaseId) external view returns (uint96) {
        Job storage job = _jobs[leaseId];
        if (job.state.status != Status.Leased) return 0;
        uint256 a = _loadState(job);
        uint256 cap = _cap(job, a, address(uint160(job.d)));
        (uint256 amount,) = _owedFrom(a, uint96(job.d >> 160), _tokenSlots[job.state.tokenId].scale, cap);
        return uint96(amount);
    }

    /// @inheritdoc IMarket
    function creditOf(address token, address account) external view returns (uint256) {
        return _credits[token][account];
    }

    /// @inheritdoc IMarket
    function protocolFees(address token) external view returns (uint256) {
        return _protocolFees[token];
    }

    /// @dev EIP-712 digest an operator signs for a bid (domain "gridlease Market", version "1").
    function _bidDigest(bytes32 orderId, uint96 price, uint48 expiry) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(BID_TYPEHASH, orderId, price, expiry)));
    }

    /// @inheritdoc IMarket
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @inheritdoc IMarket
    function staking() external view returns (address) {
        return address(_staking);
    }

    /// @inheritdoc IMarket
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice The allow-list entry of `token`.
    function tokenInfo(address token) external view returns (uint8 id, uint8 decimals, bool allowed) {
        TokenInfo memory info = _tokenInfo[token];
        return (info.id, info.decimals, info.allowed);
    }

    // ================================================================ internal

    function _createOrder(OrderParams calldata p) private returns (bytes32 orderId) {
        Params memory params_ = _params;
        if (params_.paused) revert MarketPaused();
        TokenInfo memory info = _tokenInfo[p.token];
        if (!info.allowed) revert TokenNotAllowed(p.token);
        if (p.deposit == 0) revert InvalidOrder("deposit", 0);
        if (p.maxPricePerSecond < params_.minPricePerSecond) revert InvalidOrder("maxPricePerSecond", p.maxPricePerSecond);
        if (p.maxDuration == 0 || p.maxDuration > params_.maxLeaseDuration) revert InvalidOrder("maxDuration", p.maxDuration);
        if (p.bidWindow == 0 || p.bidWindow > params_.maxBidWindow) revert InvalidOrder("bidWindow", p.bidWindow);
        if (p.gpuCount == 0) revert InvalidOrder("gpuCount", 0);
        if (p.gpuClass > 63) revert InvalidOrder("gpuClass", p.gpuClass);

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
        bool signed
    ) private {
        uint48 start = uint48(block.timestamp);
        uint48 end = start + terms.maxDuration;
        job.state.status = Status.Leased;
        job.state.protocolFeeBps = params_.protocolFeeBps;
        job.state.keeperFeeBps = params_.keeperFeeBps;
        job.state.settledAt = start;
        job.state.end = end;
        if (terms.service) {
            // Slot B, empty once awarded, keeps the provider's heartbeat epoch for `_cap`.
            job.state.kind = KIND_SERVICE;
            (, uint64 epoch,) = _staking.liveness(provider);
            job.bidPrice = uint96(epoch);
        }
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
            signed
        );
    }

    function _bestSignedBid(
        bytes32 orderId,
        Terms memory terms,
        uint96 collateral,
        SignedBid[] calldata bids,
        uint64 minPrice
    ) private view returns (address bestProvider, uint96 bestPrice) {
        for (uint256 i; i < bids.length; ++i) {
            SignedBid calldata b = bids[i];
            uint96 price = b.pricePerSecond;
            if (b.expiry < block.timestamp || price > terms.maxPrice || price < minPrice) continue;
            if (bestProvider != address(0) && price >= bestPrice) continue;
            (address operator, ECDSA.RecoverError err,) =
                ECDSA.tryRecover(_bidDigest(orderId, price, b.expiry), b.signature);
            if (err != ECDSA.RecoverError.NoError) continue;
            IStaking.BidderInfo memory info = _staking.bidderInfo(operator);
            if (info.provider == address(0) || info.freeStake < collateral || !_fits(terms, info.capacity)) continue;
            if (terms.service && !_live(info.provider)) continue;
            (bestProvider, bestPrice) = (info.provider, price);
        }
    }

    /// @dev Settle one lease, whose slot A is `a`, into `tally`; returns slot A after it (equal to
    /// `a` when nothing was owed). The caller stores it. `ongoing` is false when the lease is about
    /// to close: its LeaseClosed event then carries the settlement and no low-balance check is made.
    function _accrue(
        bytes32 id,
        Job storage job,
        uint256 a,
        uint96 rate,
        uint256 scale,
        Tally memory tally,
        bool keeperPaid,
        bool ongoing
    ) private returns (uint256) {
        uint256 cap = type(uint256).max;
        if (a >> A_KIND != KIND_BATCH) cap = _kindCap(job, a, tally.provider);
        (uint256 amount, uint256 until) = _owedFrom(a, rate, scale, cap);
        // Nothing owed: no state change and no fee (KPR-04). An empty escrow is already final.
        if (amount == 0) return a;
        uint256 escrow;
        // Safe: amount <= escrow by construction of _owedFrom.
        unchecked {
            escrow = _escrowOf(a) - amount;
        }
        (uint256 protocolFee, uint256 keeperFee, uint256 toProvider) = LeaseMath.split(
            amount, uint16(a >> A_PROTOCOL_FEE), keeperPaid ? uint16(a >> A_KEEPER_FEE) : 0
        );
        tally.paid += amount;
        tally.toProvider += toProvider;
        tally.protocolFees += protocolFee;
        tally.keeperFees += keeperFee;
        a = (a & A_KEEP_ON_SETTLE) | (until << A_SETTLED_AT) | (escrow << A_ESCROW);
        if (!ongoing) return a;
        emit LeaseSettled(id, uint96(amount), uint48(until), uint96(escrow));
        if (a & A_LOW_BALANCE == 0 && escrow * scale < uint256(rate) * tally.lowBalanceWindow) {
            a |= A_LOW_BALANCE;
            emit LowBalance(id, uint96(escrow), LeaseMath.depletesAt(until, escrow, rate, scale));
        }
        return a;
    }

    /// @dev Amount owed now (capped by escrow; a service lease also by its provider's liveness
    /// `cap`) and the time it is owed up to, from slot A.
    function _owedFrom(uint256 a, uint96 rate, uint256 scale, uint256 cap)
        private
        view
        returns (uint256 amount, uint256 until)
    {
        uint256 end = uint48(a >> A_END);
        until = block.timestamp < end ? block.timestamp : end;
        if (cap < until) until = cap;
        uint256 from = uint48(a >> A_SETTLED_AT);
        if (until <= from) return (0, from);
        amount = LeaseMath.owed(rate, until - from, scale, _escrowOf(a));
    }

    /// @dev Until when a lease can accrue: forever for batch leases; for a service lease, its
    /// provider's last heartbeat + period while the epoch it was awarded in lasts, else that
    /// epoch's end. Slot B of a service lease holds its award epoch.
    function _cap(Job storage job, uint256 a, address provider) private view returns (uint256) {
        return a >> A_KIND == KIND_BATCH ? type(uint256).max : _kindCap(job, a, provider);
    }

    /// @dev `_cap` of a service lease, or of a held batch lease: nothing until its challenge
    /// window ends, unless its tenant (accepting the result) calls.
    function _kindCap(Job storage job, uint256 a, address provider) private view returns (uint256) {
        if (a >> A_KIND == KIND_HELD) {
            return block.timestamp > _holdEnd(a) || msg.sender == job.tenant ? type(uint256).max : 0;
        }
        uint64 epoch = uint64(job.bidPrice);
        (uint48 at, uint64 current, uint16 period) = _staking.liveness(provider);
        if (current != epoch) return _staking.epochEnd(provider, epoch);
        return uint256(at) + period;
    }

    /// @dev Whether `provider` heart-beat within the period.
    function _live(address provider) private view returns (bool) {
        (uint48 at,, uint16 period) = _staking.liveness(provider);
        return at != 0 && block.timestamp <= uint256(at) + period;
    }

    /// @dev Last second of a held lease's challenge window (its end is the result time).
    function _holdEnd(uint256 a) private view returns (uint256) {
        return uint256(uint48(a >> A_END)) + _challengeWindow;
    }

    /// @dev Escrow field of slot A.
    function _escrowOf(uint256 a) private pure returns (uint96) {
        return uint96(a >> A_ESCROW);
    }

    /// @dev Slot A of `job` as one word (layout in the `Job` comment; the `A_*` offsets below).
    function _loadState(Job storage job) private view returns (uint256 a) {
        assembly ("memory-safe") {
            a := sload(job.slot)
        }
    }

    /// @dev Write slot A of `job` whole.
    function _storeState(Job storage job, uint256 a) private {
        assembly ("memory-safe") {
            sstore(job.slot, a)
        }
    }

    /// @dev Book a batch's running sums as credits.
    function _flush(Tally memory tally, address token) private {
        if (tally.toProvider != 0) _credits[token][tally.provider] += tally.toProvider;
        if (tally.protocolFees != 0) _protocolFees[token] += tally.protocolFees;
        if (tally.keeperFees != 0) _credits[token][msg.sender] += tally.keeperFees;
    }

    /// @dev Push `amount` to `to`; if the token refuses (blacklist, pause), book a credit so
    /// nobody else's exit is blocked (TOK-05).
    function _pay(address token, address to, uint256 amount) private {
        if (IERC20(token).trySend(to, amount)) return;
        _credits[token][to] += amount;
        emit Credited(token, to, amount);
    }

    /// @dev Mark terminal and free every other field (gas refund); the status stays so the id can
    /// never be reused.
    function _clear(bytes32 id, Status status) private {
        delete _jobs[id];
        _jobs[id].state.status = status;
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
    /// gpuClass (8) | gpuCount (8) | vramGiB (16) | instant (8), low bits first.
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

    function _setParams(Params memory p) private {
        if (p.protocolFeeBps > MAX_PROTOCOL_FEE_BPS) {
            revert ParameterOutOfBounds("protocolFeeBps", p.protocolFeeBps, 0, MAX_PROTOCOL_FEE_BPS);
        }
        if (p.keeperFeeBps > MAX_KEEPER_FEE_BPS) {
            revert ParameterOutOfBounds("keeperFeeBps", p.keeperFeeBps, 0, MAX_KEEPER_FEE_BPS);
        }
        if (p.minPricePerSecond == 0) revert ParameterOutOfBounds("minPricePerSecond", 0, 1, type(uint64).max);
        if (p.maxBidWindow == 0 || p.maxBidWindow > 7 days) {
            revert ParameterOutOfBounds("maxBidWindow", p.maxBidWindow, 1, 7 days);
        }
        if (p.awardGrace < 1 minutes || p.awardGrace > 7 days) {
            revert ParameterOutOfBounds("awardGrace", p.awardGrace, 1 minutes, 7 days);
        }
        if (p.lowBalanceWindow > 7 days) revert ParameterOutOfBounds("lowBalanceWindow", p.lowBalanceWindow, 0, 7 days);
        // Leases end before stake that collateralised them can finish unbonding (STK-03).
        uint256 maxLease = _staking.unbondingPeriod() / 2;
        if (p.maxLeaseDuration == 0 || p.maxLeaseDuration > maxLease) {
            revert ParameterOutOfBounds("maxLeaseDuration", p.maxLeaseDuration, 1, maxLease);
        }
        _params = p;
        emit ParamsSet(p);
    }
}
