//! Lease events: a lease won starts its job's driver; one closed or faulted stops it.

use std::sync::Arc;

use alloy::{
    primitives::{B256, aliases::U96},
    sol_types::SolValue,
};
use anyhow::Result;
use gridlease_bindings::Market;
use gridlease_daemon::lock;
use gridlease_primitives::protocol::CloseReason;
use tracing::info;

use crate::{
    bidding::{lost, order_log},
    jobs::driver::drive,
    shared::Shared,
    state::{Job, JobState, Set},
};

pub(crate) async fn on_lease(s: &Arc<Shared>, l: Market::LeaseStarted) -> Result<()> {
    let id = l.orderId;
    if l.provider != s.cfg.owner {
        return lost(s, id, "another provider won");
    }
    let (start, end) = (l.start.to::<u64>(), l.end.to::<u64>());
    let module = s.modules.by_id(s.client(), s.lens, l.module).await?;
    let job = s.db().job(id)?;
    let won = match job {
        Some(j) if matches!(j.state, JobState::Bid | JobState::Lost) => s.db().advance(
            id,
            j.state,
            JobState::Won,
            Some(Set::Lease(start, end, module)),
        )?,
        Some(_) => false,
        None => {
            // Won without our bid row (a lost database, or a bid from another node on this key):
            // the terms come from the order's log.
            let created = order_log(s, id).await?;
            s.db().insert(&Job {
                id,
                state: JobState::Won,
                tenant: created.tenant,
                terms: created.params.abi_encode(),
                price: l.ratePerSecond.to::<u128>(),
                start,
                end,
                module: Some(module),
                ..Job::default()
            })?
        }
    };
    if won {
        s.metrics.bids_won.increment(1);
        info!(lease = %id, rate = %l.ratePerSecond, start, end, module = %module, "lease won");
        drive(s, id);
    }
    Ok(())
}

/// A lease closed: if it is ours, its job ends, and when the market holds its collateral for the
/// fault horizon (`held`) the node remembers to release it then.
pub(crate) fn on_closed(s: &Shared, c: &Market::LeaseClosed) -> Result<()> {
    let id = c.leaseId;
    // Only leases this provider won (not orders it bid on and lost).
    if !s
        .db()
        .job(id)?
        .is_some_and(|j| !matches!(j.state, JobState::Bid | JobState::Lost))
    {
        return Ok(());
    }
    if c.held {
        let at = c.closedAt.to::<u64>();
        s.db().hold(id, at)?;
        info!(lease = %id, closed_at = at, release_after_s = s.fault_horizon, "the market holds this lease's collateral for the fault horizon");
    }
    lock(&s.hold_ends).remove(&id);
    let to = if CloseReason::of(c.reason) == Some(CloseReason::Faulted) {
        JobState::Faulted
    } else {
        JobState::Closed
    };
    end_lease(s, id, to, c.toProvider)
}

/// Lease `id` is over (`to`: closed or faulted): whatever still runs for it stops.
pub(crate) fn end_lease(s: &Shared, id: B256, to: JobState, paid: U96) -> Result<()> {
    let Some(j) = s.db().job(id)? else {
        return Ok(());
    };
    if j.state.is_terminal() {
        return Ok(());
    }
    if let Some(c) = lock(&s.drivers).remove(&id) {
        // The lease is over: whatever still runs for it stops (PD-02).
        c.cancel();
    }
    if j.state.can_become(to) && s.db().transition(id, j.state, to)? {
        // Token units: an 18-decimal token passes u64 at about 18.4 tokens (the counter saturates).
        s.metrics.earned.increment(paid.saturating_to::<u64>());
        info!(lease = %id, state = to.name(), paid = %paid, "lease over");
    }
    Ok(())
}
