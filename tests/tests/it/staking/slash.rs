//! `slash`, and the hooks only the market may call (`tryLock`, `release`).

use proptest::prelude::*;

use super::*;

// ==================================================================== slash

#[test]
fn a_front_run_unbond_cannot_reach_locked_collateral_and_the_slash_lands_stk03_stk04() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(600)));
    // The provider sees the slash in the mempool and unbonds all it can first: only free stake.
    b.unbond(0, usd(400)).expect_success();
    let provider = b.owner(0);
    let r = b.unbond(0, 1);
    reverts!(r, InsufficientFreeStake(provider, u(1u8), U256::ZERO));
    let r = b.slash(0, pen(usd(600), 1));
    assert_eq!(split(r), (usd(600), 0, 0, usd(600)));
    assert_eq!(b.state(0), (0, 0, usd(400)));
    let treasury = b.s.treasury.address;
    assert_eq!(b.credit(treasury), usd(600));
    b.warp_to_release(0);
    let e = ev::<Staking::UnbondedWithdrawn>(b.withdraw_unbonded(0));
    assert_eq!(e.amount, u(usd(400)));
    b.assert_conserved();
}

#[test]
fn slash_never_takes_unbonding_stake() {
    // Only what a lease locked is at risk: unbonding stake was never committed to a lease.
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(500)));
    b.unbond(0, usd(500)).expect_success();
    b.slash(0, pen(usd(500), 1)).expect_success();
    assert_eq!(b.state(0), (0, 0, usd(500)));
    assert_eq!(b.totals(), (0, usd(500), usd(500)));
    b.assert_conserved();
}

#[test]
fn slash_takes_min_and_never_reverts_when_penalty_exceeds_stake_stk06() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.unbond(0, usd(200)).expect_success();
    let r = b.slash(0, pen(usd(10_000), 1));
    assert_eq!(split(r).0, usd(800));
    assert_eq!(b.state(0), (0, 0, usd(200)));
    // Nothing left and an absurd penalty: still no revert, nothing taken.
    let (hook, provider, max) = (b.hook, b.owner(0), U256::MAX);
    let zero = Address::ZERO;
    let call = Staking::slashCall::new((provider, max, evidence(2), zero, max, zero, max));
    assert_eq!(split(b.send(hook, call)), (0, 0, 0, 0));
    b.assert_conserved();
}

#[test]
fn slash_takes_the_lock_and_clamps_locked_to_stake_stk05() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(800)));
    b.slash(0, pen(usd(500), 1)).expect_success();
    assert_eq!(b.state(0), (usd(500), usd(300), 0));
    b.slash(0, pen(usd(300), 2)).expect_success();
    assert_eq!(b.state(0), (usd(200), 0, 0));
    assert_eq!(b.free_stake(0), usd(200));
}

#[test]
fn slash_pays_the_tenant_its_loss_the_reporter_its_cut_and_the_treasury_the_rest_stk14() {
    // The tenant gets at most the compensation, the reporter at most its cut of it; nothing of the
    // slash beyond the tenant's loss reaches either (MEC-07), so the split always adds up and a
    // reporter that is not a victim earns only from the victim's share.
    let mut b = Bed::new();
    b.staked(0, usd(100_000));
    let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
    let treasury = b.s.treasury.address;
    let big = usd(1_000) + 7;
    let cases = [
        (1, 0, 0),
        (3, 1, 1),
        (999, 1_000, 50),
        (big, usd(300), usd(15)),
        (usd(5), 0, usd(1)),
    ];
    for (n, (penalty, comp, cut)) in cases.into_iter().enumerate() {
        let credits = |b: &mut Bed| (b.credit(tenant), b.credit(reporter), b.credit(treasury));
        let before = credits(&mut b);
        assert!(b.lock(0, penalty));
        let a = pen(penalty, n as u64 + 1).to(tenant, comp, reporter, cut);
        let (slashed, t, r, tr) = split(b.slash(0, a));
        let to_tenant = comp.min(penalty);
        let to_reporter = cut.min(to_tenant);
        assert_eq!(
            (slashed, t, r),
            (penalty, to_tenant - to_reporter, to_reporter)
        );
        assert_eq!(t + r + tr, slashed, "split adds up");
        assert!(t + r <= comp, "never more than the tenant lost");
        let expected = (before.0 + t, before.1 + r, before.2 + tr);
        assert_eq!(credits(&mut b), expected);
    }
    b.assert_conserved();
}

#[test]
fn slash_gives_nothing_to_zero_tenant_or_zero_reporter_stk14() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let treasury = b.s.treasury.address;
    let a = pen(usd(100), 1).to(Address::ZERO, usd(40), Address::ZERO, usd(5));
    assert_eq!(split(b.slash(0, a)), (usd(100), 0, 0, usd(100)));
    assert_eq!((b.credit(treasury), b.credit(Address::ZERO)), (usd(100), 0));
}

#[test]
fn slash_reverts_evidence_already_used_stk09() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.staked(1, usd(1_000));
    b.slash(0, pen(usd(100), 7)).expect_success();
    for i in [0, 1] {
        let r = b.slash(i, pen(usd(100), 7));
        reverts!(r, EvidenceAlreadyUsed(evidence(7)));
    }
    assert_eq!((b.state(0).0, b.state(1).0), (usd(900), usd(1_000)));
}

// ==================================================================== market hooks

#[test]
fn market_hooks_revert_caller_not_market_adm01() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let (provider, amount) = (b.owner(0), u(1u8));
    for caller in outsiders(&b.s) {
        let rs = [
            b.send(caller, Staking::tryLockCall { provider, amount }),
            b.send(caller, Staking::releaseCall { provider, amount }),
            b.slash_from(caller, 0, pen(1, 1).to(caller, 1, caller, 1)),
        ];
        for r in rs {
            reverts!(r, CallerNotMarket(caller));
        }
    }
    assert_eq!(b.state(0), (usd(1_000), 0, 0));
}

#[test]
fn try_lock_returns_true_when_enough_and_false_when_short() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(!b.lock(0, usd(1_000) + 1));
    assert_eq!(b.state(0), (usd(1_000), 0, 0), "failed lock: no-op");
    assert!(b.lock(0, usd(600)));
    assert!(!b.lock(0, usd(400) + 1));
    assert!(b.lock(0, usd(400)));
    assert_eq!(b.state(0), (usd(1_000), usd(1_000), 0));
    assert_eq!(b.free_stake(0), 0);
}

#[test]
fn release_saturates_at_zero() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(300)));
    b.release(0, u(usd(100)));
    assert_eq!(b.state(0), (usd(1_000), usd(200), 0));
    b.release(0, U256::MAX);
    assert_eq!(b.state(0), (usd(1_000), 0, 0));
}

/// A stake or penalty near 1 unit or near the 96-bit maximum.
fn edge() -> impl Strategy<Value = u128> {
    let max = (1u128 << 96) - 1;
    prop_oneof![1u128..=1_000, max - 1_000..=max, 1u128..=max]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_tiny_slash_is_never_free_and_rounding_never_takes_more_than_the_penalty_stk07(
        stake in edge(),
        penalty in edge(),
        comp in edge(),
        cut in edge(),
    ) {
        // STK-07: slashes here take a lease's whole collateral (no percentage), so what rounds is
        // only the split. Near 1 unit and near the 96-bit maximum: the slash is min(penalty,
        // stake), so at least one unit of a provider that has any; the stake falls by exactly it;
        // the split adds up to it, and the tenant and reporter get no more than the compensation.
        let mut b = Bed::new();
        let owner = b.owner(0);
        let token = b.token;
        b.s.mint(token, owner, stake);
        b.staked(0, stake);
        let locked = b.lock(0, penalty.min(stake));
        prop_assert!(locked);
        let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
        let (slashed, t, r, tr) = split(b.slash(0, pen(penalty, 1).to(tenant, comp, reporter, cut)));
        prop_assert_eq!(slashed, penalty.min(stake));
        prop_assert!(slashed >= 1);
        prop_assert_eq!(b.state(0).0, stake - slashed);
        prop_assert_eq!(t + r + tr, slashed);
        prop_assert!(t + r <= comp);
        b.assert_conserved();
    }
}
