//! The keeper's counters and gauges, in its own [`Registry`] and served by [`crate::http`].

use std::{
    collections::BTreeMap,
    sync::{Mutex, atomic::AtomicU64},
};

use gridlease_daemon::{
    lock,
    metrics::{Family, Registry},
};
use metrics::{Counter, Gauge};

/// Counts by label that the keeper also keeps for `status` (saved in its state database).
#[derive(Debug)]
struct Tally {
    counts: Mutex<BTreeMap<String, u64>>,
    series: Family,
}

impl Tally {
    fn new(r: &Registry, name: &'static str, help: &'static str, label: &'static str) -> Self {
        Self {
            counts: Mutex::default(),
            series: r.counters(name, help, label),
        }
    }

    fn bump(&self, key: &str) {
        *lock(&self.counts).entry(key.to_owned()).or_default() += 1;
        self.series.counter(key).increment(1);
    }
}

/// Counters and gauges.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    planned: Tally,
    found: Tally,
    done: Tally,
    skipped: Tally,
    earned: Mutex<BTreeMap<String, u128>>,
    earned_g: Family,
    gas_spent_wei: Mutex<u128>,
    gas_g: Gauge,
    /// RPC errors.
    pub rpc_errors: Counter,
    /// Polls done.
    pub polls: Counter,
    /// Data-availability challenges this keeper bonded (mined).
    pub bonds_posted: Counter,
    /// Of them, answered: the provider held its data, and the bond went to the answerer.
    pub bonds_lost: Counter,
    /// `GET /bids/<order>` requests to provider nodes that failed (unreachable, timed out, bad
    /// answer); skipped.
    pub bid_fetch_failures: Counter,
    /// Latest block read.
    pub head: Gauge,
    /// Running leases tracked.
    pub leases: Gauge,
    /// Closed leases tracked while their collateral is held (faults still provable).
    pub held: Gauge,
    /// Orders tracked.
    pub orders: Gauge,
    /// Transactions in flight.
    pub in_flight: Gauge,
    /// Unix time of the last good poll (read by `/healthz`).
    pub last_poll: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        Self {
            planned: Tally::new(
                &r,
                "gridlease_keeper_work_planned_total",
                "Work items planned, by action (counted on every poll that plans one).",
                "action",
            ),
            found: Tally::new(
                &r,
                "gridlease_keeper_work_found_total",
                "Work items found, by action.",
                "action",
            ),
            done: Tally::new(
                &r,
                "gridlease_keeper_work_done_total",
                "Transactions mined, by action.",
                "action",
            ),
            skipped: Tally::new(
                &r,
                "gridlease_keeper_work_skipped_total",
                "Work skipped, by reason.",
                "reason",
            ),
            earned: Mutex::default(),
            earned_g: r.gauges(
                "gridlease_keeper_earned",
                "Fees and rewards earned since start (token units), by token.",
                "token",
            ),
            gas_spent_wei: Mutex::default(),
            gas_g: r.gauge("gridlease_keeper_gas_spent_wei", "Gas paid since start."),
            rpc_errors: r.counter("gridlease_keeper_rpc_errors_total", "RPC errors."),
            polls: r.counter("gridlease_keeper_polls_total", "Polls done."),
            bonds_posted: r.counter(
                "gridlease_keeper_bonds_posted_total",
                "Data-availability challenges bonded.",
            ),
            bonds_lost: r.counter(
                "gridlease_keeper_bonds_lost_total",
                "Challenges answered by the provider: their bonds went to the answerer.",
            ),
            bid_fetch_failures: r.counter(
                "gridlease_keeper_signed_bid_fetch_failures_total",
                "Signed-bid requests to provider nodes that failed (skipped).",
            ),
            head: r.gauge("gridlease_keeper_head", "Latest block read."),
            leases: r.gauge("gridlease_keeper_leases", "Running leases tracked."),
            held: r.gauge(
                "gridlease_keeper_held_leases",
                "Closed leases tracked while their collateral is held (faults still provable).",
            ),
            orders: r.gauge("gridlease_keeper_orders", "Orders awaiting award."),
            in_flight: r.gauge("gridlease_keeper_in_flight", "Transactions in flight."),
            last_poll: AtomicU64::new(0),
            registry: r,
        }
    }
}

impl Metrics {
    /// Count planned work.
    pub fn planned(&self, action: &str) {
        self.planned.bump(action);
    }
    /// Count found work.
    pub fn found(&self, action: &str) {
        self.found.bump(action);
    }
    /// Count a mined transaction.
    pub fn done(&self, action: &str) {
        self.done.bump(action);
    }
    /// Count skipped work.
    pub fn skip(&self, reason: &str) {
        self.skipped.bump(reason);
    }
    /// Book earnings and gas. Both are kept exactly (`u128`); their gauges carry them as
    /// Prometheus does, in `f64`.
    pub fn book(&self, token: Option<alloy::primitives::Address>, earned: u128, gas: u128) {
        if let Some(t) = token
            && earned > 0
        {
            let t = t.to_string();
            let mut m = lock(&self.earned);
            let total = m.entry(t.clone()).or_default();
            *total += earned;
            self.earned_g.gauge(&t).set(*total as f64);
        }
        let mut g = lock(&self.gas_spent_wei);
        *g += gas;
        self.gas_g.set(*g as f64);
    }

    /// All counters as (name, value) rows for the state database (`status` reads them).
    pub fn rows(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (prefix, t) in [
            ("planned", &self.planned),
            ("found", &self.found),
            ("done", &self.done),
            ("skipped", &self.skipped),
        ] {
            let m = lock(&t.counts);
            out.extend(m.iter().map(|(k, v)| (format!("{prefix}.{k}"), *v)));
        }
        out
    }

    /// The page for `GET /metrics`.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}
