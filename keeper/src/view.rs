//! What the keeper knows about the market: open orders (and their on-chain bid), registered
//! providers (operator key and endpoint, from `Staking` logs), and running leases
//! with everything its strategies need (rate, settled-up-to, escrow, deadlines, acknowledgement,
//! posted result, stale report). Built only from logs, so it can be rebuilt from the deploy block
//! at any time; every update is idempotent (a page re-read after a crash or a reorg rewind gives
//! the same view), and a closed or cancelled id is remembered (until a rewind can no longer reach
//! back to it: [`View::forget`]) so a replayed older log can never bring it back.

use std::collections::HashMap;

use alloy::{
    primitives::{Address, B256, Bytes},
    rpc::types::Log,
    sol_types::{SolEventInterface, SolValue},
};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::MarketEvents,
    Results::{self, ResultsEvents},
    Staking::StakingEvents,
};
use serde::{Deserialize, Serialize};

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

/// A running lease.
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
    /// Order `jobKind`: 0 container, 1 built-in, 2 service.
    pub kind: u8,
    /// Provider stake locked for it.
    pub collateral: u128,
    /// 18-decimal token units per second.
    pub rate: u128,
    /// Lease start.
    pub start: u64,
    /// Lease end (for a batch lease: its result deadline, then its result time).
    pub end: u64,
    /// Keeper share of settled payment, bps.
    pub keeper_fee_bps: u16,
    /// Paid up to here.
    pub settled_at: u64,
    /// Escrow left (token units).
    pub escrow: u128,
    /// The provider acknowledged it.
    pub acknowledged: bool,
    /// Its posted result.
    pub result: Option<Posted>,
    /// A stale-heartbeat report's start.
    pub stale_since: Option<u64>,
    /// What checking its built-in result found.
    pub checked: Option<Check>,
}

/// A posted result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Merkle root.
    pub root: B256,
    /// Where it is served.
    pub uri: String,
    /// When (block time).
    pub at: u64,
}

/// Outcome of checking a built-in result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// C = A x B.
    Correct,
    /// Wrong: proven (or being proven).
    Wrong,
    /// Could not be checked (unreachable, or the bytes do not match the commitment).
    Unverifiable(String),
}

impl Lease {
    /// The result was posted: payment is held for the challenge window.
    pub fn held(&self) -> bool {
        self.result.is_some() && self.kind != 2
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
    /// The id is finished (closed, cancelled, faulted).
    Done(B256),
    /// A provider registered or changed its operator or metadata.
    Provider(Address),
}

/// Orders, leases, and finished ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Open orders.
    pub orders: HashMap<B256, Order>,
    /// Running leases.
    pub leases: HashMap<B256, Lease>,
    /// Closed, cancelled or faulted ids, with the block each finished in.
    pub done: HashMap<B256, u64>,
    /// Registered providers (owner address -> operator and metadata), from `Staking` logs.
    pub providers: HashMap<Address, Registered>,
}

impl View {
    /// Apply one log (of the market or results contract) mined at block time `time`; returns
    /// what changed.
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

    /// The provider whose registered operator is `operator`.
    pub fn provider_of(&self, operator: Address) -> Option<Address> {
        self.providers
            .iter()
            .find(|(_, r)| r.operator == operator)
            .map(|(p, _)| *p)
    }

    fn finish(&mut self, id: B256, block: u64) -> Option<Changed> {
        self.orders.remove(&id);
        self.leases.remove(&id);
        if self.done.contains_key(&id) {
            return None;
        }
        self.done.insert(id, block);
        Some(Changed::Done(id))
    }

    /// Forget the finished ids that finished before block `before` (returned, to delete from the
    /// store): logs that old are never read again (a reorg rewinds a cursor at most
    /// [`gridlease_core::logs::REORG_REWIND`] blocks), and an id's logs that could bring it back
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
                    collateral: l.collateral.to(),
                    rate: l.ratePerSecond.to(),
                    start: l.start.to(),
                    end: l.end.to(),
                    keeper_fee_bps: l.keeperFeeBps,
                    settled_at: l.start.to(),
                    escrow: t.deposit.to(),
                    acknowledged: false,
                    result: None,
                    stale_since: None,
                    checked: None,
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
            MarketEvents::LeaseClosed(c) => self.finish(c.leaseId, block),
            MarketEvents::OrderCancelled(c) => self.finish(c.orderId, block),
            MarketEvents::LeaseFaulted(f) => self.finish(f.leaseId, block),
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
                leaseId, root, uri, ..
            }) => {
                let l = self.leases.get_mut(&leaseId)?;
                if l.result.is_some() {
                    return None;
                }
                l.result = Some(Posted {
                    root,
                    uri,
                    at: time,
                });
                // A batch lease stops accruing at its result (Market.resultPosted).
                if l.kind != 2 {
                    l.end = time;
                }
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
            _ => None,
        }
    }
}
