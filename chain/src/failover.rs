//! A JSON-RPC transport over two endpoints (PD-03): every request goes to the primary; when the
//! primary does not answer it (connection refused or dropped, no answer within [`RPC_TIMEOUT`],
//! an HTTP error without a JSON-RPC body, a body that is not JSON-RPC, or a rate-limit error
//! answer) the request goes to the secondary, and the primary is passed over for
//! [`SKIP_PRIMARY`], so that a dead or hanging node costs one timeout, not one per call. Any other
//! JSON-RPC error answer (a revert, "nonce too low") is the chain's word, never a reason to fail
//! over.
//!
//! A raw transaction the primary did not answer for at all is not re-sent to the secondary in the
//! same call: the primary may have taken it, and the transaction manager's own retry (which treats
//! "nonce too low" on a retry as "maybe mined", OFF-06/OFF-10) then goes to the secondary.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{BoxTransport, RpcError, TransportError, TransportErrorKind, TransportFut},
};
use tower::Service;
use tracing::warn;

use crate::rpc::{RPC_TIMEOUT, overloaded};

/// How long the primary is passed over after it failed.
pub const SKIP_PRIMARY: Duration = Duration::from_secs(30);

/// Primary first, secondary when the primary does not answer (see the module docs).
#[derive(Clone, Debug)]
pub struct Failover {
    primary: BoxTransport,
    secondary: BoxTransport,
    /// Names of the two endpoints, for logs.
    names: Arc<(String, String)>,
    /// Until when the primary is skipped.
    skip_until: Arc<Mutex<Option<Instant>>>,
}

impl Failover {
    /// Requests go to `primary` (named `primary_name` in logs), else to `secondary`.
    pub fn new(
        primary: BoxTransport,
        primary_name: &str,
        secondary: BoxTransport,
        secondary_name: &str,
    ) -> Self {
        Self {
            primary,
            secondary,
            names: Arc::new((primary_name.to_owned(), secondary_name.to_owned())),
            skip_until: Arc::default(),
        }
    }

    fn primary_skipped(&self) -> bool {
        let mut s = self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
        match *s {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *s = None;
                false
            }
            None => false,
        }
    }

    fn skip_primary(&self, why: &str) {
        warn!(
            rpc = %self.names.0, fallback = %self.names.1, error = why,
            skip_s = SKIP_PRIMARY.as_secs(),
            "RPC failed: failing over to the fallback RPC"
        );
        *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + SKIP_PRIMARY);
    }
}

/// `t`'s answer to `req`, or a transport error when none comes within [`RPC_TIMEOUT`] (a
/// WebSocket that waits for its reconnection has no timeout of its own).
async fn ask(mut t: BoxTransport, req: RequestPacket) -> Result<ResponsePacket, TransportError> {
    match tokio::time::timeout(RPC_TIMEOUT, t.call(req)).await {
        Ok(r) => r,
        Err(_) => Err(TransportErrorKind::custom_str(&format!(
            "no answer within {} s",
            RPC_TIMEOUT.as_secs()
        ))),
    }
}

/// How an endpoint failed to serve a request.
enum Unserved {
    /// No answer: it may or may not have acted on the request.
    Silent(String),
    /// It answered that it would not serve it (rate limit, overload): it did not act on it.
    Refused(String),
}

/// Whether (and how) `r` says the endpoint did not serve the request, rather than answering it.
fn unserved(r: &Result<ResponsePacket, TransportError>) -> Option<Unserved> {
    match r {
        Err(e @ (RpcError::Transport(_) | RpcError::DeserError { .. })) => {
            Some(Unserved::Silent(e.to_string()))
        }
        // Providers rate-limit (and fail) with a JSON-RPC body on their HTTP 429/5xx.
        Ok(ResponsePacket::Single(resp)) => resp.payload.as_error().and_then(|e| {
            overloaded(e.code).then(|| Unserved::Refused(format!("{} ({})", e.message, e.code)))
        }),
        _ => None,
    }
}

fn sends_transaction(req: &RequestPacket) -> bool {
    req.method_names().any(|m| m == "eth_sendRawTransaction")
}

impl Service<RequestPacket> for Failover {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both inner transports are always ready (HTTP and pubsub frontends are).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let skipped = this.primary_skipped();
            if !skipped {
                let r = ask(this.primary.clone(), req.clone()).await;
                match unserved(&r) {
                    None => return r,
                    Some(Unserved::Refused(why)) => this.skip_primary(&why),
                    Some(Unserved::Silent(why)) => {
                        this.skip_primary(&why);
                        if sends_transaction(&req) {
                            return r;
                        }
                    }
                }
            }
            let r = ask(this.secondary.clone(), req.clone()).await;
            if skipped && unserved(&r).is_some() {
                // The fallback fails too: the primary may be back before its skip is over.
                return ask(this.primary.clone(), req).await;
            }
            r
        })
    }
}
