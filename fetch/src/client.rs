//! The guarded HTTP client: its resolver and redirect policy, the byte cap while a body
//! streams in, and the classification of client errors.

use std::{error::Error as StdError, sync::Arc, time::Duration};

use alloy::{primitives::B256, transports::http::reqwest};

use super::{
    AUTH_HEADER, MAX_DOWNLOAD, MAX_REDIRECTS, MAX_SPEC_BYTES,
    error::{FetchError, cut},
    guard::{AllowList, Unresolved, check_url, permitted_addrs},
};
use gridlease_primitives::spec::RunSpec;

/// A refusal raised inside the client (resolver, redirect policy), found again in the error's
/// source chain.
#[derive(Debug)]
struct Refused(FetchError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Refused {}

/// The client's resolver: the system's (`getaddrinfo`), refusing a name any of whose addresses
/// the allow-list does not permit.
struct GuardedResolver(Arc<AllowList>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match permitted_addrs(&allow, &host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(Unresolved::Lookup(e)) => Err(Box::new(e) as Box<dyn StdError + Send + Sync>),
                Err(Unresolved::Internal(e)) => Err(Box::new(Refused(e)) as _),
            }
        })
    }
}

/// Timeouts and the byte cap of a [`Fetcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one download may have.
    pub max_bytes: u64,
    /// Connecting (per address tried).
    pub connect: Duration,
    /// The whole transfer, from connecting to the last byte.
    pub total: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_DOWNLOAD,
            connect: Duration::from_secs(10),
            total: Duration::from_secs(300),
        }
    }
}

/// Fetches URIs strangers name, by the rules of this module. Cheap to clone (one shared client).
#[derive(Clone, Debug)]
pub struct Fetcher {
    /// The guarded client; if it could not be built, why (every fetch then fails: never a
    /// client without the guards).
    client: Result<reqwest::Client, String>,
    pub(crate) allow: Arc<AllowList>,
    pub(crate) limits: Limits,
}

/// Why [`Fetcher::connect_tcp`] made no connection.
pub(crate) enum Connect {
    /// The host's address is not one to connect to.
    Address(FetchError),
    /// It does not resolve, or none of its addresses answered.
    Failed(String),
}

impl Fetcher {
    /// A TCP connection to `host`:`port` (brackets of an IPv6 literal allowed), to the first of
    /// its addresses that answers within the connect timeout, every one of them permitted by the
    /// allow-list (checked on the addresses connected to).
    pub(crate) async fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, Connect> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match permitted_addrs(&self.allow, host, port).await {
            Ok(addrs) => addrs,
            Err(Unresolved::Lookup(e)) => {
                return Err(Connect::Failed(format!("cannot resolve {host}: {e}")));
            }
            Err(Unresolved::Internal(e)) => return Err(Connect::Address(e)),
        };
        let mut last = format!("{host} has no address");
        for a in &addrs {
            match tokio::time::timeout(self.limits.connect, tokio::net::TcpStream::connect(a)).await
            {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => last = format!("cannot connect to {a}: {e}"),
                Err(_) => last = format!("no answer from {a} in {:?}", self.limits.connect),
            }
        }
        Err(Connect::Failed(last))
    }
}

impl Default for Fetcher {
    /// No internal address allowed, default limits.
    fn default() -> Self {
        Self::new(AllowList::default(), Limits::default())
    }
}

impl Fetcher {
    /// A fetcher permitting the internal networks `allow` names, within `limits`.
    pub fn new(allow: AllowList, limits: Limits) -> Self {
        let allow = Arc::new(allow);
        let redirects = allow.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(limits.connect)
            .timeout(limits.total)
            .dns_resolver(Arc::new(GuardedResolver(allow.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    let why = format!("more than {MAX_REDIRECTS} redirects");
                    let uri = attempt
                        .previous()
                        .first()
                        .map(|u| cut(u.as_str()))
                        .unwrap_or_default();
                    return attempt.error(Refused(FetchError::Redirect { uri, why }));
                }
                match check_url(attempt.url(), &redirects) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(Refused(e)),
                }
            }))
            .build()
            .map_err(|e| format!("the HTTP client could not be built: {e}"));
        Self {
            client,
            allow,
            limits,
        }
    }

    /// A fetcher for a market on this machine (a devnet, tests, scraping the node's own
    /// endpoints): loopback allowed, default limits.
    pub fn devnet() -> Self {
        Self::new(AllowList::loopback(), Limits::default())
    }

    /// Send a GET for `uri` (with `auth` as the [`AUTH_HEADER`]) and return the response once
    /// its status is a success; the body is left to the caller (see [`read_capped`]).
    pub async fn open(
        &self,
        uri: &str,
        auth: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        let u = uri.trim();
        let url: reqwest::Url = match u.parse() {
            Ok(url) => url,
            Err(_) if !u.contains("://") => return Err(FetchError::Scheme { uri: cut(u) }),
            Err(e) => {
                return Err(FetchError::BadUri {
                    uri: cut(u),
                    why: e.to_string(),
                });
            }
        };
        check_url(&url, &self.allow)?;
        let client = self
            .client
            .as_ref()
            .map_err(|why| FetchError::Unreachable {
                uri: cut(u),
                why: why.clone(),
            })?;
        let mut req = client.get(url);
        if let Some(a) = auth {
            req = req.header(AUTH_HEADER, a);
        }
        let resp = req.send().await.map_err(|e| classify(u, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                uri: cut(u),
                status: status.as_u16(),
            });
        }
        Ok(resp)
    }

    /// Download `uri` (at most the fetcher's byte cap).
    pub async fn get(&self, uri: &str, auth: Option<&str>) -> Result<Vec<u8>, FetchError> {
        self.get_capped(uri, auth, self.limits.max_bytes).await
    }

    /// Download `uri`, at most `cap` bytes (and never more than the fetcher's own cap).
    pub async fn get_capped(
        &self,
        uri: &str,
        auth: Option<&str>,
        cap: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let resp = self.open(uri, auth).await?;
        read_capped(uri, resp, cap.min(self.limits.max_bytes)).await
    }

    /// The run spec an order names (`specURI`), checked against its `specHash`: a `data:` URI
    /// decoded in place, an `http(s)://` one downloaded (at most [`MAX_SPEC_BYTES`]). A data job
    /// whose spec has no input roots is refused before any input is downloaded (PIN-04).
    pub async fn spec(&self, uri: &str, hash: B256) -> Result<RunSpec, FetchError> {
        let bad = |why: String| FetchError::Spec { uri: cut(uri), why };
        if uri == gridlease_primitives::spec::PUSH_URI {
            return Err(bad(
                "the tenant pushes this spec to the provider's node; it is not published".into(),
            ));
        }
        let spec = if uri.starts_with("data:") {
            RunSpec::from_data_uri(uri, hash).map_err(bad)?
        } else {
            let bytes = self.get_capped(uri, None, MAX_SPEC_BYTES).await?;
            let spec: RunSpec =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a run spec: {e}")))?;
            if spec.hash() != hash {
                return Err(bad("the spec does not match the order's spec hash".into()));
            }
            spec
        };
        spec.workload.check_roots().map_err(bad)?;
        Ok(spec)
    }
}

/// Read `resp`'s body, stopping as soon as it passes `cap` bytes (whatever its Content-Length
/// says, chunked or not).
pub async fn read_capped(
    uri: &str,
    mut resp: reqwest::Response,
    cap: u64,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge { uri: cut(uri), cap };
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(
        usize::try_from(resp.content_length().unwrap_or(0).min(cap).min(64 << 20)).unwrap_or(0),
    );
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(uri, &e))? {
        if bytes.len() as u64 + chunk.len() as u64 > cap {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A client error as a [`FetchError`]: a refusal raised inside the client as itself, else by
/// what failed.
pub fn classify(uri: &str, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(Refused(inner)) = s.downcast_ref::<Refused>() {
            return inner.clone();
        }
        source = s.source();
    }
    let uri = cut(uri);
    if e.is_timeout() {
        FetchError::TimedOut { uri }
    } else if e.is_connect() || e.is_request() && !e.is_body() {
        FetchError::Unreachable {
            uri,
            why: root_cause(e),
        }
    } else {
        FetchError::BrokeOff {
            uri,
            why: root_cause(e),
        }
    }
}

/// The innermost message of an error chain (the useful one: "connection refused").
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}
