//! The node's side of the results modules (protocol v2, `docs/protocol.md` §4): what each module's
//! windows are, and answers to data-availability challenges of the node's results (MEC-04).
//!
//! Anyone may challenge chunk `i` of a posted result, bonding ether; whoever reveals the chunk with
//! its Merkle proof within the response window (`Results.answer`) takes the bond, and an unanswered
//! challenge fails the result (refund and slash). The node reads `ChunkChallenged` logs of the
//! modules its leases are bound to up to the head, records each challenge of one of its results in
//! its store (so a restart still answers it), and answers from the result it stored at once,
//! retrying until the challenge's deadline. A challenge of a result the node holds therefore costs
//! the challenger its bond and never the provider its stake.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, B256},
    rpc::types::Log,
    sol_types::{SolCall, SolEvent},
};
use gridlease_bindings::{Results, Results::ResultsErrors};
use gridlease_chain::{ChainError, ContractError};
use gridlease_daemon::{Backoff, lock, txm::Outcome};
use gridlease_workload::merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES};
use tracing::{error, info, warn};

use crate::{
    shared::Shared,
    state::{Challenge, ChallengeEnd, StateError},
};

/// A fault kind (`LeaseFaulted.kind`, a bytes32 string) as text.
pub fn kind_name(kind: B256) -> String {
    String::from_utf8_lossy(kind.as_slice())
        .trim_end_matches('\0')
        .to_owned()
}

/// The modules whose challenges the node reads: the deployment's, and those its leases are bound
/// to.
pub(crate) fn watched(s: &Shared) -> Result<Vec<Address>, StateError> {
    let mut out = vec![s.results];
    for m in s.db().modules()? {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

/// A `ChunkChallenged` log: a challenge of one of the node's results is recorded and answered.
pub(crate) fn on_log(s: &Arc<Shared>, log: &Log) {
    let Ok(e) = Results::ChunkChallenged::decode_log(&log.inner) else {
        return;
    };
    let c = Challenge {
        lease: e.leaseId,
        index: e.index.saturating_to::<u64>(),
        deadline: e.deadline.to::<u64>(),
    };
    let ours = match s.db().job(c.lease) {
        Ok(Some(j)) => j.root.is_some() && s.module_of(&j) == log.address(),
        Ok(None) => false,
        Err(e) => {
            error!(lease = %c.lease, error = %e, "cannot read the job of a challenge");
            false
        }
    };
    if !ours {
        return;
    }
    match s.db().challenge(&c) {
        Ok(true) if s.cfg.withhold_results => {
            s.metrics.challenges_seen.increment(1);
            warn!(lease = %c.lease, index = c.index, deadline = c.deadline, challenger = %e.challenger, "a chunk of our result is challenged: not answering (testing.withhold_results)");
        }
        Ok(true) => {
            s.metrics.challenges_seen.increment(1);
            warn!(lease = %c.lease, index = c.index, deadline = c.deadline, challenger = %e.challenger, "a chunk of our result is challenged: answering");
            answer(s, c);
        }
        Ok(false) => {}
        Err(e) => error!(lease = %c.lease, error = %e, "cannot record a challenge"),
    }
}

/// After a (re)start: answer every challenge recorded and not answered yet.
pub(crate) fn resume(s: &Arc<Shared>) -> Result<(), StateError> {
    for c in s.db().open_challenges()? {
        info!(lease = %c.lease, index = c.index, "resuming the answer to a challenge");
        answer(s, c);
    }
    Ok(())
}

/// Start the task answering `c`, unless one runs.
fn answer(s: &Arc<Shared>, c: Challenge) {
    if s.cfg.withhold_results {
        // Testing only: a provider that withholds its results leaves every challenge unanswered
        // (also those recorded before a restart).
        warn!(lease = %c.lease, index = c.index, "testing.withhold_results: not answering the challenge (the result will be proven unavailable)");
        return;
    }
    if !lock(&s.answering).insert(c) {
        return;
    }
    let s2 = s.clone();
    s.tracker.spawn(async move {
        let end = answer_until_done(&s2, c).await;
        lock(&s2.answering).remove(&c);
        if let Some(end) = end
            && let Err(e) = s2.db().challenge_ended(&c, end)
        {
            error!(lease = %c.lease, error = %e, "cannot record the end of a challenge");
        }
    });
}

/// Answer `c` until it is answered, gone, or past its deadline; `None` when the node stops first.
async fn answer_until_done(s: &Shared, c: Challenge) -> Option<ChallengeEnd> {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    loop {
        let why = match try_answer(s, &c).await {
            Ok(end) => return Some(end),
            Err(why) => why,
        };
        s.metrics.rpc_errors.increment(1);
        let late = match s.client().now().await {
            Ok(now) => now > c.deadline,
            Err(_) => false,
        };
        if late {
            s.metrics.challenges_missed.increment(1);
            error!(lease = %c.lease, index = c.index, alert = true, error = %why, "a challenge of our result went unanswered past its deadline: the result can be failed");
            return Some(ChallengeEnd::Missed);
        }
        let wait = backoff.delay();
        error!(lease = %c.lease, index = c.index, alert = true, error = %why, retry_in_ms = wait.as_millis() as u64, "answering a challenge failed; retrying until its deadline");
        tokio::select! {
            () = s.kill.cancelled() => return None,
            () = tokio::time::sleep(wait) => {}
        }
        backoff.failed();
    }
}

/// One attempt at answering `c` from the stored result.
async fn try_answer(s: &Shared, c: &Challenge) -> Result<ChallengeEnd, String> {
    let job = s
        .db()
        .job(c.lease)
        .map_err(|e| e.to_string())?
        .ok_or("no such job")?;
    let Some(root) = job.root else {
        return Err("the job has no result".into());
    };
    let want = Commitment {
        root,
        size: job.size,
    };
    let index = c.index;
    let (chunk, proof) = reveal(s, c.lease, want, index).await?;
    let call = Results::answerCall {
        leaseId: c.lease,
        root,
        size: job.size,
        index: alloy::primitives::U256::from(index),
        chunk: chunk.into(),
        proof,
    };
    let module = s.module_of(&job);
    let sent =
        s.tx.send(module, call.abi_encode().into(), |_| Ok(()))
            .await;
    let t = match sent {
        Ok(t) => t,
        // Revealed already (by this node before a restart, or by anyone holding the data), or the
        // challenge was reorged away: nothing left to answer.
        Err(ChainError::Revert(r))
            if matches!(
                r.error,
                ContractError::Results(ResultsErrors::NoChallenge(_))
            ) =>
        {
            info!(lease = %c.lease, index, "challenge no longer open (answered, or gone)");
            return Ok(ChallengeEnd::Gone);
        }
        Err(ChainError::Revert(r))
            if matches!(
                r.error,
                ContractError::Results(ResultsErrors::ResponseWindowOver(_))
            ) =>
        {
            s.metrics.challenges_missed.increment(1);
            error!(lease = %c.lease, index, alert = true, revert = %r, "too late to answer a challenge: the result can be failed");
            return Ok(ChallengeEnd::Missed);
        }
        Err(e) => return Err(e.to_string()),
    };
    // Fee-bumped while it waits; past this the attempt is retried (its simulation then tells
    // whether the first answer landed meanwhile).
    match s
        .tx
        .confirm(t, Duration::from_secs(120), |_| Ok(()))
        .await
        .map_err(|e| e.to_string())?
    {
        Outcome::Mined(r) if r.status() => {
            s.metrics.challenges_answered.increment(1);
            info!(lease = %c.lease, index, tx = %r.transaction_hash, "challenge answered: chunk revealed, bond collected");
            Ok(ChallengeEnd::Answered)
        }
        Outcome::Mined(r) => Err(format!(
            "the answer {} reverted on chain",
            r.transaction_hash
        )),
        Outcome::NonceTaken => Err("the answer's nonce went to another transaction".into()),
    }
}

/// Chunk `index` of the stored result of `lease` (committed as `want`) and its Merkle proof.
async fn reveal(
    s: &Shared,
    lease: B256,
    want: Commitment,
    index: u64,
) -> Result<(Vec<u8>, Vec<B256>), String> {
    let path = s.result_path(lease);
    let mut cache = s.proofs.0.lock().await;
    let tree = match &*cache {
        Some((id, tree)) if *id == lease => tree.clone(),
        _ => {
            let path = path.clone();
            let tree = tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path).map_err(|e| {
                    format!("cannot read the stored result {}: {e}", path.display())
                })?;
                if Commitment::of(&bytes) != want {
                    return Err(format!(
                        "the stored result {} is not the posted one (root {}, {} bytes)",
                        path.display(),
                        want.root,
                        want.size
                    ));
                }
                Ok(Arc::new(MerkleTree::result(&bytes)))
            })
            .await
            .map_err(|e| e.to_string())??;
            *cache = Some((lease, tree.clone()));
            tree
        }
    };
    drop(cache);
    if index >= tree.leaves() {
        return Err(format!(
            "chunk {index} is past the result's {} leaves",
            tree.leaves()
        ));
    }
    let chunk = read_chunk(&path, want.size, index)
        .map_err(|e| format!("cannot read chunk {index} of {}: {e}", path.display()))?;
    Ok((chunk, tree.proof(index)))
}

/// Leaf `index` of a result of `size` bytes stored at `path`, read alone.
fn read_chunk(path: &std::path::Path, size: u64, index: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let leaf = RESULT_LEAF_BYTES as u64;
    let from = index.saturating_mul(leaf).min(size);
    let len = size.saturating_sub(from).min(leaf);
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut out = vec![0; len as usize];
    f.read_exact(&mut out)?;
    Ok(out)
}

/// Delete the stored results (`<results>/<lease id>.bin`) that nothing can ask for any more:
/// their job ended at or before `until` (unix seconds; the caller keeps `jobs.keep_results`, and
/// never less than the fault horizon, for tenants' downloads) and the market holds none of their
/// collateral, so no challenge or fault of them can come ([`crate::state::Store::result_done`]).
/// Returns how many were deleted; a file of no job is left alone. Before, every result stayed on
/// the provider's disk for good. Their meta (`.json`, the run's logs) goes with them, and so does
/// what a job's run left in `<results>/../logs` (a service's logs, a run cut short).
pub fn prune_results(
    store: &std::sync::Mutex<crate::state::Store>,
    results: &std::path::Path,
    until: u64,
) -> std::io::Result<usize> {
    let mut deleted = 0;
    let logs = results.with_file_name("logs");
    for (dir, ext) in [
        (results, ".bin"),
        (logs.as_path(), ".log"),
        (logs.as_path(), ".log.tmp"),
    ] {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let path = e?.path();
            let Some(id) = crate::id_named(&path, ext) else {
                continue;
            };
            let done = lock(store).result_done(id, until).unwrap_or(false);
            if done {
                // Gone already (a run that ended meanwhile removes its live log): nothing to do.
                remove_if_there(&path)?;
                if ext == ".bin" {
                    deleted += 1;
                    remove_if_there(&path.with_extension("json"))?;
                }
            }
        }
    }
    Ok(deleted)
}

fn remove_if_there(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_results_nothing_can_ask_for_are_deleted() {
        use crate::state::{Job, JobState, Store};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = std::sync::Mutex::new(Store::open(&dir.path().join("state.db")).expect("db"));
        let results = dir.path().join("results");
        std::fs::create_dir_all(&results).expect("dir");
        let id = |b: u8| B256::repeat_byte(b);
        // Closed; closed but its collateral held; still posted (open); no job at all.
        let (closed, held, posted, stray) = (id(1), id(2), id(3), id(4));
        for (lease, state) in [
            (closed, JobState::Closed),
            (held, JobState::Closed),
            (posted, JobState::Posted),
        ] {
            let db = lock(&store);
            db.insert(&Job {
                id: lease,
                terms: vec![1],
                ..Job::default()
            })
            .expect("insert");
            db.transition(lease, JobState::Bid, JobState::Won)
                .expect("won");
            let mut at = JobState::Won;
            for next in [
                JobState::Acknowledged,
                JobState::Running,
                JobState::Computed,
                JobState::Posting,
                JobState::Posted,
                JobState::Closed,
            ] {
                if at == state {
                    break;
                }
                assert!(
                    db.transition(lease, at, next).expect("step"),
                    "{at:?} -> {next:?}"
                );
                at = next;
            }
        }
        lock(&store).hold(held, 1).expect("held");
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("dir");
        for lease in [closed, held, posted, stray] {
            std::fs::write(results.join(format!("{lease}.bin")), b"r").expect("write");
            std::fs::write(results.join(format!("{lease}.json")), b"{}").expect("write");
            std::fs::write(logs.join(format!("{lease}.log")), b"l").expect("write");
        }
        std::fs::write(results.join("notes.txt"), b"x").expect("write");
        let now = crate::unix_now();
        // Ended after `until`: kept (the tenant may still download it).
        assert_eq!(
            prune_results(&store, &results, now - 3_600).expect("prune"),
            0
        );
        assert_eq!(prune_results(&store, &results, now + 1).expect("prune"), 1);
        // Its meta (the run's logs) and any live logs go with it.
        for gone in [
            results.join(format!("{closed}.bin")),
            results.join(format!("{closed}.json")),
            logs.join(format!("{closed}.log")),
        ] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        for kept in [held, posted, stray] {
            assert!(results.join(format!("{kept}.bin")).exists(), "{kept}");
            assert!(logs.join(format!("{kept}.log")).exists(), "{kept}");
        }
        // Released: its result goes too.
        lock(&store).unhold(held).expect("released");
        assert_eq!(prune_results(&store, &results, now + 1).expect("prune"), 1);
        assert!(results.join("notes.txt").exists());
    }

    #[test]
    fn a_chunk_read_alone_is_the_leaf_of_the_result() {
        use gridlease_workload::merkle::result_chunk;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.bin");
        for size in [0usize, 1, 1024, 1025, 3_893] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &data).expect("write");
            let leaves = gridlease_workload::merkle::result_leaves(size as u64);
            for index in 0..leaves {
                assert_eq!(
                    read_chunk(&path, size as u64, index).expect("read"),
                    result_chunk(&data, index),
                    "size {size}, leaf {index}"
                );
            }
        }
    }

    #[test]
    fn fault_kinds_read_as_text() {
        let mut k = [0u8; 32];
        k[..7].copy_from_slice(b"no-show");
        assert_eq!(kind_name(B256::from(k)), "no-show");
    }
}
