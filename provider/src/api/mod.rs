//! The node's HTTP API: `/healthz`, Prometheus `/metrics`, `/results/<lease id>` (results of
//! built-in jobs are public, so any verifier can check them; other results only to the lease's
//! tenant), and
//! `POST /specs/<order id>`: the spec of an order whose `specURI` is
//! [`gridlease_primitives::spec::PUSH_URI`], pushed by its tenant (signed:
//! [`gridlease_fetch::spec_auth_message`]) and kept only when its hash is the order's
//! `specHash`. A pushed spec for an order the node has not bid on yet is evaluated at once.
//! `GET /bids/<order id>` serves the node's signed bid on an auction ([`crate::signed`]), and
//! `GET /logs/<lease id>` a job's logs to its tenant (ACC-01), and `GET /shell/<lease id>` a
//! command in its running container (ACC-02). A tenant's result, logs and shell each take an
//! EIP-712 access signed for that request or session ([`gridlease_fetch::access`]).
//!
//! - [`status`]: `/healthz` and `/metrics`.
//! - [`results`]: `/results/<lease id>`, `/logs/<lease id>` and `/bids/<order id>`.
//! - [`push`]: `POST /specs/<order id>`.
//! - [`shell`]: `GET /shell/<lease id>`, a tenant's command in its lease's container (a WebSocket,
//!   ACC-02).
//! - [`auth`]: the signed requests' auth header, and refusals.
//!
//! In front of it all: [`crate::guard`].

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};

use crate::{shared::Shared, specs::MAX_PUSHED_SPEC};

pub mod auth;
pub mod push;
pub mod results;
pub mod shell;
pub mod status;

/// The router.
pub fn router(s: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(status::metrics))
        .route("/results/{id}", get(results::result))
        .route("/logs/{id}", get(results::logs))
        .route("/shell/{id}", get(shell::shell))
        .route("/bids/{id}", get(results::signed_bid))
        .route(
            "/specs/{id}",
            post(push::push_spec).layer(DefaultBodyLimit::max(MAX_PUSHED_SPEC)),
        )
        .with_state(s)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(crate::guard::Guard::default()),
            crate::guard::guard,
        ))
}
