//! `/healthz` and Prometheus `/metrics` of the keeper.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{engine::Keeper, unix_now};

/// Counters and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Work items planned, by action (every poll that plans one counts it).
    pub planned: Mutex<BTreeMap<String, u64>>,
    /// Work items found (taken up after the stagger), by action.
    pub found: Mutex<BTreeMap<String, u64>>,
    /// Transactions mined successfully, by action.
    pub done: Mutex<BTreeMap<String, u64>>,
    /// Work skipped, by reason.
    pub skipped: Mutex<BTreeMap<String, u64>>,
    /// Earned, by token address (token units).
    pub earned: Mutex<BTreeMap<String, u128>>,
    /// Gas paid, wei.
    pub gas_spent_wei: Mutex<u128>,
    /// RPC errors.
    pub rpc_errors: AtomicU64,
    /// Latest block read.
    pub head: AtomicU64,
    /// Unix time of the last good poll.
    pub last_poll: AtomicU64,
    /// Polls done.
    pub polls: AtomicU64,
    /// Running leases tracked.
    pub leases: AtomicU64,
    /// Closed leases tracked while their collateral is held (faults still provable).
    pub held: AtomicU64,
    /// Data-availability challenges this keeper bonded (mined).
    pub bonds_posted: AtomicU64,
    /// Of them, answered: the provider held its data, and the bond went to the answerer.
    pub bonds_lost: AtomicU64,
    /// Orders tracked.
    pub orders: AtomicU64,
    /// Transactions in flight.
    pub in_flight: AtomicU64,
    /// `GET /bids/<order>` requests to provider nodes that failed (unreachable, timed out, bad
    /// answer); skipped.
    pub bid_fetch_failures: AtomicU64,
}

fn bump<K: Ord + From<String>>(m: &Mutex<BTreeMap<K, u64>>, key: &str) {
    if let Ok(mut m) = m.lock() {
        *m.entry(K::from(key.to_owned())).or_default() += 1;
    }
}

impl Metrics {
    /// Count planned work.
    pub fn planned(&self, action: &str) {
        bump(&self.planned, action);
    }
    /// Count found work.
    pub fn found(&self, action: &str) {
        bump(&self.found, action);
    }
    /// Count a mined transaction.
    pub fn done(&self, action: &str) {
        bump(&self.done, action);
    }
    /// Count skipped work.
    pub fn skip(&self, reason: &str) {
        bump(&self.skipped, reason);
    }
    /// Book earnings and gas.
    pub fn book(&self, token: Option<alloy::primitives::Address>, earned: u128, gas: u128) {
        if let (Some(t), Ok(mut m)) = (token, self.earned.lock())
            && earned > 0
        {
            *m.entry(t.to_string()).or_default() += earned;
        }
        if let Ok(mut g) = self.gas_spent_wei.lock() {
            *g += gas;
        }
    }

    /// All counters as (name, value) rows for the state database (`status` reads them).
    pub fn rows(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (prefix, m) in [
            ("planned", &self.planned),
            ("found", &self.found),
            ("done", &self.done),
            ("skipped", &self.skipped),
        ] {
            if let Ok(m) = m.lock() {
                out.extend(m.iter().map(|(k, v)| (format!("{prefix}.{k}"), *v)));
            }
        }
        out
    }
}

/// The router.
pub fn router(k: Arc<Keeper>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(k)
}

async fn healthz(State(k): State<Arc<Keeper>>) -> Response {
    let last = k.metrics.last_poll.load(Relaxed);
    let limit = (k.cfg.poll_ms * 30 / 1000).max(30);
    if last == 0 || unix_now().saturating_sub(last) > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("chain not read for {}s\n", unix_now().saturating_sub(last)),
        )
            .into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn metrics(State(k): State<Arc<Keeper>>) -> Response {
    let m = &k.metrics;
    let mut out = String::new();
    let labelled = |out: &mut String,
                    name: &str,
                    help: &str,
                    label: &str,
                    map: &Mutex<BTreeMap<String, u64>>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        if let Ok(map) = map.lock() {
            for (k, v) in map.iter() {
                let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
            }
        }
    };
    labelled(
        &mut out,
        "gridlease_keeper_work_planned_total",
        "Work items planned, by action (counted on every poll that plans one).",
        "action",
        &m.planned,
    );
    labelled(
        &mut out,
        "gridlease_keeper_work_found_total",
        "Work items found, by action.",
        "action",
        &m.found,
    );
    labelled(
        &mut out,
        "gridlease_keeper_work_done_total",
        "Transactions mined, by action.",
        "action",
        &m.done,
    );
    labelled(
        &mut out,
        "gridlease_keeper_work_skipped_total",
        "Work skipped, by reason.",
        "reason",
        &m.skipped,
    );
    let _ = writeln!(
        out,
        "# HELP gridlease_keeper_earned Fees and rewards earned (token units).\n# TYPE gridlease_keeper_earned counter"
    );
    if let Ok(e) = m.earned.lock() {
        for (t, v) in e.iter() {
            let _ = writeln!(out, "gridlease_keeper_earned{{token=\"{t}\"}} {v}");
        }
    }
    let gas = m.gas_spent_wei.lock().map_or(0, |g| *g);
    for (name, help, kind, v) in [
        (
            "gridlease_keeper_gas_spent_wei",
            "Gas paid.",
            "counter",
            gas,
        ),
        (
            "gridlease_keeper_rpc_errors_total",
            "RPC errors.",
            "counter",
            u128::from(m.rpc_errors.load(Relaxed)),
        ),
        (
            "gridlease_keeper_head",
            "Latest block read.",
            "gauge",
            u128::from(m.head.load(Relaxed)),
        ),
        (
            "gridlease_keeper_polls_total",
            "Polls done.",
            "counter",
            u128::from(m.polls.load(Relaxed)),
        ),
        (
            "gridlease_keeper_leases",
            "Running leases tracked.",
            "gauge",
            u128::from(m.leases.load(Relaxed)),
        ),
        (
            "gridlease_keeper_held_leases",
            "Closed leases tracked while their collateral is held (faults still provable).",
            "gauge",
            u128::from(m.held.load(Relaxed)),
        ),
        (
            "gridlease_keeper_bonds_posted_total",
            "Data-availability challenges bonded.",
            "counter",
            u128::from(m.bonds_posted.load(Relaxed)),
        ),
        (
            "gridlease_keeper_bonds_lost_total",
            "Challenges answered by the provider: their bonds went to the answerer.",
            "counter",
            u128::from(m.bonds_lost.load(Relaxed)),
        ),
        (
            "gridlease_keeper_orders",
            "Orders awaiting award.",
            "gauge",
            u128::from(m.orders.load(Relaxed)),
        ),
        (
            "gridlease_keeper_in_flight",
            "Transactions in flight.",
            "gauge",
            u128::from(m.in_flight.load(Relaxed)),
        ),
        (
            "gridlease_keeper_signed_bid_fetch_failures_total",
            "Signed-bid requests to provider nodes that failed (skipped).",
            "counter",
            u128::from(m.bid_fetch_failures.load(Relaxed)),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
