//! Re-entrant token hooks (ESC-13) and donations (ESC-14).

use super::*;

// ==================================================================== ESC-13

/// A hook token (ERC-777 style) listed in the market.
fn hook_token(s: &mut Suite) -> Address {
    listed(s, ReentrantToken::BYTECODE.clone())
}

/// Arm the token's hook to call the market with `call` on its next transfer.
fn arm(s: &mut Suite, token: Address, call: impl SolCall) {
    let (gov, market) = (s.gov.address, s.market);
    let hook = ReentrantToken::setHookCall::new((market, call.abi_encode().into()));
    s.chain.send(gov, token, hook).expect_success();
}

/// The re-entrant call of the last hook failed, on the market's reentrancy guard.
#[track_caller]
fn assert_hook_blocked(s: &mut Suite, token: Address) {
    assert!(!hook_succeeded(s, token), "the re-entrant call must fail");
    let ret = s.chain.view(token, ReentrantToken::lastHookReturnCall {});
    let err = MarketErrors::abi_decode(&ret).expect("a market error");
    let guard = Market::ReentrancyGuardReentrantCall {};
    assert_eq!(err, MarketErrors::ReentrancyGuardReentrantCall(guard));
}

fn hook_succeeded(s: &mut Suite, token: Address) -> bool {
    s.chain
        .view(token, ReentrantToken::lastHookSucceededCall {})
}

/// Control: with a harmless hook the call goes through, so `lastHookSucceeded` can be trusted.
fn assert_hook_fires(s: &mut Suite, token: Address) {
    arm(s, token, Market::paramsCall {});
    let tenant = s.tenant(0);
    let call = MockStablecoin::transferCall::new((tenant, U256::ZERO));
    s.chain.send(tenant, token, call).expect_success();
    assert!(hook_succeeded(s, token));
}

#[test]
fn withdraw_blocks_reentrant_settle_esc13() {
    let mut s = Suite::new();
    let token = hook_token(&mut s);
    let provider = s.provider(0);
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    settle(&mut s, id).expect_success();
    s.chain.warp(10);
    assert_hook_fires(&mut s, token);
    arm(&mut s, token, Market::settleCall { leaseIds: vec![id] });
    assert_eq!(withdrawn(&mut s, token, provider), 989_000);
    assert_hook_blocked(&mut s, token);
    assert_eq!(s.balance(token, provider), 989_000);
    let lens = s.lens;
    let accrued = s.chain.view(lens, MarketLens::accruedCall { id });
    assert_eq!(accrued, u96(10_000), "the re-entrant settle booked nothing");
}

#[test]
fn close_blocks_reentrant_close_esc13() {
    let mut s = Suite::new();
    let token = hook_token(&mut s);
    let tenant = s.tenant(0);
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    assert_hook_fires(&mut s, token);
    arm(&mut s, token, Market::closeCall { leaseId: id });
    let r = s.close(tenant, id);
    assert_eq!(closed(r), [USDC, 990_000, 10_000, 0, 9 * USDC]);
    assert_hook_blocked(&mut s, token);
    assert_eq!(s.balance(token, tenant), 9 * USDC);
    assert_eq!(s.job(id).status, 3, "closed once");
}

#[test]
fn create_order_blocks_reentrant_withdraw_esc13() {
    let mut s = Suite::new();
    let token = hook_token(&mut s);
    let (tenant, market) = (s.tenant(0), s.market);
    s.mint(token, tenant, 10 * USDC);
    assert_hook_fires(&mut s, token);
    arm(&mut s, token, Market::withdrawCall { token, to: tenant });
    let id = s.create(0, order_in(&s, token, 10 * USDC));
    assert_hook_blocked(&mut s, token);
    assert_eq!(s.job(id).escrow, u96(10 * USDC));
    assert_eq!(s.balance(token, market), 10 * USDC);
}

// ==================================================================== ESC-14

#[test]
fn donation_changes_no_credit_or_escrow_esc14() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC);
    s.keep_alive(0, SECS);
    settle(&mut s, id).expect_success();
    let (token, market, donor) = (s.token, s.market, s.tenant(1));
    let people = [s.tenant(0), s.provider(0), s.keeper.address, donor, market];
    let snapshot = |s: &mut Suite| {
        let credits: Vec<u128> = people.iter().map(|&a| credit(s, token, a)).collect();
        let accrued = s.chain.view(s.lens, MarketLens::accruedCall { id });
        (credits, fees(s, token), s.job(id).escrow, accrued)
    };
    let before = snapshot(&mut s);
    let call = MockStablecoin::transferCall::new((market, U256::from(5 * USDC)));
    s.chain.send(donor, token, call).expect_success();
    assert_eq!(snapshot(&mut s), before);
    // Every exit pays exactly what it would have without the donation.
    let tenant = s.tenant(0);
    assert_eq!(closed(s.close(tenant, id))[4], 9 * USDC);
    let provider = s.provider(0);
    assert_eq!(withdrawn(&mut s, token, provider), 989_000);
    let keeper = s.keeper.address;
    assert_eq!(withdrawn(&mut s, token, keeper), 1_000);
    withdraw_fees(&mut s, token).expect_success();
    assert_eq!(s.balance(token, market), 5 * USDC, "only the donation");
}
