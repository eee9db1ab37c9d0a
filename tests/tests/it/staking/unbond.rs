//! `unbond` and `withdrawUnbonded`.

use super::*;

#[test]
fn unbond_succeeds_emits_unbonded_with_release_at_stk02() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let (owner, at) = (b.owner(0), U48::from(b.s.chain.now() + UNBONDING));
    let e = ev::<Staking::Unbonded>(b.unbond(0, usd(400)));
    assert_eq!((e.provider, e.amount), (owner, u(usd(400))));
    assert_eq!((e.totalUnbonding, e.releaseAt), (u(usd(400)), at));
    assert_eq!(b.release_at(0), at);
    assert_eq!(b.state(0), (usd(600), 0, usd(400)));
    assert_eq!(b.totals(), (usd(600), usd(400), 0));
    b.assert_conserved();
}

#[test]
fn unbond_reverts_zero_amount() {
    let mut b = Bed::new();
    b.staked(0, USDC);
    reverts!(b.unbond(0, 0), ZeroAmount());
}

#[test]
fn unbond_reverts_not_registered() {
    let mut b = Bed::new();
    let provider = b.owner(0);
    reverts!(b.unbond(0, 1), ProviderNotRegistered(provider));
}

#[test]
fn unbond_reverts_more_than_free_stake_stk05() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let provider = b.owner(0);
    // Unbonding `free + 1` fails with exactly that request and that free amount.
    let over = |b: &mut Bed, n: u128| {
        let (requested, free) = (u(n + 1), u(n));
        let r = b.unbond(0, n + 1);
        reverts!(r, InsufficientFreeStake(provider, requested, free));
    };
    over(&mut b, usd(1_000));
    b.unbond(0, usd(600)).expect_success();
    // Already-unbonding stake is not free any more.
    over(&mut b, usd(400));
    // Neither is stake locked as collateral (STK-05).
    assert!(b.lock(0, usd(300)));
    over(&mut b, usd(100));
    b.unbond(0, usd(100)).expect_success();
    assert_eq!(b.state(0), (usd(300), usd(300), usd(700)));
}

#[test]
fn unbond_reverts_collateral_locked_by_active_lease_stk05() {
    let mut s = Suite::new();
    let id = s.instant_lease(0, 0, 10 * USDC); // provider 0: 10,000 staked, 100 locked
    let (provider, staking, tenant) = (s.provider(0), s.staking, s.tenant(0));
    let unbond = |s: &mut Suite, n: u128| {
        let call = Staking::unbondCall { amount: u(n) };
        s.chain.send(provider, staking, call)
    };
    let (requested, free) = (u(usd(10_000)), u(usd(9_900)));
    let r = unbond(&mut s, usd(10_000));
    reverts!(r, InsufficientFreeStake(provider, requested, free));
    unbond(&mut s, usd(9_900)).expect_success();
    let (requested, free) = (u(1u8), U256::ZERO);
    let r = unbond(&mut s, 1);
    reverts!(r, InsufficientFreeStake(provider, requested, free));
    // Closing the (acknowledged, running) lease releases exactly the collateral.
    s.close(tenant, id).expect_success();
    let info = s.provider_info(0);
    assert_eq!(
        (info.stake.to::<u128>(), info.locked.to::<u128>()),
        (usd(100), 0)
    );
    unbond(&mut s, usd(100)).expect_success();
}

#[test]
fn unbond_restarts_release_clock_for_queued_stake() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.unbond(0, usd(100)).expect_success();
    let first = b.release_at(0);
    b.s.chain.warp(DAY);
    b.unbond(0, usd(100)).expect_success();
    let at = U48::from(b.s.chain.now() + UNBONDING);
    assert_eq!((b.state(0).2, b.release_at(0)), (usd(200), at));
    b.s.chain.set_time(first.to());
    let (provider, now) = (b.owner(0), first);
    let r = b.withdraw_unbonded(0);
    reverts!(r, UnbondingNotReleased(provider, at, now));
}

#[test]
fn withdraw_unbonded_reverts_one_second_before_release_stk02() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.unbond(0, usd(400)).expect_success();
    let (provider, at) = (b.owner(0), b.release_at(0));
    let now = at - U48::from(1);
    b.s.chain.set_time(now.to());
    let r = b.withdraw_unbonded(0);
    reverts!(r, UnbondingNotReleased(provider, at, now));
    assert_eq!(b.state(0).2, usd(400));
}

#[test]
fn withdraw_unbonded_succeeds_exactly_once_at_release_stk02() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.unbond(0, usd(400)).expect_success();
    let (owner, staking, to) = (b.owner(0), b.staking, Account::numbered(301).address);
    b.warp_to_release(0);
    let r = b.send(owner, Staking::withdrawUnbondedCall { to });
    let e = ev::<Staking::UnbondedWithdrawn>(r);
    assert_eq!((e.provider, e.to, e.amount), (owner, to, u(usd(400))));
    assert_eq!((b.balance(to), b.balance(staking)), (usd(400), usd(600)));
    assert_eq!((b.state(0), b.release_at(0)), ((usd(600), 0, 0), U48::ZERO));
    reverts!(b.withdraw_unbonded(0), NothingToWithdraw(owner));
    b.assert_conserved();
}

#[test]
fn withdraw_unbonded_reverts_zero_address() {
    let mut b = Bed::new();
    b.staked(0, USDC);
    b.unbond(0, USDC).expect_success();
    let owner = b.owner(0);
    let r = b.send(owner, Staking::withdrawUnbondedCall { to: Address::ZERO });
    reverts!(r, ZeroAddress());
}
