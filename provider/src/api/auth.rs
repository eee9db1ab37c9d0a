//! Signed requests, checked before anything costs a chain read: a tenant's access to its lease's
//! result and logs (an EIP-712 `Access` per request, its nonce used once: [`check_access`],
//! ACC-01), the spec push's auth header (`<expiry>:<signature>`, EIP-191), and the answers a
//! refused request gets.

use std::sync::Mutex;

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

use crate::{
    state::{NonceTake, Store},
    unix_now,
};

/// Access authorisations kept at most at once, all tenants together (each until it expires, at
/// most [`gridlease_fetch::access::MAX_LIFE`]): past it, new ones wait for old ones to expire.
pub const MAX_USED: usize = 65_536;
/// Unexpired access authorisations one tenant may have taken at once: a tenant signing nonces by
/// the thousand fills its own share, not everyone's.
pub const MAX_USED_PER_SIGNER: usize = 256;

/// Take the nonce of a tenant's access authorisation (`signer`, `nonce`, valid until `expiry`) at
/// `now`, in the node's store, so that none is taken twice (ACC-01), after a restart too. Only
/// authorisations signed by the lease's tenant get here, so a stranger cannot add to it, and each
/// tenant holds at most [`MAX_USED_PER_SIGNER`] of it.
pub(crate) fn take_nonce(
    store: &Mutex<Store>,
    (signer, nonce, expiry): (Address, B256, u64),
    now: u64,
) -> Result<(), Refusal> {
    let taken = lock(store).take_nonce((signer, nonce, expiry), now, MAX_USED_PER_SIGNER, MAX_USED);
    match taken {
        Ok(NonceTake::Taken) => Ok(()),
        Ok(NonceTake::Replayed) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "this authorisation was used already (each request signs its own): sign a new one",
        )),
        Ok(NonceTake::Full) => Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many authorisations in use at once: retry once some expire (15 minutes at most)",
        )),
        Err(e) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the node cannot read its store ({e}): retry later"),
        )),
    }
}

/// Check a tenant's access to `what` of `lease` at this node (provider `provider`, market
/// `venue`): the [`AUTH_HEADER`] must hold an unexpired EIP-712 `Access` for exactly that, signed
/// by `tenant`, whose nonce this node has not taken before. `missing` is the answer without one.
pub(crate) fn check_access(
    store: &Mutex<Store>,
    headers: &HeaderMap,
    venue: Venue,
    to: (AccessTo, B256, Address),
    tenant: Address,
    missing: &str,
) -> Result<(), Refusal> {
    let g = verify_access(headers, venue, to, tenant, missing)?;
    take_nonce(store, (g.signer, g.nonce, g.expiry), unix_now())
}

/// [`check_access`] without taking the nonce: the grant, for a request that takes it (with
/// [`take_nonce`]) only once its other checks passed.
pub(crate) fn verify_access(
    headers: &HeaderMap,
    venue: Venue,
    (what, lease, provider): (AccessTo, B256, Address),
    tenant: Address,
    missing: &str,
) -> Result<gridlease_fetch::access::Grant, Refusal> {
    let Some(header) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, missing));
    };
    let g = grant(header, venue, what, lease, provider, unix_now())
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
    Ok(g)
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

    /// ACC-01: a nonce is taken once, after the store is reopened too (a restart); one tenant
    /// holds at most its share of unexpired ones (a tenant signing nonces by the thousand cannot
    /// lock the others out), and expired ones free it.
    #[test]
    fn each_nonce_is_taken_once_and_one_tenant_cannot_fill_the_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let store = Mutex::new(Store::open(&path).expect("store"));
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let nonce = |i: usize| B256::left_padding_from(&i.to_be_bytes());
        for i in 0..MAX_USED_PER_SIGNER {
            take_nonce(&store, (a, nonce(i), 1_000), 100).expect("taken");
        }
        let full = take_nonce(&store, (a, nonce(9_999), 1_000), 100).expect_err("over its share");
        assert_eq!(full.0, StatusCode::TOO_MANY_REQUESTS);
        // Another tenant is not held back.
        take_nonce(&store, (b, nonce(0), 1_000), 100).expect("another tenant");
        // A restart remembers them: a replay is refused.
        drop(store);
        let store = Mutex::new(Store::open(&path).expect("reopened"));
        let replay = take_nonce(&store, (a, nonce(0), 1_000), 100).expect_err("replayed");
        assert_eq!(replay.0, StatusCode::UNAUTHORIZED);
        // Expired ones free the share.
        take_nonce(&store, (a, nonce(9_999), 2_000), 1_001).expect("after expiry");
    }
}
