//! Ending the node's leases when nobody else does (protocol v2, `docs/protocol.md` §3.1, §3.3).
//!
//! - A batch lease's pay is held with its result for the module's challenge window; after it, with
//!   no open challenge, anyone may close the lease as **Completed**, which pays the provider and
//!   frees its collateral. A keeper does it when its fee pays for the gas; when it does not, the
//!   node closes its own leases (a provider's close pays no keeper fee).
//! - A service lease whose time is up, or whose escrow is spent, is no longer served: the node
//!   closes it unless a keeper has, so its collateral is free and the last accrual paid.
//! - Some closes leave the lease's collateral locked for the market's fault horizon (`LeaseClosed`
//!   with `held`: a tenant accepting a result inside its window, a tenant closing a late lease),
//!   so a fault on it stays provable. Once the horizon has passed anyone may release it
//!   (`MarketAdmin.releaseHeld`, at the market's address); the node does, in batches, so its
//!   stake is free again for new leases.

use std::sync::{Arc, atomic::Ordering::Relaxed};

use alloy::{primitives::B256, sol_types::SolCall};
use gridlease_bindings::{Market, MarketAdmin};
use gridlease_chain::{ChainError, classify};
use gridlease_daemon::lock;
use gridlease_primitives::{
    protocol::{JobViewExt, LeaseKind, Status},
    spec::JobKind,
};
use tracing::{debug, info, warn};

use crate::{
    shared::{Shared, terms},
    state::{Job, JobState},
    tx::send_and_confirm,
    unix_now,
};

/// Most leases one `releaseHeld` transaction releases (its gas grows with each).
pub const RELEASE_BATCH: usize = 50;

/// Every 10 s: close the node's leases whose result's hold has ended with no open challenge, and
/// its service leases that are over ([`close_stopped_services`]).
pub(crate) async fn close_completed(s: &Arc<Shared>) -> Result<(), ChainError> {
    if unix_now().saturating_sub(s.completed_at.load(Relaxed)) < 10 {
        return Ok(());
    }
    s.completed_at.store(unix_now(), Relaxed);
    let live = s.db().live().map_err(|e| ChainError::User(e.to_string()))?;
    let stopped: Vec<&Job> = live
        .iter()
        .filter(|j| j.state == JobState::Running && !lock(&s.drivers).contains_key(&j.id))
        .filter(|j| terms(j).is_some_and(|t| t.jobKind == JobKind::Service.code()))
        .collect();
    let posted: Vec<&Job> = live
        .iter()
        .filter(|j| j.state == JobState::Posted)
        .collect();
    if posted.is_empty() && stopped.is_empty() {
        return Ok(());
    }
    let now = s.client().now().await?;
    close_stopped_services(s, &stopped, now).await?;
    for j in posted {
        // The hold's end as last read: nothing to ask the chain before it.
        if lock(&s.hold_ends).get(&j.id).is_some_and(|end| now <= *end) {
            continue;
        }
        let v = s.lens().getJob(j.id).call().await.map_err(classify)?;
        // Running (status 2) with a held result (kind 2): `end` is the end of its hold.
        if v.status() != Status::Leased || v.lease_kind() != LeaseKind::Held {
            continue;
        }
        let end = v.end.to::<u64>();
        lock(&s.hold_ends).insert(j.id, end);
        if now <= end || v.challenged {
            continue;
        }
        close(
            s,
            j.id,
            "hold over: lease closed as completed, its pay collected",
        )
        .await?;
    }
    Ok(())
}

/// Close the service leases in `stopped` (running, their driver stopped) that are over at `now`:
/// past their end, or their escrow spent (the driver's own close of a spent lease failed). The
/// node serves nothing for them any more; closed, the collateral is free and the last accrual
/// paid. A keeper closes them too when its fee pays; whoever is second is refused in simulation.
async fn close_stopped_services(
    s: &Arc<Shared>,
    stopped: &[&Job],
    now: u64,
) -> Result<(), ChainError> {
    for j in stopped {
        let v = s.lens().getJob(j.id).call().await.map_err(classify)?;
        if v.status() != Status::Leased || v.lease_kind() != LeaseKind::Service {
            continue; // its close log (read at the confirmation depth) ends the job
        }
        let over = now >= v.end.to::<u64>() || {
            let owed = s.lens().accrued(j.id).call().await.map_err(classify)?;
            owed >= v.escrow
        };
        if !over {
            continue;
        }
        close(s, j.id, "service lease over: closed by the node").await?;
    }
    Ok(())
}

/// Close lease `id` (saying `done` once closed). Not journaled in the job's row: that keeps the
/// result's transaction (a reorg sends it again), and a close lost in a crash is simply sent
/// again. A revert (someone closed it first) is no error.
async fn close(s: &Shared, id: B256, done: &str) -> Result<(), ChainError> {
    let call = Market::closeCall { leaseId: id };
    match send_and_confirm(s, s.market, call.abi_encode().into(), |_| Ok(())).await {
        Ok(()) => info!(lease = %id, "{done}"),
        Err(ChainError::Revert(r)) => debug!(lease = %id, revert = %r, "not closed"),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Every 10 s: release the collateral of the node's closed leases the market held, once the
/// fault horizon has passed since their close (`MarketAdmin.releaseHeld`, in batches).
pub(crate) async fn release_held(s: &Arc<Shared>) -> Result<(), ChainError> {
    if unix_now().saturating_sub(s.released_at.load(Relaxed)) < 10 {
        return Ok(());
    }
    s.released_at.store(unix_now(), Relaxed);
    let user = |e: crate::state::StateError| ChainError::User(e.to_string());
    if s.db().held_count().map_err(user)? == 0 {
        return Ok(());
    }
    let now = s.client().now().await?;
    // `releaseHeld` frees a lease once now > closed + horizon.
    let Some(until) = now.checked_sub(s.fault_horizon + 1) else {
        return Ok(());
    };
    loop {
        let ids = s.db().held(until, RELEASE_BATCH).map_err(user)?;
        if ids.is_empty() {
            return Ok(());
        }
        let call = MarketAdmin::releaseHeldCall {
            leaseIds: ids.clone(),
        };
        // At the market's address: its fallback runs MarketAdmin in the market's storage.
        match send_and_confirm(s, s.market, call.abi_encode().into(), |_| Ok(())).await {
            Ok(()) => info!(leases = ids.len(), "held collateral released"),
            Err(ChainError::Revert(r)) => warn!(revert = %r, "releasing held collateral reverted"),
            Err(e) => return Err(e),
        }
        // Whatever the market no longer holds (released now or before, or slashed) is done with;
        // the `HeldReleased` logs say the same once read.
        let mut progress = false;
        for id in &ids {
            if !still_held(s, *id).await? {
                s.db().unhold(*id).map_err(user)?;
                progress = true;
            }
        }
        if !progress {
            warn!(
                leases = ids.len(),
                "the market still holds collateral the node asked it to release; trying again later"
            );
            return Ok(());
        }
    }
}

/// Whether the market still holds lease `id`'s collateral.
async fn still_held(s: &Shared, id: B256) -> Result<bool, ChainError> {
    let v = s.lens().getJob(id).call().await.map_err(classify)?;
    Ok(v.held)
}
