//! What the node hands out: `GET /results/<lease id>`, `GET /logs/<lease id>` and
//! `GET /bids/<order id>`.

use std::sync::Arc;

use alloy::primitives::B256;
use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use gridlease_fetch::access::AccessTo;
use gridlease_primitives::protocol::JobKind;
use tokio_util::io::ReaderStream;

use crate::{
    api::auth::{Refusal, check_access, deny, refuse},
    shared::Shared,
    state::Job,
};

/// The lease `/<route>/<id>` names, and its job here; else the answer.
pub(crate) fn lease_job(s: &Shared, id: &str, route: &str) -> Result<(B256, Job), Refusal> {
    let Ok(id) = id.parse::<B256>() else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            &format!("expected /{route}/0x<64 hex digits>"),
        ));
    };
    match s.db().job(id).ok().flatten() {
        Some(job) => Ok((id, job)),
        None => Err(refuse(StatusCode::NOT_FOUND, "no such lease here")),
    }
}

/// `GET /results/<lease id>`: the stored result of a lease (a built-in job's to anyone, others
/// only to the lease's tenant, and not during a finality hold).
pub(crate) async fn result(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (id, job) = match lease_job(&s, &id, "results") {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    if s.cfg.withhold_results {
        // Testing only: a provider that posts results it does not serve (demo and tests of the
        // data-availability challenge and the unavailability proof).
        return deny(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node withholds its results (testing.withhold_results)",
        );
    }
    let public = crate::shared::terms(&job)
        .is_some_and(|t| JobKind::from_code(t.jobKind) == Some(JobKind::MatmulI8));
    if !public
        && let Err(r) = check_access(
            &s.store,
            &headers,
            s.venue(),
            (AccessTo::Result, id, s.cfg.owner),
            job.tenant,
            "this result is the tenant's: download it with `gridlease result` (an access signed per request in header x-gridlease-auth)",
        )
    {
        return r.into_response();
    }
    // A tenant's result is what its lease pays for: not handed out while a reorg deeper than the
    // node's confirmations may still undo the lease (OFF-02). Public (built-in) results stay
    // served: verifiers check posted roots against them, and holding them only delays proofs.
    if !public && let Some(until) = crate::finality::finality_held(&s) {
        return deny(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the chain reorganised deeper than this node's chain.confirmations; results are released again at block {until}: retry then"
            ),
        );
    }
    // Streamed from the file (a result may be hundreds of MiB; read whole, each of many slow
    // downloads would hold all of it in memory).
    let Ok(file) = tokio::fs::File::open(s.result_path(id)).await else {
        return deny(StatusCode::NOT_FOUND, "no result for this lease yet");
    };
    let Ok(len) = file.metadata().await.map(|m| m.len()) else {
        return deny(StatusCode::NOT_FOUND, "no result for this lease yet");
    };
    let body = Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

/// `GET /logs/<lease id>`: the job's logs (the tail of its standard error), to the lease's tenant
/// only (ACC-01): as the job runs, what the executor has written so far; once it ended, what its
/// run kept with the result (a failed job's public reason included).
pub(crate) async fn logs(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (id, job) = match lease_job(&s, &id, "logs") {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    if let Err(r) = check_access(
        &s.store,
        &headers,
        s.venue(),
        (AccessTo::Logs, id, s.cfg.owner),
        job.tenant,
        "these logs are the tenant's: read them with `gridlease logs` (an access signed per request in header x-gridlease-auth)",
    ) {
        return r.into_response();
    }
    let text = match crate::jobs::logs(&s, id).await {
        Ok(Some(text)) => text,
        Ok(None) => {
            return deny(
                StatusCode::NOT_FOUND,
                "no logs yet: the job has not started",
            );
        }
        Err(e) => {
            return deny(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read the logs: {e}"),
            );
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// `GET /bids/<order id>`: the node's signed bid on that order ([`crate::signed`]), 404 if none.
pub(crate) async fn signed_bid(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<B256>() else {
        return deny(StatusCode::BAD_REQUEST, "expected /bids/0x<64 hex digits>");
    };
    match crate::signed::load(&s.cfg.data_dir, id) {
        Some(bid) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&bid).unwrap_or_default(),
        )
            .into_response(),
        None => deny(StatusCode::NOT_FOUND, "no signed bid on this order here"),
    }
}
