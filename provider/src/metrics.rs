//! The node's counters and gauges ([`Metrics`]), served in Prometheus form by
//! [`crate::api`] (`GET /metrics`) from the node's own [`Registry`].

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use gridlease_daemon::metrics::{Family, Registry};
use metrics::{Counter, Gauge};

/// Counters and gauges of the node, and the few values it also reads back.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Bid transactions sent.
    pub bids_sent: Counter,
    /// Signed bids kept for keepers (`bidding.mode = "signed"`).
    pub bids_signed: Counter,
    /// Leases won.
    pub bids_won: Counter,
    /// Orders not bid on, by reason ([`Metrics::skip`]).
    skipped: Family,
    /// Results posted.
    pub results_posted: Counter,
    /// Result posts that failed (reverted, or the network): each is retried until the deadline
    /// and logged as an alert (MEC-15).
    pub post_failures: Counter,
    /// Leases the node could not acknowledge before their start window ended (a no-show is
    /// provable; the job is not run).
    pub late_acks: Counter,
    /// Data-availability challenges of the node's results seen (MEC-04).
    pub challenges_seen: Counter,
    /// Challenges the node answered (revealed the chunk, took the bond).
    pub challenges_answered: Counter,
    /// Challenges left unanswered past their deadline (alert: the result can be failed).
    pub challenges_missed: Counter,
    /// Faults proven against this provider.
    pub slashed: Counter,
    /// Held collateral released after the fault horizon.
    pub held_released: Counter,
    /// Reorgs deeper than `chain.confirmations` seen (OFF-02).
    pub deep_reorgs: Counter,
    /// Heartbeats mined (service leases).
    pub heartbeats: Counter,
    /// Connections the TLS fronts of service leases carried to their services (ACC-03).
    pub tls_connections: Counter,
    /// Connections to those fronts that ended before the service was reached: no or a failed
    /// TLS handshake, or the service not listening.
    pub tls_failed: Counter,
    /// Jobs whose run failed (reported as their result).
    pub jobs_failed: Counter,
    /// RPC errors seen.
    pub rpc_errors: Counter,
    /// Transactions mined.
    pub tx_mined: Counter,
    /// Sum of send-to-receipt times, ms.
    pub tx_latency_ms: Counter,
    /// Order log seen -> bid broadcast, total microseconds (with `bids_sent`: the mean).
    pub bid_latency_us: Counter,
    /// Paid to the provider by closed leases (token units, all tokens summed).
    pub earned: Counter,
    /// Latest block seen (read back by the finality hold and `/healthz`).
    pub head: AtomicU64,
    /// After a deep reorg, the block until which new jobs do not start and tenants' results are
    /// not released (OFF-02); 0 when none was seen.
    pub finality_hold: AtomicU64,
    /// Unix time of the last successful chain poll (`/healthz`).
    pub last_poll: AtomicU64,
    /// Chain time of the provider's last heartbeat.
    pub last_heartbeat: AtomicU64,
    /// The owner's withdrawable earnings (Market credit) by token address, in token units, as
    /// last read ([`Metrics::withdrawable`]).
    withdrawable: Mutex<BTreeMap<String, u64>>,
    withdrawable_g: Family,
    head_g: Gauge,
    finality_hold_g: Gauge,
    last_heartbeat_g: Gauge,
    held_g: Gauge,
    jobs_g: Family,
    /// The operator key's balance in ether, as last read (OFF-20).
    pub wallet_eth: Gauge,
    /// 1 while that balance is below `wallet.low_balance` (no new bids), else 0.
    pub low_balance: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        let c = |name, help| r.counter(name, help);
        Self {
            bids_sent: c("gridlease_provider_bids_sent_total", "Bid transactions sent."),
            bids_signed: c(
                "gridlease_provider_bids_signed_total",
                "Signed bids kept for keepers (bidding.mode = signed).",
            ),
            bids_won: c("gridlease_provider_bids_won_total", "Leases won."),
            skipped: r.counters(
                "gridlease_provider_orders_skipped_total",
                "Orders not bid on, by reason.",
                "reason",
            ),
            results_posted: c("gridlease_provider_results_posted_total", "Results posted."),
            post_failures: c(
                "gridlease_provider_result_post_failures_total",
                "Result posts that failed (retried until the deadline; alert).",
            ),
            late_acks: c(
                "gridlease_provider_missed_start_windows_total",
                "Leases not acknowledged before their start window ended (alert: a no-show is provable).",
            ),
            challenges_seen: c(
                "gridlease_provider_challenges_seen_total",
                "Data-availability challenges of this node's results seen.",
            ),
            challenges_answered: c(
                "gridlease_provider_challenges_answered_total",
                "Challenges answered from the stored result (bond collected).",
            ),
            challenges_missed: c(
                "gridlease_provider_challenges_missed_total",
                "Challenges not answered in time (alert: the result can be failed).",
            ),
            slashed: c(
                "gridlease_provider_faults_total",
                "Faults proven against this provider (alert).",
            ),
            held_released: c(
                "gridlease_provider_held_released_total",
                "Closed leases whose held collateral was released after the fault horizon.",
            ),
            deep_reorgs: c(
                "gridlease_provider_deep_reorgs_total",
                "Reorgs deeper than chain.confirmations seen.",
            ),
            heartbeats: c("gridlease_provider_heartbeats_total", "Heartbeats mined."),
            tls_connections: c(
                "gridlease_provider_tls_connections_total",
                "Connections the TLS fronts of service leases carried to their services.",
            ),
            tls_failed: c(
                "gridlease_provider_tls_failed_total",
                "Connections to a service lease's TLS front that never reached the service.",
            ),
            jobs_failed: c("gridlease_provider_jobs_failed_total", "Jobs whose run failed."),
            rpc_errors: c("gridlease_provider_rpc_errors_total", "RPC errors."),
            tx_mined: c("gridlease_provider_tx_mined_total", "Transactions mined."),
            tx_latency_ms: c(
                "gridlease_provider_tx_latency_ms_sum",
                "Send-to-receipt time of mined transactions, ms.",
            ),
            bid_latency_us: c(
                "gridlease_provider_bid_latency_us_sum",
                "Order log seen to bid broadcast, microseconds.",
            ),
            earned: c(
                "gridlease_provider_earned_units_total",
                "Paid to the provider by closed leases, token units.",
            ),
            head: AtomicU64::new(0),
            finality_hold: AtomicU64::new(0),
            last_poll: AtomicU64::new(0),
            last_heartbeat: AtomicU64::new(0),
            withdrawable: Mutex::default(),
            withdrawable_g: r.gauges(
                "gridlease_provider_withdrawable",
                "The owner's earnings the market holds for withdrawal (token units), by token.",
                "token",
            ),
            head_g: r.gauge("gridlease_provider_head_block", "Latest block seen."),
            finality_hold_g: r.gauge(
                "gridlease_provider_finality_hold_until_block",
                "After a deep reorg: no job starts and no tenant result is released before this block (0: none).",
            ),
            last_heartbeat_g: r.gauge(
                "gridlease_provider_last_heartbeat_seconds",
                "Chain time of the provider's last heartbeat.",
            ),
            held_g: r.gauge(
                "gridlease_provider_held_leases",
                "Closed leases whose collateral the market holds for the fault horizon.",
            ),
            jobs_g: r.gauges("gridlease_provider_jobs", "Jobs by state.", "state"),
            wallet_eth: r.gauge(
                "gridlease_provider_wallet_eth",
                "The operator key's balance in ether, as last read.",
            ),
            low_balance: r.gauge(
                "gridlease_provider_low_balance",
                "1 while the operator key holds less than wallet.low_balance: no new bids.",
            ),
            registry: r,
        }
    }
}

impl Metrics {
    /// Count a skipped order.
    pub fn skip(&self, reason: &str) {
        self.skipped.counter(reason).increment(1);
    }

    /// Record the owner's withdrawable credit in `token` (token units); returns the amount read
    /// before.
    pub fn withdrawable(&self, token: &str, units: u64) -> Option<u64> {
        self.withdrawable_g.gauge(token).set(units as f64);
        gridlease_daemon::lock(&self.withdrawable).insert(token.to_owned(), units)
    }

    /// The page for `GET /metrics`: the read-back values copied to their gauges, with the held
    /// leases and the jobs by state (from the store) as of now.
    pub fn render(&self, held: u64, jobs: &[(&str, u64)]) -> String {
        self.head_g.set(self.head.load(Relaxed) as f64);
        self.finality_hold_g
            .set(self.finality_hold.load(Relaxed) as f64);
        self.last_heartbeat_g
            .set(self.last_heartbeat.load(Relaxed) as f64);
        self.held_g.set(held as f64);
        for (state, n) in jobs {
            self.jobs_g.gauge(state).set(*n as f64);
        }
        self.registry.render()
    }
}
