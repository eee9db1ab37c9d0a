//! Collecting the chain's logs: every poll the node reads the market's and the results modules'
//! logs from its saved cursors, in pages that halve when the RPC refuses a range (OFF-13), and
//! hands each to its handler. Orders, challenges of its results and its new leases (to
//! acknowledge them at once) are read up to the head; lease events that start work only once
//! `confirmations` blocks deep (OFF-04, PD-02). A cursor whose block hash is no longer canonical
//! rewinds and re-reads (OFF-01); every handler is idempotent, and one that fails on the RPC
//! leaves its page to be read again at the next poll (OFF-10). Orders skipped only for want of
//! capacity are looked at again as jobs end.

use std::{sync::Arc, time::Instant};

use alloy::{
    primitives::{Address, B256, aliases::U96},
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolEventInterface},
};
use gridlease_bindings::{
    Market::{self, MarketEvents},
    Results,
};
use gridlease_chain::{ChainError, classify, logs};
use gridlease_daemon::lock;
use gridlease_primitives::protocol::{JobViewExt, Status};
use tracing::{error, info, warn};

use crate::{
    bidding::{Budget, budget, lost, on_order},
    finality::hold_finality,
    jobs::{
        driver::{acknowledge_early, drive},
        lease::{end_lease, on_closed, on_lease},
    },
    shared::Shared,
    state::JobState,
};

/// The log streams the node reads, each from its own cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Logs {
    /// New orders, leases to acknowledge, and challenges of results (the results modules'
    /// logs): up to the head.
    Orders,
    /// Leases started, closed, faulted, released: `chain.confirmations` deep.
    Leases,
}

impl Logs {
    fn cursor(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Leases => "leases",
        }
    }
}

/// Read the logs with `topics` of `addresses` from the cursor of `which` up to `to`, handling
/// each.
pub(crate) async fn scan(
    s: &Arc<Shared>,
    which: Logs,
    to: u64,
    addresses: Vec<Address>,
    topics: &[B256],
) -> Result<(), ChainError> {
    let name = which.cursor();
    let cursor = s
        .db()
        .cursor(name)
        .map_err(|e| ChainError::User(e.to_string()))?;
    let from = logs::resume_from(s.client(), name, cursor, s.deploy_block).await?;
    if cursor.is_some_and(|(b, _)| from <= b) {
        // (Challenges read again are recorded once: nothing of theirs to undo.)
        if which == Logs::Leases {
            // This cursor trails the head by `confirmations`: the reorg went deeper (OFF-02).
            let until = hold_finality(s);
            s.metrics.deep_reorgs.increment(1);
            error!(
                confirmations = s.cfg.confirmations,
                hold_until = until,
                "reorg deeper than chain.confirmations: lease events are read again, and no job starts and no tenant result is released until the replaced blocks are that deep again; raise confirmations if this chain reorgs this deep"
            );
        }
        // A reorg: posted results may have been removed with it (PD-04), and orders we bid on
        // (their reservation must not stay behind: PD-01).
        let live = s.db().live().map_err(|e| ChainError::User(e.to_string()))?;
        for j in live {
            if j.state == JobState::Posted {
                drive(s, j.id);
            } else if j.state == JobState::Bid {
                let v = s.lens().getJob(j.id).call().await.map_err(classify)?;
                if v.status() == Status::None {
                    // No such order on this chain any more.
                    lost(s, j.id, "the order was reorged away")
                        .map_err(|e| ChainError::User(e.to_string()))?;
                }
            }
        }
    }
    let filter = Filter::new()
        .address(addresses)
        .event_signature(topics.to_vec());
    logs::pages(s.client(), &filter, from, to, async |page, end, hash| {
        let seen = Instant::now();
        let mut budget = None;
        for log in &page {
            if log.topic0() == Some(&Results::ChunkChallenged::SIGNATURE_HASH) {
                crate::results::on_log(s, log);
            } else {
                handle(s, which, log, seen, &mut budget).await?;
            }
        }
        s.db()
            .set_cursor(name, end, hash)
            .map_err(|e| ChainError::User(e.to_string()))
    })
    .await?;
    Ok(())
}

/// Handle one market log. An RPC failure on the way is returned: the page is not done, its
/// cursor stays, and the next poll reads it again (every handler is idempotent). Dropped, a
/// lease won would never be acknowledged or run (a no-show) and would hold its slot for ever.
/// Any other error is logged and the log passed.
async fn handle(
    s: &Arc<Shared>,
    which: Logs,
    log: &Log,
    seen: Instant,
    b: &mut Option<Budget>,
) -> Result<(), ChainError> {
    let Ok(e) = MarketEvents::decode_log(&log.inner) else {
        return Ok(());
    };
    let r = match e.data {
        MarketEvents::OrderCreated(o) => on_order(s, o, seen, b, false).await.map(|_| ()),
        MarketEvents::LeaseStarted(l) if which == Logs::Orders => {
            acknowledge_early(s, &l);
            Ok(())
        }
        MarketEvents::LeaseStarted(l) => on_lease(s, l).await,
        MarketEvents::LeaseClosed(c) => on_closed(s, &c),
        MarketEvents::LeaseFaulted(f) if f.provider == s.cfg.owner => {
            error!(lease = %f.leaseId, kind = %crate::results::kind_name(f.kind), slashed = %f.slashed, "this provider was slashed");
            s.metrics.slashed.increment(1);
            let r = s.db().unhold(f.leaseId).map_err(anyhow::Error::from);
            r.and_then(|()| end_lease(s, f.leaseId, JobState::Faulted, U96::ZERO))
        }
        MarketEvents::HeldReleased(h) if h.provider == s.cfg.owner => {
            info!(lease = %h.leaseId, collateral = %h.collateral, "held collateral released");
            s.metrics.held_released.increment(1);
            s.db().unhold(h.leaseId).map_err(anyhow::Error::from)
        }
        MarketEvents::OrderCancelled(c) => lost(s, c.orderId, "order cancelled"),
        _ => Ok(()),
    };
    if let Err(e) = r {
        if let Some(ChainError::Network(n)) = e.chain().find_map(|c| c.downcast_ref::<ChainError>())
        {
            return Err(ChainError::Network(format!(
                "handling the log of block {:?}: {n}",
                log.block_number
            )));
        }
        error!(error = %e, "handling a log failed");
    }
    Ok(())
}

/// Look again at the orders skipped only because the node was full, now that jobs may have
/// ended: each is bid on once a slot, its GPUs and the stake are free, or dropped when its bid
/// window closes (or another node took it: the bid's simulation says so). They are kept in the
/// store, so a restart (whose order cursor is past them) still looks at them again.
pub(crate) async fn retry_deferred(s: &Arc<Shared>) {
    // Nothing can fit while every slot is taken: leave the kept orders alone.
    let mut budget = match budget(s) {
        Ok(b) if b.busy < lock(&s.offer).slots => Some(b),
        Ok(_) => return,
        Err(e) => {
            warn!(error = %e, "cannot read the node's jobs");
            return;
        }
    };
    // Bid windows end in chain time (OFF-21), read only when some order is kept.
    let kept = |now: u64| {
        s.db().deferred(now).map_err(|e| {
            warn!(error = %e, "cannot read the deferred orders");
        })
    };
    let Ok(any) = kept(0) else { return };
    if any.is_empty() {
        return;
    }
    let now = match s.client().now().await {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %e, "cannot read the chain's time for the deferred orders");
            return;
        }
    };
    let Ok(waiting) = kept(now) else { return };
    for (topics, data) in waiting {
        let o = match Market::OrderCreated::decode_raw_log(topics, &data) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "a deferred order does not decode: dropped");
                continue;
            }
        };
        let id = o.orderId;
        // Kept until it is bid on, or skipped for another reason than capacity; an error (the
        // RPC) leaves it for the next look.
        match on_order(s, o, Instant::now(), &mut budget, true).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = s.db().undefer(id) {
                    warn!(order = %id, error = %e, "cannot update a deferred order");
                }
            }
            Err(e) => warn!(order = %id, error = %e, "looking again at a deferred order failed"),
        }
    }
}
