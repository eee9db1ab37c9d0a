//! The ERC-20 matrix of SECURITY.md E (TOK-01..12) on the Market escrow, plus the token-level
//! escrow cases ESC-01 (fee on transfer), ESC-13 (re-entrant hook token) and ESC-14 (donation).
//! Special tokens are the fixtures of `contracts/src/mocks`, deployed here and allow-listed by
//! governance.

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U48, aliases::U96},
    sol_types::{SolCall, SolConstructor, SolError, SolEvent, SolInterface},
};
use gridlease_bindings::{
    FalseReturnToken, FeeOnTransferToken,
    IMarket::OrderParams,
    Market::{self, MarketErrors},
    MarketAdmin, MarketLens, MockStablecoin, NoReturnToken, ReentrantToken, Staking,
    UsdcLikeToken::{self, UsdcLikeTokenErrors},
};
use gridlease_core::eip712::{OperatorConsent, staking_domain};
use gridlease_tests::{
    evm::Receipt,
    fixture::{PRICE, Suite, UNBONDING, USDC, big_capacity, creation, deploy_token},
};

/// PRICE (0.001 token/s) for 1,000 s: one whole token; fees 1 % protocol, 0.1 % keeper.
const SECS: u64 = 1_000;

/// Assert that receipt `$r` reverted with `Market::$e(args..)` (arguments in Solidity order).
macro_rules! reverts {
    ($r:expr, $e:ident($($a:expr),* $(,)?)) => {
        gridlease_tests::assert_revert_with!($r, Market, MarketErrors::$e($($a),*))
    };
}

/// The same for the USDC-like token's own errors (blacklist, pause).
macro_rules! token_reverts {
    ($r:expr, $e:ident($($a:expr),* $(,)?)) => {
        assert_eq!(
            $r.revert_as::<UsdcLikeTokenErrors>(),
            UsdcLikeTokenErrors::$e(<UsdcLikeToken::$e as SolError>::new(($($a,)*)))
        )
    };
}

/// The single event `T` of a receipt that must have succeeded.
#[track_caller]
fn ev<T: SolEvent>(r: Receipt) -> T {
    r.expect_success().event::<T>()
}

fn u96(n: u128) -> U96 {
    U96::from(n)
}

/// Enable or disable `token` for new orders (governance).
fn configure(s: &mut Suite, token: Address, allowed: bool) -> Receipt {
    let market = s.market;
    s.govern(market, MarketAdmin::configureTokenCall { token, allowed })
}

/// Deploy `code` from governance and allow-list it.
fn listed(s: &mut Suite, code: Bytes) -> Address {
    let gov = s.gov.address;
    let token = s.chain.deploy(gov, code);
    configure(s, token, true).expect_success();
    token
}

/// Default order terms, paid in `token`.
fn order_in(s: &Suite, token: Address, deposit: u128) -> OrderParams {
    let mut p = s.order(deposit, PRICE * 2);
    p.token = token;
    p
}

/// Service order terms in `token` (instant): the lease streams per second while its provider beats.
fn service_in(s: &mut Suite, token: Address, deposit: u128) -> OrderParams {
    let mut p = s.fresh_order(deposit, PRICE * 2);
    (p.token, p.jobKind, p.instant) = (token, 2, true);
    p
}

/// Tenant 0 orders a service lease in `token` (deposit minted first); provider 0, live, takes it
/// with an on-chain bid at PRICE (acknowledged). Streaming payment is what these token cases test.
fn lease_in(s: &mut Suite, token: Address, deposit: u128) -> B256 {
    s.ensure_registered(0);
    s.heartbeat(0).expect_success();
    let tenant = s.tenant(0);
    s.mint(token, tenant, deposit);
    let p = service_in(s, token, deposit);
    let id = s.create(0, p);
    s.bid(0, id, PRICE).expect_success();
    id
}

fn credit(s: &mut Suite, token: Address, account: Address) -> u128 {
    s.credit_in(token, account)
}

fn fees(s: &mut Suite, token: Address) -> u128 {
    let lens = s.lens;
    s.chain
        .view(lens, MarketLens::protocolFeesCall { token })
        .to()
}

/// `who` withdraws its credit in `token` to itself.
fn withdraw(s: &mut Suite, token: Address, who: Address) -> Receipt {
    let market = s.market;
    s.chain
        .send(who, market, Market::withdrawCall { token, to: who })
}

/// Withdraw `who`'s whole credit and return the amount the Withdrawn event reports.
fn withdrawn(s: &mut Suite, token: Address, who: Address) -> u128 {
    ev::<Market::Withdrawn>(withdraw(s, token, who)).amount.to()
}

fn withdraw_fees(s: &mut Suite, token: Address) -> Receipt {
    let (keeper, market) = (s.keeper.address, s.market);
    let call = MarketAdmin::withdrawFeesCall { token };
    s.chain.send(keeper, market, call)
}

/// (paid, toProvider, protocolFee, keeperFee, refund) of a LeaseClosed event.
fn closed(r: Receipt) -> [u128; 5] {
    let e = ev::<Market::LeaseClosed>(r);
    [e.paid, e.toProvider, e.protocolFee, e.keeperFee, e.refund].map(|x| x.to())
}

fn settle(s: &mut Suite, id: B256) -> Receipt {
    let keeper = s.keeper.address;
    s.settle(keeper, vec![id])
}

/// The amount a keeper's settle of `id` moved out of escrow.
fn settled(s: &mut Suite, id: B256) -> u128 {
    ev::<Market::LeaseSettled>(settle(s, id)).amount.to()
}

/// Transfer events of `token` in a receipt.
fn transfers(r: &Receipt) -> usize {
    r.events::<MockStablecoin::Transfer>().len()
}

fn usdc_like(s: &mut Suite) -> Address {
    listed(s, UsdcLikeToken::BYTECODE.clone())
}

fn set_blacklisted(s: &mut Suite, token: Address, account: Address, value: bool) {
    let gov = s.gov.address;
    let call = UsdcLikeToken::setBlacklistedCall { account, value };
    s.chain.send(gov, token, call).expect_success();
}

fn set_paused(s: &mut Suite, token: Address, value: bool) {
    let gov = s.gov.address;
    let call = UsdcLikeToken::setPausedCall { value };
    s.chain.send(gov, token, call).expect_success();
}

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
    let token = listed(&mut s, NoReturnToken::BYTECODE.clone());
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

// ==================================================================== TOK-07

#[test]
fn settle_pays_nothing_and_no_keeper_fee_when_nothing_owed_tok07() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC); // awarded in this very second: nothing accrued yet
    let (token, keeper) = (s.token, s.keeper.address);
    let r = settle(&mut s, id).expect_success();
    let settled = Market::settleCall::abi_decode_returns(&r.output).expect("uint256");
    assert_eq!(settled, U256::ZERO);
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    assert!(r.events::<Market::LowBalance>().is_empty());
    assert_eq!((transfers(&r), credit(&mut s, token, keeper)), (0, 0));
    let none = withdraw(&mut s, token, keeper);
    reverts!(none, NothingToWithdrawMarket(token, keeper));
}

#[test]
fn close_skips_zero_refund_transfer_when_exhausted_tok07() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, USDC); // runs dry after 1,000 s
    s.keep_alive(0, 2 * SECS);
    let keeper = s.keeper.address;
    let r = s.close(keeper, id).expect_success();
    assert_eq!(transfers(&r), 0, "no zero-amount transfer to the tenant");
    let e = r.event::<Market::LeaseClosed>();
    assert_eq!((e.reason, e.paid, e.refund), (3, u96(USDC), U96::ZERO));
}

// ==================================================================== TOK-08

#[test]
fn close_pays_proportionally_same_amount_for_2_6_18_decimals_tok08() {
    let mut s = Suite::new();
    let tenant = s.tenant(0);
    for dec in [2u32, 6, 18] {
        let name = format!("T{dec}");
        let token = s.add_token(&name, &name, dec as u8);
        let one = 10u128.pow(dec);
        let id = lease_in(&mut s, token, 10 * one);
        s.keep_alive(0, SECS);
        let got = closed(s.close(tenant, id));
        let fee = one / 100;
        assert_eq!(got, [one, one - fee, fee, 0, 9 * one], "decimals {dec}");
    }
}

#[test]
fn settle_batch_across_2_6_18_decimal_tokens_credits_each_exactly_tok08() {
    let mut s = Suite::new();
    let (provider, keeper) = (s.provider(0), s.keeper.address);
    let mut leases = Vec::new();
    for dec in [18u32, 2, 6] {
        let token = s.add_token("Multi", "M", dec as u8);
        let id = lease_in(&mut s, token, 10 * 10u128.pow(dec));
        let start = u128::from(s.job(id).settledAt.to::<u64>());
        leases.push((token, 10u128.pow(18 - dec), id, start));
    }
    s.keep_alive(0, SECS);
    // One batch switching token twice: each token's scale and credits must stay apart.
    let r = s.settle(keeper, leases.iter().map(|l| l.2).collect());
    let settled = Market::settleCall::abi_decode_returns(&r.expect_success().output);
    assert_eq!(settled.expect("uint256"), U256::from(3));
    let now = u128::from(s.chain.now());
    for (token, scale, _, start) in leases {
        let amount = PRICE * (now - start) / scale;
        let (fee, tip) = (amount / 100, amount / 1_000);
        assert_eq!(credit(&mut s, token, provider), amount - fee - tip);
        assert_eq!(credit(&mut s, token, keeper), tip);
        assert_eq!(fees(&mut s, token), fee);
    }
}

#[test]
fn settle_defers_sub_unit_amounts_two_decimals_tok08_esc05() {
    let mut s = Suite::new();
    let token = s.add_token("Cents", "CT", 2);
    let id = lease_in(&mut s, token, 1_000); // 10.00 tokens; 0.001/s is 0.1 unit a second
    let start = s.job(id).settledAt;
    s.keep_alive(0, 5);
    let r = settle(&mut s, id).expect_success();
    // Half a unit is not paid yet, and the clock does not advance: nothing is lost.
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    assert_eq!(s.job(id).settledAt, start);
    s.keep_alive(0, 5);
    assert_eq!(settled(&mut s, id), 1);
}

#[test]
fn configure_token_reverts_more_than_18_decimals_tok08() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    for decimals in [19u8, 24] {
        let token = deploy_token(&mut s.chain, gov, "Wide", "W", decimals);
        let r = configure(&mut s, token, true);
        reverts!(r, TokenDecimalsUnsupported(token, decimals));
    }
}

// ==================================================================== TOK-09 / TOK-10

#[test]
fn create_order_reverts_token_not_allowed_and_listing_is_owner_only_tok09() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    let token = deploy_token(&mut s.chain, gov, "Rebasing", "RB", 18);
    let tenant = s.tenant(0);
    s.mint(token, tenant, USDC);
    let r = s.try_create(0, order_in(&s, token, USDC));
    reverts!(r, TokenNotAllowed(token));
    let (outsider, market) = (s.keeper.address, s.market);
    let call = MarketAdmin::configureTokenCall::new((token, true));
    let r = s.chain.send(outsider, market, call);
    reverts!(r, OwnableUnauthorizedAccount(outsider));
}

#[test]
fn escrow_near_2_pow_96_settles_and_overflow_reverts_cleanly_tok10() {
    let mut s = Suite::new();
    let token = s.add_token("Big", "BIG", 18);
    let max: u128 = U96::MAX.to();
    let (tenant, provider, keeper) = (s.tenant(0), s.provider(0), s.keeper.address);
    let market = s.market;
    s.ensure_registered(0);
    s.heartbeat(0).expect_success();
    s.mint(token, tenant, max);
    // The highest reserve a full escrow can pay one minimum billing period (60 s) of.
    let rate = max / 60;
    let mut p = service_in(&mut s, token, max);
    p.maxPricePerSecond = u96(rate);
    p.instant = false;
    let id = s.create(0, p);
    let call = MarketAdmin::topUpCall::new((id, u96(1), Address::ZERO));
    let r = s.chain.send(tenant, market, call);
    reverts!(r, EscrowOverflow(U256::from(1u8) << 96));
    s.bid(0, id, rate).expect_success();
    s.chain.warp(601);
    s.heartbeat(0).expect_success();
    s.award(keeper, id, vec![]).expect_success();
    s.ack(0, id).expect_success();
    // A century at the highest rate: capped by the escrow (ESC-06), and by the provider's last
    // heartbeat + period, which alone is worth five times the escrow.
    s.chain.warp(100 * 365 * 86_400);
    let e = ev::<Market::LeaseSettled>(settle(&mut s, id));
    assert_eq!((e.amount, e.escrowLeft), (U96::MAX, U96::ZERO));
    let (fee, tip) = (max / 100, max / 1_000);
    assert_eq!(credit(&mut s, token, provider), max - fee - tip);
    assert_eq!(closed(s.close(keeper, id)), [0, 0, 0, 0, 0]);
    assert_eq!(withdrawn(&mut s, token, provider), max - fee - tip);
    assert_eq!(s.balance(token, market), fee + tip);
}

// ==================================================================== TOK-11

#[test]
fn create_order_with_permit_falls_back_to_approval_without_permit_support_tok11() {
    let mut s = Suite::new();
    let token = listed(&mut s, NoReturnToken::BYTECODE.clone());
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
    let token = s.chain.deploy(gov, NoReturnToken::BYTECODE.clone());
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
