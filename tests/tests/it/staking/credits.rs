//! Credits, and token conservation across every step.

use super::*;

#[test]
fn withdraw_credit_pays_exactly_once() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
    let a = pen(usd(100), 1).to(tenant, usd(30), reporter, usd(3));
    b.slash(0, a).expect_success();
    let before = b.balance(tenant);
    let e = ev::<Staking::CreditWithdrawn>(b.withdraw_credit(tenant, tenant));
    assert_eq!((e.account, e.to, e.amount), (tenant, tenant, u(usd(27))));
    assert_eq!(b.balance(tenant), before + usd(27));
    let r = b.withdraw_credit(tenant, tenant);
    reverts!(r, NothingToWithdraw(tenant));
    // The reporter's cut goes to another address.
    let to = Account::numbered(304).address;
    b.withdraw_credit(reporter, to).expect_success();
    assert_eq!((b.balance(to), b.credit(reporter)), (usd(3), 0));
    b.assert_conserved();
}

#[test]
fn withdraw_credit_reverts_zero_address_or_nothing_owed() {
    let mut b = Bed::new();
    let account = b.s.keeper.address;
    reverts!(b.withdraw_credit(account, Address::ZERO), ZeroAddress());
    let r = b.withdraw_credit(account, account);
    reverts!(r, NothingToWithdraw(account));
}

#[test]
fn token_conservation_holds_after_every_step_inv01() {
    let mut b = Bed::new();
    let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
    let treasury = b.s.treasury.address;
    for i in 0..3 {
        b.staked(i, usd(1_000) * (i as u128 + 1));
        b.assert_conserved();
    }
    b.unbond(1, usd(500)).expect_success();
    b.assert_conserved();
    assert!(b.lock(2, usd(1_000)));
    b.unbond(2, usd(2_000)).expect_success();
    let a = pen(usd(1_000), 1).to(tenant, 333, reporter, 33);
    b.slash(2, a).expect_success();
    b.assert_conserved();
    assert!(b.lock(1, usd(1_500)));
    let a = pen(usd(1_700), 2).to(Address::ZERO, 0, reporter, 0);
    b.slash(1, a).expect_success();
    b.assert_conserved();
    for who in [tenant, reporter, treasury] {
        if b.credit(who) > 0 {
            b.withdraw_credit(who, who).expect_success();
        }
        b.assert_conserved();
    }
    b.s.chain.warp(UNBONDING);
    b.withdraw_unbonded(2).expect_success();
    b.withdraw_unbonded(1).expect_success();
    b.assert_conserved();
    b.unbond(0, usd(1_000)).expect_success();
    b.warp_to_release(0);
    b.withdraw_unbonded(0).expect_success();
    b.assert_conserved();
    let (staking, token, donor) = (b.staking, b.token, b.s.tenant(1));
    assert_eq!((b.balance(staking), b.totals()), (0, (0, 0, 0)));
    // A donation only ever adds to the left side.
    let call = MockStablecoin::transferCall::new((staking, u(5u8)));
    b.s.chain.send(donor, token, call).expect_success();
    assert_eq!((b.balance(staking), b.totals()), (5, (0, 0, 0)));
}
