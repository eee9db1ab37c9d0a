//! The node's HTTP API: `/healthz`, Prometheus `/metrics`, and `/results/<lease id>` (results of
//! built-in jobs are public, so any verifier can check them; other results only to the lease's
//! tenant, authenticated by a signature: [`gridlease_core::fetch::result_auth_message`]).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use alloy::primitives::{B256, Signature};
use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use gridlease_core::fetch::{AUTH_HEADER, result_auth_message};

use crate::{engine::Shared, unix_now};

/// Counters and gauges of the node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Bid transactions sent.
    pub bids_sent: AtomicU64,
    /// Leases won.
    pub bids_won: AtomicU64,
    /// Orders not bid on, by reason.
    pub skipped: Mutex<BTreeMap<String, u64>>,
    /// Results posted.
    pub results_posted: AtomicU64,
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

/// The router.
pub fn router(s: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/results/{id}", get(result))
        .with_state(s)
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let last = s.metrics.last_poll.load(Relaxed);
    let age = unix_now().saturating_sub(last);
    // Unhealthy when the chain has not been read for 30 polls (and at least 30 s).
    let limit = (s.cfg.poll_ms * 30 / 1000).max(30);
    if last == 0 || age > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("chain not read for {age}s (RPC {})\n", s.cfg.rpc),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        format!("ok head {}\n", s.metrics.head.load(Relaxed)),
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
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

fn deny(code: StatusCode, why: &str) -> Response {
    (code, format!("{why}\n")).into_response()
}

async fn result(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = id.parse::<B256>() else {
        return deny(
            StatusCode::BAD_REQUEST,
            "expected /results/0x<64 hex digits>",
        );
    };
    let job = s.store.lock().ok().and_then(|st| st.job(id).ok().flatten());
    let Some(job) = job else {
        return deny(StatusCode::NOT_FOUND, "no such lease here");
    };
    let public = crate::engine::terms(&job).is_some_and(|t| t.jobKind == 1);
    if !public {
        let Some(auth) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
            return deny(
                StatusCode::UNAUTHORIZED,
                "this result is the tenant's: sign it with `gridlease result` (header x-gridlease-auth)",
            );
        };
        let Some((expiry, sig)) = auth.split_once(':') else {
            return deny(
                StatusCode::UNAUTHORIZED,
                "x-gridlease-auth is <expiry>:<signature>",
            );
        };
        let (Ok(expiry), Ok(sig)) = (expiry.parse::<u64>(), sig.parse::<Signature>()) else {
            return deny(
                StatusCode::UNAUTHORIZED,
                "x-gridlease-auth is <expiry>:<signature>",
            );
        };
        if expiry < unix_now() || expiry > unix_now() + 3_600 {
            return deny(
                StatusCode::UNAUTHORIZED,
                "the signature expired (or lives over an hour)",
            );
        }
        let signer = sig.recover_address_from_msg(result_auth_message(id, expiry));
        if signer.ok() != Some(job.tenant) {
            return deny(StatusCode::FORBIDDEN, "not signed by the lease's tenant");
        }
    }
    match tokio::fs::read(s.result_path(id)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => deny(StatusCode::NOT_FOUND, "no result for this lease yet"),
    }
}
