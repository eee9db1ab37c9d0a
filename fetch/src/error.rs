//! [`FetchError`]: why a fetch failed, and the one code of it that may be published.

use std::net::IpAddr;

/// Why a fetch failed. [`Self::code`] is what may be published; the `Display` text is for the
/// operator's log and the user's terminal, and never holds bytes of an answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Not an `http(s)://` URI (a `file://` URI, a bare path, another scheme).
    #[error(
        "{uri:?} is not an http(s):// URI: inputs, specs and results are fetched over the network only, never from a local path"
    )]
    Scheme {
        /// The URI, cut to 100 characters.
        uri: String,
    },
    /// Not a URI at all.
    #[error("{uri:?} is not a valid URI: {why}")]
    BadUri {
        /// The URI, cut to 100 characters.
        uri: String,
        /// What is wrong with it.
        why: String,
    },
    /// Its host is, or resolves to, an internal address the allow-list does not name.
    #[error(
        "{host} is an internal address ({addr}): refused (SSRF); a devnet or test names its network in the [fetch] allow list"
    )]
    Internal {
        /// The host named.
        host: String,
        /// The internal address it is or resolves to.
        addr: IpAddr,
    },
    /// More redirects than [`MAX_REDIRECTS`](super::MAX_REDIRECTS), or a redirect to another
    /// scheme.
    #[error("{uri}: {why}")]
    Redirect {
        /// The URI first asked for.
        uri: String,
        /// What the redirect did.
        why: String,
    },
    /// No connection (refused, unresolvable name, TLS).
    #[error("cannot download {uri}: {why}; check the URI and that its server is up")]
    Unreachable {
        /// The URI.
        uri: String,
        /// Why.
        why: String,
    },
    /// The server answered an error status (its body is not read).
    #[error("{uri} answered {status}")]
    Status {
        /// The URI.
        uri: String,
        /// The HTTP status.
        status: u16,
    },
    /// Longer than the cap.
    #[error("{uri} is larger than the {cap}-byte cap: the download was stopped")]
    TooLarge {
        /// The URI.
        uri: String,
        /// The cap.
        cap: u64,
    },
    /// Connecting or the whole transfer took longer than allowed.
    #[error("{uri} took too long: the download was stopped")]
    TimedOut {
        /// The URI.
        uri: String,
    },
    /// The transfer broke off.
    #[error("the download of {uri} broke off: {why}")]
    BrokeOff {
        /// The URI.
        uri: String,
        /// Why.
        why: String,
    },
    /// Fetched, but not the run spec the order commits to.
    #[error("{uri}: {why}")]
    Spec {
        /// The URI (a `data:` URI cut short).
        uri: String,
        /// What is wrong with it.
        why: String,
    },
}

impl FetchError {
    /// A short reason code, the only part of a failure that is published (in a failure report).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Scheme { .. } => "fetch-scheme",
            Self::BadUri { .. } => "fetch-bad-uri",
            Self::Internal { .. } => "fetch-internal-address",
            Self::Redirect { .. } => "fetch-redirect",
            Self::Unreachable { .. } => "fetch-unreachable",
            Self::Status { .. } => "fetch-http-status",
            Self::TooLarge { .. } => "fetch-too-large",
            Self::TimedOut { .. } => "fetch-timeout",
            Self::BrokeOff { .. } => "fetch-broke-off",
            Self::Spec { .. } => "fetch-spec",
        }
    }
}

/// At most 100 characters of `uri`, for messages.
pub(super) fn cut(uri: &str) -> String {
    let mut s: String = uri.chars().take(100).collect();
    if s.len() < uri.len() {
        s.push_str("...");
    }
    s
}
