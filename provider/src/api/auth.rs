//! Signed requests, checked before anything costs a chain read: a tenant's access to its lease's
//! result and logs (an EIP-712 `Access` per request, its nonce used once: [`check_access`],
//! ACC-01), the spec push's auth header (`<expiry>:<signature>`, EIP-191), and the answers a
//! refused request gets.

use std::{collections::HashMap, sync::Mutex};

use alloy::primitives::{Address, B256, Signature};
use axum::{
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use gridlease_fetch::{
    AUTH_HEADER, Venue,
    access::{AccessTo, grant},
};

use gridlease_daemon::lock;

use crate::unix_now;

/// Access authorisations used at most at once (each is kept until it expires, at most an hour):
/// past it, new ones are turned away until old ones expire.
pub const MAX_USED: usize = 65_536;

/// The nonces of tenants' access authorisations this node has taken, by signer, until they
/// expire: a replayed header is refused (ACC-01). Only authorisations signed by the lease's tenant
/// are kept, so a stranger cannot fill it.
#[derive(Debug, Default)]
pub struct UsedAccess(Mutex<HashMap<(Address, B256), u64>>);

impl UsedAccess {
    /// Take `(signer, nonce)`, valid until `expiry`, at unix time `now`.
    fn take(&self, signer: Address, nonce: B256, expiry: u64, now: u64) -> Result<(), Refusal> {
        let mut used = lock(&self.0);
        if used.len() >= MAX_USED {
            used.retain(|_, e| *e >= now);
        }
        if used.contains_key(&(signer, nonce)) {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "this authorisation was used already (each request signs its own): sign a new one",
            ));
        }
        if used.len() >= MAX_USED {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many authorisations in use at once: retry in a minute",
            ));
        }
        used.insert((signer, nonce), expiry);
        Ok(())
    }
}

/// Check a tenant's access to `what` of `lease` at this node (provider `provider`, market
/// `venue`): the [`AUTH_HEADER`] must hold an unexpired EIP-712 `Access` for exactly that, signed
/// by `tenant`, whose nonce this node has not taken before. `missing` is the answer without one.
pub(crate) fn check_access(
    used: &UsedAccess,
    headers: &HeaderMap,
    venue: Venue,
    (what, lease, provider): (AccessTo, B256, Address),
    tenant: Address,
    missing: &str,
) -> Result<(), Refusal> {
    let Some(header) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, missing));
    };
    let now = unix_now();
    let g = grant(header, venue, what, lease, provider, now)
        .map_err(|why| refuse(StatusCode::UNAUTHORIZED, &why))?;
    if g.signer != tenant {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "not the lease's tenant's access to its {} at this node (provider {provider}, {venue}): sign with the tenant's key for this lease, node and market",
                what.name()
            ),
        ));
    }
    used.take(g.signer, g.nonce, g.expiry, now)
}

/// A refusal as a response: `code`, and `why` on a line.
pub(crate) fn deny(code: StatusCode, why: &str) -> Response {
    (code, format!("{why}\n")).into_response()
}

/// Why a request is refused: its status, and a line telling the client why.
pub type Refusal = (StatusCode, String);

pub(crate) fn refuse(code: StatusCode, why: &str) -> Refusal {
    (code, format!("{why}\n"))
}

/// Check the [`AUTH_HEADER`] of a request: `<expiry>:<signature>`, unexpired and living at most an
/// hour, signed (EIP-191) by `who` over `message(expiry)`, which names `venue` (a signature for
/// another market recovers another signer). `missing` is the answer without one.
pub(crate) fn check_auth(
    headers: &HeaderMap,
    venue: Venue,
    message: impl Fn(u64) -> String,
    who: Address,
    missing: &str,
) -> Result<(), Refusal> {
    if auth_signer(headers, message, missing)? != who {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "not signed by the order's tenant for this node's market ({venue}): sign with the tenant's key against this market's deployments"
            ),
        ));
    }
    Ok(())
}

/// Who signed the auth header (`<expiry>:<signature>` over `message(expiry)`), once its form and
/// expiry are checked: local work only, done before anything costs a chain read.
pub(crate) fn auth_signer(
    headers: &HeaderMap,
    message: impl Fn(u64) -> String,
    missing: &str,
) -> Result<Address, Refusal> {
    let Some(auth) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, missing));
    };
    let malformed = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "x-gridlease-auth is <expiry>:<signature>",
        )
    };
    let Some((expiry, sig)) = auth.split_once(':') else {
        return Err(malformed());
    };
    let (Ok(expiry), Ok(sig)) = (expiry.parse::<u64>(), sig.parse::<Signature>()) else {
        return Err(malformed());
    };
    if expiry < unix_now() || expiry > unix_now() + 3_600 {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "the signature expired (or lives over an hour)",
        ));
    }
    sig.recover_address_from_msg(message(expiry))
        .map_err(|_| refuse(StatusCode::FORBIDDEN, "the signature does not recover"))
}
