// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IMarket
/// @notice Reverse auction and streaming escrow of gridlease.
/// @dev An order and the lease it becomes share one id, `keccak256(abi.encode(tenant, params))`.
/// The id commits to every term of the order (including a tenant-chosen salt), so a signed bid or
/// top-up meant for one order can never land on another, even across a reorg (AUC-16).
///
/// Prices are in 18-decimal units of the payment token per second (a USDC price of 1e18 is one
/// USDC a second), whatever the token's own decimals: rates keep 18 decimals of precision
/// (ESC-04). Amounts are in the token's own units.
interface IMarket {
    /// @notice Life of an order/lease.
    enum Status {
        None,
        Open,
        Leased,
        Closed,
        Cancelled
    }

    /// @notice Why a lease closed.
    enum CloseReason {
        TenantClosed,
        ProviderClosed,
        Expired,
        Exhausted,
        Faulted,
        Completed
    }

    /// @notice What a tenant asks for. Hashed with the tenant into the order id.
    /// @param specHash keccak256 of the canonical job spec.
    /// @param specURI Where providers fetch the spec (verified against `specHash`).
    /// @param token Payment token (allow-listed).
    /// @param deposit Escrow deposited with the order, in token units.
    /// @param maxPricePerSecond Reserve price, 18-decimal token units per second.
    /// @param maxDuration Longest the lease may run, seconds.
    /// @param bidWindow Seconds from creation during which bids are accepted.
    /// @param collateral Provider stake locked for the lease, in stake token units.
    /// @param gpuClass GPU class index required (bit in the provider's class bitmap).
    /// @param gpuCount GPUs required.
    /// @param vramGiB Minimum VRAM per GPU.
    /// @param cpuCores CPU cores required (matched off chain).
    /// @param ramGiB RAM required (matched off chain).
    /// @param jobKind 0 container, 1 built-in verifiable workload, 2 service.
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

    /// @notice A bid signed off chain by a provider's operator key (EIP-712), submitted by anyone
    /// at award time. Losing bids cost their provider nothing.
    struct SignedBid {
        uint96 pricePerSecond;
        uint48 expiry;
        bytes signature;
    }

    /// @notice Governance parameters, one storage slot.
    /// @param protocolFeeBps Protocol take of settled payment (<= MAX_PROTOCOL_FEE_BPS).
    /// @param keeperFeeBps Third-party settler's share of settled payment (<= MAX_KEEPER_FEE_BPS).
    /// @param minPricePerSecond Lowest accepted bid, 18-decimal units (> 0).
    /// @param maxBidWindow Longest bid window.
    /// @param awardGrace After the bid window plus this, anyone may cancel an unawarded order.
    /// @param lowBalanceWindow A lease whose escrow covers fewer seconds than this is low.
    /// @param maxLeaseDuration Longest lease; kept below the staking unbonding period.
    /// @param paused New orders, bids and awards are refused; every exit still works.
    struct Params {
        uint16 protocolFeeBps;
        uint16 keeperFeeBps;
        uint64 minPricePerSecond;
        uint32 maxBidWindow;
        uint32 awardGrace;
        uint32 lowBalanceWindow;
        uint32 maxLeaseDuration;
        bool paused;
    }

    /// @notice Read-only view of an order or lease.
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
    /// @notice The provider's free stake cannot cover the order's collateral.
    error InsufficientCollateral(address provider, uint256 free, uint256 needed);
    /// @notice The provider's declared capacity does not match the order.
    error CapacityMismatch(address provider);
    /// @notice No bid (on chain or signed) was valid at award time.
    error NoValidBid(bytes32 orderId);
    /// @notice Too many signed bids in one award.
    error TooManySignedBids(uint256 count, uint256 max);
    /// @notice Only the tenant may do this (or anyone after the award grace).
    error NotTenant(address caller);
    /// @notice The lease is neither expired nor exhausted and the caller is not a party to it.
    error LeaseNotClosable(bytes32 leaseId, uint48 end, uint96 escrow);
    /// @notice The escrow ran out: the lease can only be closed, not topped up.
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
    /// @notice Only the results contract reports faults.
    error NotResults(address caller);
    /// @notice A service lease needs a provider whose heartbeat is fresh.
    error ProviderNotLive(address provider);

    // ---------------------------------------------------------------- events

    /// @notice An order was created and its escrow deposited.
    event OrderCreated(
        bytes32 indexed orderId, address indexed tenant, address indexed token, OrderParams params, uint48 biddingEnd
    );
    /// @notice A new lowest on-chain bid.
    event BidPlaced(bytes32 indexed orderId, address indexed provider, uint96 pricePerSecond);
    /// @notice An order was awarded; the lease runs from `start` to at most `end`.
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
        bool signedBid
    );
    /// @notice An order was cancelled before award; its escrow was refunded.
    event OrderCancelled(bytes32 indexed orderId, address indexed by, uint96 refund);
    /// @notice `amount` moved out of the lease's escrow for the time up to `settledAt`. The
    /// provider was credited `amount` minus the protocol fee (`protocolFeeBps` of LeaseStarted)
    /// and, when a third party settled, minus that caller's keeper fee (`keeperFeeBps`). Kept to
    /// two topics and three words: this event is paid for once per lease per settlement.
    event LeaseSettled(bytes32 indexed leaseId, uint96 amount, uint48 settledAt, uint96 escrowLeft);
    /// @notice The escrow covers less than the low-balance window; it runs out at `depletesAt`.
    event LowBalance(bytes32 indexed leaseId, uint96 escrowLeft, uint48 depletesAt);
    /// @notice The tenant added escrow.
    event ToppedUp(bytes32 indexed leaseId, uint96 amount, uint96 escrow);
    /// @notice A lease closed. It carries its final settlement (`paid` out of escrow, of which
    /// `toProvider` to the provider and the fees) and the unspent escrow refunded to the tenant.
    event LeaseClosed(
        bytes32 indexed leaseId,
        CloseReason reason,
        uint96 paid,
        uint96 toProvider,
        uint96 protocolFee,
        uint96 keeperFee,
        uint96 refund,
        uint48 closedAt
    );
    /// @notice Protocol fees were sent to the treasury.
    event FeesWithdrawn(address indexed token, address indexed treasury, uint256 amount);
    /// @notice A payment that could not be pushed was booked as a pull credit instead.
    event Credited(address indexed token, address indexed account, uint256 amount);
    /// @notice A credit was withdrawn.
    event Withdrawn(address indexed token, address indexed account, address indexed to, uint256 amount);
    /// @notice A payment token was added, enabled or disabled.
    event TokenConfigured(address indexed token, uint8 id, uint8 decimals, bool allowed);
    /// @notice Governance parameters changed.
    event ParamsSet(Params params);
    /// @notice The treasury changed.
    event TreasurySet(address indexed treasury);
    /// @notice The results contract (which may report faults) changed.
    event ResultsSet(address indexed results);
    /// @notice A proven fault slashed `provider`; if the lease was running it closed as Faulted
    /// with everything unsettled refunded to the tenant.
    event LeaseFaulted(bytes32 indexed leaseId, address indexed provider, bytes32 evidence, uint256 slashed, uint96 refund);

    // ---------------------------------------------------------------- tenant

    /// @notice Create an order; the deposit is pulled with a prior approval.
    function createOrder(OrderParams calldata p) external returns (bytes32 orderId);
    /// @notice Create an order, approving the deposit with an EIP-2612 permit of the caller.
    function createOrderWithPermit(OrderParams calldata p, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        returns (bytes32 orderId);
    /// @notice Cancel an unawarded order and refund its escrow (tenant any time; anyone once the
    /// bid window plus the award grace has passed).
    function cancelOrder(bytes32 orderId) external;
    /// @notice Add escrow to an open order or an active lease.
    function topUp(bytes32 id, uint96 amount, address expectedProvider) external;

    // ---------------------------------------------------------------- provider

    /// @notice Bid on chain as the caller's provider. Instant orders are awarded at once.
    function bid(bytes32 orderId, uint96 pricePerSecond) external;

    // ---------------------------------------------------------------- anyone

    /// @notice Award an order to the lowest valid bid among the on-chain one and `signedBids`.
    function award(bytes32 orderId, SignedBid[] calldata signedBids) external returns (address provider);
    /// @notice Settle accrued payment of each lease; returns how many paid something.
    function settle(bytes32[] calldata leaseIds) external returns (uint256 settled);
    /// @notice Close a lease: parties any time, anyone once it expired or ran dry.
    function close(bytes32 leaseId) external;
    /// @notice Withdraw the caller's credit in `token` to `to`.
    function withdraw(address token, address to) external returns (uint256 amount);

    // ---------------------------------------------------------------- views

    /// @notice The order or lease `id`.
    function getJob(bytes32 id) external view returns (JobView memory);
    /// @notice Payment accrued and not yet settled, capped by the escrow.
    function accrued(bytes32 leaseId) external view returns (uint96);
    /// @notice Protocol fees collected in `token` and not yet sent to the treasury.
    function protocolFees(address token) external view returns (uint256);
    /// @notice Send the protocol fees collected in `token` to the treasury (anyone may call).
    function withdrawFees(address token) external returns (uint256 amount);
    /// @notice Credit of `account` in `token`.
    function creditOf(address token, address account) external view returns (uint256);
    /// @notice Governance parameters.
    function params() external view returns (Params memory);
    /// @notice The staking contract.
    function staking() external view returns (address);
    /// @notice Results contract this market takes faults from.
    function results() external view returns (address);

    /// @notice Slash `provider` for a fault the results contract proved on `leaseId` (and close the
    /// lease as Faulted if it still runs); only the results contract may call.
    function fault(bytes32 leaseId, address provider, address tenant, uint96 collateral, bytes32 evidence, address reporter)
        external
        returns (uint256 slashed);
    /// @notice The results contract saw batch lease `leaseId`'s result posted: stop its accrual
    /// and hold it for the challenge window; only the results contract may call.
    function resultPosted(bytes32 leaseId) external;
    /// @notice Receiver of protocol fees.
    function treasury() external view returns (address);
}

/// @title IResults
/// @notice What the market reads of the results contract.
interface IResults {
    /// @notice Seconds after posting during which a result can be proven wrong.
    function challengeWindow() external view returns (uint48);
}
