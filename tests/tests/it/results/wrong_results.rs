//! Wrong results: the matmul fraud proof, its fee and its refusals.

use super::*;

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
