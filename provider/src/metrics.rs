//! The node's counters and gauges ([`Metrics`]), served in Prometheus form by
//! [`crate::api`] (`GET /metrics`).

use std::{
    collections::BTreeMap,
    sync::{Mutex, atomic::AtomicU64},
};

/// Counters and gauges of the node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Bid transactions sent.
    pub bids_sent: AtomicU64,
    /// Signed bids kept for keepers (`bidding.mode = "signed"`).
    pub bids_signed: AtomicU64,
    /// Leases won.
    pub bids_won: AtomicU64,
    /// Orders not bid on, by reason.
    pub skipped: Mutex<BTreeMap<String, u64>>,
    /// Results posted.
    pub results_posted: AtomicU64,
    /// Result posts that failed (reverted, or the network): each is retried until the deadline
    /// and logged as an alert (MEC-15).
    pub post_failures: AtomicU64,
    /// Leases the node could not acknowledge before their start window ended (a no-show is
    /// provable; the job is not run).
    pub late_acks: AtomicU64,
    /// Data-availability challenges of the node's results seen (MEC-04).
    pub challenges_seen: AtomicU64,
    /// Challenges the node answered (revealed the chunk, took the bond).
    pub challenges_answered: AtomicU64,
    /// Challenges left unanswered past their deadline (alert: the result can be failed).
    pub challenges_missed: AtomicU64,
    /// Faults proven against this provider.
    pub slashed: AtomicU64,
    /// Held collateral released after the fault horizon.
    pub held_released: AtomicU64,
    /// Reorgs deeper than `chain.confirmations` seen (OFF-02).
    pub deep_reorgs: AtomicU64,
    /// After a deep reorg, the block until which new jobs do not start and tenants' results are
    /// not released (OFF-02); 0 when none was seen.
    pub finality_hold: AtomicU64,
    /// The owner's withdrawable earnings (Market credit) by token address, in token units.
    pub withdrawable: Mutex<BTreeMap<String, u64>>,
    /// Heartbeats mined (service leases).
    pub heartbeats: AtomicU64,
    /// Chain time of the provider's last heartbeat.
    pub last_heartbeat: AtomicU64,
    /// Jobs whose run failed (reported as their result).
    pub jobs_failed: AtomicU64,
    /// RPC errors seen.
    pub rpc_errors: AtomicU64,
    /// Transactions mined, and their total send-to-receipt time in milliseconds.
    pub tx_mined: AtomicU64,
    /// Sum of send-to-receipt times, ms.
    pub tx_latency_ms: AtomicU64,
    /// Order log seen -> bid broadcast, total microseconds (with `bids_sent`: the mean).
    pub bid_latency_us: AtomicU64,
    /// Paid to the provider by closed leases (token units, all tokens summed).
    pub earned: AtomicU64,
    /// Latest block seen.
    pub head: AtomicU64,
    /// Unix time of the last successful chain poll.
    pub last_poll: AtomicU64,
}

impl Metrics {
    /// Count a skipped order.
    pub fn skip(&self, reason: &str) {
        if let Ok(mut m) = self.skipped.lock() {
            *m.entry(reason.to_owned()).or_default() += 1;
        }
    }
}
