//! Service leases and heartbeats: one O(1) heartbeat per provider per period keeps all of its
//! service leases paying; a lapse ends the epoch, leases stop paying where the lapse began, and a
//! lapsed lease can be closed by anyone (SECURITY STK-10, STK-11, MEC-09, GOV-02).

use alloy::primitives::{Address, B256, aliases::U96};
use gridlease_bindings::{
    Market::{self, MarketErrors},
    Results::{self, ResultsErrors},
    Staking::{self, StakingErrors},
};
use gridlease_tests::{assert_revert, evm::Receipt, fixture::*};

/// PRICE = 0.001 USDC/s = 1,000 units per second.
const PER_SEC: u128 = 1_000;
const LAPSED: u8 = 7;

fn liveness(s: &mut Suite, i: usize) -> (u64, u32) {
    let r = s.chain.view(
        s.staking,
        Staking::livenessCall {
            provider: s.provider(i),
        },
    );
    (r.at.to::<u64>(), r.epoch)
}

fn settle(s: &mut Suite, id: B256) -> u128 {
    let k = s.keeper.address;
    let r = s.settle(k, vec![id]).expect_success();
    r.events::<Market::LeaseSettled>()
        .iter()
        .map(|e| e.amount.to::<u128>())
        .sum()
}

fn report(s: &mut Suite, id: B256) -> Receipt {
    let (k, results) = (s.keeper.address, s.results);
    s.chain
        .send(k, results, Results::reportStaleCall { leaseId: id })
}

#[test]
fn service_lease_pays_only_while_heartbeats_are_fresh_stk10() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let (h0, epoch) = liveness(&mut s, 0);
    let start = s.chain.now();
    s.chain.warp(200);
    assert_eq!(settle(&mut s, id), 200 * PER_SEC);
    // Past the heartbeat's reach the lease stops accruing at h0 + HEARTBEAT.
    s.chain.set_time(h0 + HEARTBEAT + 500);
    assert_eq!(
        settle(&mut s, id),
        (h0 + HEARTBEAT - start - 200) as u128 * PER_SEC
    );
    assert_eq!(settle(&mut s, id), 0, "nothing more while silent");
    // A heartbeat after the lapse opens a new epoch: this lease never pays again.
    s.heartbeat(0).expect_success();
    assert_eq!(liveness(&mut s, 0).1, epoch + 1);
    s.chain.warp(100);
    assert_eq!(settle(&mut s, id), 0);
    // Anyone closes it (MEC-09): it pays nothing for the lapse and refunds the rest.
    let (tenant, token, k) = (s.tenant(0), s.token, s.keeper.address);
    let before = s.balance(token, tenant);
    let r = s.close(k, id).expect_success();
    let ev = r.event::<Market::LeaseClosed>();
    assert_eq!((ev.reason, ev.paid), (LAPSED, U96::ZERO));
    let refund: u128 = ev.refund.to();
    assert_eq!(
        refund,
        10 * USDC - (h0 + HEARTBEAT - start) as u128 * PER_SEC
    );
    assert_eq!(s.balance(token, tenant) - before, refund);

    // A lease awarded in the new epoch pays normally.
    let id2 = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    assert_eq!(settle(&mut s, id2), 100 * PER_SEC);
}

#[test]
fn a_heartbeat_one_second_late_lapses_the_lease_which_anyone_closes_mec09() {
    // v1 left such a lease a zombie nobody could close; now it closes, paid up to the lapse.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let (h0, _) = liveness(&mut s, 0);
    let start = s.chain.now();
    s.chain.set_time(h0 + HEARTBEAT + 1);
    s.heartbeat(0).expect_success();
    let k = s.keeper.address;
    let ev = s
        .close(k, id)
        .expect_success()
        .event::<Market::LeaseClosed>();
    assert_eq!(ev.reason, LAPSED);
    assert_eq!(
        ev.paid.to::<u128>(),
        (h0 + HEARTBEAT - start) as u128 * PER_SEC
    );
    assert!(!ev.held, "a lapse is not a fault");
    assert_eq!(s.provider_info(0).stake.to::<u128>(), 10_000 * USDC);
}

#[test]
fn a_heartbeat_exactly_at_the_deadline_keeps_the_epoch() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let start = s.chain.now();
    let (h0, epoch) = liveness(&mut s, 0);
    s.chain.set_time(h0 + HEARTBEAT);
    s.heartbeat(0).expect_success();
    assert_eq!(
        liveness(&mut s, 0),
        (h0 + HEARTBEAT, epoch),
        "on time: same epoch"
    );
    s.chain.warp(250);
    assert_eq!(
        settle(&mut s, id),
        (h0 + HEARTBEAT + 250 - start) as u128 * PER_SEC
    );
}

#[test]
fn service_orders_go_only_to_live_providers() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    s.ensure_registered(1);
    // Never heart-beat: an on-chain bid on a service order is refused.
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    p.jobKind = 2;
    let id = s.create(0, p);
    let r = s.bid(0, id, PRICE);
    assert_revert!(r, MarketErrors::ProviderNotLive);
    // Nor is a signed bid of a provider that is not live, whoever places it.
    let k = s.keeper.address;
    let stale = s.signed_bid(1, id, PRICE);
    assert_revert!(s.bid_signed(k, id, stale), MarketErrors::ProviderNotLive);
    // Provider 0 bids while live, then lapses before the award: its bid cannot be honoured, so
    // there is no valid bid, and its collateral stays locked until the order is cancelled.
    s.heartbeat(0).expect_success();
    s.bid(0, id, PRICE).expect_success();
    s.chain.warp(HEARTBEAT + 601);
    assert_revert!(s.award(k, id), MarketErrors::NoValidBid);
    assert_eq!(s.provider_info(0).locked.to::<u128>(), 100 * USDC);
    let t = s.tenant(0);
    s.cancel(t, id).expect_success();
    assert_eq!(
        s.provider_info(0).locked.to::<u128>(),
        0,
        "the collateral its bid reserved is freed with the order (AFR-01)"
    );

    // A live provider's signed bid, placed in the window, wins while it stays live.
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    p.jobKind = 2;
    let id = s.create(0, p);
    s.heartbeat(1).expect_success();
    let live = s.signed_bid(1, id, PRICE - 1);
    s.bid_signed(k, id, live).expect_success();
    s.chain.warp(601);
    s.heartbeat(1).expect_success();
    let started = s
        .award(k, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!((started.provider, started.signedBid), (s.provider(1), true));
}

#[test]
fn heartbeat_only_from_an_operator_and_the_period_is_bounded() {
    let mut s = Suite::new();
    let (stranger, staking) = (s.tenant(0), s.staking);
    let r = s.chain.send(stranger, staking, Staking::heartbeatCall {});
    assert_revert!(r, StakingErrors::ProviderNotRegistered);
    let r = s.govern(staking, Staking::setHeartbeatPeriodCall { period: 59 });
    assert_revert!(r, StakingErrors::StakingParameterOutOfBounds);
    let r = s.chain.send(
        stranger,
        staking,
        Staking::setHeartbeatPeriodCall { period: 600 },
    );
    assert!(!r.success, "only governance");
    let r = s
        .govern(staking, Staking::setHeartbeatPeriodCall { period: 600 })
        .expect_success();
    assert_eq!(r.event::<Staking::HeartbeatPeriodSet>().period, 600);
    s.ensure_registered(0);
    let r = s.heartbeat(0).expect_success();
    let e = r.event::<Staking::Heartbeat>();
    assert_eq!((e.provider, e.epoch), (s.provider(0), 1));
}

#[test]
fn a_heartbeat_period_change_never_reaches_a_running_epoch_gov02() {
    // v1 finding 5: raising the period charged a tenant for silent time; lowering it ended the pay
    // of every live lease. The period is now fixed per epoch.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let id2 = s.service_lease(1, 1, 10 * USDC);
    let t0 = s.chain.now();
    let staking = s.staking;
    // Raised: provider 0, silent for 1,000 s, is paid only the 300 s its running epoch allows.
    s.govern(staking, Staking::setHeartbeatPeriodCall { period: 1_800 })
        .expect_success();
    // Provider 1 beats on time by the old period; then the period is lowered to 60 s, and its
    // lease still pays all of its live time: the running epoch keeps 300 s.
    s.chain.set_time(t0 + 250);
    s.heartbeat(1).expect_success();
    s.govern(staking, Staking::setHeartbeatPeriodCall { period: 60 })
        .expect_success();
    s.chain.set_time(t0 + 450);
    s.heartbeat(1).expect_success();
    assert_eq!(settle(&mut s, id2), 450 * PER_SEC);
    s.chain.set_time(t0 + 1_000);
    assert_eq!(settle(&mut s, id), HEARTBEAT as u128 * PER_SEC);
    // A new epoch takes the period in force when it starts.
    s.chain.warp(HEARTBEAT + 1);
    s.heartbeat(1).expect_success();
    let period = s
        .chain
        .view(
            staking,
            Staking::livenessCall {
                provider: s.provider(1),
            },
        )
        .period;
    assert_eq!(period, 60);
}

#[test]
fn batch_leases_have_no_heartbeat_to_report() {
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    assert_revert!(report(&mut s, id), ResultsErrors::NotAServiceLease);
}

#[test]
fn a_chain_halt_is_not_slashed_once_the_provider_beats_again_stk11() {
    let mut s = Suite::new();
    let id = s.service_lease_for(0, 0, 10 * USDC, 86_400);
    // No blocks for far longer than period + grace.
    s.chain.warp(10 * STALE_GRACE);
    // The first block after the halt carries a keeper's report; the provider's heartbeat follows.
    report(&mut s, id).expect_success();
    s.chain.warp(1);
    s.heartbeat(0).expect_success();
    s.chain.warp(STALE_GRACE);
    let (k, results) = (s.keeper.address, s.results);
    let r = s
        .chain
        .send(k, results, Results::proveStaleHeartbeatCall { leaseId: id });
    assert_revert!(r, ResultsErrors::HeartbeatResumed);
    // Had the provider beaten first, there would be nothing to report at all.
    s.heartbeat(0).expect_success();
    assert_revert!(report(&mut s, id), ResultsErrors::ProviderLive);
    assert_eq!(
        s.provider_info(0).stake.to::<u128>(),
        10_000 * USDC,
        "never slashed"
    );
}

/// A lapse proven on a running service lease refunds only what was not served: the live time
/// before the lapse, never settled (no keeper found it worth a transaction), was delivered and is
/// the provider's (MEC-09). Before, the whole unsettled escrow went back to the tenant, so a tenant
/// that left a week-long lease unsettled got it all back for a twenty-minute outage.
#[test]
fn a_proven_lapse_pays_the_live_time_before_it_and_refunds_only_the_rest_mec09() {
    let mut s = Suite::new();
    let id = s.service_lease_for(0, 0, 100 * USDC, 7 * 86_400);
    let start = s.chain.now();
    s.keep_alive(0, 3 * 3_600);
    let (last, _) = liveness(&mut s, 0);
    let provider = s.provider(0);
    let credit = s.credit(provider);
    s.chain.warp(HEARTBEAT + 1);
    report(&mut s, id).expect_success();
    s.chain.warp(STALE_GRACE + 1);
    let (k, results) = (s.keeper.address, s.results);
    let r = s
        .chain
        .send(k, results, Results::proveStaleHeartbeatCall { leaseId: id })
        .expect_success();
    let closed = r.event::<Market::LeaseClosed>();
    let faulted = r.event::<Market::LeaseFaulted>();
    // Paid: the live time up to where the lapse began (the last heartbeat's reach).
    let live = (last + HEARTBEAT - start) as u128 * PER_SEC;
    assert_eq!(closed.paid.to::<u128>(), live);
    assert_eq!(
        s.credit(provider) - credit,
        closed.toProvider.to::<u128>(),
        "credited to the provider"
    );
    // Refunded, less the reporter's fee: exactly what was not served.
    assert_eq!(
        closed.refund.to::<u128>() + faulted.fee.to::<u128>(),
        100 * USDC - live
    );
}

/// `from` binds `key` to lease `id`.
fn bind(s: &mut Suite, from: Address, id: B256, key: B256) -> Receipt {
    let results = s.results;
    s.chain.send(
        from,
        results,
        Results::bindCertificateCall {
            leaseId: id,
            spkiHash: key,
        },
    )
}

fn bound(s: &mut Suite, id: B256) -> B256 {
    let results = s.results;
    s.chain
        .view(results, Results::certificateOfCall { leaseId: id })
}

#[test]
fn only_the_running_service_leases_operator_binds_its_tls_key_and_each_binding_is_public_acc03() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.ensure_registered(1);
    let (key, other) = (B256::repeat_byte(0x11), B256::repeat_byte(0x22));
    // Nobody but the lease's provider's operator: not its tenant, not another provider's
    // operator, not the provider's owner key.
    for who in [s.tenant(0), s.operator(1), s.provider(0), s.keeper.address] {
        assert_revert!(bind(&mut s, who, id, key), ResultsErrors::NotLeaseOperator);
    }
    assert_eq!(
        bound(&mut s, id),
        B256::ZERO,
        "a refused binding binds nothing"
    );
    let op = s.operator(0);
    assert_revert!(
        bind(&mut s, op, id, B256::ZERO),
        ResultsErrors::InvalidCertificate
    );
    let r = bind(&mut s, op, id, key).expect_success();
    let e = r.event::<Results::CertificateBound>();
    assert_eq!(
        (e.leaseId, e.provider, e.spkiHash),
        (id, s.provider(0), key)
    );
    assert_eq!(bound(&mut s, id), key);
    // Another key replaces it only with a binding of its own, which every client sees.
    let r = bind(&mut s, op, id, other).expect_success();
    assert_eq!(r.event::<Results::CertificateBound>().spkiHash, other);
    assert_eq!(bound(&mut s, id), other);

    // A batch lease has no service to serve over TLS; a closed lease takes no new key.
    let batch = s.lease(10 * USDC);
    assert_revert!(
        bind(&mut s, op, batch, key),
        ResultsErrors::NotAServiceLease
    );
    let t = s.tenant(0);
    s.close(t, id).expect_success();
    assert_revert!(bind(&mut s, op, id, key), ResultsErrors::LeaseNotRunning);
    assert_eq!(bound(&mut s, id), other, "the last binding stays readable");
}

#[test]
fn a_binding_lives_on_the_leases_own_module_only_acc03() {
    // A market with a timelock long enough to add a second module.
    let mut s = Suite::with_timelock(CHALLENGE_WINDOW + 3 * RESPONSE_WINDOW);
    let id = s.service_lease(0, 0, 10 * USDC);
    let (gov, market) = (s.gov.address, s.market);
    let module2 = deploy_results(&mut s.chain, gov, market, CHALLENGE_WINDOW);
    s.govern(
        market,
        gridlease_bindings::MarketAdmin::addModuleCall { module: module2 },
    )
    .expect_success();
    // The lease is bound to the first module: the second takes no binding of it, so a client
    // reading the lease's own module is never shown another module's.
    let (op, key) = (s.operator(0), B256::repeat_byte(0x33));
    let r = s.chain.send(
        op,
        module2,
        Results::bindCertificateCall {
            leaseId: id,
            spkiHash: key,
        },
    );
    assert_revert!(r, MarketErrors::NotLeaseModule);
    bind(&mut s, op, id, key).expect_success();
    assert_eq!(bound(&mut s, id), key);
}
