// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IMarket
/// @notice Reverse auction and escrow of gridlease, v2: the market pays for delivered work.
/// @dev An order and the lease it becomes share one id, `keccak256(abi.encode(tenant, params))`.
/// The id commits to every term of the order (including a tenant-chosen salt), so a signed bid or
/// top-up meant for one order can never land on another, even across a reorg (AUC-16).
///
/// Prices are in 18-decimal units of the payment token per second (a USDC price of 1e18 is one
/// USDC a second), whatever the token's own decimals: rates keep 18 decimals of precision
/// (ESC-04). Amounts are in the token's own units.
///
/// A batch lease (container or built-in job) is paid for its result: nothing leaves its escrow
/// until a result was posted and stands (the tenant accepts it, or its challenge window passes with
/// no successful challenge). A batch lease without a result ends only by the tenant's close, or by a
/// fault (no-show, missed deadline, or the provider's own close, which is itself the fault). A
/// service lease pays per second of provider liveness (heartbeats) once acknowledged; a lapsed one
/// can be closed by anyone and pays nothing for the lapse. Each lease is bound at award to the
/// results module then current (its windows and fault rules), which no later governance change can
/// touch (GOV-02, GOV-03). Views live in `MarketLens`, which reads this contract's storage through
/// `extsload` (the layout is documented on `Market`).
interface IMarket {
    /// @notice Life of an order/lease.
    enum Status {
        None,
        Open,
        Leased,
        Closed,
        Cancelled,
        Faulted
    }

    /// @notice Why a lease closed.
    /// @dev TenantClosed: the tenant ended a running lease (a batch lease pays for the time used
    /// only if acknowledged and before its deadline). ProviderClosed: the provider ended a service
    /// lease. Expired / Exhausted / Lapsed: a service lease reached its end, ran dry, or lost its
    /// provider's heartbeat. Faulted: a fault was proven (or the provider abandoned a batch lease).
    /// Completed: a batch result stood through its challenge window. Accepted: the tenant accepted
    /// a batch result inside the window (faults on it stay provable, the collateral stays held).
    enum CloseReason {
        TenantClosed,
        ProviderClosed,
        Expired,
        Exhausted,
        Faulted,
        Completed,
        Accepted,
        Lapsed
    }

    /// @notice What a tenant asks for. Hashed with the tenant into the order id.
    /// @param specHash keccak256 of the canonical job spec.
    /// @param specURI Where providers fetch the spec (verified against `specHash`).
    /// @param token Payment token (allow-listed).
    /// @param deposit Escrow deposited with the order, in token units; at least one minimum billing
    /// period at the reserve price.
    /// @param maxPricePerSecond Reserve price, 18-decimal token units per second.
    /// @param maxDuration Longest the lease may run, seconds (a batch job's result deadline).
    /// @param bidWindow Seconds from creation during which bids are accepted.
    /// @param collateral Provider stake locked for the lease, in stake token units (> 0).
    /// @param gpuClass GPU class index required (bit in the provider's class bitmap).
    /// @param gpuCount GPUs required.
    /// @param vramGiB Minimum VRAM per GPU.
    /// @param cpuCores CPU cores required (matched off chain).
    /// @param ramGiB RAM required (matched off chain).
    /// @param jobKind 0 container, 1 built-in verifiable workload, 2 service; nothing else.
    /// @param instant The first valid bid wins at once.
    /// @param salt Tenant-chosen, makes otherwise identical orders distinct.
    struct OrderParams {
        bytes32 specHash;
        string specURI;
        address token;
        uint96 deposit;
        uint96 maxPricePerSecond;
        uint32 maxDuration;
        uint32 bidWindow;
        uint96 collateral;
        uint8 gpuClass;
        uint8 gpuCount;
        uint16 vramGiB;
        uint16 cpuCores;
        uint32 ramGiB;
        uint8 jobKind;
        bool instant;
        bytes32 salt;
    }

    /// @notice A bid signed off chain by a provider's operator key (EIP-712), placed on chain by
    /// anyone with `bidSigned` while the bid window is open. A bid nobody places costs its provider
    /// nothing.
    struct SignedBid {
        uint96 pricePerSecond;
        uint48 expiry;
        bytes signature;
    }

    /// @notice Governance parameters, one storage slot. Fees are copied into each lease at award.
    /// @param protocolFeeBps Protocol take of paid amounts (<= 10%).
    /// @param keeperFeeBps Third-party settler's or closer's share of paid amounts (<= 1%).
    /// @param minPricePerSecond Lowest accepted bid, 18-decimal units (> 0).
    /// @param maxBidWindow Longest bid window.
    /// @param awardGrace After the bid window plus this, anyone may cancel an unawarded order.
    /// @param lowBalanceWindow A service lease whose escrow covers fewer seconds than this is low.
    /// @param maxLeaseDuration Longest lease; with twice the staking fault horizon it stays below
    /// the unbonding period (GOV-04).
    /// @param minBillingPeriod An order's deposit must pay at least this many seconds at its reserve.
    /// @param paused New orders, bids and awards are refused; every exit still works.
    /// @param module Id of the results module new leases are bound to: set by `addModule` only
    /// (`setParams` keeps it, whatever it is given).
    struct Params {
        uint16 protocolFeeBps;
        uint16 keeperFeeBps;
        uint64 minPricePerSecond;
        uint32 maxBidWindow;
        uint32 awardGrace;
        uint32 lowBalanceWindow;
        uint32 maxLeaseDuration;
        uint16 minBillingPeriod;
        bool paused;
        uint8 module;
    }

    /// @notice A results module as the market keeps it, one slot: what the money of its leases
    /// depends on, read from the module once when it is added (modules are immutable).
    /// @param module The results contract: the only one that may flag, hold or fault its leases.
    /// @param challengeWindow Seconds a posted result is held (and can be challenged).
    /// @param faultFeeBps A third-party reporter's share of what a fault returns to the tenant.
    /// @param startWindow Seconds a provider has to acknowledge a lease.
    struct Module {
        address module;
        uint48 challengeWindow;
        uint16 faultFeeBps;
        uint32 startWindow;
    }

    /// @notice Read-only view of an order or lease (from `MarketLens`).
    /// @dev After a close that held the collateral (`held`), `settledAt` is the close time and
    /// `escrow` what the tenant paid for the lease (its loss should a fault still be proven).
    struct JobView {
        Status status;
        address tenant;
        address token;
        address provider;
        uint96 escrow;
        uint96 maxPricePerSecond;
        uint96 ratePerSecond;
        uint96 collateral;
        uint48 biddingEnd;
        uint48 settledAt;
        uint48 end;
        uint32 maxDuration;
        uint16 protocolFeeBps;
        uint16 keeperFeeBps;
        bool instant;
        bool lowBalance;
        uint8 kind;
        bool acknowledged;
        bool challenged;
        bool stalePending;
        bool held;
        address module;
    }

    // ---------------------------------------------------------------- errors

    /// @notice The token is not on the allow-list or was disabled for new orders.
    error TokenNotAllowed(address token);
    /// @notice A token with more than 18 decimals cannot be priced exactly.
    error TokenDecimalsUnsupported(address token, uint8 decimals);
    /// @notice The allow-list is full.
    error TooManyTokens();
    /// @notice An order parameter is out of range.
    error InvalidOrder(bytes32 field, uint256 value);
    /// @notice An order with this id already exists.
    error OrderExists(bytes32 orderId);
    /// @notice The order is not open (unknown, leased, closed or cancelled).
    error OrderNotOpen(bytes32 orderId, Status status);
    /// @notice The lease is not active.
    error LeaseNotActive(bytes32 leaseId, Status status);
    /// @notice Bids are accepted until `biddingEnd` inclusive.
    error BiddingClosed(bytes32 orderId, uint48 biddingEnd);
    /// @notice Awards happen after `biddingEnd` (instant orders excepted).
    error BiddingStillOpen(bytes32 orderId, uint48 biddingEnd);
    /// @notice The bid is above the order's reserve price.
    error BidAboveReserve(uint256 price, uint256 maxPrice);
    /// @notice The bid is below the protocol minimum price.
    error BidBelowMinimum(uint256 price, uint256 minPrice);
    /// @notice On-chain bids are binding and only the lowest is kept: a bid must beat it.
    error BidNotLowest(uint256 price, uint256 best);
    /// @notice The caller is not the operator of a registered provider.
    error NotAnOperator(address caller);
    /// @notice The provider's free stake (within its ceiling) cannot cover the order's collateral.
    error InsufficientCollateral(address provider, uint256 free, uint256 needed);
    /// @notice The provider's declared capacity does not match the order.
    error CapacityMismatch(address provider);
    /// @notice The order has no bid that can be honoured (none placed, or a service bidder no
    /// longer live).
    error NoValidBid(bytes32 orderId);
    /// @notice The signed bid's expiry has passed.
    error BidExpired(bytes32 orderId, uint48 expiry);
    /// @notice Only the tenant may do this (or anyone after the award grace).
    error NotTenant(address caller);
    /// @notice Nobody but the tenant may close this lease now. A batch lease without a result ends
    /// only by a fault proof (no-show, missed deadline) or its tenant; a service lease by anyone only
    /// once it expired, ran dry or lapsed.
    error LeaseNotClosable(bytes32 leaseId, uint48 end, uint96 escrow);
    /// @notice The batch lease's end has passed, but its result may still be posted until
    /// `deadline` (the module's deadline grace, MEC-10): the tenant closes it after that, or
    /// proves the missed deadline, rather than void a result on its way.
    error ResultStillDue(bytes32 leaseId, uint256 deadline);
    /// @notice The lease's result is held until `holdEnd`: only its tenant may accept it before then.
    error LeaseHeld(bytes32 leaseId, uint256 holdEnd);
    /// @notice A data-availability challenge on the lease's result is open: it must be answered, or
    /// proven unanswered, before the lease can complete.
    error LeaseChallenged(bytes32 leaseId);
    /// @notice The escrow ran out or the provider lapsed: the lease can only be closed, not topped up.
    error LeaseDepleted(bytes32 leaseId);
    /// @notice A top-up named a different provider than the lease has (reorg protection).
    error ProviderMismatch(bytes32 leaseId, address expected, address actual);
    /// @notice A zero amount where a positive one is required.
    error ZeroAmountMarket();
    /// @notice A zero address where a real account is required.
    error ZeroAddressMarket();
    /// @notice Nothing to withdraw.
    error NothingToWithdrawMarket(address token, address account);
    /// @notice A governance parameter is outside its allowed range.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice New orders, bids and awards are paused.
    error MarketPaused();
    /// @notice Escrow would exceed 2^96 token units.
    error EscrowOverflow(uint256 escrow);
    /// @notice Only the lease's own results module may do this.
    error NotLeaseModule(address caller, address module);
    /// @notice A service lease needs a provider whose heartbeat is fresh.
    error ProviderNotLive(address provider);
    /// @notice No results module was added yet, or the module list is full.
    error ModuleUnavailable(uint256 count);
    /// @notice The lease cannot be faulted: it is not running, and not a closed lease whose
    /// collateral is still held within the fault horizon.
    error LeaseNotFaultable(bytes32 leaseId, Status status);
    /// @notice The owner must be a timelock whose delay covers the module's fault windows (GOV-01).
    error TimelockTooShort(address owner, uint256 delay, uint256 needed);
    /// @notice The token refuses to pay this account (a freeze): its credit cannot go elsewhere.
    error AccountFrozenMarket(address token, address account);

    // ---------------------------------------------------------------- events

    /// @notice An order was created and its escrow deposited.
    event OrderCreated(
        bytes32 indexed orderId, address indexed tenant, address indexed token, OrderParams params, uint48 biddingEnd
    );
    /// @notice A new lowest on-chain bid.
    event BidPlaced(bytes32 indexed orderId, address indexed provider, uint96 pricePerSecond);
    /// @notice An order was awarded; the lease runs from `start` to at most `end`, bound to results
    /// module `module` (its address: `ModuleAdded`, or `MarketLens.module`).
    event LeaseStarted(
        bytes32 indexed orderId,
        address indexed provider,
        address indexed tenant,
        uint96 ratePerSecond,
        uint96 collateral,
        uint48 start,
        uint48 end,
        uint16 protocolFeeBps,
        uint16 keeperFeeBps,
        bool signedBid,
        uint8 module
    );
    /// @notice An order was cancelled before award; its escrow was refunded.
    event OrderCancelled(bytes32 indexed orderId, address indexed by, uint96 refund);
    /// @notice `amount` moved out of a service lease's escrow for the time up to `settledAt`. The
    /// provider was credited `amount` minus the protocol fee and, when a third party settled, minus
    /// that caller's keeper fee. Two topics and three words: paid once per lease per settlement.
    event LeaseSettled(bytes32 indexed leaseId, uint96 amount, uint48 settledAt, uint96 escrowLeft);
    /// @notice The escrow covers less than the low-balance window; it runs out at `depletesAt`.
    event LowBalance(bytes32 indexed leaseId, uint96 escrowLeft, uint48 depletesAt);
    /// @notice The tenant added escrow.
    event ToppedUp(bytes32 indexed leaseId, uint96 amount, uint96 escrow);
    /// @notice A lease closed. It carries its final payment (`paid` out of escrow, of which
    /// `toProvider` to the provider and the fees) and the unspent escrow refunded to the tenant.
    /// `held`: the collateral stays locked for the fault horizon (a fault may still be proven).
    event LeaseClosed(
        bytes32 indexed leaseId,
        CloseReason reason,
        uint96 paid,
        uint96 toProvider,
        uint96 protocolFee,
        uint96 keeperFee,
        uint96 refund,
        uint48 closedAt,
        bool held
    );
    /// @notice Protocol fees were sent to the treasury.
    event FeesWithdrawn(address indexed token, address indexed treasury, uint256 amount);
    /// @notice A payment that could not be pushed was booked as a pull credit instead.
    event Credited(address indexed token, address indexed account, uint256 amount);
    /// @notice A credit was withdrawn.
    event Withdrawn(address indexed token, address indexed account, address indexed to, uint256 amount);
    /// @notice A payment token was added, enabled or disabled.
    event TokenConfigured(address indexed token, uint8 id, uint8 decimals, bool allowed);
    /// @notice Governance parameters changed (for leases awarded from now on).
    event ParamsSet(Params params);
    /// @notice The treasury changed.
    event TreasurySet(address indexed treasury);
    /// @notice A results module was added; leases awarded from now on are bound to it.
    event ModuleAdded(uint8 indexed id, address indexed module, Module config);
    /// @notice The collateral of a closed lease, held for its fault horizon, was released.
    event HeldReleased(bytes32 indexed leaseId, address indexed provider, uint96 collateral);
    /// @notice A fault of `provider` was proven on `leaseId` (`kind`: "no-show", "missed-deadline",
    /// "abandoned", "stale-heartbeat", "wrong-result", "malformed-result", "unavailable"). The
    /// unsettled escrow, `refund`, went back to the tenant less `fee`, the third-party reporter's
    /// fault fee out of it (0 inside the tenant's priority); the tenant is owed `compensation` of
    /// the slash in Staking (at most what it paid for the lease; the reporter's cut of it is in
    /// `Staking.Slashed`).
    event LeaseFaulted(
        bytes32 indexed leaseId,
        address indexed provider,
        bytes32 kind,
        address reporter,
        uint256 slashed,
        uint96 refund,
        uint96 fee,
        uint256 compensation
    );

    // ---------------------------------------------------------------- tenant

    /// @notice Create an order; the deposit is pulled with a prior approval.
    function createOrder(OrderParams calldata p) external returns (bytes32 orderId);
    /// @notice Create an order, approving the deposit with an EIP-2612 permit of the caller.
    function createOrderWithPermit(OrderParams calldata p, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        returns (bytes32 orderId);

    // ---------------------------------------------------------------- provider

    /// @notice Bid on chain as the caller's provider. Instant orders are awarded at once. An
    /// auction bid locks the order's collateral from the provider's stake until it is outbid or
    /// the order is cancelled; the award starts the lease on that lock.
    function bid(bytes32 orderId, uint96 pricePerSecond) external;
    /// @notice Place a provider's signed bid, by anyone, by the same rules as `bid` (and the
    /// signature's expiry): the signer must be a registered operator, and the bid locks its
    /// provider's collateral. On an instant order it starts the lease, unacknowledged. Only bids
    /// on chain when the window closes can win (AFR-02).
    function bidSigned(bytes32 orderId, SignedBid calldata bid) external;

    // ---------------------------------------------------------------- anyone

    /// @notice Award an auction whose window closed to its lowest bid (the caller chooses
    /// nothing); the lease starts on the collateral the bid locked.
    function award(bytes32 orderId) external returns (address provider);
    /// @notice Settle the live time of acknowledged service leases; returns how many paid
    /// something. Batch leases are skipped: they are paid when their result stands.
    function settle(bytes32[] calldata leaseIds) external returns (uint256 settled);
    /// @notice Close a lease (see `CloseReason` and `LeaseNotClosable` for who may, when).
    function close(bytes32 leaseId) external;
    /// @notice Withdraw the caller's credit in `token` to `to` (to another address only if the
    /// token would pay the caller itself, MEC-16).
    function withdraw(address token, address to) external returns (uint256 amount);

    // ---------------------------------------------------------------- results module hooks

    /// @notice Set and clear flag bits of running lease `leaseId` (acknowledged, challenged,
    /// stale reported); only its module. Returns slots A and D as they were (layout:
    /// `MarketLayout`), so the module checks what it needs without another call.
    function moduleFlag(bytes32 leaseId, uint8 set, uint8 clear) external returns (uint256 a, uint256 d);
    /// @notice Batch lease `leaseId`'s result was posted: if it is a running batch lease within its
    /// end + `grace`, its pay stops at min(now, end) and is held for the challenge window (its `end`
    /// becomes the end of the hold). Only its module; returns slots A and D as they were, so the
    /// module reverts (undoing this) when the post is not valid.
    function resultPosted(bytes32 leaseId, uint256 grace) external returns (uint256 a, uint256 d);

    // ---------------------------------------------------------------- views

    /// @notice Governance parameters.
    function params() external view returns (Params memory);
    /// @notice The staking contract.
    function staking() external view returns (address);
    /// @notice The `MarketAdmin` code the fallback delegates the cold paths to.
    function admin() external view returns (address);
    /// @notice Raw storage word `slot` (layout documented on `Market`).
    function extsload(bytes32 slot) external view returns (bytes32);
    /// @notice Raw storage words at `slots`.
    function extsload(bytes32[] calldata slots) external view returns (bytes32[] memory);
}

/// @title IMarketAdmin
/// @notice The market's cold paths, served by `MarketAdmin` through the market's fallback
/// (delegatecall, the market's own storage): call them at the market's address.
interface IMarketAdmin {
    /// @notice Cancel an unawarded order and refund its escrow (tenant any time; anyone once the
    /// bid window plus the award grace has passed). Frees the lowest on-chain bid's collateral.
    function cancelOrder(bytes32 orderId) external;
    /// @notice Add escrow to an open order or a running lease (not to a held result, nor to a
    /// service lease that ran dry or lapsed).
    function topUp(bytes32 id, uint96 amount, address expectedProvider) external;
    /// @notice The provider (owner or operator) gives up a batch lease it has no result for: the
    /// tenant gets everything back and the collateral is slashed at once ("abandoned"). A provider
    /// cannot `close` such a lease (MEC-01).
    function abandon(bytes32 leaseId) external returns (uint256 slashed);
    /// @notice Fault `leaseId` (running, or closed with its collateral still held): refund the
    /// tenant everything unsettled and slash the collateral; only its results module.
    function fault(bytes32 leaseId, address reporter, bytes32 kind) external returns (uint256 slashed);
    /// @notice Release the collateral of closed leases that were held for a possible fault, once
    /// `faultHorizon` has passed since their close (anyone may call; others are skipped). Returns
    /// how many were released.
    function releaseHeld(bytes32[] calldata leaseIds) external returns (uint256 released);
    /// @notice How long a closed lease's collateral stays held (and its faults provable) after the
    /// close; every results module's windows fit in it.
    function faultHorizon() external view returns (uint256);
    /// @notice Send the protocol fees collected in `token` to the treasury (anyone may call).
    function withdrawFees(address token) external returns (uint256 amount);
    /// @notice Add a payment token to the allow-list, or enable/disable it for new orders (owner).
    function configureToken(address token, bool allowed) external;
    /// @notice Change governance parameters for orders and leases from now on (owner).
    function setParams(IMarket.Params calldata params_) external;
    /// @notice Add a results module, which binds leases awarded from now on (owner).
    function addModule(IResultsModule module) external;
    /// @notice Change the treasury (owner).
    function setTreasury(address treasury_) external;
}

/// @title IResultsModule
/// @notice What the market reads of a results module (its windows when it is added; its deadline
/// grace when a tenant closes a batch lease past its end; whether a stale report still holds a
/// service lease's collateral at its close).
interface IResultsModule {
    /// @notice The market the module serves.
    function market() external view returns (IMarket);
    /// @notice Seconds a posted result is held and can be challenged.
    function challengeWindow() external view returns (uint48);
    /// @notice Seconds a provider has to acknowledge a lease.
    function startWindow() external view returns (uint32);
    /// @notice A third-party reporter's share (bps) of what a fault returns to the tenant.
    function faultFeeBps() external view returns (uint16);
    /// @notice Seconds after a batch lease's end its result is still accepted.
    function deadlineGrace() external view returns (uint32);
    /// @notice Longest time after a lease's close during which one of its faults can still be
    /// proven; must fit in the staking fault horizon.
    function horizon() external view returns (uint256);
    /// @notice Whether no fault can come of the stale-heartbeat report on `leaseId` (of
    /// `provider`): there is none, or its provider beat again within the grace.
    function staleVoid(bytes32 leaseId, address provider) external view returns (bool);
}

/// @title ITimelockDelay
/// @notice The one thing the market asks of its owner when a module is added.
interface ITimelockDelay {
    /// @notice Minimum delay of a scheduled operation.
    function getMinDelay() external view returns (uint256);
}
