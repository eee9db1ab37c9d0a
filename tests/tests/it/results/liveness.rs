//! Liveness faults: no-shows, missed deadlines, lapsed heartbeats, and the fees for proving them.

use super::*;

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

/// The tenant cannot void a result on its way: past the lease's end and within the deadline grace
/// its close is refused, and the result posted in the grace stands (MEC-10). Before, a close at
/// `end + 1`, sent in front of the provider's pending post, refunded everything and left the
/// finished work unpaid, with no fault provable either.
#[test]
fn a_tenant_close_in_the_deadline_grace_is_refused_and_the_result_stands_mec10() {
    let mut s = Suite::new();
    let tenant = s.tenant(0);
    let l = lease(&mut s, job(8));
    ack(&mut s, &l).expect_success();
    s.chain.warp(3_600 + 1);
    assert_revert!(s.close(tenant, l.id), MarketErrors::ResultStillDue);
    s.chain.warp(DEADLINE_GRACE - 1);
    assert_revert!(s.close(tenant, l.id), MarketErrors::ResultStillDue);
    s.post(0, l.id, &encode(&l.c)).0.expect_success();
    assert_eq!(s.job(l.id).kind, 2, "held: the result stands");
    // Past the grace with no result the tenant may close again (it pays nothing), or prove the
    // missed deadline.
    let l2 = lease(&mut s, job(9));
    ack(&mut s, &l2).expect_success();
    s.chain.warp(3_600 + DEADLINE_GRACE + 1);
    let r = s.close(tenant, l2.id).expect_success();
    assert_eq!(r.event::<Market::LeaseClosed>().paid, U96::ZERO);
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

/// A report its provider answered by beating within the grace holds nothing at the close: the
/// collateral is free at once. Before, any report ever made held it for the fault horizon. A
/// report still provable at the close holds it, and its fault is proven after the close.
#[test]
fn a_stale_report_holds_the_collateral_at_the_close_only_while_it_can_be_proven_stk11() {
    let mut s = Suite::new();
    let tenant = s.tenant(0);
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    s.chain.warp(STALE_GRACE);
    s.heartbeat(0).expect_success(); // on time
    let r = s.close(tenant, id).expect_success();
    assert!(
        !r.event::<Market::LeaseClosed>().held,
        "a void report held it"
    );
    assert_eq!(s.provider_info(0).locked.to::<u128>(), 0);
    // Still provable (no heartbeat since): held, and proven after the close.
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    s.chain.warp(10);
    let r = s.close(tenant, id).expect_success();
    assert!(r.event::<Market::LeaseClosed>().held);
    assert!(s.provider_info(0).locked.to::<u128>() > 0);
    s.chain.warp(STALE_GRACE);
    prove_stale(&mut s, id).expect_success();
    // Reported, then back too late: the lapse outlasted the grace, so the close holds it.
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    s.chain.warp(STALE_GRACE + 1);
    s.heartbeat(0).expect_success();
    let r = s.close(tenant, id).expect_success();
    assert!(r.event::<Market::LeaseClosed>().held);
    prove_stale(&mut s, id).expect_success();
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
