//! Service leases and heartbeats: one O(1) heartbeat per provider per period keeps all of its
//! service leases paying; a lapse ends the epoch, and leases awarded in it stop paying where the
//! lapse began, for good (SECURITY STK-10).

use alloy::primitives::B256;
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::{self, MarketErrors},
    Results::{self, ResultsErrors},
    Staking::{self, StakingErrors},
};
use gridlease_tests::{assert_revert, evm::Receipt, fixture::*};

/// Staking's default heartbeat period.
const PERIOD: u64 = 300;
/// PRICE = 0.001 USDC/s = 1,000 units per second.
const PER_SEC: u128 = 1_000;

fn heartbeat(s: &mut Suite, i: usize) -> Receipt {
    let (op, staking) = (s.operator(i), s.staking);
    s.chain.send(op, staking, Staking::heartbeatCall {})
}

fn liveness(s: &mut Suite, i: usize) -> (u64, u64) {
    let r = s.chain.view(
        s.staking,
        Staking::livenessCall {
            provider: s.provider(i),
        },
    );
    (r.at.to::<u64>(), r.epoch)
}

/// Tenant 0 orders a service lease (instant), provider `i` takes it with an on-chain bid.
fn service_lease(s: &mut Suite, i: usize, salt: u8) -> B256 {
    service_lease_terms(s, i, salt).0
}

fn service_lease_terms(s: &mut Suite, i: usize, salt: u8) -> (B256, OrderParams) {
    s.ensure_registered(i);
    let mut p = s.order(10 * USDC, PRICE * 2);
    (p.jobKind, p.instant, p.salt) = (2, true, B256::repeat_byte(salt));
    let id = s.create(0, p.clone());
    s.bid(i, id, PRICE).expect_success();
    (id, p)
}

fn report(s: &mut Suite, id: B256, p: &OrderParams) -> Receipt {
    let (k, results, tenant) = (s.keeper.address, s.results, s.tenant(0));
    let call = Results::reportStaleCall {
        leaseId: id,
        tenant,
        terms: p.clone().into(),
    };
    s.chain.send(k, results, call)
}

fn prove(s: &mut Suite, id: B256, p: &OrderParams) -> Receipt {
    let (k, results, tenant) = (s.keeper.address, s.results, s.tenant(0));
    let call = Results::proveStaleHeartbeatCall {
        leaseId: id,
        tenant,
        terms: p.clone().into(),
    };
    s.chain.send(k, results, call)
}

fn settle(s: &mut Suite, id: B256) -> u128 {
    let k = s.keeper.address;
    let r = s.settle(k, vec![id]).expect_success();
    r.events::<Market::LeaseSettled>()
        .iter()
        .map(|e| e.amount.to::<u128>())
        .sum()
}

#[test]
fn service_lease_pays_only_while_heartbeats_are_fresh_stk10() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    heartbeat(&mut s, 0).expect_success();
    let h0 = s.chain.now();
    let id = service_lease(&mut s, 0, 1);
    let start = s.chain.now();
    s.chain.warp(200);
    assert_eq!(settle(&mut s, id), 200 * PER_SEC);
    // Past the heartbeat's reach the lease stops accruing at h0 + PERIOD.
    s.chain.set_time(h0 + PERIOD + 500);
    assert_eq!(
        settle(&mut s, id),
        (h0 + PERIOD - start - 200) as u128 * PER_SEC
    );
    assert_eq!(
        settle(&mut s, id),
        0,
        "nothing more while the provider is silent"
    );
    // A heartbeat after the lapse opens a new epoch: this lease never pays again.
    heartbeat(&mut s, 0).expect_success();
    assert_eq!(liveness(&mut s, 0).1, 1);
    s.chain.warp(100);
    assert_eq!(settle(&mut s, id), 0);
    // The tenant closes and gets back everything not paid for live time.
    let (tenant, token) = (s.tenant(0), s.token);
    let before = s.balance(token, tenant);
    let r = s.close(tenant, id).expect_success();
    let refund: u128 = r.event::<Market::LeaseClosed>().refund.to();
    assert_eq!(refund, 10 * USDC - (h0 + PERIOD - start) as u128 * PER_SEC);
    assert_eq!(s.balance(token, tenant) - before, refund);

    // A lease awarded in the new epoch pays normally.
    let id2 = service_lease(&mut s, 0, 2);
    s.chain.warp(100);
    assert_eq!(settle(&mut s, id2), 100 * PER_SEC);
}

#[test]
fn a_heartbeat_exactly_at_the_deadline_keeps_the_epoch() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    heartbeat(&mut s, 0).expect_success();
    let id = service_lease(&mut s, 0, 1);
    let start = s.chain.now();
    let (h0, _) = liveness(&mut s, 0);
    s.chain.set_time(h0 + PERIOD);
    heartbeat(&mut s, 0).expect_success();
    assert_eq!(liveness(&mut s, 0), (h0 + PERIOD, 0), "on time: same epoch");
    s.chain.warp(250);
    assert_eq!(
        settle(&mut s, id),
        (h0 + PERIOD + 250 - start) as u128 * PER_SEC
    );
}

#[test]
fn service_orders_go_only_to_live_providers() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    s.ensure_registered(1);
    // Never heart-beat: an on-chain bid on a service order is refused.
    let mut p = s.order(10 * USDC, PRICE * 2);
    p.jobKind = 2;
    let id = s.create(0, p);
    let r = s.bid(0, id, PRICE);
    assert_revert!(r, MarketErrors::ProviderNotLive);
    // Provider 0 bids while live, then lapses before the award: the live signed bidder wins.
    heartbeat(&mut s, 0).expect_success();
    s.bid(0, id, PRICE).expect_success();
    heartbeat(&mut s, 1).expect_success();
    s.chain.warp(601);
    heartbeat(&mut s, 1).expect_success();
    let bid1 = s.signed_bid(1, id, PRICE + 1);
    let k = s.keeper.address;
    let r = s.award(k, id, vec![bid1]).expect_success();
    let started = r.event::<Market::LeaseStarted>();
    assert_eq!(
        started.provider,
        s.provider(1),
        "the stale lower bid is passed over"
    );

    // With only stale bidders there is no valid bid.
    let mut p = s.order(10 * USDC, PRICE * 2);
    (p.jobKind, p.salt) = (2, B256::repeat_byte(9));
    let id = s.create(0, p);
    heartbeat(&mut s, 1).expect_success();
    let bid1 = s.signed_bid(1, id, PRICE);
    s.chain.warp(PERIOD + 601);
    assert_revert!(s.award(k, id, vec![bid1]), MarketErrors::NoValidBid);
}

#[test]
fn heartbeat_only_from_an_operator_and_the_period_is_bounded() {
    let mut s = Suite::new();
    let (stranger, staking, gov) = (s.tenant(0), s.staking, s.gov.address);
    let r = s.chain.send(stranger, staking, Staking::heartbeatCall {});
    assert_revert!(r, StakingErrors::ProviderNotRegistered);
    let r = s
        .chain
        .send(gov, staking, Staking::setHeartbeatPeriodCall { period: 59 });
    assert_revert!(r, StakingErrors::StakingParameterOutOfBounds);
    let r = s.chain.send(
        stranger,
        staking,
        Staking::setHeartbeatPeriodCall { period: 600 },
    );
    assert!(!r.success, "only governance");
    let r = s
        .chain
        .send(
            gov,
            staking,
            Staking::setHeartbeatPeriodCall { period: 600 },
        )
        .expect_success();
    assert_eq!(r.event::<Staking::HeartbeatPeriodSet>().period, 600);
    s.ensure_registered(0);
    let r = heartbeat(&mut s, 0).expect_success();
    let e = r.event::<Staking::Heartbeat>();
    assert_eq!((e.provider, e.epoch), (s.provider(0), 0));
}

#[test]
fn a_reported_lapse_is_slashed_after_the_grace_stk10() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    heartbeat(&mut s, 0).expect_success();
    let (id, p) = service_lease_terms(&mut s, 0, 1);
    // Live: nothing to report.
    assert_revert!(report(&mut s, id, &p), ResultsErrors::ProviderLive);
    s.chain.warp(PERIOD + 1);
    let since = s.chain.now();
    let r = report(&mut s, id, &p).expect_success();
    assert_eq!(r.event::<Results::StaleReported>().since.to::<u64>(), since);
    // Not before the grace has passed.
    s.chain.warp(STALE_GRACE - 1);
    assert_revert!(prove(&mut s, id, &p), ResultsErrors::StaleNotProven);
    s.chain.warp(1);
    let (tenant, token) = (s.tenant(0), s.token);
    let before = s.balance(token, tenant);
    let r = prove(&mut s, id, &p).expect_success();
    let e = r.event::<Market::LeaseFaulted>();
    assert_eq!(e.slashed.to::<u128>(), 100 * USDC, "the lease's collateral");
    // Nothing was settled, so the whole escrow comes back.
    assert_eq!(s.balance(token, tenant) - before, 10 * USDC);
    assert_eq!(s.job(id).status, 3);

    // Batch leases have no heartbeat to report.
    let mut q = s.order(10 * USDC, PRICE * 2);
    (q.instant, q.salt) = (true, B256::repeat_byte(7));
    let id2 = s.create(0, q.clone());
    s.bid(0, id2, PRICE).expect_success();
    assert_revert!(report(&mut s, id2, &q), ResultsErrors::NotAServiceLease);
}

#[test]
fn a_chain_halt_is_not_slashed_once_the_provider_beats_again_stk11() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    heartbeat(&mut s, 0).expect_success();
    let (id, p) = service_lease_terms(&mut s, 0, 1);
    // No blocks for far longer than period + grace.
    s.chain.warp(10 * STALE_GRACE);
    // The first block after the halt carries a keeper's report; the provider's heartbeat follows.
    report(&mut s, id, &p).expect_success();
    s.chain.warp(1);
    heartbeat(&mut s, 0).expect_success();
    s.chain.warp(STALE_GRACE);
    assert_revert!(prove(&mut s, id, &p), ResultsErrors::HeartbeatResumed);
    // Had the provider beaten first, there would be nothing to report at all.
    heartbeat(&mut s, 0).expect_success();
    assert_revert!(report(&mut s, id, &p), ResultsErrors::ProviderLive);
    let provider = s.provider(0);
    let stake = s
        .chain
        .view(s.staking, Staking::providerInfoCall { provider })
        .stake;
    assert_eq!(stake, 10_000 * USDC, "never slashed");
}

#[test]
fn a_result_on_a_service_lease_does_not_end_or_hold_it() {
    let mut s = Suite::new();
    s.ensure_registered(0);
    heartbeat(&mut s, 0).expect_success();
    let id = service_lease(&mut s, 0, 7);
    let end = s.job(id).end;
    let (op, results) = (s.operator(0), s.results);
    let call = Results::postResultCall {
        leaseId: id,
        root: B256::repeat_byte(1),
        uri: "https://provider.example/log".into(),
        metaHash: B256::ZERO,
    };
    s.chain.send(op, results, call).expect_success();
    assert_eq!(s.job(id).end, end, "a service lease runs on");
    s.chain.warp(60);
    heartbeat(&mut s, 0).expect_success();
    let keeper = s.keeper.address;
    let r = s.settle(keeper, vec![id]).expect_success();
    let paid = r.event::<Market::LeaseSettled>().amount.to::<u128>();
    assert_eq!(paid, 60 * PER_SEC, "and keeps paying while live");
}
