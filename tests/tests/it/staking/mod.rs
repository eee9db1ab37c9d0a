//! Staking: one test per branch of every external function, plus the STK, ADM, MEC and ESC-02/03
//! items of SECURITY.md (the ID is in each test's name). Market hooks (tryLock, release, slash)
//! are driven on a second Staking whose market is an EOA the test controls.

use alloy::primitives::{Bytes, aliases::U96};
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
use gridlease_core::eip712::{OperatorConsent, Permit, permit_domain, staking_domain};
use gridlease_tests::{
    evm::{CHAIN_ID, Receipt},
    fixture::{
        Account, FAULT_HORIZON, HEARTBEAT, Suite, UNBONDING, USDC, big_capacity, creation,
        default_params,
    },
};

const DAY: u64 = 86_400;
const MIN_PERIOD: u64 = DAY;
const MAX_PERIOD: u64 = 90 * DAY;

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
    evidence: u64,
    tenant: Address,
    compensation: u128,
    reporter: Address,
    cut: u128,
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
    /// Compensate `tenant` up to `compensation`, of which `reporter` takes up to `cut`.
    fn to(self, tenant: Address, compensation: u128, reporter: Address, cut: u128) -> Self {
        Self {
            tenant,
            compensation,
            reporter,
            cut,
            ..self
        }
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
        let args = Staking::constructorCall::new((token, gov, treasury_, period, HEARTBEAT as u16));
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

    /// The consent of `operator` (signed with its key) to serve provider `i`, with the nonce
    /// the contract expects, valid for an hour.
    fn consent(&mut self, i: usize, operator: &Account) -> (U256, Bytes) {
        let owner = self.owner(i);
        let nonce = self.view(Staking::operatorNonceCall {
            operator: operator.address,
        });
        self.consent_with(owner, operator, nonce, self.s.chain.now() + 3_600)
    }

    fn consent_with(
        &self,
        provider: Address,
        operator: &Account,
        nonce: U256,
        deadline: u64,
    ) -> (U256, Bytes) {
        let sig = OperatorConsent::new(provider, operator.address, nonce, deadline)
            .sign(&staking_domain(CHAIN_ID, self.staking), &operator.key)
            .expect("sign consent");
        (u(deadline), Bytes::from(sig.as_bytes().to_vec()))
    }

    /// Register provider `i` with operator `operator` (which consents), no ceiling.
    fn register_as(&mut self, i: usize, operator: &Account) -> Receipt {
        let (deadline, sig) = self.consent(i, operator);
        self.register_signed(i, operator.address, U96::MAX, deadline, sig)
    }

    fn register_signed(
        &mut self,
        i: usize,
        operator: Address,
        ceiling: U96,
        deadline: U256,
        sig: Bytes,
    ) -> Receipt {
        let (owner, capacity, uri) = (self.owner(i), big_capacity(), format!("p{i}"));
        let call = Staking::registerCall::new((operator, capacity, uri, ceiling, deadline, sig));
        self.send(owner, call)
    }

    fn operator_account(&self, i: usize) -> Account {
        self.s.providers[i].operator.clone()
    }

    fn register(&mut self, i: usize) -> Receipt {
        let op = self.operator_account(i);
        self.register_as(i, &op)
    }

    fn update(&mut self, i: usize, operator: &Account, capacity: Capacity) -> Receipt {
        self.update_ceiling(i, operator, capacity, U96::MAX)
    }

    fn update_ceiling(
        &mut self,
        i: usize,
        operator: &Account,
        capacity: Capacity,
        ceiling: U96,
    ) -> Receipt {
        let (owner, uri) = (self.owner(i), "v2".to_string());
        let (deadline, sig) = self.consent(i, operator);
        let call = Staking::updateProviderCall::new((
            operator.address,
            capacity,
            uri,
            ceiling,
            deadline,
            sig,
        ));
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
        (v.stake.to(), v.locked.to(), v.unbonding.to())
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
        let (penalty, comp, cut) = (u(a.penalty), u(a.compensation), u(a.cut));
        let args = (provider, penalty, ev, a.tenant, comp, a.reporter, cut);
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
fn register_succeeds_records_operator_capacity_and_ceiling() {
    let mut b = Bed::new();
    let (owner, op) = (b.owner(0), b.op(0));
    let e = ev::<Staking::ProviderRegistered>(b.register(0));
    assert_eq!((e.provider, e.operator), (owner, op));
    assert_eq!((e.capacity, e.metadataURI.as_str()), (big_capacity(), "p0"));
    assert_eq!(e.ceiling, U96::MAX);
    let info = b.info(0);
    assert_eq!((info.operator, info.stake), (op, U96::ZERO));
    assert_eq!(info.capacity, big_capacity());
    assert_eq!(b.provider_of(op), owner);
    let bidder = b.view(Staking::bidderInfoCall { operator: op });
    assert_eq!(bidder.provider, owner);
    // The consent is spent: its nonce moved on.
    assert_eq!(
        b.view(Staking::operatorNonceCall { operator: op }),
        U256::from(1)
    );
}

#[test]
fn register_without_the_operators_consent_reverts_mec11() {
    // Nobody binds a key it does not hold: a consent signed by another key, for another
    // provider, expired, or already used, is refused.
    let mut b = Bed::new();
    let (victim, squatter) = (b.operator_account(0), b.operator_account(1));
    let owner1 = b.owner(1);
    // Signed by the squatter's own key for the victim's address.
    let now = b.s.chain.now();
    let (deadline, sig) = b.consent_with(owner1, &squatter, U256::ZERO, now + 60);
    let r = b.register_signed(1, victim.address, U96::MAX, deadline, sig);
    reverts!(r, BadOperatorConsent(victim.address));
    // The victim's consent to serve provider 0, replayed by provider 1.
    let owner0 = b.owner(0);
    let (deadline, sig) = b.consent_with(owner0, &victim, U256::ZERO, now + 60);
    let r = b.register_signed(1, victim.address, U96::MAX, deadline, sig.clone());
    reverts!(r, BadOperatorConsent(victim.address));
    // Expired.
    b.s.chain.warp(61);
    let r = b.register_signed(0, victim.address, U96::MAX, deadline, sig);
    reverts!(r, BadOperatorConsent(victim.address));
    // Used once, not twice (the nonce moves on): bind, rotate away, try to re-bind with the old one.
    let (deadline, sig) = b.consent(0, &victim);
    b.register_signed(0, victim.address, U96::MAX, deadline, sig.clone())
        .expect_success();
    let fresh = Account::numbered(310);
    b.s.chain.fund(fresh.address);
    b.update(0, &fresh, big_capacity()).expect_success();
    let owner = b.owner(0);
    let call = Staking::updateProviderCall::new((
        victim.address,
        big_capacity(),
        "x".to_string(),
        U96::MAX,
        deadline,
        sig,
    ));
    let r = b.send(owner, call);
    reverts!(r, BadOperatorConsent(victim.address));
}

#[test]
fn register_reverts_already_registered() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let provider = b.owner(0);
    let other = Account::numbered(300);
    let r = b.register_as(0, &other);
    reverts!(r, ProviderAlreadyRegistered(provider));
}

#[test]
fn register_reverts_operator_zero_or_taken() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let taken = b.operator_account(0);
    let (deadline, sig) = b.consent(1, &taken);
    for operator in [Address::ZERO, taken.address] {
        let r = b.register_signed(1, operator, U96::MAX, deadline, sig.clone());
        reverts!(r, OperatorUnavailable(operator));
    }
    assert_eq!(b.info(1).operator, Address::ZERO);
}

#[test]
fn update_provider_succeeds_changes_capacity_same_operator() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, op) = (b.owner(0), b.operator_account(0));
    let mut cap = big_capacity();
    cap.gpuCount = 2;
    let e = ev::<Staking::ProviderUpdated>(b.update(0, &op, cap.clone()));
    assert_eq!((e.provider, e.operator), (owner, op.address));
    assert_eq!((e.capacity, e.metadataURI.as_str()), (cap.clone(), "v2"));
    assert_eq!(
        (b.info(0).capacity, b.provider_of(op.address)),
        (cap, owner)
    );
}

#[test]
fn update_provider_reverts_not_registered() {
    let mut b = Bed::new();
    let provider = b.owner(0);
    let op = b.operator_account(0);
    let r = b.update(0, &op, big_capacity());
    reverts!(r, ProviderNotRegistered(provider));
}

#[test]
fn update_provider_frees_old_operator_on_operator_change() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let (owner, old) = (b.owner(0), b.operator_account(0));
    let new = Account::numbered(300);
    b.update(0, &new, big_capacity()).expect_success();
    assert_eq!(b.provider_of(old.address), Address::ZERO);
    assert_eq!(
        (b.provider_of(new.address), b.info(0).operator),
        (owner, new.address)
    );
    // The freed key can serve another provider now (with a fresh consent).
    b.register_as(1, &old).expect_success();
    let owner1 = b.owner(1);
    assert_eq!(b.provider_of(old.address), owner1);
}

#[test]
fn update_provider_reverts_operator_zero_or_taken() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    b.register(1).expect_success();
    let taken = b.operator_account(1);
    let (deadline, sig) = b.consent(0, &taken);
    let owner = b.owner(0);
    for operator in [Address::ZERO, taken.address] {
        let call = Staking::updateProviderCall::new((
            operator,
            big_capacity(),
            "v2".to_string(),
            U96::MAX,
            deadline,
            sig.clone(),
        ));
        let r = b.send(owner, call);
        reverts!(r, OperatorUnavailable(operator));
    }
    assert_eq!(b.info(0).operator, b.op(0));
}

// ==================================================================== collateral ceiling

#[test]
fn the_collateral_ceiling_bounds_what_the_operator_can_lock_mec07() {
    // The owner bounds what a leaked operator key can put at risk at once.
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let op = b.operator_account(0);
    b.update_ceiling(0, &op, big_capacity(), U96::from(usd(300)))
        .expect_success();
    assert_eq!(b.free_stake(0), usd(300));
    assert!(!b.lock(0, usd(300) + 1));
    assert!(b.lock(0, usd(200)));
    assert!(!b.lock(0, usd(100) + 1));
    assert!(b.lock(0, usd(100)));
    assert_eq!(b.free_stake(0), 0);
    // The rest of the stake stays the owner's to unbond.
    b.unbond(0, usd(700)).expect_success();
    // Lowering the ceiling below what is locked stops new locks; it never unlocks anything.
    b.update_ceiling(0, &op, big_capacity(), U96::from(usd(100)))
        .expect_success();
    assert_eq!(b.state(0), (usd(300), usd(300), usd(700)));
    assert!(!b.lock(0, 1));
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
    assert_eq!((b.state(0).0, b.totals().0), (usd(1_500), usd(1_500)));
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
fn stake_reverts_amount_above_uint96_tok10_stk08() {
    let mut b = Bed::new();
    b.register(0).expect_success();
    let owner = b.owner(0);
    let amount = u((1u128 << 96) - 1) + u(1u8);
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
    assert_eq!(b.state(0).0, usd(700));
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
    assert_eq!((b.balance(victim), b.state(1).0), (before, 0));
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

// ==================================================================== slash

#[test]
fn a_front_run_unbond_cannot_reach_locked_collateral_and_the_slash_lands_stk03_stk04() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(600)));
    // The provider sees the slash in the mempool and unbonds all it can first: only free stake.
    b.unbond(0, usd(400)).expect_success();
    let provider = b.owner(0);
    let r = b.unbond(0, 1);
    reverts!(r, InsufficientFreeStake(provider, u(1u8), U256::ZERO));
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
fn slash_never_takes_unbonding_stake() {
    // Only what a lease locked is at risk: unbonding stake was never committed to a lease.
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(500)));
    b.unbond(0, usd(500)).expect_success();
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
    assert_eq!(split(r).0, usd(800));
    assert_eq!(b.state(0), (0, 0, usd(200)));
    // Nothing left and an absurd penalty: still no revert, nothing taken.
    let (hook, provider, max) = (b.hook, b.owner(0), U256::MAX);
    let zero = Address::ZERO;
    let call = Staking::slashCall::new((provider, max, evidence(2), zero, max, zero, max));
    assert_eq!(split(b.send(hook, call)), (0, 0, 0, 0));
    b.assert_conserved();
}

#[test]
fn slash_takes_the_lock_and_clamps_locked_to_stake_stk05() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    assert!(b.lock(0, usd(800)));
    b.slash(0, pen(usd(500), 1)).expect_success();
    assert_eq!(b.state(0), (usd(500), usd(300), 0));
    b.slash(0, pen(usd(300), 2)).expect_success();
    assert_eq!(b.state(0), (usd(200), 0, 0));
    assert_eq!(b.free_stake(0), usd(200));
}

#[test]
fn slash_pays_the_tenant_its_loss_the_reporter_its_cut_and_the_treasury_the_rest_stk14() {
    // The tenant gets at most the compensation, the reporter at most its cut of it; nothing of the
    // slash beyond the tenant's loss reaches either (MEC-07), so the split always adds up and a
    // reporter that is not a victim earns only from the victim's share.
    let mut b = Bed::new();
    b.staked(0, usd(100_000));
    let (tenant, reporter) = (b.s.tenant(0), b.s.keeper.address);
    let treasury = b.s.treasury.address;
    let big = usd(1_000) + 7;
    let cases = [
        (1, 0, 0),
        (3, 1, 1),
        (999, 1_000, 50),
        (big, usd(300), usd(15)),
        (usd(5), 0, usd(1)),
    ];
    for (n, (penalty, comp, cut)) in cases.into_iter().enumerate() {
        let credits = |b: &mut Bed| (b.credit(tenant), b.credit(reporter), b.credit(treasury));
        let before = credits(&mut b);
        assert!(b.lock(0, penalty));
        let a = pen(penalty, n as u64 + 1).to(tenant, comp, reporter, cut);
        let (slashed, t, r, tr) = split(b.slash(0, a));
        let to_tenant = comp.min(penalty);
        let to_reporter = cut.min(to_tenant);
        assert_eq!(
            (slashed, t, r),
            (penalty, to_tenant - to_reporter, to_reporter)
        );
        assert_eq!(t + r + tr, slashed, "split adds up");
        assert!(t + r <= comp, "never more than the tenant lost");
        let expected = (before.0 + t, before.1 + r, before.2 + tr);
        assert_eq!(credits(&mut b), expected);
    }
    b.assert_conserved();
}

#[test]
fn slash_gives_nothing_to_zero_tenant_or_zero_reporter_stk14() {
    let mut b = Bed::new();
    b.staked(0, usd(1_000));
    let treasury = b.s.treasury.address;
    let a = pen(usd(100), 1).to(Address::ZERO, usd(40), Address::ZERO, usd(5));
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
    assert_eq!((b.state(0).0, b.state(1).0), (usd(900), usd(1_000)));
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
            b.slash_from(caller, 0, pen(1, 1).to(caller, 1, caller, 1)),
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

// ==================================================================== credits and conservation

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
