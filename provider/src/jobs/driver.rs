//! A job's driver: one task per won lease, walking its job from `Won` to `Posted` (or a
//! terminal state) one compare-and-set step at a time: acknowledge within the start window, wait
//! out a finality hold, run the job (stopped at its lease end at the latest), and commit its
//! result (or its failure report) durably before posting it ([`super::post`]).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{eips::BlockId, primitives::B256, sol_types::SolCall};
use anyhow::Result;
use gridlease_bindings::{Market, Results, Results::ResultsErrors};
use gridlease_chain::{ChainError, ContractError, classify};
use gridlease_daemon::{Backoff, lock};
use gridlease_primitives::{
    protocol::{JobViewExt, Status},
    spec::{JobKind, RunSpec, Workload},
};
use gridlease_workload::merkle::Commitment;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::{
    executor::{ExecError, JobRun, OnSpawn},
    finality::finality_held,
    jobs::{
        post::{post, reconcile_posting, still_posted},
        service::serve,
        step::{Step, job_terms},
    },
    shared::Shared,
    state::{Job, JobState, Set},
    tx::{journal, send_and_confirm},
};

/// Start the driver of lease `id` unless one runs.
pub(crate) fn drive(s: &Arc<Shared>, id: B256) {
    let token = s.kill.child_token();
    {
        let mut d = lock(&s.drivers);
        if d.contains_key(&id) {
            return;
        }
        d.insert(id, token.clone());
    }
    let s2 = s.clone();
    s.tracker.spawn(async move {
        let r = driver(&s2, id, &token).await;
        lock(&s2.drivers).remove(&id);
        if let Err(e) = r {
            error!(lease = %id, error = %e, "job driver stopped");
        }
    });
}

/// Walk job `id` to `Posted` (or a terminal state), one compare-and-set step at a time.
async fn driver(s: &Arc<Shared>, id: B256, cancel: &CancellationToken) -> Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut waiting = false;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let read = s.db().job(id); // (the database's lock is not held across the wait below)
        let job = match read {
            Ok(Some(job)) => job,
            Ok(None) => return Ok(()),
            // The database failing: read again, as a failed step is tried again.
            Err(e) => {
                let wait = backoff.delay();
                warn!(lease = %id, error = %e, retry_in_ms = wait.as_millis() as u64, "reading the job's row failed; trying again");
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
                backoff.failed();
                continue;
            }
        };
        let step = match job.state {
            JobState::Won => acknowledge(s, &job).await,
            JobState::Acknowledged => match finality_held(s) {
                // OFF-02: the lease itself may still be undone; start once the hold is over.
                Some(until) => {
                    if !waiting {
                        info!(lease = %id, until, "job start held after a deep reorg");
                        waiting = true;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(s.cfg.poll_ms)) => {}
                    }
                    continue;
                }
                None => {
                    let checked = if waiting {
                        still_ours(s, id).await
                    } else {
                        Ok(())
                    };
                    if checked.is_ok() {
                        s.db()
                            .transition(id, JobState::Acknowledged, JobState::Running)?;
                    }
                    checked
                }
            },
            JobState::Running => execute(s, &job, cancel).await,
            JobState::Computed => post(s, &job).await,
            JobState::Posting => reconcile_posting(s, &job).await,
            JobState::Posted => still_posted(s, &job).await,
            _ => return Ok(()),
        };
        match step {
            Ok(()) => backoff.succeeded(),
            Err(Step::Stop) => return Ok(()),
            Err(Step::Retry(why)) => {
                s.metrics.rpc_errors.increment(1);
                let wait = backoff.delay();
                warn!(lease = %id, state = job.state.name(), why = %why, retry_in_ms = wait.as_millis() as u64, "job step will be retried");
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
                backoff.failed();
            }
            Err(Step::Fail(why)) => {
                error!(lease = %id, why = %why, "job failed");
                // From the state the step left it in: posting journals its transaction (moving
                // the job to `Posting`) before a failure past the deadline gives up on it.
                let now = s.db().job(id)?.map_or(job.state, |j| j.state);
                if now.can_become(JobState::Failed) {
                    s.db()
                        .advance(id, now, JobState::Failed, Some(Set::Note(why)))?;
                }
                return Ok(());
            }
        }
    }
}

/// After a finality hold (OFF-02): the lease must still be this provider's on the chain that
/// stands, else the reorg undid it and the job must not run.
async fn still_ours(s: &Shared, id: B256) -> Result<(), Step> {
    let v = s
        .lens()
        .getJob(id)
        .call()
        .await
        .map_err(|e| Step::Retry(classify(e).to_string()))?;
    if v.status() == Status::Leased && v.provider == s.cfg.owner {
        Ok(())
    } else {
        Err(Step::Fail(
            "after the finality hold the lease is no longer this provider's (undone by the deep reorg, or closed): not running it".into(),
        ))
    }
}

/// Acknowledge lease `job` within its module's start window (`Results.acknowledge`), unless it
/// already is (an instant order won by the node's own bid starts acknowledged).
async fn acknowledge(s: &Shared, job: &Job) -> Result<(), Step> {
    let v = s.lens().getJob(job.id).call().await.map_err(classify)?;
    if v.status() != Status::Leased {
        return Err(Step::Fail(format!(
            "the lease is not running (status {}): it ended before it started",
            v.status
        )));
    }
    if v.acknowledged {
        // PD-02: the acknowledgement seen at the head may be the node's own, sent when the lease
        // was new (`acknowledge_early`) and less deep than the lease is now. A shallow reorg could
        // still drop it, and the job, run on the word of it, would post its result past the start
        // window in vain. It is trusted once `confirmations` deep; until then the step waits (and
        // if it is dropped, the next read finds the lease unacknowledged and acknowledges it).
        if !acknowledged_deep(s, job.id).await? {
            debug!(lease = %job.id, confirmations = s.cfg.confirmations, "acknowledged at the head, not yet that deep: the job waits");
            tokio::time::sleep(Duration::from_millis(s.cfg.poll_ms)).await;
            return Ok(());
        }
        s.db()
            .transition(job.id, JobState::Won, JobState::Acknowledged)?;
        info!(lease = %job.id, "acknowledged, the acknowledgement as deep as the lease had to be");
        return Ok(());
    }
    let call = Results::acknowledgeCall { leaseId: job.id };
    let module = s.module_of(job);
    match send_and_confirm(s, module, call.abi_encode().into(), |t| {
        journal(s, job.id, t)
    })
    .await
    {
        Ok(()) => info!(lease = %job.id, "acknowledged"),
        Err(ChainError::Revert(r))
            if matches!(
                r.error,
                ContractError::Results(ResultsErrors::StartWindowOver(_))
            ) =>
        {
            // Nothing can be done for the lease any more: the module refuses a result of an
            // unacknowledged lease past its start window too (a late post cannot erase the
            // no-show), and a service lease is only paid once acknowledged.
            s.metrics.late_acks.increment(1);
            error!(lease = %job.id, alert = true, revert = %r, "too late to acknowledge: the start window passed (a no-show is provable); not running the job");
            return Err(Step::Fail(format!("too late to acknowledge: {r}")));
        }
        Err(ChainError::Revert(r))
            if matches!(
                r.error,
                ContractError::Results(ResultsErrors::LeaseNotRunning(_))
            ) =>
        {
            return Err(Step::Fail(format!(
                "the lease ended before it started: {r}"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    s.db()
        .transition(job.id, JobState::Won, JobState::Acknowledged)?;
    Ok(())
}

/// Whether lease `id` is acknowledged in the block `chain.confirmations` below the head (an
/// instant order's winning bid acknowledges it in the lease's own block, which is that deep once
/// its driver runs).
async fn acknowledged_deep(s: &Shared, id: B256) -> Result<bool, ChainError> {
    if s.cfg.confirmations == 0 {
        return Ok(true);
    }
    let head = s.client().head().await?;
    let Some(deep) = head.checked_sub(s.cfg.confirmations) else {
        return Ok(false);
    };
    let v = s
        .lens()
        .getJob(id)
        .block(BlockId::number(deep))
        .call()
        .await
        .map_err(classify)?;
    Ok(v.acknowledged)
}

/// A lease of this provider seen at the head, before it is `chain.confirmations` deep: acknowledge
/// it now, since the module's start window may be shorter than the time those blocks take (the job
/// itself still starts only at that depth, PD-02). A lease a reorg then removes only costs the
/// acknowledgement's gas; the driver's own step later finds the lease acknowledged.
pub(crate) fn acknowledge_early(s: &Arc<Shared>, l: &Market::LeaseStarted) {
    let id = l.orderId;
    if l.provider != s.cfg.owner || s.cfg.confirmations == 0 || s.stop.is_cancelled() {
        return;
    }
    {
        let mut seen = lock(&s.acked_early);
        if seen.len() >= 10_000 {
            seen.clear(); // bounded: at worst a lease read again is looked up again
        }
        if !seen.insert(id) {
            return;
        }
    }
    let (s2, module) = (s.clone(), l.module);
    s.tracker.spawn(async move {
        let s = &s2;
        // The log is read once: an RPC failure is retried here (for up to two minutes, the
        // lease's own state read again each time), not left to the driver, which acknowledges
        // only once the lease is deep enough and may then be past the start window.
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let r = async {
                let v = s.lens().getJob(id).call().await.map_err(classify)?;
                if v.status() != Status::Leased || v.acknowledged {
                    return Ok(false);
                }
                let module = s.modules.by_id(s.client(), s.lens, module).await?;
                let call = Results::acknowledgeCall { leaseId: id };
                send_and_confirm(s, module, call.abi_encode().into(), |_| Ok(())).await?;
                Ok::<_, ChainError>(true)
            }
            .await;
            match r {
                Ok(true) => info!(lease = %id, "acknowledged at the head"),
                Ok(false) => {}
                Err(ChainError::Network(e))
                    if tokio::time::Instant::now() < give_up && !s.stop.is_cancelled() =>
                {
                    let wait = backoff.delay();
                    backoff.failed();
                    warn!(lease = %id, error = %e, retry_in_ms = wait.as_millis() as u64, "acknowledging at the head failed on the RPC; trying again");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                // The driver acknowledges (or fails) once the lease is deep enough.
                Err(e) => warn!(lease = %id, error = %e, "acknowledging at the head failed; the job's own step tries again"),
            }
            return;
        }
    });
}

/// Delete lease `id`'s work directory; a failure is logged (files a job's user made that the node
/// cannot delete, under rootless Podman: the operator removes them), never fatal.
fn clear_work_dir(s: &Shared, id: B256) {
    let dir = s.cfg.work_dir.join(id.to_string());
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            warn!(lease = %id, dir = %dir.display(), error = %e, "cannot delete the job's work directory; delete it by hand")
        }
    }
}

async fn execute(s: &Arc<Shared>, job: &Job, cancel: &CancellationToken) -> Result<(), Step> {
    if job.pgid > 0 {
        // A process left by a run before a crash: it goes, and the job runs again from the start.
        let out = s.cfg.work_dir.join(job.id.to_string()).join("out");
        let killed = crate::executor::kill_leftover(job.pgid, &out);
        info!(lease = %job.id, pgid = job.pgid, killed, "processes left by an earlier run");
        s.db().set_pgid(job.id, 0)?;
    }
    if let Some((root, size)) = stored_result(s, job.id) {
        // PD-07: a run stored its result but the row did not record it (the database failed, or the
        // node stopped, in between): that result stands; the job does not run again.
        s.db().set_pgid(job.id, 0)?;
        if s.db().computed(job.id, root, size)? {
            info!(lease = %job.id, root = %root, size, "result of an earlier run committed");
        }
        return Ok(());
    }
    let t = job_terms(job)?;
    let spec = match &job.spec {
        // Checked against the order's kind again: a row kept before the bid checked it.
        Some(js) => serde_json::from_str::<RunSpec>(js)
            .map_err(|e| format!("stored spec: {e}"))
            .and_then(|spec| crate::specs::check_kind(&spec, t.jobKind).map(|()| spec))
            .map_err(Step::Fail)?,
        None => match crate::specs::spec_for(&s.builtin.fetcher, &s.cfg.data_dir, job.id, &t).await
        {
            Ok(spec) => spec,
            // A lease won without the node's bid row (a lost store): its spec is fetched now. A
            // server down for a while, or a push still to come, is tried again while the job
            // could still finish; failing at once would throw the lease away.
            Err(e) => {
                let now = s.client().now().await?;
                let module = s.modules.get(s.client(), s.module_of(job)).await?;
                let stop = stop_at(job.end, module.deadline_grace, s.cfg.post_margin_secs);
                return Err(if now < stop {
                    Step::Retry(format!("spec: {e}"))
                } else {
                    Step::Fail(format!("spec: {e}"))
                });
            }
        },
    };
    let now = s.client().now().await?;
    let module = s.modules.get(s.client(), s.module_of(job)).await?;
    let left = stop_at(job.end, module.deadline_grace, s.cfg.post_margin_secs).saturating_sub(now);
    let gpu_lease = Arc::new(s.gpus.acquire(t.gpuCount));
    if let Some(why) = &gpu_lease.shortfall {
        warn!(lease = %job.id, why = %why, "job gets fewer GPUs than asked");
    }
    let (cpu_cores, ram_gib) = lock(&s.offer).limits(t.cpuCores, t.ramGiB);
    let run = JobRun {
        id: job.id,
        workload: gpu_lease.apply(spec.workload.clone()),
        time_limit: Duration::from_secs(left),
        work_dir: s.cfg.work_dir.join(job.id.to_string()),
        gpus: gpu_lease.uuids().to_vec(),
        cpu_cores,
        ram_gib,
        live_log: Some(s.log_path(job.id)),
        gpu_hold: Some(gpu_lease.clone()),
        loopback_port: None,
    };
    // A run starts from an empty work directory: what a run before a crash left there (a partial
    // `result` file among it) is not this run's output.
    clear_work_dir(s, job.id);
    if let Workload::Service { .. } = spec.workload {
        let r = serve(s, job, run, cancel).await;
        clear_work_dir(s, job.id);
        return r;
    }
    let started = Instant::now();
    info!(lease = %job.id, limit_s = left, "job running");
    let outcome = if left == 0 {
        Err(ExecError::TimedOut(Duration::ZERO))
    } else {
        let (id, s2) = (job.id, s.clone());
        let record: OnSpawn = Box::new(move |pgid| {
            let _ = s2.db().set_pgid(id, pgid);
        });
        match s.executor(&spec.workload) {
            Err(e) => Err(ExecError::Unsupported(e)),
            Ok(x) => x.run(run, cancel.clone(), record).await,
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let (bytes, meta) = match outcome {
        Ok(mut out) if s.cfg.corrupt_builtin && spec.workload.kind() == JobKind::MatmulI8 => {
            corrupt(&mut out.result);
            warn!(lease = %job.id, "testing.corrupt_builtin_results: posting a WRONG result");
            (
                out.result,
                serde_json::json!({"ok": true, "seconds": secs, "stderr_tail": out.stderr_tail}),
            )
        }
        Ok(out) => (
            out.result,
            serde_json::json!({"ok": true, "seconds": secs, "stderr_tail": out.stderr_tail}),
        ),
        Err(ExecError::Cancelled) => {
            clear_work_dir(s, job.id);
            return Err(Step::Stop);
        }
        Err(e) => {
            s.metrics.jobs_failed.increment(1);
            warn!(lease = %job.id, error = %e, "job failed: posting a failure report as its result");
            // Public (built-in results are): a reason code and nothing read from an input.
            let report = serde_json::json!({
                "ok": false,
                "lease": job.id,
                "reason": e.code(),
                "error": e.public(),
            });
            (serde_json::to_vec(&report).unwrap_or_default(), report)
        }
    };
    clear_work_dir(s, job.id);
    // The commitment of the bytes kept (and served, and revealed when challenged): 1 KiB leaves,
    // an empty output being one empty leaf (MEC-15).
    let (c, bytes) = tokio::task::spawn_blocking(move || (Commitment::of(&bytes), bytes))
        .await
        .map_err(|e| Step::Fail(format!("committing the result: {e}")))?;
    // What the run wrote to its standard error as it went, for its tenant (`GET /logs`): a failed
    // run's report is public and carries none of it, so it is kept here, private, with the result.
    let logs = std::fs::read(s.log_path(job.id))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let meta = serde_json::json!({
        "bytes": bytes.len(), "root": c.root, "size": c.size, "run": meta, "logs": logs
    });
    write_durably(&s.result_path(job.id), &bytes)
        .and_then(|()| {
            write_durably(
                &s.result_path(job.id).with_extension("json"),
                &serde_json::to_vec(&meta).unwrap_or_default(),
            )
        })
        .map_err(|e| Step::Retry(format!("cannot store the result: {e}")))?;
    // The run's logs are kept with its result now (`GET /logs` reads them there).
    let _ = std::fs::remove_file(s.log_path(job.id));
    s.db().set_pgid(job.id, 0)?;
    if s.db().computed(job.id, c.root, c.size)? {
        info!(lease = %job.id, root = %c.root, size = c.size, seconds = secs, "result committed");
    }
    Ok(())
}

/// The commitment of job `id`'s stored result, if a run got as far as storing it (its bytes, then
/// its `.json` meta, each written durably: the meta is there only with the bytes).
fn stored_result(s: &Shared, id: B256) -> Option<(B256, u64)> {
    let meta = std::fs::read(s.result_path(id).with_extension("json")).ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&meta).ok()?;
    let root = meta["root"].as_str()?.parse().ok()?;
    Some((root, meta["size"].as_u64()?))
}

/// When a batch job that has not exited is stopped (chain time): at its lease end (the time the
/// tenant pays for), and never later than `jobs.post_margin` before the result deadline
/// (`end + deadlineGrace`), so its report is posted in time.
fn stop_at(end: u64, deadline_grace: u64, post_margin: u64) -> u64 {
    end.min((end + deadline_grace).saturating_sub(post_margin))
}

/// Write `path` so that it is either absent or complete after a crash.
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Testing only: add one to the middle INT32 element of a built-in result.
fn corrupt(result: &mut [u8]) {
    let at = (result.len() / 4 / 2) * 4;
    if let Some(word) = result.get_mut(at..at + 4) {
        let v = i32::from_le_bytes([word[0], word[1], word[2], word[3]]).wrapping_add(1);
        word.copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_does_not_exit_stops_at_its_end_or_a_margin_before_the_deadline() {
        // Devnet: a minute of grace, 30 s margin: stopped at the lease end.
        assert_eq!(stop_at(1_000, 60, 30), 1_000);
        // A margin longer than the grace: that long before the deadline, inside the lease.
        assert_eq!(stop_at(1_000, 10, 30), 980);
        assert_eq!(stop_at(10, 0, 30), 0);
    }
}
