// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IMarket} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {TokenFlow} from "./libraries/TokenFlow.sol";

/// @title Staking
/// @notice Provider registry, stake, unbonding queue, collateral locks and slashing.
/// @dev Token conservation: `stakeToken.balanceOf(this) == totalStaked + totalUnbonding +
/// totalCredits` for standard tokens (donations only ever add to the left side).
contract Staking is IStaking, Ownable2Step, ReentrancyGuardTransient {
    using TokenFlow for IERC20;

    /// @notice Shortest allowed unbonding period. Must exceed the longest lease plus the
    /// challenge window (enforced by the market's own bounds, asserted in tests, STK-03).
    uint48 public constant MIN_UNBONDING_PERIOD = 1 days;
    /// @notice Longest allowed unbonding period.
    uint48 public constant MAX_UNBONDING_PERIOD = 90 days;
    /// @notice Largest reporter share of a slash (after compensation), so that self-reporting from
    /// a second address always loses money (STK-14).
    uint16 public constant MAX_REPORTER_BPS = 5_000;

    /// @dev Storage layout of one provider, three slots:
    /// slot 0: operator (160) | gpuClasses (64) | gpuCount (8) | vramGiB (16)
    /// slot 1: stake (128) | locked (128)
    /// slot 2: unbonding (128) | releaseAt (48)
    struct ProviderRecord {
        address operator;
        uint64 gpuClasses;
        uint8 gpuCount;
        uint16 vramGiB;
        uint128 stake;
        uint128 locked;
        uint128 unbonding;
        uint48 releaseAt;
    }

    /// @inheritdoc IStaking
    address public immutable override stakeToken;

    /// @dev slot: market (160) | unbondingPeriod (48) | reporterBps (16)
    address private _market;
    uint48 private _unbondingPeriod;
    uint16 private _reporterBps;
    uint16 private _heartbeatPeriod = 5 minutes;

    address private _treasury;

    uint128 private _totalStaked;
    uint128 private _totalUnbonding;
    uint256 private _totalCredits;

    mapping(address provider => ProviderRecord) private _providers;
    mapping(address operator => address provider) private _operatorOf;
    mapping(address account => uint256) private _credits;
    mapping(bytes32 evidence => bool) private _evidenceUsed;

    /// @dev A provider's last heartbeat and its epoch.
    struct Beat {
        uint48 at;
        uint64 epoch;
    }

    mapping(address provider => Beat) private _beats;
    mapping(address provider => mapping(uint64 epoch => uint48)) private _epochEnd;

    /// @param token The stake token (an allow-listed stablecoin).
    /// @param owner_ Governance.
    /// @param treasury_ Receiver of slash remainders.
    /// @param unbondingPeriod_ Seconds between unbond and withdrawal.
    /// @param reporterBps_ Reporter share of a slash after tenant compensation.
    constructor(address token, address owner_, address treasury_, uint48 unbondingPeriod_, uint16 reporterBps_)
        Ownable(owner_)
    {
        if (token == address(0) || treasury_ == address(0)) revert ZeroAddress();
        stakeToken = token;
        _setTreasury(treasury_);
        _setUnbondingPeriod(unbondingPeriod_);
        _setReporterBps(reporterBps_);
    }

    // ================================================================ provider

    /// @inheritdoc IStaking
    function register(address operator, Capacity calldata capacity, string calldata metadataURI) external {
        ProviderRecord storage p = _providers[msg.sender];
        if (p.operator != address(0)) revert ProviderAlreadyRegistered(msg.sender);
        _setOperator(p, address(0), operator);
        _setCapacity(p, capacity);
        emit ProviderRegistered(msg.sender, operator, capacity, metadataURI);
    }

    /// @inheritdoc IStaking
    function updateProvider(address operator, Capacity calldata capacity, string calldata metadataURI) external {
        ProviderRecord storage p = _registered(msg.sender);
        if (operator != p.operator) _setOperator(p, p.operator, operator);
        _setCapacity(p, capacity);
        emit ProviderUpdated(msg.sender, operator, capacity, metadataURI);
    }

    /// @inheritdoc IStaking
    function stake(uint256 amount) external nonReentrant {
        _stake(amount);
    }

    /// @inheritdoc IStaking
    function stakeWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external nonReentrant {
        IERC20(stakeToken).permitOrAllowance(msg.sender, amount, deadline, v, r, s);
        _stake(amount);
    }

    /// @inheritdoc IStaking
    function unbond(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        ProviderRecord storage p = _registered(msg.sender);
        uint256 free = p.stake - p.locked;
        if (amount > free) revert InsufficientFreeStake(msg.sender, amount, free);
        // Safe: amount <= stake - locked <= stake, and totals are sums of the per-provider fields.
        uint128 amt = uint128(amount);
        unchecked {
            p.stake -= amt;
            _totalStaked -= amt;
        }
        p.unbonding += amt;
        _totalUnbonding += amt;
        // A new unbond restarts the clock for everything queued, and never brings an earlier
        // release forward: after governance shortens the period, queued stake still waits its
        // original time and stays slashable (STK-16).
        uint48 releaseAt = uint48(block.timestamp) + _unbondingPeriod;
        if (releaseAt < p.releaseAt) releaseAt = p.releaseAt;
        p.releaseAt = releaseAt;
        emit Unbonded(msg.sender, amount, p.unbonding, releaseAt);
    }

    /// @inheritdoc IStaking
    function withdrawUnbonded(address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        ProviderRecord storage p = _providers[msg.sender];
        amount = p.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < p.releaseAt) revert UnbondingNotReleased(msg.sender, p.releaseAt, uint48(block.timestamp));
        p.unbonding = 0;
        p.releaseAt = 0;
        unchecked {
            // Safe: the total is the sum of all providers' unbonding amounts.
            _totalUnbonding -= uint128(amount);
        }
        IERC20(stakeToken).send(to, amount);
        emit UnbondedWithdrawn(msg.sender, to, amount);
    }

    /// @inheritdoc IStaking
    function withdrawCredit(address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = _credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        unchecked {
            // Safe: the total is the sum of all credits.
            _totalCredits -= amount;
        }
        IERC20(stakeToken).send(to, amount);
        emit CreditWithdrawn(msg.sender, to, amount);
    }

    /// @inheritdoc IStaking
    function heartbeat() external {
        address provider = _operatorOf[msg.sender];
        if (provider == address(0)) revert ProviderNotRegistered(msg.sender);
        Beat memory b = _beats[provider];
        uint256 period = _heartbeatPeriod;
        // A lapse ends the epoch: service leases awarded in it stop paying where the lapse began and
        // never resume, so a tenant never pays for time without heartbeats.
        if (b.at != 0 && block.timestamp > b.at + period) {
            _epochEnd[provider][b.epoch] = uint48(b.at + period);
            ++b.epoch;
        }
        b.at = uint48(block.timestamp);
        _beats[provider] = b;
        emit Heartbeat(provider, b.epoch);
    }

    // ================================================================ market hooks

    /// @inheritdoc IStaking
    function tryLock(address provider, uint256 amount) external returns (bool) {
        _onlyMarket();
        ProviderRecord storage p = _providers[provider];
        (uint128 stake_, uint128 locked) = (p.stake, p.locked);
        if (amount > stake_ - locked) return false;
        // Safe: locked + amount <= stake <= type(uint128).max.
        unchecked {
            locked += uint128(amount);
        }
        // No event: the market's LeaseStarted carries the collateral.
        p.locked = locked;
        return true;
    }

    /// @inheritdoc IStaking
    function release(address provider, uint256 amount) external {
        _onlyMarket();
        ProviderRecord storage p = _providers[provider];
        uint128 locked = p.locked;
        // A slash may already have consumed part of the lock: release saturates at zero.
        uint128 freed = amount < locked ? uint128(amount) : locked;
        unchecked {
            locked -= freed;
        }
        // No event: the market's LeaseClosed (or the slash) says why collateral was freed.
        p.locked = locked;
    }

    /// @inheritdoc IStaking
    function slash(
        address provider,
        uint256 penalty,
        uint256 lockedToRelease,
        bytes32 evidence,
        address tenant,
        uint256 compensation,
        address reporter
    ) external nonReentrant returns (uint256 slashed) {
        _onlyMarket();
        if (_evidenceUsed[evidence]) revert EvidenceAlreadyUsed(evidence);
        _evidenceUsed[evidence] = true;

        ProviderRecord storage p = _providers[provider];
        (uint128 stake_, uint128 locked, uint128 unbonding) = (p.stake, p.locked, p.unbonding);
        // The faulted lease's collateral is released first, then the penalty is taken from active
        // stake and, if that is not enough, from unbonding stake (STK-03). Never more than exists,
        // and never a revert for lack of stake (STK-06).
        locked = lockedToRelease < locked ? locked - uint128(lockedToRelease) : 0;
        uint256 fromStake = penalty < stake_ ? penalty : stake_;
        uint256 rest = penalty - fromStake;
        uint256 fromUnbonding = rest < unbonding ? rest : unbonding;
        unchecked {
            // Safe: each part is bounded by the field it is taken from.
            stake_ -= uint128(fromStake);
            unbonding -= uint128(fromUnbonding);
            _totalStaked -= uint128(fromStake);
            _totalUnbonding -= uint128(fromUnbonding);
        }
        if (locked > stake_) locked = stake_;
        (p.stake, p.locked, p.unbonding) = (stake_, locked, unbonding);
        slashed = fromStake + fromUnbonding;

        // Split: tenant first, then the reporter's share of what is left, then the treasury.
        uint256 toTenant = compensation < slashed ? compensation : slashed;
        if (tenant == address(0)) toTenant = 0;
        uint256 afterTenant = slashed - toTenant;
        uint256 toReporter = reporter == address(0) ? 0 : afterTenant * _reporterBps / 10_000;
        uint256 toTreasury = afterTenant - toReporter;
        _credit(tenant, toTenant);
        _credit(reporter, toReporter);
        _credit(_treasury, toTreasury);
        emit Slashed(provider, evidence, slashed, tenant, toTenant, reporter, toReporter, toTreasury);
    }

    // ================================================================ governance

    /// @notice Set the market contract allowed to lock, release and slash.
    function setMarket(address market_) external onlyOwner {
        if (market_ == address(0)) revert ZeroAddress();
        _market = market_;
        emit MarketSet(market_);
    }

    /// @notice Set the unbonding period for unbonds started from now on (STK-16).
    function setUnbondingPeriod(uint48 period) external onlyOwner {
        _setUnbondingPeriod(period);
    }

    /// @notice Set the reporter's share of slashes.
    /// @notice Set the heartbeat period (1 minute to 18 hours).
    function setHeartbeatPeriod(uint16 period) external onlyOwner {
        if (period < 1 minutes) revert StakingParameterOutOfBounds("heartbeatPeriod", period, 1 minutes, type(uint16).max);
        _heartbeatPeriod = period;
        emit HeartbeatPeriodSet(period);
    }

    function setReporterBps(uint16 bps) external onlyOwner {
        _setReporterBps(bps);
    }

    /// @notice Set the treasury.
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        _setTreasury(treasury_);
    }

    // ================================================================ views

    /// @inheritdoc IStaking
    function bidderInfo(address operator) external view returns (BidderInfo memory info) {
        address provider = _operatorOf[operator];
        ProviderRecord storage p = _providers[provider];
        info.provider = provider;
        info.freeStake = p.stake - p.locked;
        info.capacity = Capacity(p.gpuClasses, p.gpuCount, p.vramGiB);
    }

    /// @inheritdoc IStaking
    function providerInfo(address provider) external view returns (ProviderView memory v) {
        ProviderRecord storage p = _providers[provider];
        v = ProviderView(
            p.operator, Capacity(p.gpuClasses, p.gpuCount, p.vramGiB), p.stake, p.locked, p.unbonding, p.releaseAt
        );
    }

    /// @inheritdoc IStaking
    function liveness(address provider) external view returns (uint48 at, uint64 epoch, uint16 period) {
        Beat memory b = _beats[provider];
        return (b.at, b.epoch, _heartbeatPeriod);
    }

    /// @inheritdoc IStaking
    function epochEnd(address provider, uint64 epoch) external view returns (uint48) {
        return _epochEnd[provider][epoch];
    }

    /// @inheritdoc IStaking
    function providerOf(address operator) external view returns (address) {
        return _operatorOf[operator];
    }

    /// @inheritdoc IStaking
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc IStaking
    function totalStaked() external view returns (uint256) {
        return _totalStaked;
    }

    /// @inheritdoc IStaking
    function totalUnbonding() external view returns (uint256) {
        return _totalUnbonding;
    }

    /// @inheritdoc IStaking
    function totalCredits() external view returns (uint256) {
        return _totalCredits;
    }

    /// @inheritdoc IStaking
    function market() external view returns (address) {
        return _market;
    }

    /// @inheritdoc IStaking
    function unbondingPeriod() external view returns (uint48) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IStaking
    function reporterBps() external view returns (uint16) {
        return _reporterBps;
    }

    /// @inheritdoc IStaking
    function treasury() external view returns (address) {
        return _treasury;
    }

    // ================================================================ internal

    function _stake(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (amount > type(uint128).max) revert StakeAmountTooLarge(amount);
        ProviderRecord storage p = _registered(msg.sender);
        IERC20(stakeToken).pullExact(amount);
        uint128 newStake = p.stake + uint128(amount);
        p.stake = newStake;
        _totalStaked += uint128(amount);
        emit Staked(msg.sender, amount, newStake);
    }

    function _registered(address provider) private view returns (ProviderRecord storage p) {
        p = _providers[provider];
        if (p.operator == address(0)) revert ProviderNotRegistered(provider);
    }

    function _setOperator(ProviderRecord storage p, address oldOperator, address operator) private {
        if (operator == address(0) || _operatorOf[operator] != address(0)) revert OperatorUnavailable(operator);
        if (oldOperator != address(0)) delete _operatorOf[oldOperator];
        _operatorOf[operator] = msg.sender;
        p.operator = operator;
    }

    function _setCapacity(ProviderRecord storage p, Capacity calldata capacity) private {
        (p.gpuClasses, p.gpuCount, p.vramGiB) = (capacity.gpuClasses, capacity.gpuCount, capacity.vramGiB);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _credits[account] += amount;
        _totalCredits += amount;
    }

    function _onlyMarket() private view {
        if (msg.sender != _market) revert CallerNotMarket(msg.sender);
    }

    function _setUnbondingPeriod(uint48 period) private {
        if (period < MIN_UNBONDING_PERIOD || period > MAX_UNBONDING_PERIOD) {
            revert StakingParameterOutOfBounds("unbondingPeriod", period, MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD);
        }
        // Leases must end before the stake collateralising them can finish unbonding (STK-03): the
        // market enforces maxLeaseDuration <= period / 2 on its side, and this keeps it true here.
        address market_ = _market;
        if (market_.code.length != 0) {
            uint256 minPeriod = uint256(IMarket(market_).params().maxLeaseDuration) * 2;
            if (period < minPeriod) {
                revert StakingParameterOutOfBounds("unbondingPeriod", period, minPeriod, MAX_UNBONDING_PERIOD);
            }
        }
        _unbondingPeriod = period;
        emit UnbondingPeriodSet(period);
    }

    function _setReporterBps(uint16 bps) private {
        if (bps > MAX_REPORTER_BPS) revert StakingParameterOutOfBounds("reporterBps", bps, 0, MAX_REPORTER_BPS);
        _reporterBps = bps;
        emit ReporterRewardSet(bps);
    }

    function _setTreasury(address treasury_) private {
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }
}
