//! A JSON-RPC transport over two endpoints (PD-03): every request goes to the primary; when it
//! fails at the transport level (connection refused or dropped, timeout, HTTP 429/5xx, a body
//! that is not JSON-RPC) it is sent to the secondary, and the primary is skipped for
//! [`SKIP_PRIMARY`] so that a dead or hanging node costs one timeout, not one per call. A JSON-RPC
//! error answer (a revert, "nonce too low") is an answer, never a reason to fail over.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{BoxTransport, RpcError, TransportError, TransportFut},
};
use tower::Service;
use tracing::warn;

/// How long the primary is passed over after it failed.
pub const SKIP_PRIMARY: Duration = Duration::from_secs(30);

/// Primary first, secondary when the primary fails (see the module docs).
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

    fn skip_primary(&self) {
        *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + SKIP_PRIMARY);
    }
}

/// Whether `e` says the endpoint did not answer (rather than answering with an error).
fn unanswered(e: &TransportError) -> bool {
    matches!(e, RpcError::Transport(_) | RpcError::DeserError { .. })
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
        let mut this = self.clone();
        Box::pin(async move {
            if !this.primary_skipped() {
                match this.primary.call(req.clone()).await {
                    Err(e) if unanswered(&e) => {
                        warn!(
                            rpc = %this.names.0, fallback = %this.names.1, error = %e,
                            skip_s = SKIP_PRIMARY.as_secs(),
                            "RPC failed: failing over to the fallback RPC"
                        );
                        this.skip_primary();
                    }
                    answered => return answered,
                }
            }
            this.secondary.call(req).await
        })
    }
}
