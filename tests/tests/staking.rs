//! Staking: one test per branch of every external function, plus the STK, ADM and ESC-02/03
//! items of SECURITY.md (the ID is in each test's name). Market hooks (tryLock, release, slash)
//! are driven on a second Staking whose market is an EOA the test controls.

use alloy::{
    primitives::{Address, B256, U256, aliases::U48, keccak256},
    sol_types::{SolCall, SolConstructor, SolError, SolEvent},
};
use gridlease_bindings::{
    FeeOnTransferToken,
    IStaking::{Capacity, ProviderView},
    Market::{self, MarketErrors},
    MockStablecoin,
    Staking::{self, StakingErrors},
};
use gridlease_core::eip712::{Permit, permit_domain};
use gridlease_tests::{
    evm::{CHAIN_ID, Receipt},
    fixture::{Account, Suite, UNBONDING, USDC, big_capacity, creation, default_params},
};

const DAY: u64 = 86_400;
const MIN_PERIOD: u64 = DAY;
const MAX_PERIOD: u64 = 90 * DAY;
const MAX_BPS: u16 = 5_000;

/// Assert that receipt `$r` reverted with `Staking::$e(args..)` (arguments in Solidity order).
macro_rules! reverts {
    ($r:expr, $e:ident($($a:expr),* $(,)?)) => {
        gridlease_tests::assert_revert_with!($r, Staking, StakingErrors::$e($($a),*))
    };
}

/// `n` whole USDC in units.
fn usd(n: u128) -> u128 {
    n * USDC
}

fn u(n: impl Into<u128>) -> U256 {
    U256::from(n.into())
}

/// The single event `T` of a receipt that must have succeeded.
#[track_caller]
fn ev<T: SolEvent>(r: Receipt) -> T {
    r.expect_success().event::<T>()
}

/// A Solidity string literal converted to bytes32 (left-aligned).
fn b32(s: &str) -> B256 {
    let mut b = [0u8; 32];
    b[..s.len()].copy_from_slice(s.as_bytes());
    B256::from(b)
}

fn evidence(n: u64) -> B256 {
    keccak256(n.to_be_bytes())
}

fn period(secs: u64) -> Staking::setUnbondingPeriodCall {
    Staking::setUnbondingPeriodCall::new((U48::from(secs),))
}

/// Addresses holding no role: a fixed "fuzzed" set of non-owners and non-markets (ADM-01).
fn outsiders(s: &Suite) -> Vec<Address> {
    let mut v = vec![s.keeper.address, s.treasury.address];
    v.extend([s.provider(0), s.operator(0)]);
    v.extend((0..6u64).map(|i| Address::from_slice(&keccak256(i.to_be_bytes())[12..])));
    v
}

/// Arguments of one slash; `Default` is no penalty, no tenant and no reporter.
#[derive(Default, Clone, Copy)]
struct Slash {
    penalty: u128,
    release: u128,
    evidence: u64,
    tenant: Address,
    compensation: u128,
    reporter: Address,
}

/// A bare slash of `penalty` with evidence number `ev`.
fn pen(penalty: u128, ev: u64) -> Slash {
    Slash {
        penalty,
        evidence: ev,
        ..Slash::default()
    }
}

impl Slash {
    /// Compensate `tenant` up to `compensation` and reward `reporter`.
    fn to(self, tenant: Address, compensation: u128, reporter: Address) -> Self {
        Self {
            tenant,
            compensation,
            reporter,
            ..self
        }
    }

    /// Also release `release` of the faulted lease's collateral.
    fn releasing(self, release: u128) -> Self {
        Self { release, ..self }
    }
}

/// (slashed, tenant, reporter, treasury) of the receipt's Slashed event.
fn split(r: Receipt) -> (u128, u128, u128, u128) {
    let e = ev::<Staking::Slashed>(r);
    let f = |x: U256| x.to::<u128>();
    let (slashed, tenant) = (f(e.slashed), f(e.tenantCompensation));
    (slashed, tenant, f(e.reporterReward), f(e.treasuryAmount))
}

/// The suite plus a second Staking (same token unless told) whose market is the EOA `hook`.
struct Bed {
    s: Suite,
    staking: Address,
    token: Address,
    hook: Address,
}

impl Bed {
    fn new() -> Self {
        let s = Suite::new();
        let token = s.token;
        Self::with_token(s, token)
    }

    fn with_token(mut s: Suite, token: Address) -> Self {
        let (gov, treasury_) = (s.gov.address, s.treasury.address);
        let hook = Account::numbered(50).address;
        s.chain.fund(hook);
        let period = U48::from(UNBONDING);
        let args = Staking::constructorCall::new((token, gov, treasury_, period, 1_000));
        let code = creation(&Staking::BYTECODE, args.abi_encode());
        let staking = s.chain.deploy(gov, code);
        let call = Staking::setMarketCall { market_: hook };
        s.chain.send(gov, staking, call).expect_success();
        Self {
            s,
            staking,
            token,
            hook,
        }
    }

    fn send<C: SolCall>(&mut self, from: Address, call: C) -> Receipt {
        self.s.chain.send(from, self.staking, call)
    }

    fn view<C: SolCall>(&mut self, call: C) -> C::Return {
        self.s.chain.view(self.staking, call)
    }

    fn gov(&mut self, call: impl SolCall) -> Receipt {
        let gov = self.s.gov.address;
        self.send(gov, call)
    }

    fn owner(&self, i: usize) -> Address {
        self.s.provider(i)
    }

    fn op(&self, i: usize) -> Address {
        self.s.operator(i)
    }

    fn register_as(&mut self, i: usize, operator: Address) -> Receipt {
        let (owner, capacity, uri) = (self.owner(i), big_capacity(), format!("p{i}"));
        self.send(owner, Staking::registerCall::new((operator, capacity, uri)))
    }

    fn register(&mut self, i: usize) -> Receipt {
        let op = self.op(i);
        self.register_as(i, op)
    }

    fn update(&mut self, i: usize, operator: Address, capacity: Capacity) -> Receipt {
        let (owner, uri) = (self.owner(i), "v2".to_string());
        let call = Staking::updateProviderCall::new((operator, capacity, uri));
        self.send(owner, call)
    }

    fn stake(&mut self, i: usize, amount: u128) -> Receipt {
        let (owner, token, staking) = (self.owner(i), self.token, self.staking);
        self.s.approve(token, owner, staking, amount);
        self.send(owner, Staking::stakeCall { amount: u(amount) })
    }

    /// Register provider `i` and stake `amount`.
    fn staked(&mut self, i: usize, amount: u128) {
        self.register(i).expect_success();
        self.stake(i, amount).expect_success();
    }

    fn info(&mut self, i: usize) -> ProviderView {
        let provider = self.owner(i);
        self.view(Staking::providerInfoCall { provider })
    }

    /// (stake, locked, unbonding) of provider `i`.
    fn state(&mut self, i: usize) -> (u128, u128, u128) {
        let v = self.info(i);
        (v.stake, v.locked, v.unbonding)
    }

    fn release_at(&mut self, i: usize) -> U48 {
        self.info(i).releaseAt
    }

    fn provider_of(&mut self, operator: Address) -> Address {
        self.view(Staking::providerOfCall { operator })
    }

    fn free_stake(&mut self, i: usize) -> u128 {
        let operator = self.op(i);
        self.view(Staking::bidderInfoCall { operator }).freeStake
    }

    fn unbond(&mut self, i: usize, amount: u128) -> Receipt {
        let owner = self.owner(i);
        self.send(owner, Staking::unbondCall { amount: u(amount) })
    }

    fn withdraw_unbonded(&mut self, i: usize) -> Receipt {
        let owner = self.owner(i);
        self.send(owner, Staking::withdrawUnbondedCall { to: owner })
    }

    fn withdraw_credit(&mut self, who: Address, to: Address) -> Receipt {
        self.send(who, Staking::withdrawCreditCall { to })
    }

    /// Move the clock to provider `i`'s release time.
    fn warp_to_release(&mut self, i: usize) {
        let t = self.release_at(i).to();
        self.s.chain.set_time(t);
    }

    fn lock(&mut self, i: usize, amount: u128) -> bool {
        let (hook, provider, amount) = (self.hook, self.owner(i), u(amount));
        let r = self.send(hook, Staking::tryLockCall { provider, amount });
        Staking::tryLockCall::abi_decode_returns(&r.expect_success().output).expect("bool")
    }

    fn release(&mut self, i: usize, amount: U256) {
        let (hook, provider) = (self.hook, self.owner(i));
        let call = Staking::releaseCall { provider, amount };
        self.send(hook, call).expect_success();
    }

    fn slash_from(&mut self, from: Address, i: usize, a: Slash) -> Receipt {
        let (provider, ev) = (self.owner(i), evidence(a.evidence));
        let (penalty, release, comp) = (u(a.penalty), u(a.release), u(a.compensation));
        let args = (provider, penalty, release, ev, a.tenant, comp, a.reporter);
        self.send(from, Staking::slashCall::new(args))
    }

    fn slash(&mut self, i: usize, a: Slash) -> Receipt {
        let hook = self.hook;
        self.slash_from(hook, i, a)
    }

    fn credit(&mut self, account: Address) -> u128 {
        self.view(Staking::creditOfCall { account }).to()
    }

    fn balance(&mut self, who: Address) -> u128 {
        let token = self.token;
        self.s.balance(token, who)
    }

    /// (totalStaked, totalUnbonding, totalCredits).
    fn totals(&mut self) -> (u128, u128, u128) {
        let staked = self.view(Staking::totalStakedCall {}).to();
        let unbonding = self.view(Staking::totalUnbondingCall {}).to();
        let credits = self.view(Staking::totalCreditsCall {}).to();
        (staked, unbonding, credits)
    }

    /// balanceOf(staking) == totalStaked + totalUnbonding + totalCredits (INV-01 for Staking).
    #[track_caller]
    fn assert_conserved(&mut self) {
        let staking = self.staking;
        let (a, b, c) = self.totals();
        assert_eq!(self.balance(staking), a + b + c, "token conservation");
    }

    /// A permit from provider `i`'s owner to this Staking: (v, r, s, deadline).
    fn permit(&mut self, i: usize, amount: u128) -> (u8, B256, B256, U256) {
        let owner = self.s.providers[i].owner.clone();
        let (token, spender, value) = (self.token, self.staking, u(amount));
        let call = MockStablecoin::noncesCall::new((owner.address,));
        let nonce = self.s.chain.view(token, call);
        let name = self.s.chain.view(token, MockStablecoin::nameCall {});
        let deadline = u(self.s.chain.now() + 3_600);
        let permit = Permit {
            owner: owner.address,
            spender,
            value,
            nonce,
            deadline,
        };
        let domain = permit_domain(&name, CHAIN_ID, token);
        let sig = permit.sign(&domain, &owner.key).expect("sign permit");
        let v = 27 + u8::from(sig.v());
        (v, sig.r().into(), sig.s().into(), deadline)
    }

    fn stake_permit(&mut self, from: Address, n: u128, p: (u8, B256, B256, U256)) -> Receipt {
        let (v, r, s, deadline) = p;
        let call = Staking::stakeWithPermitCall::new((u(n), deadline, v, r, s));
        self.send(from, call)
    }
}

// ==================================================================== register / updateProvider

#[test]
fn register_succeeds_records_operator_and_capacity() {
    let mut b = Bed::new();
    let (owner, op) = (b.owner(0), b.op(0));
    let e = ev::<Staking::ProviderRegistered>(b.register(0));
    assert_eq!((e.provider, e.operator), (owner, op));
    assert_eq!((e.capacity, e.metadataURI.as_str()), (big_capacity(), "p0"));
    let info = b.info(0);
    assert_eq!((info.operator, info.stake), (op, 0));
    assert_eq!(info.capacity, big_capacity());
    assert_eq!(b.provider_of(op), owner);
    let bidder = b.view(Staking::bidderInfoCall { operator: op });
    assert_eq!(bidder.provider, owner);
}

#[test]
fn register_reverts_already_registered() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let provider = b.owner(0);
    let r = b.register_as(0, Account::numbered(300).address);
    reverts!(r, ProviderAlreadyRegistered(provider));
}

#[test]
fn register_reverts_operator_zero_or_taken() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    for operator in [Address::ZERO, b.op(0)] {
        reverts!(b.register_as(1, operator), OperatorUnavailable(operator));
    }
    assert_eq!(b.info(1).operator, Address::ZERO);
}

#[test]
fn update_provider_succeeds_changes_capacity_same_operator() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, op) = (b.owner(0), b.op(0));
    let mut cap = big_capacity();
    cap.gpuCount = 2;
    let e = ev::<Staking::ProviderUpdated>(b.update(0, op, cap.clone()));
    assert_eq!((e.provider, e.operator), (owner, op));
    assert_eq!((e.capacity, e.metadataURI.as_str()), (cap.clone(), "v2"));
    assert_eq!((b.info(0).capacity, b.provider_of(op)), (cap, owner));
}

#[test]
fn update_provider_reverts_not_registered() {
    let mut b = Bed::new();
    let provider = b.owner(0);
    let r = b.update(0, provider, big_capacity());
    reverts!(r, ProviderNotRegistered(provider));
}

#[test]
fn update_provider_frees_old_operator_on_operator_change() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, old, new) = (b.owner(0), b.op(0), Account::numbered(300).address);
    b.update(0, new, big_capacity()).expect_success();
    assert_eq!(b.provider_of(old), Address::ZERO);
    assert_eq!((b.provider_of(new), b.info(0).operator), (owner, new));
    // The freed key can serve another provider now.
    b.register_as(1, old).expect_success();
    let owner1 = b.owner(1);
    assert_eq!(b.provider_of(old), owner1);
}

#[test]
fn update_provider_reverts_operator_zero_or_taken() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    b.register(1).expect_success();
    for operator in [Address::ZERO, b.op(1)] {
        let r = b.update(0, operator, big_capacity());
        reverts!(r, OperatorUnavailable(operator));
    }
    assert_eq!(b.info(0).operator, b.op(0));
}

// ==================================================================== stake / stakeWithPermit

#[test]
fn stake_succeeds_emits_staked_and_moves_exact_amount() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, staking) = (b.owner(0), b.staking);
    let before = b.balance(owner);
    let e = ev::<Staking::Staked>(b.stake(0, usd(1_000)));
    assert_eq!((e.provider, e.amount), (owner, u(usd(1_000))));
    assert_eq!(e.newStake, u(usd(1_000)));
    let e = ev::<Staking::Staked>(b.stake(0, usd(500)));
    assert_eq!((e.amount, e.newStake), (u(usd(500)), u(usd(1_500))));
    assert_eq!(b.balance(owner), before - usd(1_500));
    assert_eq!(b.balance(staking), usd(1_500));
    assert_eq!((b.info(0).stake, b.totals().0), (usd(1_500), usd(1_500)));
    b.assert_conserved();
}

#[test]
fn stake_reverts_zero_amount() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    reverts!(b.stake(0, 0), ZeroAmount());
}

#[test]
fn stake_reverts_not_registered() {
    let mut b = Bed::new();
    let provider = b.owner(0);
    reverts!(b.stake(0, USDC), ProviderNotRegistered(provider));
}

#[test]
fn stake_reverts_token_transfer_mismatch_fee_on_transfer_token_tok04() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    let token = s.chain.deploy(gov, FeeOnTransferToken::BYTECODE.clone());
    let mut b = Bed::with_token(s, token);
    let (owner, staking) = (b.owner(0), b.staking);
    b.s.mint(token, owner, usd(1_000));
    b.register(0).expect_success();
    let (expected, received) = (u(usd(1_000)), u(usd(990)));
    let r = b.stake(0, usd(1_000));
    reverts!(r, TokenTransferMismatch(token, expected, received));
    assert_eq!((b.balance(owner), b.balance(staking)), (usd(1_000), 0));
    assert_eq!(b.state(0), (0, 0, 0));
}

#[test]
fn stake_reverts_amount_above_uint128_tok10_stk08() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let owner = b.owner(0);
    let amount = u(u128::MAX) + u(1u8);
    let r = b.send(owner, Staking::stakeCall { amount });
    reverts!(r, StakeAmountTooLarge(amount));
}

#[test]
fn stake_with_permit_succeeds_valid_permit() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, spender, token) = (b.owner(0), b.staking, b.token);
    let p = b.permit(0, usd(700));
    let e = ev::<Staking::Staked>(b.stake_permit(owner, usd(700), p));
    assert_eq!(e.newStake, u(usd(700)));
    let call = MockStablecoin::allowanceCall { owner, spender };
    assert_eq!(b.s.chain.view(token, call), U256::ZERO);
    b.assert_conserved();
}

#[test]
fn stake_with_permit_succeeds_permit_front_run_esc02() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, spender, token) = (b.owner(0), b.staking, b.token);
    let (value, attacker) = (u(usd(700)), b.s.keeper.address);
    let (v, r, s, deadline) = b.permit(0, usd(700));
    // The attacker copies the permit from the mempool and lands it first.
    let call = MockStablecoin::permitCall::new((owner, spender, value, deadline, v, r, s));
    b.s.chain.send(attacker, token, call).expect_success();
    let p = (v, r, s, deadline);
    b.stake_permit(owner, usd(700), p).expect_success();
    assert_eq!(b.info(0).stake, usd(700));
    b.assert_conserved();
}

#[test]
fn stake_with_permit_reverts_invalid_permit_without_allowance_esc02() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, token) = (b.owner(0), b.token);
    let bogus = (27, B256::ZERO, B256::ZERO, u(b.s.chain.now() + 60));
    let r = b.stake_permit(owner, USDC, bogus);
    let (allowance, needed) = (U256::ZERO, u(USDC));
    reverts!(r, InsufficientAllowance(token, owner, allowance, needed));
}

#[test]
fn stake_with_permit_reverts_permit_of_another_owner_esc03() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    b.register(1).expect_success();
    let (victim, owner, token) = (b.owner(0), b.owner(1), b.token);
    let p = b.permit(0, usd(700));
    let before = b.balance(victim);
    let r = b.stake_permit(owner, usd(700), p);
    let (allowance, needed) = (U256::ZERO, u(usd(700)));
    reverts!(r, InsufficientAllowance(token, owner, allowance, needed));
    assert_eq!((b.balance(victim), b.info(1).stake), (before, 0));
}

// ==================================================================== unbond / withdrawUnbonded

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
    let id = s.lease(10 * USDC); // provider 0: 10,000 staked, 100 locked by the lease
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
    // Closing the lease releases exactly the collateral.
    s.close(tenant, id).expect_success();
    let call = Staking::providerInfoCall { provider };
    let info = s.chain.view(staking, call);
    assert_eq!((info.stake, info.locked), (usd(100), 0));
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
    assert_eq!((b.info(0).unbonding, b.release_at(0)), (usd(200), at));
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
    assert_eq!(b.info(0).unbonding, usd(400));
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

// ==================================================================== slash

#[test]
fn slash_takes_unbonding_stake_after_front_run_unbond_stk03_stk04() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    // The provider sees the slash in the mempool and unbonds everything first: it lands in full.
    b.unbond(0, usd(1_000)).expect_success();
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
fn slash_takes_active_stake_before_unbonding_stk03() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    b.unbond(0, usd(700)).expect_success();
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
    assert_eq!(split(r).0, usd(1_000));
    assert_eq!(b.state(0), (0, 0, 0));
    // Nothing left and an absurd penalty: still no revert, nothing taken.
    let (hook, provider, max) = (b.hook, b.owner(0), U256::MAX);
    let zero = Address::ZERO;
    let call = Staking::slashCall::new((provider, max, max, evidence(2), zero, max, zero));
    assert_eq!(split(b.send(hook, call)), (0, 0, 0, 0));
    b.assert_conserved();
}

#[test]
fn slash_releases_faulted_lock_and_clamps_locked_to_stake_stk05() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(800)));
    let a = pen(usd(500), 1).releasing(usd(300));
    b.slash(0, a).expect_success();
    assert_eq!(b.state(0), (usd(500), usd(500), 0));
    // No lock released, but the stake falls below the lock: locked never exceeds stake.
    b.slash(0, pen(usd(200), 2)).expect_success();
    assert_eq!(b.state(0), (usd(300), usd(300), 0));
    assert_eq!(b.free_stake(0), 0);
}

#[test]
fn slash_split_adds_up_and_reporter_gets_less_than_slashed_stk14() {
    let mut b = Bed::new();
    b.staked(0, usd(100_000));
    let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
    let treasury = b.s.treasury.address;
    let big = usd(1_000) + 7;
    let cases = [(1, 0), (3, 1), (999, 1_000), (big, usd(300)), (usd(5), 0)];
    let mut n = 0;
    for bps in [1_000, MAX_BPS] {
        b.gov(Staking::setReporterBpsCall { bps }).expect_success();
        for (penalty, comp) in cases {
            n += 1;
            let credits = |b: &mut Bed| (b.credit(tenant), b.credit(reporter), b.credit(treasury));
            let before = credits(&mut b);
            let a = pen(penalty, n).to(tenant, comp, reporter);
            let (slashed, t, r, tr) = split(b.slash(0, a));
            let to_tenant = comp.min(penalty);
            let to_reporter = (penalty - to_tenant) * u128::from(bps) / 10_000;
            assert_eq!((slashed, t, r), (penalty, to_tenant, to_reporter));
            assert_eq!(t + r + tr, slashed, "split adds up");
            assert!(r < slashed, "self-reporting must lose money");
            let expected = (before.0 + t, before.1 + r, before.2 + tr);
            assert_eq!(credits(&mut b), expected);
        }
    }
    b.assert_conserved();
}

#[test]
fn slash_gives_nothing_to_zero_tenant_or_zero_reporter_stk14() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let treasury = b.s.treasury.address;
    let a = pen(usd(100), 1).to(Address::ZERO, usd(40), Address::ZERO);
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
    assert_eq!((b.info(0).stake, b.info(1).stake), (usd(900), usd(1_000)));
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
            b.slash_from(caller, 0, pen(1, 1).to(caller, 1, caller)),
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

// ==================================================================== governance

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
fn set_reporter_bps_reverts_above_max_adm04() {
    let mut b = Bed::new();
    let r = b.gov(Staking::setReporterBpsCall { bps: MAX_BPS + 1 });
    let (name, value, min, max) = (b32("reporterBps"), u(5_001u16), U256::ZERO, u(MAX_BPS));
    reverts!(r, StakingParameterOutOfBounds(name, value, min, max));
    let r = b.gov(Staking::setReporterBpsCall { bps: MAX_BPS });
    assert_eq!(ev::<Staking::ReporterRewardSet>(r).reporterBps, MAX_BPS);
    assert_eq!(b.view(Staking::reporterBpsCall {}), MAX_BPS);
}

#[test]
fn governance_setters_revert_for_non_owner_adm01() {
    let mut b = Bed::new();
    for c in outsiders(&b.s) {
        let rs = [
            b.send(c, Staking::setMarketCall { market_: c }),
            b.send(c, period(2 * DAY)),
            b.send(c, Staking::setReporterBpsCall { bps: 1 }),
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
    let r = b.gov(Staking::setReporterBpsCall { bps: 1 });
    reverts!(r, OwnableUnauthorizedAccount(gov));
    let r = b.send(next, Staking::setReporterBpsCall { bps: 1 });
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
fn market_set_params_reverts_max_lease_above_half_unbonding_stk03() {
    let mut s = Suite::new();
    let (gov, market, staking) = (s.gov.address, s.market, s.staking);
    let unbonding: u64 = s.chain.view(staking, Staking::unbondingPeriodCall {}).to();
    let limit = u32::try_from(unbonding / 2).expect("fits");
    let current = s.chain.view(market, Market::paramsCall {}).maxLeaseDuration;
    assert!(current <= limit, "the deployed bound holds");
    let mut p = default_params();
    p.maxLeaseDuration = limit + 1;
    let call = Market::setParamsCall::new((p.clone(),));
    let r = s.chain.send(gov, market, call);
    let (value, min, max) = (u(limit + 1), u(1u8), u(limit));
    let name = b32("maxLeaseDuration");
    let e = <Market::ParameterOutOfBounds as SolError>::new((name, value, min, max));
    let expected = MarketErrors::ParameterOutOfBounds(e);
    assert_eq!(r.revert_as::<MarketErrors>(), expected);
    p.maxLeaseDuration = limit;
    let call = Market::setParamsCall::new((p,));
    s.chain.send(gov, market, call).expect_success();
    let now = s.chain.view(market, Market::paramsCall {}).maxLeaseDuration;
    assert_eq!(now, limit);
}

#[test]
fn staking_set_unbonding_period_keeps_market_lease_bound_stk03() {
    let mut s = Suite::new();
    let (gov, market, staking) = (s.gov.address, s.market, s.staking);
    let _ = s.chain.send(gov, staking, period(MIN_PERIOD));
    let unbonding: u64 = s.chain.view(staking, Staking::unbondingPeriodCall {}).to();
    let max_lease = s.chain.view(market, Market::paramsCall {}).maxLeaseDuration;
    let half = unbonding / 2;
    assert!(u64::from(max_lease) <= half, "{max_lease} > {half}");
}

// ==================================================================== credits and conservation

#[test]
fn withdraw_credit_pays_exactly_once() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
    let a = pen(usd(100), 1).to(tenant, usd(30), reporter);
    b.slash(0, a).expect_success();
    let before = b.balance(tenant);
    let e = ev::<Staking::CreditWithdrawn>(b.withdraw_credit(tenant, tenant));
    assert_eq!((e.account, e.to, e.amount), (tenant, tenant, u(usd(30))));
    assert_eq!(b.balance(tenant), before + usd(30));
    let r = b.withdraw_credit(tenant, tenant);
    reverts!(r, NothingToWithdraw(tenant));
    // The reporter's 10 % of the 70 left after the tenant goes to another address.
    let to = Account::numbered(304).address;
    b.withdraw_credit(reporter, to).expect_success();
    assert_eq!((b.balance(to), b.credit(reporter)), (usd(7), 0));
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
    let a = pen(usd(2_500) + 3, 1).to(tenant, 333, reporter);
    b.slash(2, a.releasing(usd(1_000))).expect_success();
    b.assert_conserved();
    let a = pen(usd(1_700), 2).to(Address::ZERO, 0, reporter);
    b.slash(1, a).expect_success();
    b.assert_conserved();
    for who in [tenant, reporter, treasury] {
        b.withdraw_credit(who, who).expect_success();
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
