//! Governance: the unbonding period, the bound market, the treasury, ownership.

use super::*;

#[test]
fn set_unbonding_period_reverts_out_of_bounds_adm04() {
    let mut b = Bed::new();
    let (name, min, max) = (b32("unbondingPeriod"), u(MIN_PERIOD), u(MAX_PERIOD));
    for bad in [MIN_PERIOD - 1, MAX_PERIOD + 1] {
        let value = u(bad);
        let r = b.gov(period(bad));
        reverts!(r, StakingParameterOutOfBounds(name, value, min, max));
    }
    for ok in [MIN_PERIOD, MAX_PERIOD] {
        let e = ev::<Staking::UnbondingPeriodSet>(b.gov(period(ok)));
        assert_eq!(e.unbondingPeriod, U48::from(ok));
        assert_eq!(b.view(Staking::unbondingPeriodCall {}), U48::from(ok));
    }
}

#[test]
fn the_market_is_bound_once_and_never_replaced_gov03_gov05() {
    // v1 findings 6 and 7: a new market made the old one's closes revert, or slashed at will.
    let mut b = Bed::new();
    let (hook, other) = (b.hook, Account::numbered(320).address);
    let r = b.gov(Staking::setMarketCall { market_: other });
    reverts!(r, MarketAlreadySet(hook));
    assert_eq!(b.view(Staking::marketCall {}), hook);
    // Only the bound market locks, releases or slashes.
    b.staked(0, usd(1_000));
    let r = b.slash_from(other, 0, pen(usd(1), 1));
    reverts!(r, CallerNotMarket(other));
}

#[test]
fn governance_setters_revert_for_non_owner_adm01() {
    let mut b = Bed::new();
    for c in outsiders(&b.s) {
        let rs = [
            b.send(c, Staking::setMarketCall { market_: c }),
            b.send(c, period(2 * DAY)),
            b.send(c, Staking::setHeartbeatPeriodCall { period: 600 }),
            b.send(c, Staking::setTreasuryCall { treasury_: c }),
            b.send(c, Staking::transferOwnershipCall { newOwner: c }),
            b.send(c, Staking::renounceOwnershipCall {}),
        ];
        for r in rs {
            reverts!(r, OwnableUnauthorizedAccount(c));
        }
    }
    let (hook, gov) = (b.hook, b.s.gov.address);
    assert_eq!(b.view(Staking::marketCall {}), hook);
    assert_eq!(b.view(Staking::ownerCall {}), gov);
}

#[test]
fn set_market_and_set_treasury_revert_zero_address() {
    let mut b = Bed::new();
    let zero = Address::ZERO;
    reverts!(b.gov(Staking::setMarketCall::new((zero,))), ZeroAddress());
    reverts!(b.gov(Staking::setTreasuryCall::new((zero,))), ZeroAddress());
}

#[test]
fn set_treasury_succeeds_redirects_slash_remainder() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let (old, new) = (b.s.treasury.address, Account::numbered(302).address);
    let r = b.gov(Staking::setTreasuryCall { treasury_: new });
    assert_eq!(ev::<Staking::TreasurySet>(r).treasury, new);
    b.slash(0, pen(usd(10), 1)).expect_success();
    assert_eq!((b.credit(new), b.credit(old)), (usd(10), 0));
}

#[test]
fn ownership_transfer_is_two_step_adm02() {
    let mut b = Bed::new();
    let (gov, outsider) = (b.s.gov.address, b.s.keeper.address);
    let next = Account::numbered(303).address;
    b.s.chain.fund(next);
    let r = b.gov(Staking::transferOwnershipCall { newOwner: next });
    r.expect_success();
    assert_eq!(b.view(Staking::ownerCall {}), gov, "not before acceptance");
    assert_eq!(b.view(Staking::pendingOwnerCall {}), next);
    let r = b.send(outsider, Staking::acceptOwnershipCall {});
    reverts!(r, OwnableUnauthorizedAccount(outsider));
    let r = b.send(next, Staking::acceptOwnershipCall {});
    r.expect_success();
    assert_eq!(b.view(Staking::ownerCall {}), next);
    assert_eq!(b.view(Staking::pendingOwnerCall {}), Address::ZERO);
    let r = b.gov(Staking::setHeartbeatPeriodCall { period: 600 });
    reverts!(r, OwnableUnauthorizedAccount(gov));
    let r = b.send(next, Staking::setHeartbeatPeriodCall { period: 600 });
    r.expect_success();
}

#[test]
fn renounce_ownership_never_blocks_provider_exit_adm02() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.gov(Staking::renounceOwnershipCall {}).expect_success();
    assert_eq!(b.view(Staking::ownerCall {}), Address::ZERO);
    b.unbond(0, usd(1_000)).expect_success();
    b.warp_to_release(0);
    let owner = b.owner(0);
    let before = b.balance(owner);
    b.withdraw_unbonded(0).expect_success();
    assert_eq!(b.balance(owner), before + usd(1_000));
}

#[test]
fn set_unbonding_period_applies_only_to_later_unbonds_stk16() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.staked(1, usd(1_000));
    b.unbond(0, usd(500)).expect_success();
    let at = b.release_at(0);
    b.gov(period(MIN_PERIOD)).expect_success();
    assert_eq!(b.release_at(0), at, "queued unbond keeps releaseAt");
    b.unbond(1, usd(500)).expect_success();
    assert_eq!(b.release_at(1), U48::from(b.s.chain.now() + MIN_PERIOD));
    b.warp_to_release(1);
    b.withdraw_unbonded(1).expect_success();
    let (provider, now) = (b.owner(0), U48::from(b.s.chain.now()));
    let r = b.withdraw_unbonded(0);
    reverts!(r, UnbondingNotReleased(provider, at, now));
}

#[test]
fn unbond_keeps_release_at_of_queued_stake_after_period_shortened_stk16() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.unbond(0, usd(999)).expect_success();
    let queued = b.release_at(0);
    b.gov(period(MIN_PERIOD)).expect_success();
    b.s.chain.warp(60);
    b.unbond(0, 1).expect_success();
    let now = b.release_at(0);
    assert!(now >= queued, "released at {now}, before {queued}");
}

#[test]
fn market_set_params_keeps_max_lease_below_unbonding_minus_two_horizons_gov04() {
    let mut s = Suite::new();
    let staking = s.staking;
    let unbonding: u64 = s.chain.view(staking, Staking::unbondingPeriodCall {}).to();
    let limit = u32::try_from(unbonding - 2 * FAULT_HORIZON - 1).expect("fits");
    let mut p = default_params();
    p.maxLeaseDuration = limit + 1;
    let r = s.set_params(p.clone());
    let (value, min, max) = (u(limit + 1), u(1u8), u(limit));
    let name = b32("maxLeaseDuration");
    let e = <Market::ParameterOutOfBounds as SolError>::new((name, value, min, max));
    assert_eq!(
        r.revert_as::<MarketErrors>(),
        MarketErrors::ParameterOutOfBounds(e)
    );
    p.maxLeaseDuration = limit;
    s.set_params(p).expect_success();
    let market = s.market;
    assert_eq!(
        s.chain.view(market, Market::paramsCall {}).maxLeaseDuration,
        limit
    );
}

#[test]
fn staking_set_unbonding_period_keeps_the_market_bound_gov04() {
    // The staking side of the same bound: a period that would let collateral finish unbonding
    // before a lease and its fault horizon end is refused.
    let mut s = Suite::new();
    let (market, staking) = (s.market, s.staking);
    let max_lease = u64::from(s.chain.view(market, Market::paramsCall {}).maxLeaseDuration);
    let floor = max_lease + 2 * FAULT_HORIZON;
    let r = s.govern(staking, period(floor));
    let (name, value, min, max) = (
        b32("unbondingPeriod"),
        u(floor),
        u(floor + 1),
        u(MAX_PERIOD),
    );
    reverts!(r, StakingParameterOutOfBounds(name, value, min, max));
    s.govern(staking, period(floor + 1)).expect_success();
}
