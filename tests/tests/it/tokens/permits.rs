//! Permit fallbacks (TOK-11) and disabled tokens (TOK-12).

use super::*;

// ==================================================================== TOK-11

#[test]
fn create_order_with_permit_falls_back_to_approval_without_permit_support_tok11() {
    let mut s = Suite::new();
    let token = listed(&mut s, no_return_token());
    let (tenant, market) = (s.tenant(0), s.market);
    s.mint(token, tenant, 10 * USDC);
    let p = order_in(&s, token, 10 * USDC);
    let deadline = U256::from(s.chain.now() + 60);
    let zero = B256::ZERO;
    let call = |p| Market::createOrderWithPermitCall::new((p, deadline, 27, zero, zero));
    // Without an approval the fallback reports the missing allowance...
    let r = s.chain.send(tenant, market, call(p.clone()));
    let needed = U256::from(10 * USDC);
    let owner = tenant;
    reverts!(r, InsufficientAllowance(token, owner, U256::ZERO, needed));
    // ...and with one (a smart wallet that cannot sign permits) it works.
    s.approve(token, tenant, market, 10 * USDC);
    let e = ev::<Market::OrderCreated>(s.chain.send(tenant, market, call(p)));
    assert_eq!((e.tenant, e.token), (tenant, token));
    assert_eq!(s.balance(token, market), 10 * USDC);
}

#[test]
fn stake_with_permit_falls_back_to_approval_without_permit_support_tok11_tok02() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    let token = s.chain.deploy(gov, no_return_token());
    let (treasury, period) = (s.treasury.address, U48::from(UNBONDING));
    let args = Staking::constructorCall::new((token, gov, treasury, period, 300));
    let staking = s
        .chain
        .deploy(gov, creation(&Staking::BYTECODE, args.abi_encode()));
    let (owner, op) = (s.provider(0), s.providers[0].operator.clone());
    s.mint(token, owner, 10 * USDC);
    let deadline = s.chain.now() + 60;
    let sig = OperatorConsent::new(owner, op.address, U256::ZERO, deadline)
        .sign(
            &staking_domain(gridlease_tests::evm::CHAIN_ID, staking),
            &op.key,
        )
        .expect("consent");
    let reg = Staking::registerCall::new((
        op.address,
        big_capacity(),
        String::new(),
        U96::MAX,
        U256::from(deadline),
        Bytes::from(sig.as_bytes().to_vec()),
    ));
    s.chain.send(owner, staking, reg).expect_success();
    s.approve(token, owner, staking, 10 * USDC);
    // A permit this token cannot process: the approval is used instead.
    let (amount, deadline, zero) = (U256::from(4 * USDC), U256::ZERO, B256::ZERO);
    let call = Staking::stakeWithPermitCall::new((amount, deadline, 0, zero, zero));
    s.chain.send(owner, staking, call).expect_success();
    let call = Staking::stakeCall {
        amount: U256::from(6 * USDC),
    };
    s.chain.send(owner, staking, call).expect_success();
    let call = Staking::providerInfoCall { provider: owner };
    assert_eq!(s.chain.view(staking, call).stake, u96(10 * USDC));
    assert_eq!(s.balance(token, staking), 10 * USDC);
}

// ==================================================================== TOK-12

#[test]
fn disabled_token_blocks_new_orders_while_existing_lease_settles_and_closes_tok12() {
    let mut s = Suite::new();
    let (token, tenant, provider) = (s.token, s.tenant(0), s.provider(0));
    let id = s.service_lease(0, 0, 10 * USDC);
    let e = ev::<Market::TokenConfigured>(configure(&mut s, token, false));
    assert_eq!((e.token, e.id, e.decimals, e.allowed), (token, 1, 6, false));
    let mut p = s.order(USDC, PRICE * 2);
    p.salt = B256::with_last_byte(7);
    reverts!(s.try_create(1, p), TokenNotAllowed(token));
    s.keep_alive(0, SECS);
    assert_eq!(settled(&mut s, id), USDC);
    s.keep_alive(0, SECS);
    let before = s.balance(token, tenant);
    assert_eq!(closed(s.close(tenant, id))[4], 8 * USDC);
    assert_eq!(s.balance(token, tenant), before + 8 * USDC);
    assert_eq!(withdrawn(&mut s, token, provider), 989_000 + 990_000);
    // Re-enabling keeps the same id and decimals.
    let e = ev::<Market::TokenConfigured>(configure(&mut s, token, true));
    assert_eq!((e.id, e.decimals, e.allowed), (1, 6, true));
}
