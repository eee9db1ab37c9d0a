//! Results: result commitments and the one-transaction `matmul_i8` fraud proof, end to end in revm
//! (provider posts a wrong C, a keeper finds the wrong element with Freivalds and proves it; the
//! market closes the lease as Faulted, refunds the tenant and slashes the collateral).

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::{self, MarketErrors},
    MockStablecoin,
    Results::{self, ResultsErrors},
    Staking,
    results::{IMarket::OrderParams as ResultsOrder, MatmulProof::Job},
};
use gridlease_core::matmul::{
    FraudProof, Matmul, MatmulData, commit, localize, multiply, proof_for,
};
use gridlease_tests::{assert_revert, evm::Receipt, fixture::*};

const COLLATERAL: u128 = 100 * USDC;

struct Lease {
    id: B256,
    params: OrderParams,
    job: Matmul,
    /// The true product.
    c: Vec<i32>,
}

fn job(k: u32) -> Matmul {
    Matmul {
        seed: B256::repeat_byte(0x33),
        m: 12,
        k,
        n: 10,
    }
}

/// Tenant 0 orders `job`, provider 0 wins it.
fn lease(s: &mut Suite, job: Matmul) -> Lease {
    let mut params = s.order(10 * USDC, PRICE * 2);
    params.specHash = job.spec_hash();
    params.jobKind = 1;
    params.collateral = U96::from(COLLATERAL);
    let id = s.lease_with(0, 0, params.clone());
    let c = multiply(
        &job.a(),
        &job.bt(),
        job.m as usize,
        job.k as usize,
        job.n as usize,
        2,
    );
    Lease { id, params, job, c }
}

fn post(s: &mut Suite, id: B256, c: &[i32], from: Address) -> Receipt {
    let results = s.results;
    s.chain.send(
        from,
        results,
        Results::postResultCall {
            leaseId: id,
            root: commit(c).root(),
            uri: "https://provider.example/result".into(),
            metaHash: B256::repeat_byte(0x11),
        },
    )
}

fn call(l: &Lease, tenant: Address, p: &FraudProof) -> Results::proveMatmulFraudCall {
    Results::proveMatmulFraudCall {
        leaseId: l.id,
        tenant,
        terms: ResultsOrder::from(l.params.clone()),
        job: Job {
            seed: l.job.seed,
            m: l.job.m,
            k: l.job.k,
            n: l.job.n,
        },
        i: U256::from(p.i),
        j: U256::from(p.j),
        leaf: Bytes::from(p.leaf.clone()),
        proof: p.proof.clone(),
    }
}

fn prove(s: &mut Suite, from: Address, c: Results::proveMatmulFraudCall) -> Receipt {
    let results = s.results;
    s.chain.send(from, results, c)
}

/// C with one element flipped, and the keeper's fraud proof for it.
fn cheat(l: &Lease) -> (Vec<i32>, FraudProof) {
    let mut bad = l.c.clone();
    bad[7 * l.job.n as usize + 3] ^= 1 << 12;
    let p = localize(&l.job, &bad, B256::repeat_byte(0xaa)).expect("Freivalds finds it");
    (bad, p)
}

fn stake_of(s: &mut Suite, i: usize) -> (u128, u128) {
    let v = s.chain.view(
        s.staking,
        Staking::providerInfoCall {
            provider: s.provider(i),
        },
    );
    (v.stake, v.locked)
}

fn staking_credit(s: &mut Suite, who: Address) -> u128 {
    s.chain
        .view(s.staking, Staking::creditOfCall { account: who })
        .to()
}

#[test]
fn prove_matmul_fraud_closes_refunds_and_slashes_stk15() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(64));
    let (bad, p) = cheat(&l);
    let op = s.operator(0);
    post(&mut s, l.id, &bad, op).expect_success();
    s.chain.warp(100);
    let (tenant, keeper, treasury) = (s.tenant(0), s.keeper.address, s.treasury.address);
    let token = s.token;
    let before = s.balance(token, tenant);
    let (stake0, locked0) = stake_of(&mut s, 0);
    assert_eq!(locked0, COLLATERAL);

    let r = prove(&mut s, keeper, call(&l, tenant, &p)).expect_success();
    let e = r.event::<Market::LeaseFaulted>();
    assert_eq!(e.slashed, U256::from(COLLATERAL));
    let closed = r.event::<Market::LeaseClosed>();
    assert_eq!(closed.reason, 4, "Faulted");
    // Nothing unsettled is paid: all 10 USDC of escrow come back.
    assert_eq!(s.balance(token, tenant) - before, 10 * USDC);
    assert_eq!(s.job(l.id).status, 3);
    // Collateral slashed and released; tenant half first, reporter 10% of the rest, treasury.
    assert_eq!(stake_of(&mut s, 0), (stake0 - COLLATERAL, 0));
    assert_eq!(staking_credit(&mut s, tenant), COLLATERAL / 2);
    assert_eq!(staking_credit(&mut s, keeper), COLLATERAL / 20);
    assert_eq!(
        staking_credit(&mut s, treasury),
        COLLATERAL / 2 - COLLATERAL / 20
    );
    let fraud = r.event::<Results::MatmulFraudProven>();
    assert_eq!(
        (fraud.claimed, fraud.correct),
        (
            p.claimed.try_into().expect("i32"),
            p.correct.try_into().expect("i32")
        )
    );
    // The market holds nothing for this lease any more.
    let m = s.balance(token, s.market);
    assert_eq!(m, 0, "no escrow left behind");
}

#[test]
fn prove_matmul_fraud_reverts_against_a_correct_result_and_costs_only_gas_stk13() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(40));
    let op = s.operator(0);
    post(&mut s, l.id, &l.c, op).expect_success();
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let before = stake_of(&mut s, 0);
    for (i, j) in [(0, 0), (5, 7), (11, 9)] {
        let p = proof_for(&l.job, &l.c, i, j);
        let r = prove(&mut s, keeper, call(&l, tenant, &p));
        assert_revert!(r, ResultsErrors::NoFraud);
    }
    assert_eq!(stake_of(&mut s, 0), before);
    assert_eq!(s.job(l.id).status, 2, "the lease runs on");
}

#[test]
fn a_fault_is_proven_once_second_keeper_reverts_stk09_kpr03() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(33));
    let (bad, p) = cheat(&l);
    let op = s.operator(0);
    post(&mut s, l.id, &bad, op).expect_success();
    let (tenant, keeper, other) = (s.tenant(0), s.keeper.address, s.tenant(2));
    prove(&mut s, keeper, call(&l, tenant, &p)).expect_success();
    let r = prove(&mut s, other, call(&l, tenant, &p));
    assert_revert!(r, ResultsErrors::AlreadyFaulted);
    assert_eq!(staking_credit(&mut s, other), 0, "the reward is paid once");
}

#[test]
fn closing_early_does_not_escape_the_proof() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(16));
    let (bad, p) = cheat(&l);
    let op = s.operator(0);
    post(&mut s, l.id, &bad, op).expect_success();
    // The provider closes right after posting, forfeiting the held pay, taking its collateral.
    s.chain.warp(30);
    let r = s.close(op, l.id).expect_success();
    assert_eq!(
        r.event::<Market::LeaseClosed>().paid,
        0,
        "held pay forfeited"
    );
    let (stake0, locked0) = stake_of(&mut s, 0);
    assert_eq!(locked0, 0);
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let r = prove(&mut s, keeper, call(&l, tenant, &p)).expect_success();
    assert!(
        r.events::<Market::LeaseClosed>().is_empty(),
        "a closed lease is not closed again"
    );
    assert_eq!(
        stake_of(&mut s, 0),
        (stake0 - COLLATERAL, 0),
        "slashed from free stake"
    );
    assert_eq!(staking_credit(&mut s, tenant), COLLATERAL / 2);
}

#[test]
fn proofs_after_the_window_or_with_wrong_terms_revert() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, p) = cheat(&l);
    let op = s.operator(0);
    post(&mut s, l.id, &bad, op).expect_success();
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);

    // Terms of someone else (replay on another order): the id does not match.
    let other = s.tenant(1);
    let r = prove(&mut s, keeper, call(&l, other, &p));
    assert_revert!(r, ResultsErrors::TermsMismatch);
    // Other job parameters than the order's spec hash.
    let mut c = call(&l, tenant, &p);
    c.job.seed = B256::repeat_byte(0x34);
    assert_revert!(prove(&mut s, keeper, c), ResultsErrors::NotThisMatmulJob);
    // A malformed proof.
    let mut c = call(&l, tenant, &p);
    c.proof.pop();
    assert_revert!(prove(&mut s, keeper, c), ResultsErrors::BadProofLength);
    // Past the challenge window.
    s.chain.warp(CHALLENGE_WINDOW + 1);
    let r = prove(&mut s, keeper, call(&l, tenant, &p));
    assert_revert!(r, ResultsErrors::ChallengeWindowOver);
    // No result, no proof.
    let l2 = lease(&mut s, job(8));
    let p2 = proof_for(&l2.job, &l2.c, 0, 0);
    let r = prove(&mut s, keeper, call(&l2, tenant, &p2));
    assert_revert!(r, ResultsErrors::NoResult);
}

#[test]
fn post_result_only_by_the_lease_operator_once_while_running() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    let (op, stranger, owner) = (s.operator(0), s.tenant(1), s.provider(0));
    s.ensure_registered(1);
    let other_op = s.operator(1);
    assert_revert!(
        post(&mut s, l.id, &l.c, stranger),
        ResultsErrors::NotLeaseOperator
    );
    assert_revert!(
        post(&mut s, l.id, &l.c, other_op),
        ResultsErrors::NotLeaseOperator
    );
    // The owner key is not the operator: the operator posts.
    assert_revert!(
        post(&mut s, l.id, &l.c, owner),
        ResultsErrors::NotLeaseOperator
    );
    let r = post(&mut s, l.id, &l.c, op).expect_success();
    let e = r.event::<Results::ResultPosted>();
    assert_eq!(
        (e.leaseId, e.provider, e.root),
        (l.id, s.provider(0), commit(&l.c).root())
    );
    assert_revert!(
        post(&mut s, l.id, &l.c, op),
        ResultsErrors::ResultAlreadyPosted
    );
    let results = s.results;
    let zero = Results::postResultCall {
        leaseId: l.id,
        root: B256::ZERO,
        uri: String::new(),
        metaHash: B256::ZERO,
    };
    assert_revert!(
        s.chain.send(op, results, zero),
        ResultsErrors::InvalidResult
    );
    let unknown = B256::repeat_byte(9);
    assert_revert!(
        post(&mut s, unknown, &l.c, op),
        ResultsErrors::LeaseNotRunning
    );
}

#[test]
fn fault_only_from_the_results_contract_and_set_by_governance_adm() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    let (stranger, gov, market) = (s.tenant(1), s.gov.address, s.market);
    let provider = s.provider(0);
    let r = s.chain.send(
        stranger,
        market,
        Market::faultCall {
            leaseId: l.id,
            provider,
            tenant: stranger,
            collateral: U96::from(COLLATERAL),
            evidence: B256::ZERO,
            reporter: stranger,
        },
    );
    assert_revert!(r, MarketErrors::NotResults);
    let r = s.chain.send(
        stranger,
        market,
        Market::setResultsCall { results_: stranger },
    );
    assert!(!r.success, "only governance sets the results contract");
    let r = s.chain.send(
        gov,
        market,
        Market::setResultsCall {
            results_: Address::ZERO,
        },
    );
    assert_revert!(r, MarketErrors::ZeroAddressMarket);
    let results = s.results;
    assert_eq!(s.chain.view(market, Market::resultsCall {}), results);
    // The token balance is untouched by all of this.
    let token = s.token;
    let held: u128 = s
        .chain
        .view(token, MockStablecoin::balanceOfCall { account: market })
        .to();
    assert_eq!(held, 10 * USDC);
}

fn ack(s: &mut Suite, l: &Lease, from: Address) -> Receipt {
    let (results, tenant) = (s.results, s.tenant(0));
    let call = Results::acknowledgeCall {
        leaseId: l.id,
        tenant,
        terms: l.params.clone().into(),
    };
    s.chain.send(from, results, call)
}

fn no_show(s: &mut Suite, l: &Lease, from: Address) -> Receipt {
    let (results, tenant) = (s.results, s.tenant(0));
    let call = Results::proveNoShowCall {
        leaseId: l.id,
        tenant,
        terms: l.params.clone().into(),
    };
    s.chain.send(from, results, call)
}

fn missed(s: &mut Suite, l: &Lease, from: Address) -> Receipt {
    let (results, tenant) = (s.results, s.tenant(0));
    let call = Results::proveMissedDeadlineCall {
        leaseId: l.id,
        tenant,
        terms: l.params.clone().into(),
    };
    s.chain.send(from, results, call)
}

#[test]
fn no_show_is_slashed_after_the_start_window_not_before() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    let keeper = s.keeper.address;
    // Exactly at the end of the window the provider still has time.
    s.chain.warp(START_WINDOW);
    assert_revert!(no_show(&mut s, &l, keeper), ResultsErrors::NotANoShow);
    s.chain.warp(1);
    let (tenant, token) = (s.tenant(0), s.token);
    let before = s.balance(token, tenant);
    let r = no_show(&mut s, &l, keeper).expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().slashed,
        U256::from(COLLATERAL)
    );
    // Nothing was settled: the tenant gets all 10 USDC back and half the collateral as credit.
    assert_eq!(s.balance(token, tenant) - before, 10 * USDC);
    assert_eq!(staking_credit(&mut s, tenant), COLLATERAL / 2);
    assert_eq!(s.job(l.id).status, 3);
    // And only once.
    assert_revert!(no_show(&mut s, &l, keeper), ResultsErrors::LeaseNotRunning);
}

#[test]
fn acknowledged_or_resulted_leases_are_not_no_shows_and_late_acks_revert() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    let (op, keeper, stranger) = (s.operator(0), s.keeper.address, s.tenant(2));
    assert_revert!(ack(&mut s, &l, stranger), ResultsErrors::NotLeaseOperator);
    s.chain.warp(START_WINDOW);
    let r = ack(&mut s, &l, op).expect_success();
    assert_eq!(
        r.event::<Results::LeaseAcknowledged>().secondsAfterStart,
        START_WINDOW as u32
    );
    s.chain.warp(10);
    assert_revert!(no_show(&mut s, &l, keeper), ResultsErrors::NotANoShow);

    // A result counts as showing up.
    let l2 = lease(&mut s, job(9));
    post(&mut s, l2.id, &l2.c, op).expect_success();
    s.chain.warp(START_WINDOW + 1);
    assert_revert!(no_show(&mut s, &l2, keeper), ResultsErrors::NotANoShow);
    // Too late to acknowledge a third lease.
    let l3 = lease(&mut s, job(10));
    s.chain.warp(START_WINDOW + 1);
    assert_revert!(ack(&mut s, &l3, op), ResultsErrors::StartWindowOver);
}

#[test]
fn missed_result_deadline_is_slashed_and_a_late_result_cannot_race_it_stk12() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    let (op, keeper) = (s.operator(0), s.keeper.address);
    ack(&mut s, &l, op).expect_success();
    // Before the end (the deadline) there is nothing to prove.
    s.chain.warp(3_599);
    assert_revert!(missed(&mut s, &l, keeper), ResultsErrors::DeadlineNotMissed);
    s.chain.warp(1);
    // At the deadline a result is refused, whichever lands first in the block.
    assert_revert!(post(&mut s, l.id, &l.c, op), ResultsErrors::DeadlinePassed);
    let r = missed(&mut s, &l, keeper).expect_success();
    let e = r.event::<Results::LivenessFaultProven>();
    assert_eq!(e.kind, B256::right_padding_from(b"missed-deadline"));
    assert_eq!(stake_of(&mut s, 0).1, 0, "collateral released");

    // A lease with a result met its deadline; a service lease has none.
    let l2 = lease(&mut s, job(9));
    post(&mut s, l2.id, &l2.c, op).expect_success();
    s.chain.warp(3_600);
    assert_revert!(
        missed(&mut s, &l2, keeper),
        ResultsErrors::DeadlineNotMissed
    );
    s.ensure_registered(0);
    let mut params = s.order(10 * USDC, PRICE * 2);
    params.jobKind = 2;
    params.salt = B256::repeat_byte(0x5e);
    let id = s.create(0, params.clone());
    // A service order goes to a live provider only.
    let staking = s.staking;
    s.chain
        .send(op, staking, gridlease_bindings::Staking::heartbeatCall {})
        .expect_success();
    s.bid(0, id, PRICE).expect_success();
    s.chain.warp(601);
    s.chain
        .send(op, staking, gridlease_bindings::Staking::heartbeatCall {})
        .expect_success();
    s.award(keeper, id, vec![]).expect_success();
    s.chain.warp(3_600);
    let l3 = Lease {
        id,
        params,
        job: job(1),
        c: vec![],
    };
    assert_revert!(missed(&mut s, &l3, keeper), ResultsErrors::NotABatchJob);
}

/// Rate of `lease` in token units per second (PRICE at 18 decimals, a 6-decimal token).
const UNITS_PER_SECOND: u128 = PRICE / 1_000_000_000_000;

fn closed(r: &Receipt) -> Market::LeaseClosed {
    r.event::<Market::LeaseClosed>()
}

#[test]
fn a_posted_result_stops_accrual_and_holds_payment_and_collateral_for_the_window() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(16));
    let (op, keeper, tenant, token) = (s.operator(0), s.keeper.address, s.tenant(0), s.token);
    s.chain.warp(100);
    let posted_at = s.chain.now();
    post(&mut s, l.id, &l.c, op).expect_success();
    assert_eq!(
        s.job(l.id).end.to::<u64>(),
        posted_at,
        "the result ends the lease"
    );

    // During the window a keeper can neither settle nor close it: the pay is held.
    s.chain.warp(CHALLENGE_WINDOW);
    let r = s.settle(keeper, vec![l.id]).expect_success();
    assert!(
        r.events::<Market::LeaseSettled>().is_empty(),
        "nothing paid"
    );
    let r = s.close(keeper, l.id);
    assert_revert!(r, MarketErrors::LeaseNotClosable);
    assert_eq!(stake_of(&mut s, 0).1, COLLATERAL, "collateral still locked");

    // One second after the window anyone completes it: paid up to the result, not a second more.
    s.chain.warp(1);
    let before = s.balance(token, tenant);
    let r = s.close(keeper, l.id).expect_success();
    let e = closed(&r);
    assert_eq!(e.reason, 5, "Completed");
    assert_eq!(e.paid.to::<u128>(), 100 * UNITS_PER_SECOND);
    assert!(
        e.keeperFee.to::<u128>() > 0,
        "the keeper that completes it is paid"
    );
    assert_eq!(e.refund.to::<u128>(), 10 * USDC - 100 * UNITS_PER_SECOND);
    assert_eq!(s.balance(token, tenant) - before, e.refund.to::<u128>());
    assert_eq!(stake_of(&mut s, 0).1, 0, "collateral released");
}

#[test]
fn the_tenant_accepts_a_held_result_by_closing_and_pays_up_to_the_result() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(16));
    let (op, tenant) = (s.operator(0), s.tenant(0));
    s.chain.warp(40);
    post(&mut s, l.id, &l.c, op).expect_success();
    s.chain.warp(500);
    let e = closed(&s.close(tenant, l.id).expect_success());
    assert_eq!(e.reason, 0, "TenantClosed");
    assert_eq!(e.paid.to::<u128>(), 40 * UNITS_PER_SECOND);
    assert_eq!(e.keeperFee.to::<u128>(), 0);
    assert_eq!(stake_of(&mut s, 0).1, 0);
}

#[test]
fn a_fraud_proof_during_the_hold_refunds_everything_unsettled() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(16));
    let (bad, p) = cheat(&l);
    let (op, keeper, tenant, token) = (s.operator(0), s.keeper.address, s.tenant(0), s.token);
    s.chain.warp(50);
    s.settle(keeper, vec![l.id]).expect_success();
    s.chain.warp(50);
    post(&mut s, l.id, &bad, op).expect_success();
    s.chain.warp(CHALLENGE_WINDOW - 1);
    let before = s.balance(token, tenant);
    let r = prove(&mut s, keeper, call(&l, tenant, &p)).expect_success();
    assert_eq!(closed(&r).reason, 4, "Faulted");
    // The 50 seconds settled before stay paid; the 50 held ones come back.
    assert_eq!(
        s.balance(token, tenant) - before,
        10 * USDC - 50 * UNITS_PER_SECOND
    );
}

/// Tenant 0 orders a data `matmul_i8` job (A 6 x 40, B 40 x 5 given as bytes), provider 0 wins it;
/// the provider posts `c` with one element wrong.
fn data_lease(s: &mut Suite) -> (B256, OrderParams, MatmulData, Vec<i32>) {
    let (m, k, n) = (6u32, 40u32, 5u32);
    let a: Vec<u8> = (0..m * k).map(|x| (x * 31 + 7) as u8).collect();
    let b: Vec<u8> = (0..k * n).map(|x| (x * 17 + 200) as u8).collect();
    let d = MatmulData::from_row_major(m, k, n, a, &b).expect("shape");
    let mut params = s.order(10 * USDC, PRICE * 2);
    (params.specHash, params.jobKind) = (d.spec_hash(), 1);
    params.collateral = U96::from(COLLATERAL);
    let id = s.lease_with(0, 0, params.clone());
    let c = multiply(&d.a, &d.bt, m as usize, k as usize, n as usize, 1);
    (id, params, d, c)
}

#[test]
fn data_inputs_fraud_is_proven_with_a_row_and_a_column_stk15() {
    let mut s = Suite::new();
    let (id, params, d, c) = data_lease(&mut s);
    let mut bad = c.clone();
    bad[4 * 5 + 1] -= 3;
    let op = s.operator(0);
    post(&mut s, id, &bad, op).expect_success();
    let f = localize(&d, &bad, B256::repeat_byte(9)).expect("found");
    assert_eq!((f.i, f.j), (4, 1));
    let (tenant, keeper, results) = (s.tenant(0), s.keeper.address, s.results);

    // A tampered row does not verify against A's root.
    let mut call = data_fraud_call(id, tenant, params.clone(), &d, &f);
    let mut row = call.ops.aRow.to_vec();
    row[0] ^= 1;
    call.ops.aRow = row.into();
    assert_revert!(
        s.chain.send(keeper, results, call),
        ResultsErrors::NotInResult
    );
    // Roots other than the tenant's spec are refused; so is the seeded proof for a data job.
    let mut call = data_fraud_call(id, tenant, params.clone(), &d, &f);
    call.job.bRoot = B256::repeat_byte(1);
    assert_revert!(
        s.chain.send(keeper, results, call),
        ResultsErrors::NotThisMatmulJob
    );

    let r = s
        .chain
        .send(keeper, results, data_fraud_call(id, tenant, params, &d, &f))
        .expect_success();
    let e = r.event::<Results::MatmulFraudProven>();
    let (claimed, correct) = (e.claimed.as_i64(), e.correct.as_i64());
    assert_eq!((claimed, correct), (i64::from(bad[21]), i64::from(c[21])));
    assert_eq!(r.event::<Market::LeaseClosed>().reason, 4, "Faulted");
    assert_eq!(stake_of(&mut s, 0).1, 0);
}

#[test]
fn data_inputs_proof_against_a_correct_result_reverts_stk13() {
    let mut s = Suite::new();
    let (id, params, d, c) = data_lease(&mut s);
    let op = s.operator(0);
    post(&mut s, id, &c, op).expect_success();
    let (tenant, keeper, results) = (s.tenant(0), s.keeper.address, s.results);
    let f = proof_for(&d, &c, 5, 4);
    let r = s
        .chain
        .send(keeper, results, data_fraud_call(id, tenant, params, &d, &f));
    assert_revert!(r, ResultsErrors::NoFraud);
}
