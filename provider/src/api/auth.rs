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

/// Access authorisations kept at most at once, all tenants together (each until it expires, at
/// most [`gridlease_fetch::access::MAX_LIFE`]): past it, new ones wait for old ones to expire.
pub const MAX_USED: usize = 65_536;
/// Unexpired access authorisations one tenant may have taken at once: a tenant signing nonces by
/// the thousand fills its own share, not everyone's.
pub const MAX_USED_PER_SIGNER: usize = 256;

/// The nonces of tenants' access authorisations this node has taken, by signer, until they
/// expire: a replayed header is refused (ACC-01). Only authorisations signed by the lease's tenant
/// are kept, so a stranger cannot add to it, and each tenant holds at most
/// [`MAX_USED_PER_SIGNER`] of it. Kept in memory: a restarted node forgets them, so a header taken
/// before a restart is good once more within its life (at most 15 minutes).
#[derive(Debug, Default)]
pub struct UsedAccess(Mutex<HashMap<Address, HashMap<B256, u64>>>);

impl UsedAccess {
    /// Take `(signer, nonce)`, valid until `expiry`, at unix time `now`.
    pub(crate) fn take(
        &self,
        signer: Address,
        nonce: B256,
        expiry: u64,
        now: u64,
    ) -> Result<(), Refusal> {
        let mut used = lock(&self.0);
        let mine = used.entry(signer).or_default();
        mine.retain(|_, e| *e >= now);
        if mine.contains_key(&nonce) {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "this authorisation was used already (each request signs its own): sign a new one",
            ));
        }
        if mine.len() >= MAX_USED_PER_SIGNER {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "{MAX_USED_PER_SIGNER} of your authorisations are in use at once: retry once some expire"
                ),
            ));
        }
        if used.values().map(HashMap::len).sum::<usize>() >= MAX_USED {
            used.retain(|_, m| {
                m.retain(|_, e| *e >= now);
                !m.is_empty()
            });
            if used.values().map(HashMap::len).sum::<usize>() >= MAX_USED {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many authorisations in use at once: retry in a minute",
                ));
            }
        }
        used.entry(signer).or_default().insert(nonce, expiry);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// ACC-01: a nonce is taken once; one tenant holds at most its share of unexpired ones (a
    /// tenant signing nonces by the thousand cannot lock the others out), and expired ones free it.
    #[test]
    fn each_nonce_is_taken_once_and_one_tenant_cannot_fill_the_set() {
        let used = UsedAccess::default();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let nonce = |i: usize| B256::left_padding_from(&i.to_be_bytes());
        for i in 0..MAX_USED_PER_SIGNER {
            used.take(a, nonce(i), 1_000, 100).expect("taken");
        }
        let replay = used.take(a, nonce(0), 1_000, 100).expect_err("replayed");
        assert_eq!(replay.0, StatusCode::UNAUTHORIZED);
        let full = used
            .take(a, nonce(9_999), 1_000, 100)
            .expect_err("over its share");
        assert_eq!(full.0, StatusCode::TOO_MANY_REQUESTS);
        // Another tenant is not held back; the first one's expired nonces free its share.
        used.take(b, nonce(0), 1_000, 100).expect("another tenant");
        used.take(a, nonce(9_999), 2_000, 1_001)
            .expect("after expiry");
    }
}
