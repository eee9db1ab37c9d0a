//! gridlease-fetch: fetching what strangers name, and checking it (SECURITY.md N, PIN-01..04): the
//! spec URI of an order, the data inputs of a built-in job, the result URI a provider posts. One
//! [`Fetcher`] per process, one shared HTTP client, and these rules:
//!
//! - Only `http://` and `https://` (and, for specs, a self-contained `data:` URI). Never `file://`
//!   or a bare path: a URI names something on the network, not on the disk of whoever fetches it.
//!   A user's own files are read through explicit paths (`gridlease result --file`, the spec file
//!   itself), never through a URI someone else wrote.
//! - No internal addresses: a host that is, or resolves to, a loopback, private, link-local
//!   (cloud metadata at 169.254.169.254), shared (100.64/10), multicast, reserved or unspecified
//!   address, in IPv4, IPv6 or IPv4-in-IPv6 form, is refused unless the [`AllowList`] names its
//!   network (a devnet, a test). Names are checked by the client's own resolver when it connects,
//!   so the checked address is the one connected to (no DNS rebinding between check and use);
//!   literal addresses before each request and each redirect. At most [`MAX_REDIRECTS`]
//!   redirects, each held to the same rules. No proxy from the environment (a proxy would resolve
//!   the name itself).
//! - Bounded: a connect timeout, a timeout on the whole transfer, and a byte cap enforced while
//!   the body streams in (a chunked answer without a length included).
//! - Errors say what failed and carry a [`FetchError::code`] for anything public (a failure
//!   report): never the bytes of an answer, its length, or an internal server's error page.
//!
//! [`verify`] checks a posted built-in result (downloading a data job's inputs by these rules) and
//! builds the transaction that proves it wrong, for `gridlease result --prove` and the keeper.

pub mod access;
mod client;
mod error;
mod guard;
#[cfg(test)]
mod hostile_input;
pub mod service;
pub mod shell;
#[cfg(test)]
mod tests;
pub mod verify;

pub use client::{Fetcher, Limits, classify, read_capped};
pub use error::FetchError;
#[cfg(test)]
pub(crate) use guard::check_url;
pub use guard::{AllowList, is_internal};

use alloy::primitives::{Address, B256};

/// Largest download accepted by default (inputs of the largest matmul are 2 x 8,192 x 65,536
/// bytes).
pub const MAX_DOWNLOAD: u64 = 1 << 30;
/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;
/// Largest run spec fetched (a spec is a few hundred bytes of JSON).
pub const MAX_SPEC_BYTES: u64 = 64 << 10;

/// The header a tenant authenticates its requests to a provider's node with: to reach its lease's
/// result or logs, an EIP-712 [`access::access`] (`<expiry>:<nonce>:<signature>`); to push an
/// order's spec, `<expiry>:<signature>`, the signature (EIP-191) over [`spec_auth_message`].
pub const AUTH_HEADER: &str = "x-gridlease-auth";

/// The market a signed request is for: one deployment on one chain. An id alone is not unique
/// across them (an order's id hashes its tenant and terms, so the same tenant posting the same
/// terms on two chains gets the same id), so a signature names both, and a node serving another
/// market refuses it: a header a provider (or anyone on the way) saw cannot be replayed to a node
/// of another deployment for the same tenant's lease there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Venue {
    /// The chain's id (EIP-155).
    pub chain_id: u64,
    /// The market contract's address.
    pub market: Address,
}

impl std::fmt::Display for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "market {} on chain {}", self.market, self.chain_id)
    }
}

/// What a tenant signs to push the spec of `order` at `venue` to a provider node until `expiry`
/// (unix seconds); see [`gridlease_primitives::spec::PUSH_URI`].
pub fn spec_auth_message(venue: Venue, order: B256, expiry: u64) -> String {
    format!("gridlease spec {order} of {venue} until {expiry}")
}

/// The [`AUTH_HEADER`] value by which `signer` (the tenant) downloads the result of `lease` from
/// `provider`'s node at `venue` (an [`access::access`] to [`access::AccessTo::Result`]).
pub fn result_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    venue: Venue,
    lease: B256,
    provider: Address,
) -> Option<String> {
    access::access(signer, venue, access::AccessTo::Result, lease, provider)
}

/// The [`AUTH_HEADER`] value `signer` gives to push the spec of `order` at `venue`, valid for ten
/// minutes.
pub fn spec_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    venue: Venue,
    order: B256,
) -> Option<String> {
    signed_auth(signer, |expiry| spec_auth_message(venue, order, expiry))
}

fn signed_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    message: impl Fn(u64) -> String,
) -> Option<String> {
    use alloy::signers::SignerSync;
    let expiry = access::now() + access::LIFE;
    let sig = signer.sign_message_sync(message(expiry).as_bytes()).ok()?;
    Some(format!("{expiry}:{sig}"))
}
