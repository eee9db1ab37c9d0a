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
use gridlease_primitives::eip712::{OperatorConsent, staking_domain};
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

/// The creation code of a USDT-like token (no permit, no return values, zero-first approvals).
fn no_return_token() -> Bytes {
    let args = NoReturnToken::constructorCall::new(("Tether-like".into(), "NRT".into(), 6));
    creation(&NoReturnToken::BYTECODE, args.abi_encode())
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

mod amounts;
mod freezes;
mod permits;
mod reentrancy;
mod returns;
