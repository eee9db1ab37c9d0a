// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IStaking
/// @notice Provider registry and stake ledger of gridlease.
/// @dev A provider is identified by its owner address (the cold key that stakes and withdraws).
/// The owner names an operator (the hot key of the provider node) that bids and posts results;
/// a leaked operator key can neither unbond stake nor withdraw earnings.
///
/// Stake is held in one stake token fixed at deployment. Collateral for active leases is locked
/// out of the active stake by the market; unbonding stake waits `unbondingPeriod` and stays
/// slashable until it is withdrawn.
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
    struct BidderInfo {
        address provider;
        uint128 freeStake;
        Capacity capacity;
    }

    /// @notice Public view of a provider's record.
    struct ProviderView {
        address operator;
        Capacity capacity;
        uint128 stake;
        uint128 locked;
        uint128 unbonding;
        uint48 releaseAt;
    }

    // ---------------------------------------------------------------- errors

    /// @notice The caller is not registered as a provider.
    error ProviderNotRegistered(address provider);
    /// @notice The owner already has a provider record.
    error ProviderAlreadyRegistered(address provider);
    /// @notice The operator key is zero, or already serves another provider.
    error OperatorUnavailable(address operator);
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
    /// @notice A governance parameter is outside its allowed range.
    error StakingParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice Amounts beyond 2^128 token units are not supported.
    error StakeAmountTooLarge(uint256 amount);

    // ---------------------------------------------------------------- events

    /// @notice A provider registered.
    /// @notice `provider` is alive; `epoch` changes when it resumes after a lapse.
    event Heartbeat(address indexed provider, uint64 epoch);
    /// @notice The heartbeat period changed.
    event HeartbeatPeriodSet(uint16 period);
    event ProviderRegistered(address indexed provider, address indexed operator, Capacity capacity, string metadataURI);
    /// @notice A provider changed its operator, capacity or metadata.
    event ProviderUpdated(address indexed provider, address indexed operator, Capacity capacity, string metadataURI);
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
    /// @notice The market allowed to lock, release and slash changed.
    event MarketSet(address indexed market);
    /// @notice The unbonding period changed (applies to unbonds started afterwards).
    event UnbondingPeriodSet(uint48 unbondingPeriod);
    /// @notice The reporter's share of slashes changed.
    event ReporterRewardSet(uint16 reporterBps);
    /// @notice The treasury receiving slash remainders changed.
    event TreasurySet(address indexed treasury);

    // ---------------------------------------------------------------- provider

    /// @notice Register the caller as a provider.
    function register(address operator, Capacity calldata capacity, string calldata metadataURI) external;
    /// @notice Change operator, capacity or metadata of the caller's provider record.
    function updateProvider(address operator, Capacity calldata capacity, string calldata metadataURI) external;
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

    /// @notice Lock `amount` of `provider`'s free stake; false (no state change) when short.
    function tryLock(address provider, uint256 amount) external returns (bool);
    /// @notice Release up to `amount` of `provider`'s locked stake.
    function release(address provider, uint256 amount) external;
    /// @notice Slash up to `penalty` from `provider`'s stake (locked, free, then unbonding).
    /// @param lockedToRelease Collateral of the faulted lease, released as part of the slash.
    /// @return slashed The amount actually taken.
    function slash(
        address provider,
        uint256 penalty,
        uint256 lockedToRelease,
        bytes32 evidence,
        address tenant,
        uint256 compensation,
        address reporter
    ) external returns (uint256 slashed);

    // ---------------------------------------------------------------- views

    /// @notice Provider, free stake and capacity for an operator key.
    function bidderInfo(address operator) external view returns (BidderInfo memory);
    /// @notice The provider record of `provider`.
    function providerInfo(address provider) external view returns (ProviderView memory);
    /// @notice The provider an operator key serves (zero if none).
    function providerOf(address operator) external view returns (address);
    /// @notice Last heartbeat of `provider`, its epoch (bumped when a heartbeat comes after a
    /// lapse of more than `period`), and the period.
    function liveness(address provider) external view returns (uint48 at, uint64 epoch, uint16 period);
    /// @notice Until when `provider`'s past `epoch` kept its service leases paying.
    function epochEnd(address provider, uint64 epoch) external view returns (uint48);
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
    /// @notice Reporter share of a slash after tenant compensation, in bps of the slash.
    function reporterBps() external view returns (uint16);
    /// @notice Receiver of slash remainders.
    function treasury() external view returns (address);
}
