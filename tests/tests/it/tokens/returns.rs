//! Tokens with non-standard returns (TOK-01..03) and fee-on-transfer tokens (TOK-04, ESC-01).

use super::*;

// ==================================================================== TOK-01 / TOK-02 / TOK-03

#[test]
fn lease_lifecycle_succeeds_usdc_like_token_tok01() {
    let mut s = Suite::new();
    let token = usdc_like(&mut s);
    let (tenant, provider, keeper) = (s.tenant(0), s.provider(0), s.keeper.address);
    s.ensure_registered(0);
    s.mint(token, tenant, 10 * USDC);
    // The permit path of a USDC-like token (EIP-2612).
    s.heartbeat(0).expect_success();
    let p = service_in(&mut s, token, 10 * USDC);
    let r = s.create_with_permit(0, p);
    r.expect_success();
    let id = s.last_order_id;
    s.bid(0, id, PRICE).expect_success();
    s.keep_alive(0, SECS);
    assert_eq!(settled(&mut s, id), USDC);
    s.keep_alive(0, SECS / 2);
    let r = s.close(tenant, id);
    assert_eq!(closed(r), [500_000, 495_000, 5_000, 0, 8_500_000]);
    assert_eq!(s.balance(token, tenant), 8_500_000);
    assert_eq!(withdrawn(&mut s, token, provider), 989_000 + 495_000);
    assert_eq!(withdrawn(&mut s, token, keeper), 1_000);
    withdraw_fees(&mut s, token).expect_success();
    let (market, treasury) = (s.market, s.treasury.address);
    assert_eq!(s.balance(token, treasury), 15_000);
    assert_eq!(s.balance(token, market), 0, "every unit paid out");
}

#[test]
fn lease_lifecycle_succeeds_no_return_token_tok02() {
    let mut s = Suite::new();
    let token = listed(&mut s, no_return_token());
    let (tenant, provider, market) = (s.tenant(0), s.provider(0), s.market);
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    let r = s.close(tenant, id);
    assert_eq!(closed(r), [USDC, 990_000, 10_000, 0, 9 * USDC]);
    assert_eq!(s.balance(token, tenant), 9 * USDC);
    assert_eq!(withdrawn(&mut s, token, provider), 990_000);
    withdraw_fees(&mut s, token).expect_success();
    // Cancel refunds through the same no-return transfer.
    let mut p = order_in(&s, token, 2 * USDC);
    p.salt = B256::with_last_byte(9);
    s.mint(token, tenant, 2 * USDC);
    let id = s.create(0, p);
    s.cancel(tenant, id).expect_success();
    assert_eq!(s.balance(token, tenant), 11 * USDC);
    assert_eq!(s.balance(token, market), 0);
}

#[test]
fn create_order_reverts_false_return_token_without_balance_tok03() {
    let mut s = Suite::new();
    let token = listed(&mut s, FalseReturnToken::BYTECODE.clone());
    let (tenant, market) = (s.tenant(0), s.market);
    let ten = 10 * 10u128.pow(18); // this fixture has 18 decimals
    // Approved but no balance: transferFrom returns false, which must count as failure.
    let r = s.try_create(0, order_in(&s, token, ten));
    reverts!(r, SafeERC20FailedOperation(token));
    // Balance but no allowance: same.
    s.mint(token, tenant, ten);
    s.approve(token, tenant, market, 0);
    let p = order_in(&s, token, ten);
    let call = Market::createOrderCall { p: p.clone() };
    let r = s.chain.send(tenant, market, call);
    reverts!(r, SafeERC20FailedOperation(token));
    assert_eq!(s.balance(token, tenant), ten);
    assert_eq!(s.balance(token, market), 0);
    let id = p.order_id(tenant);
    assert_eq!(s.job(id).status, 0, "no order was recorded");
}

#[test]
fn lease_lifecycle_succeeds_false_return_token_when_funded_tok03() {
    let mut s = Suite::new();
    let token = listed(&mut s, FalseReturnToken::BYTECODE.clone());
    let (tenant, provider, market) = (s.tenant(0), s.provider(0), s.market);
    let one = 10u128.pow(18); // this fixture has 18 decimals
    let id = lease_in(&mut s, token, 10 * one);
    s.keep_alive(0, SECS);
    let fee = one / 100;
    let r = s.close(tenant, id);
    assert_eq!(closed(r), [one, one - fee, fee, 0, 9 * one]);
    assert_eq!(s.balance(token, tenant), 9 * one);
    assert_eq!(withdrawn(&mut s, token, provider), one - fee);
    assert_eq!(s.balance(token, market), fee);
}

// ==================================================================== TOK-04 / ESC-01

#[test]
fn create_order_reverts_token_transfer_mismatch_fee_on_transfer_tok04_esc01() {
    let mut s = Suite::new();
    let token = listed(&mut s, FeeOnTransferToken::BYTECODE.clone());
    let (tenant, market) = (s.tenant(0), s.market);
    s.mint(token, tenant, 10 * USDC);
    let r = s.try_create(0, order_in(&s, token, 10 * USDC));
    let (expected, received) = (U256::from(10 * USDC), U256::from(9_900_000));
    reverts!(r, TokenTransferMismatch(token, expected, received));
    assert_eq!(s.balance(token, tenant), 10 * USDC);
    assert_eq!(s.balance(token, market), 0);
}
