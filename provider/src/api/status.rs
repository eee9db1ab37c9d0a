//! `GET /healthz` (whether the chain is being read) and `GET /metrics` ([`crate::metrics::Metrics`]
//! and the jobs by state, in Prometheus' text format).

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{shared::Shared, unix_now};

/// `GET /healthz`.
pub(crate) async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let last = s.metrics.last_poll.load(Relaxed);
    let age = unix_now().saturating_sub(last);
    // Unhealthy when the chain has not been read for 30 polls (and at least 5 s).
    let limit = (s.cfg.poll_ms * 30 / 1000).max(5);
    if last == 0 || age > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("chain not read for {age}s (RPC {})\n", s.cfg.rpc),
        )
            .into_response();
    }
    let head = s.metrics.head.load(Relaxed);
    let held = match crate::finality::finality_held(&s) {
        Some(until) => format!(
            " (holding job starts and results until block {until}: reorg deeper than chain.confirmations)"
        ),
        None => String::new(),
    };
    (StatusCode::OK, format!("ok head {head}{held}\n")).into_response()
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let m = &s.metrics;
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP gridlease_provider_{name} {help}");
        let _ = writeln!(out, "# TYPE gridlease_provider_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "gridlease_provider_{name}{labels} {v}");
        }
    };
    let one = |v: &AtomicU64| vec![(String::new(), v.load(Relaxed))];
    line(
        "bids_sent_total",
        "counter",
        "Bid transactions sent.",
        &one(&m.bids_sent),
    );
    line(
        "bids_signed_total",
        "counter",
        "Signed bids kept for keepers (bidding.mode = signed).",
        &one(&m.bids_signed),
    );
    line(
        "bids_won_total",
        "counter",
        "Leases won.",
        &one(&m.bids_won),
    );
    let skipped: Vec<(String, u64)> = m
        .skipped
        .lock()
        .map(|g| {
            g.iter()
                .map(|(k, v)| (format!("{{reason=\"{k}\"}}"), *v))
                .collect()
        })
        .unwrap_or_default();
    line(
        "orders_skipped_total",
        "counter",
        "Orders not bid on, by reason.",
        &skipped,
    );
    line(
        "results_posted_total",
        "counter",
        "Results posted.",
        &one(&m.results_posted),
    );
    line(
        "result_post_failures_total",
        "counter",
        "Result posts that failed (retried until the deadline; alert).",
        &one(&m.post_failures),
    );
    line(
        "missed_start_windows_total",
        "counter",
        "Leases not acknowledged before their start window ended (alert: a no-show is provable).",
        &one(&m.late_acks),
    );
    line(
        "challenges_seen_total",
        "counter",
        "Data-availability challenges of this node's results seen.",
        &one(&m.challenges_seen),
    );
    line(
        "challenges_answered_total",
        "counter",
        "Challenges answered from the stored result (bond collected).",
        &one(&m.challenges_answered),
    );
    line(
        "challenges_missed_total",
        "counter",
        "Challenges not answered in time (alert: the result can be failed).",
        &one(&m.challenges_missed),
    );
    line(
        "faults_total",
        "counter",
        "Faults proven against this provider (alert).",
        &one(&m.slashed),
    );
    line(
        "held_released_total",
        "counter",
        "Closed leases whose held collateral was released after the fault horizon.",
        &one(&m.held_released),
    );
    let held = s
        .store
        .lock()
        .ok()
        .and_then(|st| st.held_count().ok())
        .unwrap_or_default();
    line(
        "held_leases",
        "gauge",
        "Closed leases whose collateral the market holds for the fault horizon.",
        &[(String::new(), held)],
    );
    line(
        "deep_reorgs_total",
        "counter",
        "Reorgs deeper than chain.confirmations seen.",
        &one(&m.deep_reorgs),
    );
    line(
        "finality_hold_until_block",
        "gauge",
        "After a deep reorg: no job starts and no tenant result is released before this block (0: none).",
        &one(&m.finality_hold),
    );
    let withdrawable: Vec<(String, u64)> = m
        .withdrawable
        .lock()
        .map(|g| {
            g.iter()
                .map(|(k, v)| (format!("{{token=\"{k}\"}}"), *v))
                .collect()
        })
        .unwrap_or_default();
    line(
        "withdrawable",
        "gauge",
        "The owner's earnings the market holds for withdrawal (token units), by token.",
        &withdrawable,
    );
    line(
        "heartbeats_total",
        "counter",
        "Heartbeats mined.",
        &one(&m.heartbeats),
    );
    line(
        "last_heartbeat_seconds",
        "gauge",
        "Chain time of the provider's last heartbeat.",
        &one(&m.last_heartbeat),
    );
    line(
        "jobs_failed_total",
        "counter",
        "Jobs whose run failed.",
        &one(&m.jobs_failed),
    );
    line(
        "rpc_errors_total",
        "counter",
        "RPC errors.",
        &one(&m.rpc_errors),
    );
    line(
        "tx_mined_total",
        "counter",
        "Transactions mined.",
        &one(&m.tx_mined),
    );
    line(
        "tx_latency_ms_sum",
        "counter",
        "Send-to-receipt time of mined transactions, ms.",
        &one(&m.tx_latency_ms),
    );
    line(
        "bid_latency_us_sum",
        "counter",
        "Order log seen to bid broadcast, microseconds.",
        &one(&m.bid_latency_us),
    );
    line(
        "earned_units_total",
        "counter",
        "Paid to the provider by closed leases, token units.",
        &one(&m.earned),
    );
    line("head_block", "gauge", "Latest block seen.", &one(&m.head));
    let states: Vec<(String, u64)> = s
        .store
        .lock()
        .ok()
        .and_then(|st| st.counts().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(st, n)| (format!("{{state=\"{}\"}}", st.name()), n))
        .collect();
    line("jobs", "gauge", "Jobs by state.", &states);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
