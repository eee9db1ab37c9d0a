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
use gridlease_primitives::eip712::{OperatorConsent, Permit, permit_domain, staking_domain};
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

mod credits;
mod governance;
mod register;
mod slash;
mod stake;
mod unbond;
