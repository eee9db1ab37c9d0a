// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMarket} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {MatmulProof} from "./libraries/MatmulProof.sol";

/// @title Results
/// @notice Result commitments of leases, and the one-transaction fraud proof of built-in
/// `matmul_i8` jobs.
/// @dev The provider's operator posts a result (Merkle root of C, a URI, a metadata hash) while the
/// lease runs. For `challengeWindow` seconds after that anyone may prove a wrong element: the proof
/// names the order's terms (checked against the content-addressed lease id, so the spec hash is
/// the tenant's, not the provider's), the element's leaf and Merkle proof; the contract recomputes
/// the element from the seed and, if it differs, has the market slash the provider and refund the
/// tenant. Each lease can be faulted once; a proof against a correct result reverts, costing the
/// caller only gas.
contract Results {
    /// @notice What is known of a lease here.
    struct Result {
        bytes32 root;
        address provider;
        uint48 postedAt;
        uint32 acknowledgedAfter;
        bool faulted;
    }

    /// @notice The market whose leases these are.
    IMarket public immutable market;
    /// @notice The staking contract (operator -> provider).
    IStaking public immutable staking;
    /// @notice Seconds after posting during which a result can be proven wrong.
    uint48 public immutable challengeWindow;
    /// @notice Seconds after a lease starts within which its provider must acknowledge it.
    uint32 public immutable startWindow;
    /// @notice Seconds a reported heartbeat lapse must last before it can be slashed.
    uint32 public immutable staleGrace;

    mapping(bytes32 leaseId => Result) private _results;
    /// @dev When a service lease's provider was first reported without a fresh heartbeat.
    mapping(bytes32 leaseId => uint48) private _staleSince;

    /// @notice `provider`'s operator posted the result of `leaseId`.
    event ResultPosted(bytes32 indexed leaseId, address indexed provider, bytes32 root, string uri, bytes32 metaHash);
    /// @notice The provider's operator acknowledged the lease `secondsAfterStart` after it began.
    event LeaseAcknowledged(bytes32 indexed leaseId, address indexed provider, uint32 secondsAfterStart);
    /// @notice The provider of service lease `leaseId` was seen without a fresh heartbeat.
    event StaleReported(bytes32 indexed leaseId, address indexed provider, uint48 since);
    /// @notice A liveness fault (`kind`: "no-show", "missed-deadline" or "stale-heartbeat") was
    /// proven.
    event LivenessFaultProven(bytes32 indexed leaseId, address indexed reporter, bytes32 kind);
    /// @notice A wrong element (i, j) of the result of `leaseId` was proven.
    event MatmulFraudProven(
        bytes32 indexed leaseId, address indexed reporter, uint256 i, uint256 j, int256 claimed, int256 correct
    );

    /// @notice The lease is not running.
    error LeaseNotRunning(bytes32 leaseId);
    /// @notice The caller is not the operator of the lease's provider.
    error NotLeaseOperator(address caller, address provider);
    /// @notice A result was already posted for this lease.
    error ResultAlreadyPosted(bytes32 leaseId);
    /// @notice No result was posted for this lease.
    error NoResult(bytes32 leaseId);
    /// @notice The challenge window of this result has passed.
    error ChallengeWindowOver(bytes32 leaseId, uint256 until);
    /// @notice This lease's result was already proven wrong.
    error AlreadyFaulted(bytes32 leaseId);
    /// @notice The order terms given do not hash to the lease id.
    error TermsMismatch(bytes32 leaseId, bytes32 computed);
    /// @notice The order is not a `matmul_i8` job, or the job parameters do not match its spec hash.
    error NotThisMatmulJob(bytes32 specHash, bytes32 computed);
    /// @notice The element is correct: no fraud.
    error NoFraud(uint256 i, uint256 j, int256 value);
    /// @notice A zero root or a zero address.
    error InvalidResult();
    /// @notice The start window has passed: the lease can only be faulted as a no-show now.
    error StartWindowOver(bytes32 leaseId, uint256 until);
    /// @notice The lease was acknowledged or has a result: it is not a no-show.
    error NotANoShow(bytes32 leaseId);
    /// @notice The result deadline (the lease end) has not passed, or a result was posted.
    error DeadlineNotMissed(bytes32 leaseId, uint256 deadline);
    /// @notice Service leases have no result deadline.
    error NotABatchJob(bytes32 leaseId);
    /// @notice The result deadline (the lease end) has passed.
    error DeadlinePassed(bytes32 leaseId, uint256 deadline);
    /// @notice Only service leases have heartbeats.
    error NotAServiceLease(bytes32 leaseId);
    /// @notice The provider's heartbeat is fresh.
    error ProviderLive(address provider);
    /// @notice The lapse was not reported, or its grace has not passed.
    error StaleNotProven(bytes32 leaseId, uint256 provableAt);
    /// @notice The provider heart-beat again after the report (e.g. after a chain halt).
    error HeartbeatResumed(bytes32 leaseId, uint48 at);

    /// @param market_ The market (which must name this contract with `setResults`).
    /// @param challengeWindow_ Seconds a result can be challenged; keep it below the staking
    /// unbonding period minus the longest lease, so the stake is still there to slash.
    /// @param startWindow_ Seconds a provider has to acknowledge a new lease.
    /// @param staleGrace_ Seconds a reported heartbeat lapse must last to be slashable.
    constructor(IMarket market_, uint48 challengeWindow_, uint32 startWindow_, uint32 staleGrace_) {
        if (address(market_) == address(0) || challengeWindow_ == 0 || startWindow_ == 0 || staleGrace_ == 0) {
            revert InvalidResult();
        }
        market = market_;
        staking = IStaking(market_.staking());
        challengeWindow = challengeWindow_;
        startWindow = startWindow_;
        staleGrace = staleGrace_;
    }

    /// @notice Report that the provider of a running service lease has no fresh heartbeat. Starts
    /// the grace after which the lapse can be slashed; the report is observed on chain, so a lapse
    /// caused by a chain halt is only reported after blocks resume, and the provider's first
    /// heartbeat after that clears it (STK-11).
    function reportStale(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms) external {
        _checkTerms(leaseId, tenant, terms);
        if (terms.jobKind != 2) revert NotAServiceLease(leaseId);
        (address provider,,) = _running(leaseId, terms);
        (uint48 at,, uint16 period) = staking.liveness(provider);
        if (at != 0 && block.timestamp <= uint256(at) + period) revert ProviderLive(provider);
        uint48 since = _staleSince[leaseId];
        // A report older than the provider's last heartbeat is void: start again.
        if (since == 0 || at >= since) {
            since = uint48(block.timestamp);
            _staleSince[leaseId] = since;
        }
        emit StaleReported(leaseId, provider, since);
    }

    /// @notice Prove a heartbeat lapse reported at least `staleGrace` ago and not ended since. The
    /// lease closes as Faulted: nothing unsettled is paid, escrow is refunded, collateral slashed.
    function proveStaleHeartbeat(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms)
        external
        returns (uint256 slashed)
    {
        _checkTerms(leaseId, tenant, terms);
        if (terms.jobKind != 2) revert NotAServiceLease(leaseId);
        (address provider,,) = _running(leaseId, terms);
        uint48 since = _staleSince[leaseId];
        if (since == 0 || block.timestamp < uint256(since) + staleGrace) {
            revert StaleNotProven(leaseId, since == 0 ? 0 : uint256(since) + staleGrace);
        }
        (uint48 at,,) = staking.liveness(provider);
        if (at >= since) revert HeartbeatResumed(leaseId, at);
        slashed = _livenessFault(_results[leaseId], leaseId, provider, tenant, terms.collateral, "stale-heartbeat");
    }

    /// @notice The provider's operator confirms it runs the lease (within `startWindow` of its
    /// start). Posting a result also counts. Repeating it is a no-op, so a node may retry.
    /// @param terms The order's terms (with `tenant`, they hash to the id): give the lease start.
    function acknowledge(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms) external {
        _checkTerms(leaseId, tenant, terms);
        (address provider, uint256 start,) = _running(leaseId, terms);
        _onlyOperatorOf(provider);
        Result storage r = _results[leaseId];
        // Checked before the window: a posted result moved the lease end, and with it `start`.
        if (r.acknowledgedAfter != 0 || r.postedAt != 0) return;
        if (block.timestamp > start + startWindow) revert StartWindowOver(leaseId, start + startWindow);
        // Stored +1 so an acknowledgement in the lease's first second still counts.
        uint32 after_ = uint32(block.timestamp - start) + 1;
        (r.provider, r.acknowledgedAfter) = (provider, after_);
        emit LeaseAcknowledged(leaseId, provider, after_ - 1);
    }

    /// @notice Prove that the provider neither acknowledged nor posted a result within
    /// `startWindow` of the lease start. The lease closes as Faulted with a full refund.
    function proveNoShow(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms)
        external
        returns (uint256 slashed)
    {
        _checkTerms(leaseId, tenant, terms);
        (address provider, uint256 start,) = _running(leaseId, terms);
        Result storage r = _results[leaseId];
        if (r.acknowledgedAfter != 0 || r.postedAt != 0) revert NotANoShow(leaseId);
        if (block.timestamp <= start + startWindow) revert NotANoShow(leaseId);
        slashed = _livenessFault(r, leaseId, provider, tenant, terms.collateral, "no-show");
    }

    /// @notice Prove that a batch job (container or built-in) reached its end (its result deadline)
    /// without a result. The lease closes as Faulted with a full refund.
    function proveMissedDeadline(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms)
        external
        returns (uint256 slashed)
    {
        _checkTerms(leaseId, tenant, terms);
        if (terms.jobKind == 2) revert NotABatchJob(leaseId);
        (address provider,, uint256 end) = _running(leaseId, terms);
        Result storage r = _results[leaseId];
        if (r.postedAt != 0 || block.timestamp < end) revert DeadlineNotMissed(leaseId, end);
        slashed = _livenessFault(r, leaseId, provider, tenant, terms.collateral, "missed-deadline");
    }

    /// @notice Post the result of a running lease (the provider's operator, once).
    /// @param root Merkle root of the result (for `matmul_i8`: of C, see `MatmulProof`).
    /// @param uri Where the tenant downloads it.
    /// @param metaHash Hash of result metadata (sizes, timings, logs).
    function postResult(bytes32 leaseId, bytes32 root, string calldata uri, bytes32 metaHash) external {
        if (root == bytes32(0)) revert InvalidResult();
        IMarket.JobView memory v = market.getJob(leaseId);
        if (v.status != IMarket.Status.Leased) revert LeaseNotRunning(leaseId);
        Result storage r = _results[leaseId];
        // Before the deadline check: a batch result moves the lease end to its own time.
        if (r.postedAt != 0) revert ResultAlreadyPosted(leaseId);
        // The lease end is the result deadline: a late result cannot race a missed-deadline proof.
        if (block.timestamp >= v.end) revert DeadlinePassed(leaseId, v.end);
        address provider = staking.providerOf(msg.sender);
        if (provider != v.provider) revert NotLeaseOperator(msg.sender, v.provider);
        (r.root, r.provider, r.postedAt) = (root, provider, uint48(block.timestamp));
        emit ResultPosted(leaseId, provider, root, uri, metaHash);
        // A batch lease stops accruing and is held for the challenge window.
        market.resultPosted(leaseId);
    }

    /// @notice Prove that element (i, j) of the `matmul_i8` result posted for `leaseId` is wrong.
    /// @param tenant The order's tenant and `terms` its parameters: together they hash to the id.
    /// @param job The job's seed and shape; must hash to `terms.specHash`.
    /// @param leaf The result leaf holding (i, j); `proof` its Merkle siblings, bottom-up.
    /// @return slashed What the provider lost.
    function proveMatmulFraud(
        bytes32 leaseId,
        address tenant,
        IMarket.OrderParams calldata terms,
        MatmulProof.Job calldata job,
        uint256 i,
        uint256 j,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) external returns (uint256 slashed) {
        Result storage r = _challengeable(leaseId, tenant, terms, MatmulProof.specHash(job));
        (int256 claimed, int256 correct) = MatmulProof.check(job, r.root, i, j, leaf, proof);
        slashed = _matmulFault(r, leaseId, tenant, terms.collateral, i, j, claimed, correct);
    }

    /// @notice `proveMatmulFraud` for a `matmul_i8` job whose inputs are data committed by the
    /// tenant (A by rows, B by columns): `ops` carries row i of A and column j of B with their
    /// Merkle proofs against the roots in `job`, which must hash to `terms.specHash`.
    function proveMatmulDataFraud(
        bytes32 leaseId,
        address tenant,
        IMarket.OrderParams calldata terms,
        MatmulProof.DataJob calldata job,
        uint256 i,
        uint256 j,
        MatmulProof.Operands calldata ops,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) external returns (uint256 slashed) {
        Result storage r = _challengeable(leaseId, tenant, terms, MatmulProof.dataSpecHash(job));
        (int256 claimed, int256 correct) = MatmulProof.checkData(job, r.root, i, j, ops, leaf, proof);
        slashed = _matmulFault(r, leaseId, tenant, terms.collateral, i, j, claimed, correct);
    }

    /// @notice The result posted for `leaseId` (zero if none).
    function resultOf(bytes32 leaseId) external view returns (Result memory) {
        return _results[leaseId];
    }

    /// @dev The result of `leaseId`, if it can still be proven wrong as the `matmul_i8` job whose
    /// parameters hash to `spec`.
    function _challengeable(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms, bytes32 spec)
        private
        view
        returns (Result storage r)
    {
        r = _results[leaseId];
        uint256 postedAt = r.postedAt;
        if (postedAt == 0) revert NoResult(leaseId);
        if (r.faulted) revert AlreadyFaulted(leaseId);
        if (block.timestamp > postedAt + challengeWindow) {
            revert ChallengeWindowOver(leaseId, postedAt + challengeWindow);
        }
        _checkTerms(leaseId, tenant, terms);
        if (terms.jobKind != 1 || spec != terms.specHash) revert NotThisMatmulJob(terms.specHash, spec);
    }

    function _matmulFault(
        Result storage r,
        bytes32 leaseId,
        address tenant,
        uint96 collateral,
        uint256 i,
        uint256 j,
        int256 claimed,
        int256 correct
    ) private returns (uint256) {
        if (claimed == correct) revert NoFraud(i, j, correct);
        r.faulted = true;
        emit MatmulFraudProven(leaseId, msg.sender, i, j, claimed, correct);
        return market.fault(
            leaseId, r.provider, tenant, collateral, keccak256(abi.encode("matmul_i8", leaseId)), msg.sender
        );
    }

    function _livenessFault(
        Result storage r,
        bytes32 leaseId,
        address provider,
        address tenant,
        uint96 collateral,
        bytes32 kind
    ) private returns (uint256 slashed) {
        if (r.faulted) revert AlreadyFaulted(leaseId);
        r.faulted = true;
        emit LivenessFaultProven(leaseId, msg.sender, kind);
        slashed = market.fault(leaseId, provider, tenant, collateral, keccak256(abi.encode(kind, leaseId)), msg.sender);
    }

    /// @dev The order terms and tenant hash to the lease id (so they are the tenant's own).
    function _checkTerms(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms) private pure {
        bytes32 id = keccak256(abi.encode(tenant, terms));
        if (id != leaseId) revert TermsMismatch(leaseId, id);
    }

    /// @dev Provider, start and end of a running lease (for a batch lease with a posted result,
    /// `end` is the result time and `start` is not meaningful).
    function _running(bytes32 leaseId, IMarket.OrderParams calldata terms)
        private
        view
        returns (address provider, uint256 start, uint256 end)
    {
        IMarket.JobView memory v = market.getJob(leaseId);
        if (v.status != IMarket.Status.Leased) revert LeaseNotRunning(leaseId);
        end = v.end;
        start = end - terms.maxDuration;
        provider = v.provider;
    }

    function _onlyOperatorOf(address provider) private view {
        if (staking.providerOf(msg.sender) != provider) revert NotLeaseOperator(msg.sender, provider);
    }
}
