// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";

import {IMarket, IMarketAdmin, IResultsModule, ITimelockDelay} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {LeaseMath} from "./libraries/LeaseMath.sol";
import {MarketLayout as L} from "./libraries/MarketLayout.sol";
import {TokenFlow} from "./libraries/TokenFlow.sol";
import {MarketBase} from "./market/MarketBase.sol";

/// @title MarketAdmin
/// @notice The market's cold paths: cancels, top-ups, faults, abandonment, protocol fees and
/// governance. Deployed once per staking contract and reached only through `Market`'s fallback, so
/// every function runs in the market's storage with the market's caller; called directly it only
/// ever touches its own empty storage. Keeping them here leaves the market room to grow (EIP-170).
contract MarketAdmin is IMarketAdmin, MarketBase {
    using TokenFlow for IERC20;

    /// @dev Hard cap on the protocol fee (10%).
    uint16 private constant MAX_PROTOCOL_FEE_BPS = 1_000;
    /// @dev Hard cap on the keeper fee (1%).
    uint16 private constant MAX_KEEPER_FEE_BPS = 100;
    /// @dev Hard cap on a module's fault fee (10% of what a fault returns to the tenant).
    uint16 private constant MAX_FAULT_FEE_BPS = 1_000;

    /// @dev 10^(18 - stake token decimals): slash compensation is converted at 1:1 in value.
    uint256 private immutable _stakeScale;
    /// @dev How long a closed lease's held collateral stays locked and slashable.
    uint256 private immutable _faultHorizon;

    /// @param staking_ The staking contract of the market this serves.
    /// @param faultHorizon_ Seconds a closed lease's collateral stays held (and its faults provable)
    /// after the close; every results module's windows must fit in it.
    constructor(IStaking staking_, uint256 faultHorizon_) MarketBase(staking_, address(1)) {
        if (faultHorizon_ < 1 hours || faultHorizon_ > 30 days) {
            revert IMarket.ParameterOutOfBounds("faultHorizon", faultHorizon_, 1 hours, 30 days);
        }
        _stakeScale = _stakeScaleOf(staking_);
        _faultHorizon = faultHorizon_;
    }

    /// @inheritdoc IMarketAdmin
    function faultHorizon() external view returns (uint256) {
        return _faultHorizon;
    }

    /// @notice The staking contract (the market checks it matches its own).
    function staking() external view returns (address) {
        return address(_staking);
    }

    // ================================================================ tenant

    /// @inheritdoc IMarketAdmin
    function cancelOrder(bytes32 orderId) external nonReentrant {
        Job storage job = _jobs[orderId];
        if (job.state.status != IMarket.Status.Open) revert IMarket.OrderNotOpen(orderId, job.state.status);
        address tenant = job.tenant;
        // Anyone may clean up an order nobody awarded in time, so no escrow is ever stuck (AUC-13).
        uint256 biddingEnd = uint48(job.d >> 96);
        if (msg.sender != tenant && block.timestamp <= biddingEnd + _params.awardGrace) {
            revert IMarket.NotTenant(msg.sender);
        }
        uint96 refund = job.state.escrow;
        uint8 tokenId = job.state.tokenId;
        // The lowest on-chain bid's reserved collateral is freed with the order (AFR-01).
        address bidder = job.bidder;
        if (bidder != address(0)) _staking.release(bidder, job.collateral);
        _clear(orderId, IMarket.Status.Cancelled);
        _pay(_tokenSlots[tokenId].token, tenant, refund);
        emit IMarket.OrderCancelled(orderId, msg.sender, refund);
    }

    /// @inheritdoc IMarketAdmin
    function topUp(bytes32 id, uint96 amount, address expectedProvider) external nonReentrant {
        if (amount == 0) revert IMarket.ZeroAmountMarket();
        Job storage job = _jobs[id];
        uint256 a = _loadState(job);
        IMarket.Status status = IMarket.Status(uint8(a));
        if (status != IMarket.Status.Open && status != IMarket.Status.Leased) {
            revert IMarket.LeaseNotActive(id, status);
        }
        uint8 tokenId = uint8(a >> L.A_TOKEN);
        TokenSlot memory slot = _tokenSlots[tokenId];
        if (status == IMarket.Status.Leased) {
            uint256 d = job.d;
            address provider = address(uint160(d));
            if (provider != expectedProvider) revert IMarket.ProviderMismatch(id, expectedProvider, provider);
            uint8 kind = uint8(a >> L.A_FLAGS) & L.KIND_MASK;
            // A held result is final: money added after it would only be refunded (MEC-14).
            if (kind == L.KIND_HELD) revert IMarket.LeaseHeld(id, uint48(a >> L.A_END));
            if (kind == L.KIND_SERVICE) {
                // Settle first so the new money only pays for time from now on; a lease that ran
                // dry or lapsed cannot be revived, so nothing is ever paid for the gap (ESC-08).
                Tally memory tally;
                (tally.tokenId, tally.provider, tally.lowBalanceWindow) = (tokenId, provider, _params.lowBalanceWindow);
                tally.live = _staking.liveness(provider);
                if (_lapsed(tally.live, uint48(a >> L.A_SETTLED_AT))) revert IMarket.LeaseDepleted(id);
                a = _accrue(id, a, uint96(d >> 160), slot.scale, tally, _serviceUntil(a, tally.live), false, true);
                if (_escrowOf(a) == 0) revert IMarket.LeaseDepleted(id);
                _flush(tally, slot.token);
            }
        }
        uint256 escrow = uint256(_escrowOf(a)) + amount;
        if (escrow > type(uint96).max) revert IMarket.EscrowOverflow(escrow);
        _storeState(job, (a & ~(A_ESCROW_MASK | A_LOW_BALANCE)) | (escrow << L.A_ESCROW));
        IERC20(slot.token).pullExact(amount);
        emit IMarket.ToppedUp(id, amount, uint96(escrow));
    }

    // ================================================================ faults

    /// @inheritdoc IMarketAdmin
    function abandon(bytes32 leaseId) external nonReentrant returns (uint256 slashed) {
        Job storage job = _jobs[leaseId];
        uint256 a = _loadState(job);
        address provider = address(uint160(job.d));
        if (
            uint8(a) != uint8(IMarket.Status.Leased) || uint8(a >> L.A_FLAGS) & L.KIND_MASK != L.KIND_BATCH
                || (msg.sender != provider && _staking.providerOf(msg.sender) != provider)
        ) revert IMarket.LeaseNotClosable(leaseId, uint48(a >> L.A_END), _escrowOf(a));
        slashed = _fault(leaseId, job, a, address(0), "abandoned");
    }

    /// @inheritdoc IMarketAdmin
    function fault(bytes32 leaseId, address reporter, bytes32 kind) external nonReentrant returns (uint256 slashed) {
        Job storage job = _jobs[leaseId];
        uint256 a = _loadState(job);
        _onlyModule(a);
        slashed = _fault(leaseId, job, a, reporter, kind);
    }

    /// @inheritdoc IMarketAdmin
    function releaseHeld(bytes32[] calldata leaseIds) external nonReentrant returns (uint256 released) {
        for (uint256 i; i < leaseIds.length; ++i) {
            bytes32 id = leaseIds[i];
            Job storage job = _jobs[id];
            uint256 a = _loadState(job);
            if (
                uint8(a) != uint8(IMarket.Status.Closed) || uint8(a >> L.A_FLAGS) & L.F_HELD == 0
                    || block.timestamp <= uint256(uint48(a >> L.A_SETTLED_AT)) + _faultHorizon
            ) continue;
            (address provider, uint96 collateral) = (address(uint160(job.d)), job.collateral);
            _clear(id, IMarket.Status.Closed);
            _staking.release(provider, collateral);
            emit IMarket.HeldReleased(id, provider, collateral);
            ++released;
        }
    }

    /// @inheritdoc IMarketAdmin
    function withdrawFees(address token) external nonReentrant returns (uint256 amount) {
        amount = _protocolFees[token];
        if (amount == 0) revert IMarket.NothingToWithdrawMarket(token, _treasury);
        _protocolFees[token] = 0;
        address to = _treasury;
        IERC20(token).send(to, amount);
        emit IMarket.FeesWithdrawn(token, to, amount);
    }

    // ================================================================ governance

    /// @inheritdoc IMarketAdmin
    /// @dev Disabling never blocks existing orders and leases from settling or exiting (TOK-12).
    function configureToken(address token, bool allowed) external onlyOwner {
        if (token == address(0)) revert IMarket.ZeroAddressMarket();
        TokenInfo memory info = _tokenInfo[token];
        if (info.id == 0) {
            uint8 decimals = IERC20Metadata(token).decimals();
            if (decimals > 18) revert IMarket.TokenDecimalsUnsupported(token, decimals);
            if (_tokenCount == type(uint8).max) revert IMarket.TooManyTokens();
            info.id = ++_tokenCount;
            info.decimals = decimals;
            _tokenSlots[info.id] = TokenSlot(token, uint64(10 ** (18 - decimals)));
        }
        info.allowed = allowed;
        _tokenInfo[token] = info;
        emit IMarket.TokenConfigured(token, info.id, info.decimals, allowed);
    }

    /// @inheritdoc IMarketAdmin
    function setParams(IMarket.Params calldata params_) external onlyOwner {
        IMarket.Params memory p = params_;
        if (p.protocolFeeBps > MAX_PROTOCOL_FEE_BPS) {
            revert IMarket.ParameterOutOfBounds("protocolFeeBps", p.protocolFeeBps, 0, MAX_PROTOCOL_FEE_BPS);
        }
        if (p.keeperFeeBps > MAX_KEEPER_FEE_BPS) {
            revert IMarket.ParameterOutOfBounds("keeperFeeBps", p.keeperFeeBps, 0, MAX_KEEPER_FEE_BPS);
        }
        if (p.minPricePerSecond == 0) revert IMarket.ParameterOutOfBounds("minPricePerSecond", 0, 1, type(uint64).max);
        if (p.maxBidWindow == 0 || p.maxBidWindow > 7 days) {
            revert IMarket.ParameterOutOfBounds("maxBidWindow", p.maxBidWindow, 1, 7 days);
        }
        if (p.awardGrace < 1 minutes || p.awardGrace > 7 days) {
            revert IMarket.ParameterOutOfBounds("awardGrace", p.awardGrace, 1 minutes, 7 days);
        }
        if (p.lowBalanceWindow > 7 days) {
            revert IMarket.ParameterOutOfBounds("lowBalanceWindow", p.lowBalanceWindow, 0, 7 days);
        }
        if (p.minBillingPeriod > 1 hours) {
            revert IMarket.ParameterOutOfBounds("minBillingPeriod", p.minBillingPeriod, 0, 1 hours);
        }
        // A lease and every fault window after it end before stake that collateralised it can
        // finish unbonding (STK-03, GOV-04).
        uint256 unbonding = _staking.unbondingPeriod();
        uint256 maxLease = unbonding > 2 * _faultHorizon ? unbonding - 2 * _faultHorizon - 1 : 0;
        if (p.maxLeaseDuration == 0 || p.maxLeaseDuration > maxLease) {
            revert IMarket.ParameterOutOfBounds("maxLeaseDuration", p.maxLeaseDuration, 1, maxLease);
        }
        // The module binding is `addModule`'s alone.
        p.module = _params.module;
        _params = p;
        emit IMarket.ParamsSet(p);
    }

    /// @inheritdoc IMarketAdmin
    /// @dev Leases awarded from now on are bound to the new module; earlier leases keep theirs, so
    /// no change reaches a live or held lease (GOV-02, GOV-03). Past the first module the owner must
    /// be a timelock whose delay covers the module's fault horizon (GOV-01).
    function addModule(IResultsModule module) external onlyOwner {
        uint8 count = _params.module;
        if (count == type(uint8).max) revert IMarket.ModuleUnavailable(count);
        if (address(module.market()) != address(this)) revert IMarket.ZeroAddressMarket();
        uint256 horizon = module.horizon();
        if (horizon > _faultHorizon) revert IMarket.ParameterOutOfBounds("horizon", horizon, 1, _faultHorizon);
        if (count != 0) {
            address gov = owner();
            uint256 delay = gov.code.length == 0 ? 0 : ITimelockDelay(gov).getMinDelay();
            if (delay < horizon) revert IMarket.TimelockTooShort(gov, delay, horizon);
        }
        IMarket.Module memory m =
            IMarket.Module(address(module), module.challengeWindow(), module.faultFeeBps(), module.startWindow());
        if (m.faultFeeBps > MAX_FAULT_FEE_BPS) {
            revert IMarket.ParameterOutOfBounds("faultFeeBps", m.faultFeeBps, 0, MAX_FAULT_FEE_BPS);
        }
        _modules[++count] = m;
        _params.module = count;
        emit IMarket.ModuleAdded(count, address(module), m);
    }

    /// @inheritdoc IMarketAdmin
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert IMarket.ZeroAddressMarket();
        _treasury = treasury_;
        emit IMarket.TreasurySet(treasury_);
    }

    // ================================================================ internal

    /// @dev A fault on `job` (slot A `a`): running, it closes as Faulted with everything unsettled
    /// refunded to the tenant (a third-party reporter earns the module's fault fee out of it),
    /// but for a service lease's live time before its lapse, which is paid first (it was
    /// delivered: a tenant that leaves a long lease unsettled must not get it back for a later
    /// lapse, MEC-09); closed with its collateral held and within the horizon, the held collateral
    /// is slashed. The tenant is compensated out of the slash for what it paid for the lease,
    /// never more (MEC-07).
    function _fault(bytes32 id, Job storage job, uint256 a, address reporter, bytes32 kind)
        private
        returns (uint256 slashed)
    {
        IMarket.Status status = IMarket.Status(uint8(a));
        uint96 refund;
        uint256 loss;
        bool running = status == IMarket.Status.Leased;
        address provider = address(uint160(job.d));
        TokenSlot memory slot = _tokenSlots[uint8(a >> L.A_TOKEN)];
        // What the service's live time paid, and of it the provider's and the protocol's.
        (uint256 paid, uint256 toProvider, uint256 protocolFees) = (0, 0, 0);
        if (running) {
            if (L.kind(a) == L.KIND_SERVICE) {
                Tally memory tally;
                (tally.tokenId, tally.provider) = (uint8(a >> L.A_TOKEN), provider);
                uint256 live = _serviceUntil(a, _staking.liveness(provider));
                a = _accrue(id, a, uint96(job.d >> 160), slot.scale, tally, live, false, false);
                _flush(tally, slot.token);
                (paid, toProvider, protocolFees) = (tally.paid, tally.toProvider, tally.protocolFees);
            }
            refund = _escrowOf(a);
        } else if (
            status == IMarket.Status.Closed && uint8(a >> L.A_FLAGS) & L.F_HELD != 0
                && block.timestamp <= uint256(uint48(a >> L.A_SETTLED_AT)) + _faultHorizon
        ) {
            loss = _escrowOf(a);
        } else {
            revert IMarket.LeaseNotFaultable(id, status);
        }
        (address tenant, uint96 collateral) = (job.tenant, job.collateral);
        uint256 feeBps = reporter != address(0) && reporter != tenant ? _module(a).faultFeeBps : 0;
        _clear(id, IMarket.Status.Faulted);
        uint256 fee = uint256(refund) * feeBps / LeaseMath.BPS;
        // Never more than the slash: a provider proving its own fault through another address
        // (after the tenant's priority) must not earn more from the tenant than it loses.
        uint256 cap = uint256(collateral) * _stakeScale / slot.scale;
        if (fee > cap) fee = cap;
        if (fee != 0) _credit(slot.token, reporter, fee);
        _pay(slot.token, tenant, refund - fee);
        uint256 compensation = loss * slot.scale / _stakeScale;
        slashed = _staking.slash(
            provider,
            collateral,
            keccak256(abi.encode(block.chainid, address(this), id)),
            tenant,
            compensation,
            reporter,
            loss * slot.scale * feeBps / (_stakeScale * LeaseMath.BPS)
        );
        if (running) {
            emit IMarket.LeaseClosed(
                id,
                IMarket.CloseReason.Faulted,
                uint96(paid),
                uint96(toProvider),
                uint96(protocolFees),
                0,
                refund,
                uint48(block.timestamp),
                false
            );
        }
        emit IMarket.LeaseFaulted(id, provider, kind, reporter, slashed, refund, uint96(fee), compensation);
    }
}
