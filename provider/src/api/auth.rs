//! Signed requests: the auth header (`<expiry>:<signature>`, EIP-191) checked before anything
//! costs a chain read, and the answers a refused request gets.

use alloy::primitives::{Address, Signature};
use axum::{
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use gridlease_fetch::{AUTH_HEADER, Venue};

use crate::unix_now;

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
