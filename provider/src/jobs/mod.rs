//! The node's leases, once won: each gets one driver task that walks the job's
//! [`crate::state::JobState`] machine (acknowledge, run, commit, post). Every step is a
//! compare-and-set in SQLite and every transaction is journaled before broadcast, so after
//! `kill -9` a restart resumes each job where it was, never running a finished job again nor
//! posting twice (OFF-14, PD-04, PD-07).
//!
//! - [`lease`]: lease events (won, closed, faulted), which start and stop drivers.
//! - [`driver`]: the driver: acknowledging, running the job, committing its result.
//! - [`post`]: posting the result, and reconciling a post after a restart or a reorg.
//! - [`service`]: service leases (run until their end, restarted when they exit) and heartbeats.
//! - [`step`]: how a driver's step ends when it does not advance.

use alloy::primitives::B256;

use crate::shared::Shared;

pub mod driver;
pub mod lease;
pub mod post;
pub mod service;
pub mod step;

/// Most of a job's logs served (the tail): the executors keep no more of its stderr.
pub const MAX_LOGS: u64 = 1 << 20;

/// The logs of lease `id`'s job for its tenant (ACC-01): the tail of its standard error kept with
/// its result once it ended (a failed job's public reason), else what the running job has written
/// so far; `None` when it has not started. Read off the async workers.
pub async fn logs(s: &Shared, id: B256) -> std::io::Result<Option<String>> {
    let (meta, live) = (s.result_path(id).with_extension("json"), s.log_path(id));
    tokio::task::spawn_blocking(move || {
        if let Some(text) = kept_logs(&meta)? {
            return Ok(Some(text));
        }
        match std::fs::read(&live) {
            Ok(bytes) => Ok(Some(
                String::from_utf8_lossy(crate::executor::tail(&bytes, MAX_LOGS as usize))
                    .into_owned(),
            )),
            // The run may have ended between the two reads: its logs are with its result now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => kept_logs(&meta),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The logs kept with a run's result (`<result>.json`, if the run got that far): its standard
/// error's tail, and for a failed run what it wrote before it failed and why it failed.
fn kept_logs(meta: &std::path::Path) -> std::io::Result<Option<String>> {
    let bytes = match std::fs::read(meta) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let run = &v["run"];
    Ok(Some(match run["stderr_tail"].as_str() {
        Some(tail) => tail.to_owned(),
        None => format!(
            "{}[the job failed ({}): {}]\n",
            v["logs"].as_str().unwrap_or_default(),
            run["reason"].as_str().unwrap_or("unknown"),
            run["error"].as_str().unwrap_or("no reason kept")
        ),
    }))
}
