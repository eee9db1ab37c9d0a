//! What every JSON-RPC transport shares: how long a call may take, and which error codes mean
//! "not served now" rather than an answer. A leaf: [`crate::Client`] and [`crate::failover`] both
//! use it, and it uses neither.

/// How long one JSON-RPC call may take before it counts as a network failure (op's
/// `NetworkTimeout`).
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether JSON-RPC error code `code` means "not served now" (a rate limit, an overloaded or
/// failing endpoint: HTTP 429/5xx passed on as the code, -32005 "limit exceeded", -32016 "over
/// rate limit") rather than an answer about the request itself.
pub fn overloaded(code: i64) -> bool {
    matches!(code, 429 | -32005 | -32016) || (500..600).contains(&code)
}
