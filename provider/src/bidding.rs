//! Bidding: which orders get a bid, at what price, and sending it.
//!
//! [`decide`] is the strategy, pure: given an order's terms, a [`Snapshot`] of what the node holds
//! and its pricing, a [`Decision`] (built on [`crate::pricing::evaluate`]). The rest is effectful:
//! for an order worth a bid the spec is fetched and checked against its hash, and only workloads
//! an executor runs get one. A spec the node must download is fetched beside the poll
//! ([`crate::specs::SpecFetches`]) and the order kept meanwhile, so a tenant's slow server holds
//! back neither other orders nor the acknowledgements and challenge answers read in the same
//! poll; the bid is then sent through the shared transaction manager (or, in
//! `bidding.mode = "signed"`, signed and kept for keepers), its job row reserving the slot, GPUs
//! and stake it promises (PD-01) until its lease or the order's end settles it. A bid the RPC
//! failed to take (nothing reached a node) frees its row, and the order is looked at again at the
//! next poll while its bid window is open (OFF-10).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, aliases::U96},
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent, SolValue},
};
use anyhow::{Context, Result};
use gridlease_bindings::{IMarket::OrderParams, Market, Staking};
use gridlease_chain::{ChainError, classify, logs};
use gridlease_daemon::{
    lock,
    txm::{Outcome, Signed},
};
use gridlease_primitives::spec::RunSpec;
use tracing::{debug, error, info, warn};

use crate::{
    config::Pricing,
    earnings::earnings,
    pricing::{Ask, Offer, Skip, evaluate},
    shared::{Shared, terms},
    state::{Job, JobState, Set},
    tx::{journal, mined},
    unix_now,
};

/// Most orders kept for another look (the store's `deferred` table).
pub(crate) const DEFERRED_MAX: usize = 10_000;

/// The spec of order `o` when it is at hand: read now when it needs no network, taken from
/// [`crate::specs::SpecFetches`] once downloaded; `None` while it downloads (one download is
/// started).
async fn spec_of(s: &Arc<Shared>, o: &Market::OrderCreated) -> Option<Result<RunSpec, String>> {
    let (id, p) = (o.orderId, &o.params);
    let uri = p.specURI.trim_start();
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Some(crate::specs::spec_for(&s.builtin.fetcher, &s.cfg.data_dir, id, p).await);
    }
    {
        let mut got = lock(&s.spec_fetches.got);
        match got.get(&id) {
            Some(Some(_)) => return got.remove(&id).flatten(),
            Some(None) => return None,
            None if got.len() >= crate::specs::SPEC_FETCHES_MAX => {
                // Bounded: downloads never looked at again (orders that were not kept) go.
                got.retain(|_, r| r.is_none());
                if got.len() >= crate::specs::SPEC_FETCHES_MAX {
                    return Some(Err("too many specs downloading; the order passes".into()));
                }
            }
            None => {}
        }
        got.insert(id, None);
    }
    let (s2, p) = (s.clone(), p.clone());
    s.tracker.spawn(async move {
        let r = match s2.spec_fetches.slots.clone().acquire_owned().await {
            Ok(_turn) => tokio::time::timeout(
                crate::specs::SPEC_TIMEOUT,
                crate::specs::spec_for(&s2.builtin.fetcher, &s2.cfg.data_dir, id, &p),
            )
            .await
            .unwrap_or_else(|_| Err("the spec download timed out".into())),
            Err(_) => Err("stopping".into()),
        };
        lock(&s2.spec_fetches.got).insert(id, Some(r));
    });
    None
}

/// Job slots, GPUs and stake already promised (live jobs, open bids), read once per page of logs
/// and updated with each bid sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    /// Job slots taken (bids, leases, running jobs).
    pub busy: u32,
    /// GPUs asked by the jobs that take a slot (each holds its own while it runs).
    pub gpus: u32,
    /// Collateral the open bids would lock that the market does not hold yet.
    pub pending_collateral: u128,
}

pub(crate) fn budget(s: &Shared) -> Result<Budget> {
    Ok(promised(&s.db().live()?))
}

/// What the `live` jobs promise. A signed bid (placed by a keeper or not: the node cannot tell),
/// or an on-chain bid not yet mined, reserves its collateral here; a mined on-chain bid's
/// collateral is locked by the market (AFR-01), so it is already out of the free stake the chain
/// reports, and is not counted twice. Once outbid, the market frees it and it is not counted at
/// all.
fn promised(live: &[Job]) -> Budget {
    let slots = || live.iter().filter(|j| j.state.occupies_slot());
    Budget {
        busy: slots().count() as u32,
        gpus: slots()
            .filter_map(terms)
            .map(|t| u32::from(t.gpuCount))
            .sum(),
        pending_collateral: live
            .iter()
            .filter(|j| j.state == JobState::Bid && !(j.tx.is_some() && j.raw.is_none()))
            .filter_map(terms)
            .map(|t| t.collateral.to::<u128>())
            .sum(),
    }
}

/// What the node holds when it looks at an order: its offer as last read from the chain
/// (registered capacity, free stake, the market minimum), the job kinds its executors run, what
/// live jobs and open bids already promise, and the payment tokens it knows.
#[derive(Clone, Debug)]
pub struct Snapshot<'a> {
    /// The registered offer, refreshed each poll (slots, held GPUs and stake before `promised`).
    pub offer: Offer,
    /// Job kinds the executors run (bit per kind byte).
    pub kinds: u8,
    /// Slots, GPUs and stake already promised.
    pub promised: Budget,
    /// Payment token decimals by token address.
    pub tokens: &'a HashMap<Address, u8>,
}

/// What to do with an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Bid `price` per second; the bid holds a slot, `gpus` GPUs and `collateral` of free stake.
    Bid {
        /// Price per second, in the payment token's 18-decimal units.
        price: u128,
        /// GPUs the order asks (held while the bid or its lease lives).
        gpus: u32,
        /// Stake the lease locks.
        collateral: u128,
    },
    /// No bid, for `reason`.
    Skip {
        /// Why not.
        reason: Skip,
        /// Skipped only for want of capacity (slots, GPUs, stake): worth another look once
        /// jobs end.
        full: bool,
    },
}

/// Decide on an order with terms `order`: the price to bid, or why not. Pure: `snapshot` and
/// `pricing` are all it reads, so the node's whole bidding policy is tested here without a chain.
pub fn decide(
    order: &OrderParams,
    snapshot: &Snapshot<'_>,
    pricing: &BTreeMap<String, Pricing>,
) -> Decision {
    let promised = snapshot.promised;
    let offer = {
        let mut o = snapshot.offer.clone();
        o.kinds = snapshot.kinds;
        o.free_slots = o.slots.saturating_sub(promised.busy);
        o.held_gpus = promised.gpus;
        o.free_stake = o.free_stake.saturating_sub(promised.pending_collateral);
        o
    };
    let ask = Ask {
        gpu_class: order.gpuClass,
        gpu_count: order.gpuCount,
        vram_gib: order.vramGiB,
        job_kind: order.jobKind,
        cpu_cores: order.cpuCores,
        ram_gib: order.ramGiB,
        max_price: order.maxPricePerSecond.to::<u128>(),
        collateral: order.collateral.to::<u128>(),
        token_decimals: snapshot.tokens.get(&order.token).copied(),
    };
    match evaluate(&ask, &offer, pricing) {
        Ok(price) => Decision::Bid {
            price,
            gpus: u32::from(ask.gpu_count),
            collateral: ask.collateral,
        },
        Err(reason) => {
            let full = matches!(
                reason,
                Skip::Busy(_) | Skip::GpusBusy { .. } | Skip::Stake { .. }
            );
            Decision::Skip { reason, full }
        }
    }
}

/// Why a service cannot have host port `port` here, if it cannot: below 1024 (privileged), the
/// node's own API port (`api`), the port of a service the node has bid on or runs (`live`), or
/// one something on the host holds now. A service is published on its own port: sold twice, the
/// second would never start while its tenant paid for it.
pub fn port_taken(port: u16, api: u16, live: impl IntoIterator<Item = RunSpec>) -> Option<String> {
    if port < 1024 {
        return Some("ports below 1024 are not published".into());
    }
    if port == api {
        return Some("the node's own API port".into());
    }
    let sold = live.into_iter().any(|spec| {
        matches!(spec.workload, gridlease_primitives::spec::Workload::Service { port: p, .. } if p == port)
    });
    if sold {
        return Some("another lease's service has it".into());
    }
    std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port))
        .err()
        .map(|e| format!("held on this host: {e}"))
}

/// Keep order `o` for another look (the store's `deferred` table, bounded by [`DEFERRED_MAX`]);
/// whether it was kept.
fn keep(s: &Shared, o: &Market::OrderCreated) -> Result<bool> {
    let log = o.encode_log_data();
    Ok(s.db().defer(
        o.orderId,
        o.biddingEnd.to::<u64>(),
        log.topics(),
        &log.data,
        DEFERRED_MAX,
    )?)
}

/// Decide on order `o` and bid when it fits (`again`: a deferred order looked at once more).
/// Returns whether it is kept for another look (skipped only for want of capacity).
pub(crate) async fn on_order(
    s: &Arc<Shared>,
    o: Market::OrderCreated,
    seen: Instant,
    b: &mut Option<Budget>,
    again: bool,
) -> Result<bool> {
    let id = o.orderId;
    if s.stop.is_cancelled() {
        // Stopping: no bid now, and nothing dropped either. A kept order stays kept and a new one
        // is kept, so the next start looks at it while its window is open (the cursor has moved
        // past its log). Answering "not kept" here used to delete a kept order whenever a
        // signal arrived during a poll, and the restarted node never bid on it.
        return if again { Ok(true) } else { keep(s, &o) };
    }
    if s.db().job(id)?.is_some() {
        return Ok(false);
    }
    if s.tx.low_balance() {
        // OFF-20: the operator key is short of ether. A bid is new work (and a won lease needs
        // gas to acknowledge and post), so it is shed first; the order is kept for another look
        // while its window is open, once the key is funded.
        if again {
            return Ok(true);
        }
        s.metrics.skip("low_balance");
        let kept = keep(s, &o)?;
        info!(order = %id, deferred = kept, "not bidding: the operator key's balance is low");
        return Ok(kept);
    }
    let p = &o.params;
    let promised = match b {
        Some(b) => *b,
        None => *b.insert(budget(s)?),
    };
    let snapshot = Snapshot {
        offer: lock(&s.offer).clone(),
        kinds: s.kinds(),
        promised,
        tokens: &s.tokens,
    };
    let (price, gpus, collateral) = match decide(p, &snapshot, &s.cfg.pricing) {
        Decision::Bid {
            price,
            gpus,
            collateral,
        } => (price, gpus, collateral),
        Decision::Skip { reason: skip, full } => {
            // A kept order looked at again is kept as it is (no write per look).
            let kept = if full && !again { keep(s, &o)? } else { full };
            // Once per order (a kept order looked at again is not logged again), at info: an
            // operator reading the log sees why the node let an order pass, not only /metrics.
            if !(again && full) {
                s.metrics.skip(skip.label());
                info!(order = %id, reason = %skip, deferred = kept, "not bidding");
            }
            return Ok(kept);
        }
    };
    let Some(spec) = spec_of(s, &o).await else {
        // Downloading beside the poll: kept, and looked at again once it is in.
        return if again { Ok(true) } else { keep(s, &o) };
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            if p.specURI == gridlease_primitives::spec::PUSH_URI {
                let mut waiting = lock(&s.awaiting_push);
                if waiting.len() >= 10_000 {
                    waiting.clear(); // bounded: a push then finds its order in the logs
                }
                waiting.insert(id, o.clone());
            }
            s.metrics.skip("spec");
            info!(order = %id, error = %e, "not bidding: spec unusable");
            return Ok(false);
        }
    };
    if let Err(e) = s.executor(&spec.workload) {
        s.metrics.skip("unsupported");
        info!(order = %id, why = %e, "not bidding");
        return Ok(false);
    }
    if let gridlease_primitives::spec::Workload::Service { port, .. } = spec.workload {
        let live = s.db().live()?;
        let specs = live
            .iter()
            .filter_map(|j| serde_json::from_str::<RunSpec>(j.spec.as_deref()?).ok());
        if let Some(why) = port_taken(port, s.cfg.listen.port(), specs) {
            s.metrics.skip("port");
            info!(order = %id, port, why = %why, "not bidding");
            return Ok(false);
        }
    }
    let job = Job {
        id,
        state: JobState::Bid,
        tenant: o.tenant,
        terms: p.abi_encode(),
        spec: Some(String::from_utf8_lossy(&spec.canonical_json()).into_owned()),
        price,
        ..Job::default()
    };
    if !s.db().insert(&job)? {
        return Ok(false);
    }
    if let Some(b) = b {
        b.busy += 1;
        b.gpus += gpus;
        b.pending_collateral += collateral;
    }
    let sent = if let (Some(signer), false) = (&s.bid_signer, p.instant) {
        // Signed mode: the row above keeps the slot and the stake reserved (PD-01) until the
        // order's lease (ours or another's) or its cancellation; the bid itself costs no gas.
        sign_bid(s, signer, id, price, o.biddingEnd.to::<u64>(), seen).await
    } else {
        let call = Market::bidCall {
            orderId: id,
            price: U96::from(price),
        };
        s.tx.send(s.market, call.abi_encode().into(), |t| journal(s, id, t))
            .await
            .map(|t| {
                let us = seen.elapsed().as_micros() as u64;
                s.metrics.bids_sent.increment(1);
                s.metrics.bid_latency_us.increment(us);
                info!(order = %id, price = %price, tx = %t.hash, latency_us = us, "bid sent");
                let s2 = s.clone();
                s.tracker.spawn(async move { watch_bid(&s2, id, t).await });
            })
    };
    let Err(e) = sent else { return Ok(false) };
    // No bid left the node: an error from the transaction manager means nothing reached the
    // RPC node (a broadcast lost on the network returns the signed bid, watched above). What
    // the row reserved is free again.
    if let Some(b) = b {
        b.busy -= 1;
        b.gpus -= gpus;
        b.pending_collateral -= collateral;
    }
    match e {
        ChainError::Network(e) => {
            // The RPC failed (OFF-10): the order is kept and looked at again at the next poll
            // while its bid window is open, instead of staying reserved and never bid on.
            s.db().unbid(id)?;
            let kept = keep(s, &o)?;
            warn!(order = %id, error = %e, deferred = kept, "bid not sent (the RPC failed): trying again at the next poll");
            Ok(kept)
        }
        ChainError::Revert(r) => {
            s.metrics.skip(&r.name);
            lost(s, id, &r.to_string())?;
            Ok(false)
        }
        ChainError::User(e) => {
            // The RPC node refused it (no ether for gas, a fee it will not take), or a signed bid
            // could not be kept: said loudly, and the order let go rather than its slot held
            // until the order ends.
            error!(order = %id, error = %e, "no bid on this order");
            lost(s, id, &format!("no bid: {e}"))?;
            Ok(false)
        }
    }
}

/// The tenant pushed the spec of order `o` ([`crate::api`]): evaluate it now, as if its log had
/// just been read (nothing happens when the node already knows the order).
pub(crate) async fn order_pushed(s: &Arc<Shared>, o: Market::OrderCreated) -> Result<()> {
    on_order(s, o, Instant::now(), &mut None, false)
        .await
        .map(|_| ())
}

/// Sign a bid on auction `id` valid until its bid window plus the market's award grace, and keep
/// it for keepers (`GET /bids/<order id>`). An RPC failure is [`ChainError::Network`] (worth
/// another try); one that cannot sign or keep it is [`ChainError::User`].
async fn sign_bid(
    s: &Shared,
    signer: &alloy::signers::local::PrivateKeySigner,
    id: B256,
    price: u128,
    bidding_end: u64,
    seen: Instant,
) -> Result<(), ChainError> {
    let params = Market::new(s.market, &s.client().provider)
        .params()
        .call()
        .await
        .map_err(classify)?;
    let expiry = bidding_end + u64::from(params.awardGrace);
    let domain = gridlease_primitives::eip712::market_domain(s.client().chain_id, s.market);
    let bid = gridlease_primitives::eip712::ServedBid::sign(
        &domain,
        signer,
        s.cfg.owner,
        id,
        price,
        expiry,
    )
    .map_err(|e| ChainError::User(format!("cannot sign a bid on {id}: {e:#}")))?;
    crate::signed::save(&s.cfg.data_dir, &bid)
        .map_err(|e| ChainError::User(format!("cannot keep the signed bid on {id}: {e}")))?;
    let us = seen.elapsed().as_micros() as u64;
    s.metrics.bids_signed.increment(1);
    info!(order = %id, price = %price, expiry, latency_us = us, "signed bid kept for keepers");
    Ok(())
}

async fn watch_bid(s: &Shared, id: B256, t: Signed) {
    let sent = Instant::now();
    match s
        .tx
        .confirm(t, Duration::from_secs(600), |n| journal(s, id, n))
        .await
    {
        Ok(Outcome::Mined(r)) => {
            mined(s, sent);
            if !r.status() {
                let _ = lost(s, id, "bid reverted on chain (outbid or order taken)");
            } else if let Err(e) = s.db().bid_mined(id) {
                // Only the stake accounting suffers: the bid's collateral stays counted as
                // pending (twice, with the market's lock) until the order's lease starts.
                warn!(order = %id, error = %e, "cannot record the bid as mined");
            }
        }
        Ok(Outcome::NonceTaken) => {
            let _ = lost(s, id, "bid replaced");
        }
        Err(e) => warn!(order = %id, error = %e, "bid not confirmed"),
    }
}

pub(crate) fn lost(s: &Shared, id: B256, why: &str) -> Result<()> {
    if s.db().advance(
        id,
        JobState::Bid,
        JobState::Lost,
        Some(Set::Note(why.into())),
    )? {
        info!(order = %id, why, "bid lost");
    }
    Ok(())
}

/// The `OrderCreated` log of order `id`.
pub(crate) async fn order_log(s: &Shared, id: B256) -> Result<Market::OrderCreated> {
    let head = s.client().head().await?;
    let filter = Filter::new()
        .address(s.market)
        .event_signature(Market::OrderCreated::SIGNATURE_HASH)
        .topic1(id);
    // In pages: an RPC that refuses wide ranges still finds it (OFF-13).
    logs::first(s.client(), &filter, s.deploy_block, head)
        .await?
        .and_then(|l| l.log_decode::<Market::OrderCreated>().ok())
        .map(|l| l.inner.data)
        .with_context(|| format!("no OrderCreated log for {id}"))
}

pub(crate) async fn refresh_offer(s: &Arc<Shared>) -> Result<(), ChainError> {
    if unix_now().saturating_sub(s.offer_at.load(Relaxed)) < 5 {
        return Ok(());
    }
    let p = &s.client().provider;
    let info = Staking::new(s.staking, p)
        .providerInfo(s.cfg.owner)
        .call()
        .await
        .map_err(classify)?;
    let params = Market::new(s.market, p)
        .params()
        .call()
        .await
        .map_err(classify)?;
    earnings(s).await?;
    expire_signed(s).await?;
    award_own(s, params.awardGrace).await?;
    let mut o = lock(&s.offer);
    o.classes = info.capacity.gpuClasses;
    o.gpus = info.capacity.gpuCount;
    o.vram_gib = info.capacity.vramGiB;
    o.free_stake = crate::onchain::lockable(&info);
    o.min_price = u128::from(params.minPricePerSecond);
    if info.operator != s.tx.from() {
        warn!(operator = %info.operator, "the owner changed this provider's operator key; not bidding");
        o.classes = 0;
    }
    s.offer_at.store(unix_now(), Relaxed);
    Ok(())
}

/// The orders of the node's open bids whose rows pass `keep`.
fn bids(s: &Shared, keep: impl Fn(&Job) -> bool) -> Result<Vec<B256>, ChainError> {
    Ok(s.db()
        .live()
        .map_err(|e| ChainError::User(e.to_string()))?
        .into_iter()
        .filter(|j| j.state == JobState::Bid && keep(j))
        .map(|j| j.id)
        .collect())
}

/// An auction bid on chain (sent by the node, or its signed bid placed by a keeper) locks the
/// order's collateral until the award (AFR-01). When half the award grace has passed and nobody
/// (keeper or tenant) has awarded an order this node's bid still leads, the node awards it
/// itself: the lease it bid for starts (and is acknowledged as any award by another is), rather
/// than its collateral staying locked until someone cancels the order. Open bids hold job slots,
/// so the market is asked about a few orders at most.
async fn award_own(s: &Arc<Shared>, award_grace: u32) -> Result<(), ChainError> {
    // A mined bid (a transaction, its bytes gone), or a signed one anyone may have placed; one
    // with bytes has a transaction in flight. The market says which still lead.
    let leading = bids(s, |j| j.raw.is_none())?;
    if leading.is_empty() {
        return Ok(());
    }
    let now = s.client().now().await?;
    for id in leading {
        let j = s.lens().getJob(id).call().await.map_err(classify)?;
        let due = j.biddingEnd.to::<u64>() + u64::from(award_grace / 2);
        if j.status != 1 || j.provider != s.cfg.owner || now <= due {
            continue;
        }
        let call = Market::awardCall { orderId: id };
        match s
            .tx
            .send(s.market, call.abi_encode().into(), |t| journal(s, id, t))
            .await
        {
            Ok(t) => {
                info!(order = %id, tx = %t.hash, "nobody awarded the order this node's bid leads: awarding it");
                let s2 = s.clone();
                s.tracker.spawn(async move {
                    if let Ok(Outcome::Mined(r)) = s2
                        .tx
                        .confirm(t, Duration::from_secs(600), |n| journal(&s2, id, n))
                        .await
                    {
                        // Awarded (the lease log makes the job a win) or taken by another's award.
                        mined(&s2, Instant::now());
                        debug!(order = %id, ok = r.status(), "own award mined");
                    }
                });
            }
            // The simulation failed (awarded or cancelled meanwhile): the logs say which.
            Err(e) => debug!(order = %id, error = %e, "own award not sent"),
        }
    }
    Ok(())
}

/// Signed mode: a kept bid past its expiry can no longer win, so its order is lost and the slot
/// and stake it reserved are free again (a lease log read later still turns it into a win).
async fn expire_signed(s: &Shared) -> Result<(), ChainError> {
    if s.bid_signer.is_none() {
        return Ok(());
    }
    let user = |e: anyhow::Error| ChainError::User(e.to_string());
    let waiting = bids(s, |_| true)?;
    if waiting.is_empty() {
        return Ok(());
    }
    let now = s.client().now().await?;
    for id in waiting {
        if crate::signed::load(&s.cfg.data_dir, id).is_some_and(|b| b.expiry < now) {
            lost(s, id, "signed bid expired unawarded").map_err(user)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::aliases::U96;

    use super::*;

    const USDC: Address = Address::repeat_byte(0xcc);

    #[test]
    fn a_service_port_is_sold_once_and_never_one_the_host_or_the_node_holds() {
        use gridlease_primitives::spec::{Resources, Workload};
        let service = |port| RunSpec {
            version: 1,
            workload: Workload::Service {
                image: "img".into(),
                command: Vec::new(),
                env: BTreeMap::new(),
                port,
                tls: false,
            },
            resources: Resources {
                gpu_class: 0,
                gpu_count: 1,
                vram_gib: 1,
                cpu_cores: 1,
                ram_gib: 1,
            },
        };
        let held = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
        let held_port = held.local_addr().expect("addr").port();
        let free = {
            let l = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        assert_eq!(port_taken(free, 7311, [service(free + 1)]), None);
        assert!(port_taken(free, 7311, [service(free)]).is_some(), "sold");
        assert!(port_taken(80, 7311, []).is_some(), "privileged");
        assert!(port_taken(7311, 7311, []).is_some(), "the API's");
        assert!(
            port_taken(held_port, 7311, []).is_some(),
            "held on the host"
        );
    }

    fn pricing() -> BTreeMap<String, Pricing> {
        let mut m = BTreeMap::new();
        m.insert(
            "any".to_owned(),
            Pricing {
                floor_per_hour: "0.36".into(),
                utilisation_markup_bps: 0,
            },
        );
        m
    }

    /// One GPU of class 0 with 8 GiB, a container job, 5 USDC of collateral, paying up to 1 per
    /// second.
    fn order() -> OrderParams {
        OrderParams {
            gpuClass: 0,
            gpuCount: 1,
            vramGiB: 8,
            jobKind: 1,
            maxPricePerSecond: U96::from(10u128.pow(18)),
            collateral: U96::from(5_000_000u64),
            token: USDC,
            ..OrderParams::default()
        }
    }

    #[test]
    fn a_mined_on_chain_bid_is_not_counted_again_beside_the_markets_lock_afr01() {
        let bid = |n: u8, tx: Option<B256>, raw: Option<Vec<u8>>| Job {
            id: B256::repeat_byte(n),
            state: JobState::Bid,
            terms: order().abi_encode(),
            tx,
            raw,
            ..Job::default()
        };
        let hash = Some(B256::repeat_byte(0xee));
        let live = [
            // A signed bid: whether anyone placed it (and the market locked it) the node cannot
            // tell, so it stays reserved here.
            bid(1, None, None),
            // An on-chain bid on its way: not locked yet.
            bid(2, hash, Some(vec![1, 2, 3])),
            // Mined: the market holds its collateral, and the chain's free stake says so.
            bid(3, hash, None),
        ];
        let b = promised(&live);
        assert_eq!((b.busy, b.gpus), (3, 3));
        assert_eq!(b.pending_collateral, 2 * 5_000_000);
    }

    /// Two 80 GiB GPUs of class 0, four free slots, 10 USDC of free stake, nothing promised.
    fn snapshot(tokens: &HashMap<Address, u8>) -> Snapshot<'_> {
        Snapshot {
            offer: Offer {
                classes: 1,
                gpus: 2,
                vram_gib: 80,
                exclusive_gpus: true,
                held_gpus: 0,
                free_slots: 4,
                slots: 4,
                free_stake: 10_000_000,
                kinds: 0,
                min_price: 1,
                job_ram_gib: 16,
                job_cpu_cores: 4,
            },
            kinds: 0b011,
            promised: Budget::default(),
            tokens,
        }
    }

    fn tokens() -> HashMap<Address, u8> {
        [(USDC, 6)].into()
    }

    fn skip(d: Decision) -> (&'static str, bool) {
        match d {
            Decision::Skip { reason, full } => (reason.label(), full),
            Decision::Bid { price, .. } => panic!("bid {price}, expected a skip"),
        }
    }

    #[test]
    fn decide_bids_the_floor_and_reserves_the_order_s_gpus_and_collateral() {
        let tokens = tokens();
        assert_eq!(
            decide(&order(), &snapshot(&tokens), &pricing()),
            // 0.36 per hour = 0.0001 per second = 1e14 in 18-decimal units.
            Decision::Bid {
                price: 100_000_000_000_000,
                gpus: 1,
                collateral: 5_000_000,
            }
        );
    }

    #[test]
    fn decide_skips_a_class_kind_or_size_not_offered_and_keeps_none_of_them() {
        let tokens = tokens();
        let s = snapshot(&tokens);
        let o = OrderParams {
            gpuClass: 9,
            ..order()
        };
        assert_eq!(skip(decide(&o, &s, &pricing())), ("class", false));
        let o = OrderParams {
            gpuCount: 3,
            ..order()
        };
        assert_eq!(skip(decide(&o, &s, &pricing())), ("capacity", false));
        let o = OrderParams {
            vramGiB: 81,
            ..order()
        };
        assert_eq!(skip(decide(&o, &s, &pricing())), ("capacity", false));
        // Services (kind 2) are not sold by this snapshot's executors.
        let o = OrderParams {
            jobKind: 2,
            ..order()
        };
        assert_eq!(skip(decide(&o, &s, &pricing())), ("kind", false));
    }

    #[test]
    fn decide_skips_an_order_the_node_is_too_full_for_and_keeps_it_for_another_look() {
        let tokens = tokens();
        let mut s = snapshot(&tokens);
        s.promised.busy = 4;
        assert_eq!(skip(decide(&order(), &s, &pricing())), ("busy", true));
        let mut s = snapshot(&tokens);
        s.promised.busy = 2;
        s.promised.gpus = 2;
        assert_eq!(skip(decide(&order(), &s, &pricing())), ("gpus_busy", true));
        // Shared GPUs: held ones do not stop a bid.
        s.offer.exclusive_gpus = false;
        assert!(matches!(
            decide(&order(), &s, &pricing()),
            Decision::Bid { .. }
        ));
        let mut s = snapshot(&tokens);
        s.promised.pending_collateral = 5_000_001;
        assert_eq!(skip(decide(&order(), &s, &pricing())), ("stake", true));
    }

    #[test]
    fn decide_skips_an_order_paying_too_little_or_in_an_unknown_token() {
        let tokens = tokens();
        let s = snapshot(&tokens);
        let o = OrderParams {
            maxPricePerSecond: U96::from(100_000_000_000_000u128 - 1),
            ..order()
        };
        assert_eq!(skip(decide(&o, &s, &pricing())), ("price", false));
        let o = OrderParams {
            token: Address::repeat_byte(0xdd),
            ..order()
        };
        assert_eq!(skip(decide(&o, &s, &pricing())), ("no_price", false));
        assert_eq!(
            skip(decide(&order(), &s, &BTreeMap::new())),
            ("no_price", false)
        );
    }
}
