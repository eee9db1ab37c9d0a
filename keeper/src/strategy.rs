//! The keeper's strategies: pure and synchronous. [`plan`] turns the view and the chain's clock
//! into work (each id at most once, never one already in flight), and [`decide`] turns a work
//! item plus the price of its simulated transaction into send-or-skip (KB-01, KB-03). The
//! contract math they mirror (accrual, fee split, slash split) is the contracts' own, so what the
//! keeper expects to earn is what it gets.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::{
    primitives::{Address, B256, aliases::U48, aliases::U96},
    sol_types::Eip712Domain,
};
use gridlease_bindings::IMarket::SignedBid;
use gridlease_core::{eip712::ServedBid, units};

use crate::view::{Check, Lease, Registered, View};

/// Which strategies run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Award auctions whose bid window closed (unpaid: the lease's later settlements pay).
    pub award: bool,
    /// Settle running leases in batches.
    pub settle: bool,
    /// Close completed, expired and exhausted leases.
    pub close: bool,
    /// Prove no-shows.
    pub no_show: bool,
    /// Prove missed result deadlines.
    pub missed_deadline: bool,
    /// Report and prove stale service heartbeats.
    pub stale_heartbeat: bool,
    /// Check built-in results (Freivalds) and prove wrong ones.
    pub verify: bool,
}

impl Flags {
    /// Everything on.
    pub const ALL: Self = Self {
        award: true,
        settle: true,
        close: true,
        no_show: true,
        missed_deadline: true,
        stale_heartbeat: true,
        verify: true,
    };
}

/// The chain's parameters and clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Latest block time.
    pub now: u64,
    /// `Results.startWindow`: a lease not acknowledged within it is a no-show.
    pub start_window: u64,
    /// `Results.challengeWindow`: a held result can be proven wrong this long.
    pub challenge_window: u64,
    /// `Results.staleGrace`: a reported lapse becomes provable after it.
    pub stale_grace: u64,
    /// `Staking.reporterBps`: the prover's share of a slash after the tenant's.
    pub reporter_bps: u64,
}

/// Everything [`plan`] reads besides the view.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Decimals of each payment token (rates are 18-decimal per second).
    pub decimals: HashMap<Address, u8>,
    /// Ids with work in flight or recently done (not planned again until the view catches up).
    pub busy: HashSet<B256>,
    /// Last heartbeat and period of providers with service leases.
    pub liveness: HashMap<Address, (u64, u64)>,
    /// Exact `Market.accrued` of service leases (their accrual depends on heartbeats).
    pub owed: HashMap<B256, u128>,
    /// A lease is only worth adding to a settle batch when its fee beats this (token units):
    /// the marginal gas of one more lease.
    pub min_lease_fee: HashMap<Address, u128>,
    /// The stake token (slash rewards are paid in it).
    pub stake_token: Address,
    /// Most leases per settle transaction.
    pub settle_max: usize,
    /// Auctions for which a node serves a signed bid that passed [`select_signed`].
    pub signed: HashSet<B256>,
}

/// One transaction's worth of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `Market.award`, with the signed bids collected for it (the engine keeps them).
    Award(B256),
    /// `Market.settle` of leases of one token.
    Settle(Vec<B256>),
    /// `Market.close` by a third party (completed, expired, exhausted).
    Close(B256),
    /// `Results.proveNoShow`.
    ProveNoShow(B256),
    /// `Results.proveMissedDeadline`.
    ProveMissedDeadline(B256),
    /// `Results.reportStale` (unpaid: starts the grace).
    ReportStale(B256),
    /// `Results.proveStaleHeartbeat`.
    ProveStale(B256),
    /// Check the built-in result (off chain) and prove it wrong if it is.
    Verify(B256),
}

impl Action {
    /// Name, for logs, metrics and config (`profit.unpaid`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Award(_) => "award",
            Self::Settle(_) => "settle",
            Self::Close(_) => "close",
            Self::ProveNoShow(_) => "no-show",
            Self::ProveMissedDeadline(_) => "missed-deadline",
            Self::ReportStale(_) => "report-stale",
            Self::ProveStale(_) => "stale-heartbeat",
            Self::Verify(_) => "fraud",
        }
    }

    /// The ids it touches.
    pub fn ids(&self) -> Vec<B256> {
        match self {
            Self::Settle(ids) => ids.clone(),
            Self::Award(id)
            | Self::Close(id)
            | Self::ProveNoShow(id)
            | Self::ProveMissedDeadline(id)
            | Self::ReportStale(id)
            | Self::ProveStale(id)
            | Self::Verify(id) => vec![*id],
        }
    }
}

/// A planned action and what it should pay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    /// What to send.
    pub action: Action,
    /// Expected reward, in units of `token` (for `Verify`: what the proof pays if it is wrong).
    pub reward: u128,
    /// The token the reward is paid in.
    pub token: Address,
    /// Faults with a deadline: sent above the gas-price cap and the hourly budget (KB-03).
    pub urgent: bool,
}

/// `amount * bps / 10_000`, as the contracts round.
fn bps(amount: u128, bps: u64) -> u128 {
    amount.saturating_mul(u128::from(bps)) / 10_000
}

/// What a lease owes now (`Market._owedFrom`), in token units: from `settled_at` to
/// `min(now, end)`, capped by the escrow. Service leases use the exact `accrued` read.
pub fn owed(l: &Lease, id: B256, clock: &Clock, inp: &Inputs) -> u128 {
    if l.kind == 2 {
        return inp.owed.get(&id).copied().unwrap_or(0);
    }
    let until = clock.now.min(l.end);
    if until <= l.settled_at {
        return 0;
    }
    let decimals = inp.decimals.get(&l.token).copied().unwrap_or(18);
    units::owed(l.rate, until - l.settled_at, decimals)
        .unwrap_or(u128::MAX)
        .min(l.escrow)
}

/// The reporter's share of slashing `collateral` (`Staking.slash`: the tenant gets half first).
pub fn slash_reward(collateral: u128, reporter_bps: u64) -> u128 {
    bps(collateral - collateral / 2, reporter_bps)
}

/// All work due now. Each id appears in at most one item, and no busy or finished id appears.
pub fn plan(view: &View, clock: &Clock, flags: Flags, inp: &Inputs) -> Vec<Work> {
    let mut out = Vec::new();
    // Settle candidates per token: (fee, provider, id).
    let mut settle: BTreeMap<Address, Vec<(u128, Address, B256)>> = BTreeMap::new();
    let now = clock.now;

    // Iterate in a stable order so that plans (and tests) are deterministic.
    let mut ids: Vec<&B256> = view.leases.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let id = *id;
        if inp.busy.contains(&id) || view.done.contains_key(&id) {
            continue;
        }
        let l = &view.leases[&id];
        let fault = |action| Work {
            action,
            reward: slash_reward(l.collateral, clock.reporter_bps),
            token: inp.stake_token,
            urgent: true,
        };
        let fee = bps(owed(l, id, clock, inp), u64::from(l.keeper_fee_bps));

        // Faults first: they pay most and have deadlines.
        if flags.no_show
            && l.result.is_none()
            && !l.acknowledged
            && now > l.start + clock.start_window
        {
            out.push(fault(Action::ProveNoShow(id)));
            continue;
        }
        if l.kind != 2 && l.result.is_none() && now >= l.end {
            if flags.missed_deadline {
                out.push(fault(Action::ProveMissedDeadline(id)));
            } else if flags.close {
                out.push(close(id, l, fee));
            }
            continue;
        }
        if l.kind == 2 && flags.stale_heartbeat && now < l.end {
            let (at, period) = inp.liveness.get(&l.provider).copied().unwrap_or((0, 0));
            let live = at != 0 && now <= at + period;
            if !live {
                match l.stale_since {
                    Some(since) if since > at => {
                        if now >= since + clock.stale_grace {
                            out.push(fault(Action::ProveStale(id)));
                        }
                        // Reported and waiting for the grace: nothing else to do with it.
                        continue;
                    }
                    _ => {
                        out.push(Work {
                            action: Action::ReportStale(id),
                            reward: 0,
                            token: inp.stake_token,
                            urgent: false,
                        });
                        continue;
                    }
                }
            }
        }
        if let Some(r) = &l.result {
            // Checked until found correct: a wrong one whose proof did not go out yet, or one
            // that could not be fetched (a withholding provider), is looked at again.
            if l.kind == 1
                && flags.verify
                && l.checked != Some(Check::Correct)
                && now <= r.at + clock.challenge_window
            {
                out.push(Work {
                    action: Action::Verify(id),
                    reward: slash_reward(l.collateral, clock.reporter_bps),
                    token: inp.stake_token,
                    urgent: true,
                });
                continue;
            }
            if l.kind != 2 {
                // Held for the challenge window; then anyone closes it as completed.
                if now >= r.at + clock.challenge_window
                    && flags.close
                    && l.checked != Some(Check::Wrong)
                {
                    out.push(close(id, l, fee));
                }
                continue;
            }
        }
        let exhausted = l.escrow == 0 || owed(l, id, clock, inp) >= l.escrow;
        if flags.close && (now >= l.end || exhausted) {
            out.push(close(id, l, fee));
            continue;
        }
        if flags.settle && fee > 0 && fee >= inp.min_lease_fee.get(&l.token).copied().unwrap_or(0) {
            settle
                .entry(l.token)
                .or_default()
                .push((fee, l.provider, id));
        }
    }

    for (token, mut c) in settle {
        // Best-paying first, by fee class (a power of two): leases whose fees are within a factor
        // of two of each other are grouped by provider, since the contract books one credit per
        // run of equal providers and a batch of one provider's leases is the cheapest. Chunked in
        // that order, every candidate is in exactly one of ceil(candidates / settle_max) batches,
        // and leases settled moments ago (a low class) never fill up a batch of overdue ones.
        let class = |fee: u128| 128 - fee.leading_zeros();
        c.sort_unstable_by(|a, b| {
            class(b.0)
                .cmp(&class(a.0))
                .then(a.1.cmp(&b.1))
                .then(b.0.cmp(&a.0))
                .then(a.2.cmp(&b.2))
        });
        for chunk in c.chunks(inp.settle_max.max(1)) {
            out.push(Work {
                action: Action::Settle(chunk.iter().map(|x| x.2).collect()),
                reward: chunk.iter().map(|x| x.0).sum(),
                token,
                urgent: false,
            });
        }
    }

    let mut orders: Vec<(&B256, _)> = view.orders.iter().collect();
    orders.sort_unstable_by_key(|(id, _)| **id);
    for (id, o) in orders {
        if flags.award
            && !o.instant
            && (o.bid.is_some() || inp.signed.contains(id))
            && now > o.bidding_end
            && !inp.busy.contains(id)
        {
            out.push(Work {
                action: Action::Award(*id),
                reward: 0,
                token: Address::ZERO,
                urgent: false,
            });
        }
    }
    out
}

/// Most signed bids one `Market.award` takes (`Market.MAX_SIGNED_BIDS`).
pub const MAX_SIGNED_BIDS: usize = 32;

/// Why a served bid was dropped before the award.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// For another order, or an unreadable price, expiry or signature.
    Malformed,
    /// Not signed by the registered operator of the provider it names.
    NotOperator,
    /// Above the order's max price or below the market's minimum.
    Price,
    /// Expired.
    Expired,
}

impl Dropped {
    /// Name, for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "signed-bid-malformed",
            Self::NotOperator => "signed-bid-not-operator",
            Self::Price => "signed-bid-price",
            Self::Expired => "signed-bid-expired",
        }
    }
}

/// The bids of `served` worth passing to `Market.award(order, ..)` at chain time `now`: each
/// recovers (under the market's `domain`) to the operator `providers` registers for the provider
/// it names, is priced within `min_price..=max_price` and unexpired; the lowest
/// [`MAX_SIGNED_BIDS`], cheapest first. The award's simulation has the last word (stake, capacity,
/// liveness). Also returns why each other bid was dropped.
pub fn select_signed(
    served: &[ServedBid],
    order: B256,
    max_price: u128,
    min_price: u128,
    now: u64,
    domain: &Eip712Domain,
    providers: &HashMap<Address, Registered>,
) -> (Vec<SignedBid>, Vec<Dropped>) {
    let mut keep: Vec<(u128, &ServedBid)> = Vec::new();
    let mut dropped = Vec::new();
    for b in served {
        let (Some(price), true) = (b.price(), b.order == order) else {
            dropped.push(Dropped::Malformed);
            continue;
        };
        let Some(signer) = b.signer(domain) else {
            dropped.push(Dropped::Malformed);
            continue;
        };
        if providers.get(&b.provider).map(|r| r.operator) != Some(signer) {
            dropped.push(Dropped::NotOperator);
        } else if price > max_price || price < min_price {
            dropped.push(Dropped::Price);
        } else if b.expiry < now {
            dropped.push(Dropped::Expired);
        } else if !keep.iter().any(|(_, k)| k.signature == b.signature) {
            keep.push((price, b));
        }
    }
    keep.sort_by_key(|(price, _)| *price);
    keep.truncate(MAX_SIGNED_BIDS);
    let bids = keep
        .into_iter()
        .map(|(price, b)| SignedBid {
            pricePerSecond: U96::from(price),
            expiry: U48::from(b.expiry),
            signature: b.signature.clone(),
        })
        .collect();
    (bids, dropped)
}

fn close(id: B256, l: &Lease, fee: u128) -> Work {
    Work {
        action: Action::Close(id),
        reward: fee,
        token: l.token,
        urgent: false,
    }
}

/// The price of a simulated transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// Gas the simulation used.
    pub gas: u64,
    /// Expected wei per gas (base fee + priority fee).
    pub gas_price: u128,
    /// L1 data fee, wei (rollups that expose it; 0 elsewhere).
    pub l1_fee: u128,
}

impl Price {
    /// Total cost in wei.
    pub fn cost(&self) -> u128 {
        u128::from(self.gas)
            .saturating_mul(self.gas_price)
            .saturating_add(self.l1_fee)
    }
}

/// The keeper's money rules.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Payment-token units per whole native coin (to price gas in the reward's token).
    pub native_price: HashMap<Address, u128>,
    /// The reward must beat the cost by this margin, bps (2,000: reward >= 1.2 x cost).
    pub margin_bps: u64,
    /// And by at least this much, token units.
    pub min_profit: HashMap<Address, u128>,
    /// Non-urgent work is skipped above this gas price, wei.
    pub max_gas_price: u128,
    /// Gas money left in this hour's budget, wei.
    pub budget_left: u128,
    /// Actions done even at a loss (within the cap and budget).
    pub unpaid: HashSet<String>,
}

/// Send or skip, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send it.
    Send,
    /// Skip it, for this reason (a metrics label).
    Skip(&'static str),
}

/// Gas cost of `price` in units of `token`.
pub fn cost_in(price: &Price, token: Address, policy: &Policy) -> u128 {
    let per_native = policy.native_price.get(&token).copied().unwrap_or(0);
    price.cost().saturating_mul(per_native) / 1_000_000_000_000_000_000
}

/// Whether `work` priced at `price` is worth sending (KB-01, KB-03).
pub fn decide(work: &Work, price: &Price, policy: &Policy) -> Decision {
    if !work.urgent {
        if price.gas_price > policy.max_gas_price {
            return Decision::Skip("gas-price-cap");
        }
        if price.cost() > policy.budget_left {
            return Decision::Skip("hourly-budget");
        }
    }
    if policy.unpaid.contains(work.action.name()) {
        return Decision::Send;
    }
    let cost = cost_in(price, work.token, policy);
    let need = cost
        .saturating_mul(10_000 + u128::from(policy.margin_bps))
        .div_ceil(10_000)
        .saturating_add(policy.min_profit.get(&work.token).copied().unwrap_or(0));
    if work.reward == 0 || work.reward < need {
        return Decision::Skip("unprofitable");
    }
    Decision::Send
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::view::Posted;

    const TOKEN: Address = Address::repeat_byte(0x70);
    const STAKE: Address = Address::repeat_byte(0x57);

    fn clock(now: u64) -> Clock {
        Clock {
            now,
            start_window: 120,
            challenge_window: 600,
            stale_grace: 60,
            reporter_bps: 1_000,
        }
    }

    fn inputs() -> Inputs {
        Inputs {
            decimals: [(TOKEN, 6)].into(),
            stake_token: STAKE,
            settle_max: 3,
            ..Default::default()
        }
    }

    /// A lease started at 1,000 for 3,600 s at 1 token-unit (6 decimals) per second.
    fn lease(kind: u8) -> Lease {
        Lease {
            tenant: Address::repeat_byte(1),
            provider: Address::repeat_byte(2),
            terms: Bytes::new(),
            token: TOKEN,
            kind,
            collateral: 1_000_000,
            rate: 1_000_000_000_000,
            start: 1_000,
            end: 4_600,
            keeper_fee_bps: 100,
            settled_at: 1_000,
            escrow: 10_000,
            acknowledged: true,
            result: None,
            stale_since: None,
            checked: None,
        }
    }

    fn view(leases: Vec<(u8, Lease)>) -> View {
        let mut v = View::default();
        for (i, l) in leases {
            v.leases.insert(B256::repeat_byte(i), l);
        }
        v
    }

    fn names(w: &[Work]) -> Vec<&'static str> {
        w.iter().map(|w| w.action.name()).collect()
    }

    #[test]
    fn accrual_mirrors_the_contract() {
        let l = lease(0);
        let id = B256::ZERO;
        assert_eq!(owed(&l, id, &clock(1_000), &inputs()), 0);
        assert_eq!(owed(&l, id, &clock(1_500), &inputs()), 500);
        // Capped by the end, and by the escrow.
        assert_eq!(owed(&l, id, &clock(99_999), &inputs()), 3_600);
        let mut poor = l.clone();
        poor.escrow = 1_000;
        assert_eq!(owed(&poor, id, &clock(99_999), &inputs()), 1_000);
        assert_eq!(slash_reward(1_000_001, 1_000), 50_000);
    }

    #[test]
    fn each_fault_is_found() {
        let mut no_show = lease(0);
        no_show.acknowledged = false;
        let mut missed = lease(0);
        missed.end = 1_100;
        let mut stale = lease(2);
        stale.provider = Address::repeat_byte(9);
        let mut posted = lease(1);
        posted.result = Some(Posted {
            root: B256::repeat_byte(7),
            uri: "data:,".into(),
            at: 1_050,
        });
        posted.end = 1_050;
        let v = view(vec![(1, no_show), (2, missed), (3, stale), (4, posted)]);
        let mut inp = inputs();
        inp.liveness.insert(Address::repeat_byte(9), (1_000, 60));
        let w = plan(&v, &clock(1_200), Flags::ALL, &inp);
        assert_eq!(
            names(&w),
            ["no-show", "missed-deadline", "report-stale", "fraud"]
        );
        assert!(w.iter().all(|w| w.urgent || w.reward == 0));
        // Once reported, the stale lease waits for the grace, then is provable.
        let mut v2 = v.clone();
        v2.leases
            .get_mut(&B256::repeat_byte(3))
            .expect("test setup")
            .stale_since = Some(1_200);
        let w = plan(&v2, &clock(1_230), Flags::ALL, &inp);
        assert!(!names(&w).contains(&"stale-heartbeat"));
        let w = plan(&v2, &clock(1_260), Flags::ALL, &inp);
        assert!(names(&w).contains(&"stale-heartbeat"));
        // A heartbeat after the report voids it: report again.
        inp.liveness.insert(Address::repeat_byte(9), (1_201, 1));
        let w = plan(&v2, &clock(1_260), Flags::ALL, &inp);
        assert!(names(&w).contains(&"report-stale"));
    }

    #[test]
    fn held_results_close_after_the_challenge_window_and_batches_group_by_provider() {
        let mut held = lease(0);
        held.result = Some(Posted {
            root: B256::repeat_byte(7),
            uri: "data:,".into(),
            at: 1_500,
        });
        held.end = 1_500;
        let mut leases = vec![(1, held)];
        for i in 2..=6u8 {
            let mut l = lease(0);
            l.provider = Address::repeat_byte(10 - i % 2);
            l.settled_at = 1_000 + u64::from(i);
            leases.push((i, l));
        }
        let v = view(leases);
        let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
        // Held: nothing to do yet; five leases in batches of three, best-paying first.
        assert_eq!(names(&w), ["settle", "settle"]);
        let Action::Settle(first) = &w[0].action else {
            panic!()
        };
        assert_eq!(first.len(), 3);
        let provs: Vec<Address> = first.iter().map(|id| v.leases[id].provider).collect();
        assert!(provs.windows(2).all(|p| p[0] <= p[1]), "{provs:?}");
        let w = plan(&v, &clock(2_101), Flags::ALL, &inputs());
        assert_eq!(w[0].action, Action::Close(B256::repeat_byte(1)));
        assert_eq!(w[0].reward, 5); // 1% of the 500 held
    }

    #[test]
    fn awards_only_closed_auctions_with_a_bid() {
        let mut v = View::default();
        let order = |instant, bid| crate::view::Order {
            tenant: Address::ZERO,
            terms: Bytes::new(),
            instant,
            bidding_end: 100,
            bid,
        };
        let bid = Some((Address::repeat_byte(2), 5));
        v.orders.insert(B256::repeat_byte(1), order(false, bid));
        v.orders.insert(B256::repeat_byte(2), order(false, None));
        v.orders.insert(B256::repeat_byte(3), order(true, bid));
        assert!(plan(&v, &clock(100), Flags::ALL, &inputs()).is_empty());
        let w = plan(&v, &clock(101), Flags::ALL, &inputs());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].action, Action::Award(B256::repeat_byte(1)));
    }

    #[test]
    fn signed_bids_are_checked_locally_and_sorted_by_price() {
        use alloy::signers::local::PrivateKeySigner;
        use gridlease_core::eip712::market_domain;
        let domain = market_domain(31337, Address::repeat_byte(0xaa));
        let order = B256::repeat_byte(1);
        let (op_a, op_b, stranger) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        let (pa, pb) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let providers: HashMap<Address, Registered> = [(pa, op_a.address()), (pb, op_b.address())]
            .into_iter()
            .map(|(p, operator)| {
                (
                    p,
                    Registered {
                        operator,
                        uri: "http://127.0.0.1:1".into(),
                    },
                )
            })
            .collect();
        let sign = |k: &PrivateKeySigner, provider, price, expiry| {
            ServedBid::sign(&domain, k, provider, order, price, expiry).expect("sign")
        };
        let served = vec![
            sign(&op_a, pa, 50, 1_000),
            sign(&op_b, pb, 40, 1_000),
            // Signed by a key that is not pb's operator.
            sign(&stranger, pb, 10, 1_000),
            // Expired.
            sign(&op_a, pa, 20, 499),
            // Above the order's max.
            sign(&op_b, pb, 101, 1_000),
            // Below the market's min.
            sign(&op_b, pb, 1, 1_000),
            // Another order's bid.
            ServedBid::sign(&domain, &op_a, pa, B256::repeat_byte(2), 30, 1_000).expect("sign"),
        ];
        let (keep, dropped) = select_signed(&served, order, 100, 2, 500, &domain, &providers);
        let prices: Vec<u128> = keep.iter().map(|b| b.pricePerSecond.to::<u128>()).collect();
        assert_eq!(prices, vec![40, 50]);
        assert_eq!(keep[0].signature, served[1].signature);
        assert_eq!(
            dropped,
            vec![
                Dropped::NotOperator,
                Dropped::Expired,
                Dropped::Price,
                Dropped::Price,
                Dropped::Malformed
            ]
        );
        // A bid expiring exactly now is still valid on chain (expiry >= block.timestamp).
        let (keep, _) = select_signed(&served, order, 100, 2, 1_000, &domain, &providers);
        assert_eq!(keep.len(), 2);
        // At most MAX_SIGNED_BIDS, the cheapest.
        let many: Vec<ServedBid> = (0..40).map(|i| sign(&op_a, pa, 60 - i, 1_000)).collect();
        let (keep, _) = select_signed(&many, order, 100, 2, 500, &domain, &providers);
        assert_eq!(keep.len(), MAX_SIGNED_BIDS);
        assert_eq!(keep[0].pricePerSecond.to::<u128>(), 21);
    }

    #[test]
    fn awards_an_auction_with_only_a_signed_bid() {
        let mut v = View::default();
        v.orders.insert(
            B256::repeat_byte(1),
            crate::view::Order {
                tenant: Address::ZERO,
                terms: Bytes::new(),
                instant: false,
                bidding_end: 100,
                bid: None,
            },
        );
        let mut inp = inputs();
        assert!(plan(&v, &clock(101), Flags::ALL, &inp).is_empty());
        inp.signed.insert(B256::repeat_byte(1));
        let w = plan(&v, &clock(101), Flags::ALL, &inp);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].action, Action::Award(B256::repeat_byte(1)));
    }

    fn policy() -> Policy {
        Policy {
            native_price: [(TOKEN, 3_000_000_000), (STAKE, 3_000_000_000)].into(),
            margin_bps: 2_000,
            min_profit: HashMap::new(),
            max_gas_price: 100_000_000_000,
            budget_left: 10u128.pow(18),
            unpaid: ["award".to_owned()].into(),
        }
    }

    #[test]
    fn kb_01_kb_03_decides_on_profit_caps_and_budget() {
        let work = |reward, urgent| Work {
            action: Action::Close(B256::ZERO),
            reward,
            token: TOKEN,
            urgent,
        };
        // 100k gas at 1 gwei = 1e14 wei = 0.0001 ETH = 0.3 USD = 300,000 units (6 decimals).
        let p = Price {
            gas: 100_000,
            gas_price: 1_000_000_000,
            l1_fee: 0,
        };
        assert_eq!(cost_in(&p, TOKEN, &policy()), 300_000);
        assert_eq!(
            decide(&work(359_999, false), &p, &policy()),
            Decision::Skip("unprofitable")
        );
        assert_eq!(decide(&work(360_000, false), &p, &policy()), Decision::Send);
        // The L1 data fee counts.
        let l2 = Price {
            l1_fee: 1_000_000_000_000,
            ..p
        };
        assert_eq!(
            decide(&work(360_000, false), &l2, &policy()),
            Decision::Skip("unprofitable")
        );
        let dear = Price {
            gas_price: 200_000_000_000,
            ..p
        };
        assert_eq!(
            decide(&work(u128::MAX, false), &dear, &policy()),
            Decision::Skip("gas-price-cap")
        );
        // Urgent work (a fault proof) goes above the cap when it pays.
        assert_eq!(
            decide(&work(u128::MAX, true), &dear, &policy()),
            Decision::Send
        );
        let mut broke = policy();
        broke.budget_left = 0;
        assert_eq!(
            decide(&work(u128::MAX, false), &p, &broke),
            Decision::Skip("hourly-budget")
        );
        // Unpaid work is allowed by name only.
        let award = Work {
            action: Action::Award(B256::ZERO),
            reward: 0,
            token: Address::ZERO,
            urgent: false,
        };
        assert_eq!(decide(&award, &p, &policy()), Decision::Send);
        assert_eq!(decide(&award, &p, &broke), Decision::Skip("hourly-budget"));
    }

    fn arb_lease() -> impl Strategy<Value = Lease> {
        (
            0u8..3,
            any::<bool>(),
            0u64..3_000,
            0u64..5_000,
            0u128..100_000,
            prop::option::of(0u64..5_000),
            prop::option::of(0u64..5_000),
            0u8..4,
        )
            .prop_map(|(kind, ack, settled, len, escrow, posted, stale, prov)| {
                let mut l = lease(kind);
                l.acknowledged = ack;
                l.settled_at = 1_000 + settled.min(len);
                l.end = 1_000 + len;
                l.escrow = escrow;
                l.provider = Address::repeat_byte(prov);
                l.stale_since = stale.map(|s| 1_000 + s);
                if let Some(at) = posted {
                    l.result = Some(Posted {
                        root: B256::ZERO,
                        uri: String::new(),
                        at: 1_000 + at,
                    });
                    if kind != 2 {
                        l.end = 1_000 + at;
                    }
                }
                l
            })
    }

    proptest! {
        /// No id twice in one plan, none that is busy, and every expired batch lease without a
        /// result gets exactly one closing action.
        #[test]
        fn no_lease_twice_and_every_expired_lease_closed_once(
            leases in prop::collection::vec(arb_lease(), 0..40),
            busy in prop::collection::vec(0u8..40, 0..10),
            now in 1_000u64..8_000,
            provs in prop::collection::vec((0u64..8_000, 0u64..120), 4),
            min_fee in 0u128..40,
        ) {
            let v = view(leases.into_iter().enumerate().map(|(i, l)| (i as u8, l)).collect());
            let mut inp = inputs();
            inp.busy = busy.iter().map(|b| B256::repeat_byte(*b)).collect();
            inp.min_lease_fee.insert(TOKEN, min_fee);
            for (i, p) in provs.into_iter().enumerate() {
                inp.liveness.insert(Address::repeat_byte(i as u8), p);
            }
            let w = plan(&v, &clock(now), Flags::ALL, &inp);
            let mut seen = HashSet::new();
            for item in &w {
                for id in item.action.ids() {
                    prop_assert!(seen.insert(id), "{id} twice");
                    prop_assert!(!inp.busy.contains(&id));
                }
                if let Action::Settle(ids) = &item.action {
                    prop_assert!(ids.len() <= inp.settle_max);
                    // Every lease in a batch pays its own marginal gas, and the batch's reward
                    // is what its leases pay.
                    let mut sum = 0;
                    for id in ids {
                        let l = &v.leases[id];
                        let fee = bps(owed(l, *id, &clock(now), &inp), u64::from(l.keeper_fee_bps));
                        prop_assert!(fee > 0 && fee >= min_fee, "lease {} pays {}", id, fee);
                        sum += fee;
                    }
                    prop_assert_eq!(item.reward, sum);
                }
            }
            for (id, l) in &v.leases {
                if inp.busy.contains(id) || l.kind == 2 || l.result.is_some() || now < l.end {
                    continue;
                }
                let closing = w.iter().filter(|x| matches!(
                    &x.action,
                    Action::Close(i) | Action::ProveMissedDeadline(i) | Action::ProveNoShow(i) if i == id
                )).count();
                prop_assert_eq!(closing, 1, "lease {} expired at {}", id, l.end);
            }
        }

        /// Poll after poll, with each plan carried out as the chain would: no lease is settled
        /// when nothing is owed (no second is paid twice), nothing finished is touched again,
        /// and once every deadline has passed every lease was closed (closed, or faulted by a
        /// proof) exactly once.
        #[test]
        fn polls_settle_no_second_twice_and_close_every_lease_exactly_once(
            leases in prop::collection::vec(arb_lease(), 0..30),
            steps in prop::collection::vec(0u64..900, 1..12),
            provs in prop::collection::vec((0u64..8_000, 0u64..120), 4),
        ) {
            let mut v = view(leases.into_iter().enumerate().map(|(i, l)| (i as u8, l)).collect());
            let ids: Vec<B256> = v.leases.keys().copied().collect();
            let mut inp = inputs();
            for (i, p) in provs.into_iter().enumerate() {
                inp.liveness.insert(Address::repeat_byte(i as u8), p);
            }
            let mut closed: HashMap<B256, usize> = HashMap::new();
            let mut now = 1_000;
            // The steps, then polls long after every deadline until nothing is left to do.
            let polls = steps.into_iter().chain(std::iter::repeat_n(1_000_000, 6));
            for dt in polls {
                now += dt;
                let c = clock(now);
                for w in plan(&v, &c, Flags::ALL, &inp) {
                    for id in w.action.ids() {
                        prop_assert!(!v.done.contains_key(&id), "{} acted on after it finished", id);
                    }
                    match &w.action {
                        Action::Settle(batch) => {
                            for id in batch {
                                let owes = owed(&v.leases[id], *id, &c, &inp);
                                prop_assert!(owes > 0, "{} settled with nothing owed", id);
                                let l = v.leases.get_mut(id).expect("planned from the view");
                                l.settled_at = now.min(l.end);
                                l.escrow -= owes;
                            }
                        }
                        Action::Close(id)
                        | Action::ProveNoShow(id)
                        | Action::ProveMissedDeadline(id)
                        | Action::ProveStale(id) => {
                            *closed.entry(*id).or_default() += 1;
                            v.leases.remove(id);
                            v.done.insert(*id, now);
                        }
                        Action::ReportStale(id) => {
                            v.leases.get_mut(id).expect("planned from the view").stale_since =
                                Some(now);
                        }
                        Action::Verify(id) => {
                            v.leases.get_mut(id).expect("planned from the view").checked =
                                Some(Check::Correct);
                        }
                        Action::Award(_) => {}
                    }
                }
            }
            prop_assert!(v.leases.is_empty(), "never closed: {:?}", v.leases.keys().collect::<Vec<_>>());
            for id in ids {
                prop_assert_eq!(closed.get(&id).copied(), Some(1), "lease {}", id);
            }
        }

        /// Nothing that does not pay is sent, unless it is named unpaid.
        #[test]
        fn no_action_sent_for_work_that_does_not_pay(
            reward in 0u128..10_000_000,
            gas in 21_000u64..2_000_000,
            gas_price in 0u128..300_000_000_000,
            l1 in 0u128..1_000_000_000_000_000,
            urgent in any::<bool>(),
        ) {
            let p = Price { gas, gas_price, l1_fee: l1 };
            let w = Work { action: Action::Settle(vec![B256::ZERO]), reward, token: TOKEN, urgent };
            if decide(&w, &p, &policy()) == Decision::Send {
                let cost = cost_in(&p, TOKEN, &policy());
                prop_assert!(reward > 0 && reward * 10_000 >= cost * 12_000);
                prop_assert!(urgent || gas_price <= policy().max_gas_price);
            }
        }
    }
}
