// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IMarket, IMarketAdmin, IResultsModule} from "./interfaces/IMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {MarketLayout as L} from "./libraries/MarketLayout.sol";
import {MatmulProof} from "./libraries/MatmulProof.sol";
import {ResultTree} from "./libraries/ResultTree.sol";

/// @title Results
/// @notice The results module of the market: acknowledgements, result commitments, data
/// availability challenges, and every fault a provider can commit, each provable by anyone.
/// @dev Immutable: its windows are what the money of its leases depends on, so governance changes
/// them only by adding a new module, which binds leases awarded afterwards (GOV-02, GOV-03).
///
/// Faults (each lands once per lease, through `Market.fault`, on a running lease or on a closed one
/// whose collateral the market still holds):
/// - no-show: not acknowledged within `startWindow` of the start;
/// - missed deadline: a batch lease without a result by its end + `deadlineGrace`;
/// - stale heartbeat: a reported lapse of the provider not ended within `staleGrace`;
/// - wrong result: one element of a `matmul_i8` product recomputed on chain;
/// - malformed result: a `matmul_i8` result of the wrong size, a real leaf of the wrong length or a
///   padding subtree that is not zero, each in one transaction;
/// - unavailable: a chunk of the result challenged (with a bond) and not revealed on chain within
///   `responseWindow`. An answer pays the bond to whoever revealed the chunk; no answer refunds it.
contract Results is IResultsModule, ReentrancyGuardTransient {
    /// @notice A data-availability challenge of one chunk.
    struct Challenge {
        address challenger;
        uint48 deadline;
    }

    /// @notice A reported heartbeat lapse: when it was reported, and the provider's epoch then.
    struct Stale {
        uint48 since;
        uint32 epoch;
    }

    /// @notice The market whose leases these are.
    IMarket public immutable override market;
    /// @notice The staking contract (operator -> provider, liveness).
    IStaking public immutable staking;
    /// @notice Seconds after its result during which a batch lease is held and can be challenged.
    uint48 public immutable override challengeWindow;
    /// @notice Seconds after a lease starts within which its provider must acknowledge it.
    uint32 public immutable override startWindow;
    /// @notice Seconds a reported heartbeat lapse must last before it can be slashed.
    uint32 public immutable staleGrace;
    /// @notice Seconds after a batch lease's end during which its result is still accepted.
    uint32 public immutable deadlineGrace;
    /// @notice Seconds the provider has to reveal a challenged chunk on chain.
    uint32 public immutable responseWindow;
    /// @notice Wei a challenger bonds per chunk: paid to whoever reveals it, refunded otherwise.
    uint256 public immutable challengeBond;
    /// @notice A third-party reporter's share (bps) of what a fault returns to the tenant, earned
    /// only by a proof made more than `tenantPriority` after the fault became provable.
    uint16 public immutable override faultFeeBps;
    /// @notice Seconds after a fault becomes provable during which a proof earns no fee: the
    /// tenant (or anyone for it) recovers its money for free, and a provider that faulted cannot
    /// race to charge an honest tenant for proving its own fault.
    uint32 public immutable tenantPriority;
    /// @dev `MarketAdmin.faultHorizon`.
    uint256 private immutable _marketHorizon;

    mapping(bytes32 leaseId => bytes32) private _results;
    mapping(bytes32 leaseId => mapping(uint256 index => Challenge)) private _challenges;
    mapping(bytes32 leaseId => uint256) private _openChallenges;
    mapping(bytes32 leaseId => Stale) private _stale;
    mapping(address account => uint256) private _ethCredits;
    mapping(bytes32 leaseId => bytes32) private _certificates;

    /// @notice `provider`'s operator acknowledged the lease `secondsAfterStart` after it began.
    event LeaseAcknowledged(bytes32 indexed leaseId, address indexed provider, uint32 secondsAfterStart);
    /// @notice `provider`'s operator posted the result of `leaseId`: the tree `root` over `size` bytes.
    event ResultPosted(
        bytes32 indexed leaseId, address indexed provider, bytes32 root, uint64 size, string uri, bytes32 metaHash
    );
    /// @notice Chunk `index` of the result of `leaseId` must be revealed by `deadline`.
    event ChunkChallenged(bytes32 indexed leaseId, address indexed challenger, uint256 index, uint48 deadline);
    /// @notice Chunk `index` of the result of `leaseId` was revealed (its bytes are on chain here).
    event ChunkRevealed(bytes32 indexed leaseId, uint256 index, bytes chunk);
    /// @notice A challenge ended without a fault (its lease was already faulted or past its horizon);
    /// the bond went back to its challenger.
    event ChallengeVoided(bytes32 indexed leaseId, uint256 index);
    /// @notice The provider of service lease `leaseId` was seen without a fresh heartbeat.
    event StaleReported(bytes32 indexed leaseId, address indexed provider, uint48 since);
    /// @notice A fault (`kind` as in `Market.LeaseFaulted`) was proven.
    event FaultProven(bytes32 indexed leaseId, address indexed reporter, bytes32 kind);
    /// @notice A wrong element (i, j) of the result of `leaseId` was proven.
    event MatmulFraudProven(
        bytes32 indexed leaseId, address indexed reporter, uint256 i, uint256 j, int256 claimed, int256 correct
    );
    /// @notice `provider`'s node serves service lease `leaseId` over TLS with the key whose
    /// SubjectPublicKeyInfo hashes (SHA-256) to `spkiHash`; its clients refuse any other (ACC-03).
    event CertificateBound(bytes32 indexed leaseId, address indexed provider, bytes32 spkiHash);
    /// @notice Wei that could not be sent to `account` was credited (withdraw with `withdrawEth`).
    event EthCredited(address indexed account, uint256 amount);

    /// @notice The lease is not in a state this call applies to.
    error LeaseNotRunning(bytes32 leaseId);
    /// @notice The caller is not the operator of the lease's provider.
    error NotLeaseOperator(address caller, address provider);
    /// @notice A result was already posted for this lease.
    error ResultAlreadyPosted(bytes32 leaseId);
    /// @notice No result was posted for this lease, or the root and size given are not it.
    error NoResult(bytes32 leaseId);
    /// @notice The challenge window of this result has passed.
    error ChallengeWindowOver(bytes32 leaseId, uint256 until);
    /// @notice The order terms given do not hash to the lease id.
    error TermsMismatch(bytes32 leaseId, bytes32 computed);
    /// @notice The order is not a `matmul_i8` job, or the job parameters do not match its spec hash.
    error NotThisMatmulJob(bytes32 specHash, bytes32 computed);
    /// @notice The element is correct: no fraud.
    error NoFraud(uint256 i, uint256 j, int256 value);
    /// @notice A zero root, a size beyond 2^48 - 1, or a bad constructor argument.
    error InvalidResult();
    /// @notice The start window has passed: the lease can only be faulted as a no-show now.
    error StartWindowOver(bytes32 leaseId, uint256 until);
    /// @notice The lease was acknowledged or has a result, or its start window has not passed.
    error NotANoShow(bytes32 leaseId);
    /// @notice The result deadline (end + grace) has not passed, or a result was posted.
    error DeadlineNotMissed(bytes32 leaseId, uint256 deadline);
    /// @notice Service leases have no result.
    error NotABatchJob(bytes32 leaseId);
    /// @notice The result deadline (end + grace) has passed.
    error DeadlinePassed(bytes32 leaseId, uint256 deadline);
    /// @notice Only service leases have heartbeats.
    error NotAServiceLease(bytes32 leaseId);
    /// @notice The provider's heartbeat is fresh.
    error ProviderLive(address provider);
    /// @notice The lapse was not reported, or its grace has not passed.
    error StaleNotProven(bytes32 leaseId, uint256 provableAt);
    /// @notice A lapse reported now could not last `staleGrace` before the lease ends at `end`.
    error TooLateToReport(bytes32 leaseId, uint256 end);
    /// @notice The provider heart-beat again within the grace after the report.
    error HeartbeatResumed(bytes32 leaseId, uint48 at);
    /// @notice The bond sent is not `challengeBond`.
    error BadBond(uint256 sent, uint256 required);
    /// @notice The chunk index is past the result's last leaf.
    error ChunkOutOfRange(uint256 index, uint256 leaves);
    /// @notice This chunk is already challenged and not yet answered.
    error ChallengeOpen(bytes32 leaseId, uint256 index);
    /// @notice No open challenge of this chunk.
    error NoChallenge(bytes32 leaseId, uint256 index);
    /// @notice The answer came after the response window (the result failed).
    error ResponseWindowOver(bytes32 leaseId, uint256 deadline);
    /// @notice The response window is still open.
    error ResponseWindowOpen(bytes32 leaseId, uint256 deadline);
    /// @notice The chunk does not have the length its position implies.
    error BadChunkLength(uint256 got, uint256 want);
    /// @notice What was shown is consistent with a well-formed tree: not malformed.
    error NotMalformed(bytes32 leaseId);
    /// @notice Nothing to withdraw.
    error NothingToWithdrawEth(address account);
    /// @notice A zero key hash binds nothing.
    error InvalidCertificate();

    /// @param market_ The market (which must add this contract with `addModule`).
    /// @param challengeWindow_ Seconds a result is held and can be challenged.
    /// @param startWindow_ Seconds a provider has to acknowledge a new lease.
    /// @param staleGrace_ Seconds a reported heartbeat lapse must last to be slashable.
    /// @param deadlineGrace_ Seconds after a batch lease's end its result is still accepted
    /// (shorter than `challengeWindow_`: a result posted in the grace must still be challengeable).
    /// @param responseWindow_ Seconds to reveal a challenged chunk.
    /// @param challengeBond_ Wei bonded per challenge (covers the answer's gas).
    /// @param faultFeeBps_ A third-party reporter's share of a fault's refund and compensation.
    /// @param tenantPriority_ Seconds after a fault becomes provable during which proofs earn no fee.
    constructor(
        IMarket market_,
        uint48 challengeWindow_,
        uint32 startWindow_,
        uint32 staleGrace_,
        uint32 deadlineGrace_,
        uint32 responseWindow_,
        uint256 challengeBond_,
        uint16 faultFeeBps_,
        uint32 tenantPriority_
    ) {
        if (
            address(market_) == address(0) || challengeWindow_ == 0 || startWindow_ == 0 || staleGrace_ == 0
                || deadlineGrace_ == 0 || deadlineGrace_ >= challengeWindow_ || responseWindow_ == 0
                || faultFeeBps_ > 1_000
        ) {
            revert InvalidResult();
        }
        market = market_;
        staking = IStaking(market_.staking());
        _marketHorizon = IMarketAdmin(address(market_)).faultHorizon();
        challengeWindow = challengeWindow_;
        startWindow = startWindow_;
        staleGrace = staleGrace_;
        deadlineGrace = deadlineGrace_;
        responseWindow = responseWindow_;
        challengeBond = challengeBond_;
        faultFeeBps = faultFeeBps_;
        tenantPriority = tenantPriority_;
    }

    // ================================================================ provider

    /// @notice The provider's operator confirms it runs the lease (within `startWindow` of its
    /// start). Posting a result also counts; an instant order's winning bid already did. Repeating
    /// it is a no-op, so a node may retry.
    function acknowledge(bytes32 leaseId) external {
        // Flag first, check after: a failed check reverts the flag with it (one call to the market).
        (uint256 a, uint256 d) = market.moduleFlag(leaseId, L.F_ACKED, 0);
        if (L.status(a) != IMarket.Status.Leased) revert LeaseNotRunning(leaseId);
        address provider = L.provider(d);
        _onlyOperatorOf(provider);
        if (L.flags(a) & L.F_ACKED != 0) return;
        // Unacknowledged leases are never paid, so `settledAt` is still their start.
        uint256 start = L.settledAt(a);
        if (block.timestamp > start + startWindow) revert StartWindowOver(leaseId, start + startWindow);
        emit LeaseAcknowledged(leaseId, provider, uint32(block.timestamp - start));
    }

    /// @notice Post the result of a running batch lease (the provider's operator, once, by its end
    /// + `deadlineGrace`; an unacknowledged lease only within its start window, which the post then
    /// acknowledges). Its pay stops and is held for the challenge window.
    /// @param root Root of the `ResultTree` over the result (for `matmul_i8`: C).
    /// @param size The result's length in bytes (an empty result is a tree of one empty leaf).
    /// @param uri Where the tenant downloads it.
    /// @param metaHash Hash of result metadata (timings, logs, exit status).
    function postResult(bytes32 leaseId, bytes32 root, uint64 size, string calldata uri, bytes32 metaHash)
        external
    {
        if (root == bytes32(0) || size > ResultTree.MAX_SIZE) revert InvalidResult();
        // The market holds the pay only for a valid post; every check below reverts it otherwise.
        (uint256 a, uint256 d) = market.resultPosted(leaseId, deadlineGrace);
        if (L.status(a) != IMarket.Status.Leased) revert LeaseNotRunning(leaseId);
        uint8 kind = L.kind(a);
        if (kind == L.KIND_HELD) revert ResultAlreadyPosted(leaseId);
        if (kind == L.KIND_SERVICE) revert NotABatchJob(leaseId);
        // The same timestamp decides a result and a missed-deadline proof, so their order in a
        // block does not matter (MEC-10): a result at end + grace stands, one second later fails.
        uint256 deadline = L.end(a) + deadlineGrace;
        if (block.timestamp > deadline) revert DeadlinePassed(leaseId, deadline);
        // A result does not erase a no-show already incurred: an unacknowledged lease past its start
        // window takes no result (it is a no-show; MEC-05).
        uint256 start = L.settledAt(a);
        if (L.flags(a) & L.F_ACKED == 0 && block.timestamp > start + startWindow) {
            revert StartWindowOver(leaseId, start + startWindow);
        }
        address provider = L.provider(d);
        _onlyOperatorOf(provider);
        _results[leaseId] = ResultTree.commitment(root, size);
        emit ResultPosted(leaseId, provider, root, size, uri, metaHash);
    }

    /// @notice Bind the TLS key the provider's node serves service lease `leaseId` with: the
    /// SHA-256 of its certificate's DER SubjectPublicKeyInfo (what `curl --pinnedpubkey sha256//`
    /// takes). A client of the service reads it here and refuses any other key (ACC-03), so a node
    /// can serve another key only after binding it again, in the open (each binding is an event).
    /// The provider's operator, while the lease runs.
    function bindCertificate(bytes32 leaseId, bytes32 spkiHash) external {
        if (spkiHash == bytes32(0)) revert InvalidCertificate();
        // Through the market, which refuses a lease of another module (`NotLeaseModule`): a
        // binding lives on the lease's own module, where its clients read it. No flag changes.
        (uint256 a, uint256 d) = market.moduleFlag(leaseId, 0, 0);
        if (L.status(a) != IMarket.Status.Leased) revert LeaseNotRunning(leaseId);
        if (L.kind(a) != L.KIND_SERVICE) revert NotAServiceLease(leaseId);
        address provider = L.provider(d);
        _onlyOperatorOf(provider);
        _certificates[leaseId] = spkiHash;
        emit CertificateBound(leaseId, provider, spkiHash);
    }

    // ================================================================ data availability

    /// @notice Challenge chunk `index` of the posted result (`root`, `size`) of `leaseId`, bonding
    /// `challengeBond` wei. Within the challenge window, also after the tenant accepted the result.
    function challenge(bytes32 leaseId, bytes32 root, uint64 size, uint256 index) external payable nonReentrant {
        if (msg.value != challengeBond) revert BadBond(msg.value, challengeBond);
        _heldResult(leaseId, root, size);
        uint256 leaves = ResultTree.leafCount(size);
        if (index >= leaves) revert ChunkOutOfRange(index, leaves);
        Challenge storage c = _challenges[leaseId][index];
        if (c.challenger != address(0)) revert ChallengeOpen(leaseId, index);
        uint48 deadline = uint48(block.timestamp) + responseWindow;
        (c.challenger, c.deadline) = (msg.sender, deadline);
        if (_openChallenges[leaseId]++ == 0) market.moduleFlag(leaseId, L.F_CHALLENGED, 0);
        emit ChunkChallenged(leaseId, msg.sender, index, deadline);
    }

    /// @notice Reveal challenged chunk `index` with its Merkle proof, within the response window.
    /// Anyone holding the data may answer; the bond goes to the caller.
    function answer(
        bytes32 leaseId,
        bytes32 root,
        uint64 size,
        uint256 index,
        bytes calldata chunk,
        bytes32[] calldata proof
    ) external nonReentrant {
        if (_results[leaseId] != ResultTree.commitment(root, size)) revert NoResult(leaseId);
        Challenge memory c = _challenges[leaseId][index];
        if (c.challenger == address(0)) revert NoChallenge(leaseId, index);
        if (block.timestamp > c.deadline) revert ResponseWindowOver(leaseId, c.deadline);
        uint256 want = ResultTree.leafLength(size, index);
        if (chunk.length != want) revert BadChunkLength(chunk.length, want);
        ResultTree.verifyLeaf(root, index, ResultTree.leafCount(size), chunk, proof);
        _endChallenge(leaseId, index, true);
        emit ChunkRevealed(leaseId, index, chunk);
        _sendEth(msg.sender, challengeBond);
    }

    /// @notice Chunk `index` was not revealed in time: the result fails (the lease is refunded and
    /// its collateral slashed) and the bond goes back to its challenger. If the lease was already
    /// faulted or is past its horizon, the challenge is only voided and the bond refunded.
    function proveUnavailable(bytes32 leaseId, uint256 index) external nonReentrant returns (uint256 slashed) {
        Challenge memory c = _challenges[leaseId][index];
        if (c.challenger == address(0)) revert NoChallenge(leaseId, index);
        if (block.timestamp <= c.deadline) revert ResponseWindowOpen(leaseId, c.deadline);
        _endChallenge(leaseId, index, false);
        if (_faultable(leaseId)) {
            // The fee, if any, goes to the challenger, who bonded and found the fault; if it leaves
            // the proof a response window past the tenant's priority, to whoever proves it, so an
            // unanswered challenge never stays unproven (holding the lease) for want of a fee.
            address finder =
                block.timestamp > uint256(c.deadline) + tenantPriority + responseWindow ? msg.sender : c.challenger;
            slashed = _fault(leaseId, "unavailable", c.deadline, finder);
        } else {
            emit ChallengeVoided(leaseId, index);
        }
        _sendEth(c.challenger, challengeBond);
    }

    /// @notice Prove in one transaction that the posted tree is not a well-formed tree of its size:
    /// at `level` 0 and a real leaf position, `data` is a preimage of that leaf with the wrong length;
    /// otherwise `data` is the 32-byte node at (`level`, `index`), whose subtree lies entirely in the
    /// padding, and it is not the all-zero subtree. `proof` runs from that node to the root.
    function proveMalformed(
        bytes32 leaseId,
        bytes32 root,
        uint64 size,
        uint256 level,
        uint256 index,
        bytes calldata data,
        bytes32[] calldata proof
    ) external returns (uint256 slashed) {
        _heldResult(leaseId, root, size);
        uint256 leaves = ResultTree.leafCount(size);
        uint256 height = ResultTree.depth(leaves);
        if (level > height || index >> (height - level) != 0) revert NotMalformed(leaseId);
        bytes32 node;
        if (level == 0 && index < leaves) {
            if (data.length == ResultTree.leafLength(size, index)) revert NotMalformed(leaseId);
            node = ResultTree.leafHash(data);
        } else {
            if (index << level < leaves || data.length != 32) revert NotMalformed(leaseId);
            node = bytes32(data);
            if (node == ResultTree.zeroHash(level)) revert NotMalformed(leaseId);
        }
        ResultTree.verifyNode(root, node, index, height - level, proof);
        slashed = _fault(leaseId, "malformed-result", _postedAt(leaseId));
    }

    // ================================================================ wrong matmul results

    /// @notice Prove that element (i, j) of the `matmul_i8` result of `leaseId` is wrong, or that
    /// the result does not have the product's size (then `i`, `j`, `leaf`, `proof` are not read).
    /// @param tenant The order's tenant and `terms` its parameters: together they hash to the id.
    /// @param job The job's seed and shape; must hash to `terms.specHash`.
    /// @param leaf The result leaf holding (i, j); `proof` its Merkle siblings, bottom-up.
    function proveMatmulFraud(
        bytes32 leaseId,
        address tenant,
        IMarket.OrderParams calldata terms,
        MatmulProof.Job calldata job,
        bytes32 root,
        uint64 size,
        uint256 i,
        uint256 j,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) external returns (uint256 slashed) {
        _matmulJob(leaseId, tenant, terms, MatmulProof.specHash(job), root, size);
        if (size != uint256(job.m) * job.n * 4) return _fault(leaseId, "malformed-result", _postedAt(leaseId));
        (int256 claimed, int256 correct) = MatmulProof.check(job, root, i, j, leaf, proof);
        slashed = _matmulFault(leaseId, i, j, claimed, correct);
    }

    /// @notice `proveMatmulFraud` for a `matmul_i8` job whose inputs are data committed by the
    /// tenant (A by rows, B by columns): `ops` carries row i of A and column j of B with their
    /// Merkle proofs against the roots in `job`, which must hash to `terms.specHash`.
    function proveMatmulDataFraud(
        bytes32 leaseId,
        address tenant,
        IMarket.OrderParams calldata terms,
        MatmulProof.DataJob calldata job,
        bytes32 root,
        uint64 size,
        uint256 i,
        uint256 j,
        MatmulProof.Operands calldata ops,
        bytes calldata leaf,
        bytes32[] calldata proof
    ) external returns (uint256 slashed) {
        _matmulJob(leaseId, tenant, terms, MatmulProof.dataSpecHash(job), root, size);
        if (size != uint256(job.m) * job.n * 4) return _fault(leaseId, "malformed-result", _postedAt(leaseId));
        (int256 claimed, int256 correct) = MatmulProof.checkData(job, root, i, j, ops, leaf, proof);
        slashed = _matmulFault(leaseId, i, j, claimed, correct);
    }

    // ================================================================ liveness faults

    /// @notice Prove that the provider neither acknowledged nor posted a result within
    /// `startWindow` of the lease start (also after the lease was closed, when the window had passed
    /// by the close).
    function proveNoShow(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms)
        external
        returns (uint256 slashed)
    {
        _checkTerms(leaseId, tenant, terms);
        (uint256 a,) = L.lease(market, leaseId);
        // Until now, or until the close when the market still holds the collateral.
        uint256 until = _activeUntil(leaseId, a);
        // The lease end has not moved: it has no result (else it would be acknowledged).
        uint256 start = L.end(a) - terms.maxDuration;
        if (L.flags(a) & L.F_ACKED != 0 || until <= start + startWindow) revert NotANoShow(leaseId);
        slashed = _fault(leaseId, "no-show", start + startWindow);
    }

    /// @notice Prove that a batch lease reached its end + `deadlineGrace` without a result (also
    /// after the tenant closed it past that point).
    function proveMissedDeadline(bytes32 leaseId) external returns (uint256 slashed) {
        (uint256 a,) = L.lease(market, leaseId);
        uint256 until = _activeUntil(leaseId, a);
        if (L.kind(a) == L.KIND_SERVICE) revert NotABatchJob(leaseId);
        uint256 deadline = L.end(a) + deadlineGrace;
        if (L.kind(a) != L.KIND_BATCH || until <= deadline) revert DeadlineNotMissed(leaseId, deadline);
        slashed = _fault(leaseId, "missed-deadline", deadline);
    }

    /// @notice Report that the provider of a running service lease has no fresh heartbeat. Starts
    /// the grace after which the lapse can be slashed; the report is observed on chain, so a lapse
    /// caused by a chain halt is only reported after blocks resume, and the provider's first
    /// heartbeat after it clears it (STK-11).
    function reportStale(bytes32 leaseId) external {
        (uint256 a, uint256 d) = _running(leaseId);
        if (L.kind(a) != L.KIND_SERVICE) revert NotAServiceLease(leaseId);
        // The lapse must be able to last the whole grace inside the lease: a provider owes no
        // heartbeat after its lease ends, and a lapse cut short by the end is paid for nothing.
        if (block.timestamp + staleGrace >= L.end(a)) revert TooLateToReport(leaseId, L.end(a));
        address provider = L.provider(d);
        IStaking.Liveness memory live = staking.liveness(provider);
        if (block.timestamp <= uint256(live.at) + live.period) revert ProviderLive(provider);
        Stale memory s = _stale[leaseId];
        // A report older than the provider's last heartbeat is void: start again.
        if (s.since == 0 || live.at >= s.since) {
            s = Stale(uint48(block.timestamp), live.epoch);
            _stale[leaseId] = s;
            market.moduleFlag(leaseId, L.F_STALE, 0);
        }
        emit StaleReported(leaseId, provider, s.since);
    }

    /// @notice Prove a heartbeat lapse reported at least `staleGrace` before its provider beat again
    /// (or before now, if it has not). Also after the lease closed, for a report made before.
    function proveStaleHeartbeat(bytes32 leaseId) external returns (uint256 slashed) {
        Stale memory s = _stale[leaseId];
        (uint256 a, uint256 d) = L.lease(market, leaseId);
        _activeUntil(leaseId, a);
        uint256 provable = uint256(s.since) + staleGrace;
        if (s.since == 0 || block.timestamp <= provable) revert StaleNotProven(leaseId, s.since == 0 ? 0 : provable);
        address provider = L.provider(d);
        IStaking.Liveness memory live = staking.liveness(provider);
        // The lapse reported in epoch e ended with the first heartbeat of epoch e + 1.
        if (live.epoch != s.epoch) {
            uint48 back = staking.epochStartOf(provider, s.epoch + 1);
            if (back <= provable) revert HeartbeatResumed(leaseId, back);
        }
        slashed = _fault(leaseId, "stale-heartbeat", provable);
    }

    // ================================================================ wei

    /// @notice Withdraw wei that could not be sent to the caller.
    function withdrawEth(address payable to) external nonReentrant returns (uint256 amount) {
        amount = _ethCredits[msg.sender];
        if (amount == 0) revert NothingToWithdrawEth(msg.sender);
        _ethCredits[msg.sender] = 0;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert NothingToWithdrawEth(to);
    }

    // ================================================================ views

    /// @notice The commitment `keccak256(abi.encode(root, size))` of the result of `leaseId`.
    function resultOf(bytes32 leaseId) external view returns (bytes32) {
        return _results[leaseId];
    }

    /// @notice The open challenge of chunk `index` of `leaseId`'s result, if any.
    function challengeOf(bytes32 leaseId, uint256 index) external view returns (Challenge memory) {
        return _challenges[leaseId][index];
    }

    /// @notice Open challenges of `leaseId`'s result.
    function openChallenges(bytes32 leaseId) external view returns (uint256) {
        return _openChallenges[leaseId];
    }

    /// @notice The reported heartbeat lapse of `leaseId`, if any.
    function staleOf(bytes32 leaseId) external view returns (Stale memory) {
        return _stale[leaseId];
    }

    /// @notice The SHA-256 of the SubjectPublicKeyInfo of the TLS key bound to service lease
    /// `leaseId` (zero: none). Clients check the lease still runs: a key outlives its lease here.
    function certificateOf(bytes32 leaseId) external view returns (bytes32) {
        return _certificates[leaseId];
    }

    /// @notice Wei credited to `account`.
    function ethCreditOf(address account) external view returns (uint256) {
        return _ethCredits[account];
    }

    /// @inheritdoc IResultsModule
    function horizon() public view returns (uint256) {
        uint256 w = uint256(challengeWindow) + responseWindow;
        return (w > staleGrace ? w : staleGrace) + responseWindow;
    }

    /// @inheritdoc IResultsModule
    function staleVoid(bytes32 leaseId, address provider) external view returns (bool) {
        Stale memory s = _stale[leaseId];
        if (s.since == 0) return true;
        // As `proveStaleHeartbeat`: the lapse reported in epoch e ended with the first heartbeat of
        // epoch e + 1; it voids the report when it came within the grace.
        if (staking.liveness(provider).epoch == s.epoch) return false;
        return staking.epochStartOf(provider, s.epoch + 1) <= uint256(s.since) + staleGrace;
    }

    // ================================================================ internal

    /// @dev Slots A and D of a running lease.
    function _running(bytes32 leaseId) private view returns (uint256 a, uint256 d) {
        (a, d) = L.lease(market, leaseId);
        if (L.status(a) != IMarket.Status.Leased) revert LeaseNotRunning(leaseId);
    }

    /// @dev The time up to which a fault on the lease (slot A `a`) is judged: now while it runs, its
    /// close time when the market still holds its collateral; reverts otherwise.
    function _activeUntil(bytes32 leaseId, uint256 a) private view returns (uint256) {
        IMarket.Status status = L.status(a);
        if (status == IMarket.Status.Leased) return block.timestamp;
        if (status == IMarket.Status.Closed && L.flags(a) & L.F_HELD != 0) return L.settledAt(a);
        revert LeaseNotRunning(leaseId);
    }

    /// @dev Whether the market would take a fault on `leaseId` now.
    function _faultable(bytes32 leaseId) private view returns (bool) {
        (uint256 a,) = L.lease(market, leaseId);
        IMarket.Status status = L.status(a);
        return status == IMarket.Status.Leased
            || (
                status == IMarket.Status.Closed && L.flags(a) & L.F_HELD != 0
                    && block.timestamp <= L.settledAt(a) + _marketHorizon
            );
    }

    /// @dev Checks that `leaseId` holds the posted result (`root`, `size`) and that its challenge
    /// window is still open (a closed lease counts while the market holds it).
    function _heldResult(bytes32 leaseId, bytes32 root, uint64 size) private view {
        if (_results[leaseId] != ResultTree.commitment(root, size)) revert NoResult(leaseId);
        (uint256 a,) = L.lease(market, leaseId);
        _activeUntil(leaseId, a);
        if (L.kind(a) != L.KIND_HELD) revert NoResult(leaseId);
        // A held lease's end is the end of its hold: the result time + challengeWindow.
        uint256 until = L.end(a);
        if (block.timestamp > until) revert ChallengeWindowOver(leaseId, until);
    }

    /// @dev Checks a matmul proof's lease, terms, job and result.
    function _matmulJob(
        bytes32 leaseId,
        address tenant,
        IMarket.OrderParams calldata terms,
        bytes32 spec,
        bytes32 root,
        uint64 size
    ) private view {
        _heldResult(leaseId, root, size);
        _checkTerms(leaseId, tenant, terms);
        if (terms.jobKind != 1 || spec != terms.specHash) revert NotThisMatmulJob(terms.specHash, spec);
    }

    function _matmulFault(bytes32 leaseId, uint256 i, uint256 j, int256 claimed, int256 correct)
        private
        returns (uint256)
    {
        if (claimed == correct) revert NoFraud(i, j, correct);
        emit MatmulFraudProven(leaseId, msg.sender, i, j, claimed, correct);
        return _fault(leaseId, "wrong-result", _postedAt(leaseId));
    }

    /// @dev Fault `leaseId`, provable since `provableAt`: the caller is the reporter the market
    /// pays a fee to only once the tenant's priority has passed.
    function _fault(bytes32 leaseId, bytes32 kind, uint256 provableAt) private returns (uint256 slashed) {
        return _fault(leaseId, kind, provableAt, msg.sender);
    }

    /// @dev Fault `leaseId` for `finder`, who earns the fee if the tenant's priority has passed.
    function _fault(bytes32 leaseId, bytes32 kind, uint256 provableAt, address finder)
        private
        returns (uint256 slashed)
    {
        emit FaultProven(leaseId, msg.sender, kind);
        address reporter = block.timestamp > provableAt + tenantPriority ? finder : address(0);
        slashed = IMarketAdmin(address(market)).fault(leaseId, reporter, kind);
    }

    /// @dev When the held result of `leaseId` was posted (its hold ends `challengeWindow` later).
    function _postedAt(bytes32 leaseId) private view returns (uint256) {
        (uint256 a,) = L.lease(market, leaseId);
        return L.end(a) - challengeWindow;
    }

    /// @dev Close a challenge; the lease's flag clears with its last open challenge.
    function _endChallenge(bytes32 leaseId, uint256 index, bool clearFlag) private {
        delete _challenges[leaseId][index];
        if (--_openChallenges[leaseId] == 0 && clearFlag) market.moduleFlag(leaseId, 0, L.F_CHALLENGED);
    }

    /// @dev Send wei, crediting it when the recipient refuses (a challenger can never block a fault).
    function _sendEth(address to, uint256 amount) private {
        if (amount == 0) return;
        // Bounded gas: a recipient that burns gas cannot make the fault around it run out.
        (bool ok,) = payable(to).call{value: amount, gas: 50_000}("");
        if (!ok) {
            _ethCredits[to] += amount;
            emit EthCredited(to, amount);
        }
    }

    /// @dev The order terms and tenant hash to the lease id (so they are the tenant's own).
    function _checkTerms(bytes32 leaseId, address tenant, IMarket.OrderParams calldata terms) private pure {
        bytes32 id = keccak256(abi.encode(tenant, terms));
        if (id != leaseId) revert TermsMismatch(leaseId, id);
    }

    function _onlyOperatorOf(address provider) private view {
        if (staking.providerOf(msg.sender) != provider) revert NotLeaseOperator(msg.sender, provider);
    }
}
