// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IMarket, IMarketAdmin} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {TokenFlow} from "./libraries/TokenFlow.sol";

/// @title Staking
/// @notice Provider registry, stake, unbonding queue, collateral locks, heartbeats and slashing.
/// @dev Token conservation: `stakeToken.balanceOf(this) == totalStaked + totalUnbonding +
/// totalCredits` for standard tokens (donations only ever add to the left side).
/// Per provider: `locked <= stake` at all times, and collateral is only ever slashed from `locked`
/// (the lock of a running lease, or of a closed one the market still holds for its fault horizon),
/// never from stake the provider did not commit to a lease.
contract Staking is IStaking, Ownable2Step, ReentrancyGuardTransient, EIP712 {
    using TokenFlow for IERC20;

    /// @notice Shortest allowed unbonding period.
    uint48 public constant MIN_UNBONDING_PERIOD = 1 days;
    /// @notice Longest allowed unbonding period.
    uint48 public constant MAX_UNBONDING_PERIOD = 90 days;
    /// @dev EIP-712 type of an operator's consent to serve a provider.
    bytes32 private constant CONSENT_TYPEHASH =
        keccak256("OperatorConsent(address provider,address operator,uint256 nonce,uint256 deadline)");

    /// @dev Storage layout of one provider, three slots:
    /// slot 0: operator (160) | gpuClasses (64) | gpuCount (8) | vramGiB (16)
    /// slot 1: stake (96) | locked (96)                        read and written by every lock
    /// slot 2: unbonding (96) | releaseAt (48) | ceiling (96)  the ceiling is read by every lock
    struct ProviderRecord {
        address operator;
        uint64 gpuClasses;
        uint8 gpuCount;
        uint16 vramGiB;
        uint96 stake;
        uint96 locked;
        uint96 unbonding;
        uint48 releaseAt;
        uint96 ceiling;
    }

    /// @inheritdoc IStaking
    address public immutable override stakeToken;

    /// @dev slot: market (160) | unbondingPeriod (48) | heartbeatPeriod (16)
    address private _market;
    uint48 private _unbondingPeriod;
    uint16 private _heartbeatPeriod;

    address private _treasury;

    uint128 private _totalStaked;
    uint128 private _totalUnbonding;
    uint256 private _totalCredits;

    mapping(address provider => ProviderRecord) private _providers;
    mapping(address operator => address provider) private _operatorOf;
    mapping(address operator => uint256) private _operatorNonces;
    mapping(address account => uint256) private _credits;
    mapping(bytes32 evidence => bool) private _evidenceUsed;
    mapping(address provider => Liveness) private _liveness;
    mapping(address provider => mapping(uint32 epoch => uint48)) private _epochStarts;

    /// @param token The stake token (an allow-listed stablecoin).
    /// @param owner_ Governance (a TimelockController).
    /// @param treasury_ Receiver of slash remainders.
    /// @param unbondingPeriod_ Seconds between unbond and withdrawal.
    /// @param heartbeatPeriod_ Heartbeat period of epochs that start from now on.
    constructor(address token, address owner_, address treasury_, uint48 unbondingPeriod_, uint16 heartbeatPeriod_)
        Ownable(owner_)
        EIP712("gridlease Staking", "1")
    {
        if (token == address(0) || treasury_ == address(0)) revert ZeroAddress();
        stakeToken = token;
        _setTreasury(treasury_);
        _setUnbondingPeriod(unbondingPeriod_);
        _setHeartbeatPeriod(heartbeatPeriod_);
    }

    // ================================================================ provider

    /// @inheritdoc IStaking
    function register(
        address operator,
        Capacity calldata capacity,
        string calldata metadataURI,
        uint96 ceiling,
        uint256 consentDeadline,
        bytes calldata consent
    ) external {
        ProviderRecord storage p = _providers[msg.sender];
        if (p.operator != address(0)) revert ProviderAlreadyRegistered(msg.sender);
        _bindOperator(p, address(0), operator, consentDeadline, consent);
        _setCapacity(p, capacity);
        p.ceiling = ceiling;
        emit ProviderRegistered(msg.sender, operator, capacity, metadataURI, ceiling);
    }

    /// @inheritdoc IStaking
    function updateProvider(
        address operator,
        Capacity calldata capacity,
        string calldata metadataURI,
        uint96 ceiling,
        uint256 consentDeadline,
        bytes calldata consent
    ) external {
        ProviderRecord storage p = _registered(msg.sender);
        if (operator != p.operator) _bindOperator(p, p.operator, operator, consentDeadline, consent);
        _setCapacity(p, capacity);
        p.ceiling = ceiling;
        emit ProviderUpdated(msg.sender, operator, capacity, metadataURI, ceiling);
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
        // Safe: amount <= stake - locked <= stake < 2^96, and totals are sums of the fields.
        uint96 amt = uint96(amount);
        unchecked {
            p.stake -= amt;
            _totalStaked -= amt;
        }
        p.unbonding += amt;
        _totalUnbonding += amt;
        // A new unbond restarts the clock for everything queued, and never brings an earlier
        // release forward: after governance shortens the period, queued stake still waits its
        // original time (STK-16).
        uint48 releaseAt = uint48(block.timestamp) + _unbondingPeriod;
        if (releaseAt < p.releaseAt) releaseAt = p.releaseAt;
        p.releaseAt = releaseAt;
        emit Unbonded(msg.sender, amount, p.unbonding, releaseAt);
    }

    /// @inheritdoc IStaking
    function withdrawUnbonded(address to) external nonReentrant returns (uint256 amount) {
        _checkPayee(to);
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
        _checkPayee(to);
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
        Liveness memory b = _liveness[provider];
        uint48 nowTs = uint48(block.timestamp);
        // The first heartbeat, or one after a lapse, starts an epoch, which takes the period in
        // force now and keeps it (a governance change never reaches a running epoch, GOV-02).
        if (b.at == 0 || block.timestamp > uint256(b.at) + b.period) {
            if (b.at != 0) (b.prevStart, b.prevEnd) = (b.epochStart, b.at + b.period);
            ++b.epoch;
            b.epochStart = nowTs;
            b.period = _heartbeatPeriod;
            // Kept for stale-heartbeat proofs: when the provider came back after a lapse.
            _epochStarts[provider][b.epoch] = nowTs;
        }
        b.at = nowTs;
        _liveness[provider] = b;
        emit Heartbeat(provider, b.epoch);
    }

    // ================================================================ market hooks

    /// @inheritdoc IStaking
    function tryLock(address provider, uint256 amount) external returns (bool) {
        _onlyMarket();
        ProviderRecord storage p = _providers[provider];
        if (amount > _lockable(p)) return false;
        // Safe: locked + amount <= stake < 2^96 (checked above).
        unchecked {
            p.locked += uint96(amount);
        }
        // No event: the market's LeaseStarted carries the collateral.
        return true;
    }

    /// @inheritdoc IStaking
    function release(address provider, uint256 amount) external {
        _onlyMarket();
        ProviderRecord storage p = _providers[provider];
        uint96 locked = p.locked;
        // Defensive: a lease's collateral is released once, so this never saturates in practice.
        unchecked {
            p.locked = amount < locked ? locked - uint96(amount) : 0;
        }
        // No event: the market's LeaseClosed says why collateral was freed.
    }

    /// @inheritdoc IStaking
    function slash(
        address provider,
        uint256 amount,
        bytes32 evidence,
        address tenant,
        uint256 compensation,
        address reporter,
        uint256 reporterCut
    ) external nonReentrant returns (uint256 slashed) {
        _onlyMarket();
        if (_evidenceUsed[evidence]) revert EvidenceAlreadyUsed(evidence);
        _evidenceUsed[evidence] = true;

        ProviderRecord storage p = _providers[provider];
        (uint96 stake_, uint96 locked) = (p.stake, p.locked);
        // Never more than exists, and never a revert for lack of stake (STK-06).
        slashed = amount < stake_ ? amount : stake_;
        unchecked {
            // Safe: slashed <= stake, and locked is clamped below.
            stake_ -= uint96(slashed);
            locked = slashed < locked ? locked - uint96(slashed) : 0;
            _totalStaked -= uint128(slashed);
        }
        if (locked > stake_) locked = stake_;
        (p.stake, p.locked) = (stake_, locked);

        // The tenant is paid back what it lost (at most), of which the reporter that proved the
        // fault earns its cut; everything else goes to the treasury. Nothing of the slash beyond
        // the tenant's loss reaches the tenant or the reporter, so a leaked operator key acting as
        // tenant, reporter and keeper cannot profit from its owner's stake (MEC-07).
        uint256 toTenant = compensation < slashed ? compensation : slashed;
        if (tenant == address(0)) toTenant = 0;
        uint256 toReporter = reporterCut < toTenant ? reporterCut : toTenant;
        if (reporter == address(0)) toReporter = 0;
        uint256 toTreasury = slashed - toTenant;
        _credit(tenant, toTenant - toReporter);
        _credit(reporter, toReporter);
        _credit(_treasury, toTreasury);
        emit Slashed(provider, evidence, slashed, tenant, toTenant - toReporter, reporter, toReporter, toTreasury);
    }

    // ================================================================ governance

    /// @notice Bind the market allowed to lock, release and slash. Once: a market is never
    /// replaced, so no later contract can reach collateral locked for another's leases (GOV-03/05).
    /// The unbonding period must already outlast the market's longest lease and fault horizon.
    function setMarket(address market_) external onlyOwner {
        if (market_ == address(0)) revert ZeroAddress();
        if (_market != address(0)) revert MarketAlreadySet(_market);
        _market = market_;
        emit MarketSet(market_);
        _setUnbondingPeriod(_unbondingPeriod);
    }

    /// @notice Set the unbonding period for unbonds started from now on (STK-16).
    function setUnbondingPeriod(uint48 period) external onlyOwner {
        _setUnbondingPeriod(period);
    }

    /// @notice Set the heartbeat period of epochs that start from now on (1 minute to 18 hours).
    function setHeartbeatPeriod(uint16 period) external onlyOwner {
        _setHeartbeatPeriod(period);
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
        info.freeStake = uint128(_lockable(p));
        info.capacity = Capacity(p.gpuClasses, p.gpuCount, p.vramGiB);
    }

    /// @inheritdoc IStaking
    function providerInfo(address provider) external view returns (ProviderView memory v) {
        ProviderRecord storage p = _providers[provider];
        v = ProviderView(
            p.operator,
            Capacity(p.gpuClasses, p.gpuCount, p.vramGiB),
            p.stake,
            p.locked,
            p.ceiling,
            p.unbonding,
            p.releaseAt
        );
    }

    /// @inheritdoc IStaking
    function liveness(address provider) external view returns (Liveness memory) {
        return _liveness[provider];
    }

    /// @inheritdoc IStaking
    function epochStartOf(address provider, uint32 epoch) external view returns (uint48) {
        return _epochStarts[provider][epoch];
    }

    /// @inheritdoc IStaking
    function providerOf(address operator) external view returns (address) {
        return _operatorOf[operator];
    }

    /// @inheritdoc IStaking
    function operatorNonce(address operator) external view returns (uint256) {
        return _operatorNonces[operator];
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
    function heartbeatPeriod() external view returns (uint16) {
        return _heartbeatPeriod;
    }

    /// @inheritdoc IStaking
    function treasury() external view returns (address) {
        return _treasury;
    }

    // ================================================================ internal

    function _stake(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        ProviderRecord storage p = _registered(msg.sender);
        uint256 newStake = uint256(p.stake) + amount;
        if (newStake > type(uint96).max) revert StakeAmountTooLarge(newStake);
        IERC20(stakeToken).pullExact(amount);
        p.stake = uint96(newStake);
        _totalStaked += uint128(amount);
        emit Staked(msg.sender, amount, newStake);
    }

    function _registered(address provider) private view returns (ProviderRecord storage p) {
        p = _providers[provider];
        if (p.operator == address(0)) revert ProviderNotRegistered(provider);
    }

    /// @dev Bind `operator` to the caller with the operator's own consent (EIP-712, or ERC-1271 for
    /// a contract operator), one use per nonce (MEC-11).
    function _bindOperator(
        ProviderRecord storage p,
        address oldOperator,
        address operator,
        uint256 deadline,
        bytes calldata consent
    ) private {
        if (operator == address(0) || _operatorOf[operator] != address(0)) revert OperatorUnavailable(operator);
        uint256 nonce = _operatorNonces[operator];
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, msg.sender, operator, nonce, deadline)));
        if (block.timestamp > deadline || !SignatureChecker.isValidSignatureNow(operator, digest, consent)) {
            revert BadOperatorConsent(operator);
        }
        _operatorNonces[operator] = nonce + 1;
        if (oldOperator != address(0)) delete _operatorOf[oldOperator];
        _operatorOf[operator] = msg.sender;
        p.operator = operator;
    }

    function _setCapacity(ProviderRecord storage p, Capacity calldata capacity) private {
        (p.gpuClasses, p.gpuCount, p.vramGiB) = (capacity.gpuClasses, capacity.gpuCount, capacity.vramGiB);
    }

    /// @dev What `p` can still lock: free stake, within the ceiling.
    function _lockable(ProviderRecord storage p) private view returns (uint256) {
        uint256 locked = p.locked;
        uint256 byStake = p.stake - locked;
        uint256 ceiling = p.ceiling;
        uint256 byCeiling = ceiling > locked ? ceiling - locked : 0;
        return byStake < byCeiling ? byStake : byCeiling;
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _credits[account] += amount;
        _totalCredits += amount;
    }

    /// @dev A payout may go to another address only if the token would pay the account itself: the
    /// protocol never moves a frozen account's balance past the token's freeze (MEC-16).
    function _checkPayee(address to) private {
        if (to == address(0)) revert ZeroAddress();
        if (to != msg.sender && !IERC20(stakeToken).accepts(msg.sender)) revert AccountFrozen(stakeToken, msg.sender);
    }

    function _onlyMarket() private view {
        if (msg.sender != _market) revert CallerNotMarket(msg.sender);
    }

    function _setUnbondingPeriod(uint48 period) private {
        if (period < MIN_UNBONDING_PERIOD || period > MAX_UNBONDING_PERIOD) {
            revert StakingParameterOutOfBounds("unbondingPeriod", period, MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD);
        }
        // A lease and every fault window after it end before stake that collateralised it can
        // finish unbonding (STK-03, GOV-04): checked here and by every market setter.
        uint256 minPeriod;
        address market_ = _market;
        if (market_.code.length != 0) {
            minPeriod = IMarket(market_).params().maxLeaseDuration + 2 * IMarketAdmin(market_).faultHorizon();
        }
        if (period <= minPeriod) {
            revert StakingParameterOutOfBounds("unbondingPeriod", period, minPeriod + 1, MAX_UNBONDING_PERIOD);
        }
        _unbondingPeriod = period;
        emit UnbondingPeriodSet(period);
    }

    function _setHeartbeatPeriod(uint16 period) private {
        if (period < 1 minutes) {
            revert StakingParameterOutOfBounds("heartbeatPeriod", period, 1 minutes, type(uint16).max);
        }
        _heartbeatPeriod = period;
        emit HeartbeatPeriodSet(period);
    }

    function _setTreasury(address treasury_) private {
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }
}
