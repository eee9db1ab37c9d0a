//! `GET /healthz` (whether the chain is being read) and `GET /metrics` ([`crate::metrics::Metrics`]
//! and the jobs by state, in Prometheus' text format).

use std::sync::{Arc, atomic::Ordering::Relaxed};

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{shared::Shared, state::JobState, unix_now};

/// `GET /healthz`.
pub(crate) async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let last = s.metrics.last_poll.load(Relaxed);
    let age = unix_now().saturating_sub(last);
    // Unhealthy when the chain has not been read for 30 polls (and at least 5 s).
    let limit = (s.cfg.poll_ms * 30 / 1000).max(5);
    if last == 0 || age > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            // Not the RPC's URL: anyone may ask, and a URL often carries an API key.
            format!("chain not read for {age}s (the node's log says why)\n"),
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
    let (held, counts) = {
        let store = gridlease_daemon::lock(&s.store);
        (
            store.held_count().unwrap_or_default(),
            store.counts().unwrap_or_default(),
        )
    };
    // Every state, so one that empties reads 0 rather than its last count.
    let jobs: Vec<(&str, u64)> = JobState::ALL
        .into_iter()
        .map(|st| {
            let n = counts.iter().find(|(c, _)| *c == st).map_or(0, |(_, n)| *n);
            (st.name(), n)
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(held, &jobs),
    )
        .into_response()
}
