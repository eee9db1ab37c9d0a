// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IStaking
/// @notice Provider registry and stake ledger of gridlease.
/// @dev A provider is identified by its owner address (the cold key that stakes and withdraws).
/// The owner binds an operator (the hot key of the provider node) that bids, acknowledges, posts
/// results and beats, with the operator key's own EIP-712 consent (no key can be bound without its
/// holder's signature, MEC-11). The owner also sets a collateral ceiling: the most stake the
/// operator may ever have locked at once, which bounds what a leaked operator key can put at risk
/// (MEC-07). A leaked operator key can neither unbond stake nor withdraw earnings.
///
/// Stake is held in one stake token fixed at deployment. The one market (bound once, never
/// replaced) locks collateral per lease out of free stake. When a lease closes while a fault on it
/// could still be proven (a result in its challenge window, a reported heartbeat lapse, a possible
/// no-show), the market does not release its collateral until the fault horizon has passed, so the
/// fault can still be slashed after the close and no later self-dealt fault can pre-empt it
/// (MEC-05, MEC-08). Unbonding stake waits `unbondingPeriod`.
interface IStaking {
    /// @notice Declared capacity of a provider, used by the market to match orders on chain.
    /// @param gpuClasses Bitmap of GPU classes the provider runs (bit i = class i, see docs).
    /// @param gpuCount Largest number of GPUs the provider offers to one lease.
    /// @param vramGiB Smallest VRAM (GiB) of any one of those GPUs.
    struct Capacity {
        uint64 gpuClasses;
        uint8 gpuCount;
        uint16 vramGiB;
    }

    /// @notice What the market needs to know about a bidder, read in one call.
    /// @param freeStake What the provider can still lock: free stake, within its collateral ceiling.
    struct BidderInfo {
        address provider;
        uint128 freeStake;
        Capacity capacity;
    }

    /// @notice Public view of a provider's record.
    /// @param locked Stake locked by running leases and by closed ones the market still holds.
    struct ProviderView {
        address operator;
        Capacity capacity;
        uint96 stake;
        uint96 locked;
        uint96 collateralCeiling;
        uint96 unbonding;
        uint48 releaseAt;
    }

    /// @notice A provider's heartbeat state, one word. An epoch is a run of heartbeats no more
    /// than `period` apart; a later heartbeat starts a new epoch, and the period in force for an
    /// epoch is fixed when it starts (a governance change never applies to a running epoch, GOV-02).
    /// @param at Last heartbeat.
    /// @param period Heartbeat period of the current epoch.
    /// @param epoch Current epoch number (1 for the first).
    /// @param epochStart First heartbeat of the current epoch.
    /// @param prevStart First heartbeat of the previous epoch (0 if none).
    /// @param prevEnd Where the previous epoch's liveness ended: its last heartbeat + its period.
    struct Liveness {
        uint48 at;
        uint16 period;
        uint32 epoch;
        uint48 epochStart;
        uint48 prevStart;
        uint48 prevEnd;
    }

    // ---------------------------------------------------------------- errors

    /// @notice The caller is not registered as a provider.
    error ProviderNotRegistered(address provider);
    /// @notice The owner already has a provider record.
    error ProviderAlreadyRegistered(address provider);
    /// @notice The operator key is zero, or already serves another provider.
    error OperatorUnavailable(address operator);
    /// @notice The operator's consent signature is not valid for this provider, or has expired.
    error BadOperatorConsent(address operator);
    /// @notice An address argument was zero where a real account is required.
    error ZeroAddress();
    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice This slash evidence was already used (each offence is punished once).
    error EvidenceAlreadyUsed(bytes32 evidence);
    /// @notice Unbonding more than the stake that is neither locked nor already unbonding.
    error InsufficientFreeStake(address provider, uint256 requested, uint256 free);
    /// @notice Withdrawing unbonded stake before its release time.
    error UnbondingNotReleased(address provider, uint48 releaseAt, uint48 nowTs);
    /// @notice Nothing is unbonding, or there is no credit to withdraw.
    error NothingToWithdraw(address account);
    /// @notice Only the market contract may lock, release and slash.
    error CallerNotMarket(address caller);
    /// @notice The market is bound once and never replaced.
    error MarketAlreadySet(address market);
    /// @notice A governance parameter is outside its allowed range.
    error StakingParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice Amounts beyond 2^96 token units are not supported.
    error StakeAmountTooLarge(uint256 amount);
    /// @notice The token refuses to pay this account (e.g. a USDC blacklist): its balance cannot be
    /// redirected to another address either (MEC-16).
    error AccountFrozen(address token, address account);

    // ---------------------------------------------------------------- events

    /// @notice A provider registered.
    event ProviderRegistered(
        address indexed provider, address indexed operator, Capacity capacity, string metadataURI, uint96 ceiling
    );
    /// @notice A provider changed its operator, capacity, metadata or collateral ceiling.
    event ProviderUpdated(
        address indexed provider, address indexed operator, Capacity capacity, string metadataURI, uint96 ceiling
    );
    /// @notice `provider` is alive; `epoch` changes when it resumes after a lapse.
    event Heartbeat(address indexed provider, uint32 epoch);
    /// @notice The heartbeat period for epochs that start from now on changed.
    event HeartbeatPeriodSet(uint16 period);
    /// @notice Stake was deposited.
    event Staked(address indexed provider, uint256 amount, uint256 newStake);
    /// @notice Stake moved to the unbonding queue.
    event Unbonded(address indexed provider, uint256 amount, uint256 totalUnbonding, uint48 releaseAt);
    /// @notice Unbonded stake was paid out to the owner.
    event UnbondedWithdrawn(address indexed provider, address indexed to, uint256 amount);
    /// @notice A provider was slashed; the split always adds up to `slashed`.
    event Slashed(
        address indexed provider,
        bytes32 indexed evidence,
        uint256 slashed,
        address tenant,
        uint256 tenantCompensation,
        address indexed reporter,
        uint256 reporterReward,
        uint256 treasuryAmount
    );
    /// @notice A credit (slash proceeds) was withdrawn.
    event CreditWithdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice The market allowed to lock, release and slash was bound.
    event MarketSet(address indexed market);
    /// @notice The unbonding period changed (applies to unbonds started afterwards).
    event UnbondingPeriodSet(uint48 unbondingPeriod);
    /// @notice The treasury receiving slash remainders changed.
    event TreasurySet(address indexed treasury);

    // ---------------------------------------------------------------- provider

    /// @notice Register the caller as a provider, binding `operator` with its consent.
    /// @param ceiling Most stake the operator may have locked at once (its leases' collateral plus
    /// closed leases still held for their fault horizon); `type(uint96).max` for no limit.
    /// @param consentDeadline Last second the consent is valid.
    /// @param consent The operator key's EIP-712 signature of `OperatorConsent(provider, operator,
    /// nonce, deadline)` with `nonce = operatorNonce(operator)`.
    function register(
        address operator,
        Capacity calldata capacity,
        string calldata metadataURI,
        uint96 ceiling,
        uint256 consentDeadline,
        bytes calldata consent
    ) external;
    /// @notice Change capacity, metadata and ceiling; a new operator needs its consent (ignored
    /// when the operator stays the same).
    function updateProvider(
        address operator,
        Capacity calldata capacity,
        string calldata metadataURI,
        uint96 ceiling,
        uint256 consentDeadline,
        bytes calldata consent
    ) external;
    /// @notice Deposit `amount` of the stake token (prior approval).
    function stake(uint256 amount) external;
    /// @notice Deposit with an EIP-2612 permit signed by the caller.
    function stakeWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
    /// @notice Move `amount` of free stake to the unbonding queue.
    function unbond(uint256 amount) external;
    /// @notice Withdraw released unbonded stake to `to`.
    function withdrawUnbonded(address to) external returns (uint256 amount);
    /// @notice Withdraw the caller's slash credits to `to`.
    function withdrawCredit(address to) external returns (uint256 amount);
    /// @notice One call per heartbeat period by a provider's operator keeps all its service leases
    /// paying (O(1), whatever the number of leases).
    function heartbeat() external;

    // ---------------------------------------------------------------- market hooks

    /// @notice Lock `amount` of `provider`'s free stake within its ceiling; false (no state change)
    /// when short.
    function tryLock(address provider, uint256 amount) external returns (bool);
    /// @notice Release up to `amount` of `provider`'s locked stake.
    function release(address provider, uint256 amount) external;
    /// @notice Slash `amount` of `provider`'s locked collateral (of a running lease, or of a closed
    /// one the market still holds), never more than the stake.
    /// @param compensation What the tenant lost, at most (in stake-token units): paid first.
    /// @param reporterCut Share of the compensation the reporter earns for proving the fault.
    /// @return slashed The amount actually taken.
    function slash(
        address provider,
        uint256 amount,
        bytes32 evidence,
        address tenant,
        uint256 compensation,
        address reporter,
        uint256 reporterCut
    ) external returns (uint256 slashed);

    // ---------------------------------------------------------------- views

    /// @notice Provider, what it can still lock and capacity, for an operator key.
    function bidderInfo(address operator) external view returns (BidderInfo memory);
    /// @notice The provider record of `provider`.
    function providerInfo(address provider) external view returns (ProviderView memory);
    /// @notice The provider an operator key serves (zero if none).
    function providerOf(address operator) external view returns (address);
    /// @notice The consent nonce an operator's next binding must sign.
    function operatorNonce(address operator) external view returns (uint256);
    /// @notice `provider`'s heartbeat state.
    function liveness(address provider) external view returns (Liveness memory);
    /// @notice When `provider`'s epoch `epoch` started (its first heartbeat), 0 if it has not.
    function epochStartOf(address provider, uint32 epoch) external view returns (uint48);
    /// @notice Slash credits withdrawable by `account`.
    function creditOf(address account) external view returns (uint256);
    /// @notice The stake token.
    function stakeToken() external view returns (address);
    /// @notice Sum of all active stake (locked included), excluding unbonding.
    function totalStaked() external view returns (uint256);
    /// @notice Sum of all unbonding stake.
    function totalUnbonding() external view returns (uint256);
    /// @notice Sum of all slash credits not yet withdrawn.
    function totalCredits() external view returns (uint256);
    /// @notice The market contract.
    function market() external view returns (address);
    /// @notice Seconds between unbond and withdrawal.
    function unbondingPeriod() external view returns (uint48);
    /// @notice Heartbeat period for epochs that start from now on.
    function heartbeatPeriod() external view returns (uint16);
    /// @notice Receiver of slash remainders.
    function treasury() external view returns (address);
}
