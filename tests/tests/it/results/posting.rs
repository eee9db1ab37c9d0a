//! Posting a result, and the hold on payment and collateral that follows.

use super::*;

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
