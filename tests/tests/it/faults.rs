//! The fault-escape matrix (SECURITY MEC-01, MEC-02, MEC-05): each fault a provider can commit
//! crossed with each exit a party could try before it is proven. In v1 every fault had an exit;
//! here, whatever the exit does (revert or succeed), the fault still lands: the lease's collateral
//! is slashed in full, and a batch lease without a result pays its provider nothing.

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::OrderParams, Market, MarketAdmin, Results, Staking, Timelock,
    results::MatmulProof::Job,
};
use gridlease_tests::{evm::Receipt, fixture::*};
use gridlease_workload::{
    matmul::{Matmul, encode, localize, multiply},
    merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, leaf_hash, result_chunk},
};

const COLLATERAL: u128 = 100 * USDC;
/// Stake each provider holds; 1,000 of it unbonded long before, ready to withdraw.
const STAKE: u128 = 10_000 * USDC;
const PRE_UNBONDED: u128 = 1_000 * USDC;
/// A timelock delay that covers the results module's fault horizon (GOV-01).
const DELAY: u64 = CHALLENGE_WINDOW + 3 * RESPONSE_WINDOW;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    NoShow,
    MissedDeadline,
    StaleHeartbeat,
    WrongResult,
    Unavailable,
    Malformed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    ProviderClose,
    OperatorClose,
    TenantClose,
    ThirdPartyClose,
    TopUp,
    Acceptance,
    ModuleChange,
    UnbondWithdraw,
}

const FAULTS: [Fault; 6] = [
    Fault::NoShow,
    Fault::MissedDeadline,
    Fault::StaleHeartbeat,
    Fault::WrongResult,
    Fault::Unavailable,
    Fault::Malformed,
];
const EXITS: [Exit; 8] = [
    Exit::ProviderClose,
    Exit::OperatorClose,
    Exit::TenantClose,
    Exit::ThirdPartyClose,
    Exit::TopUp,
    Exit::Acceptance,
    Exit::ModuleChange,
    Exit::UnbondWithdraw,
];

/// A lease in the state where `fault` is incurred (or, for the result faults, committed and
/// provable), and what proving it needs.
struct Case {
    id: B256,
    params: OrderParams,
    posted: Option<Commitment>,
    wrong: Option<(Matmul, gridlease_workload::matmul::FraudProof)>,
    malformed: Option<(MerkleTree, u64)>,
    service: bool,
}

/// A suite owned by a timelock whose delay covers the horizon, with a second results module
/// already scheduled (so the "module change" exit can land at any moment), provider 0 staked with
/// part of its stake unbonded and released.
fn setup() -> (Suite, (Address, Bytes, B256)) {
    let mut s = Suite::with_timelock(DELAY);
    s.register(0, STAKE);
    let (owner, staking) = (s.provider(0), s.staking);
    s.chain
        .send(
            owner,
            staking,
            Staking::unbondCall {
                amount: U256::from(PRE_UNBONDED),
            },
        )
        .expect_success();
    let (gov, market) = (s.gov.address, s.market);
    let module2 = deploy_results(&mut s.chain, gov, market, CHALLENGE_WINDOW);
    let data: Bytes =
        alloy::sol_types::SolCall::abi_encode(&MarketAdmin::addModuleCall { module: module2 })
            .into();
    let salt = B256::repeat_byte(0x2d);
    let tl = s.timelock.expect("timelock");
    s.chain
        .send(
            gov,
            tl,
            Timelock::scheduleCall {
                target: market,
                value: U256::ZERO,
                data: data.clone(),
                predecessor: B256::ZERO,
                salt,
                delay: U256::from(DELAY),
            },
        )
        .expect_success();
    s.chain.warp(UNBONDING.max(DELAY));
    (s, (module2, data, salt))
}

fn matmul_job() -> Matmul {
    Matmul {
        seed: B256::repeat_byte(0x44),
        m: 40,
        k: 16,
        n: 30,
    }
}

fn incur(s: &mut Suite, fault: Fault) -> Case {
    let mut params = s.fresh_order(10 * USDC, PRICE * 2);
    params.collateral = U96::from(COLLATERAL);
    let mut case = Case {
        id: B256::ZERO,
        params: params.clone(),
        posted: None,
        wrong: None,
        malformed: None,
        service: false,
    };
    match fault {
        Fault::NoShow => {
            case.id = s.lease_with(0, 0, params);
            s.chain.warp(START_WINDOW + 1);
        }
        Fault::MissedDeadline => {
            case.id = s.lease_with(0, 0, params);
            s.ack(0, case.id).expect_success();
            s.chain.warp(3_600 + DEADLINE_GRACE + 1);
        }
        Fault::StaleHeartbeat => {
            s.heartbeat(0).expect_success();
            (params.jobKind, params.instant) = (2, true);
            case.params = params.clone();
            case.id = s.create(0, params);
            s.bid(0, case.id, PRICE).expect_success();
            case.service = true;
            s.chain.warp(HEARTBEAT + 1);
            let (k, results) = (s.keeper.address, s.results);
            s.chain
                .send(k, results, Results::reportStaleCall { leaseId: case.id })
                .expect_success();
            s.chain.warp(STALE_GRACE + 1);
        }
        Fault::WrongResult => {
            let job = matmul_job();
            (params.specHash, params.jobKind) = (job.spec_hash(), 1);
            case.params = params.clone();
            case.id = s.lease_with(0, 0, params);
            let mut c = multiply(&job.a(), &job.bt(), 40, 16, 30, 1);
            c[777] ^= 1;
            let f = localize(&job, &c, B256::repeat_byte(5)).expect("found");
            s.chain.warp(120);
            case.posted = Some(s.post(0, case.id, &encode(&c)).1);
            case.wrong = Some((job, f));
        }
        Fault::Unavailable => {
            case.id = s.lease_with(0, 0, params);
            s.chain.warp(120);
            // A root the provider cannot open: nobody can answer a challenge of it.
            let posted = Commitment {
                root: B256::repeat_byte(0x99),
                size: 4 * RESULT_LEAF_BYTES as u64,
            };
            s.post_commitment(0, case.id, posted).expect_success();
            let k = s.keeper.address;
            s.challenge(k, case.id, posted, 1).expect_success();
            s.chain.warp(RESPONSE_WINDOW + 1);
            case.posted = Some(posted);
        }
        Fault::Malformed => {
            case.id = s.lease_with(0, 0, params);
            s.chain.warp(120);
            let data: Vec<u8> = (0..3 * RESULT_LEAF_BYTES).map(|x| x as u8).collect();
            let mut leaves: Vec<B256> = (0..3).map(|i| leaf_hash(result_chunk(&data, i))).collect();
            leaves.push(B256::repeat_byte(0x77)); // garbage in the padding
            let t = MerkleTree::from_leaf_hashes(leaves);
            let posted = Commitment {
                root: t.root(),
                size: data.len() as u64,
            };
            s.post_commitment(0, case.id, posted).expect_success();
            case.posted = Some(posted);
            case.malformed = Some((t, 3));
        }
    }
    case
}

/// Try `exit` on the case; returns whether it succeeded (it may rightly revert).
fn try_exit(
    s: &mut Suite,
    case: &Case,
    exit: Exit,
    module_change: &(Address, Bytes, B256),
) -> bool {
    let (owner, op, tenant, k) = (s.provider(0), s.operator(0), s.tenant(0), s.keeper.address);
    let r: Receipt = match exit {
        Exit::ProviderClose => s.close(owner, case.id),
        Exit::OperatorClose => s.close(op, case.id),
        Exit::TenantClose | Exit::Acceptance => s.close(tenant, case.id),
        Exit::ThirdPartyClose => s.close(k, case.id),
        Exit::TopUp => s.top_up(tenant, case.id, USDC, owner),
        Exit::ModuleChange => {
            let (gov, tl, market) = (s.gov.address, s.timelock.expect("tl"), s.market);
            let (_, data, salt) = module_change;
            let r = s.chain.send(
                gov,
                tl,
                Timelock::executeCall {
                    target: market,
                    value: U256::ZERO,
                    payload: data.clone(),
                    predecessor: B256::ZERO,
                    salt: *salt,
                },
            );
            assert!(r.success, "the scheduled module change is ready");
            r
        }
        Exit::UnbondWithdraw => {
            let staking = s.staking;
            let free = s
                .chain
                .view(staking, Staking::bidderInfoCall { operator: op })
                .freeStake;
            s.chain
                .send(
                    owner,
                    staking,
                    Staking::unbondCall {
                        amount: U256::from(free),
                    },
                )
                .expect_success();
            s.chain
                .send(owner, staking, Staking::withdrawUnbondedCall { to: owner })
        }
    };
    r.success
}

fn prove(s: &mut Suite, fault: Fault, case: &Case) -> Receipt {
    let (k, results, tenant) = (s.keeper.address, s.results, s.tenant(0));
    match fault {
        Fault::NoShow => s.chain.send(
            k,
            results,
            Results::proveNoShowCall {
                leaseId: case.id,
                tenant,
                terms: case.params.clone().into(),
            },
        ),
        Fault::MissedDeadline => s.chain.send(
            k,
            results,
            Results::proveMissedDeadlineCall { leaseId: case.id },
        ),
        Fault::StaleHeartbeat => s.chain.send(
            k,
            results,
            Results::proveStaleHeartbeatCall { leaseId: case.id },
        ),
        Fault::WrongResult => {
            let (job, f) = case.wrong.as_ref().expect("wrong");
            let posted = case.posted.expect("posted");
            s.chain.send(
                k,
                results,
                Results::proveMatmulFraudCall {
                    leaseId: case.id,
                    tenant,
                    terms: case.params.clone().into(),
                    job: Job {
                        seed: job.seed,
                        m: job.m,
                        k: job.k,
                        n: job.n,
                    },
                    root: posted.root,
                    size: posted.size,
                    i: U256::from(f.i),
                    j: U256::from(f.j),
                    leaf: f.leaf.clone().into(),
                    proof: f.proof.clone(),
                },
            )
        }
        Fault::Unavailable => s.chain.send(
            k,
            results,
            Results::proveUnavailableCall {
                leaseId: case.id,
                index: U256::from(1),
            },
        ),
        Fault::Malformed => {
            let (t, index) = case.malformed.as_ref().expect("malformed");
            let posted = case.posted.expect("posted");
            s.chain.send(
                k,
                results,
                Results::proveMalformedCall {
                    leaseId: case.id,
                    root: posted.root,
                    size: posted.size,
                    level: U256::ZERO,
                    index: U256::from(*index),
                    data: t.node(0, *index).to_vec().into(),
                    proof: t.proof(*index),
                },
            )
        }
    }
}

fn stake_of(s: &mut Suite) -> u128 {
    s.provider_info(0).stake.to()
}

#[test]
fn every_fault_lands_after_every_exit_mec01_mec02_mec05() {
    let mut escaped = Vec::new();
    let mut exits_taken = 0;
    for fault in FAULTS {
        for exit in EXITS {
            let (mut s, module_change) = setup();
            let case = incur(&mut s, fault);
            let stake_before = stake_of(&mut s);
            let credit_before = s.credit(s.provider(0));
            if try_exit(&mut s, &case, exit, &module_change) {
                exits_taken += 1;
            }
            let r = prove(&mut s, fault, &case);
            if !r.success {
                escaped.push(format!(
                    "{fault:?} after {exit:?}: proof reverted 0x{}",
                    alloy::hex::encode(&r.output)
                ));
                continue;
            }
            let faulted = r.event::<Market::LeaseFaulted>();
            let slashed: u128 = faulted.slashed.to();
            // Whatever the exit unbonded, the stake fell by the collateral on top of it.
            let unbonded = if exit == Exit::UnbondWithdraw {
                stake_before - COLLATERAL
            } else {
                0
            };
            assert_eq!(
                stake_before - stake_of(&mut s),
                slashed + unbonded,
                "{fault:?}/{exit:?}"
            );
            if slashed != COLLATERAL {
                escaped.push(format!("{fault:?} after {exit:?}: slashed {slashed}"));
            }
            // A batch lease without a (standing) result pays its provider nothing.
            if !case.service && exit != Exit::Acceptance && exit != Exit::TenantClose {
                let paid = s.credit(s.provider(0)) - credit_before;
                if paid != 0 {
                    escaped.push(format!("{fault:?} after {exit:?}: provider paid {paid}"));
                }
            }
            // The collateral is gone from the lock, nothing else is.
            assert_eq!(s.provider_info(0).locked, U96::ZERO, "{fault:?}/{exit:?}");
        }
    }
    assert!(escaped.is_empty(), "escapes:\n{}", escaped.join("\n"));
    // Some exits revert (that is the point for the provider's), but most succeed: the matrix is
    // not vacuous.
    assert!(exits_taken >= 20, "only {exits_taken} exits succeeded");
}

#[test]
fn a_provider_that_abandons_a_batch_lease_is_slashed_at_once_and_paid_nothing_mec01() {
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(3_599);
    let (owner, op, market, tenant) = (s.provider(0), s.operator(0), s.market, s.tenant(0));
    // v1: a close at end - 1 paid 3,599 of 3,600 s. Now the close reverts...
    assert!(!s.close(op, id).success);
    assert!(!s.close(owner, id).success);
    // ...and abandoning is the fault: full refund, collateral slashed.
    let before = s.balance(s.token, tenant);
    let r = s
        .chain
        .send(op, market, MarketAdmin::abandonCall { leaseId: id })
        .expect_success();
    let f = r.event::<Market::LeaseFaulted>();
    assert_eq!(f.kind, B256::right_padding_from(b"abandoned"));
    assert_eq!(f.slashed.to::<u128>(), COLLATERAL);
    assert_eq!(s.balance(s.token, tenant) - before, 10 * USDC);
    assert_eq!(s.credit(owner), 0);
}

#[test]
fn expiry_and_exhaustion_no_longer_close_a_batch_lease_without_a_result_mec02() {
    // v1: a third party's expiry or exhaustion close paid the provider in full and raced the
    // missed-deadline proof; with a deposit below rate x duration it landed before the end.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, USDC / 2); // 500 s at the rate: "exhausted" half way
    let k = s.keeper.address;
    let start: u64 = s.job(id).settledAt.to();
    for t in [600, 3_600, 3_600 + DEADLINE_GRACE] {
        s.chain.set_time(start + t);
        assert!(!s.close(k, id).success, "no close at +{t}");
    }
    s.chain.warp(1);
    let results = s.results;
    let r = s
        .chain
        .send(k, results, Results::proveMissedDeadlineCall { leaseId: id })
        .expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().refund.to::<u128>(),
        USDC / 2
    );
    assert_eq!(s.credit(s.provider(0)), 0);
}

#[test]
fn no_pay_is_released_before_it_is_earned_so_nothing_needs_clawing_back_mec06() {
    // MEC-06's bound, by construction: pay released before a fault is proven is pay the fault
    // cannot show unearned. A running batch lease releases nothing (settle skips it), so every
    // fault on it refunds the whole escrow; a service lease releases only live time; the one
    // release a later fault can undo is the tenant's own acceptance of a result, which the slash
    // compensates up to the collateral the tenant asked for (`results.rs`, MEC-05/MEC-07).
    let mut s = Suite::new();
    let k = s.keeper.address;
    let batch = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(3_000);
    let r = s.settle(k, vec![batch]).expect_success();
    assert!(
        r.events::<Market::LeaseSettled>().is_empty(),
        "a running batch lease pays nothing out"
    );
    s.chain.warp(600 + DEADLINE_GRACE + 1);
    let results = s.results;
    let r = s
        .chain
        .send(
            k,
            results,
            Results::proveMissedDeadlineCall { leaseId: batch },
        )
        .expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().refund.to::<u128>(),
        10 * USDC
    );

    // A service lease: settled while live, then its provider lapses for good.
    let service = s.service_lease(1, 1, 10 * USDC);
    let start: u64 = s.job(service).settledAt.to();
    s.keep_alive(1, 600);
    let live_until = s.chain.now() + HEARTBEAT;
    s.settle(k, vec![service]).expect_success();
    s.chain.warp(HEARTBEAT + 1);
    s.chain
        .send(k, results, Results::reportStaleCall { leaseId: service })
        .expect_success();
    s.chain.warp(STALE_GRACE + 1);
    let _ = s.settle(k, vec![service]);
    let r = s
        .chain
        .send(
            k,
            results,
            Results::proveStaleHeartbeatCall { leaseId: service },
        )
        .expect_success();
    let f = r.event::<Market::LeaseFaulted>();
    let paid = 10 * USDC - f.refund.to::<u128>();
    let rate = PRICE / 1_000_000_000_000; // 18-decimal per second -> USDC units
    assert!(
        paid <= rate * u128::from(live_until - start),
        "paid {paid} for at most {} live s",
        live_until - start
    );
}

#[test]
fn fault_evidence_is_domain_separated_by_chain_and_market_mec12() {
    use alloy::{primitives::keccak256, sol_types::SolValue};
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (op, market) = (s.operator(0), s.market);
    let r = s
        .chain
        .send(op, market, MarketAdmin::abandonCall { leaseId: id })
        .expect_success();
    let evidence = r.event::<Staking::Slashed>().evidence;
    let of = |chain: u64, m: Address| keccak256((U256::from(chain), m, id).abi_encode());
    assert_eq!(evidence, of(gridlease_tests::evm::CHAIN_ID, market));
    // The same lease id on another chain or another market is other evidence.
    assert_ne!(evidence, of(1, market));
    assert_ne!(
        evidence,
        of(gridlease_tests::evm::CHAIN_ID, Address::repeat_byte(1))
    );
    assert_ne!(evidence, id);
}
