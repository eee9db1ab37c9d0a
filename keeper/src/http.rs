//! `/healthz` and Prometheus `/metrics` of the keeper.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Arc, Mutex, atomic::Ordering::Relaxed},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{shared::Keeper, unix_now};

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
