//! Market: the escrow of protocol v2. Service leases stream per second of provider liveness;
//! batch leases pay nothing until their result stands. Settlement, top-up, closes, withdrawals and
//! governance (SECURITY.md B, D, F).

#![allow(clippy::type_complexity)] // tables of field mutators

use alloy::primitives::{Address, B256, aliases::U96};
use gridlease_bindings::{
    Market::{self, MarketErrors},
    MarketAdmin, MarketLens,
};
use gridlease_tests::{assert_revert, fixture::*};

/// Rate PRICE = 0.001 USDC/s = 1,000 units per second.
const PER_SEC: u128 = 1_000;
/// `CloseReason` values.
const TENANT_CLOSED: u8 = 0;
const PROVIDER_CLOSED: u8 = 1;
const EXPIRED: u8 = 2;
const EXHAUSTED: u8 = 3;
const COMPLETED: u8 = 5;

fn withdraw(s: &mut Suite, who: Address) -> u128 {
    let (m, tok) = (s.market, s.token);
    let r = s
        .chain
        .send(
            who,
            m,
            Market::withdrawCall {
                token: tok,
                to: who,
            },
        )
        .expect_success();
    r.event::<Market::Withdrawn>().amount.to()
}

fn protocol_fees(s: &mut Suite) -> u128 {
    let (lens, token) = (s.lens, s.token);
    s.chain
        .view(lens, MarketLens::protocolFeesCall { token })
        .to()
}

fn closed(r: gridlease_tests::evm::Receipt) -> Market::LeaseClosed {
    r.expect_success().event::<Market::LeaseClosed>()
}

// ------------------------------------------------------------------ settle (service leases)

#[test]
fn settle_pays_provider_fees_and_keeper_exactly() {
    // ESC-04, KPR-04: 100 s at 1,000 units/s = 100,000; 1% protocol, 0.1% keeper.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let k = s.keeper.address;
    let r = s.settle(k, vec![id]).expect_success();
    let ev = r.event::<Market::LeaseSettled>();
    assert_eq!(ev.amount.to::<u128>(), 100 * PER_SEC);
    assert_eq!(ev.escrowLeft.to::<u128>(), 10 * USDC - 100 * PER_SEC);
    assert_eq!(s.credit(s.provider(0)), 100_000 - 1_000 - 100);
    assert_eq!(s.credit(k), 100);
    assert_eq!(protocol_fees(&mut s), 1_000);
}

#[test]
fn settle_skips_batch_leases_until_their_result_stands() {
    // MEC-01/02 foundation: a batch lease's pay is held; settling it moves nothing, pays no fee.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(1_000);
    let k = s.keeper.address;
    let r = s.settle(k, vec![id]).expect_success();
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    assert_eq!(s.job(id).escrow.to::<u128>(), 10 * USDC);
    assert_eq!((s.credit(k), s.credit(s.provider(0))), (0, 0));
    // Posted, it is held: still nothing settles during the challenge window.
    s.post(0, id, b"out").0.expect_success();
    s.chain.warp(100);
    let r = s.settle(k, vec![id]).expect_success();
    assert!(r.events::<Market::LeaseSettled>().is_empty());
}

#[test]
fn settle_is_idempotent_and_pays_no_fee_for_nothing() {
    // KPR-04, ESC-16: a second settle in the same second changes nothing; empty batch, unknown
    // and inactive ids are skipped, not reverted.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(10);
    let k = s.keeper.address;
    s.settle(k, vec![id]).expect_success();
    let keeper_credit = s.credit(k);
    let r = s.settle(k, vec![id, B256::repeat_byte(3)]).expect_success();
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    assert_eq!(s.credit(k), keeper_credit);
    s.settle(k, vec![]).expect_success();
    assert_eq!(s.credit(k), keeper_credit);
}

#[test]
fn settle_by_tenant_earns_keeper_fee_like_any_caller() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let t = s.tenant(0);
    s.settle(t, vec![id]).expect_success();
    // settle() pays the keeper fee to whoever calls, out of the provider's share: a tenant that
    // settles its own lease earns it like a keeper (close, by contrast, pays parties no fee).
    assert_eq!(s.credit(t), 100);
    assert_eq!(s.credit(s.provider(0)), 100_000 - 1_000 - 100);
}

#[test]
fn settle_path_independent_within_k_units() {
    // ESC-05: k settlements pay at most k-1 units less than one settlement.
    let mut one = Suite::new();
    let a = one.service_lease(0, 0, 10 * USDC);
    let mut many = Suite::new();
    let b = many.service_lease(0, 0, 10 * USDC);
    let t0 = one.tenant(0);
    let mut k = 0u128;
    for step in [1u64, 7, 13, 29, 61, 3, 150] {
        many.keep_alive(0, step);
        many.settle(t0, vec![b]).expect_success();
        k += 1;
        one.keep_alive(0, step);
    }
    one.settle(t0, vec![a]).expect_success();
    let (ja, jb) = (one.job(a), many.job(b));
    let paid_one = 10 * USDC - ja.escrow.to::<u128>();
    let paid_many = 10 * USDC - jb.escrow.to::<u128>();
    assert!(
        paid_many <= paid_one && paid_one - paid_many < k,
        "{paid_one} vs {paid_many}"
    );
    assert_eq!(paid_one, 264 * PER_SEC);
}

#[test]
fn settle_caps_at_escrow_and_flags_low_balance() {
    // ESC-07, ESC-15: a long gap pays exactly the deposit, never more; low balance is signalled.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, USDC); // 1,000 s of runway, low-balance window 600 s
    s.keep_alive(0, 450);
    let r = s.settle(s.tenant(0), vec![id]).expect_success();
    let low = r.event::<Market::LowBalance>();
    assert_eq!(low.escrowLeft.to::<u128>(), USDC - 450 * PER_SEC);
    assert_eq!(low.depletesAt.to::<u64>(), s.chain.now() + 550);
    assert!(s.job(id).lowBalance);
    // ESC-15: a gap far past depletion (but before expiry) pays exactly the rest of the deposit.
    s.keep_alive(0, 2_000);
    let paid = s
        .settle(s.tenant(0), vec![id])
        .expect_success()
        .event::<Market::LeaseSettled>();
    assert_eq!(paid.amount.to::<u128>(), USDC - 450 * PER_SEC);
    assert_eq!(s.job(id).escrow, U96::ZERO);
    let k = s.keeper.address;
    let r = closed(s.close(k, id));
    assert_eq!((r.reason, r.refund.to::<u128>()), (EXHAUSTED, 0));
}

#[test]
fn settle_pays_nothing_across_a_lapse() {
    // MEC-09 / v1 finding 8: a late heartbeat ends the epoch; the lease is paid up to the lapse,
    // never for it, and never again after it.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.keep_alive(0, 100);
    s.chain.warp(HEARTBEAT + 200); // silent past the period: the lapse starts 100 + 300 s in
    s.heartbeat(0).expect_success(); // a new epoch
    s.keep_alive(0, 100);
    let paid = s
        .settle(s.tenant(0), vec![id])
        .expect_success()
        .event::<Market::LeaseSettled>();
    assert_eq!(
        paid.amount.to::<u128>(),
        (100 + HEARTBEAT as u128) * PER_SEC
    );
    s.keep_alive(0, 100);
    let r = s.settle(s.tenant(0), vec![id]).expect_success();
    assert!(r.events::<Market::LeaseSettled>().is_empty());
}

// ------------------------------------------------------------------ top-up

#[test]
fn top_up_after_depletion_reverts_and_nothing_paid_for_gap() {
    // ESC-08.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, USDC);
    s.keep_alive(0, 2_000);
    let (t, p) = (s.tenant(0), s.provider(0));
    let r = s.top_up(t, id, USDC, p);
    assert_revert!(r, MarketErrors::LeaseDepleted);
}

#[test]
fn top_up_of_a_lapsed_service_lease_reverts() {
    // MEC-09, ESC-08: a lapsed lease cannot be revived by money.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(HEARTBEAT + 1);
    let (t, p) = (s.tenant(0), s.provider(0));
    assert_revert!(s.top_up(t, id, USDC, p), MarketErrors::LeaseDepleted);
}

#[test]
fn top_up_while_streaming_extends_runway() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, USDC);
    s.keep_alive(0, 500);
    let (t, p) = (s.tenant(0), s.provider(0));
    let r = s.top_up(t, id, USDC, p).expect_success();
    assert_eq!(
        r.event::<Market::ToppedUp>().escrow.to::<u128>(),
        2 * USDC - 500 * PER_SEC
    );
    assert!(!s.job(id).lowBalance);
}

#[test]
fn top_up_of_a_running_batch_lease_raises_its_budget_but_not_after_its_result() {
    // MEC-14: a top-up after the result is refused (it could only be refunded).
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, USDC);
    let (t, p) = (s.tenant(0), s.provider(0));
    s.top_up(t, id, USDC, p).expect_success();
    assert_eq!(s.job(id).escrow.to::<u128>(), 2 * USDC);
    s.chain.warp(10);
    s.post(0, id, b"done").0.expect_success();
    assert_revert!(s.top_up(t, id, USDC, p), MarketErrors::LeaseHeld);
}

#[test]
fn top_up_reverts_on_wrong_provider_or_zero() {
    // AUC-16: a top-up names the provider it expects.
    let mut s = Suite::new();
    let id = s.lease(USDC);
    let (t, p0, p1) = (s.tenant(0), s.provider(0), s.provider(1));
    assert_revert!(s.top_up(t, id, 1, p1), MarketErrors::ProviderMismatch);
    assert_revert!(s.top_up(t, id, 0, p0), MarketErrors::ZeroAmountMarket);
}

// ------------------------------------------------------------------ close

#[test]
fn close_service_by_tenant_settles_and_refunds() {
    // ESC-09: provider gets earned, tenant gets deposit - earned; a second close reverts.
    let mut s = Suite::new();
    let before = s.balance(s.token, s.tenant(0));
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let t = s.tenant(0);
    let ev = closed(s.close(t, id));
    assert_eq!(
        (ev.reason, ev.paid.to::<u128>()),
        (TENANT_CLOSED, 100 * PER_SEC)
    );
    assert_eq!(ev.refund.to::<u128>(), 10 * USDC - 100 * PER_SEC);
    assert!(!ev.held);
    assert_eq!(s.balance(s.token, t), before - 100 * PER_SEC);
    let p0 = s.provider(0);
    assert_eq!(withdraw(&mut s, p0), 100_000 - 1_000);
    assert_revert!(s.close(t, id), MarketErrors::LeaseNotActive);
    // Collateral released.
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
}

#[test]
fn close_batch_by_tenant_pays_time_used_only_when_acknowledged() {
    // The tenant's own choice is the one way to pay for a batch lease without a result: the time
    // used by an acknowledged lease, before its deadline.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let t = s.tenant(0);
    let ev = closed(s.close(t, id));
    assert_eq!(
        (ev.reason, ev.paid.to::<u128>()),
        (TENANT_CLOSED, 100 * PER_SEC)
    );
    assert!(
        !ev.held,
        "acknowledged, before the deadline: no fault possible"
    );
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
    // Awarded by a keeper and not acknowledged: nothing paid.
    let id = s.lease(10 * USDC);
    s.chain.warp(100);
    let ev = closed(s.close(t, id));
    assert_eq!(
        (ev.paid.to::<u128>(), ev.refund.to::<u128>()),
        (0, 10 * USDC)
    );
}

#[test]
fn close_service_by_provider_operator_allowed() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let op = s.operator(0);
    assert_eq!(closed(s.close(op, id)).reason, PROVIDER_CLOSED);
}

#[test]
fn close_service_by_third_party_only_when_expired_exhausted_or_lapsed() {
    // KPR-01/KPR-02: conditions re-checked on chain.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let k = s.keeper.address;
    assert_revert!(s.close(k, id), MarketErrors::LeaseNotClosable);
    s.keep_alive(0, 3_600);
    let ev = closed(s.close(k, id));
    assert_eq!(
        (ev.reason, ev.paid.to::<u128>()),
        (EXPIRED, 3_600 * PER_SEC)
    );
    assert_eq!(ev.keeperFee.to::<u128>(), 3_600);
    // Not charged after close: time passing changes nothing.
    s.chain.warp(10_000);
    let lens = s.lens;
    assert_eq!(
        s.chain.view(lens, MarketLens::accruedCall { id }),
        U96::ZERO
    );
}

#[test]
fn held_result_completes_by_anyone_after_its_window() {
    // A batch result stands after its challenge window: anyone closes it, the keeper earns its
    // fee out of the pay, the collateral is released.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    s.post(0, id, b"result").0.expect_success();
    let k = s.keeper.address;
    assert_revert!(s.close(k, id), MarketErrors::LeaseHeld);
    s.chain.warp(CHALLENGE_WINDOW);
    assert_revert!(s.close(k, id), MarketErrors::LeaseHeld);
    s.chain.warp(1);
    let ev = closed(s.close(k, id));
    assert_eq!(
        (ev.reason, ev.paid.to::<u128>()),
        (COMPLETED, 100 * PER_SEC)
    );
    assert_eq!(ev.keeperFee.to::<u128>(), 100);
    assert!(!ev.held);
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
}

#[test]
fn close_race_second_keeper_reverts() {
    // KPR-03: two keepers, same close; the first wins, the second reverts cheaply.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.keep_alive(0, 3_600);
    let (k1, k2) = (s.keeper.address, s.tenants[3].address);
    s.close(k1, id).expect_success();
    let r = s.close(k2, id);
    assert_revert!(r, MarketErrors::LeaseNotActive);
    assert!(r.gas_used < 40_000);
    assert_eq!(s.credit(k2), 0);
}

// ------------------------------------------------------------------ withdraw

#[test]
fn withdraw_reverts_on_zero_recipient_or_nothing() {
    // ESC-10.
    let mut s = Suite::new();
    let (m, tok, p) = (s.market, s.token, s.provider(0));
    let r = s.chain.send(
        p,
        m,
        Market::withdrawCall {
            token: tok,
            to: Address::ZERO,
        },
    );
    assert_revert!(r, MarketErrors::ZeroAddressMarket);
    let r = s
        .chain
        .send(p, m, Market::withdrawCall { token: tok, to: p });
    assert_revert!(r, MarketErrors::NothingToWithdrawMarket);
}

#[test]
fn withdraw_only_moves_own_credit() {
    // ESC-10/PD-08: the operator (hot key) cannot withdraw the provider's earnings.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let t = s.tenant(0);
    s.close(t, id).expect_success();
    let (m, tok, op) = (s.market, s.token, s.operator(0));
    let r = s
        .chain
        .send(op, m, Market::withdrawCall { token: tok, to: op });
    assert_revert!(r, MarketErrors::NothingToWithdrawMarket);
    assert_eq!(s.credit(s.provider(0)), 99_000);
}

#[test]
fn withdraw_fees_goes_to_treasury() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let t = s.tenant(0);
    s.close(t, id).expect_success();
    let (m, tok, k, tr) = (s.market, s.token, s.keeper.address, s.treasury.address);
    s.chain
        .send(k, m, MarketAdmin::withdrawFeesCall { token: tok })
        .expect_success();
    assert_eq!(s.balance(tok, tr), 1_000);
}

// ------------------------------------------------------------------ governance

#[test]
fn fee_change_is_not_retroactive() {
    // ESC-11, GOV-02: the fee is fixed at award.
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC);
    let mut params = default_params();
    params.protocolFeeBps = 1_000;
    s.set_params(params).expect_success();
    s.chain.warp(100);
    s.post(0, id, b"out").0.expect_success();
    let t = s.tenant(0);
    assert_eq!(closed(s.close(t, id)).protocolFee.to::<u128>(), 1_000);
}

#[test]
fn pause_blocks_new_money_but_not_exits() {
    // ESC-12: accrual continues, settle/close/withdraw work while paused.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    let mut params = default_params();
    params.paused = true;
    s.set_params(params).expect_success();
    s.chain.warp(100);
    let t = s.tenant(0);
    s.settle(t, vec![id]).expect_success();
    s.close(t, id).expect_success();
    let p0 = s.provider(0);
    // The tenant settled and so took the 0.1% keeper fee (100 units) of the 100,000 settled.
    assert_eq!(withdraw(&mut s, p0), 98_900);
}

#[test]
fn governance_setters_reject_non_owner_and_out_of_bounds() {
    // ADM-01, ADM-04.
    let mut s = Suite::new();
    let m = s.market;
    let results = s.results;
    for who in [s.keeper.address, s.tenant(0), s.provider(0)] {
        let r = s.chain.send(
            who,
            m,
            MarketAdmin::setParamsCall {
                params_: admin_params(default_params()),
            },
        );
        assert_revert!(r, MarketErrors::OwnableUnauthorizedAccount);
        let r = s
            .chain
            .send(who, m, MarketAdmin::setTreasuryCall { treasury_: who });
        assert_revert!(r, MarketErrors::OwnableUnauthorizedAccount);
        let r = s.chain.send(
            who,
            m,
            MarketAdmin::configureTokenCall {
                token: who,
                allowed: true,
            },
        );
        assert_revert!(r, MarketErrors::OwnableUnauthorizedAccount);
        let r = s
            .chain
            .send(who, m, MarketAdmin::addModuleCall { module: results });
        assert_revert!(r, MarketErrors::OwnableUnauthorizedAccount);
    }
    let bad: Vec<Box<dyn Fn(&mut gridlease_bindings::IMarket::Params)>> = vec![
        Box::new(|p| p.protocolFeeBps = 1_001),
        Box::new(|p| p.keeperFeeBps = 101),
        Box::new(|p| p.minPricePerSecond = 0),
        Box::new(|p| p.maxBidWindow = 0),
        Box::new(|p| p.awardGrace = 59),
        Box::new(|p| p.lowBalanceWindow = 7 * 86_400 + 1),
        // GOV-04: maxLeaseDuration + 2 * faultHorizon must stay below the unbonding period.
        Box::new(|p| p.maxLeaseDuration = (UNBONDING - 2 * FAULT_HORIZON) as u32),
    ];
    for mutate in bad {
        let mut p = default_params();
        mutate(&mut p);
        assert_revert!(s.set_params(p), MarketErrors::ParameterOutOfBounds);
    }
    let mut edge = default_params();
    edge.maxLeaseDuration = (UNBONDING - 2 * FAULT_HORIZON - 1) as u32;
    s.set_params(edge).expect_success();
}

#[test]
fn ownership_transfer_is_two_step() {
    // ADM-02.
    let mut s = Suite::new();
    let (gov, m, new_owner, outsider) = (s.gov.address, s.market, s.tenant(3), s.keeper.address);
    s.chain
        .send(
            gov,
            m,
            Market::transferOwnershipCall {
                newOwner: new_owner,
            },
        )
        .expect_success();
    let r = s.chain.send(outsider, m, Market::acceptOwnershipCall {});
    assert_revert!(r, MarketErrors::OwnableUnauthorizedAccount);
    s.chain
        .send(new_owner, m, Market::acceptOwnershipCall {})
        .expect_success();
    assert_eq!(s.chain.view(m, Market::ownerCall {}), new_owner);
}

// ------------------------------------------------------------------ extremes and liveness

#[test]
fn accrual_never_overflows_at_extremes() {
    // ESC-06, TOK-10: maximum rate, maximum escrow, decades of elapsed time.
    let mut s = Suite::new();
    s.register(0, 10_000 * USDC);
    let max96 = (1u128 << 96) - 1;
    s.mint(s.token, s.tenant(1), max96);
    let mut p = s.order(max96, max96);
    p.salt = B256::with_last_byte(9);
    p.instant = true;
    let id = s.create(1, p);
    s.bid(0, id, max96).expect_success();
    s.chain.warp(3_599);
    s.post(0, id, &[]).0.expect_success();
    s.chain.warp(100 * 365 * 86_400);
    let t = s.tenant(1);
    let ev = closed(s.close(t, id));
    // Paid for the time to the result (3,599 s), and every unit is accounted for.
    assert_eq!(ev.reason, COMPLETED);
    assert_eq!(ev.paid.to::<u128>(), max96 * 3_599 / 1_000_000_000_000);
    assert_eq!(ev.paid.to::<u128>() + ev.refund.to::<u128>(), max96);
    assert_eq!(s.job(id).status, 3);
}

#[test]
fn close_with_too_little_gas_never_loses_the_refund_kpr05() {
    // KPR-05: the tenant refund is pushed with a call whose failure books a credit instead. A
    // keeper that supplies just too little gas must not make that push fail while the lease
    // still closes: at every gas limit the close either reverts whole or the tenant gets the
    // full refund (transfer or credit).
    let mut completed = 0;
    for gas in (40_000..220_000).step_by(2_500) {
        let mut s = Suite::new();
        let id = s.instant_lease(0, 0, 10 * USDC);
        s.chain.warp(100);
        s.post(0, id, b"r").0.expect_success();
        s.chain.warp(CHALLENGE_WINDOW + 1);
        let (tenant, token, market, keeper) = (s.tenant(0), s.token, s.market, s.keeper.address);
        let before = s.balance(token, tenant);
        let r = s
            .chain
            .send_with_gas(keeper, market, Market::closeCall { leaseId: id }, gas);
        let job = s.job(id);
        if !r.success {
            assert_eq!(job.status, 2, "a failed close leaves the lease active");
            assert_eq!(s.balance(token, tenant), before);
            continue;
        }
        completed += 1;
        let refund: u128 = r.event::<Market::LeaseClosed>().refund.to();
        let got = s.balance(token, tenant) - before + s.credit(tenant);
        assert_eq!(got, refund, "gas {gas}: refund lost");
        assert_eq!(refund, 10 * USDC - 100 * PER_SEC);
    }
    assert!(completed > 0, "some gas limit is enough to close");
}

#[test]
fn parties_settle_close_and_withdraw_without_keepers_while_paused_kpr06() {
    // KPR-06: with no keeper around (and the market paused), tenant and provider still settle,
    // close and withdraw their own money.
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.chain.warp(100);
    let mut p = default_params();
    p.paused = true;
    s.set_params(p).expect_success();
    let (tenant, owner, op) = (s.tenant(0), s.provider(0), s.operator(0));
    s.settle(tenant, vec![id]).expect_success();
    s.chain.warp(50);
    s.close(op, id).expect_success();
    let paid = withdraw(&mut s, owner);
    let tenant_fee = withdraw(&mut s, tenant);
    // 150 s at 1,000/s: 1% protocol; the tenant earned the keeper fee on its own settle (100 s).
    assert_eq!(paid, 150 * PER_SEC - 1_500 - 100);
    assert_eq!(tenant_fee, 100);
    assert_eq!(s.job(id).status, 3);
}

#[test]
fn a_service_lease_is_not_paid_before_it_is_acknowledged() {
    // A keeper-awarded service lease pays nothing until its provider acknowledges it.
    let mut s = Suite::new();
    s.register(0, 10_000 * USDC);
    s.heartbeat(0).expect_success();
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    p.jobKind = 2;
    let id = s.create(0, p);
    s.bid(0, id, PRICE).expect_success();
    s.chain.warp(601);
    s.heartbeat(0).expect_success();
    let k = s.keeper.address;
    s.award(k, id).expect_success();
    s.chain.warp(60);
    let r = s.settle(k, vec![id]).expect_success();
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    s.ack(0, id).expect_success();
    s.chain.warp(40);
    let ev = s
        .settle(k, vec![id])
        .expect_success()
        .event::<Market::LeaseSettled>();
    // From the start: acknowledged in time, the whole live time is paid.
    assert_eq!(ev.amount.to::<u128>(), 100 * PER_SEC);
}
