//! Blacklisted accounts (TOK-05, MEC-16) and paused or blacklisting tokens (TOK-06).

use super::*;

// ==================================================================== TOK-05

#[test]
fn withdraw_fails_for_blacklisted_provider_while_others_exit_tok05() {
    let mut s = Suite::new();
    let token = usdc_like(&mut s);
    let (tenant, provider, keeper) = (s.tenant(0), s.provider(0), s.keeper.address);
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    set_blacklisted(&mut s, token, provider, true);
    // Settlement is accounting only: it still works, and the keeper is paid.
    assert_eq!(settled(&mut s, id), USDC);
    assert_eq!(withdrawn(&mut s, token, keeper), 1_000);
    // The provider's own withdraw fails and leaves its credit intact.
    let r = withdraw(&mut s, token, provider);
    token_reverts!(r, Blacklisted(provider));
    assert_eq!(credit(&mut s, token, provider), 989_000);
    // The tenant's exit is not blocked.
    s.keep_alive(0, SECS);
    assert_eq!(closed(s.close(tenant, id))[4], 8 * USDC);
    assert_eq!(s.balance(token, tenant), 8 * USDC);
    set_blacklisted(&mut s, token, provider, false);
    assert_eq!(withdrawn(&mut s, token, provider), 989_000 + 990_000);
}

#[test]
fn close_credits_refund_to_blacklisted_tenant_tok05() {
    let mut s = Suite::new();
    let token = usdc_like(&mut s);
    let (tenant, provider) = (s.tenant(0), s.provider(0));
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    set_blacklisted(&mut s, token, tenant, true);
    let r = s.close(tenant, id).expect_success();
    let e = r.event::<Market::Credited>();
    assert_eq!((e.token, e.account), (token, tenant));
    assert_eq!(e.amount, U256::from(9 * USDC));
    assert_eq!(closed(r)[4], 9 * USDC);
    assert_eq!(credit(&mut s, token, tenant), 9 * USDC);
    // The blacklisted tenant cannot block the provider's payout.
    assert_eq!(withdrawn(&mut s, token, provider), 990_000);
    token_reverts!(withdraw(&mut s, token, tenant), Blacklisted(tenant));
    set_blacklisted(&mut s, token, tenant, false);
    assert_eq!(withdrawn(&mut s, token, tenant), 9 * USDC);
    assert_eq!(s.balance(token, tenant), 9 * USDC);
    assert_eq!(credit(&mut s, token, tenant), 0);
}

#[test]
fn a_frozen_account_cannot_redirect_its_credit_past_the_freeze_mec16() {
    // v1 finding 16: a blacklisted account withdrew its credits to another address, around
    // USDC's freeze. The rule now: a withdrawal to another address needs the token to pay the
    // account itself (a zero transfer to it); the credit waits for the thaw otherwise.
    let mut s = Suite::new();
    let token = usdc_like(&mut s);
    let (tenant, elsewhere, market) = (s.tenant(0), s.tenant(2), s.market);
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    set_blacklisted(&mut s, token, tenant, true);
    s.close(tenant, id).expect_success();
    assert_eq!(credit(&mut s, token, tenant), 9 * USDC);
    let r = s.chain.send(
        tenant,
        market,
        Market::withdrawCall {
            token,
            to: elsewhere,
        },
    );
    reverts!(r, AccountFrozenMarket(token, tenant));
    assert_eq!(
        (credit(&mut s, token, tenant), s.balance(token, elsewhere)),
        (9 * USDC, 0)
    );
    // Thawed, it may go anywhere.
    set_blacklisted(&mut s, token, tenant, false);
    s.chain
        .send(
            tenant,
            market,
            Market::withdrawCall {
                token,
                to: elsewhere,
            },
        )
        .expect_success();
    assert_eq!(s.balance(token, elsewhere), 9 * USDC);
}

#[test]
fn a_frozen_account_cannot_redirect_its_staking_credit_or_stake_mec16() {
    use gridlease_bindings::Staking::StakingErrors;
    // The same rule in Staking, whose token is the USDC-like mock here.
    let mut s = Suite::new();
    let gov = s.gov.address;
    let token = s.chain.deploy(gov, UsdcLikeToken::BYTECODE.clone());
    let (treasury, period) = (s.treasury.address, U48::from(UNBONDING));
    let args = Staking::constructorCall::new((token, gov, treasury, period, 300));
    let staking = s
        .chain
        .deploy(gov, creation(&Staking::BYTECODE, args.abi_encode()));
    let (owner, op) = (s.provider(0), s.providers[0].operator.clone());
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
    s.mint(token, owner, 10 * USDC);
    s.approve(token, owner, staking, 10 * USDC);
    let call = Staking::stakeCall {
        amount: U256::from(10 * USDC),
    };
    s.chain.send(owner, staking, call).expect_success();
    let call = Staking::unbondCall {
        amount: U256::from(10 * USDC),
    };
    s.chain.send(owner, staking, call).expect_success();
    s.chain.warp(UNBONDING);
    set_blacklisted(&mut s, token, owner, true);
    let elsewhere = s.tenant(3);
    let r = s.chain.send(
        owner,
        staking,
        Staking::withdrawUnbondedCall { to: elsewhere },
    );
    assert_eq!(
        r.revert_as::<StakingErrors>(),
        StakingErrors::AccountFrozen(Staking::AccountFrozen {
            token,
            account: owner
        })
    );
    set_blacklisted(&mut s, token, owner, false);
    s.chain
        .send(
            owner,
            staking,
            Staking::withdrawUnbondedCall { to: elsewhere },
        )
        .expect_success();
    assert_eq!(s.balance(token, elsewhere), 10 * USDC);
}

// ==================================================================== TOK-06

/// A frozen token (paused, or the market itself blacklisted) must make token-moving calls revert
/// atomically while accounting keeps working; after the thaw everything is claimable (TOK-06).
fn frozen_token_exits_after_thaw(blacklist_market: bool) {
    let mut s = Suite::new();
    let token = usdc_like(&mut s);
    let (tenant, tenant1, provider) = (s.tenant(0), s.tenant(1), s.provider(0));
    let (keeper, market, treasury) = (s.keeper.address, s.market, s.treasury.address);
    let id = lease_in(&mut s, token, 10 * USDC);
    s.keep_alive(0, SECS);
    let freeze = |s: &mut Suite, on: bool| {
        if blacklist_market {
            set_blacklisted(s, token, market, on);
        } else {
            set_paused(s, token, on);
        }
    };
    let check = |r: &Receipt| {
        if blacklist_market {
            token_reverts!(r, Blacklisted(market));
        } else {
            token_reverts!(r, TokenPaused());
        }
    };
    s.mint(token, tenant1, 10 * USDC);
    freeze(&mut s, true);
    let p = order_in(&s, token, 10 * USDC);
    check(&s.try_create(1, p.clone()));
    let orphan = p.order_id(tenant1);
    assert_eq!(s.job(orphan).status, 0, "nothing recorded");
    assert_eq!(s.balance(token, tenant1), 10 * USDC, "nothing moved");
    assert_eq!(settled(&mut s, id), USDC);
    check(&withdraw(&mut s, token, provider));
    check(&withdraw_fees(&mut s, token));
    assert_eq!(credit(&mut s, token, provider), 989_000);
    // Close still works; the refund that cannot move becomes a credit.
    let r = s.close(tenant, id);
    assert_eq!(closed(r), [0, 0, 0, 0, 9 * USDC]);
    assert_eq!(credit(&mut s, token, tenant), 9 * USDC);
    freeze(&mut s, false);
    assert_eq!(withdrawn(&mut s, token, provider), 989_000);
    assert_eq!(withdrawn(&mut s, token, keeper), 1_000);
    assert_eq!(withdrawn(&mut s, token, tenant), 9 * USDC);
    withdraw_fees(&mut s, token).expect_success();
    assert_eq!(s.balance(token, treasury), 10_000);
    assert_eq!(s.balance(token, market), 0, "everything claimed");
}

#[test]
fn token_moves_revert_and_accounting_works_while_token_paused_tok06() {
    frozen_token_exits_after_thaw(false);
}

#[test]
fn token_moves_revert_and_accounting_works_while_market_blacklisted_tok06() {
    frozen_token_exits_after_thaw(true);
}
