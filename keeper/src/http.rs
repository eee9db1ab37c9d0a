//! `/healthz` and Prometheus `/metrics` of the keeper.

use std::sync::{Arc, atomic::Ordering::Relaxed};

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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        k.metrics.render(),
    )
        .into_response()
}
