//! The keeper's strategies: pure and synchronous. [`plan`] turns the view and the chain's clock
//! into work (each id at most once, never one already in flight), and [`decide`] turns a work
//! item plus the price of its simulated transaction into send-or-skip (KB-01, KB-03). The
//! contract math they mirror (service accrual under the liveness cap, fee split, fault fee) is the
//! contracts' own, so what the keeper expects to earn is what it gets.
//!
//! Protocol v2 (`docs/protocol.md` §3-5), as the keeper sees it:
//! - only acknowledged **service** leases are settled as they run, up to their provider's
//!   liveness; a batch lease is paid once its result stands, by its close;
//! - a batch lease without a result is never closed (the market refuses, and a close must not
//!   race its missed-deadline proof: MEC-02); only its faults end it;
//! - a held result is checked (downloaded against its `(root, size)`, and for built-in jobs
//!   Freivalds), challenged when it cannot be had, proven wrong or unavailable, and closed as
//!   completed once its window passed with no open challenge;
//! - a closed lease whose collateral the market holds stays in the plan until its fault horizon:
//!   a fault on a result the tenant accepted still pays.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::primitives::{Address, B256};
use gridlease_primitives::units;

use crate::view::{ACCEPTED, Check, Lease, Posted, View};

/// Which strategies run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Award auctions whose bid window closed (unpaid: the lease's later pay is the point).
    pub award: bool,
    /// Settle running service leases in batches.
    pub settle: bool,
    /// Close completed results, and expired, exhausted and lapsed service leases.
    pub close: bool,
    /// Prove no-shows.
    pub no_show: bool,
    /// Prove missed result deadlines.
    pub missed_deadline: bool,
    /// Report and prove stale service heartbeats.
    pub stale_heartbeat: bool,
    /// Check built-in results (Freivalds) and prove wrong ones.
    pub verify: bool,
    /// Check that posted results can be downloaded; challenge a chunk of one that cannot, and
    /// prove unanswered challenges (anyone's) unavailable.
    pub challenge: bool,
    /// Also challenge container results served only to their tenant (a bet the provider
    /// withholds them: an honest node answers, and the bond goes to it).
    pub challenge_private: bool,
}

impl Flags {
    /// Everything on, except challenging private results.
    pub const ALL: Self = Self {
        award: true,
        settle: true,
        close: true,
        no_show: true,
        missed_deadline: true,
        stale_heartbeat: true,
        verify: true,
        challenge: true,
        challenge_private: false,
    };
}

/// The chain's clock and the market's fault horizon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// Latest block time.
    pub now: u64,
    /// `MarketAdmin.faultHorizon`: a held lease's faults stay provable this long after its close.
    pub fault_horizon: u64,
}

/// A results module's windows and prices (its immutables), which every lease bound to it keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleParams {
    /// The module contract.
    pub address: Address,
    /// `startWindow`: a lease not acknowledged within it is a no-show.
    pub start_window: u64,
    /// `challengeWindow`: a posted result is held (and can be challenged) this long.
    pub challenge_window: u64,
    /// `deadlineGrace`: a batch result is accepted this long after the lease end.
    pub deadline_grace: u64,
    /// `responseWindow`: a challenged chunk must be revealed within it.
    pub response_window: u64,
    /// `staleGrace`: a reported lapse becomes provable after it.
    pub stale_grace: u64,
    /// `challengeBond`, wei.
    pub challenge_bond: u128,
    /// `faultFeeBps`: a third-party prover's share of what a fault returns to the tenant.
    pub fault_fee_bps: u16,
    /// `tenantPriority`: a proof earns its fee only this long after the fault became provable
    /// (before, the tenant recovers its money for free; 0 on modules without it).
    pub tenant_priority: u64,
}

impl ModuleParams {
    /// Whether a proof at `now` of a fault provable since `provable` earns the fault fee.
    pub fn fee_due(&self, provable: u64, now: u64) -> bool {
        now > provable.saturating_add(self.tenant_priority)
    }
}

/// A provider's heartbeat state (`Staking.liveness`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    /// Last heartbeat.
    pub at: u64,
    /// Heartbeat period of the current epoch.
    pub period: u64,
    /// Current epoch.
    pub epoch: u32,
    /// First heartbeat of the current epoch.
    pub epoch_start: u64,
    /// First heartbeat of the previous epoch (0: none).
    pub prev_start: u64,
    /// Where the previous epoch's liveness ended.
    pub prev_end: u64,
}

/// Everything [`plan`] reads besides the view.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Decimals of each payment token (rates are 18-decimal per second).
    pub decimals: HashMap<Address, u8>,
    /// The stake token (post-close fault rewards are paid in it) and its decimals.
    pub stake_token: Address,
    /// Decimals of the stake token.
    pub stake_decimals: u8,
    /// Ids with work in flight or recently done (not planned again until the view catches up).
    pub busy: HashSet<B256>,
    /// Heartbeat state of providers with service leases.
    pub liveness: HashMap<Address, Liveness>,
    /// A lease is only worth adding to a settle batch when its fee beats this (token units):
    /// the marginal gas of one more lease.
    pub min_lease_fee: HashMap<Address, u128>,
    /// Most leases per settle transaction.
    pub settle_max: usize,
    /// Auctions in their bid window for which a node serves a signed bid that passed
    /// `bids::select_signed`: the lowest price among them.
    pub signed: HashMap<B256, u128>,
    /// Results modules by id.
    pub modules: HashMap<u8, ModuleParams>,
    /// The keeper's own address (its challenges' bonds come back to it).
    pub me: Address,
    /// Actions done even when they pay nothing (`profit.unpaid`): faults that return nothing to
    /// a tenant are planned only when named here.
    pub unpaid: HashSet<String>,
    /// Seconds a completed result's provider has to close it itself (and pay no keeper fee)
    /// before it is this keeper's work (`strategies.close_grace_s`).
    pub close_grace: u64,
}

/// One transaction's worth of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `Market.award` of an auction whose window closed (its lowest bid on chain wins).
    Award(B256),
    /// `Market.bidSigned` of the lowest signed bid served for an auction still in its window,
    /// when it beats the bid on chain (the engine keeps the bids): only bids on chain by the
    /// window's end can win (AFR-02). Unpaid like the award it leads to, and named with it.
    PlaceBid(B256),
    /// `Market.settle` of service leases of one token.
    Settle(Vec<B256>),
    /// `Market.close` by a third party (completed result; expired, exhausted, lapsed service).
    Close(B256),
    /// `Results.proveNoShow`.
    ProveNoShow(B256),
    /// `Results.proveMissedDeadline`.
    ProveMissedDeadline(B256),
    /// `Results.reportStale` (paid by the proof that follows it).
    ReportStale(B256),
    /// `Results.proveStaleHeartbeat`.
    ProveStale(B256),
    /// Download and check the posted result (off chain); prove it wrong if it is.
    Verify(B256),
    /// `Results.challenge` of a chunk of a result that cannot be had (bonded).
    Challenge(B256),
    /// `Results.proveUnavailable` of the challenge of chunk `.1`.
    ProveUnavailable(B256, u64),
}

impl Action {
    /// Name, for logs, metrics and config (`profit.unpaid`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Award(_) | Self::PlaceBid(_) => "award",
            Self::Settle(_) => "settle",
            Self::Close(_) => "close",
            Self::ProveNoShow(_) => "no-show",
            Self::ProveMissedDeadline(_) => "missed-deadline",
            Self::ReportStale(_) => "report-stale",
            Self::ProveStale(_) => "stale-heartbeat",
            Self::Verify(_) => "fraud",
            Self::Challenge(_) => "challenge",
            Self::ProveUnavailable(..) => "unavailable",
        }
    }

    /// The ids it touches.
    pub fn ids(&self) -> Vec<B256> {
        match self {
            Self::Settle(ids) => ids.clone(),
            Self::Award(id)
            | Self::PlaceBid(id)
            | Self::Close(id)
            | Self::ProveNoShow(id)
            | Self::ProveMissedDeadline(id)
            | Self::ReportStale(id)
            | Self::ProveStale(id)
            | Self::Verify(id)
            | Self::Challenge(id)
            | Self::ProveUnavailable(id, _) => vec![*id],
        }
    }
}

/// Gas of the `proveUnavailable` a challenge leads to (fault, slash, refund; a figure above the
/// gas snapshot's), priced into the challenge.
pub const PROVE_UNAVAILABLE_GAS: u64 = 250_000;
/// Gas of the `proveStaleHeartbeat` a stale report leads to, priced into the report.
pub const PROVE_STALE_GAS: u64 = 250_000;
/// Failed downloads before a result counts as unavailable (a blip is not worth a bond).
pub const MISSING_TRIES: u32 = 2;

/// A planned action and what it should pay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    /// What to send.
    pub action: Action,
    /// Expected reward, in units of `token` (for `Verify`: what the proof pays if it is wrong;
    /// for a report or a challenge: what the proof it leads to pays).
    pub reward: u128,
    /// The token the reward is paid in.
    pub token: Address,
    /// Faults with a deadline: sent above the gas-price cap and the hourly budget (KB-03).
    pub urgent: bool,
    /// Gas of the transaction this one leads to, priced at today's gas price.
    pub follow_up_gas: u64,
    /// Wei put at risk (a challenge bond, also the transaction's value): lost if the provider
    /// answers, so it is priced as a cost.
    pub at_risk: u128,
    /// Wei that come back to the keeper when it is mined (its own challenge's bond).
    pub returns: u128,
}

impl Work {
    /// Work with no follow-up and no wei involved.
    pub fn new(action: Action, reward: u128, token: Address, urgent: bool) -> Self {
        Self {
            action,
            reward,
            token,
            urgent,
            follow_up_gas: 0,
            at_risk: 0,
            returns: 0,
        }
    }
}

/// `amount * bps / 10_000`, as the contracts round.
pub fn bps(amount: u128, bps: u64) -> u128 {
    amount.saturating_mul(u128::from(bps)) / 10_000
}

fn decimals(inp: &Inputs, token: Address) -> u8 {
    inp.decimals.get(&token).copied().unwrap_or(18)
}

/// What settling service lease `l` moves now (`Market.settle`): from its `settled_at` to
/// `min(now, end)`, capped by its provider's liveness `live` and by the escrow. The liveness cap
/// is the current epoch's last heartbeat plus its period if that epoch had begun by
/// `settled_at`; else the previous epoch's end if it ran then; else nothing. Nothing before the
/// lease is acknowledged.
pub fn service_owed(l: &Lease, live: &Liveness, now: u64, decimals: u8) -> u128 {
    if !l.acknowledged {
        return 0;
    }
    let cap = if live.epoch_start <= l.settled_at {
        live.at + live.period
    } else if live.prev_start != 0 && live.prev_start <= l.settled_at {
        live.prev_end
    } else {
        l.settled_at
    };
    let until = now.min(l.end).min(cap);
    if until <= l.settled_at {
        return 0;
    }
    units::owed(l.rate, until - l.settled_at, decimals)
        .unwrap_or(u128::MAX)
        .min(l.escrow)
}

/// A service lease's provider lapsed since its last settlement (`MarketBase._lapsed`): a new
/// epoch began, or its heartbeat is stale now.
pub fn lapsed(l: &Lease, live: &Liveness, now: u64) -> bool {
    live.epoch_start > l.settled_at || now > live.at + live.period
}

/// The pay a held batch result releases when it stands: from the start to the result (never
/// past the deadline), capped by the escrow.
pub fn held_pay(l: &Lease, r: &Posted, decimals: u8) -> u128 {
    let until = r.at.min(l.end);
    units::owed(l.rate, until.saturating_sub(l.start), decimals)
        .unwrap_or(u128::MAX)
        .min(l.escrow)
}

/// When a held result stands: its pay stopped at `min(result, end)` and is held for the
/// module's challenge window (`Market.resultPosted`).
pub fn hold_end(l: &Lease, r: &Posted, m: &ModuleParams) -> u64 {
    r.at.min(l.end) + m.challenge_window
}

/// What a third party earns by proving a fault on `l` now, and in which token: the module's
/// fault fee of what the fault returns to the tenant. A running lease refunds everything
/// unsettled but a service's live time before its lapse, which the fault pays its provider
/// (`MarketAdmin._fault`; paid in the payment token; the fee never exceeds the collateral
/// slashed, valued 1:1); a closed one whose collateral is held compensates the
/// tenant for what it paid for an accepted result, out of the slash (in the stake token, 1:1 in
/// value, never more than the compensation or the collateral); any other close returns nothing.
/// A tenant proving its own lease earns no fee.
pub fn fault_reward(l: &Lease, m: &ModuleParams, inp: &Inputs) -> (u128, Address) {
    if l.tenant == inp.me {
        return (0, l.token);
    }
    let fee = u64::from(m.fault_fee_bps);
    let scale = |d: u8| units::rate_scale(d).unwrap_or(1);
    match &l.closed {
        None => {
            let cap = l.collateral.saturating_mul(scale(inp.stake_decimals))
                / scale(decimals(inp, l.token));
            // The live time up to the lapse, wherever the proof lands (never past the lapse, so
            // reading it at the end of time is what the market pays).
            let served = if l.service() {
                let live = inp.liveness.get(&l.provider).copied().unwrap_or_default();
                service_owed(l, &live, u64::MAX, decimals(inp, l.token))
            } else {
                0
            };
            (bps(l.escrow - served, fee).min(cap), l.token)
        }
        Some(c) if c.reason == ACCEPTED => {
            let compensation =
                c.paid.saturating_mul(scale(decimals(inp, l.token))) / scale(inp.stake_decimals);
            let reward = bps(compensation, fee).min(compensation).min(l.collateral);
            (reward, inp.stake_token)
        }
        Some(_) => (0, inp.stake_token),
    }
}

/// Where a stale-heartbeat report stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    /// The lapse goes on; the grace has not passed.
    Waiting,
    /// Provable now.
    Provable,
    /// The provider came back within the grace (or too many epochs ago to tell): void.
    Void,
}

/// The report of a lapse made at `since` (`Results.proveStaleHeartbeat`): provable once `grace`
/// has passed, unless the provider's first heartbeat after the report came within it. A
/// heartbeat after a report always starts a new epoch (the report needs a stale provider).
pub fn stale_state(since: u64, live: &Liveness, grace: u64, now: u64) -> Stale {
    let provable = since + grace;
    if live.at < since {
        return if now > provable {
            Stale::Provable
        } else {
            Stale::Waiting
        };
    }
    // Back: the first heartbeat after the report is the current epoch's start, unless another
    // epoch began since (then it is not known here, and the report is left alone).
    if live.prev_start > since || live.epoch_start <= provable {
        return Stale::Void;
    }
    if now > provable {
        Stale::Provable
    } else {
        Stale::Waiting
    }
}

/// What to do with one lease: a piece of work, or a place in a settle batch (its fee).
enum Planned {
    One(Work),
    Settle(u128),
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
        let Some(m) = inp.modules.get(&l.module) else {
            continue;
        };
        match lease_work(id, l, m, clock, flags, inp) {
            Some(Planned::One(w)) => out.push(w),
            Some(Planned::Settle(fee)) => {
                settle
                    .entry(l.token)
                    .or_default()
                    .push((fee, l.provider, id));
            }
            None => {}
        }
    }

    for (token, mut c) in settle {
        // Best-paying first, by fee class (a power of two): leases whose fees are within a factor
        // of two of each other are grouped by provider, since the contract reads liveness and
        // books one credit per run of equal providers, and a batch of one provider's leases is
        // the cheapest. Chunked in that order, every candidate is in exactly one of
        // ceil(candidates / settle_max) batches, and leases settled moments ago (a low class)
        // never fill up a batch of overdue ones.
        let class = |fee: u128| 128 - fee.leading_zeros();
        c.sort_unstable_by(|a, b| {
            class(b.0)
                .cmp(&class(a.0))
                .then(a.1.cmp(&b.1))
                .then(b.0.cmp(&a.0))
                .then(a.2.cmp(&b.2))
        });
        for chunk in c.chunks(inp.settle_max.max(1)) {
            out.push(Work::new(
                Action::Settle(chunk.iter().map(|x| x.2).collect()),
                chunk.iter().map(|x| x.0).sum(),
                token,
                false,
            ));
        }
    }

    let mut orders: Vec<(&B256, _)> = view.orders.iter().collect();
    orders.sort_unstable_by_key(|(id, _)| **id);
    for (id, o) in orders {
        if !flags.award || o.instant || inp.busy.contains(id) {
            continue;
        }
        if now > o.bidding_end {
            if o.bid.is_some() {
                out.push(Work::new(Action::Award(*id), 0, Address::ZERO, false));
            }
        } else if let Some(&best) = inp.signed.get(id)
            && o.bid.is_none_or(|(_, price)| best < price)
        {
            // Not urgent, as the award it leads to: unpaid work stays under the gas price cap
            // and the hourly budget.
            out.push(Work::new(Action::PlaceBid(*id), 0, Address::ZERO, false));
        }
    }
    out
}

fn lease_work(
    id: B256,
    l: &Lease,
    m: &ModuleParams,
    clock: &Clock,
    flags: Flags,
    inp: &Inputs,
) -> Option<Planned> {
    let now = clock.now;
    let (fee, token) = fault_reward(l, m, inp);
    // A fault provable since `provable` is proven once it pays its fee (the tenant's priority
    // over it has passed), or at once when named unpaid.
    let fault = |action: Action, provable: u64| {
        let due = m.fee_due(provable, now);
        (inp.unpaid.contains(action.name()) || (due && fee > 0))
            .then(|| Planned::One(Work::new(action, if due { fee } else { 0 }, token, true)))
    };

    // The lease ended (another proof faulted it, or it closed) with challenges open: ours is
    // voided past its deadline, for its bond; nothing else is left to do on it.
    if l.ended {
        let (index, _) = l
            .challenges
            .iter()
            .find(|(_, c)| c.challenger == inp.me && now > c.deadline)?;
        let mut w = Work::new(Action::ProveUnavailable(id, *index), 0, token, false);
        w.returns = m.challenge_bond;
        return Some(Planned::One(w));
    }

    // A challenge nobody answered in time: the result is unavailable. The fault fee goes to the
    // challenger, or to whoever proves it once the challenger has left it a response window past
    // the fee's due time; the bond goes back to its challenger either way.
    if flags.challenge
        && let Some((index, c)) = l.challenges.iter().find(|(_, c)| now > c.deadline)
    {
        let ours = c.challenger == inp.me;
        let open_to_all = now
            > c.deadline
                .saturating_add(m.tenant_priority)
                .saturating_add(m.response_window);
        let earns = m.fee_due(c.deadline, now) && (ours || open_to_all);
        let action = Action::ProveUnavailable(id, *index);
        if !(inp.unpaid.contains(action.name()) || (earns && (fee > 0 || ours))) {
            // Waiting for the fee; nothing else can happen to the lease meanwhile.
            return None;
        }
        let mut w = Work::new(action, if earns { fee } else { 0 }, token, true);
        if ours {
            w.returns = m.challenge_bond;
        }
        return Some(Planned::One(w));
    }

    if let Some(c) = &l.closed {
        // Closed with its collateral held: only its faults are left, until the horizon.
        if now > c.at + clock.fault_horizon {
            return None;
        }
        if let Some(r) = &l.result {
            return (now <= hold_end(l, r, m))
                .then(|| result_work(id, l, r, m, now, flags, inp, fee, token))
                .flatten();
        }
        // A fault incurred before the close stays provable (MEC-05), but returns nothing to
        // the tenant, so it pays no fee: planned only when named unpaid.
        let live = inp.liveness.get(&l.provider).copied().unwrap_or_default();
        if flags.no_show && !l.acknowledged && c.at > l.start + m.start_window {
            return fault(Action::ProveNoShow(id), l.start + m.start_window);
        }
        if flags.missed_deadline && !l.service() && c.at > l.end + m.deadline_grace {
            return fault(Action::ProveMissedDeadline(id), l.end + m.deadline_grace);
        }
        if flags.stale_heartbeat
            && let Some(s) = l.stale_since
            && s < c.at
            && stale_state(s, &live, m.stale_grace, now) == Stale::Provable
        {
            return fault(Action::ProveStale(id), s + m.stale_grace);
        }
        return None;
    }

    if l.service() {
        return service_work(id, l, m, now, flags, inp, fee, token);
    }

    let Some(r) = &l.result else {
        // No result: only a fault ends it. A close would revert, and must never race the
        // missed-deadline proof (MEC-02), whatever the escrow covers.
        if flags.no_show && !l.acknowledged && now > l.start + m.start_window {
            return fault(Action::ProveNoShow(id), l.start + m.start_window);
        }
        if flags.missed_deadline && now > l.end + m.deadline_grace {
            return fault(Action::ProveMissedDeadline(id), l.end + m.deadline_grace);
        }
        return None;
    };
    if now <= hold_end(l, r, m) {
        return result_work(id, l, r, m, now, flags, inp, fee, token);
    }
    // The window is over: with no open challenge, anyone closes it as completed and earns the
    // keeper fee out of the pay. Its provider's node closes it first, for free (every 10 s): a
    // keeper is the fallback after the grace, never its rival in the same block (KB-02).
    if !flags.close
        || !l.challenges.is_empty()
        || l.checked == Some(Check::Wrong)
        || now <= hold_end(l, r, m).saturating_add(inp.close_grace)
    {
        return None;
    }
    let pay = held_pay(l, r, decimals(inp, l.token));
    Some(Planned::One(Work::new(
        Action::Close(id),
        bps(pay, u64::from(l.keeper_fee_bps)),
        l.token,
        false,
    )))
}

/// A held result inside its window: check it (again, while it could not be had a second time),
/// prove it wrong once the proof pays, or challenge a chunk of one that cannot be had.
#[allow(clippy::too_many_arguments)]
fn result_work(
    id: B256,
    l: &Lease,
    r: &Posted,
    m: &ModuleParams,
    now: u64,
    flags: Flags,
    inp: &Inputs,
    fee: u128,
    token: Address,
) -> Option<Planned> {
    let builtin = l.builtin();
    let checking = flags.challenge || (builtin && flags.verify);
    // A wrong or malformed result is provable since it was posted (`Results._postedAt`).
    let due = m.fee_due(r.at.min(l.end), now);
    let check =
        |reward| checking.then(|| Planned::One(Work::new(Action::Verify(id), reward, token, true)));
    match &l.checked {
        // Checked early whatever it pays: what it finds decides a challenge, which should not
        // wait. A proof found before its fee is due waits for it.
        None => check(if due { fee } else { 0 }),
        Some(Check::Missing { tries, .. }) if *tries < MISSING_TRIES => {
            check(if due { fee } else { 0 })
        }
        // Found wrong: checked again and proven once the proof pays (or at once when unpaid).
        Some(Check::Wrong) => (due && fee > 0 || inp.unpaid.contains(Action::Verify(id).name()))
            .then(|| check(if due { fee } else { 0 }))
            .flatten(),
        Some(Check::Correct | Check::Available) => None,
        Some(Check::Private(_)) if !flags.challenge_private => None,
        Some(Check::Private(_) | Check::Missing { .. } | Check::Mismatch(_)) => {
            // One challenge at a time, and none once the provider answered one: it holds its
            // data, and a second bond would most likely be lost too. The reward is the fee of
            // the unavailability proof it leads to (due after the response window and the
            // tenant's priority, both well inside the fault horizon).
            if !flags.challenge || l.answered || !l.challenges.is_empty() {
                return None;
            }
            let mut w = Work::new(Action::Challenge(id), fee, token, true);
            w.follow_up_gas = PROVE_UNAVAILABLE_GAS;
            w.at_risk = m.challenge_bond;
            Some(Planned::One(w))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn service_work(
    id: B256,
    l: &Lease,
    m: &ModuleParams,
    now: u64,
    flags: Flags,
    inp: &Inputs,
    fee: u128,
    token: Address,
) -> Option<Planned> {
    let fault = |action: Action, provable: u64| {
        let due = m.fee_due(provable, now);
        (inp.unpaid.contains(action.name()) || (due && fee > 0))
            .then(|| Planned::One(Work::new(action, if due { fee } else { 0 }, token, true)))
    };
    let live = inp.liveness.get(&l.provider).copied().unwrap_or_default();
    // A fault that pays (or will, once the tenant's priority has passed) is waited for: a close
    // now would end the lease and the fault with it. One that never pays does not hold up the
    // close.
    if flags.no_show && !l.acknowledged && now > l.start + m.start_window {
        let w = fault(Action::ProveNoShow(id), l.start + m.start_window);
        if w.is_some() || fee > 0 {
            return w;
        }
    }
    let mut reported = false;
    if flags.stale_heartbeat
        && let Some(since) = l.stale_since
    {
        match stale_state(since, &live, m.stale_grace, now) {
            Stale::Provable => {
                let w = fault(Action::ProveStale(id), since + m.stale_grace);
                if w.is_some() || fee > 0 {
                    return w;
                }
                reported = true;
            }
            // Reported and waiting for the grace: nothing else to do with it.
            Stale::Waiting => return None,
            // The provider came back in time: the report is void (a new lapse is reported anew).
            Stale::Void => {}
        }
    }
    let live_now = live.at != 0 && now <= live.at + live.period;
    // A provider without a fresh heartbeat on a lease whose end is more than the grace away:
    // report it (the proof after the grace pays for both). A lapse the end would cut short is not
    // reportable (`TooLateToReport`): the provider owes no heartbeat past its lease.
    if flags.stale_heartbeat
        && !live_now
        && now.saturating_add(m.stale_grace) < l.end
        && !reported
        && fee > 0
    {
        let mut w = Work::new(Action::ReportStale(id), fee, token, false);
        w.follow_up_gas = PROVE_STALE_GAS;
        return Some(Planned::One(w));
    }
    let owed = service_owed(l, &live, now, decimals(inp, l.token));
    let keeper_fee = bps(owed, u64::from(l.keeper_fee_bps));
    // Expired, ran dry, or lapsed (MEC-09: it pays up to the lapse, and refunds the rest).
    let exhausted = owed >= l.escrow;
    if flags.close && (now >= l.end || exhausted || lapsed(l, &live, now)) {
        return Some(Planned::One(Work::new(
            Action::Close(id),
            keeper_fee,
            l.token,
            false,
        )));
    }
    let min = inp.min_lease_fee.get(&l.token).copied().unwrap_or(0);
    (flags.settle && keeper_fee > 0 && keeper_fee >= min).then_some(Planned::Settle(keeper_fee))
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

/// `wei` in units of `token`.
pub fn wei_in(wei: u128, token: Address, policy: &Policy) -> u128 {
    let per_native = policy.native_price.get(&token).copied().unwrap_or(0);
    wei.saturating_mul(per_native) / 1_000_000_000_000_000_000
}

/// Gas cost of `price` in units of `token`.
pub fn cost_in(price: &Price, token: Address, policy: &Policy) -> u128 {
    wei_in(price.cost(), token, policy)
}

/// Whether `work` priced at `price` is worth sending (KB-01, KB-03): its reward (plus wei that
/// come back) must beat the gas of it and of the transaction it leads to, plus any bond at risk,
/// by the margin.
pub fn decide(work: &Work, price: &Price, policy: &Policy) -> Decision {
    let spend = price
        .cost()
        .saturating_add(u128::from(work.follow_up_gas).saturating_mul(price.gas_price))
        .saturating_add(work.at_risk);
    if !work.urgent {
        if price.gas_price > policy.max_gas_price {
            return Decision::Skip("gas-price-cap");
        }
        if spend > policy.budget_left {
            return Decision::Skip("hourly-budget");
        }
    }
    if policy.unpaid.contains(work.action.name()) {
        return Decision::Send;
    }
    let gain = work
        .reward
        .saturating_add(wei_in(work.returns, work.token, policy));
    let need = wei_in(spend, work.token, policy)
        .saturating_mul(10_000 + u128::from(policy.margin_bps))
        .div_ceil(10_000)
        .saturating_add(policy.min_profit.get(&work.token).copied().unwrap_or(0));
    if gain == 0 || gain < need {
        return Decision::Skip("unprofitable");
    }
    Decision::Send
}

/// The highest gas price (wei per gas) at which `work`, priced otherwise as `price`, is still worth
/// sending under `policy`: neither its first fee nor any bump of it pays more (KB-01). `price`
/// itself when it is not worth sending now; unbounded for urgent work done at any price.
pub fn fee_ceiling(work: &Work, price: &Price, policy: &Policy) -> u128 {
    let worth = |gas_price: u128| {
        let at = Price {
            gas_price,
            ..*price
        };
        decide(work, &at, policy) == Decision::Send
    };
    if !worth(price.gas_price) {
        return price.gas_price;
    }
    if worth(u128::MAX) {
        return u128::MAX;
    }
    // Worth it at `lo`, not at `hi`: what a gas price costs only grows with it.
    let (mut lo, mut hi) = (price.gas_price, u128::MAX);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if worth(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests;
