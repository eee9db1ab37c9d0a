//! Stateful property tests against an adversary (SECURITY K, DESIGN 4.5). A model that re-encodes
//! the contracts' rules passes the contracts' design flaws (v1's escapable faults got through 300
//! cases of one), so this suite states its properties on their own terms and lets a randomized
//! adversary try to break them:
//!
//! - the **adversary** is provider 0 (its owner's stake and its operator key), its own tenant
//!   account and its own reporter/keeper account. It bids on anything, acknowledges or not, posts
//!   correct, wrong, withheld, random or malformed results, answers challenges or not (with the
//!   data, or with forged chunks and proofs), abandons, closes, accepts, challenges, proves,
//!   settles, releases and withdraws at random; per case it also picks standing reactions
//!   (`Play`): how its node answers challenges, and whether its reporter races the keeper to
//!   every fault the moment a fee is due;
//! - the **attentive tenant** (tenant 0) orders container, built-in and service jobs, verifies
//!   every result it gets (it knows the true product), challenges what it cannot download,
//!   proves every fault it sees itself (within its priority, so for free), accepts what it
//!   verified and closes lapsed service leases;
//! - the **sleepy tenant** (tenant 1) orders and walks away: the honest keeper watches its leases
//!   (and the adversary's own) every `KEEPER_POLL` seconds, doing the same checks but proving a
//!   fault only once the simulation shows it earns the fee, and closing what is due;
//! - **honest providers** (1 and 2) beat on time while they may be needed, acknowledge, post the
//!   true result well before the deadline and answer every challenge.
//!
//! After every step:
//! - **paid for delivery**: an honest tenant's batch lease never paid anything (beyond a finder's
//!   fee to whoever proved a fault it did not see in time) without a result it verified; a
//!   service lease paid at most the rate times its provider's live time; the attentive tenant
//!   never pays a finder's fee;
//! - **no stake without fault**: an honest provider's stake never falls;
//! - **conservation**: the market holds exactly the escrow of every order and lease, every credit
//!   and the protocol fees; staking holds its stake, unbonding stake and credits; the results
//!   module holds exactly the open challenges' bonds and its wei credits;
//! - **no profit for the adversary**: what it holds (tokens, credits, stake, its tenant's parked
//!   escrow) never rises, from one step to the next, by more than what honest tenants paid its
//!   provider and the keeper fees it earned on their leases: every fee a fault pays it must cost
//!   it at least as much in slashed stake, and a gain cannot hide behind earlier losses.
//!
//! At the end of a case, past every window: every lease was resolved, and releasing held records
//! frees every honest provider's collateral.
//!
//! Cases: 128 by default; set `PROPTEST_CASES` for more (e.g. 1000 before a release). Failing seeds
//! are kept in `tests/proptest-regressions/invariants.txt` (committed). Each property was checked
//! to fail against a contract with the matching rule removed (see `docs/protocol.md`, §10).

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U96},
    sol_types::SolCall,
};
use gridlease_bindings::{
    IMarket::OrderParams, Market, MarketAdmin, MarketLens, Results, Staking,
    results::MatmulProof::Job,
};
use gridlease_core::{
    matmul::{Matmul, encode, localize, multiply},
    merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, leaf_hash, result_chunk},
};
use gridlease_tests::{evm::Receipt, fixture::*};
use proptest::{prelude::*, test_runner::FileFailurePersistence};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/invariants.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// The adversary's provider, tenant and reporter.
const ADV_PROVIDER: usize = 0;
const ADV_TENANT: usize = 3;
const HONEST_TENANTS: [usize; 2] = [ATTENTIVE_TENANT, SLEEPY_TENANT];
/// Watches its leases and proves every fault itself, inside its priority (so for free).
const ATTENTIVE_TENANT: usize = 0;
/// Orders and walks away: only the honest keeper watches its leases, and only every
/// `KEEPER_POLL` seconds, and proves a fault only once the fee pays it.
const SLEEPY_TENANT: usize = 1;
const KEEPER_POLL: u64 = 1_800;
const HONEST_PROVIDERS: [usize; 2] = [1, 2];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Container,
    Builtin,
    Service,
}

/// What the adversary posts.
#[derive(Clone, Copy, Debug)]
enum Post {
    Correct,
    /// A wrong product (built-in) or other bytes (container), served.
    Wrong,
    /// The true result's commitment, its data never served.
    Withheld,
    /// A root nobody can open.
    Random,
    /// A tree with garbage in its padding.
    Malformed,
}

#[derive(Clone, Debug)]
enum Action {
    Order {
        tenant: usize,
        kind: Kind,
        instant: bool,
        collateral: u8,
    },
    Bid {
        provider: usize,
        order: u8,
        under: u8,
    },
    Award {
        order: u8,
    },
    /// The adversary goes for an open order: bids at the reserve price and, if that starts the
    /// lease (instant), posts `post` at once.
    AdvTake {
        order: u8,
        post: Option<Post>,
    },
    AdvAck {
        lease: u8,
    },
    AdvPost {
        lease: u8,
        post: Post,
    },
    /// Answer a challenge: with the data if the adversary has it, else (or if `forge`) with
    /// bytes of the right length and a made-up proof.
    AdvAnswer {
        lease: u8,
        chunk: u8,
        forge: bool,
    },
    AdvBeat,
    AdvAbandon {
        lease: u8,
    },
    AdvClose {
        lease: u8,
    },
    AdvTenantClose {
        lease: u8,
    },
    AdvChallenge {
        lease: u8,
        chunk: u8,
    },
    AdvProve {
        lease: u8,
        which: u8,
    },
    AdvCloseAny {
        lease: u8,
    },
    AdvSettle {
        lease: u8,
    },
    AdvRelease {
        lease: u8,
    },
    TopUp {
        lease: u8,
    },
    Withdraw {
        who: u8,
    },
    Warp {
        secs: u16,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Container),
        Just(Kind::Builtin),
        Just(Kind::Service)
    ]
}

fn post() -> impl Strategy<Value = Post> {
    prop_oneof![
        Just(Post::Correct),
        Just(Post::Wrong),
        Just(Post::Withheld),
        Just(Post::Random),
        Just(Post::Malformed),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (prop_oneof![2 => Just(0usize), 2 => Just(1), 1 => Just(ADV_TENANT)], kind(), prop::bool::weighted(0.7), 0u8..4)
            .prop_map(|(tenant, kind, instant, collateral)| Action::Order { tenant, kind, instant, collateral }),
        // The adversary bids as often as both honest providers together.
        4 => (prop_oneof![2 => Just(0usize), 1 => Just(1), 1 => Just(2)], any::<u8>(), 0u8..4)
            .prop_map(|(provider, order, under)| Action::Bid { provider, order, under }),
        2 => any::<u8>().prop_map(|order| Action::Award { order }),
        6 => (any::<u8>(), prop::option::weighted(0.7, post())).prop_map(|(order, post)| Action::AdvTake { order, post }),
        2 => any::<u8>().prop_map(|lease| Action::AdvAck { lease }),
        3 => (any::<u8>(), post()).prop_map(|(lease, post)| Action::AdvPost { lease, post }),
        3 => (any::<u8>(), 0u8..4, any::<bool>()).prop_map(|(lease, chunk, forge)| Action::AdvAnswer { lease, chunk, forge }),
        2 => Just(Action::AdvBeat),
        1 => any::<u8>().prop_map(|lease| Action::AdvAbandon { lease }),
        2 => any::<u8>().prop_map(|lease| Action::AdvClose { lease }),
        1 => any::<u8>().prop_map(|lease| Action::AdvTenantClose { lease }),
        1 => (any::<u8>(), 0u8..4).prop_map(|(lease, chunk)| Action::AdvChallenge { lease, chunk }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(lease, which)| Action::AdvProve { lease, which }),
        1 => any::<u8>().prop_map(|lease| Action::AdvCloseAny { lease }),
        1 => any::<u8>().prop_map(|lease| Action::AdvSettle { lease }),
        1 => any::<u8>().prop_map(|lease| Action::AdvRelease { lease }),
        1 => any::<u8>().prop_map(|lease| Action::TopUp { lease }),
        1 => any::<u8>().prop_map(|who| Action::Withdraw { who }),
        4 => (1u16..2_500).prop_map(|secs| Action::Warp { secs }),
    ]
}

/// How the adversary plays through a whole case (its moves come from the actions; these are its
/// standing reactions, run at every tick like a daemon's).
#[derive(Clone, Copy, Debug)]
struct Play {
    /// How its node answers challenges of its results.
    answers: Answers,
    /// What its reporter does at every tick, on every lease.
    reporter: Reporter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reporter {
    /// Only what the actions make it do.
    Idle,
    /// Proves any fault the moment a fee is due, racing the honest keeper (which looks at each
    /// lease only every `KEEPER_POLL`).
    FeeRacer,
    /// Proves (and reports) anything it can, at once, fee or not: it wants honest providers
    /// slashed, whatever it costs.
    Griefer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answers {
    Never,
    /// With the data where it has it.
    Truthful,
    /// With the data where it has it, with made-up bytes and proofs where it does not.
    Forging,
}

fn play() -> impl Strategy<Value = Play> {
    (
        prop_oneof![
            Just(Answers::Never),
            Just(Answers::Truthful),
            Just(Answers::Forging)
        ],
        prop_oneof![
            Just(Reporter::Idle),
            Just(Reporter::FeeRacer),
            Just(Reporter::Griefer)
        ],
    )
        .prop_map(|(answers, reporter)| Play { answers, reporter })
}

/// What the provider serves of its posted result.
#[derive(Clone, Debug)]
enum Served {
    Bytes(Vec<u8>),
    Nothing,
    Malformed(MerkleTree, u64),
}

#[derive(Clone, Debug)]
struct Lease {
    id: B256,
    params: OrderParams,
    tenant: usize,
    provider: Option<usize>,
    kind: Kind,
    job: Option<Matmul>,
    /// The true output.
    truth: Vec<u8>,
    posted: Option<(Commitment, Served)>,
    /// Chunks revealed on chain by answers.
    revealed: BTreeMap<u64, Vec<u8>>,
    /// The honest tenant verified the whole result.
    delivered: bool,
    /// When it was ordered.
    ordered: u64,
    /// What the tenant paid third-party reporters out of its refunds (finder's fees).
    fees_paid: i128,
    /// When the honest keeper next looks at it (leases of the sleepy tenant).
    keeper_next: u64,
    start: u64,
    rate: u128,
    /// Net tokens the tenant put in (deposits and top-ups minus refunds, credits and
    /// compensation).
    tenant_net: i128,
    ended: bool,
}

struct World {
    s: Suite,
    leases: Vec<Lease>,
    orders: Vec<usize>,
    /// Heartbeat times of each provider.
    beats: BTreeMap<usize, Vec<u64>>,
    adv_start: u128,
    /// Keeper fees the adversary earned on honest tenants' leases.
    adv_fees: u128,
    /// What the adversary's provider was paid out of honest tenants' leases.
    adv_paid_honest: u128,
    /// The adversary's holdings above what it earned honestly, after the last step.
    adv_excess: i128,
    honest_stake: BTreeMap<usize, u128>,
    accounts: Vec<Address>,
    play: Play,
}

fn matmul(n: u32) -> Matmul {
    Matmul {
        seed: B256::from(U256::from(n)),
        m: 24,
        k: 8,
        n: 16,
    }
}

impl World {
    fn new(play: Play) -> Self {
        let mut s = Suite::new();
        for p in [0usize, 1, 2] {
            s.register(p, 10_000 * USDC);
        }
        let accounts = vec![
            s.tenant(0),
            s.tenant(1),
            s.tenant(2),
            s.tenant(3),
            s.provider(0),
            s.provider(1),
            s.provider(2),
            s.operator(0),
            s.operator(1),
            s.operator(2),
            s.keeper.address,
            s.treasury.address,
        ];
        let mut w = Self {
            s,
            leases: Vec::new(),
            orders: Vec::new(),
            beats: BTreeMap::new(),
            adv_start: 0,
            adv_fees: 0,
            adv_paid_honest: 0,
            adv_excess: 0,
            honest_stake: BTreeMap::new(),
            accounts,
            play,
        };
        for p in [0usize, 1, 2] {
            w.beat(p);
        }
        w.adv_start = w.adv_holdings();
        for p in HONEST_PROVIDERS {
            let stake = w.s.provider_info(p).stake.to();
            w.honest_stake.insert(p, stake);
        }
        w
    }

    /// The adversary's accounts: provider 0 (owner and operator key), its tenant, its reporter
    /// (tenant 2).
    fn adversary(&self) -> [Address; 4] {
        [
            self.s.provider(ADV_PROVIDER),
            self.s.operator(ADV_PROVIDER),
            self.s.tenant(ADV_TENANT),
            self.s.tenant(2),
        ]
    }

    /// What the adversary holds: its accounts' tokens and credits, provider 0's stake, and the
    /// escrow of its tenant's open orders and running leases (its own money, parked).
    fn adv_holdings(&mut self) -> u128 {
        let token = self.s.token;
        let info = self.s.provider_info(ADV_PROVIDER);
        let staked = info.stake.to::<u128>() + info.unbonding.to::<u128>();
        let ids: Vec<B256> = self
            .leases
            .iter()
            .filter(|l| l.tenant == ADV_TENANT)
            .map(|l| l.id)
            .collect();
        let parked: u128 = ids
            .into_iter()
            .map(|id| self.s.job(id))
            .filter(|j| j.status == 1 || j.status == 2)
            .map(|j| j.escrow.to::<u128>())
            .sum();
        staked
            + parked
            + self
                .adversary()
                .iter()
                .map(|&a| self.s.balance(token, a) + self.s.credit(a) + self.s.staking_credit(a))
                .sum::<u128>()
    }

    fn beat(&mut self, p: usize) {
        if self.s.heartbeat(p).success {
            let now = self.s.chain.now();
            self.beats.entry(p).or_default().push(now);
        }
    }

    fn pick(&self, k: u8, open: bool) -> Option<usize> {
        let pool: Vec<usize> = if open {
            self.orders.clone()
        } else {
            (0..self.leases.len())
                .filter(|&i| self.leases[i].provider.is_some() && !self.leases[i].ended)
                .collect()
        };
        (!pool.is_empty()).then(|| pool[k as usize % pool.len()])
    }

    /// An open order whose bidding is still open.
    fn pick_biddable(&self, k: u8) -> Option<usize> {
        let now = self.s.chain.now();
        let pool: Vec<usize> = self
            .orders
            .iter()
            .copied()
            .filter(|&o| now <= self.leases[o].ordered + u64::from(self.leases[o].params.bidWindow))
            .collect();
        (!pool.is_empty()).then(|| pool[k as usize % pool.len()])
    }

    /// A running lease the adversary serves (its own or an honest tenant's), or one of its tenant's.
    fn pick_adv(&self, k: u8, by_tenant: bool) -> Option<usize> {
        let pool: Vec<usize> = (0..self.leases.len())
            .filter(|&i| {
                let l = &self.leases[i];
                !l.ended
                    && l.provider.is_some()
                    && if by_tenant {
                        l.tenant == ADV_TENANT
                    } else {
                        l.provider == Some(ADV_PROVIDER)
                    }
            })
            .collect();
        (!pool.is_empty()).then(|| pool[k as usize % pool.len()])
    }

    fn step(&mut self, a: &Action) {
        match *a {
            Action::Order {
                tenant,
                kind,
                instant,
                collateral,
            } => self.order(tenant, kind, instant, collateral),
            Action::Bid {
                provider,
                order,
                under,
            } => {
                if let Some(i) = self.pick_biddable(order) {
                    let id = self.leases[i].id;
                    let price = PRICE - u128::from(under) * PRICE / 10;
                    if self.s.bid(provider, id, price).success && self.leases[i].params.instant {
                        self.started(i, provider, price, true);
                    }
                }
            }
            Action::Award { order } => {
                if let Some(i) = self.pick(order, true) {
                    let (k, id) = (self.s.keeper.address, self.leases[i].id);
                    let r = self.s.award(k, id, vec![]);
                    if r.success {
                        let e = r.event::<Market::LeaseStarted>();
                        let p = (0..3)
                            .find(|&p| self.s.provider(p) == e.provider)
                            .expect("a provider");
                        self.started(i, p, e.ratePerSecond.to(), false);
                    }
                }
            }
            Action::AdvTake { order, post } => {
                if let Some(i) = self.pick_biddable(order) {
                    let id = self.leases[i].id;
                    if self.s.bid(ADV_PROVIDER, id, PRICE).success && self.leases[i].params.instant
                    {
                        self.started(i, ADV_PROVIDER, PRICE, true);
                        if let Some(post) = post {
                            self.adv_post(i, post);
                        }
                    }
                }
            }
            Action::AdvAck { lease } => {
                if let Some(i) = self.pick_adv(lease, false) {
                    let id = self.leases[i].id;
                    let _ = self.s.ack(ADV_PROVIDER, id);
                }
            }
            Action::AdvPost { lease, post } => {
                if let Some(i) = self.pick_adv(lease, false)
                    && self.leases[i].provider == Some(ADV_PROVIDER)
                {
                    self.adv_post(i, post);
                }
            }
            Action::AdvAnswer {
                lease,
                chunk,
                forge,
            } => {
                if let Some(i) = self.pick_adv(lease, false)
                    && (forge || !self.answer(i, u64::from(chunk), ADV_PROVIDER))
                {
                    self.forge_answer(i, u64::from(chunk));
                }
            }
            Action::AdvBeat => self.beat(ADV_PROVIDER),
            Action::AdvAbandon { lease } => {
                if let Some(i) = self.pick_adv(lease, false) {
                    let (op, m, id) = (
                        self.s.operator(ADV_PROVIDER),
                        self.s.market,
                        self.leases[i].id,
                    );
                    let before = self.snapshot();
                    let r = self
                        .s
                        .chain
                        .send(op, m, MarketAdmin::abandonCall { leaseId: id });
                    self.account(i, before, &r);
                }
            }
            Action::AdvClose { lease } => {
                if let Some(i) = self.pick_adv(lease, false) {
                    let op = self.s.operator(ADV_PROVIDER);
                    let before = self.snapshot();
                    let r = self.s.close(op, self.leases[i].id);
                    self.account(i, before, &r);
                }
            }
            Action::AdvTenantClose { lease } => {
                if let Some(i) = self.pick_adv(lease, true)
                    && self.leases[i].tenant == ADV_TENANT
                {
                    let t = self.s.tenant(ADV_TENANT);
                    let before = self.snapshot();
                    let r = self.s.close(t, self.leases[i].id);
                    self.account(i, before, &r);
                }
            }
            Action::AdvChallenge { lease, chunk } => {
                if let Some(i) = self.pick(lease, false)
                    && let Some((c, _)) = self.leases[i].posted.clone()
                {
                    let a = self.s.tenant(2);
                    let _ = self.s.challenge(a, self.leases[i].id, c, u64::from(chunk));
                }
            }
            Action::AdvProve { lease, which } => {
                if let Some(i) = self.pick(lease, false) {
                    // The chosen fault first, then every other: a reporter tries what it can.
                    let a = self.s.tenant(2);
                    for k in 0..6 {
                        if !self.leases[i].ended {
                            self.prove(i, which % 6 + k, a);
                        }
                    }
                }
            }
            Action::AdvCloseAny { lease } => {
                if let Some(i) = self.pick(lease, false) {
                    let a = self.s.tenant(2);
                    let before = self.snapshot();
                    let r = self.s.close(a, self.leases[i].id);
                    self.count_fee(i, &r);
                    self.account(i, before, &r);
                }
            }
            Action::AdvSettle { lease } => {
                if let Some(i) = self.pick(lease, false) {
                    let a = self.s.tenant(2);
                    let before = self.snapshot();
                    let r = self.s.settle(a, vec![self.leases[i].id]);
                    self.count_fee(i, &r);
                    self.account(i, before, &r);
                }
            }
            Action::AdvRelease { lease } => {
                if let Some(i) =
                    (!self.leases.is_empty()).then(|| lease as usize % self.leases.len())
                {
                    let (a, m) = (self.s.tenant(2), self.s.market);
                    let ids = vec![self.leases[i].id];
                    let _ = self
                        .s
                        .chain
                        .send(a, m, MarketAdmin::releaseHeldCall { leaseIds: ids });
                }
            }
            Action::TopUp { lease } => {
                if let Some(i) = self.pick(lease, false) {
                    let (t, id) = (self.leases[i].tenant, self.leases[i].id);
                    let p = self.s.provider(self.leases[i].provider.expect("leased"));
                    let who = self.s.tenant(t);
                    // A top-up of a service lease settles it first: measured like any payment.
                    let before = self.snapshot();
                    let r = self.s.top_up(who, id, USDC, p);
                    self.account(i, before, &r);
                }
            }
            Action::Withdraw { who } => {
                let a = self.accounts[who as usize % self.accounts.len()];
                let (m, token, staking) = (self.s.market, self.s.token, self.s.staking);
                let _ = self
                    .s
                    .chain
                    .send(a, m, Market::withdrawCall { token, to: a });
                let _ = self
                    .s
                    .chain
                    .send(a, staking, Staking::withdrawCreditCall { to: a });
            }
            Action::Warp { secs } => {
                let mut left = u64::from(secs);
                while left > 0 {
                    let dt = left.min(100);
                    self.s.chain.warp(dt);
                    left -= dt;
                    self.honest();
                }
            }
        }
        self.honest();
    }

    fn order(&mut self, tenant: usize, kind: Kind, instant: bool, collateral: u8) {
        let mut p = self.s.fresh_order(5 * USDC, PRICE);
        // 0.1 USDC is below the finder's fee on a 5 USDC escrow: a fault of the adversary's own
        // provider proven by its own reporter must still not pay.
        p.collateral =
            U96::from([10 * USDC, 100 * USDC, 1_000 * USDC, USDC / 10][collateral as usize % 4]);
        p.instant = instant || kind == Kind::Service;
        p.bidWindow = 300;
        let n = self.leases.len() as u32;
        let (job, truth) = match kind {
            Kind::Builtin => {
                let job = matmul(n);
                p.jobKind = 1;
                p.specHash = job.spec_hash();
                let c = multiply(&job.a(), &job.bt(), 24, 8, 16, 1);
                (Some(job), encode(&c))
            }
            Kind::Container => (
                (None),
                (0..(n as usize % 3) * 700)
                    .map(|x| (x * 7 + n as usize) as u8)
                    .collect(),
            ),
            Kind::Service => {
                p.jobKind = 2;
                (None, Vec::new())
            }
        };
        let r = self.s.try_create(tenant, p.clone());
        if !r.success {
            return;
        }
        let id = self.s.last_order_id;
        self.orders.push(self.leases.len());
        self.leases.push(Lease {
            id,
            params: p,
            tenant,
            provider: None,
            kind,
            job,
            truth,
            posted: None,
            revealed: BTreeMap::new(),
            delivered: false,
            ordered: self.s.chain.now(),
            fees_paid: 0,
            keeper_next: 0,
            start: 0,
            rate: 0,
            tenant_net: 5 * USDC as i128,
            ended: false,
        });
    }

    fn started(&mut self, i: usize, provider: usize, price: u128, _instant: bool) {
        self.orders.retain(|&o| o != i);
        let l = &mut self.leases[i];
        l.provider = Some(provider);
        l.start = self.s.chain.now();
        l.rate = price / 1_000_000_000_000;
    }

    fn adv_post(&mut self, i: usize, post: Post) {
        let l = self.leases[i].clone();
        if l.kind == Kind::Service || l.posted.is_some() {
            return;
        }
        let (c, served) = match post {
            Post::Correct => (Commitment::of(&l.truth), Served::Bytes(l.truth.clone())),
            Post::Wrong => {
                let mut bad = l.truth.clone();
                if bad.is_empty() {
                    bad.push(1);
                } else {
                    bad[0] ^= 0x40;
                }
                (Commitment::of(&bad), Served::Bytes(bad))
            }
            Post::Withheld => (Commitment::of(&l.truth), Served::Nothing),
            Post::Random => (
                Commitment {
                    root: B256::repeat_byte(0xa5),
                    size: l.truth.len() as u64,
                },
                Served::Nothing,
            ),
            Post::Malformed => {
                let size = l.truth.len().max(1);
                let leaves_n = size.div_ceil(RESULT_LEAF_BYTES);
                let mut leaves: Vec<B256> = (0..leaves_n as u64)
                    .map(|x| leaf_hash(result_chunk(&l.truth, x)))
                    .collect();
                let garbage = leaves.len() as u64;
                leaves.push(B256::repeat_byte(0x66));
                let t = MerkleTree::from_leaf_hashes(leaves);
                (
                    Commitment {
                        root: t.root(),
                        size: size as u64,
                    },
                    Served::Malformed(t, garbage),
                )
            }
        };
        if self.s.post_commitment(ADV_PROVIDER, l.id, c).success {
            self.leases[i].posted = Some((c, served));
        }
    }

    /// Provider `by` answers the challenge of `chunk` of lease `i` if it has the data: its true
    /// result under the true root, or the true chunks under a tree with garbage padding. Returns
    /// whether an answer landed.
    fn answer(&mut self, i: usize, chunk: u64, by: usize) -> bool {
        let l = self.leases[i].clone();
        let Some((c, served)) = &l.posted else {
            return false;
        };
        let op = self.s.operator(by);
        let r = match served {
            Served::Bytes(b) if chunk < c.leaves() => self.s.answer(op, l.id, b, chunk),
            Served::Nothing if chunk < c.leaves() && *c == Commitment::of(&l.truth) => {
                self.s.answer(op, l.id, &l.truth, chunk)
            }
            Served::Malformed(t, garbage) if chunk < *garbage => self.s.chain.send(
                op,
                self.s.results,
                Results::answerCall {
                    leaseId: l.id,
                    root: c.root,
                    size: c.size,
                    index: U256::from(chunk),
                    chunk: result_chunk(&l.truth, chunk).to_vec().into(),
                    proof: t.proof(chunk),
                },
            ),
            _ => return false,
        };
        self.record_reveals(i, &r);
        r.success
    }

    /// The adversary answers the challenge of `chunk` of lease `i` with bytes it makes up, of
    /// the chunk's length, under a made-up proof of the tree's depth.
    fn forge_answer(&mut self, i: usize, chunk: u64) {
        let l = self.leases[i].clone();
        let Some((c, _)) = &l.posted else { return };
        if chunk >= c.leaves() {
            return;
        }
        let len = (c.size - (chunk * RESULT_LEAF_BYTES as u64).min(c.size))
            .min(RESULT_LEAF_BYTES as u64) as usize;
        let depth = c.leaves().next_power_of_two().trailing_zeros() as usize;
        let op = self.s.operator(ADV_PROVIDER);
        let r = self.s.chain.send(
            op,
            self.s.results,
            Results::answerCall {
                leaseId: l.id,
                root: c.root,
                size: c.size,
                index: U256::from(chunk),
                chunk: vec![0x5a; len].into(),
                proof: vec![B256::repeat_byte(0x17); depth],
            },
        );
        self.record_reveals(i, &r);
    }

    /// What watchers learn from answers: the chunks revealed on chain, as the events carry them.
    fn record_reveals(&mut self, i: usize, r: &Receipt) {
        if !r.success {
            return;
        }
        for e in r.events::<Results::ChunkRevealed>() {
            if e.leaseId == self.leases[i].id {
                self.leases[i]
                    .revealed
                    .insert(e.index.to(), e.chunk.to_vec());
            }
        }
    }

    /// The proof transactions (calldata to `Results`) that fault `which` of lease `i` would take,
    /// as far as the world's data allows: 0 no-show, 1 missed deadline, 2 stale heartbeat (its
    /// report first), 3 wrong product, 4 malformed tree, 5 unavailable chunk (one per index).
    fn proof_calls(&self, i: usize, which: u8) -> Vec<Bytes> {
        let l = &self.leases[i];
        let tenant = self.s.tenant(l.tenant);
        let id = l.id;
        match which % 6 {
            0 => vec![
                Results::proveNoShowCall {
                    leaseId: id,
                    tenant,
                    terms: l.params.clone().into(),
                }
                .abi_encode()
                .into(),
            ],
            1 => vec![
                Results::proveMissedDeadlineCall { leaseId: id }
                    .abi_encode()
                    .into(),
            ],
            2 => vec![
                Results::reportStaleCall { leaseId: id }.abi_encode().into(),
                Results::proveStaleHeartbeatCall { leaseId: id }
                    .abi_encode()
                    .into(),
            ],
            3 => match (&l.posted, &l.job) {
                (Some((c, Served::Bytes(b))), Some(job)) => {
                    let cvals: Vec<i32> = b
                        .chunks_exact(4)
                        .map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
                        .collect();
                    match (cvals.len() == 24 * 16)
                        .then(|| localize(job, &cvals, B256::repeat_byte(3)))
                        .flatten()
                    {
                        Some(f) => vec![
                            Results::proveMatmulFraudCall {
                                leaseId: id,
                                tenant,
                                terms: l.params.clone().into(),
                                job: Job {
                                    seed: job.seed,
                                    m: job.m,
                                    k: job.k,
                                    n: job.n,
                                },
                                root: c.root,
                                size: c.size,
                                i: U256::from(f.i),
                                j: U256::from(f.j),
                                leaf: f.leaf.into(),
                                proof: f.proof,
                            }
                            .abi_encode()
                            .into(),
                        ],
                        None => vec![],
                    }
                }
                _ => vec![],
            },
            4 => match &l.posted {
                Some((c, Served::Malformed(t, index))) => vec![
                    Results::proveMalformedCall {
                        leaseId: id,
                        root: c.root,
                        size: c.size,
                        level: U256::ZERO,
                        index: U256::from(*index),
                        data: t.node(0, *index).to_vec().into(),
                        proof: t.proof(*index),
                    }
                    .abi_encode()
                    .into(),
                ],
                _ => vec![],
            },
            _ => match &l.posted {
                Some((c, _)) => (0..c.leaves())
                    .map(|index| {
                        Results::proveUnavailableCall {
                            leaseId: id,
                            index: U256::from(index),
                        }
                        .abi_encode()
                        .into()
                    })
                    .collect(),
                None => vec![],
            },
        }
    }

    /// Send fault `which` of lease `i` from `from`, whatever it pays (a tenant proving its own
    /// lease, or the adversary).
    fn prove(&mut self, i: usize, which: u8, from: Address) {
        let (results, id) = (self.s.results, self.leases[i].id);
        for data in self.proof_calls(i, which) {
            // Simulated first only to spare the test a snapshot per failing try.
            let sim = self.s.chain.simulate_raw(from, results, data.clone());
            if !sim.success {
                continue;
            }
            if sim
                .events::<Market::LeaseFaulted>()
                .iter()
                .any(|e| e.leaseId == id)
            {
                let before = self.snapshot();
                let r = self.s.chain.send_raw(from, results, data);
                self.account(i, before, &r.expect_success());
                return;
            }
            self.s.chain.send_raw(from, results, data).expect_success();
        }
    }

    /// The honest keeper's way: simulate each proof and send it only if it would pay the keeper a
    /// fee (as a keeper daemon prices every transaction). A stale report is sent when the proof
    /// after it would be the keeper's to make.
    fn keeper_prove(&mut self, i: usize, which: u8) {
        let k = self.s.keeper.address;
        self.prove_for_fee(i, which, k);
    }

    /// Prove fault `which` of lease `i` from `k` only if the simulation shows `k` earns its fee.
    fn prove_for_fee(&mut self, i: usize, which: u8, k: Address) {
        let (results, id) = (self.s.results, self.leases[i].id);
        for data in self.proof_calls(i, which) {
            let sim = self.s.chain.simulate_raw(k, results, data.clone());
            if !sim.success {
                continue;
            }
            let faults = sim.events::<Market::LeaseFaulted>();
            if faults.is_empty() {
                // A stale report: free to send, and the proof needs it.
                self.s.chain.send_raw(k, results, data).expect_success();
                continue;
            }
            if faults.iter().any(|e| e.leaseId == id && e.reporter == k) {
                let before = self.snapshot();
                let r = self.s.chain.send_raw(k, results, data);
                self.account(i, before, &r.expect_success());
            }
            return;
        }
    }

    /// What every account of the world holds (tokens, market and staking credits), to measure
    /// what a transaction moved.
    fn snapshot(&mut self) -> Vec<u128> {
        let token = self.s.token;
        self.accounts
            .clone()
            .iter()
            .map(|&a| self.s.balance(token, a) + self.s.credit(a) + self.s.staking_credit(a))
            .collect()
    }

    /// Record what receipt `r` (sent after `before` was taken) moved back to lease `i`'s tenant,
    /// what it paid a third-party reporter out of that, and whether the lease ended.
    fn account(&mut self, i: usize, before: Vec<u128>, r: &Receipt) {
        if !r.success {
            return;
        }
        let after = self.snapshot();
        let delta = |a: Address, w: &Self| {
            let k = w
                .accounts
                .iter()
                .position(|&x| x == a)
                .expect("a world account");
            after[k] as i128 - before[k] as i128
        };
        let (id, tenant) = (self.leases[i].id, self.s.tenant(self.leases[i].tenant));
        self.leases[i].tenant_net -= delta(tenant, self);
        if HONEST_TENANTS.contains(&self.leases[i].tenant)
            && self.leases[i].provider == Some(ADV_PROVIDER)
        {
            self.adv_paid_honest += delta(self.s.provider(ADV_PROVIDER), self).max(0) as u128;
        }
        for e in r.events::<Market::LeaseFaulted>() {
            if e.leaseId == id && e.reporter != Address::ZERO && e.reporter != tenant {
                self.leases[i].fees_paid += delta(e.reporter, self);
            }
        }
        if r.events::<Market::LeaseClosed>()
            .iter()
            .any(|e| e.leaseId == id)
            || r.events::<Market::LeaseFaulted>()
                .iter()
                .any(|e| e.leaseId == id)
        {
            self.leases[i].ended = true;
        }
    }

    /// Keeper fees the adversary's keeper earned in `r` on an honest tenant's lease `i`.
    fn count_fee(&mut self, i: usize, r: &Receipt) {
        if !r.success || !HONEST_TENANTS.contains(&self.leases[i].tenant) {
            return;
        }
        let kfee = u128::from(self.s.job(self.leases[i].id).keeperFeeBps);
        for e in r.events::<Market::LeaseSettled>() {
            self.adv_fees += e.amount.to::<u128>() * kfee / 10_000;
        }
        for e in r.events::<Market::LeaseClosed>() {
            self.adv_fees += e.keeperFee.to::<u128>();
        }
    }

    /// The adversary's standing reactions (`Play`), at every tick.
    fn adversary_reacts(&mut self) {
        for i in 0..self.leases.len() {
            let l = self.leases[i].clone();
            if l.ended || l.provider.is_none() {
                continue;
            }
            if l.provider == Some(ADV_PROVIDER)
                && self.play.answers != Answers::Never
                && let Some((c, _)) = &l.posted
            {
                for chunk in 0..c.leaves() {
                    let open = self.s.chain.view(
                        self.s.results,
                        Results::challengeOfCall {
                            leaseId: l.id,
                            index: U256::from(chunk),
                        },
                    );
                    if open.challenger != Address::ZERO
                        && !self.answer(i, chunk, ADV_PROVIDER)
                        && self.play.answers == Answers::Forging
                    {
                        self.forge_answer(i, chunk);
                    }
                }
            }
            let reporter = self.s.tenant(2);
            for which in 0..6 {
                if self.leases[i].ended {
                    break;
                }
                match self.play.reporter {
                    Reporter::Idle => {}
                    Reporter::FeeRacer => self.prove_for_fee(i, which, reporter),
                    Reporter::Griefer => self.prove(i, which, reporter),
                }
            }
        }
    }

    /// Honest tenants, providers and keeper react, as their daemons would each poll.
    fn honest(&mut self) {
        self.adversary_reacts();
        let now = self.s.chain.now();
        // Honest providers beat on time while they may need to be live: while a service order is
        // open to bid on, or one of their service leases has not reached its end. After that they
        // stop (a provider owes no heartbeat past its leases).
        let open_service = self
            .orders
            .iter()
            .any(|&o| self.leases[o].kind == Kind::Service);
        for p in HONEST_PROVIDERS {
            let serving = self.leases.iter().any(|l| {
                l.provider == Some(p)
                    && l.kind == Kind::Service
                    && !l.ended
                    && now < l.start + u64::from(l.params.maxDuration)
            });
            let last = self
                .beats
                .get(&p)
                .and_then(|b| b.last())
                .copied()
                .unwrap_or(0);
            if (open_service || serving) && now + 150 > last + HEARTBEAT {
                self.beat(p);
            }
        }
        for i in 0..self.leases.len() {
            let l = self.leases[i].clone();
            let Some(p) = l.provider else { continue };
            if l.ended {
                continue;
            }
            let job = self.s.job(l.id);
            if job.status != 2 {
                continue;
            }
            // Honest providers: acknowledge, post the truth 30 s in, answer every challenge.
            if HONEST_PROVIDERS.contains(&p) {
                if !job.acknowledged {
                    self.s.ack(p, l.id).expect_success();
                }
                if l.kind != Kind::Service && l.posted.is_none() && now >= l.start + 30 {
                    let (r, c) = self.s.post(p, l.id, &l.truth);
                    assert!(r.success, "an honest provider's result is always accepted");
                    self.leases[i].posted = Some((c, Served::Bytes(l.truth.clone())));
                }
                if let Some((c, _)) = &self.leases[i].posted.clone() {
                    for chunk in 0..c.leaves() {
                        let open = self.s.chain.view(
                            self.s.results,
                            Results::challengeOfCall {
                                leaseId: l.id,
                                index: U256::from(chunk),
                            },
                        );
                        if open.challenger != Address::ZERO {
                            self.answer(i, chunk, p);
                        }
                    }
                }
            }
            // The honest keeper looks at each lease every `KEEPER_POLL` seconds.
            let keeper_turn = now >= l.keeper_next;
            if keeper_turn {
                self.leases[i].keeper_next = now + KEEPER_POLL;
            }
            if l.tenant == ATTENTIVE_TENANT {
                let t = self.s.tenant(ATTENTIVE_TENANT);
                self.watch(i, t, true);
            } else if keeper_turn {
                // The keeper watches every lease its tenant does not (the sleepy tenant's and the
                // adversary's own), as a market-wide keeper would.
                let k = self.s.keeper.address;
                self.watch(i, k, false);
            }
            if self.leases[i].ended || !keeper_turn {
                continue;
            }
            // The honest keeper completes held results after their window and closes expired
            // service leases.
            let j = self.s.job(l.id);
            if j.status == 2
                && !j.challenged
                && now > j.end.to::<u64>()
                && (j.kind == 2 || j.kind == 1)
            {
                let k = self.s.keeper.address;
                let before = self.snapshot();
                let r = self.s.close(k, l.id);
                self.account(i, before, &r);
            }
        }
    }

    /// An honest watcher of lease `i`: its attentive tenant, or the keeper (for the sleepy
    /// tenant's leases). It downloads and verifies the result, challenges what it cannot download,
    /// proves every fault it sees (the tenant at once, the keeper once the fee pays it) and closes
    /// lapsed service leases.
    fn watch(&mut self, i: usize, who: Address, attentive: bool) {
        let l = self.leases[i].clone();
        let prove = |w: &mut Self, which: u8| {
            if attentive {
                w.prove(i, which, who);
            } else {
                w.keeper_prove(i, which);
            }
        };
        for which in [0u8, 1, 2, 4, 5] {
            if which == 2 && l.kind != Kind::Service {
                continue;
            }
            prove(self, which);
            if self.leases[i].ended {
                return;
            }
        }
        if l.kind == Kind::Service {
            // A lapsed service lease is closed: it pays only the live time.
            let j = self.s.job(l.id);
            let now = self.s.chain.now();
            let live = self.s.chain.view(
                self.s.staking,
                Staking::livenessCall {
                    provider: self.s.provider(l.provider.expect("leased")),
                },
            );
            if live.epochStart.to::<u64>() > j.settledAt.to::<u64>()
                || now > live.at.to::<u64>() + u64::from(live.period)
            {
                let before = self.snapshot();
                let r = self.s.close(who, l.id);
                self.account(i, before, &r);
            }
            return;
        }
        let Some((c, served)) = l.posted.clone() else {
            return;
        };
        if l.delivered {
            return;
        }
        match served {
            Served::Bytes(b) => {
                if l.job.is_some() && b != l.truth {
                    prove(self, 3);
                    return;
                }
                self.leases[i].delivered = true;
                self.accept(i, who, attentive);
            }
            Served::Malformed(..) | Served::Nothing => {
                // A tree with garbage padding is proven malformed in one transaction. Where that
                // proof does not apply (a one-leaf size under a deeper tree opens nothing), the
                // data cannot be verified against the root, so it is challenged like withheld data.
                if matches!(served, Served::Malformed(..)) {
                    prove(self, 4);
                    if self.leases[i].ended {
                        return;
                    }
                }
                // Cannot download: challenge every chunk, use what is revealed.
                for chunk in 0..c.leaves() {
                    if self.leases[i].revealed.contains_key(&chunk) {
                        continue;
                    }
                    let _ = self.s.challenge(who, l.id, c, chunk);
                }
                let got: Vec<u8> = self.leases[i]
                    .revealed
                    .values()
                    .flatten()
                    .copied()
                    .collect();
                if self.leases[i].revealed.len() as u64 == c.leaves() && Commitment::of(&got) == c {
                    self.leases[i].delivered = got == l.truth || l.job.is_none();
                    if self.leases[i].delivered {
                        self.accept(i, who, attentive);
                    } else {
                        prove(self, 3);
                    }
                }
            }
        }
    }

    /// The attentive tenant accepts a result it verified (`submit --wait --accept`): it pays at
    /// once, and the result's faults stay provable for the hold.
    fn accept(&mut self, i: usize, who: Address, attentive: bool) {
        if attentive {
            let before = self.snapshot();
            let r = self.s.close(who, self.leases[i].id);
            self.account(i, before, &r);
        }
    }

    /// Once every window has passed: every lease was resolved, no escrow is left behind, and
    /// releasing held records frees every honest provider's collateral.
    fn check_resolved(&mut self) {
        for l in &self.leases {
            if l.provider.is_some() {
                let j = self.s.job(l.id);
                assert!(
                    l.ended && j.status != 2,
                    "lease {} of tenant {} never resolved (status {}, kind {})",
                    l.id,
                    l.tenant,
                    j.status,
                    j.kind
                );
            }
        }
        self.s.chain.warp(FAULT_HORIZON + 1);
        let (k, m) = (self.s.keeper.address, self.s.market);
        let ids: Vec<B256> = self.leases.iter().map(|l| l.id).collect();
        self.s
            .chain
            .send(k, m, MarketAdmin::releaseHeldCall { leaseIds: ids })
            .expect_success();
        for p in HONEST_PROVIDERS {
            let info = self.s.provider_info(p);
            assert_eq!(
                info.locked.to::<u128>(),
                0,
                "honest provider {p} still has collateral locked"
            );
        }
    }

    /// The properties, stated on their own terms.
    fn check(&mut self, a: &Action) {
        let token = self.s.token;
        // Paid for delivery. What a tenant paid a third-party reporter for finding a fault in time
        // it did not watch is a finder's fee, not pay for the lease.
        for i in 0..self.leases.len() {
            let l = self.leases[i].clone();
            // Made whole, never more: no tenant, the adversary's included, gets back more than it
            // put into a lease. A fault's compensation is what the tenant lost; the rest of a
            // slash is not a tenant's to take (else faults are worth inviting).
            assert!(
                l.tenant_net >= 0,
                "after {a:?}: tenant {} got back {} more than it put into lease {}",
                l.tenant,
                -l.tenant_net,
                l.id
            );
            if !HONEST_TENANTS.contains(&l.tenant) || l.provider.is_none() {
                continue;
            }
            let in_escrow = if l.ended {
                0
            } else {
                self.s.job(l.id).escrow.to::<u128>() as i128
            };
            let paid = l.tenant_net - l.fees_paid - in_escrow;
            assert!(
                l.tenant != ATTENTIVE_TENANT || l.fees_paid == 0,
                "after {a:?}: the attentive tenant paid a finder's fee of {} on lease {}",
                l.fees_paid,
                l.id
            );
            match l.kind {
                Kind::Service => {
                    let live = self.live_seconds(&l) as i128;
                    assert!(
                        paid <= l.rate as i128 * live,
                        "after {a:?}: service lease {} of tenant {} paid {paid} for {live} live s",
                        l.id,
                        l.tenant
                    );
                }
                _ => assert!(
                    paid <= 0 || l.delivered,
                    "after {a:?}: batch lease {} of tenant {} paid {paid} with no delivered result",
                    l.id,
                    l.tenant
                ),
            }
        }
        // No stake taken without the staker's fault.
        for (&p, &stake) in &self.honest_stake.clone() {
            let now: u128 = self.s.provider_info(p).stake.to();
            assert_eq!(now, stake, "after {a:?}: honest provider {p} lost stake");
        }
        // Conservation.
        let (m, lens, staking, results) =
            (self.s.market, self.s.lens, self.s.staking, self.s.results);
        let escrow: u128 = self
            .leases
            .iter()
            .map(|l| self.s.chain.view(lens, MarketLens::getJobCall { id: l.id }))
            .filter(|j| j.status == 1 || j.status == 2)
            .map(|j| j.escrow.to::<u128>())
            .sum();
        let credits: u128 = self
            .accounts
            .clone()
            .iter()
            .map(|&a| self.s.credit(a))
            .sum();
        let fees: u128 = self
            .s
            .chain
            .view(lens, MarketLens::protocolFeesCall { token })
            .to();
        assert_eq!(
            self.s.balance(token, m),
            escrow + credits + fees,
            "after {a:?}: market conservation"
        );
        let held: u128 = [
            self.s.chain.view(staking, Staking::totalStakedCall {}),
            self.s.chain.view(staking, Staking::totalUnbondingCall {}),
            self.s.chain.view(staking, Staking::totalCreditsCall {}),
        ]
        .iter()
        .map(|x| x.to::<u128>())
        .sum();
        assert_eq!(
            self.s.balance(token, staking),
            held,
            "after {a:?}: staking conservation"
        );
        let open: u128 = self
            .leases
            .iter()
            .map(|l| {
                self.s
                    .chain
                    .view(results, Results::openChallengesCall { leaseId: l.id })
                    .to::<u128>()
            })
            .sum();
        let eth_credits: u128 = self
            .accounts
            .clone()
            .iter()
            .map(|&a| {
                self.s
                    .chain
                    .view(results, Results::ethCreditOfCall { account: a })
                    .to::<u128>()
            })
            .sum();
        assert_eq!(
            self.s.chain.eth_balance(results),
            U256::from(open * CHALLENGE_BOND + eth_credits),
            "after {a:?}: challenge bonds"
        );
        // No profit for the adversary beyond what honest tenants paid its provider for delivered
        // work and the keeper fees it earned on their leases (services anyone may sell): every
        // fault fee it collects must cost it at least as much in slashed stake. Checked step by
        // step, so a gain cannot hide behind earlier losses.
        let now = self.adv_holdings() as i128;
        let excess = now - (self.adv_start + self.adv_fees + self.adv_paid_honest) as i128;
        assert!(
            excess <= self.adv_excess,
            "after {a:?}: the adversary gained {} beyond what it earned honestly (keeper fees {}, paid for work {})",
            excess - self.adv_excess,
            self.adv_fees,
            self.adv_paid_honest
        );
        self.adv_excess = excess;
    }

    /// Seconds lease `l`'s provider was live (by its heartbeats) from the start to its first lapse.
    fn live_seconds(&self, l: &Lease) -> u64 {
        let now = self.s.chain.now();
        let end = now.min(l.start + u64::from(l.params.maxDuration));
        let beats = self
            .beats
            .get(&l.provider.expect("leased"))
            .cloned()
            .unwrap_or_default();
        let mut until = l.start;
        let before: Vec<u64> = beats.iter().copied().filter(|&b| b <= l.start).collect();
        let mut last = *before.last().unwrap_or(&l.start);
        for b in beats.into_iter().filter(|&b| b > l.start) {
            if b > last + HEARTBEAT {
                break;
            }
            last = b;
        }
        until = until.max((last + HEARTBEAT).min(end));
        until.saturating_sub(l.start)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_adversary_cannot_break_the_safety_properties(play in play(), actions in prop::collection::vec(action(), 10..100)) {
        let mut w = World::new(play);
        for a in &actions {
            w.step(a);
            w.check(a);
        }
        // Past every window, the honest side collects what is due, and the properties still hold.
        for _ in 0..12 {
            w.step(&Action::Warp { secs: 2_400 });
        }
        w.s.chain.warp(CHALLENGE_WINDOW + RESPONSE_WINDOW + 1);
        // Two keeper polls: everything still open is now the keeper's to close or prove.
        w.step(&Action::Warp { secs: 2 * KEEPER_POLL as u16 + 1 });
        let end = Action::Warp { secs: 0 };
        w.check(&end);
        w.check_resolved();
    }
}

/// v1's escapes, played deterministically through the same world and checks (the random suite
/// reaches them too, less often): a provider closing its lease before the result, a third party's
/// expiry close, a root nobody can open, a withheld result, a malformed tree, a wrong product.
#[test]
fn the_v1_escapes_are_played_and_none_gets_through() {
    let plays: Vec<Vec<Action>> = vec![
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Container,
                instant: true,
                collateral: 1,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 2_000 },
            Action::AdvClose { lease: 0 },
            Action::AdvAbandon { lease: 0 },
        ],
        vec![
            Action::Order {
                tenant: 1,
                kind: Kind::Builtin,
                instant: true,
                collateral: 0,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 1,
            },
            Action::Warp { secs: 2_500 },
            Action::Warp { secs: 1_200 },
            Action::AdvCloseAny { lease: 0 },
        ],
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Container,
                instant: true,
                collateral: 2,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 100 },
            Action::AdvPost {
                lease: 0,
                post: Post::Random,
            },
            Action::Warp { secs: 2_000 },
        ],
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Container,
                instant: true,
                collateral: 2,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::AdvPost {
                lease: 0,
                post: Post::Withheld,
            },
            Action::AdvAnswer {
                lease: 0,
                chunk: 0,
                forge: false,
            },
            Action::Warp { secs: 2_000 },
        ],
        vec![
            Action::Order {
                tenant: 1,
                kind: Kind::Builtin,
                instant: false,
                collateral: 1,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 301 },
            Action::Award { order: 0 },
            Action::AdvPost {
                lease: 0,
                post: Post::Wrong,
            },
            Action::Warp { secs: 100 },
        ],
        vec![
            Action::Order {
                tenant: 0,
                kind: Kind::Builtin,
                instant: true,
                collateral: 0,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::AdvPost {
                lease: 0,
                post: Post::Malformed,
            },
            Action::Warp { secs: 100 },
        ],
        // The provider's own reporter proves its missed deadline once the sleepy tenant's priority
        // is over, before the keeper's next look: the finder's fee (5% of a 5 USDC refund) is more
        // than the 0.1 USDC collateral, so it must be capped at the slash.
        vec![
            Action::Order {
                tenant: 1,
                kind: Kind::Container,
                instant: true,
                collateral: 3,
            },
            Action::Bid {
                provider: 0,
                order: 0,
                under: 0,
            },
            Action::Warp { secs: 7_600 },
            Action::AdvProve { lease: 0, which: 1 },
        ],
    ];
    for play in plays {
        let mut w = World::new(Play {
            answers: Answers::Never,
            reporter: Reporter::Idle,
        });
        for a in &play {
            w.step(a);
            w.check(a);
        }
        for _ in 0..40 {
            w.step(&Action::Warp { secs: 2_400 });
        }
        w.check(&Action::Warp { secs: 0 });
        let l = &w.leases[0];
        assert!(l.ended, "{play:?}: the lease was resolved");
        assert!(
            l.tenant_net - l.fees_paid <= 0 || l.delivered,
            "{play:?}: cost {}",
            l.tenant_net
        );
    }
}
