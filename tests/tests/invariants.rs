//! Stateful property tests against an adversary (SECURITY K, DESIGN 4.5). A model that re-encodes
//! the contracts' rules passes the contracts' design flaws (v1's escapable faults got through 300
//! cases of one), so this suite states its properties on their own terms and lets a randomized
//! adversary try to break them:
//!
//! - the **adversary** holds provider 0's operator (hot) key, its own tenant account and its own
//!   reporter/keeper account. It bids on anything, acknowledges or not, posts correct, wrong,
//!   withheld, random or malformed results, answers challenges or not, stops its heartbeat,
//!   abandons, closes, accepts, challenges, proves, settles, releases and withdraws at random;
//! - **honest tenants** (tenants 0 and 1) order container, built-in and service jobs, verify every
//!   result they get (Freivalds-grade: they know the true product), challenge what they cannot
//!   download, prove every fault they see (within their priority, so for free), accept only
//!   results they verified, and close lapsed service leases;
//! - **honest providers** (1 and 2) beat on time, acknowledge, post the true result well before
//!   the deadline and answer every challenge; an honest keeper settles and closes.
//!
//! After every step:
//! - **paid for delivery**: an honest tenant's batch lease that cost it anything delivered a result
//!   it verified (or was ended early by the tenant itself after the provider acknowledged it); a
//!   service lease cost it at most the rate times its provider's live time;
//! - **no stake without fault**: an honest provider's stake never falls, and none of its leases is
//!   faulted;
//! - **conservation**: the market holds exactly the escrow of every order and lease, every credit
//!   and the protocol fees; staking holds its stake, unbonding stake and credits; the results
//!   module holds exactly the open challenges' bonds and its wei credits;
//! - **no profit for the adversary**: what its accounts hold, less the keeper fees it earned on
//!   honest tenants' leases (a service anyone may sell), never exceeds what they held at the start.
//!
//! Cases: 128 by default; set `PROPTEST_CASES` for more (e.g. 1000 before a release). Failing seeds
//! are kept in `tests/proptest-regressions/invariants.txt` (committed).

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market, MarketAdmin, MarketLens, Results, Staking,
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
const HONEST_TENANTS: [usize; 2] = [0, 1];
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
    Order { tenant: usize, kind: Kind, instant: bool, collateral: u8 },
    Bid { provider: usize, order: u8, under: u8 },
    Award { order: u8 },
    AdvAck { lease: u8 },
    AdvPost { lease: u8, post: Post },
    AdvAnswer { lease: u8, chunk: u8 },
    AdvBeat,
    AdvAbandon { lease: u8 },
    AdvClose { lease: u8 },
    AdvTenantClose { lease: u8 },
    AdvChallenge { lease: u8, chunk: u8 },
    AdvProve { lease: u8, which: u8 },
    AdvCloseAny { lease: u8 },
    AdvSettle { lease: u8 },
    AdvRelease { lease: u8 },
    TopUp { lease: u8 },
    Withdraw { who: u8 },
    Warp { secs: u16 },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Container), Just(Kind::Builtin), Just(Kind::Service)]
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
        4 => (prop_oneof![Just(0usize), Just(1), Just(ADV_TENANT)], kind(), prop::bool::weighted(0.7), 0u8..3)
            .prop_map(|(tenant, kind, instant, collateral)| Action::Order { tenant, kind, instant, collateral }),
        // The adversary bids as often as both honest providers together.
        4 => (prop_oneof![2 => Just(0usize), 1 => Just(1), 1 => Just(2)], any::<u8>(), 0u8..4)
            .prop_map(|(provider, order, under)| Action::Bid { provider, order, under }),
        2 => any::<u8>().prop_map(|order| Action::Award { order }),
        2 => any::<u8>().prop_map(|lease| Action::AdvAck { lease }),
        3 => (any::<u8>(), post()).prop_map(|(lease, post)| Action::AdvPost { lease, post }),
        2 => (any::<u8>(), 0u8..4).prop_map(|(lease, chunk)| Action::AdvAnswer { lease, chunk }),
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
    /// The tenant itself closed it early after an acknowledgement.
    tenant_closed_early: bool,
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
    honest_stake: BTreeMap<usize, u128>,
    accounts: Vec<Address>,
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
    fn new() -> Self {
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
            honest_stake: BTreeMap::new(),
            accounts,
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

    /// The adversary's accounts: provider 0's operator key, its tenant, its reporter (tenant 2).
    fn adversary(&self) -> [Address; 3] {
        [self.s.operator(ADV_PROVIDER), self.s.tenant(ADV_TENANT), self.s.tenant(2)]
    }

    fn adv_holdings(&mut self) -> u128 {
        let token = self.s.token;
        self.adversary()
            .iter()
            .map(|&a| self.s.balance(token, a) + self.s.credit(a) + self.s.staking_credit(a))
            .sum()
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

    /// A running lease the adversary serves (its own or an honest tenant's), or one of its tenant's.
    fn pick_adv(&self, k: u8, by_tenant: bool) -> Option<usize> {
        let pool: Vec<usize> = (0..self.leases.len())
            .filter(|&i| {
                let l = &self.leases[i];
                !l.ended
                    && l.provider.is_some()
                    && if by_tenant { l.tenant == ADV_TENANT } else { l.provider == Some(ADV_PROVIDER) }
            })
            .collect();
        (!pool.is_empty()).then(|| pool[k as usize % pool.len()])
    }

    fn step(&mut self, a: &Action) {
        match *a {
            Action::Order { tenant, kind, instant, collateral } => self.order(tenant, kind, instant, collateral),
            Action::Bid { provider, order, under } => {
                if let Some(i) = self.pick(order, true) {
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
                        let p = (0..3).find(|&p| self.s.provider(p) == e.provider).expect("a provider");
                        self.started(i, p, e.ratePerSecond.to(), false);
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
                if let Some(i) = self.pick_adv(lease, false) {
                    if self.leases[i].provider == Some(ADV_PROVIDER) {
                        self.adv_post(i, post);
                    }
                }
            }
            Action::AdvAnswer { lease, chunk } => {
                if let Some(i) = self.pick_adv(lease, false) {
                    self.answer(i, u64::from(chunk), ADV_PROVIDER);
                }
            }
            Action::AdvBeat => self.beat(ADV_PROVIDER),
            Action::AdvAbandon { lease } => {
                if let Some(i) = self.pick_adv(lease, false) {
                    let (op, m, id) = (self.s.operator(ADV_PROVIDER), self.s.market, self.leases[i].id);
                    let r = self.s.chain.send(op, m, MarketAdmin::abandonCall { leaseId: id });
                    self.account(i, &r);
                }
            }
            Action::AdvClose { lease } => {
                if let Some(i) = self.pick_adv(lease, false) {
                    let op = self.s.operator(ADV_PROVIDER);
                    let r = self.s.close(op, self.leases[i].id);
                    self.account(i, &r);
                }
            }
            Action::AdvTenantClose { lease } => {
                if let Some(i) = self.pick_adv(lease, true) {
                    if self.leases[i].tenant == ADV_TENANT {
                        let t = self.s.tenant(ADV_TENANT);
                        let r = self.s.close(t, self.leases[i].id);
                        self.account(i, &r);
                    }
                }
            }
            Action::AdvChallenge { lease, chunk } => {
                if let Some(i) = self.pick(lease, false) {
                    if let Some((c, _)) = self.leases[i].posted.clone() {
                        let a = self.s.tenant(2);
                        let _ = self.s.challenge(a, self.leases[i].id, c, u64::from(chunk));
                    }
                }
            }
            Action::AdvProve { lease, which } => {
                if let Some(i) = self.pick(lease, false) {
                    let a = self.s.tenant(2);
                    self.prove(i, which, a);
                }
            }
            Action::AdvCloseAny { lease } => {
                if let Some(i) = self.pick(lease, false) {
                    let a = self.s.tenant(2);
                    let r = self.s.close(a, self.leases[i].id);
                    self.count_fee(i, &r);
                    self.account(i, &r);
                }
            }
            Action::AdvSettle { lease } => {
                if let Some(i) = self.pick(lease, false) {
                    let a = self.s.tenant(2);
                    let r = self.s.settle(a, vec![self.leases[i].id]);
                    self.count_fee(i, &r);
                }
            }
            Action::AdvRelease { lease } => {
                if let Some(i) = (!self.leases.is_empty()).then(|| lease as usize % self.leases.len()) {
                    let (a, m) = (self.s.tenant(2), self.s.market);
                    let ids = vec![self.leases[i].id];
                    let _ = self.s.chain.send(a, m, MarketAdmin::releaseHeldCall { leaseIds: ids });
                }
            }
            Action::TopUp { lease } => {
                if let Some(i) = self.pick(lease, false) {
                    let (t, id) = (self.leases[i].tenant, self.leases[i].id);
                    let p = self.s.provider(self.leases[i].provider.expect("leased"));
                    let who = self.s.tenant(t);
                    if self.s.top_up(who, id, USDC, p).success {
                        self.leases[i].tenant_net += USDC as i128;
                    }
                }
            }
            Action::Withdraw { who } => {
                let a = self.accounts[who as usize % self.accounts.len()];
                let (m, token, staking) = (self.s.market, self.s.token, self.s.staking);
                let _ = self.s.chain.send(a, m, Market::withdrawCall { token, to: a });
                let _ = self.s.chain.send(a, staking, Staking::withdrawCreditCall { to: a });
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
        p.collateral = U96::from([10u128, 100, 1_000][collateral as usize] * USDC);
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
            Kind::Container => ((None), (0..(n as usize % 3) * 700).map(|x| (x * 7 + n as usize) as u8).collect()),
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
            tenant_closed_early: false,
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

    fn answer(&mut self, i: usize, chunk: u64, by: usize) {
        let l = self.leases[i].clone();
        // Only a provider that has the data can answer: its true result under the true root.
        let Some((c, served)) = &l.posted else { return };
        let op = self.s.operator(by);
        let r = match served {
            Served::Bytes(b) if chunk < c.leaves() => self.s.answer(op, l.id, b, chunk),
            Served::Nothing if chunk < c.leaves() && *c == Commitment::of(&l.truth) => self.s.answer(op, l.id, &l.truth, chunk),
            // The true chunks under a tree with garbage padding open against its root.
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
            _ => return,
        };
        let data = match served {
            Served::Bytes(b) => b.clone(),
            _ => l.truth.clone(),
        };
        if r.success {
            self.leases[i].revealed.insert(chunk, result_chunk(&data, chunk).to_vec());
        }
    }

    fn prove(&mut self, i: usize, which: u8, from: Address) {
        let l = self.leases[i].clone();
        let results = self.s.results;
        let tenant = self.s.tenant(l.tenant);
        let r = match which % 6 {
            0 => self.s.chain.send(
                from,
                results,
                Results::proveNoShowCall {
                    leaseId: l.id,
                    tenant,
                    terms: l.params.clone().into(),
                },
            ),
            1 => self.s.chain.send(from, results, Results::proveMissedDeadlineCall { leaseId: l.id }),
            2 => {
                let _ = self.s.chain.send(from, results, Results::reportStaleCall { leaseId: l.id });
                self.s.chain.send(from, results, Results::proveStaleHeartbeatCall { leaseId: l.id })
            }
            3 => match (&l.posted, &l.job) {
                (Some((c, Served::Bytes(b))), Some(job)) => {
                    let cvals: Vec<i32> = b.chunks_exact(4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]])).collect();
                    match (cvals.len() == 24 * 16).then(|| localize(job, &cvals, B256::repeat_byte(3))).flatten() {
                        Some(f) => self.s.chain.send(
                            from,
                            results,
                            Results::proveMatmulFraudCall {
                                leaseId: l.id,
                                tenant,
                                terms: l.params.clone().into(),
                                job: Job { seed: job.seed, m: job.m, k: job.k, n: job.n },
                                root: c.root,
                                size: c.size,
                                i: U256::from(f.i),
                                j: U256::from(f.j),
                                leaf: f.leaf.into(),
                                proof: f.proof,
                            },
                        ),
                        None => return,
                    }
                }
                _ => return,
            },
            4 => {
                let Some((c, Served::Malformed(t, index))) = &l.posted else { return };
                self.s.chain.send(
                    from,
                    results,
                    Results::proveMalformedCall {
                        leaseId: l.id,
                        root: c.root,
                        size: c.size,
                        level: U256::ZERO,
                        index: U256::from(*index),
                        data: t.node(0, *index).to_vec().into(),
                        proof: t.proof(*index),
                    },
                )
            }
            _ => {
                let Some((c, _)) = &l.posted else { return };
                let mut last = None;
                for index in 0..c.leaves() {
                    last = Some(self.s.chain.send(
                        from,
                        results,
                        Results::proveUnavailableCall { leaseId: l.id, index: U256::from(index) },
                    ));
                    if last.as_ref().is_some_and(|r| r.success) {
                        break;
                    }
                }
                match last {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        self.account(i, &r);
    }

    /// Record what a receipt moved back to lease `i`'s tenant.
    fn account(&mut self, i: usize, r: &Receipt) {
        if !r.success {
            return;
        }
        let id = self.leases[i].id;
        for e in r.events::<Market::LeaseClosed>() {
            if e.leaseId == id {
                self.leases[i].tenant_net -= e.refund.to::<u128>() as i128;
                self.leases[i].ended = true;
            }
        }
        for e in r.events::<Market::LeaseFaulted>() {
            if e.leaseId == id {
                let cut = if e.reporter == Address::ZERO || e.reporter == self.s.tenant(self.leases[i].tenant) {
                    U256::ZERO
                } else {
                    e.compensation * U256::from(FAULT_FEE_BPS) / U256::from(10_000)
                };
                self.leases[i].tenant_net -= (e.compensation - cut).to::<u128>() as i128;
                self.leases[i].ended = true;
            }
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

    /// Honest tenants, providers and keeper react, as their daemons would each poll.
    fn honest(&mut self) {
        let now = self.s.chain.now();
        for p in HONEST_PROVIDERS {
            let last = self.beats.get(&p).and_then(|b| b.last()).copied().unwrap_or(0);
            if now + 150 > last + HEARTBEAT {
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
                        let open = self
                            .s
                            .chain
                            .view(self.s.results, Results::challengeOfCall { leaseId: l.id, index: U256::from(chunk) });
                        if open.challenger != Address::ZERO {
                            self.answer(i, chunk, p);
                        }
                    }
                }
            }
            if HONEST_TENANTS.contains(&l.tenant) {
                self.honest_tenant(i);
            }
            // The honest keeper completes held results after their window and closes expired
            // service leases.
            let j = self.s.job(l.id);
            if j.status == 2 && !j.challenged && now > j.end.to::<u64>() && (j.kind == 2 || j.kind == 1) {
                let k = self.s.keeper.address;
                let r = self.s.close(k, l.id);
                self.account(i, &r);
            }
        }
    }

    fn honest_tenant(&mut self, i: usize) {
        let l = self.leases[i].clone();
        let tenant = self.s.tenant(l.tenant);
        // Every fault the tenant can see, it proves itself (free: within its priority).
        for which in [0u8, 1, 2, 4, 5] {
            if which == 2 && l.kind != Kind::Service {
                continue;
            }
            self.prove(i, which, tenant);
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
                Staking::livenessCall { provider: self.s.provider(l.provider.expect("leased")) },
            );
            if live.epochStart.to::<u64>() > j.settledAt.to::<u64>() || now > live.at.to::<u64>() + u64::from(live.period) {
                let r = self.s.close(tenant, l.id);
                self.account(i, &r);
            }
            return;
        }
        let Some((c, served)) = l.posted.clone() else { return };
        if l.delivered {
            return;
        }
        match served {
            Served::Bytes(b) => {
                if let Some(job) = &l.job {
                    let _ = job;
                    if b != l.truth {
                        self.prove(i, 3, tenant);
                        return;
                    }
                }
                self.leases[i].delivered = true;
            }
            Served::Malformed(..) | Served::Nothing => {
                // A tree with garbage padding is proven malformed in one transaction. Where that
                // proof does not apply (a one-leaf size under a deeper tree opens nothing), the
                // data cannot be verified against the root, so it is challenged like withheld data.
                if matches!(served, Served::Malformed(..)) {
                    self.prove(i, 4, tenant);
                    if self.leases[i].ended {
                        return;
                    }
                }
                // Cannot download: challenge every chunk, use what is revealed.
                for chunk in 0..c.leaves() {
                    if self.leases[i].revealed.contains_key(&chunk) {
                        continue;
                    }
                    let _ = self.s.challenge(tenant, l.id, c, chunk);
                }
                let got: Vec<u8> = self.leases[i].revealed.values().flatten().copied().collect();
                if self.leases[i].revealed.len() as u64 == c.leaves() && Commitment::of(&got) == c {
                    self.leases[i].delivered = got == l.truth || l.job.is_none();
                    if !self.leases[i].delivered {
                        self.prove(i, 3, tenant);
                    }
                }
            }
        }
    }

    /// The properties, stated on their own terms.
    fn check(&mut self, a: &Action) {
        let token = self.s.token;
        // Paid for delivery.
        for l in &self.leases {
            if !HONEST_TENANTS.contains(&l.tenant) || l.provider.is_none() {
                continue;
            }
            match l.kind {
                Kind::Service => {
                    let live = self.live_seconds(l) as i128;
                    assert!(
                        l.tenant_net <= l.rate as i128 * live + if l.ended { 0 } else { self.s.job(l.id).escrow.to::<u128>() as i128 },
                        "after {a:?}: service lease {} cost {} for {live} live s",
                        l.id,
                        l.tenant_net
                    );
                }
                _ if l.ended => {
                    assert!(
                        l.tenant_net <= 0 || l.delivered || l.tenant_closed_early,
                        "after {a:?}: batch lease {} of tenant {} cost {} with no delivered result",
                        l.id,
                        l.tenant,
                        l.tenant_net
                    );
                }
                _ => {}
            }
        }
        // No stake taken without the staker's fault.
        for (&p, &stake) in &self.honest_stake.clone() {
            let now: u128 = self.s.provider_info(p).stake.to();
            assert_eq!(now, stake, "after {a:?}: honest provider {p} lost stake");
        }
        // Conservation.
        let (m, lens, staking, results) = (self.s.market, self.s.lens, self.s.staking, self.s.results);
        let escrow: u128 = self
            .leases
            .iter()
            .map(|l| self.s.chain.view(lens, MarketLens::getJobCall { id: l.id }))
            .filter(|j| j.status == 1 || j.status == 2)
            .map(|j| j.escrow.to::<u128>())
            .sum();
        let credits: u128 = self.accounts.clone().iter().map(|&a| self.s.credit(a)).sum();
        let fees: u128 = self.s.chain.view(lens, MarketLens::protocolFeesCall { token }).to();
        assert_eq!(self.s.balance(token, m), escrow + credits + fees, "after {a:?}: market conservation");
        let held: u128 = [
            self.s.chain.view(staking, Staking::totalStakedCall {}),
            self.s.chain.view(staking, Staking::totalUnbondingCall {}),
            self.s.chain.view(staking, Staking::totalCreditsCall {}),
        ]
        .iter()
        .map(|x| x.to::<u128>())
        .sum();
        assert_eq!(self.s.balance(token, staking), held, "after {a:?}: staking conservation");
        let open: u128 = self
            .leases
            .iter()
            .map(|l| self.s.chain.view(results, Results::openChallengesCall { leaseId: l.id }).to::<u128>())
            .sum();
        let eth_credits: u128 = self
            .accounts
            .clone()
            .iter()
            .map(|&a| self.s.chain.view(results, Results::ethCreditOfCall { account: a }).to::<u128>())
            .sum();
        assert_eq!(
            self.s.chain.eth_balance(results),
            U256::from(open * CHALLENGE_BOND + eth_credits),
            "after {a:?}: challenge bonds"
        );
        // No profit for the adversary beyond fees it earned serving honest tenants.
        let now = self.adv_holdings();
        assert!(
            now <= self.adv_start + self.adv_fees,
            "after {a:?}: adversary profit {} (fees earned {})",
            now as i128 - self.adv_start as i128,
            self.adv_fees
        );
    }

    /// Seconds lease `l`'s provider was live (by its heartbeats) from the start to its first lapse.
    fn live_seconds(&self, l: &Lease) -> u64 {
        let now = self.s.chain.now();
        let end = now.min(l.start + u64::from(l.params.maxDuration));
        let beats = self.beats.get(&l.provider.expect("leased")).cloned().unwrap_or_default();
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
    fn an_adversary_cannot_break_the_safety_properties(actions in prop::collection::vec(action(), 1..100)) {
        let mut w = World::new();
        for a in &actions {
            w.step(a);
            w.check(a);
        }
        // Past every window, the honest side collects what is due, and the properties still hold.
        for _ in 0..12 {
            w.step(&Action::Warp { secs: 2_400 });
        }
        w.s.chain.warp(CHALLENGE_WINDOW + RESPONSE_WINDOW + 1);
        w.step(&Action::Warp { secs: 1 });
        let end = Action::Warp { secs: 0 };
        w.check(&end);
    }
}

/// v1's escapes, played deterministically through the same world and checks (the random suite
/// reaches them too, less often): a provider closing its lease before the result, a third party's
/// expiry close, a root nobody can open, a withheld result, a malformed tree, a wrong product.
#[test]
fn the_v1_escapes_are_played_and_none_gets_through() {
    let plays: Vec<Vec<Action>> = vec![
        vec![
            Action::Order { tenant: 0, kind: Kind::Container, instant: true, collateral: 1 },
            Action::Bid { provider: 0, order: 0, under: 0 },
            Action::Warp { secs: 2_000 },
            Action::AdvClose { lease: 0 },
            Action::AdvAbandon { lease: 0 },
        ],
        vec![
            Action::Order { tenant: 1, kind: Kind::Builtin, instant: true, collateral: 0 },
            Action::Bid { provider: 0, order: 0, under: 1 },
            Action::Warp { secs: 2_500 },
            Action::Warp { secs: 1_200 },
            Action::AdvCloseAny { lease: 0 },
        ],
        vec![
            Action::Order { tenant: 0, kind: Kind::Container, instant: true, collateral: 2 },
            Action::Bid { provider: 0, order: 0, under: 0 },
            Action::Warp { secs: 100 },
            Action::AdvPost { lease: 0, post: Post::Random },
            Action::Warp { secs: 2_000 },
        ],
        vec![
            Action::Order { tenant: 0, kind: Kind::Container, instant: true, collateral: 2 },
            Action::Bid { provider: 0, order: 0, under: 0 },
            Action::AdvPost { lease: 0, post: Post::Withheld },
            Action::AdvAnswer { lease: 0, chunk: 0 },
            Action::Warp { secs: 2_000 },
        ],
        vec![
            Action::Order { tenant: 1, kind: Kind::Builtin, instant: false, collateral: 1 },
            Action::Bid { provider: 0, order: 0, under: 0 },
            Action::Warp { secs: 301 },
            Action::Award { order: 0 },
            Action::AdvPost { lease: 0, post: Post::Wrong },
            Action::Warp { secs: 100 },
        ],
        vec![
            Action::Order { tenant: 0, kind: Kind::Builtin, instant: true, collateral: 0 },
            Action::Bid { provider: 0, order: 0, under: 0 },
            Action::AdvPost { lease: 0, post: Post::Malformed },
            Action::Warp { secs: 100 },
        ],
    ];
    for play in plays {
        let mut w = World::new();
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
        assert!(l.tenant_net <= 0 || l.delivered, "{play:?}: cost {}", l.tenant_net);
    }
}

