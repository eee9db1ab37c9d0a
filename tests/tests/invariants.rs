//! Stateful property tests (DESIGN 4.4, SECURITY G): random sequences of create / auction / bid /
//! award (with valid, expired, foreign, stranger and replayed signed bids) / settle / top-up /
//! close / cancel / stake / unbond / withdraw / governance / result posting (true or wrong
//! `matmul_i8` results) / fraud proofs / heartbeats and stale-heartbeat reports and proofs on
//! service leases / slash-credit withdrawal / warp against the deployed
//! contracts and the Rust model ([`gridlease_tests::model`]). After every step:
//!
//! - INV-01 solvency and INV-02 conservation from chain reads alone: the market holds exactly the
//!   escrow of open orders and active leases + credits + protocol fees, and exactly what came in
//!   minus what went out; staking holds active + unbonding stake + slash credits; the token's total
//!   supply is all accounted for;
//! - every call succeeds exactly when the model says it must, and every balance, credit, fee,
//!   order, lease and stake record equals the model's (so no admin call moves anyone's money,
//!   ADM-05, and a signed bid never counts on another order, after expiry, or twice);
//! - INV-03: a provider is never paid more than rate x billable seconds, nor less by more than one
//!   unit per settlement; an ended job's paid + refunded == deposited;
//! - INV-04: reserved collateral <= stake, equal to the collateral of the provider's active leases;
//! - INV-05 / INV-06: settledAt never goes back; status only moves None -> Open -> Leased ->
//!   Closed or Open -> Cancelled (instant orders None -> Leased within one step);
//! - INV-08: keeper fees never exceed their rate of what was settled;
//! - an honest provider (true results, acknowledged in time, results before the deadline) is never
//!   slashed: a proof against a true result reverts with NoFraud, an acknowledged lease is no
//!   no-show, a lease with a result missed no deadline,
//!   and conservation holds with slashing in the mix (slash credits are part of staking's
//!   holdings).
//!
//! Each run ends with INV-07: past every deadline, the exits (paused market) empty both contracts.
//!
//! Slashing is driven the same way on a Staking whose market hook is a test key
//! (`staking_matches_model`: STK-01, STK-03, STK-06, STK-07, STK-14, INV-04).
//!
//! Cases: 48 per property by default; set `PROPTEST_CASES` for more (e.g. 2000 before a release).
//! Failing seeds are kept in `tests/proptest-regressions/invariants.txt` (committed).

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U48, aliases::U96, keccak256},
    sol_types::{SolCall, SolConstructor},
};
use gridlease_bindings::{
    IMarket::{OrderParams, SignedBid},
    IStaking::Capacity,
    Market, MockStablecoin, Results, Staking,
    results::MatmulProof::Job,
};
use gridlease_core::{
    eip712::{Bid, market_domain},
    matmul::{Matmul, commit, localize, multiply, proof_for},
};
use gridlease_tests::{
    evm::{CHAIN_ID, Receipt},
    fixture::{Account, Suite, UNBONDING, USDC, creation, default_params},
    model::{BPS, Model, Offer, Order, Outcome, Params, Provider, Status},
};
use proptest::{prelude::*, test_runner::FileFailurePersistence};

const TENANTS: usize = 3;
const PROVIDERS: usize = 4;
/// 0.01 USDC.
const CENT: u128 = USDC / 100;
/// Price step: 0.0001 USDC a second.
const STEP: u128 = 100_000_000_000_000;
/// 10^(18 - 6).
const SCALE: u128 = 1_000_000_000_000;
const COLLATERALS: [u128; 4] = [0, 50 * USDC, 200 * USDC, 900 * USDC];
const VRAMS: [u16; 3] = [8, 24, 80];
/// Initial stake and VRAM per provider: provider 3 is small and cannot take 24 GiB jobs.
const STAKES: [u128; PROVIDERS] = [1_000 * USDC, 1_000 * USDC, 300 * USDC, 100 * USDC];
const PROVIDER_VRAM: [u16; PROVIDERS] = [80, 80, 24, 16];

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/invariants.txt"
        )))),
        ..ProptestConfig::default()
    }
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Tenant(usize),
    Owner(usize),
    Operator(usize),
    Keeper,
}

#[derive(Clone, Copy, Debug)]
enum Sig {
    Valid,
    OtherOrder,
    Expired,
    Stranger,
    Replay,
}

#[derive(Clone, Debug)]
enum Action {
    Create {
        tenant: usize,
        deposit_cents: u64,
        max_price: u8,
        duration: u64,
        window: u64,
        collateral: usize,
        vram: usize,
        instant: bool,
        permit: bool,
    },
    Bid {
        provider: usize,
        job: u8,
        price: u8,
    },
    /// A whole auction: create, on-chain bids, wait out the window, award with signed bids. Each
    /// part is one checked step.
    Auction {
        create: Box<Action>,
        onchain: Vec<(usize, u8)>,
        signed: Vec<(usize, u8, Sig)>,
    },
    Award {
        job: u8,
        bids: Vec<(usize, u8, Sig)>,
    },
    Settle {
        jobs: Vec<u8>,
        by: Who,
    },
    TopUp {
        job: u8,
        payer: usize,
        cents: u64,
        wrong_provider: bool,
    },
    Close {
        job: u8,
        by: Who,
    },
    Cancel {
        job: u8,
        by: Who,
    },
    Stake {
        provider: usize,
        usdc: u64,
    },
    Unbond {
        provider: usize,
        usdc: u64,
    },
    WithdrawUnbonded {
        provider: usize,
    },
    Withdraw {
        who: Who,
    },
    WithdrawFees,
    SetParams {
        protocol_fee_bps: u16,
        keeper_fee_bps: u16,
        paused: bool,
    },
    Warp {
        secs: u64,
    },
    /// The lease's provider posts a result: the true C, or one with a flipped element.
    PostResult {
        job: u8,
        honest: bool,
    },
    /// `by` proves the posted result wrong (at the wrong element if there is one, else at (0, 0)).
    ProveFraud {
        job: u8,
        by: Who,
    },
    /// Withdraw slash credits from staking.
    WithdrawSlashCredit {
        who: Who,
    },
    /// The lease's provider acknowledges it.
    Acknowledge {
        job: u8,
    },
    /// Provider `provider`'s operator heart-beats.
    Heartbeat {
        provider: usize,
    },
    /// `by` reports (`prove` false) or proves a stale heartbeat on a service lease.
    Stale {
        job: u8,
        by: Who,
        prove: bool,
    },
    /// `by` proves a no-show (`deadline` false) or a missed result deadline.
    ProveLiveness {
        job: u8,
        by: Who,
        deadline: bool,
    },
    /// Jump to an edge of job `job`'s timeline (`biddingEnd`, award grace, lease end or result
    /// time, end of a held lease's challenge window), where the off-by-one bugs live: `edge` 0..8
    /// picks the edge, odd values one second after it.
    WarpToEdge {
        job: u8,
        edge: u8,
    },
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        (0..TENANTS).prop_map(Who::Tenant),
        (0..PROVIDERS).prop_map(Who::Owner),
        (0..PROVIDERS).prop_map(Who::Operator),
        Just(Who::Keeper),
    ]
}

fn sig() -> impl Strategy<Value = Sig> {
    prop_oneof![
        6 => Just(Sig::Valid),
        1 => Just(Sig::OtherOrder),
        1 => Just(Sig::Expired),
        1 => Just(Sig::Stranger),
        1 => Just(Sig::Replay),
    ]
}

fn warp() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 1..120u64,
        3 => 120..4_000u64,
        1 => Just(UNBONDING),
    ]
}

fn create() -> impl Strategy<Value = Action> {
    (
        (0..TENANTS, 1..3_000u64, 5..40u8, 30..7_200u64, 1..900u64),
        (
            0..COLLATERALS.len(),
            0..VRAMS.len(),
            prop::bool::weighted(0.3),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (tenant, deposit_cents, max_price, duration, window),
                (collateral, vram, instant, permit),
            )| {
                Action::Create {
                    tenant,
                    deposit_cents,
                    max_price,
                    duration,
                    window,
                    collateral,
                    vram,
                    instant,
                    permit,
                }
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    let job = 0..8u8;
    let bids = prop::collection::vec((0..PROVIDERS, 0..42u8), 0..3);
    prop_oneof![
        3 => create(),
        4 => (create(), bids, prop::collection::vec((0..PROVIDERS, 0..42u8, sig()), 0..4))
            .prop_map(|(c, onchain, signed)| Action::Auction { create: Box::new(c), onchain, signed }),
        5 => (0..PROVIDERS, job.clone(), 0..42u8).prop_map(|(provider, job, price)| Action::Bid { provider, job, price }),
        4 => (job.clone(), prop::collection::vec((0..PROVIDERS, 0..42u8, sig()), 0..4))
            .prop_map(|(job, bids)| Action::Award { job, bids }),
        4 => (prop::collection::vec(0..8u8, 0..6), who()).prop_map(|(jobs, by)| Action::Settle { jobs, by }),
        2 => (job.clone(), 0..TENANTS, 0..2_000u64, prop::bool::weighted(0.1))
            .prop_map(|(job, payer, cents, wrong_provider)| Action::TopUp { job, payer, cents, wrong_provider }),
        3 => (job.clone(), who()).prop_map(|(job, by)| Action::Close { job, by }),
        1 => (job.clone(), who()).prop_map(|(job, by)| Action::Cancel { job, by }),
        1 => (0..PROVIDERS, 0..500u64).prop_map(|(provider, usdc)| Action::Stake { provider, usdc }),
        1 => (0..PROVIDERS, 0..700u64).prop_map(|(provider, usdc)| Action::Unbond { provider, usdc }),
        1 => (0..PROVIDERS).prop_map(|provider| Action::WithdrawUnbonded { provider }),
        2 => who().prop_map(|who| Action::Withdraw { who }),
        1 => Just(Action::WithdrawFees),
        1 => (0..1_200u16, 0..150u16, prop::bool::weighted(0.1))
            .prop_map(|(protocol_fee_bps, keeper_fee_bps, paused)| Action::SetParams { protocol_fee_bps, keeper_fee_bps, paused }),
        6 => warp().prop_map(|secs| Action::Warp { secs }),
        2 => (job.clone(), 0..8u8).prop_map(|(job, edge)| Action::WarpToEdge { job, edge }),
        3 => (job.clone(), prop::bool::weighted(0.6)).prop_map(|(job, honest)| Action::PostResult { job, honest }),
        3 => (job, who()).prop_map(|(job, by)| Action::ProveFraud { job, by }),
        1 => who().prop_map(|who| Action::WithdrawSlashCredit { who }),
        2 => (0..8u8).prop_map(|job| Action::Acknowledge { job }),
        4 => (0..PROVIDERS).prop_map(|provider| Action::Heartbeat { provider }),
        2 => (0..8u8, who(), any::<bool>()).prop_map(|(job, by, prove)| Action::Stale { job, by, prove }),
        2 => (0..8u8, who(), any::<bool>()).prop_map(|(job, by, deadline)| Action::ProveLiveness { job, by, deadline }),
    ]
}

/// The deployed market, its model, and what the run has seen.
struct Run {
    s: Suite,
    m: Model,
    /// Order ids in creation order.
    ids: Vec<B256>,
    /// Signed bids already used in an award, with what they commit to.
    used: Vec<(SignedBid, Offer)>,
    salt: u64,
    /// Tokens that entered / left the market (INV-02).
    ghost_in: u128,
    ghost_out: u128,
    /// Status and settledAt of each job at the previous check (INV-05, INV-06).
    prev: BTreeMap<B256, (Status, u64)>,
    /// Order terms and tenant by id, and the matmul job if it is one.
    terms: BTreeMap<B256, (OrderParams, Address, Option<Matmul>)>,
    /// The C each posted result commits to.
    posted: BTreeMap<B256, Vec<i32>>,
    /// Providers that posted a wrong result or missed a start window or result deadline.
    cheaters: Vec<Address>,
}

impl Run {
    fn new() -> Self {
        let mut s = Suite::new();
        let p = default_params();
        let mut providers = BTreeMap::new();
        for i in 0..PROVIDERS {
            let capacity = Capacity {
                gpuClasses: u64::MAX,
                gpuCount: 8,
                vramGiB: PROVIDER_VRAM[i],
            };
            let (owner, operator, staking) = (s.provider(i), s.operator(i), s.staking);
            let call = Staking::registerCall::new((operator, capacity, format!("p{i}")));
            s.chain.send(owner, staking, call).expect_success();
            s.stake(i, STAKES[i]);
            providers.insert(
                owner,
                Provider {
                    operator,
                    gpu_classes: u64::MAX,
                    gpu_count: 8,
                    vram_gib: PROVIDER_VRAM[i],
                    stake: STAKES[i],
                    ..Provider::default()
                },
            );
        }
        let params = Params {
            protocol_fee_bps: p.protocolFeeBps,
            keeper_fee_bps: p.keeperFeeBps,
            min_price: u128::from(p.minPricePerSecond),
            max_bid_window: u64::from(p.maxBidWindow),
            award_grace: u64::from(p.awardGrace),
            low_balance_window: u64::from(p.lowBalanceWindow),
            max_lease: u64::from(p.maxLeaseDuration),
            paused: p.paused,
        };
        let mut m = Model::new(s.chain.now(), params, s.treasury.address);
        m.providers = providers;
        let mut run = Self {
            s,
            m: m.clone(),
            ids: Vec::new(),
            used: Vec::new(),
            salt: 0,
            ghost_in: 0,
            ghost_out: 0,
            prev: BTreeMap::new(),
            terms: BTreeMap::new(),
            posted: BTreeMap::new(),
            cheaters: Vec::new(),
        };
        for a in run.actors() {
            let token = run.s.token;
            m.balances.insert(a, run.s.balance(token, a));
        }
        run.m = m;
        run
    }

    fn actors(&self) -> Vec<Address> {
        let s = &self.s;
        let mut all: Vec<Address> = (0..TENANTS).map(|i| s.tenant(i)).collect();
        all.extend((0..PROVIDERS).map(|i| s.provider(i)));
        all.extend((0..PROVIDERS).map(|i| s.operator(i)));
        all.extend([s.keeper.address, s.treasury.address]);
        all
    }

    fn addr(&self, w: Who) -> Address {
        match w {
            Who::Tenant(i) => self.s.tenant(i),
            Who::Owner(i) => self.s.provider(i),
            Who::Operator(i) => self.s.operator(i),
            Who::Keeper => self.s.keeper.address,
        }
    }

    /// Job `k`: mostly one of the latest orders (where the action is), sometimes the oldest, and
    /// for `k == 7` an id nobody created.
    fn id(&self, k: u8) -> B256 {
        match self.ids.len() {
            0 => B256::repeat_byte(0xee),
            _ if k >= 7 => B256::repeat_byte(0xee),
            n => self.ids[n - 1 - usize::from(k) % n],
        }
    }

    /// Run one action on both sides and compare.
    fn step(&mut self, a: &Action) {
        self.m.now = self.s.chain.now();
        let (market, staking, token) = (self.s.market, self.s.staking, self.s.token);
        match a.clone() {
            Action::Create {
                tenant,
                deposit_cents,
                max_price,
                duration,
                window,
                collateral,
                vram,
                instant,
                permit,
            } => {
                self.salt += 1;
                let mut p: OrderParams = self.s.order(
                    u128::from(deposit_cents) * CENT,
                    u128::from(max_price) * STEP,
                );
                p.maxDuration = duration as u32;
                p.bidWindow = window as u32;
                p.collateral = U96::from(COLLATERALS[collateral]);
                p.vramGiB = VRAMS[vram];
                p.instant = instant;
                p.salt = B256::from(U256::from(self.salt));
                // Two orders in three are matmul_i8 jobs, whose results can be proven wrong.
                let matmul = (!self.salt.is_multiple_of(3)).then(|| Matmul {
                    seed: B256::from(U256::from(self.salt)),
                    m: 3,
                    k: 5,
                    n: 4,
                });
                if let Some(j) = &matmul {
                    (p.specHash, p.jobKind) = (j.spec_hash(), 1);
                } else {
                    // The others are service leases, paid only while heartbeats are fresh
                    // (container jobs behave like matmul ones here but for fraud proofs, which
                    // `results.rs` covers).
                    p.jobKind = 2;
                }
                let who = self.s.tenant(tenant);
                let id = p.order_id(who);
                let order = Order {
                    deposit: p.deposit.to(),
                    max_price: p.maxPricePerSecond.to(),
                    max_duration: duration,
                    bid_window: window,
                    collateral: COLLATERALS[collateral],
                    gpu_class: p.gpuClass,
                    gpu_count: p.gpuCount,
                    vram_gib: p.vramGiB,
                    instant,
                    service: p.jobKind == 2,
                };
                let want = self.m.apply(|m| m.create(who, id, order));
                self.terms.insert(id, (p.clone(), who, matmul));
                let r = if permit {
                    self.s.create_with_permit(tenant, p)
                } else {
                    self.s.try_create(tenant, p)
                };
                same(a, &r, &want);
                if r.success {
                    assert_eq!(B256::from_slice(&r.output[..32]), id);
                    self.ids.push(id);
                    self.ghost_in += self.m.jobs[&id].deposited;
                }
            }
            Action::Auction {
                create,
                onchain,
                signed,
            } => {
                let n = self.ids.len();
                self.step(&create);
                if self.ids.len() == n {
                    return;
                }
                // Service orders go to live providers: most bidders beat first.
                let service = self.m.jobs[&self.ids[n]].order.service;
                for (provider, price) in onchain {
                    if service && provider != 3 {
                        self.step(&Action::Heartbeat { provider });
                    }
                    self.step(&Action::Bid {
                        provider,
                        job: 0,
                        price,
                    });
                }
                let id = self.ids[n];
                if self.m.jobs[&id].status != Status::Open {
                    return;
                }
                let secs = self.m.jobs[&id].bidding_end + 1 - self.s.chain.now();
                self.step(&Action::Warp { secs });
                if service {
                    for provider in 0..PROVIDERS - 1 {
                        self.step(&Action::Heartbeat { provider });
                    }
                }
                self.step(&Action::Award {
                    job: 0,
                    bids: signed,
                });
                return;
            }
            Action::Bid {
                provider,
                job,
                price,
            } => {
                let (id, price) = (self.id(job), u128::from(price) * STEP);
                let op = self.s.operator(provider);
                let want = self.m.apply(|m| m.bid(op, id, price));
                let r = self.s.bid(provider, id, price);
                same(a, &r, &want);
            }
            Action::Award { job, bids } => {
                let id = self.id(job);
                let (signed, offers): (Vec<SignedBid>, Vec<Offer>) =
                    bids.iter().map(|b| self.offer(id, *b)).unzip();
                let want = self.m.apply(|m| m.award(id, &offers));
                let keeper = self.s.keeper.address;
                let r = self.s.award(keeper, id, signed.clone());
                same(a, &r, &want);
                if let Ok(winner) = want {
                    let got = Market::awardCall::abi_decode_returns(&r.output).expect("winner");
                    assert_eq!(got, winner, "{a:?}: award winner");
                    self.used.extend(signed.into_iter().zip(offers));
                }
            }
            Action::Settle { jobs, by } => {
                let ids: Vec<B256> = jobs.iter().map(|&k| self.id(k)).collect();
                let caller = self.addr(by);
                let want = self.m.apply(|m| m.settle(caller, &ids));
                let r = self.s.settle(caller, ids);
                same(a, &r, &want);
                let got = Market::settleCall::abi_decode_returns(&r.output).expect("count");
                assert_eq!(got, U256::from(want.expect("settle never reverts")));
            }
            Action::TopUp {
                job,
                payer,
                cents,
                wrong_provider,
            } => {
                let (id, amount) = (self.id(job), u128::from(cents) * CENT);
                let expected = match self.m.jobs.get(&id) {
                    _ if wrong_provider => Address::repeat_byte(0x77),
                    Some(j) => j.provider,
                    None => Address::ZERO,
                };
                let who = self.s.tenant(payer);
                let want = self.m.apply(|m| m.top_up(who, id, amount, expected));
                let r = self.s.top_up(who, id, amount, expected);
                same(a, &r, &want);
                if r.success {
                    self.ghost_in += amount;
                }
            }
            Action::Close { job, by } => {
                let (id, caller) = (self.id(job), self.addr(by));
                let want = self.m.apply(|m| m.close(caller, id));
                let r = self.s.close(caller, id);
                same(a, &r, &want);
                if let Ok((split, refund)) = want {
                    let e = r.event::<Market::LeaseClosed>();
                    assert_eq!(e.paid.to::<u128>(), split.paid, "{a:?}: paid at close");
                    assert_eq!(e.keeperFee.to::<u128>(), split.keeper_fee);
                    assert_eq!(e.refund.to::<u128>(), refund);
                    self.ghost_out += refund;
                }
            }
            Action::Cancel { job, by } => {
                let (id, caller) = (self.id(job), self.addr(by));
                let want = self.m.apply(|m| m.cancel(caller, id));
                let r = self
                    .s
                    .chain
                    .send(caller, market, Market::cancelOrderCall { orderId: id });
                same(a, &r, &want);
                self.ghost_out += want.unwrap_or(0);
            }
            Action::Stake { provider, usdc } => {
                let (owner, amount) = (self.s.provider(provider), u128::from(usdc) * USDC);
                let want = self.m.apply(|m| m.stake(owner, amount));
                self.s.approve(token, owner, staking, amount);
                let call = Staking::stakeCall {
                    amount: U256::from(amount),
                };
                let r = self.s.chain.send(owner, staking, call);
                same(a, &r, &want);
            }
            Action::Unbond { provider, usdc } => {
                let (owner, amount) = (self.s.provider(provider), u128::from(usdc) * USDC);
                let want = self.m.apply(|m| m.unbond(owner, amount));
                let call = Staking::unbondCall {
                    amount: U256::from(amount),
                };
                let r = self.s.chain.send(owner, staking, call);
                same(a, &r, &want);
            }
            Action::WithdrawUnbonded { provider } => {
                let owner = self.s.provider(provider);
                let want = self.m.apply(|m| m.withdraw_unbonded(owner));
                let call = Staking::withdrawUnbondedCall { to: owner };
                let r = self.s.chain.send(owner, staking, call);
                same(a, &r, &want);
            }
            Action::Withdraw { who } => {
                let to = self.addr(who);
                let want = self.m.apply(|m| m.withdraw(to));
                let r = self
                    .s
                    .chain
                    .send(to, market, Market::withdrawCall { token, to });
                same(a, &r, &want);
                self.ghost_out += want.unwrap_or(0);
            }
            Action::WithdrawFees => {
                let want = self.m.apply(Model::withdraw_fees);
                let keeper = self.s.keeper.address;
                let r = self
                    .s
                    .chain
                    .send(keeper, market, Market::withdrawFeesCall { token });
                same(a, &r, &want);
                self.ghost_out += want.unwrap_or(0);
            }
            Action::SetParams {
                protocol_fee_bps,
                keeper_fee_bps,
                paused,
            } => {
                let mut p = default_params();
                (p.protocolFeeBps, p.keeperFeeBps, p.paused) =
                    (protocol_fee_bps, keeper_fee_bps, paused);
                let want: Outcome = self.m.apply(|m| {
                    if protocol_fee_bps > 1_000 || keeper_fee_bps > 100 {
                        return Err("ParameterOutOfBounds");
                    }
                    m.params.protocol_fee_bps = protocol_fee_bps;
                    m.params.keeper_fee_bps = keeper_fee_bps;
                    m.params.paused = paused;
                    Ok(())
                });
                let gov = self.s.gov.address;
                let r = self
                    .s
                    .chain
                    .send(gov, market, Market::setParamsCall { params_: p });
                same(a, &r, &want);
            }
            Action::Warp { secs } => self.s.chain.warp(secs),
            Action::PostResult { job, honest } => {
                let id = self.leased_or_any(job);
                let provider = self.m.jobs.get(&id).map_or(Address::ZERO, |j| j.provider);
                let i = (0..PROVIDERS)
                    .find(|&i| self.s.provider(i) == provider)
                    .unwrap_or(0);
                let c = match self.terms.get(&id).and_then(|t| t.2) {
                    Some(j) => {
                        let mut c = multiply(&j.a(), &j.bt(), 3, 5, 4, 1);
                        if !honest {
                            c[5] ^= 1 << 7;
                        }
                        c
                    }
                    None => vec![i32::from(honest); 12],
                };
                let owner = self.s.provider(i);
                let want = self.m.apply(|m| m.post_result(owner, id, honest));
                let call = Results::postResultCall {
                    leaseId: id,
                    root: commit(&c).root(),
                    uri: "https://p.example/r".into(),
                    metaHash: B256::ZERO,
                };
                let (op, results) = (self.s.operator(i), self.s.results);
                let r = self.s.chain.send(op, results, call);
                same(a, &r, &want);
                if r.success {
                    self.posted.insert(id, c);
                    if !honest {
                        self.cheaters.push(owner);
                    }
                }
            }
            Action::ProveFraud { job, by } => {
                // Mostly a lease with a posted result; sometimes any job.
                let posted: Vec<B256> = self.posted.keys().copied().collect();
                let id = match posted.len() {
                    n if n > 0 && job < 6 => posted[usize::from(job) % n],
                    _ => self.id(job),
                };
                let reporter = self.addr(by);
                let (params, tenant, matmul) = match self.terms.get(&id) {
                    Some(t) => t.clone(),
                    None => (self.s.order(1, 1), Address::ZERO, None),
                };
                let j = matmul.unwrap_or(Matmul {
                    seed: B256::ZERO,
                    m: 3,
                    k: 5,
                    n: 4,
                });
                let c = self.posted.get(&id).cloned().unwrap_or_else(|| vec![0; 12]);
                let p = localize(&j, &c, B256::repeat_byte(5))
                    .unwrap_or_else(|| proof_for(&j, &c, 0, 0));
                let want = self
                    .m
                    .apply(|m| m.prove_fraud(reporter, id, matmul.is_some()));
                let call = Results::proveMatmulFraudCall {
                    leaseId: id,
                    tenant,
                    terms: params.into(),
                    job: Job {
                        seed: j.seed,
                        m: j.m,
                        k: j.k,
                        n: j.n,
                    },
                    i: U256::from(p.i),
                    j: U256::from(p.j),
                    leaf: p.leaf.into(),
                    proof: p.proof,
                };
                let results = self.s.results;
                let r = self.s.chain.send(reporter, results, call);
                same(a, &r, &want);
                if let Ok(slashed) = want {
                    let e = r.event::<Market::LeaseFaulted>();
                    assert_eq!(e.slashed, U256::from(slashed), "{a:?}: slashed");
                    self.ghost_out += e.refund.to::<u128>();
                }
            }
            Action::Acknowledge { job } => {
                let id = self.leased_or_any(job);
                let i = self.provider_index(id);
                let owner = self.s.provider(i);
                let want = self.m.apply(|m| m.acknowledge(owner, id));
                let (params, tenant) = self.terms_of(id);
                let call = Results::acknowledgeCall {
                    leaseId: id,
                    tenant,
                    terms: params.into(),
                };
                let (op, results) = (self.s.operator(i), self.s.results);
                let r = self.s.chain.send(op, results, call);
                same(a, &r, &want);
            }
            Action::ProveLiveness { job, by, deadline } => {
                let id = self.leased_or_any(job);
                let reporter = self.addr(by);
                let (params, tenant) = self.terms_of(id);
                let service = params.jobKind == 2;
                let results = self.s.results;
                let (want, r) = if deadline {
                    let want = self
                        .m
                        .apply(|m| m.prove_missed_deadline(reporter, id, service));
                    let call = Results::proveMissedDeadlineCall {
                        leaseId: id,
                        tenant,
                        terms: params.into(),
                    };
                    (want, self.s.chain.send(reporter, results, call))
                } else {
                    let want = self.m.apply(|m| m.prove_no_show(reporter, id));
                    let call = Results::proveNoShowCall {
                        leaseId: id,
                        tenant,
                        terms: params.into(),
                    };
                    (want, self.s.chain.send(reporter, results, call))
                };
                same(a, &r, &want);
                if want.is_ok() {
                    let e = r.event::<Market::LeaseFaulted>();
                    self.ghost_out += e.refund.to::<u128>();
                    // The model allowed it: the provider did miss its start window or deadline.
                    self.cheaters.push(e.provider);
                }
            }
            Action::Heartbeat { provider } => {
                let owner = self.s.provider(provider);
                let want = self.m.apply(|m| m.heartbeat(owner));
                let op = self.s.operator(provider);
                let r = self.s.chain.send(op, staking, Staking::heartbeatCall {});
                same(a, &r, &want);
            }
            Action::Stale { job, by, prove } => {
                // Mostly a running service lease.
                let services: Vec<B256> = (self.m.jobs.iter())
                    .filter(|(_, j)| j.status == Status::Leased && j.order.service)
                    .map(|(id, _)| *id)
                    .collect();
                let id = match services.len() {
                    n if n > 0 && job < 6 => services[usize::from(job) % n],
                    _ => self.leased_or_any(job),
                };
                let reporter = self.addr(by);
                let (params, tenant) = self.terms_of(id);
                let service = params.jobKind == 2;
                let results = self.s.results;
                if prove {
                    let want = self.m.apply(|m| m.prove_stale(reporter, id, service));
                    let call = Results::proveStaleHeartbeatCall {
                        leaseId: id,
                        tenant,
                        terms: params.into(),
                    };
                    let r = self.s.chain.send(reporter, results, call);
                    same(a, &r, &want);
                    if want.is_ok() {
                        let e = r.event::<Market::LeaseFaulted>();
                        self.ghost_out += e.refund.to::<u128>();
                        self.cheaters.push(e.provider);
                    }
                } else {
                    let want = self.m.apply(|m| m.report_stale(id, service));
                    let call = Results::reportStaleCall {
                        leaseId: id,
                        tenant,
                        terms: params.into(),
                    };
                    let r = self.s.chain.send(reporter, results, call);
                    same(a, &r, &want);
                }
            }
            Action::WithdrawSlashCredit { who } => {
                let to = self.addr(who);
                let want = self.m.apply(|m| m.withdraw_slash_credit(to));
                let r = self
                    .s
                    .chain
                    .send(to, staking, Staking::withdrawCreditCall { to });
                same(a, &r, &want);
            }
            Action::WarpToEdge { job, edge } => {
                let Some(j) = self.m.jobs.get(&self.id(job)) else {
                    return;
                };
                let at = match edge / 2 {
                    0 => j.bidding_end,
                    1 => j.bidding_end + self.m.params.award_grace,
                    2 => j.end,
                    _ => j.end + self.m.challenge_window,
                } + u64::from(edge % 2);
                if at > self.s.chain.now() {
                    self.s.chain.set_time(at);
                }
            }
        }
        self.check(a);
    }

    /// Mostly a running lease (`k < 6`); otherwise job `k` as [`Self::id`] picks it.
    fn leased_or_any(&self, k: u8) -> B256 {
        let leased: Vec<B256> = (self.m.jobs.iter())
            .filter(|(_, j)| j.status == Status::Leased)
            .map(|(id, _)| *id)
            .collect();
        match leased.len() {
            n if n > 0 && k < 6 => leased[usize::from(k) % n],
            _ => self.id(k),
        }
    }

    /// Index of the provider of lease `id` (0 when none).
    fn provider_index(&self, id: B256) -> usize {
        let provider = self.m.jobs.get(&id).map_or(Address::ZERO, |j| j.provider);
        (0..PROVIDERS)
            .find(|&i| self.s.provider(i) == provider)
            .unwrap_or(0)
    }

    /// The order terms and tenant of `id` (made-up ones for an unknown id).
    fn terms_of(&self, id: B256) -> (OrderParams, Address) {
        match self.terms.get(&id) {
            Some((p, t, _)) => (p.clone(), *t),
            None => (self.s.order(1, 1), Address::ZERO),
        }
    }

    /// A signed bid for order `id` of the given kind, and what the model should make of it.
    fn offer(&mut self, id: B256, (provider, price, kind): (usize, u8, Sig)) -> (SignedBid, Offer) {
        let now = self.s.chain.now();
        let price = u128::from(price) * STEP;
        let operator = self.s.providers[provider].operator.clone();
        let stranger = self.s.tenants[provider % TENANTS].clone();
        let (key, order, expiry) = match kind {
            Sig::Valid => (operator, id, now + 3_600),
            Sig::OtherOrder => (operator, keccak256(id), now + 3_600),
            Sig::Expired => (operator, id, now - 1),
            Sig::Stranger => (stranger, id, now + 3_600),
            Sig::Replay if !self.used.is_empty() => {
                return self.used[provider % self.used.len()].clone();
            }
            Sig::Replay => (stranger, id, now + 3_600),
        };
        let sig = Bid::new(order, price, expiry)
            .sign(&market_domain(CHAIN_ID, self.s.market), &key.key)
            .expect("sign bid");
        let bid = SignedBid {
            pricePerSecond: U96::from(price),
            expiry: U48::from(expiry),
            signature: Bytes::from(sig.as_bytes().to_vec()),
        };
        let offer = Offer {
            signer: key.address,
            order,
            price,
            expiry,
        };
        (bid, offer)
    }

    /// The invariants, and chain == model.
    fn check(&mut self, a: &dyn std::fmt::Debug) {
        let (market, staking, token) = (self.s.market, self.s.staking, self.s.token);
        let now = self.s.chain.now();

        // Token conservation from chain reads alone.
        let mut escrow = 0u128;
        for id in self.ids.clone() {
            let v = self.s.job(id);
            if matches!(status(v.status), Status::Open | Status::Leased) {
                escrow += v.escrow.to::<u128>();
            }
        }
        let mut credits = 0u128;
        for who in self.actors() {
            credits += self.s.credit(who);
        }
        let fees: u128 = self
            .s
            .chain
            .view(market, Market::protocolFeesCall { token })
            .to();
        let held = self.s.balance(token, market);
        assert_eq!(
            held,
            escrow + credits + fees,
            "after {a:?}: market conservation"
        );
        let staked = |c: U256| c.to::<u128>();
        let total = staked(self.s.chain.view(staking, Staking::totalStakedCall {}))
            + staked(self.s.chain.view(staking, Staking::totalUnbondingCall {}))
            + staked(self.s.chain.view(staking, Staking::totalCreditsCall {}));
        assert_eq!(
            self.s.balance(token, staking),
            total,
            "after {a:?}: staking conservation"
        );
        let supply: u128 = self
            .s
            .chain
            .view(token, MockStablecoin::totalSupplyCall {})
            .to();
        let mut everyone = held + total;
        let bystanders = self.s.tenants[TENANTS..].iter().map(|t| t.address);
        let idle = self.s.providers[PROVIDERS..]
            .iter()
            .map(|p| p.owner.address);
        let all: Vec<Address> = self
            .actors()
            .into_iter()
            .chain(bystanders)
            .chain(idle)
            .collect();
        for who in all {
            everyone += self.s.balance(token, who);
        }
        assert_eq!(everyone, supply, "after {a:?}: tokens appeared or vanished");

        // Chain == model.
        assert_eq!(
            held,
            self.m.market_holdings(),
            "after {a:?}: market holdings"
        );
        assert_eq!(
            total,
            self.m.staking_holdings(),
            "after {a:?}: staking holdings"
        );
        assert_eq!(fees, self.m.fees, "after {a:?}: protocol fees");
        for who in self.actors() {
            let got: u128 = self
                .s
                .chain
                .view(staking, Staking::creditOfCall { account: who })
                .to();
            let want = self.m.slash_credits.get(&who).copied().unwrap_or(0);
            assert_eq!(got, want, "after {a:?}: slash credit of {who}");
            let (bal, credit) = (self.s.balance(token, who), self.s.credit(who));
            assert_eq!(bal, self.m.balances[&who], "after {a:?}: balance of {who}");
            let want = self.m.credits.get(&who).copied().unwrap_or(0);
            assert_eq!(credit, want, "after {a:?}: credit of {who}");
        }
        let mut locked: BTreeMap<Address, u128> = BTreeMap::new();
        for id in self.ids.clone() {
            let (v, j) = (self.s.job(id), self.m.jobs[&id].clone());
            assert_eq!(status(v.status), j.status, "after {a:?}: status of {id}");
            assert_eq!(
                v.escrow.to::<u128>(),
                j.escrow,
                "after {a:?}: escrow of {id}"
            );
            match j.status {
                Status::Open => {
                    let (bidder, price) = j.bidder.unwrap_or_default();
                    assert_eq!((v.provider, v.ratePerSecond.to::<u128>()), (bidder, price));
                    assert_eq!(v.biddingEnd.to::<u64>(), j.bidding_end);
                    assert_eq!(v.tenant, j.tenant);
                }
                Status::Leased => {
                    *locked.entry(j.provider).or_default() += j.order.collateral;
                    let lease = (v.provider, v.ratePerSecond.to::<u128>(), v.tenant);
                    assert_eq!(lease, (j.provider, j.rate, j.tenant), "after {a:?}: {id}");
                    let times = (v.settledAt.to::<u64>(), v.end.to::<u64>());
                    assert_eq!(times, (j.settled_at, j.end), "after {a:?}: times of {id}");
                    let fees = (v.protocolFeeBps, v.keeperFeeBps, v.lowBalance);
                    let want = (j.protocol_fee_bps, j.keeper_fee_bps, j.low_balance);
                    assert_eq!(fees, want, "after {a:?}: fees/low of {id}");
                    // Never billed past the end or ahead of the clock.
                    assert!(j.settled_at <= j.end.min(now));
                }
                Status::None | Status::Closed | Status::Cancelled => {
                    assert_eq!(v.provider, Address::ZERO, "terminal jobs keep no lease");
                }
            }
            // INV-06: only None->Open->{Leased->Closed, Cancelled}; terminal states absorb.
            // INV-05: settledAt never goes back.
            let (was, was_settled) = self.prev.get(&id).copied().unwrap_or((Status::None, 0));
            let allowed = match was {
                Status::None => matches!(j.status, Status::Open | Status::Leased),
                Status::Open => j.status != Status::None,
                Status::Leased => matches!(j.status, Status::Leased | Status::Closed),
                Status::Closed | Status::Cancelled => j.status == was,
            };
            assert!(
                allowed,
                "after {a:?}: INV-06 {id}: {was:?} -> {:?}",
                j.status
            );
            let settled = v.settledAt.to::<u64>();
            if j.status == Status::Leased && was == Status::Leased {
                assert!(
                    settled >= was_settled,
                    "after {a:?}: INV-05 settledAt went back"
                );
            }
            self.prev.insert(id, (j.status, settled));
            // INV-03: paid <= earned <= deposit; an ended job paid + refunded == deposit.
            assert!(j.paid <= j.deposited);
            match j.status {
                Status::Closed => assert_eq!(j.paid + j.refunded, j.deposited, "INV-03 {id}"),
                Status::Cancelled => assert_eq!((j.paid, j.refunded), (0, j.deposited)),
                _ => {}
            }
            if matches!(j.status, Status::Leased | Status::Closed) {
                // Paid = what the tenant put in minus what is left or came back; bounded by
                // rate x billable seconds, rounding down by < 1 unit per settlement.
                let billable = j.rate * u128::from(j.settled_at - j.start) / SCALE;
                assert!(j.paid <= billable, "after {a:?}: overpaid {id}");
                let exhausted = j.paid == j.deposited;
                assert!(
                    exhausted || j.paid + j.settlements >= billable,
                    "underpaid {id}"
                );
                if j.status == Status::Leased {
                    assert_eq!(j.deposited - j.escrow, j.paid, "after {a:?}: {id}");
                }
            }
        }
        // INV-08: keeper fees never exceed their rate of what was settled.
        let bound: u128 = (self.m.jobs.values())
            .map(|j| j.paid * u128::from(j.keeper_fee_bps) / BPS)
            .sum();
        assert!(
            self.m.keeper_fees <= bound,
            "after {a:?}: INV-08 keeper fees"
        );
        for i in 0..PROVIDERS {
            let owner = self.s.provider(i);
            let v = self
                .s
                .chain
                .view(staking, Staking::providerInfoCall { provider: owner });
            let p = &self.m.providers[&owner];
            let got = (v.stake, v.locked, v.unbonding, v.releaseAt.to::<u64>());
            let want = (p.stake, p.locked, p.unbonding, p.release_at);
            assert_eq!(got, want, "after {a:?}: stake of provider {i}");
            let l = self
                .s
                .chain
                .view(staking, Staking::livenessCall { provider: owner });
            let p = &self.m.providers[&owner];
            assert_eq!(
                (l.at.to::<u64>(), l.epoch),
                (p.beat_at, p.epoch),
                "after {a:?}: heartbeat of {i}"
            );
            assert!(p.locked <= p.stake, "reserved collateral above stake");
            let leases = locked.get(&owner).copied().unwrap_or(0);
            let slashed = self.m.slashed.get(&owner).copied().unwrap_or(0);
            if slashed == 0 {
                assert_eq!(p.locked, leases, "after {a:?}: locked != active collateral");
            } else {
                // A slash after close may eat into other leases' lock (release saturates).
                assert!(
                    p.locked <= leases,
                    "after {a:?}: locked above active collateral"
                );
            }
            // An honest provider is never slashed.
            if !self.cheaters.contains(&owner) {
                assert_eq!(slashed, 0, "after {a:?}: honest provider {i} slashed");
            }
        }
    }
}

fn status(s: u8) -> Status {
    match s {
        0 => Status::None,
        1 => Status::Open,
        2 => Status::Leased,
        3 => Status::Closed,
        4 => Status::Cancelled,
        _ => panic!("unknown status {s}"),
    }
}

impl Run {
    /// INV-07 no stuck funds: past every deadline, every exit path empties both contracts
    /// (each exit is a checked step).
    fn drain(&mut self) {
        let horizon = self.m.params.max_lease + self.m.params.max_bid_window;
        self.step(&Action::SetParams {
            protocol_fee_bps: 100,
            keeper_fee_bps: 10,
            paused: true,
        });
        self.step(&Action::Warp {
            secs: horizon + self.m.params.award_grace + 1,
        });
        let n = self.ids.len();
        for k in 0..n {
            let id = self.ids[k];
            let by = Who::Keeper;
            // `job` counts back from the latest order.
            let job = u8::try_from(n - 1 - k).unwrap_or(u8::MAX);
            if job >= 7 {
                // Out of the action's reach: call directly (still checked).
                self.m.now = self.s.chain.now();
                let caller = self.addr(by);
                let (market, status) = (self.s.market, self.m.jobs[&id].status);
                let r = match status {
                    Status::Open => {
                        let want = self.m.apply(|m| m.cancel(caller, id));
                        self.ghost_out += *want.as_ref().expect("cancellable");
                        let call = Market::cancelOrderCall { orderId: id };
                        self.s.chain.send(caller, market, call)
                    }
                    Status::Leased => {
                        let want = self.m.apply(|m| m.close(caller, id));
                        self.ghost_out += want.expect("closable").1;
                        self.s.close(caller, id)
                    }
                    _ => continue,
                };
                r.expect_success();
                self.check(&"drain");
                continue;
            }
            match self.m.jobs[&id].status {
                Status::Open => self.step(&Action::Cancel { job, by }),
                Status::Leased => self.step(&Action::Close { job, by }),
                _ => {}
            }
        }
        for i in 0..TENANTS {
            self.step(&Action::Withdraw {
                who: Who::Tenant(i),
            });
        }
        for i in 0..PROVIDERS {
            self.step(&Action::Withdraw { who: Who::Owner(i) });
            self.step(&Action::Withdraw {
                who: Who::Operator(i),
            });
            let free = self.m.providers[&self.s.provider(i)].stake;
            let usdc = u64::try_from(free / USDC).expect("small stake");
            self.step(&Action::Unbond { provider: i, usdc });
        }
        self.step(&Action::Withdraw { who: Who::Keeper });
        self.step(&Action::WithdrawFees);
        for who in (0..TENANTS)
            .map(Who::Tenant)
            .chain((0..PROVIDERS).map(Who::Owner))
            .chain((0..PROVIDERS).map(Who::Operator))
            .chain([Who::Keeper])
        {
            if self.m.slash_credits.contains_key(&self.addr(who)) {
                self.step(&Action::WithdrawSlashCredit { who });
            }
        }
        let treasury = self.s.treasury.address;
        if self.m.slash_credits.contains_key(&treasury) {
            self.m.now = self.s.chain.now();
            self.m
                .apply(|m| m.withdraw_slash_credit(treasury))
                .expect("credit");
            let staking = self.s.staking;
            self.s
                .chain
                .send(
                    treasury,
                    staking,
                    Staking::withdrawCreditCall { to: treasury },
                )
                .expect_success();
            self.check(&"drain treasury");
        }
        self.step(&Action::Warp { secs: UNBONDING });
        for provider in 0..PROVIDERS {
            self.step(&Action::WithdrawUnbonded { provider });
        }
        let (token, market, staking) = (self.s.token, self.s.market, self.s.staking);
        assert_eq!(
            self.s.balance(token, market),
            0,
            "INV-07 market keeps funds"
        );
        assert_eq!(
            self.s.balance(token, staking),
            0,
            "INV-07 staking keeps funds"
        );
    }
}

/// The chain and the model agree on whether the call went through.
#[track_caller]
fn same<T: std::fmt::Debug>(a: &dyn std::fmt::Debug, r: &Receipt, want: &Outcome<T>) {
    assert_eq!(
        r.success,
        want.is_ok(),
        "{a:?}: chain {} (0x{}), model {want:?}",
        if r.success { "succeeded" } else { "reverted" },
        alloy::hex::encode(&r.output),
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn market_matches_model(actions in prop::collection::vec(action(), 1..80)) {
        let mut run = Run::new();
        for a in &actions {
            run.step(a);
        }
        run.drain();
    }
}

// ---------------------------------------------------------------- staking with slashing

#[derive(Clone, Debug)]
enum StakeAction {
    Stake {
        provider: usize,
        usdc: u64,
    },
    Unbond {
        provider: usize,
        usdc: u64,
    },
    Withdraw {
        provider: usize,
    },
    Lock {
        provider: usize,
        usdc: u64,
    },
    Release {
        provider: usize,
        usdc: u64,
    },
    Slash {
        provider: usize,
        /// In token units: whole USDC, or a few units (STK-07 rounding near 1).
        penalty: u128,
        release: u64,
        evidence: u8,
        compensation: u64,
        tenant: bool,
        reporter: bool,
    },
    WithdrawCredit {
        who: usize,
    },
    SetPeriod {
        days: u64,
    },
    Warp {
        secs: u64,
    },
}

fn penalty() -> impl Strategy<Value = u128> {
    prop_oneof![(0..3_000u128).prop_map(|n| n * USDC), 0..10u128]
}

fn stake_action() -> impl Strategy<Value = StakeAction> {
    let p = 0..PROVIDERS;
    prop_oneof![
        3 => (p.clone(), 0..800u64).prop_map(|(provider, usdc)| StakeAction::Stake { provider, usdc }),
        3 => (p.clone(), 0..800u64).prop_map(|(provider, usdc)| StakeAction::Unbond { provider, usdc }),
        2 => p.clone().prop_map(|provider| StakeAction::Withdraw { provider }),
        3 => (p.clone(), 0..800u64).prop_map(|(provider, usdc)| StakeAction::Lock { provider, usdc }),
        2 => (p.clone(), 0..800u64).prop_map(|(provider, usdc)| StakeAction::Release { provider, usdc }),
        3 => (p, (penalty(), 0..500u64, 0..12u8, 0..1_000u64, any::<bool>(), any::<bool>()))
            .prop_map(|(provider, (penalty, release, evidence, compensation, tenant, reporter))| {
                StakeAction::Slash { provider, penalty, release, evidence, compensation, tenant, reporter }
            }),
        2 => (0..4usize).prop_map(|who| StakeAction::WithdrawCredit { who }),
        1 => (0..100u64).prop_map(|days| StakeAction::SetPeriod { days }),
        4 => warp().prop_map(|secs| StakeAction::Warp { secs }),
    ]
}

/// Staking model: per-provider records plus slash credits and used evidence.
#[derive(Clone, Debug, Default)]
struct StakeModel {
    providers: Vec<Provider>,
    credits: BTreeMap<Address, u128>,
    evidence: Vec<u8>,
    period: u64,
    now: u64,
}

impl StakeModel {
    fn slash(
        &mut self,
        i: usize,
        (penalty, release, evidence): (u128, u128, u8),
        tenant: Address,
        compensation: u128,
        reporter: Address,
        treasury: Address,
    ) -> Outcome<u128> {
        if self.evidence.contains(&evidence) {
            return Err("EvidenceAlreadyUsed");
        }
        self.evidence.push(evidence);
        let p = &mut self.providers[i];
        p.locked -= release.min(p.locked);
        let from_stake = penalty.min(p.stake);
        let from_unbonding = (penalty - from_stake).min(p.unbonding);
        p.stake -= from_stake;
        p.unbonding -= from_unbonding;
        p.locked = p.locked.min(p.stake);
        let slashed = from_stake + from_unbonding;
        let to_tenant = if tenant.is_zero() {
            0
        } else {
            compensation.min(slashed)
        };
        let to_reporter = if reporter.is_zero() {
            0
        } else {
            (slashed - to_tenant) * 1_000 / 10_000
        };
        for (who, amount) in [
            (tenant, to_tenant),
            (reporter, to_reporter),
            (treasury, slashed - to_tenant - to_reporter),
        ] {
            if amount != 0 {
                *self.credits.entry(who).or_default() += amount;
            }
        }
        Ok(slashed)
    }
}

struct StakeRun {
    s: Suite,
    staking: Address,
    hook: Address,
    m: StakeModel,
    /// Stake that left through withdrawals, so conservation can be checked end to end.
    paid_out: u128,
    deposited: u128,
    /// Everything slashed so far (INV-04).
    slashed: u128,
}

impl StakeRun {
    fn new() -> Self {
        let mut s = Suite::new();
        let (gov, treasury) = (s.gov.address, s.treasury.address);
        let hook = Account::numbered(50).address;
        s.chain.fund(hook);
        let args =
            Staking::constructorCall::new((s.token, gov, treasury, U48::from(UNBONDING), 1_000));
        let staking = s
            .chain
            .deploy(gov, creation(&Staking::BYTECODE, args.abi_encode()));
        let call = Staking::setMarketCall { market_: hook };
        s.chain.send(gov, staking, call).expect_success();
        let mut providers = Vec::new();
        for i in 0..PROVIDERS {
            let owner = s.provider(i);
            let operator = s.operator(i);
            let capacity = Capacity {
                gpuClasses: 1,
                gpuCount: 1,
                vramGiB: 16,
            };
            let call = Staking::registerCall::new((operator, capacity, String::new()));
            s.chain.send(owner, staking, call).expect_success();
            providers.push(Provider {
                operator,
                ..Provider::default()
            });
        }
        Self {
            m: StakeModel {
                providers,
                period: UNBONDING,
                ..StakeModel::default()
            },
            s,
            staking,
            hook,
            paid_out: 0,
            deposited: 0,
            slashed: 0,
        }
    }

    /// Slash-credit holders: tenant 0, keeper (reporter), treasury, provider 0's owner.
    fn creditor(&self, k: usize) -> Address {
        [
            self.s.tenant(0),
            self.s.keeper.address,
            self.s.treasury.address,
            self.s.provider(0),
        ][k]
    }

    fn step(&mut self, a: &StakeAction) {
        self.m.now = self.s.chain.now();
        let (staking, hook, token) = (self.staking, self.hook, self.s.token);
        let usd = |n: u64| u128::from(n) * USDC;
        let mut next = self.m.clone();
        let (r, want): (Receipt, Outcome<u128>) = match a.clone() {
            StakeAction::Stake { provider, usdc } => {
                let owner = self.s.provider(provider);
                let want = if usdc == 0 {
                    Err("ZeroAmount")
                } else {
                    next.providers[provider].stake += usd(usdc);
                    Ok(usd(usdc))
                };
                self.s.approve(token, owner, staking, usd(usdc));
                let call = Staking::stakeCall {
                    amount: U256::from(usd(usdc)),
                };
                (self.s.chain.send(owner, staking, call), want)
            }
            StakeAction::Unbond { provider, usdc } => {
                let p = &mut next.providers[provider];
                let want = if usdc == 0 {
                    Err("ZeroAmount")
                } else if usd(usdc) > p.stake - p.locked {
                    Err("InsufficientFreeStake")
                } else {
                    p.stake -= usd(usdc);
                    p.unbonding += usd(usdc);
                    p.release_at = p.release_at.max(self.m.now + self.m.period);
                    Ok(0)
                };
                let call = Staking::unbondCall {
                    amount: U256::from(usd(usdc)),
                };
                let owner = self.s.provider(provider);
                (self.s.chain.send(owner, staking, call), want)
            }
            StakeAction::Withdraw { provider } => {
                let p = &mut next.providers[provider];
                let want = if p.unbonding == 0 {
                    Err("NothingToWithdraw")
                } else if self.m.now < p.release_at {
                    Err("UnbondingNotReleased")
                } else {
                    let amount = std::mem::take(&mut p.unbonding);
                    p.release_at = 0;
                    Ok(amount)
                };
                let owner = self.s.provider(provider);
                let call = Staking::withdrawUnbondedCall { to: owner };
                (self.s.chain.send(owner, staking, call), want)
            }
            StakeAction::Lock { provider, usdc } => {
                let p = &mut next.providers[provider];
                let ok = usd(usdc) <= p.stake - p.locked;
                if ok {
                    p.locked += usd(usdc);
                }
                let owner = self.s.provider(provider);
                let call = Staking::tryLockCall {
                    provider: owner,
                    amount: U256::from(usd(usdc)),
                };
                let r = self.s.chain.send(hook, staking, call);
                let got = Staking::tryLockCall::abi_decode_returns(&r.output).expect("bool");
                assert_eq!(got, ok, "{a:?}: tryLock");
                (r, Ok(0))
            }
            StakeAction::Release { provider, usdc } => {
                let p = &mut next.providers[provider];
                p.locked -= usd(usdc).min(p.locked);
                let owner = self.s.provider(provider);
                let call = Staking::releaseCall {
                    provider: owner,
                    amount: U256::from(usd(usdc)),
                };
                (self.s.chain.send(hook, staking, call), Ok(0))
            }
            StakeAction::Slash {
                provider,
                penalty,
                release,
                evidence,
                compensation,
                tenant,
                reporter,
            } => {
                let t = if tenant {
                    self.s.tenant(0)
                } else {
                    Address::ZERO
                };
                let rep = if reporter {
                    self.s.keeper.address
                } else {
                    Address::ZERO
                };
                let treasury = self.s.treasury.address;
                let before = self.m.providers[provider].clone();
                let want = next.slash(
                    provider,
                    (penalty, usd(release), evidence),
                    t,
                    usd(compensation),
                    rep,
                    treasury,
                );
                if let Ok(slashed) = want {
                    // STK-06: never more than exists, never a revert for lack of stake; STK-03:
                    // unbonding stays slashable until withdrawn; STK-07: no rounding to zero.
                    assert!(slashed <= before.stake + before.unbonding);
                    assert_eq!(slashed, penalty.min(before.stake + before.unbonding));
                    self.slashed += slashed;
                }
                let call = Staking::slashCall {
                    provider: self.s.provider(provider),
                    penalty: U256::from(penalty),
                    lockedToRelease: U256::from(usd(release)),
                    evidence: B256::with_last_byte(evidence),
                    tenant: t,
                    compensation: U256::from(usd(compensation)),
                    reporter: rep,
                };
                let r = self.s.chain.send(hook, staking, call);
                if let Ok(slashed) = want {
                    let got = Staking::slashCall::abi_decode_returns(&r.output).expect("slashed");
                    assert_eq!(got, U256::from(slashed), "{a:?}: slashed");
                    // STK-14: the split adds up exactly; a self-reporter always loses.
                    let e = r.event::<Staking::Slashed>();
                    let parts = [e.tenantCompensation, e.reporterReward, e.treasuryAmount];
                    assert_eq!(parts.iter().sum::<U256>(), e.slashed);
                    assert!(slashed == 0 || e.reporterReward < e.slashed);
                }
                (r, want.map(|_| 0))
            }
            StakeAction::WithdrawCredit { who } => {
                let who = self.creditor(who);
                let want = match next.credits.remove(&who) {
                    Some(amount) => Ok(amount),
                    None => Err("NothingToWithdraw"),
                };
                let call = Staking::withdrawCreditCall { to: who };
                (self.s.chain.send(who, staking, call), want)
            }
            StakeAction::SetPeriod { days } => {
                let secs = days * 86_400;
                let want = if (1..=90).contains(&days) {
                    next.period = secs;
                    Ok(0)
                } else {
                    Err("StakingParameterOutOfBounds")
                };
                let gov = self.s.gov.address;
                let call = Staking::setUnbondingPeriodCall {
                    period: U48::from(secs),
                };
                (self.s.chain.send(gov, staking, call), want)
            }
            StakeAction::Warp { secs } => {
                self.s.chain.warp(secs);
                self.check(a);
                return;
            }
        };
        same(a, &r, &want);
        if let Ok(amount) = want {
            match a {
                StakeAction::Stake { .. } => self.deposited += amount,
                StakeAction::Withdraw { .. } | StakeAction::WithdrawCredit { .. } => {
                    self.paid_out += amount
                }
                _ => {}
            }
            self.m = next;
        }
        self.check(a);
    }

    fn check(&mut self, a: &StakeAction) {
        let (staking, token) = (self.staking, self.s.token);
        let held = self.s.balance(token, staking);
        let to = |c: U256| c.to::<u128>();
        let totals = (
            to(self.s.chain.view(staking, Staking::totalStakedCall {})),
            to(self.s.chain.view(staking, Staking::totalUnbondingCall {})),
            to(self.s.chain.view(staking, Staking::totalCreditsCall {})),
        );
        assert_eq!(
            held,
            totals.0 + totals.1 + totals.2,
            "after {a:?}: conservation"
        );
        assert_eq!(
            held,
            self.deposited - self.paid_out,
            "after {a:?}: in minus out"
        );
        let credits: u128 = self.m.credits.values().sum();
        let stake: u128 = self.m.providers.iter().map(|p| p.stake).sum();
        let unbonding: u128 = self.m.providers.iter().map(|p| p.unbonding).sum();
        // STK-01: totals are the sums of the records.
        assert_eq!(
            totals,
            (stake, unbonding, credits),
            "after {a:?}: STK-01 totals"
        );
        assert!(
            self.slashed <= self.deposited,
            "INV-04: slashed more than ever staked"
        );
        for k in 0..4 {
            let who = self.creditor(k);
            let got = to(self
                .s
                .chain
                .view(staking, Staking::creditOfCall { account: who }));
            let want = self.m.credits.get(&who).copied().unwrap_or(0);
            assert_eq!(got, want, "after {a:?}: slash credit of {who}");
        }
        for i in 0..PROVIDERS {
            let owner = self.s.provider(i);
            let v = self
                .s
                .chain
                .view(staking, Staking::providerInfoCall { provider: owner });
            let p = &self.m.providers[i];
            let got = (v.stake, v.locked, v.unbonding, v.releaseAt.to::<u64>());
            assert_eq!(
                got,
                (p.stake, p.locked, p.unbonding, p.release_at),
                "after {a:?}: provider {i}"
            );
            assert!(
                p.locked <= p.stake,
                "STK-01/INV-04: reserved collateral above stake"
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn staking_matches_model(actions in prop::collection::vec(stake_action(), 1..60)) {
        let mut run = StakeRun::new();
        for a in &actions {
            run.step(a);
        }
    }
}
