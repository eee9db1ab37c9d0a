//! The world the adversary plays in: the suite, its leases and the actions a step applies.

use super::*;

impl World {
    pub(super) fn new(play: Play) -> Self {
        let mut s = Suite::with_decimals(play.decimals);
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
            seen: BTreeMap::new(),
            outside: None,
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
    pub(super) fn adversary(&self) -> [Address; 4] {
        [
            self.s.provider(ADV_PROVIDER),
            self.s.operator(ADV_PROVIDER),
            self.s.tenant(ADV_TENANT),
            self.s.tenant(2),
        ]
    }

    /// What the adversary holds: its accounts' tokens and credits, provider 0's stake, and the
    /// escrow of its tenant's open orders and running leases (its own money, parked).
    pub(super) fn adv_holdings(&mut self) -> u128 {
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

    pub(super) fn beat(&mut self, p: usize) {
        if self.s.heartbeat(p).success {
            let now = self.s.chain.now();
            self.beats.entry(p).or_default().push(now);
        }
    }

    pub(super) fn pick(&self, k: u8, open: bool) -> Option<usize> {
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
    pub(super) fn pick_biddable(&self, k: u8) -> Option<usize> {
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
    pub(super) fn pick_adv(&self, k: u8, by_tenant: bool) -> Option<usize> {
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

    pub(super) fn step(&mut self, a: &Action) {
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
                    let r = self.s.bid(provider, id, price);
                    self.placed(i, provider, price, &r, true);
                }
            }
            Action::SignedBid {
                provider,
                order,
                under,
            } => {
                if let Some(i) = self.pick(order, true) {
                    let id = self.leases[i].id;
                    // One token unit a second under the on-chain grid, so it can undercut.
                    let price = PRICE - u128::from(under) * PRICE / 10 - 1_000_000_000_000;
                    let (bid, reporter) =
                        (self.s.signed_bid(provider, id, price), self.s.tenant(2));
                    let r = self.s.bid_signed(reporter, id, bid);
                    self.placed(i, provider, price, &r, false);
                }
            }
            Action::Award { order } => {
                if let Some(i) = self.pick(order, true) {
                    // The adversary's reporter awards half the time: it chooses nothing either.
                    let from = if order % 2 == 0 {
                        self.s.keeper.address
                    } else {
                        self.s.tenant(2)
                    };
                    let r = self.s.award(from, self.leases[i].id);
                    if r.success {
                        let e = r.event::<Market::LeaseStarted>();
                        let p = (0..3)
                            .find(|&p| self.s.provider(p) == e.provider)
                            .expect("a provider");
                        assert_eq!(
                            self.leases[i].best_bid,
                            Some((p, e.ratePerSecond.to())),
                            "order {} awarded to a bid other than the lowest placed in its window",
                            self.leases[i].id
                        );
                        self.started(i, p, e.ratePerSecond.to(), false);
                    }
                }
            }
            Action::AdvTake { order, post } => {
                if let Some(i) = self.pick_biddable(order) {
                    let id = self.leases[i].id;
                    let r = self.s.bid(ADV_PROVIDER, id, PRICE);
                    let instant = self.leases[i].params.instant;
                    self.placed(i, ADV_PROVIDER, PRICE, &r, true);
                    if r.success
                        && instant
                        && let Some(post) = post
                    {
                        self.adv_post(i, post);
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
                    if r.success {
                        self.leases[i].deposited += USDC;
                    }
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

    pub(super) fn order(&mut self, tenant: usize, kind: Kind, instant: bool, collateral: u8) {
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
            price: 0,
            tenant_net: 5 * USDC as i128,
            deposited: 5 * USDC,
            keeper_bps: 0,
            ended: false,
            best_bid: None,
        });
    }

    /// Bid `r` of `provider` at `price` on order `i` (sent by its operator: `own`): no bid lands
    /// after the window; one on an auction becomes the lowest placed in it, one on an instant
    /// order starts the lease (acknowledged only if its operator sent it).
    pub(super) fn placed(
        &mut self,
        i: usize,
        provider: usize,
        price: u128,
        r: &Receipt,
        own: bool,
    ) {
        if !r.success {
            return;
        }
        let l = &self.leases[i];
        let end = l.ordered + u64::from(l.params.bidWindow);
        assert!(
            self.s.chain.now() <= end,
            "a bid on order {} was placed after its window closed",
            l.id
        );
        if l.params.instant {
            self.started(i, provider, price, own);
        } else {
            self.leases[i].best_bid = Some((provider, price));
        }
    }

    pub(super) fn started(&mut self, i: usize, provider: usize, price: u128, _instant: bool) {
        self.orders.retain(|&o| o != i);
        let l = &mut self.leases[i];
        l.provider = Some(provider);
        l.start = self.s.chain.now();
        l.price = price;
        let id = l.id;
        self.leases[i].keeper_bps = self.s.job(id).keeperFeeBps;
    }
}
