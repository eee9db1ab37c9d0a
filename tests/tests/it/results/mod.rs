//! Results, protocol v2: acknowledgements, result commitments (1 KiB leaves), the hold, wrong and
//! malformed results, data availability, and the liveness faults, end to end in revm.

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::{self, MarketErrors},
    Results::{self, ResultsErrors},
    results::{IMarket::OrderParams as ResultsOrder, MatmulProof::Job},
};
use gridlease_core::{
    matmul::{FraudProof, Matmul, MatmulData, encode, localize, multiply, proof_for},
    merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, leaf_hash, result_chunk, zero_hash},
};
use gridlease_tests::{assert_revert, evm::Receipt, fixture::*};

const COLLATERAL: u128 = 100 * USDC;
/// Token units a lease at `PRICE` earns per second.
const PER_SEC: u128 = PRICE / 1_000_000_000_000;

struct Lease {
    id: B256,
    params: OrderParams,
    job: Matmul,
    /// The true product.
    c: Vec<i32>,
}

/// A 40 x k x 30 product: 1,200 elements, 4,800 bytes, five 1 KiB leaves (a padded tree of 8).
fn job(k: u32) -> Matmul {
    Matmul {
        seed: B256::repeat_byte(0x33),
        m: 40,
        k,
        n: 30,
    }
}

/// Tenant 0 orders `job`, provider 0 wins it (keeper-awarded: not acknowledged).
fn lease(s: &mut Suite, job: Matmul) -> Lease {
    let mut params = s.fresh_order(10 * USDC, PRICE * 2);
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

fn fraud_call(
    l: &Lease,
    tenant: Address,
    posted: Commitment,
    p: Option<&FraudProof>,
) -> Results::proveMatmulFraudCall {
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
        root: posted.root,
        size: posted.size,
        i: U256::from(p.map_or(0, |p| p.i)),
        j: U256::from(p.map_or(0, |p| p.j)),
        leaf: Bytes::from(p.map(|p| p.leaf.clone()).unwrap_or_default()),
        proof: p.map(|p| p.proof.clone()).unwrap_or_default(),
    }
}

fn send_results<C: alloy::sol_types::SolCall>(s: &mut Suite, from: Address, call: C) -> Receipt {
    let results = s.results;
    s.chain.send(from, results, call)
}

/// A wrong product: one element of row 33 changed.
fn cheat(l: &Lease) -> (Vec<i32>, FraudProof) {
    let mut bad = l.c.clone();
    bad[33 * 30 + 7] += 5;
    let f = localize(&l.job, &bad, B256::repeat_byte(9)).expect("the fraud is found");
    (bad, f)
}

fn closed(r: &Receipt) -> Market::LeaseClosed {
    r.event::<Market::LeaseClosed>()
}

// ------------------------------------------------------------------ wrong results

#[test]
fn prove_matmul_fraud_refunds_everything_and_slashes_the_collateral_stk15() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    assert_eq!((f.i, f.j), (33, 7));
    s.chain.warp(200);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let before = s.balance(s.token, tenant);
    // A third party proving it after the tenant's priority earns its fee.
    s.chain.warp(TENANT_PRIORITY + 1);
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&f))).expect_success();
    let e = r.event::<Results::MatmulFraudProven>();
    assert_eq!(
        (e.claimed.as_i64(), e.correct.as_i64()),
        (i64::from(bad[997]), i64::from(l.c[997]))
    );
    assert_eq!(closed(&r).reason, 4, "Faulted");
    let fault = r.event::<Market::LeaseFaulted>();
    assert_eq!(fault.kind, B256::right_padding_from(b"wrong-result"));
    // Nothing was paid for the held result: the tenant gets it all back, less the reporter's 5%
    // fee; it lost nothing, so the slash compensates it nothing and goes to the treasury (MEC-07).
    let fee = 10 * USDC * u128::from(FAULT_FEE_BPS) / 10_000;
    assert_eq!(fault.refund.to::<u128>(), 10 * USDC);
    assert_eq!(s.balance(s.token, tenant) - before, 10 * USDC - fee);
    assert_eq!(s.credit(keeper), fee);
    assert_eq!(fault.compensation, U256::ZERO);
    assert_eq!(s.staking_credit(s.treasury.address), COLLATERAL);
    let info = s.provider_info(0);
    assert_eq!(
        (info.stake.to::<u128>(), info.locked.to::<u128>()),
        (10_000 * USDC - COLLATERAL, 0)
    );
    assert_eq!(s.credit(s.provider(0)), 0, "paid nothing");
}

#[test]
fn a_third_party_proof_within_the_tenants_priority_earns_no_fee() {
    // The provider's own keys cannot race an honest tenant to charge it for proving their fault:
    // the fee starts only once the tenant had `TENANT_PRIORITY` to act itself.
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    s.chain.warp(TENANT_PRIORITY);
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let before = s.balance(s.token, tenant);
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&f))).expect_success();
    assert_eq!(r.event::<Market::LeaseFaulted>().reporter, Address::ZERO);
    assert_eq!(s.balance(s.token, tenant) - before, 10 * USDC);
    assert_eq!(s.credit(keeper), 0);
}

#[test]
fn a_tenant_proving_its_own_lease_pays_no_fee() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    let tenant = s.tenant(0);
    let before = s.balance(s.token, tenant);
    send_results(&mut s, tenant, fraud_call(&l, tenant, posted, Some(&f))).expect_success();
    assert_eq!(s.balance(s.token, tenant) - before, 10 * USDC);
}

#[test]
fn prove_matmul_fraud_reverts_against_a_correct_result_and_costs_only_gas_stk13() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (_, posted) = s.post(0, l.id, &encode(&l.c));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let f = proof_for(&l.job, &l.c, 33, 7);
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&f)));
    assert_revert!(r, ResultsErrors::NoFraud);
    // A leaf proven at another position, or a tampered proof, is not in the result.
    let mut moved = f.clone();
    moved.j = 8;
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&moved)));
    assert!(!r.success);
    assert_eq!(s.job(l.id).status, 2, "still running");
}

#[test]
fn a_fault_is_proven_once_second_keeper_reverts_stk09_kpr03() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    let (tenant, k1, k2) = (s.tenant(0), s.keeper.address, s.tenants[3].address);
    send_results(&mut s, k1, fraud_call(&l, tenant, posted, Some(&f))).expect_success();
    let r = send_results(&mut s, k2, fraud_call(&l, tenant, posted, Some(&f)));
    assert_revert!(r, ResultsErrors::LeaseNotRunning);
    assert_eq!(s.credit(k2), 0);
}

#[test]
fn a_result_of_the_wrong_size_is_malformed_in_one_transaction_mec03() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    // The provider posts the product without its last row: a well-formed tree of the wrong size.
    let short = encode(&l.c[..39 * 30]);
    let (_, posted) = s.post(0, l.id, &short);
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, None)).expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().kind,
        B256::right_padding_from(b"malformed-result")
    );
}

#[test]
fn proofs_after_the_window_or_with_wrong_terms_revert() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    // Another tenant (terms that do not hash to the id), another root, another job.
    let r = send_results(&mut s, keeper, fraud_call(&l, keeper, posted, Some(&f)));
    assert_revert!(r, ResultsErrors::TermsMismatch);
    let other = Commitment {
        root: B256::repeat_byte(7),
        size: posted.size,
    };
    assert_revert!(
        send_results(&mut s, keeper, fraud_call(&l, tenant, other, Some(&f))),
        ResultsErrors::NoResult
    );
    let mut call = fraud_call(&l, tenant, posted, Some(&f));
    call.job.seed = B256::repeat_byte(1);
    assert_revert!(
        send_results(&mut s, keeper, call),
        ResultsErrors::NotThisMatmulJob
    );
    s.chain.warp(CHALLENGE_WINDOW + 1);
    assert_revert!(
        send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&f))),
        ResultsErrors::ChallengeWindowOver
    );
}

// ------------------------------------------------------------------ posting and the hold

#[test]
fn post_result_only_by_the_lease_operator_once_while_running() {
    let mut s = Suite::new();
    s.register(1, 10_000 * USDC);
    let l = lease(&mut s, job(8));
    let c = Commitment::of(&encode(&l.c));
    // Another provider's operator, the owner key, a stranger: refused.
    assert_revert!(
        s.post_commitment(1, l.id, c),
        ResultsErrors::NotLeaseOperator
    );
    for from in [s.provider(0), Address::repeat_byte(0x99)] {
        let post = Results::postResultCall {
            leaseId: l.id,
            root: c.root,
            size: c.size,
            uri: "https://x".into(),
            metaHash: B256::ZERO,
        };
        assert_revert!(
            send_results(&mut s, from, post),
            ResultsErrors::NotLeaseOperator
        );
    }
    let zero = Commitment {
        root: B256::ZERO,
        size: 0,
    };
    assert_revert!(
        s.post_commitment(0, l.id, zero),
        ResultsErrors::InvalidResult
    );
    s.post_commitment(0, l.id, c).expect_success();
    assert_revert!(
        s.post_commitment(0, l.id, c),
        ResultsErrors::ResultAlreadyPosted
    );
    // A service lease has no result.
    let id = s.service_lease(1, 1, 10 * USDC);
    assert_revert!(s.post(1, id, b"x").0, ResultsErrors::NotABatchJob);
}

#[test]
fn an_empty_result_is_a_valid_commitment_mec15() {
    // `/bin/true`: a job that succeeds with no output still yields a postable, non-zero root.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(30);
    let (r, c) = s.post(0, id, &[]);
    r.expect_success();
    assert_ne!(c.root, B256::ZERO);
    assert_eq!(c.size, 0);
    s.chain.warp(CHALLENGE_WINDOW + 1);
    let k = s.keeper.address;
    let ev = closed(&s.close(k, id).expect_success());
    assert_eq!((ev.reason, ev.paid.to::<u128>()), (5, 30 * PER_SEC));
}

#[test]
fn a_posted_result_stops_accrual_and_holds_payment_and_collateral_for_the_window() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    s.chain.warp(50);
    s.post(0, l.id, &encode(&l.c)).0.expect_success();
    let j = s.job(l.id);
    assert_eq!((j.kind, j.acknowledged), (2, true));
    assert_eq!(
        j.end.to::<u64>() - j.settledAt.to::<u64>(),
        50,
        "paid for 50 s"
    );
    assert_eq!(j.end.to::<u64>(), s.chain.now() + CHALLENGE_WINDOW);
    assert_eq!(s.provider_info(0).locked.to::<u128>(), COLLATERAL);
    s.chain.warp(10_000);
    // Nothing accrues past the result.
    let lens = s.lens;
    let owed: U96 = s.chain.view(
        lens,
        gridlease_bindings::MarketLens::accruedCall { id: l.id },
    );
    assert_eq!(owed.to::<u128>(), 50 * PER_SEC);
}

#[test]
fn the_tenant_accepts_a_held_result_by_closing_and_pays_up_to_the_result() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    s.chain.warp(50);
    s.post(0, l.id, &encode(&l.c)).0.expect_success();
    s.chain.warp(500);
    let t = s.tenant(0);
    let ev = closed(&s.close(t, l.id).expect_success());
    assert_eq!(
        (ev.reason, ev.paid.to::<u128>()),
        (6, 50 * PER_SEC),
        "Accepted"
    );
    assert!(
        ev.held,
        "faults on the result stay provable: collateral held"
    );
    assert_eq!(ev.refund.to::<u128>(), 10 * USDC - 50 * PER_SEC);
    assert_eq!(s.credit(s.provider(0)), 50 * PER_SEC * 99 / 100);
    assert_eq!(s.provider_info(0).locked.to::<u128>(), COLLATERAL);
    // Released only after the fault horizon, by anyone.
    let k = s.keeper.address;
    let release = |s: &mut Suite| {
        let m = s.market;
        s.chain
            .send(
                k,
                m,
                gridlease_bindings::MarketAdmin::releaseHeldCall {
                    leaseIds: vec![l.id],
                },
            )
            .expect_success()
            .events::<Market::HeldReleased>()
            .len()
    };
    assert_eq!(release(&mut s), 0);
    s.chain.warp(FAULT_HORIZON + 1);
    assert_eq!(release(&mut s), 1);
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
    assert_eq!(release(&mut s), 0, "once");
}

#[test]
fn a_fraud_proof_during_the_hold_refunds_everything_unsettled() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    s.chain.warp(50);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    s.chain.warp(5_000);
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&f))).expect_success();
    assert_eq!(closed(&r).refund.to::<u128>(), 10 * USDC);
    assert_eq!(s.credit(s.provider(0)), 0);
}

#[test]
fn fraud_after_acceptance_still_lands_and_compensates_up_to_what_was_paid_mec05_mec07() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(24));
    let (bad, f) = cheat(&l);
    s.chain.warp(200);
    let (_, posted) = s.post(0, l.id, &encode(&bad));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    s.close(tenant, l.id).expect_success(); // accepted (a mistake)
    s.chain.warp(TENANT_PRIORITY + 1);
    let r = send_results(&mut s, keeper, fraud_call(&l, tenant, posted, Some(&f))).expect_success();
    let paid = 200 * PER_SEC;
    let fault = r.event::<Market::LeaseFaulted>();
    assert_eq!(fault.refund, U96::ZERO);
    assert_eq!(fault.compensation.to::<u128>(), paid);
    let cut = paid * u128::from(FAULT_FEE_BPS) / 10_000;
    assert_eq!(s.staking_credit(tenant), paid - cut);
    assert_eq!(s.staking_credit(keeper), cut);
    assert_eq!(s.staking_credit(s.treasury.address), COLLATERAL - paid);
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
}

// ------------------------------------------------------------------ data inputs

/// Tenant 0 orders a data `matmul_i8` job (A 6 x 40, B 40 x 5 given as bytes), provider 0 wins it.
fn data_lease(s: &mut Suite) -> (B256, OrderParams, MatmulData, Vec<i32>) {
    let (m, k, n) = (6u32, 40u32, 5u32);
    let a: Vec<u8> = (0..m * k).map(|x| (x * 31 + 7) as u8).collect();
    let b: Vec<u8> = (0..k * n).map(|x| (x * 17 + 200) as u8).collect();
    let d = MatmulData::from_row_major(m, k, n, a, &b).expect("shape");
    let mut params = s.fresh_order(10 * USDC, PRICE * 2);
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
    let (_, posted) = s.post(0, id, &encode(&bad));
    let f = localize(&d, &bad, B256::repeat_byte(9)).expect("found");
    assert_eq!((f.i, f.j), (4, 1));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);

    // A tampered row does not verify against A's root.
    let mut call = data_fraud_call(id, tenant, params.clone(), &d, posted, &f);
    let mut row = call.ops.aRow.to_vec();
    row[0] ^= 1;
    call.ops.aRow = row.into();
    assert_revert!(
        send_results(&mut s, keeper, call),
        ResultsErrors::NotInResult
    );
    // Roots other than the tenant's spec are refused.
    let mut call = data_fraud_call(id, tenant, params.clone(), &d, posted, &f);
    call.job.bRoot = B256::repeat_byte(1);
    assert_revert!(
        send_results(&mut s, keeper, call),
        ResultsErrors::NotThisMatmulJob
    );

    let r = send_results(
        &mut s,
        keeper,
        data_fraud_call(id, tenant, params, &d, posted, &f),
    )
    .expect_success();
    let e = r.event::<Results::MatmulFraudProven>();
    assert_eq!(
        (e.claimed.as_i64(), e.correct.as_i64()),
        (i64::from(bad[21]), i64::from(c[21]))
    );
    assert_eq!(closed(&r).reason, 4, "Faulted");
}

#[test]
fn data_inputs_proof_against_a_correct_result_reverts_stk13() {
    let mut s = Suite::new();
    let (id, params, d, c) = data_lease(&mut s);
    let (_, posted) = s.post(0, id, &encode(&c));
    let (tenant, keeper) = (s.tenant(0), s.keeper.address);
    let f = proof_for(&d, &c, 5, 4);
    let r = send_results(
        &mut s,
        keeper,
        data_fraud_call(id, tenant, params, &d, posted, &f),
    );
    assert_revert!(r, ResultsErrors::NoFraud);
}

// ------------------------------------------------------------------ malformed trees

/// A result of five full leaves whose tree the provider built with `leaves` (5 real ones, then
/// whatever padding it chose), posted with size 5 KiB.
fn post_tree(s: &mut Suite, id: B256, leaves: Vec<B256>) -> (Commitment, MerkleTree) {
    let t = MerkleTree::from_leaf_hashes(leaves);
    let c = Commitment {
        root: t.root(),
        size: 5 * RESULT_LEAF_BYTES as u64,
    };
    s.post_commitment(0, id, c).expect_success();
    (c, t)
}

fn malformed(
    s: &mut Suite,
    id: B256,
    c: Commitment,
    level: u64,
    index: u64,
    data: Vec<u8>,
    proof: Vec<B256>,
) -> Receipt {
    let keeper = s.keeper.address;
    send_results(
        s,
        keeper,
        Results::proveMalformedCall {
            leaseId: id,
            root: c.root,
            size: c.size,
            level: U256::from(level),
            index: U256::from(index),
            data: data.into(),
            proof,
        },
    )
}

fn data5() -> Vec<u8> {
    (0..5 * RESULT_LEAF_BYTES)
        .map(|x| (x * 7 + 1) as u8)
        .collect()
}

#[test]
fn a_non_zero_padding_leaf_or_subtree_is_malformed_mec03() {
    let data = data5();
    let real: Vec<B256> = (0..5).map(|i| leaf_hash(result_chunk(&data, i))).collect();
    // A garbage padding leaf.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut leaves = real.clone();
    leaves.extend([B256::ZERO, B256::repeat_byte(0xee), B256::ZERO]);
    let (c, t) = post_tree(&mut s, id, leaves);
    // Positions that are fine say so.
    assert_revert!(
        malformed(&mut s, id, c, 0, 5, B256::ZERO.to_vec(), t.proof(5)),
        ResultsErrors::NotMalformed
    );
    assert_revert!(
        malformed(
            &mut s,
            id,
            c,
            0,
            2,
            result_chunk(&data, 2).to_vec(),
            t.proof(2)
        ),
        ResultsErrors::NotMalformed
    );
    let r = malformed(
        &mut s,
        id,
        c,
        0,
        6,
        B256::repeat_byte(0xee).to_vec(),
        t.proof(6),
    )
    .expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().kind,
        B256::right_padding_from(b"malformed-result")
    );

    // A level-1 padding node that is not the zero subtree (leaves 6 and 7).
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut leaves = real.clone();
    leaves.extend([B256::ZERO, B256::repeat_byte(1), B256::repeat_byte(2)]);
    let (c, t) = post_tree(&mut s, id, leaves);
    assert_ne!(t.node(1, 3), zero_hash(1));
    // Level 1, node 2 covers leaves 4 (real) and 5: not wholly padding.
    assert_revert!(
        malformed(&mut s, id, c, 1, 2, t.node(1, 2).to_vec(), t.proof_at(1, 2)),
        ResultsErrors::NotMalformed
    );
    malformed(&mut s, id, c, 1, 3, t.node(1, 3).to_vec(), t.proof_at(1, 3)).expect_success();
}

#[test]
fn a_real_leaf_of_the_wrong_length_is_malformed_mec03() {
    // The provider hashed its last leaf over 1,000 bytes while claiming 5 KiB.
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut leaves: Vec<B256> = (0..4).map(|i| leaf_hash(result_chunk(&data, i))).collect();
    let short = result_chunk(&data, 4)[..1_000].to_vec();
    leaves.push(leaf_hash(&short));
    let (c, t) = post_tree(&mut s, id, leaves);
    malformed(&mut s, id, c, 0, 4, short, t.proof(4)).expect_success();
}

#[test]
fn a_well_formed_result_cannot_be_proven_malformed() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    let t = MerkleTree::result(&data);
    for (level, index) in [(0u64, 5u64), (0, 7), (1, 3), (2, 1)] {
        let node = t.node(level as usize, index);
        let r = malformed(
            &mut s,
            id,
            c,
            level,
            index,
            node.to_vec(),
            t.proof_at(level as usize, index),
        );
        assert_revert!(r, ResultsErrors::NotMalformed);
    }
}

// ------------------------------------------------------------------ data availability

#[test]
fn an_answered_challenge_pays_the_bond_to_whoever_revealed_the_chunk_mec04() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    let (k, op) = (s.keeper.address, s.operator(0));
    let before = s.chain.eth_balance(op);
    let ev = s
        .challenge(k, id, c, 3)
        .expect_success()
        .event::<Results::ChunkChallenged>();
    assert_eq!(ev.deadline.to::<u64>(), s.chain.now() + RESPONSE_WINDOW);
    assert!(s.job(id).challenged);
    // The same chunk cannot be challenged twice at once; a chunk past the end not at all.
    assert_revert!(s.challenge(k, id, c, 3), ResultsErrors::ChallengeOpen);
    assert_revert!(s.challenge(k, id, c, 5), ResultsErrors::ChunkOutOfRange);
    // A wrong chunk is refused.
    let mut wrong = data.clone();
    wrong[3 * RESULT_LEAF_BYTES] ^= 1;
    assert!(!s.answer(op, id, &wrong, 3).success);
    let r = s.answer(op, id, &data, 3).expect_success();
    assert_eq!(
        r.event::<Results::ChunkRevealed>().chunk.to_vec(),
        result_chunk(&data, 3).to_vec()
    );
    assert_eq!(s.chain.eth_balance(op) - before, U256::from(CHALLENGE_BOND));
    assert!(!s.job(id).challenged);
    // The result completes as usual.
    s.chain.warp(CHALLENGE_WINDOW + 1);
    assert_eq!(closed(&s.close(k, id).expect_success()).reason, 5);
}

#[test]
fn an_unanswered_challenge_fails_the_result_and_refunds_the_bond_mec04() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let (_, c) = s.post(0, id, &data);
    let k = s.keeper.address;
    let before = s.chain.eth_balance(k);
    s.challenge(k, id, c, 0).expect_success();
    let prove = |s: &mut Suite| {
        send_results(
            s,
            k,
            Results::proveUnavailableCall {
                leaseId: id,
                index: U256::ZERO,
            },
        )
    };
    assert_revert!(prove(&mut s), ResultsErrors::ResponseWindowOpen);
    s.chain.warp(RESPONSE_WINDOW + 1);
    // Too late to answer now (MEC-10 style: the same timestamp decides both).
    let op = s.operator(0);
    assert_revert!(
        s.answer(op, id, &data, 0),
        ResultsErrors::ResponseWindowOver
    );
    let r = prove(&mut s).expect_success();
    let fault = r.event::<Market::LeaseFaulted>();
    assert_eq!(fault.kind, B256::right_padding_from(b"unavailable"));
    assert_eq!(fault.refund.to::<u128>(), 10 * USDC);
    assert_eq!(s.chain.eth_balance(k), before);
    assert_eq!(s.credit(s.provider(0)), 0);
}

#[test]
fn an_open_challenge_blocks_completion_until_resolved_and_extends_the_hold_by_at_most_one_window() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    let k = s.keeper.address;
    s.chain.warp(CHALLENGE_WINDOW - 10);
    s.challenge(k, id, c, 1).expect_success();
    s.chain.warp(11);
    // The window is over: no new challenge, and the open one blocks completion.
    assert_revert!(s.challenge(k, id, c, 2), ResultsErrors::ChallengeWindowOver);
    assert_revert!(s.close(k, id), MarketErrors::LeaseChallenged);
    let op = s.operator(0);
    s.answer(op, id, &data, 1).expect_success();
    assert_eq!(closed(&s.close(k, id).expect_success()).reason, 5);
}

#[test]
fn container_outputs_get_the_same_challenge_mec13() {
    // An instant lease is a container job (jobKind 0): its output is challenged like a product.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let out = b"stdout of the tenant's container\n".repeat(100);
    let (_, c) = s.post(0, id, &out);
    let k = s.keeper.address;
    s.challenge(k, id, c, 2).expect_success();
    s.chain.warp(RESPONSE_WINDOW + 1);
    send_results(
        &mut s,
        k,
        Results::proveUnavailableCall {
            leaseId: id,
            index: U256::from(2),
        },
    )
    .expect_success();
    assert_eq!(s.job(id).status, 5, "Faulted");
}

#[test]
fn a_challenge_needs_the_exact_bond_and_a_posted_result() {
    let data = data5();
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let c = Commitment::of(&data);
    let k = s.keeper.address;
    assert_revert!(s.challenge(k, id, c, 0), ResultsErrors::NoResult);
    s.post(0, id, &data).0.expect_success();
    let results = s.results;
    let call = Results::challengeCall {
        leaseId: id,
        root: c.root,
        size: c.size,
        index: U256::ZERO,
    };
    assert_revert!(
        s.chain.send_value(k, results, call, CHALLENGE_BOND - 1),
        ResultsErrors::BadBond
    );
}

// ------------------------------------------------------------------ liveness faults

fn ack(s: &mut Suite, l: &Lease) -> Receipt {
    s.ack(0, l.id)
}

fn no_show(s: &mut Suite, l: &Lease, from: Address) -> Receipt {
    let tenant = s.tenant(0);
    send_results(
        s,
        from,
        Results::proveNoShowCall {
            leaseId: l.id,
            tenant,
            terms: l.params.clone().into(),
        },
    )
}

fn missed(s: &mut Suite, id: B256, from: Address) -> Receipt {
    send_results(s, from, Results::proveMissedDeadlineCall { leaseId: id })
}

#[test]
fn no_show_is_slashed_after_the_start_window_not_before() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    let keeper = s.keeper.address;
    s.chain.warp(START_WINDOW);
    assert_revert!(no_show(&mut s, &l, keeper), ResultsErrors::NotANoShow);
    s.chain.warp(1);
    let r = no_show(&mut s, &l, keeper).expect_success();
    assert_eq!(
        r.event::<Results::FaultProven>().kind,
        B256::right_padding_from(b"no-show")
    );
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
}

#[test]
fn acknowledged_or_resulted_leases_are_not_no_shows_and_late_acks_revert() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    s.chain.warp(START_WINDOW);
    ack(&mut s, &l).expect_success();
    ack(&mut s, &l).expect_success(); // idempotent
    s.chain.warp(100);
    let keeper = s.keeper.address;
    assert_revert!(no_show(&mut s, &l, keeper), ResultsErrors::NotANoShow);
    let l2 = lease(&mut s, job(9));
    s.chain.warp(START_WINDOW + 1);
    assert_revert!(ack(&mut s, &l2), ResultsErrors::StartWindowOver);
    // An operator of another provider cannot acknowledge it.
    s.register(1, 10_000 * USDC);
    let l3 = lease(&mut s, job(10));
    assert_revert!(s.ack(1, l3.id), ResultsErrors::NotLeaseOperator);
}

#[test]
fn missed_deadline_has_a_grace_and_a_result_in_it_stands_mec10_stk12() {
    let mut s = Suite::new();
    let l = lease(&mut s, job(8));
    ack(&mut s, &l).expect_success();
    let keeper = s.keeper.address;
    // At the end + grace, a result still stands and the fault is not yet provable.
    s.chain.warp(3_600 + DEADLINE_GRACE);
    assert_revert!(
        missed(&mut s, l.id, keeper),
        ResultsErrors::DeadlineNotMissed
    );
    s.post(0, l.id, &encode(&l.c)).0.expect_success();
    // It is paid for the lease's duration, not the grace.
    let j = s.job(l.id);
    assert_eq!(j.end.to::<u64>() - j.settledAt.to::<u64>(), 3_600);

    // One second later the result is refused and the fault provable, in either order within a
    // block: both read the same timestamp.
    let l2 = lease(&mut s, job(9));
    ack(&mut s, &l2).expect_success();
    s.chain.warp(3_600 + DEADLINE_GRACE + 1);
    assert_revert!(
        s.post(0, l2.id, &encode(&l2.c)).0,
        ResultsErrors::DeadlinePassed
    );
    let r = missed(&mut s, l2.id, keeper).expect_success();
    assert_eq!(
        r.event::<Results::FaultProven>().kind,
        B256::right_padding_from(b"missed-deadline")
    );
    // A service lease has no deadline.
    let id = s.service_lease(1, 0, 10 * USDC);
    s.keep_alive(0, 3_600 + DEADLINE_GRACE + 1);
    assert_revert!(missed(&mut s, id, keeper), ResultsErrors::NotABatchJob);
}

fn report(s: &mut Suite, id: B256) -> Receipt {
    let k = s.keeper.address;
    send_results(s, k, Results::reportStaleCall { leaseId: id })
}

fn prove_stale(s: &mut Suite, id: B256) -> Receipt {
    let k = s.keeper.address;
    send_results(s, k, Results::proveStaleHeartbeatCall { leaseId: id })
}

#[test]
fn a_reported_lapse_is_slashed_after_the_grace_stk10() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    assert_revert!(report(&mut s, id), ResultsErrors::ProviderLive);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    assert!(s.job(id).stalePending);
    s.chain.warp(STALE_GRACE);
    assert_revert!(prove_stale(&mut s, id), ResultsErrors::StaleNotProven);
    s.chain.warp(1);
    let r = prove_stale(&mut s, id).expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().kind,
        B256::right_padding_from(b"stale-heartbeat")
    );
}

#[test]
fn a_heartbeat_within_the_grace_clears_the_report_stk11() {
    // A chain halt: the lapse is observed only when blocks resume, and the provider's first
    // heartbeat after the report clears it.
    let mut s = Suite::new();
    let id = s.service_lease_for(0, 0, 10 * USDC, 7 * 86_400);
    s.chain.warp(2 * 86_400); // no blocks for two days
    report(&mut s, id).expect_success();
    s.chain.warp(STALE_GRACE);
    s.heartbeat(0).expect_success(); // exactly at the grace: on time
    s.chain.warp(10 * STALE_GRACE);
    assert_revert!(prove_stale(&mut s, id), ResultsErrors::HeartbeatResumed);
}

#[test]
fn a_lapse_that_outlasted_the_grace_stays_provable_after_the_provider_comes_back_mec05() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    s.chain.warp(STALE_GRACE + 1);
    s.heartbeat(0).expect_success(); // back, too late
    s.keep_alive(0, 600);
    s.heartbeat(0).expect_success();
    prove_stale(&mut s, id).expect_success();
}

#[test]
fn a_lapse_the_lease_end_would_cut_short_is_not_reportable_and_an_ended_lease_owes_no_heartbeat() {
    // The provider beats up to its lease's end and then stops (it owes nothing after it): a
    // report after the end, or one whose grace would run past the end, is refused, so nobody can
    // slash an honest provider for the time after its lease.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.keep_alive(0, 3_600 - STALE_GRACE - HEARTBEAT);
    s.chain.warp(HEARTBEAT + 1);
    assert_revert!(report(&mut s, id), ResultsErrors::TooLateToReport);
    s.chain.warp(STALE_GRACE + 61); // past the end, not closed yet
    assert_revert!(report(&mut s, id), ResultsErrors::TooLateToReport);
    s.chain.warp(STALE_GRACE + TENANT_PRIORITY);
    assert_revert!(prove_stale(&mut s, id), ResultsErrors::StaleNotProven);
    // The lapse a grace before the end is reported and slashed as ever.
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    s.chain.warp(STALE_GRACE + 1);
    prove_stale(&mut s, id).expect_success();
}

#[test]
fn the_fee_for_an_unavailable_result_is_the_challengers_then_anyones_after_a_response_window() {
    let data = data5();
    let unavailable = |s: &mut Suite, id: B256, from: Address| {
        send_results(
            s,
            from,
            Results::proveUnavailableCall {
                leaseId: id,
                index: U256::ZERO,
            },
        )
    };
    // A racer proving the keeper's challenge once the fee is due: the fee is still the keeper's.
    let mut s = Suite::new();
    let (challenger, racer) = (s.keeper.address, Address::repeat_byte(0x77));
    s.chain.fund(racer);
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    s.challenge(challenger, id, c, 0).expect_success();
    s.chain.warp(RESPONSE_WINDOW + TENANT_PRIORITY + 1);
    let r = unavailable(&mut s, id, racer).expect_success();
    assert_eq!(r.event::<Market::LeaseFaulted>().reporter, challenger);
    let fee = 10 * USDC * u128::from(FAULT_FEE_BPS) / 10_000;
    assert_eq!((s.credit(challenger), s.credit(racer)), (fee, 0));
    // A challenger that leaves it a response window longer: whoever proves it earns the fee, so
    // an unanswered challenge is never left holding the lease for want of one.
    let id = s.instant_lease(0, 0, 10 * USDC);
    let (_, c) = s.post(0, id, &data);
    s.challenge(challenger, id, c, 0).expect_success();
    s.chain.warp(2 * RESPONSE_WINDOW + TENANT_PRIORITY + 1);
    let r = unavailable(&mut s, id, racer).expect_success();
    assert_eq!(r.event::<Market::LeaseFaulted>().reporter, racer);
    assert_eq!(s.credit(racer), fee);
}

#[test]
fn a_finders_fee_never_exceeds_the_collateral_slashed() {
    // A provider proving its own missed deadline through another address, after the tenant's
    // priority: 5% of a 10 USDC refund is 0.5 USDC, the collateral 0.1 USDC. The fee is capped at
    // the slash, so the provider cannot earn from its own fault at its tenant's expense.
    let mut s = Suite::new();
    s.ensure_registered(0);
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    (p.instant, p.collateral) = (true, U96::from(USDC / 10));
    let id = s.create(0, p.clone());
    s.bid(0, id, PRICE).expect_success();
    s.chain
        .warp(u64::from(p.maxDuration) + DEADLINE_GRACE + TENANT_PRIORITY + 1);
    let own = s.tenant(2);
    let before = s.balance(s.token, s.tenant(0));
    let r = send_results(
        &mut s,
        own,
        Results::proveMissedDeadlineCall { leaseId: id },
    )
    .expect_success();
    let f = r.event::<Market::LeaseFaulted>();
    assert_eq!((f.reporter, f.slashed.to::<u128>()), (own, USDC / 10));
    assert_eq!(s.credit(own), USDC / 10);
    assert_eq!(
        s.balance(s.token, s.tenant(0)) - before,
        10 * USDC - USDC / 10
    );
}
