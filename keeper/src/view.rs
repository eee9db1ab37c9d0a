//! What the keeper knows about the market: open orders (and their on-chain bid), registered
//! providers (operator key and endpoint, from `Staking` logs), and leases with everything its
//! strategies need: rate, paid-up-to and escrow of service leases, deadlines, acknowledgement,
//! posted result `(root, size)`, stale report, open data-availability challenges, and, for a
//! lease closed with its collateral held (protocol v2, §3.3), how it closed.
//!
//! Built only from logs, so it can be rebuilt from the deploy block at any time; every update is
//! idempotent in chain order (a page re-read after a crash, or a suffix re-read after a reorg
//! rewind, gives the same view: updates set values, they never count), and a finished id is
//! remembered (until a rewind can no longer reach back to it: [`View::forget`]) so a replayed
//! older log can never bring it back.

use std::collections::{BTreeMap, HashMap};

use alloy::{
    primitives::{Address, B256, Bytes},
    rpc::types::Log,
    sol_types::{SolEvent, SolEventInterface, SolValue},
};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::MarketEvents,
    Results::{self, ResultsEvents},
    Staking::{self, StakingEvents},
};
use gridlease_primitives::protocol::{CloseReason, JobKind};
use gridlease_workload::merkle::Commitment;
use serde::{Deserialize, Serialize};

/// `IMarket.CloseReason.Accepted`: the tenant accepted a held result inside its window.
pub const ACCEPTED: u8 = CloseReason::Accepted.code();
/// `IMarket.CloseReason.Lapsed`.
pub const LAPSED: u8 = CloseReason::Lapsed.code();

/// An order waiting for its award.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Who created it.
    pub tenant: Address,
    /// The ABI-encoded `OrderParams` (the lease keeps them: fault proofs quote them).
    pub terms: Bytes,
    /// First valid bid wins at once (nothing to award).
    pub instant: bool,
    /// Bids are accepted until this time inclusive.
    pub bidding_end: u64,
    /// Lowest on-chain bid: (provider, price per second).
    pub bid: Option<(Address, u128)>,
}

/// A provider as its latest `Staking` registration log describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// Its operator (hot) key: the one that signs its bids.
    pub operator: Address,
    /// Its `metadataURI`: where its node serves signed bids when it is an http(s) URL.
    pub uri: String,
}

impl Registered {
    /// The base URL of its node's API (`<endpoint>/bids/<order id>`), if `uri` is one.
    pub fn endpoint(&self) -> Option<&str> {
        let u = self.uri.trim();
        (u.starts_with("http://") || u.starts_with("https://")).then(|| u.trim_end_matches('/'))
    }
}

/// A lease: running, or closed with its collateral held for the fault horizon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The tenant.
    pub tenant: Address,
    /// The provider.
    pub provider: Address,
    /// ABI-encoded `OrderParams`.
    pub terms: Bytes,
    /// Payment token.
    pub token: Address,
    /// Order `jobKind` as on chain (read it with [`Lease::job_kind`]).
    pub kind: u8,
    /// Id of the results module the lease is bound to.
    pub module: u8,
    /// Provider stake locked for it.
    pub collateral: u128,
    /// 18-decimal token units per second.
    pub rate: u128,
    /// Lease start.
    pub start: u64,
    /// Lease end: a batch lease's result deadline (before its grace), a service lease's end.
    /// Fixed at the start (the market moves its own `end` to the end of a result's hold; the
    /// strategies compute that from [`Posted::at`]).
    pub end: u64,
    /// Keeper share of paid amounts, bps.
    pub keeper_fee_bps: u16,
    /// A service lease is paid up to here.
    pub settled_at: u64,
    /// Escrow left (token units): what a fault on the running lease refunds.
    pub escrow: u128,
    /// The provider acknowledged it (an instant order's own winning bid counts).
    pub acknowledged: bool,
    /// Its posted result.
    pub result: Option<Posted>,
    /// A stale-heartbeat report's start.
    pub stale_since: Option<u64>,
    /// Open data-availability challenges of its result, by chunk index.
    pub challenges: BTreeMap<u64, Challenged>,
    /// A challenge of its result was answered: the provider holds its data (not challenged again).
    pub answered: bool,
    /// How it closed, when the market holds its collateral after the close.
    pub closed: Option<Closed>,
    /// What checking its result found (not from logs: the keeper's own download).
    pub checked: Option<Check>,
    /// It ended (faulted, closed or released) with challenges of its result still open: kept
    /// only until they are voided (`proveUnavailable` past their deadline returns each bond to
    /// its challenger), or the fault horizon after their deadlines has passed. Before, the view
    /// dropped it at its end, and a challenge of ours that another proof overtook left our bond
    /// in the module.
    #[serde(default)]
    pub ended: bool,
}

/// A posted result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Root of its tree.
    pub root: B256,
    /// Its length in bytes.
    pub size: u64,
    /// Where it is served.
    pub uri: String,
    /// When (block time).
    pub at: u64,
}

impl Posted {
    /// The commitment `(root, size)` `Results` stores.
    pub fn commitment(&self) -> Commitment {
        Commitment {
            root: self.root,
            size: self.size,
        }
    }
}

/// An open data-availability challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenged {
    /// Who bonded it (the bond returns to it if nobody answers).
    pub challenger: Address,
    /// The chunk must be revealed by this time inclusive; after it the result is provably
    /// unavailable.
    pub deadline: u64,
}

/// A close that kept the collateral held (`LeaseClosed.held`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Close time: faults stay provable until it plus the market's fault horizon.
    pub at: u64,
    /// `IMarket.CloseReason`.
    pub reason: u8,
    /// Paid out of escrow at the close (for an accepted result: the tenant's loss should it fail).
    pub paid: u128,
}

/// Outcome of checking a posted result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// The served bytes are the committed result, and C = A x B (built-in jobs).
    Correct,
    /// The served bytes are the committed result (a container result, or a built-in one whose
    /// spec the keeper cannot read: only its availability was checked).
    Available,
    /// Proven (or being proven) wrong.
    Wrong,
    /// The keeper cannot check it, and that says nothing against the provider: a container
    /// result served only to its tenant (401/403), over another scheme than http(s), or too
    /// large to download here. Its availability is the tenant's to force (MEC-13).
    Private(String),
    /// Not served (unreachable, an error, a timeout) on `tries` attempts.
    Missing {
        /// Failed attempts so far that count: a later one counts only once
        /// `strategies.unavailable_after_s` have passed since the first.
        tries: u32,
        /// The last failure.
        why: String,
        /// When the first failed (unix seconds; 0: not known, from an older store).
        #[serde(default)]
        since: u64,
    },
    /// Served, but not the committed bytes.
    Mismatch(String),
}

impl Lease {
    /// The result was posted: pay is held for the challenge window.
    pub fn held(&self) -> bool {
        self.result.is_some() && !self.service()
    }

    /// The order's job kind (`None` for a byte the market never accepts).
    pub fn job_kind(&self) -> Option<JobKind> {
        JobKind::from_code(self.kind)
    }

    /// A service lease.
    pub fn service(&self) -> bool {
        self.job_kind() == Some(JobKind::Service)
    }

    /// A lease of the built-in verifiable workload (its result can be checked locally).
    pub fn builtin(&self) -> bool {
        self.job_kind() == Some(JobKind::MatmulI8)
    }

    /// The decoded terms.
    pub fn terms(&self) -> Option<OrderParams> {
        OrderParams::abi_decode(&self.terms).ok()
    }
}

/// An entry the view changed (to persist).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Changed {
    /// An order was added or updated.
    Order(B256),
    /// A lease was added or updated.
    Lease(B256),
    /// The id is finished (closed and released, cancelled, faulted).
    Done(B256),
    /// A provider registered or changed its operator or metadata (or, undone, is unknown).
    Provider(Address),
    /// The id is as the view has it in each map, whichever it is in (a reorg's undo).
    Restored(B256),
}

/// What an id (or a provider) was in the view before a log changed it: kept for the logs of the
/// last [`gridlease_chain::logs::REORG_REWIND`] blocks, so that logs a reorg took back are undone
/// before the new chain's are read (OFF-01).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prior {
    /// An order or lease id, in each of the maps it can be in.
    Id {
        /// The id.
        id: B256,
        /// Its open order.
        order: Option<Order>,
        /// Its lease.
        lease: Option<Box<Lease>>,
        /// The block it finished in.
        done: Option<u64>,
    },
    /// A provider's registration.
    Provider(Address, Option<Registered>),
}

/// Undo information of the view's last blocks (see [`Prior`]).
#[derive(Debug, Default)]
pub struct Undo {
    /// Block -> what the logs of that block found, first change of each key only, in order.
    blocks: BTreeMap<u64, Vec<Prior>>,
}

impl Undo {
    /// Record what `log` (mined in `block`) is about to change in `view`, unless that block
    /// already changed the same key.
    pub fn record(&mut self, view: &View, log: &Log, block: u64) {
        let Some(p) = view.prior(log) else { return };
        let seen = self.blocks.entry(block).or_default();
        let same = |q: &Prior| match (q, &p) {
            (Prior::Id { id: a, .. }, Prior::Id { id: b, .. }) => a == b,
            (Prior::Provider(a, _), Prior::Provider(b, _)) => a == b,
            _ => false,
        };
        if !seen.iter().any(same) {
            seen.push(p);
        }
    }

    /// Forget what blocks before `block` changed (no rewind reaches them).
    pub fn prune(&mut self, block: u64) {
        self.blocks = self.blocks.split_off(&block);
    }

    /// Undo in `view` what the logs of blocks `from` and later changed, latest first; returns
    /// what to persist.
    pub fn rewind(&mut self, view: &mut View, from: u64) -> Vec<Changed> {
        let undone = self.blocks.split_off(&from);
        let mut changed = Vec::new();
        for (_, priors) in undone.into_iter().rev() {
            for p in priors.into_iter().rev() {
                changed.push(view.restore(p));
            }
        }
        changed
    }
}

/// Orders, leases, and finished ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Open orders.
    pub orders: HashMap<B256, Order>,
    /// Running leases, and closed ones whose collateral the market still holds.
    pub leases: HashMap<B256, Lease>,
    /// Finished ids, with the block each finished in.
    pub done: HashMap<B256, u64>,
    /// Registered providers (owner address -> operator and metadata), from `Staking` logs.
    pub providers: HashMap<Address, Registered>,
}

impl View {
    /// Apply one log (of the market, a results module or staking) mined at block time `time`;
    /// returns what changed.
    pub fn apply(&mut self, log: &Log, time: u64) -> Option<Changed> {
        if let Ok(e) = MarketEvents::decode_log(&log.inner) {
            return self.market(e.data, log.block_number.unwrap_or(0));
        }
        if let Ok(e) = ResultsEvents::decode_log(&log.inner) {
            return self.results(e.data, time);
        }
        if let Ok(e) = StakingEvents::decode_log(&log.inner) {
            let (provider, r) = match e.data {
                StakingEvents::ProviderRegistered(p) => (
                    p.provider,
                    Registered {
                        operator: p.operator,
                        uri: p.metadataURI,
                    },
                ),
                StakingEvents::ProviderUpdated(p) => (
                    p.provider,
                    Registered {
                        operator: p.operator,
                        uri: p.metadataURI,
                    },
                ),
                _ => return None,
            };
            // Logs are applied in chain order, so the latest wins; a re-read changes nothing.
            let old = self.providers.insert(provider, r.clone());
            return (old.as_ref() != Some(&r)).then_some(Changed::Provider(provider));
        }
        None
    }

    /// What `log` may change, as the view has it now: the id its first topic names (every
    /// market and results event the keeper reads has one), or the provider a registration names.
    pub fn prior(&self, log: &Log) -> Option<Prior> {
        let topics = log.topics();
        let key = *topics.get(1)?;
        let registration = [
            Staking::ProviderRegistered::SIGNATURE_HASH,
            Staking::ProviderUpdated::SIGNATURE_HASH,
        ];
        if registration.contains(&topics[0]) {
            let provider = Address::from_word(key);
            return Some(Prior::Provider(
                provider,
                self.providers.get(&provider).cloned(),
            ));
        }
        Some(Prior::Id {
            id: key,
            order: self.orders.get(&key).cloned(),
            lease: self.leases.get(&key).cloned().map(Box::new),
            done: self.done.get(&key).copied(),
        })
    }

    /// Put back what `prior` recorded; what to persist.
    pub fn restore(&mut self, prior: Prior) -> Changed {
        fn put<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>, k: K, v: Option<V>) {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        match prior {
            Prior::Id {
                id,
                order,
                lease,
                done,
            } => {
                put(&mut self.orders, id, order);
                put(&mut self.leases, id, lease.map(|l| *l));
                put(&mut self.done, id, done);
                Changed::Restored(id)
            }
            Prior::Provider(provider, r) => {
                put(&mut self.providers, provider, r);
                Changed::Provider(provider)
            }
        }
    }

    /// The provider whose registered operator is `operator`.
    pub fn provider_of(&self, operator: Address) -> Option<Address> {
        self.providers
            .iter()
            .find(|(_, r)| r.operator == operator)
            .map(|(p, _)| *p)
    }

    /// Leases running now (not closed).
    pub fn running(&self) -> usize {
        self.leases
            .values()
            .filter(|l| l.closed.is_none() && !l.ended)
            .count()
    }

    /// Leases closed with their collateral held (faults on them still provable).
    pub fn held_closed(&self) -> usize {
        self.leases
            .values()
            .filter(|l| l.closed.is_some() && !l.ended)
            .count()
    }

    /// The id ended: it is finished, unless challenges of its result are still open (then it is
    /// kept, [`Lease::ended`], until they are voided).
    fn finish(&mut self, id: B256, block: u64) -> Option<Changed> {
        self.orders.remove(&id);
        if let Some(l) = self.leases.get_mut(&id)
            && (l.ended || !l.challenges.is_empty())
        {
            // Finished by `expire` once none is open (an end read again changes nothing).
            return (!l.ended).then(|| {
                l.ended = true;
                Changed::Lease(id)
            });
        }
        self.finish_now(id, block)
    }

    /// Challenge `index` of the ended lease `id` is no longer open on chain: forget it (the lease
    /// is finished by the next [`View::expire`] once none is left). An unavailable proof that
    /// faults the lease ends the challenge it proves without a log naming the chunk
    /// (`LeaseFaulted` and `FaultProven` name the lease), so the view learns it from the chain
    /// (`NoChallenge` when voiding it).
    pub fn challenge_gone(&mut self, id: B256, index: u64) -> Option<Changed> {
        let l = self.leases.get_mut(&id)?;
        if !l.ended {
            return None;
        }
        l.challenges.remove(&index)?;
        Some(Changed::Lease(id))
    }

    fn finish_now(&mut self, id: B256, block: u64) -> Option<Changed> {
        self.leases.remove(&id);
        if self.done.contains_key(&id) {
            return None;
        }
        self.done.insert(id, block);
        Some(Changed::Done(id))
    }

    /// Finish the closed leases whose fault horizon (`horizon` seconds after the close) is over
    /// at chain time `now`, as of `block`: nothing can be proven on them any more, and their
    /// release (`releaseHeld`) is the provider's business, so the view does not keep them
    /// (KB-06). A re-read of their close finds them finished.
    ///
    /// An ended lease is finished once no challenge of it is open, and when some are (not the
    /// keeper's own: it voids those at their deadline), the horizon after the last of their
    /// deadlines. (Not as its last challenge is voided: a suffix of logs read again, with that
    /// void's before the challenge of the same chunk again, must give the same view.)
    pub fn expire(&mut self, now: u64, horizon: u64, block: u64) -> Vec<Changed> {
        let old: Vec<B256> = self
            .leases
            .iter()
            .filter(|(_, l)| {
                if l.ended {
                    let last = l.challenges.values().map(|c| c.deadline).max();
                    last.is_none_or(|d| now > d.saturating_add(horizon))
                } else {
                    l.closed.as_ref().is_some_and(|c| now > c.at + horizon)
                }
            })
            .map(|(id, _)| *id)
            .collect();
        old.into_iter()
            .filter_map(|id| self.finish_now(id, block))
            .collect()
    }

    /// Forget the finished ids that finished before block `before` (returned, to delete from the
    /// store): logs that old are never read again (a reorg rewinds a cursor at most
    /// [`gridlease_chain::logs::REORG_REWIND`] blocks), and an id's logs that could bring it back
    /// are older still, so memory does not grow with every lease the market ever had (KB-06).
    pub fn forget(&mut self, before: u64) -> Vec<B256> {
        let old: Vec<B256> = self
            .done
            .iter()
            .filter(|(_, b)| **b < before)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            self.done.remove(id);
        }
        old
    }

    fn market(&mut self, e: MarketEvents, block: u64) -> Option<Changed> {
        match e {
            MarketEvents::OrderCreated(o) => {
                if self.done.contains_key(&o.orderId) || self.leases.contains_key(&o.orderId) {
                    return None;
                }
                let order = Order {
                    tenant: o.tenant,
                    instant: o.params.instant,
                    terms: o.params.abi_encode().into(),
                    bidding_end: o.biddingEnd.to(),
                    bid: None,
                };
                let old = self.orders.insert(o.orderId, order.clone());
                // A re-read keeps the bid seen after it.
                if let Some(old) = old {
                    self.orders.insert(
                        o.orderId,
                        Order {
                            bid: old.bid,
                            ..order
                        },
                    );
                    return None;
                }
                Some(Changed::Order(o.orderId))
            }
            MarketEvents::BidPlaced(b) => {
                let o = self.orders.get_mut(&b.orderId)?;
                let bid = Some((b.provider, b.pricePerSecond.to::<u128>()));
                (o.bid != bid).then(|| {
                    o.bid = bid;
                    Changed::Order(b.orderId)
                })
            }
            MarketEvents::LeaseStarted(l) => {
                if self.done.contains_key(&l.orderId) || self.leases.contains_key(&l.orderId) {
                    return None;
                }
                let o = self.orders.remove(&l.orderId)?;
                let t = OrderParams::abi_decode(&o.terms).ok()?;
                let lease = Lease {
                    tenant: l.tenant,
                    provider: l.provider,
                    token: t.token,
                    kind: t.jobKind,
                    module: l.module,
                    collateral: l.collateral.to(),
                    rate: l.ratePerSecond.to(),
                    start: l.start.to(),
                    end: l.end.to(),
                    keeper_fee_bps: l.keeperFeeBps,
                    settled_at: l.start.to(),
                    escrow: t.deposit.to(),
                    // An instant order is won by the provider's own bid transaction, which
                    // acknowledges the lease; an award by anyone else (a signed bid, a closed
                    // auction) must be acknowledged within the start window.
                    acknowledged: o.instant && !l.signedBid,
                    result: None,
                    stale_since: None,
                    challenges: BTreeMap::new(),
                    answered: false,
                    closed: None,
                    checked: None,
                    ended: false,
                    terms: o.terms,
                };
                self.leases.insert(l.orderId, lease);
                Some(Changed::Lease(l.orderId))
            }
            MarketEvents::LeaseSettled(s) => {
                let l = self.leases.get_mut(&s.leaseId)?;
                let at = s.settledAt.to::<u64>();
                // Settlements only move forward: an older one re-read after a rewind is ignored.
                (at > l.settled_at).then(|| {
                    l.settled_at = at;
                    l.escrow = s.escrowLeft.to();
                    Changed::Lease(s.leaseId)
                })
            }
            MarketEvents::ToppedUp(t) => {
                let l = self.leases.get_mut(&t.leaseId)?;
                let escrow = t.escrow.to::<u128>();
                (escrow != l.escrow).then(|| {
                    l.escrow = escrow;
                    Changed::Lease(t.leaseId)
                })
            }
            MarketEvents::LeaseClosed(c) if c.held => {
                // Closed, but a fault on it may still be proven within the fault horizon.
                let l = self.leases.get_mut(&c.leaseId)?;
                let closed = Some(Closed {
                    at: c.closedAt.to(),
                    reason: c.reason,
                    paid: c.paid.to(),
                });
                (l.closed != closed).then(|| {
                    l.closed = closed;
                    l.escrow = 0;
                    Changed::Lease(c.leaseId)
                })
            }
            MarketEvents::LeaseClosed(c) => self.finish(c.leaseId, block),
            MarketEvents::OrderCancelled(c) => self.finish(c.orderId, block),
            MarketEvents::LeaseFaulted(f) => self.finish(f.leaseId, block),
            MarketEvents::HeldReleased(r) => self.finish(r.leaseId, block),
            _ => None,
        }
    }

    fn results(&mut self, e: ResultsEvents, time: u64) -> Option<Changed> {
        match e {
            ResultsEvents::LeaseAcknowledged(a) => {
                let l = self.leases.get_mut(&a.leaseId)?;
                (!l.acknowledged).then(|| {
                    l.acknowledged = true;
                    Changed::Lease(a.leaseId)
                })
            }
            ResultsEvents::ResultPosted(Results::ResultPosted {
                leaseId,
                root,
                size,
                uri,
                ..
            }) => {
                let l = self.leases.get_mut(&leaseId)?;
                if l.result.is_some() {
                    return None;
                }
                l.result = Some(Posted {
                    root,
                    size,
                    uri,
                    at: time,
                });
                // Posting acknowledges the lease (Market.resultPosted).
                l.acknowledged = true;
                Some(Changed::Lease(leaseId))
            }
            ResultsEvents::StaleReported(r) => {
                let l = self.leases.get_mut(&r.leaseId)?;
                let since = Some(r.since.to::<u64>());
                (l.stale_since != since).then(|| {
                    l.stale_since = since;
                    Changed::Lease(r.leaseId)
                })
            }
            ResultsEvents::ChunkChallenged(c) => {
                let l = self.leases.get_mut(&c.leaseId)?;
                let index = u64::try_from(c.index).ok()?;
                let open = Challenged {
                    challenger: c.challenger,
                    deadline: c.deadline.to(),
                };
                (l.challenges.insert(index, open) != Some(open))
                    .then_some(Changed::Lease(c.leaseId))
            }
            ResultsEvents::ChunkRevealed(r) => {
                let l = self.leases.get_mut(&r.leaseId)?;
                let index = u64::try_from(r.index).ok()?;
                let gone = l.challenges.remove(&index).is_some();
                let first = !l.answered;
                l.answered = true;
                (gone || first).then_some(Changed::Lease(r.leaseId))
            }
            ResultsEvents::ChallengeVoided(v) => {
                let l = self.leases.get_mut(&v.leaseId)?;
                let index = u64::try_from(v.index).ok()?;
                l.challenges
                    .remove(&index)
                    .map(|_| Changed::Lease(v.leaseId))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{
            U256,
            aliases::{U48, U96},
        },
        sol_types::SolEvent,
    };
    use gridlease_bindings::Market;

    use super::*;

    fn log<E: SolEvent>(e: &E, block: u64) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: Address::repeat_byte(0xaa),
                data: e.encode_log_data(),
            },
            block_number: Some(block),
            ..Default::default()
        }
    }

    fn params(instant: bool, kind: u8) -> OrderParams {
        OrderParams {
            specHash: B256::repeat_byte(1),
            specURI: "data:,x".into(),
            token: Address::repeat_byte(0x70),
            deposit: U96::from(40_000_000u64),
            maxPricePerSecond: U96::from(10u64),
            maxDuration: 3_600,
            bidWindow: 5,
            collateral: U96::from(10u64),
            gpuClass: 0,
            gpuCount: 1,
            vramGiB: 8,
            cpuCores: 1,
            ramGiB: 1,
            jobKind: kind,
            instant,
            salt: B256::ZERO,
        }
    }

    fn started(id: B256, signed: bool) -> Market::LeaseStarted {
        Market::LeaseStarted {
            orderId: id,
            provider: Address::repeat_byte(2),
            tenant: Address::repeat_byte(1),
            ratePerSecond: U96::from(10u64),
            collateral: U96::from(10u64),
            start: U48::from(1_000u64),
            end: U48::from(4_600u64),
            protocolFeeBps: 100,
            keeperFeeBps: 10,
            signedBid: signed,
            module: 1,
        }
    }

    /// Two leases' lives as logs (with their block times): a held result challenged, answered,
    /// challenged again, accepted, and faulted by another proof with that challenge still open,
    /// which is then voided; a service lease acknowledged, settled, topped up, reported stale and
    /// faulted.
    fn history() -> Vec<(Log, u64)> {
        let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
        let tenant = Address::repeat_byte(1);
        let mut out = Vec::new();
        let mut push = |l: Log, t: u64| out.push((l, t));
        push(
            log(
                &Market::OrderCreated {
                    orderId: a,
                    tenant,
                    token: Address::repeat_byte(0x70),
                    params: params(true, 0),
                    biddingEnd: U48::from(1_060u64),
                },
                1,
            ),
            1_000,
        );
        push(log(&started(a, false), 2), 1_000);
        push(
            log(
                &Market::OrderCreated {
                    orderId: b,
                    tenant,
                    token: Address::repeat_byte(0x70),
                    params: params(false, 2),
                    biddingEnd: U48::from(1_005u64),
                },
                3,
            ),
            1_000,
        );
        push(
            log(
                &Market::BidPlaced {
                    orderId: b,
                    provider: Address::repeat_byte(2),
                    pricePerSecond: U96::from(9u64),
                },
                4,
            ),
            1_001,
        );
        push(log(&started(b, false), 5), 1_006);
        push(
            log(
                &Results::ResultPosted {
                    leaseId: a,
                    provider: Address::repeat_byte(2),
                    root: B256::repeat_byte(7),
                    size: 5_000,
                    uri: "http://node/results/a".into(),
                    metaHash: B256::ZERO,
                },
                6,
            ),
            1_500,
        );
        let challenged = |index: u64, deadline: u64| Results::ChunkChallenged {
            leaseId: a,
            challenger: Address::repeat_byte(3),
            index: U256::from(index),
            deadline: U48::from(deadline),
        };
        push(log(&challenged(2, 2_100), 7), 1_500);
        push(
            log(
                &Results::ChunkRevealed {
                    leaseId: a,
                    index: U256::from(2u64),
                    chunk: Bytes::from_static(b"chunk"),
                },
                8,
            ),
            1_600,
        );
        push(log(&challenged(2, 2_300), 9), 1_700);
        push(
            log(
                &Results::LeaseAcknowledged {
                    leaseId: b,
                    provider: Address::repeat_byte(2),
                    secondsAfterStart: 30,
                },
                10,
            ),
            1_036,
        );
        push(
            log(
                &Market::LeaseSettled {
                    leaseId: b,
                    amount: U96::from(5u64),
                    settledAt: U48::from(1_500u64),
                    escrowLeft: U96::from(39_999_995u64),
                },
                11,
            ),
            1_500,
        );
        push(
            log(
                &Market::ToppedUp {
                    leaseId: b,
                    amount: U96::from(5u64),
                    escrow: U96::from(40_000_000u64),
                },
                12,
            ),
            1_501,
        );
        push(
            log(
                &Results::StaleReported {
                    leaseId: b,
                    provider: Address::repeat_byte(2),
                    since: U48::from(1_600u64),
                },
                13,
            ),
            1_600,
        );
        push(
            log(
                &Market::LeaseClosed {
                    leaseId: a,
                    reason: ACCEPTED,
                    paid: U96::from(5_000u64),
                    toProvider: U96::from(4_950u64),
                    protocolFee: U96::from(50u64),
                    keeperFee: U96::ZERO,
                    refund: U96::from(1u64),
                    closedAt: U48::from(1_800u64),
                    held: true,
                },
                14,
            ),
            1_800,
        );
        push(
            log(
                &Market::LeaseFaulted {
                    leaseId: b,
                    provider: Address::repeat_byte(2),
                    kind: B256::ZERO,
                    reporter: Address::repeat_byte(3),
                    slashed: U256::from(10u64),
                    refund: U96::from(1u64),
                    fee: U96::ZERO,
                    compensation: U256::ZERO,
                },
                15,
            ),
            1_700,
        );
        push(
            log(
                &Market::LeaseFaulted {
                    leaseId: a,
                    provider: Address::repeat_byte(2),
                    kind: B256::ZERO,
                    reporter: Address::repeat_byte(3),
                    slashed: U256::from(10u64),
                    refund: U96::from(5_000u64),
                    fee: U96::ZERO,
                    compensation: U256::ZERO,
                },
                16,
            ),
            1_900,
        );
        push(
            log(
                &Results::ChallengeVoided {
                    leaseId: a,
                    index: U256::from(2u64),
                },
                17,
            ),
            2_400,
        );
        out
    }

    #[test]
    fn every_v2_event_lands_where_the_strategies_read_it() {
        let mut v = View::default();
        let h = history();
        for (l, t) in &h[..9] {
            v.apply(l, *t);
        }
        let a = &v.leases[&B256::repeat_byte(0xa)];
        // The instant order's own bid acknowledged it; the auction's award did not.
        assert!(a.acknowledged);
        assert!(!v.leases[&B256::repeat_byte(0xb)].acknowledged);
        let r = a.result.as_ref().expect("posted");
        assert_eq!((r.size, r.at, a.end), (5_000, 1_500, 4_600));
        // Answered once, challenged again at the same chunk.
        assert!(a.answered);
        assert_eq!(a.challenges[&2].deadline, 2_300);
        let (a_id, last) = (B256::repeat_byte(0xa), h.len() - 2);
        for (l, t) in &h[9..last] {
            v.apply(l, *t);
        }
        let a = &v.leases[&a_id];
        // Accepted with the collateral held: kept, with what the tenant paid.
        assert_eq!(
            a.closed,
            Some(Closed {
                at: 1_800,
                reason: ACCEPTED,
                paid: 5_000
            })
        );
        assert_eq!((v.running(), v.held_closed()), (0, 1));
        assert!(v.done.contains_key(&B256::repeat_byte(0xb)));
        // Past the fault horizon it is finished.
        let mut expired = v.clone();
        assert!(expired.expire(1_800 + 100, 100, 20).is_empty());
        assert_eq!(
            expired.expire(1_800 + 101, 100, 20),
            vec![Changed::Done(a_id)]
        );
        assert!(expired.leases.is_empty());

        // Faulted by another proof while challenge 2 is open: kept, ended, until it is voided (its
        // bond goes back to its challenger then). Before, it was dropped at the fault.
        assert_eq!(v.apply(&h[last].0, h[last].1), Some(Changed::Lease(a_id)));
        assert!(v.leases[&a_id].ended && !v.done.contains_key(&a_id));
        assert_eq!((v.running(), v.held_closed()), (0, 0));
        // Never voided by anyone: finished the horizon after the challenge's deadline.
        let mut expired = v.clone();
        assert!(expired.expire(2_300 + 100, 100, 20).is_empty());
        assert_eq!(
            expired.expire(2_300 + 101, 100, 20),
            vec![Changed::Done(a_id)]
        );
        // Gone on chain without a log naming it (an unavailable proof that faulted the lease).
        let mut gone = v.clone();
        assert_eq!(gone.challenge_gone(a_id, 3), None);
        assert_eq!(gone.challenge_gone(a_id, 2), Some(Changed::Lease(a_id)));
        assert_eq!(gone.expire(1_901, 100, 20), vec![Changed::Done(a_id)]);
        // Voided: finished at the next look.
        assert_eq!(
            v.apply(&h[last + 1].0, h[last + 1].1),
            Some(Changed::Lease(a_id))
        );
        assert_eq!(v.expire(2_401, 100, 20), vec![Changed::Done(a_id)]);
        assert!(v.leases.is_empty() && v.done.contains_key(&a_id));
    }

    #[test]
    fn re_reading_any_suffix_of_the_logs_gives_the_same_view() {
        let h = history();
        for upto in 0..=h.len() {
            let mut once = View::default();
            for (l, t) in &h[..upto] {
                once.apply(l, *t);
            }
            // A crash after any page, or a reorg rewind to any earlier point, re-reads a suffix.
            for from in 0..=upto {
                let mut again = once.clone();
                for (l, t) in &h[from..upto] {
                    again.apply(l, *t);
                }
                assert_eq!(again, once, "re-reading logs {from}..{upto}");
            }
        }
    }

    /// OFF-01: the logs of blocks a reorg took back are undone. For every block the chain could
    /// be cut at, undoing the blocks from there on gives the view of the chain without them (as
    /// the keeper's store holds it too), and reading another chain's logs after that gives the
    /// view of that chain. Before, the undone blocks' challenges, acknowledgements and closes
    /// stayed in the view.
    #[test]
    fn off_01_undoing_reorged_blocks_gives_the_view_of_the_chain_without_them() {
        let h = history();
        let block = |l: &Log| l.block_number.unwrap_or_default();
        let last = h.iter().map(|(l, _)| block(l)).max().unwrap_or_default();
        let dir = tempfile::tempdir().expect("tempdir");
        for from in 0..=last + 1 {
            let mut store =
                crate::store::Store::open(&dir.path().join(format!("k{from}.db"))).expect("store");
            let (mut v, mut undo) = (View::default(), Undo::default());
            for (l, t) in &h {
                undo.record(&v, l, block(l));
                let changed: Vec<Changed> = v.apply(l, *t).into_iter().collect();
                store
                    .commit(&v, &changed, (block(l), B256::ZERO))
                    .expect("commit");
            }
            let mut without = View::default();
            for (l, t) in h.iter().filter(|(l, _)| block(l) < from) {
                without.apply(l, *t);
            }
            let changed = undo.rewind(&mut v, from);
            assert_eq!(v, without, "undone from block {from}");
            store.save(&v, &changed).expect("save");
            assert_eq!(
                store.load().expect("load").0,
                without,
                "stored, from {from}"
            );
            // The new chain's blocks: here, the old ones again, read as new.
            for (l, t) in h.iter().filter(|(l, _)| block(l) >= from) {
                undo.record(&v, l, block(l));
                v.apply(l, *t);
            }
            let mut all = View::default();
            for (l, t) in &h {
                all.apply(l, *t);
            }
            assert_eq!(v, all, "read again from {from}");
        }
    }
}
