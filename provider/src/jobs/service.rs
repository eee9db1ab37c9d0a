//! Service leases: a service runs until its lease ends (restarted when it exits) and stops once
//! its escrow is spent; the provider's heartbeats keep it live for them (PD-03).

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use alloy::{primitives::B256, sol_types::SolCall};
use gridlease_bindings::{Market, Results, Staking};
use gridlease_chain::{ChainError, classify};
use gridlease_daemon::{Backoff, txm::Outcome};
use gridlease_primitives::{
    protocol::{JobViewExt, Status},
    spec::Workload,
};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};

use crate::{
    executor::{ExecError, JobRun, OnSpawn},
    jobs::step::Step,
    shared::Shared,
    state::Job,
    tx::{journal, mined, send_and_confirm},
};

/// Run a service lease until its end (or until it closes: the driver is cancelled). A service
/// that exits is started again after a pause that doubles up to a minute; a service lease posts
/// no result. When the lease's time is up the driver stops, and the node closes the lease
/// ([`crate::closes::close_completed`]) unless a keeper has. Its escrow is watched every few
/// seconds besides the close log (PD-02): once it is spent the service stops and the node closes
/// the lease itself, which frees its collateral at once.
pub(crate) async fn serve(
    s: &Arc<Shared>,
    job: &Job,
    run: JobRun,
    cancel: &CancellationToken,
) -> Result<(), Step> {
    // The TLS front stays open across the service's restarts and closes when this returns; each
    // run of the service gets a loopback port of its own, which the front carries to while it
    // runs. A key that cannot be bound fails the service (`unbound`).
    let (front, mut unbound) = match run.workload {
        Workload::Service {
            port, tls: true, ..
        } => {
            let (backend, guard, unbound) = open_front(s, job, port, cancel).await?;
            (Some((backend, guard)), Some(unbound))
        }
        _ => (None, None),
    };
    let mut pause = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let now = s.client().now().await?;
        let left = job.end.saturating_sub(now);
        if left == 0 {
            info!(lease = %job.id, "service lease over; waiting for its close");
            return Err(Step::Stop);
        }
        let (id, s2) = (job.id, s.clone());
        let record: OnSpawn = Box::new(move |pgid| {
            let _ = s2.db().set_pgid(id, pgid);
        });
        let mut this = JobRun {
            time_limit: Duration::from_secs(left),
            ..run.clone()
        };
        if let Some((backend, _)) = &front {
            let port = crate::front::free_loopback_port()
                .map_err(|e| Step::Retry(format!("no loopback port for the service: {e}")))?;
            this.loopback_port = Some(port);
            backend.send_replace(Some(port));
        }
        info!(lease = %job.id, limit_s = left, "service running");
        let started = Instant::now();
        let stop = cancel.child_token();
        let outcome = match s.executor(&run.workload) {
            Err(e) => Err(ExecError::Unsupported(e)),
            Ok(x) => {
                let run = x.run(this, stop.clone(), record);
                tokio::pin!(run);
                tokio::select! {
                    r = &mut run => r,
                    why = never_bound(&mut unbound) => {
                        stop.cancel();
                        let _ = run.await;
                        return Err(Step::Fail(why));
                    }
                    () = spent(s, job.id) => {
                        stop.cancel();
                        // The executor stops and removes what it started (process group,
                        // container) and frees its GPUs before the lease is closed.
                        let _ = run.await;
                        info!(lease = %job.id, "service lease's escrow is spent: stopping it and closing the lease");
                        let close = Market::closeCall { leaseId: job.id };
                        match send_and_confirm(s, s.market, close.abi_encode().into(), |t| journal(s, job.id, t)).await {
                            Ok(()) | Err(ChainError::Revert(_)) => {}
                            Err(e) => warn!(lease = %job.id, error = %e, "closing the spent lease failed; trying again within 10 s"),
                        }
                        return Err(Step::Stop);
                    }
                }
            }
        };
        let _ = s.db().set_pgid(job.id, 0);
        if let Some((backend, _)) = &front {
            backend.send_replace(None);
        }
        match outcome {
            Err(ExecError::Cancelled) => return Err(Step::Stop),
            Err(ExecError::TimedOut(_)) => continue,
            Err(ExecError::Unsupported(e)) => return Err(Step::Fail(e)),
            other => {
                if started.elapsed() > Duration::from_secs(60) {
                    // It ran a while: a fresh failure, not a crash loop.
                    pause.succeeded();
                }
                s.metrics.jobs_failed.increment(1);
                let wait = pause.delay();
                warn!(lease = %job.id, outcome = ?other.map(|o| o.stderr_tail), restart_in_s = wait.as_secs(), "service exited; restarting it");
                tokio::select! {
                    () = cancel.cancelled() => return Err(Step::Stop),
                    () = tokio::time::sleep(wait) => {}
                }
                pause.failed();
            }
        }
    }
}

/// Why the lease's key could not be bound, once that is known (never, when it was bound or there
/// is no front).
async fn never_bound(unbound: &mut Option<tokio::sync::oneshot::Receiver<String>>) -> String {
    match unbound {
        Some(rx) => match rx.await {
            Ok(why) => why,
            // Bound (the sender went without a word): nothing to wait for any more.
            Err(_) => {
                *unbound = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Open the TLS front of service lease `job` on `port` (ACC-03): the port taken first (a port
/// held on this host fails before any gas is spent), then the lease's key bound on chain unless
/// it already is (a restarted node derives the same key: no second binding), and served once it
/// is. The binding goes on beside the service's first run, which need not wait for it: until it
/// lands the front accepts nothing (connections wait in the backlog). Returns where the front
/// carries to (the service's loopback port while a run is up), what closes the front when
/// dropped, and why the key could not be bound if it cannot (a revert; an RPC that fails is
/// tried again).
async fn open_front(
    s: &Arc<Shared>,
    job: &Job,
    port: u16,
    cancel: &CancellationToken,
) -> Result<
    (
        watch::Sender<Option<u16>>,
        DropGuard,
        tokio::sync::oneshot::Receiver<String>,
    ),
    Step,
> {
    let id = crate::front::identity(s.tls_secret, s.client().chain_id, s.market, job.id)
        .map_err(Step::Fail)?;
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port))
        .await
        .map_err(|e| Step::Retry(format!("the service's port {port} cannot be served: {e}")))?;
    let module = s.module_of(job);
    let results = Results::new(module, &s.client().provider);
    let bound = results
        .certificateOf(job.id)
        .call()
        .await
        .map_err(classify)?;
    let stop = cancel.child_token();
    let (to, backend) = watch::channel(None);
    let (unbound, never) = tokio::sync::oneshot::channel();
    let front = crate::front::Front {
        lease: job.id,
        config: id.config,
        backend,
        budget: s.tls_budget.clone(),
        counts: crate::front::Counts {
            carried: s.metrics.tls_connections.clone(),
            failed: s.metrics.tls_failed.clone(),
        },
        idle: crate::front::IDLE,
    };
    let (s, lease, key, until) = (s.clone(), job.id, id.key, stop.clone());
    tokio::spawn(async move {
        if bound != key {
            let call = Results::bindCertificateCall {
                leaseId: lease,
                spkiHash: key,
            };
            let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
            loop {
                // A shutdown does not wait for the binding: sent, it lands or not, and the
                // restarted node reads which before it binds again.
                let sent = tokio::select! {
                    r = send_and_confirm(&s, module, call.abi_encode().into(), |_| Ok(())) => r,
                    () = until.cancelled() => return,
                };
                match sent {
                    Ok(()) => {
                        info!(lease = %lease, key = %key, "service's TLS key bound on chain");
                        break;
                    }
                    Err(ChainError::Revert(r)) => {
                        let _ = unbound.send(format!(
                            "binding the service's TLS key on chain reverted: {r}"
                        ));
                        return;
                    }
                    Err(e) => {
                        let wait = backoff.delay();
                        warn!(lease = %lease, error = %e, retry_in_s = wait.as_secs(), "binding the service's TLS key failed; trying again");
                        backoff.failed();
                        tokio::select! {
                            () = until.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
        drop(unbound);
        crate::front::serve(front, listener, until).await;
    });
    Ok((to, stop.drop_guard(), never))
}

/// Returns once lease `id`'s escrow is spent (what it owes reaches what is left), polling every
/// 3 s; never returns while the RPC fails.
async fn spent(s: &Shared, id: B256) {
    let market = s.lens();
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (Ok(job), Ok(owed)) = (
            market.getJob(id).call().await,
            market.accrued(id).call().await,
        ) else {
            continue;
        };
        if job.status() == Status::Leased && owed >= job.escrow {
            return;
        }
    }
}

/// Keep the provider live for service leases: one `Staking.heartbeat` whenever half the period
/// has passed since the last one (PD-03), read from the chain (chain time, OFF-21), so restarts
/// and several heartbeat senders never beat more often than needed. RPC errors are retried within
/// a second; a stuck heartbeat is replaced with higher fees by the transaction manager.
pub(crate) async fn heartbeats(s: &Arc<Shared>) {
    let staking = Staking::new(s.staking, &s.client().provider);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    loop {
        let next = async {
            let l = staking
                .liveness(s.cfg.owner)
                .call()
                .await
                .map_err(classify)?;
            let (at, period) = (l.at.to::<u64>(), u64::from(l.period).max(2));
            s.metrics.last_heartbeat.store(at, Relaxed);
            let now = s.client().now().await?;
            let due = at + period / 2;
            if at != 0 && now < due {
                return Ok::<_, ChainError>(Duration::from_secs((due - now).min(10)));
            }
            let call = Staking::heartbeatCall {};
            let t =
                s.tx.send(s.staking, call.abi_encode().into(), |_| Ok(()))
                    .await?;
            let sent = Instant::now();
            // Replaced with bumped fees if it does not land; given up on after half a period,
            // when the next one is due anyway.
            match s
                .tx
                .confirm(t, Duration::from_secs(period / 2), |_| Ok(()))
                .await?
            {
                Outcome::Mined(r) if r.status() => {
                    mined(s, sent);
                    s.metrics.heartbeats.increment(1);
                    debug!(tx = %r.transaction_hash, "heartbeat");
                }
                Outcome::Mined(r) => {
                    warn!(tx = %r.transaction_hash, "heartbeat reverted");
                }
                Outcome::NonceTaken => {}
            }
            Ok(Duration::from_secs(1))
        }
        .await;
        let wait = match next {
            Ok(d) => {
                backoff.succeeded();
                d
            }
            Err(e) => {
                s.metrics.rpc_errors.increment(1);
                let wait = backoff.delay();
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "heartbeat failed; retrying");
                backoff.failed();
                wait
            }
        };
        tokio::select! {
            () = s.kill.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
