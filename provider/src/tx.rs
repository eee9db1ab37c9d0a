//! Sending the node's transactions: each journaled in the job's row before it leaves, confirmed,
//! and counted once mined.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes};
use gridlease_chain::ChainError;
use gridlease_daemon::txm::{Outcome, Signed};

use crate::shared::Shared;

/// Record transaction `t` of job `id` (and each replacement) in its row before it is broadcast.
pub(crate) fn journal(s: &Shared, id: B256, t: &Signed) -> Result<(), String> {
    s.db()
        .set_tx(id, t.hash, t.raw.to_vec())
        .map_err(|e| e.to_string())
}

/// Count a transaction mined, sent at `sent`.
pub(crate) fn mined(s: &Shared, sent: Instant) {
    s.metrics.tx_mined.increment(1);
    s.metrics
        .tx_latency_ms
        .increment(sent.elapsed().as_millis() as u64);
}

/// Send and wait for a successful receipt, each transaction (and replacement) handed to
/// `journal` before it leaves; a failed receipt is a revert.
pub(crate) async fn send_and_confirm(
    s: &Shared,
    to: Address,
    input: Bytes,
    mut journal: impl FnMut(&Signed) -> Result<(), String>,
) -> Result<(), ChainError> {
    let t = s.tx.send(to, input, &mut journal).await?;
    let sent = Instant::now();
    match s
        .tx
        .confirm(t, Duration::from_secs(600), &mut journal)
        .await?
    {
        Outcome::Mined(r) if r.status() => {
            mined(s, sent);
            Ok(())
        }
        Outcome::Mined(r) => Err(ChainError::Revert(Box::new(
            gridlease_chain::Revert::failed_on_chain(r.transaction_hash),
        ))),
        Outcome::NonceTaken => Err(ChainError::Network(
            "nonce taken by another transaction".into(),
        )),
    }
}
