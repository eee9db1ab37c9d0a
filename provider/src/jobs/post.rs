//! Posting a job's result: its commitment and metadata hash sent to the lease's results module,
//! retried on every revert or network error until the result deadline (MEC-15), and reconciled
//! after a restart or a reorg by sending the same signed transaction again (PD-04, OFF-03).

use std::time::{Duration, Instant};

use alloy::{
    primitives::{B256, keccak256},
    sol_types::SolCall,
};
use gridlease_bindings::{Results, Results::ResultsErrors};
use gridlease_chain::{ChainError, ContractError, classify};
use gridlease_daemon::txm::{Outcome, Signed};
use gridlease_workload::merkle::Commitment;
use tracing::{error, info, warn};

use crate::{
    jobs::step::Step,
    shared::Shared,
    state::{Job, JobState},
    tx::{journal, mined},
};

fn meta_hash(s: &Shared, id: B256) -> B256 {
    std::fs::read(s.result_path(id).with_extension("json"))
        .map(keccak256)
        .unwrap_or_default()
}

/// The commitment job `job` computed.
fn commitment(job: &Job) -> Result<Commitment, Step> {
    match job.root {
        Some(root) => Ok(Commitment {
            root,
            size: job.size,
        }),
        None => Err(Step::Fail("computed without a root".into())),
    }
}

pub(crate) async fn post(s: &Shared, job: &Job) -> Result<(), Step> {
    let c = commitment(job)?;
    let uri = format!("{}/results/{}", s.cfg.public_url, job.id);
    let call = Results::postResultCall {
        leaseId: job.id,
        root: c.root,
        size: c.size,
        uri,
        metaHash: meta_hash(s, job.id),
    };
    let module = s.module_of(job);
    let sent =
        s.tx.send(module, call.abi_encode().into(), |t| {
            match s.db().posting(job.id, t.hash, t.raw.to_vec()) {
                Ok(true) => Ok(()),
                Ok(false) => Err("the job left Computed".into()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
    match sent {
        Ok(t) => {
            info!(lease = %job.id, tx = %t.hash, root = %c.root, size = c.size, "result sent");
            Ok(())
        }
        Err(ChainError::Revert(r))
            if matches!(
                r.error,
                ContractError::Results(ResultsErrors::ResultAlreadyPosted(_))
            ) =>
        {
            // Posted by an earlier run whose journal entry was lost: check it is ours.
            let posted = Results::new(module, &s.client().provider)
                .resultOf(job.id)
                .call()
                .await
                .map_err(classify)?;
            if posted == c.hash() {
                s.db()
                    .advance(job.id, JobState::Computed, JobState::Posting, None)?;
                Ok(())
            } else {
                Err(Step::Fail(format!(
                    "another result (commitment {posted}) is on chain"
                )))
            }
        }
        Err(ChainError::Revert(r))
            if matches!(
                r.error,
                ContractError::Results(ResultsErrors::NotABatchJob(_))
            ) =>
        {
            Err(Step::Fail(format!("a service lease posts no result: {r}")))
        }
        Err(e) => post_failed(s, job, &e.to_string()).await,
    }
}

/// A result post failed (a revert or the network): count it, alert, and retry until the
/// result deadline has passed (MEC-15: never give up after one failure).
async fn post_failed(s: &Shared, job: &Job, why: &str) -> Result<(), Step> {
    s.metrics.post_failures.increment(1);
    let grace = s
        .modules
        .get(s.client(), s.module_of(job))
        .await?
        .deadline_grace;
    let deadline = job.end + grace;
    let now = s.client().now().await?;
    if now > deadline {
        error!(lease = %job.id, alert = true, deadline, error = %why, "result post failed and its deadline has passed: giving up");
        return Err(Step::Fail(format!(
            "the result deadline {deadline} passed without the result on chain: {why}"
        )));
    }
    error!(lease = %job.id, alert = true, deadline, left_s = deadline - now, error = %why, "result post failed: retrying until the deadline");
    Err(Step::Retry(format!("result post failed: {why}")))
}

/// After a reorg: a posted result that is no longer on chain goes back to `Posting`, which
/// sends the same signed transaction again (PD-04, OFF-03); one still there ends the driver.
pub(crate) async fn still_posted(s: &Shared, job: &Job) -> Result<(), Step> {
    let results = Results::new(s.module_of(job), &s.client().provider);
    let posted = results.resultOf(job.id).call().await.map_err(classify)?;
    if posted != B256::ZERO {
        return Err(Step::Stop);
    }
    warn!(lease = %job.id, "the posted result is gone from the chain (reorg): sending it again");
    s.db()
        .transition(job.id, JobState::Posted, JobState::Posting)?;
    Ok(())
}

/// A result transaction is recorded: find out whether it landed, rebroadcast the same bytes if
/// not, and go back to `Computed` only when its nonce went to another transaction.
pub(crate) async fn reconcile_posting(s: &Shared, job: &Job) -> Result<(), Step> {
    let c = commitment(job)?;
    let results = Results::new(s.module_of(job), &s.client().provider);
    let posted = results.resultOf(job.id).call().await.map_err(classify)?;
    if posted != B256::ZERO {
        if posted != c.hash() {
            return Err(Step::Fail(format!(
                "a different result (commitment {posted}) is on chain"
            )));
        }
        if s.db()
            .transition(job.id, JobState::Posting, JobState::Posted)?
        {
            s.metrics.results_posted.increment(1);
            info!(lease = %job.id, "result on chain");
        }
        return Ok(());
    }
    let (Some(hash), Some(raw)) = (job.tx, job.raw.clone()) else {
        s.db()
            .transition(job.id, JobState::Posting, JobState::Computed)?;
        return Ok(());
    };
    let tx = s.tx.receipt(hash).await?;
    let signed = match tx {
        Some(r) if !r.status() => {
            // Mined and reverted (the state changed since its simulation): post again, whose
            // simulation says why, counts it and retries until the deadline.
            s.metrics.post_failures.increment(1);
            error!(lease = %job.id, alert = true, tx = %hash, "the result transaction reverted on chain: posting again");
            s.db()
                .transition(job.id, JobState::Posting, JobState::Computed)?;
            return Ok(());
        }
        Some(_) => {
            return Err(Step::Retry(
                "mined; waiting for the node to show the result".into(),
            ));
        }
        None => {
            use alloy::consensus::Transaction;
            use alloy::eips::Decodable2718;
            let env = alloy::consensus::TxEnvelope::decode_2718_exact(&raw)
                .map_err(|e| Step::Fail(format!("stored transaction: {e}")))?;
            Signed {
                hash,
                nonce: env.nonce(),
                max_fee: env.max_fee_per_gas(),
                priority_fee: env.max_priority_fee_per_gas().unwrap_or_default(),
                raw: raw.into(),
            }
        }
    };
    // The same bytes again (OFF-03, OFF-10), then wait for them or a fee-bumped replacement.
    let _ = s.tx.broadcast(&signed).await;
    let sent = Instant::now();
    match s
        .tx
        .confirm(signed, Duration::from_secs(600), |n| journal(s, job.id, n))
        .await?
    {
        Outcome::Mined(_) => mined(s, sent),
        Outcome::NonceTaken => {
            // The nonce went elsewhere; resultOf (next loop) says whether ours landed.
            let again = results.resultOf(job.id).call().await.map_err(classify)?;
            if again == B256::ZERO {
                s.db()
                    .transition(job.id, JobState::Posting, JobState::Computed)?;
            }
        }
    }
    Ok(())
}
