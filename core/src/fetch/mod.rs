//! Fetching what strangers name (SECURITY.md N, PIN-01..04): the spec URI of an order, the data
//! inputs of a built-in job, the result URI a provider posts. One [`Fetcher`] per process, one
//! shared HTTP client, and these rules:
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

use std::{
    error::Error as StdError,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use alloy::{primitives::B256, transports::http::reqwest};
use ipnet::IpNet;

use crate::spec::RunSpec;

/// Largest download accepted by default (inputs of the largest matmul are 2 x 8,192 x 65,536
/// bytes).
pub const MAX_DOWNLOAD: u64 = 1 << 30;
/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;
/// Largest run spec fetched (a spec is a few hundred bytes of JSON).
pub const MAX_SPEC_BYTES: u64 = 64 << 10;

/// The header a tenant authenticates a result download with: `<expiry>:<signature>`, the
/// signature (EIP-191) over [`result_auth_message`].
pub const AUTH_HEADER: &str = "x-gridlease-auth";

/// What a tenant signs to download the result of `lease` until `expiry` (unix seconds).
pub fn result_auth_message(lease: B256, expiry: u64) -> String {
    format!("gridlease result {lease} until {expiry}")
}

/// What a tenant signs to push the spec of `order` to a provider node until `expiry` (unix
/// seconds); see [`crate::spec::PUSH_URI`].
pub fn spec_auth_message(order: B256, expiry: u64) -> String {
    format!("gridlease spec {order} until {expiry}")
}

/// The [`AUTH_HEADER`] value `signer` gives for `lease`, valid for ten minutes.
pub fn result_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    lease: B256,
) -> Option<String> {
    signed_auth(signer, |expiry| result_auth_message(lease, expiry))
}

/// The [`AUTH_HEADER`] value `signer` gives to push the spec of `order`, valid for ten minutes.
pub fn spec_auth(signer: &alloy::signers::local::PrivateKeySigner, order: B256) -> Option<String> {
    signed_auth(signer, |expiry| spec_auth_message(order, expiry))
}

fn signed_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    message: impl Fn(u64) -> String,
) -> Option<String> {
    use alloy::signers::SignerSync;
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs()
        + 600;
    let sig = signer.sign_message_sync(message(expiry).as_bytes()).ok()?;
    Some(format!("{expiry}:{sig}"))
}

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
    /// More redirects than [`MAX_REDIRECTS`], or a redirect to another scheme.
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
fn cut(uri: &str) -> String {
    let mut s: String = uri.chars().take(100).collect();
    if s.len() < uri.len() {
        s.push_str("...");
    }
    s
}

/// Networks a fetch may reach although they are internal: a devnet's loopback, a test's, a
/// provider's own storage gateway on its LAN. Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Parse entries: an address (`127.0.0.1`, `::1`) or a network (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{e:?} is not an address or a network (such as 10.0.0.0/8 or ::1)")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Loopback (127.0.0.0/8 and ::1): for a market whose nodes run on this machine.
    pub fn loopback() -> Self {
        Self(vec![
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("a /8")),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }

    /// Whether `ip` may be connected to: a public address, or one the list names.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip)
            || self
                .0
                .iter()
                .any(|n| n.contains(&ip) || n.contains(&canonical(ip)))
    }
}

/// An IPv4 address embedded in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) as that IPv4 address; anything else as is.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return IpAddr::V4(low); // IPv4-compatible (deprecated), not :: or ::1
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(low);
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

/// Whether `ip` is not a public unicast address: loopback, private, link-local, shared
/// (carrier-grade NAT), multicast, broadcast, reserved, documentation, benchmarking or
/// unspecified, IPv4 or IPv6, and IPv4 carried in IPv6.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            a == 0 // "this network", 0.0.0.0
                || a == 10
                || a == 127
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 169 && b == 254) // link-local, cloud metadata
                || (a == 172 && (16..32).contains(&b))
                || (a == 192 && b == 168)
                || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF, TEST-NET-1
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 198 && b == 51 && c == 100) // TEST-NET-2
                || (a == 203 && b == 0 && c == 113) // TEST-NET-3
                || a >= 224 // multicast, reserved, broadcast
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] & 0xff00) == 0xff00 // multicast
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[..6] == [0; 6] // IPv4-compatible and :: forms not caught above
        }
    }
}

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
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !allow.permits(a.ip())) {
                return Err(Box::new(Refused(FetchError::Internal {
                    host,
                    addr: bad.ip(),
                })) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The scheme and literal host of `url`, held to the rules.
pub(crate) fn check_url(url: &reqwest::Url, allow: &AllowList) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Scheme {
            uri: cut(url.as_str()),
        });
    }
    let addr = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        Some(url::Host::Domain(_)) => return Ok(()), // checked by the resolver on connect
        None => {
            return Err(FetchError::BadUri {
                uri: cut(url.as_str()),
                why: "it names no host".into(),
            });
        }
    };
    if allow.permits(addr) {
        Ok(())
    } else {
        Err(FetchError::Internal {
            host: url.host_str().unwrap_or_default().to_owned(),
            addr,
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
    allow: Arc<AllowList>,
    limits: Limits,
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
        if uri == crate::spec::PUSH_URI {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use axum::{Router, http::StatusCode, response::Redirect, routing::get};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serve `app` on `ip`, port chosen; its base URL.
    async fn serve(ip: &str, app: Router) -> String {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// A server on 127.0.0.1 whose every answer is a secret, counting the requests it gets.
    async fn secret_server() -> (u16, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = Router::new().fallback(move || {
            h.fetch_add(1, SeqCst);
            async { "SECRET internal page" }
        });
        let base = serve("127.0.0.1", app).await;
        let port = base
            .rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("port");
        (port, hits)
    }

    /// A raw TCP server answering every connection with `head` and then `body` chunks forever
    /// (or nothing at all with an empty `head`).
    async fn raw_server(head: &'static str, chunk: Option<Vec<u8>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let chunk = chunk.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = c.read(&mut buf).await;
                    if head.is_empty() {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    if c.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    if let Some(chunk) = chunk {
                        while c.write_all(&chunk).await.is_ok() {}
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn pin_02_internal_addresses_in_every_form_are_recognised() {
        for internal in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
        ] {
            let ip: IpAddr = internal.parse().expect(internal);
            assert!(is_internal(ip), "{internal} is internal");
            assert!(!AllowList::default().permits(ip), "{internal}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = public.parse().expect(public);
            assert!(!is_internal(ip), "{public} is public");
        }
        let lo = AllowList::loopback();
        assert!(lo.permits("127.0.0.1".parse().expect("ip")));
        assert!(lo.permits("::1".parse().expect("ip")));
        assert!(lo.permits("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!lo.permits("169.254.169.254".parse().expect("ip")));
        assert!(!lo.permits("10.0.0.1".parse().expect("ip")));
        let lan = AllowList::parse(&["10.0.0.0/8", " ::1 "]).expect("valid");
        assert!(lan.permits("10.200.0.1".parse().expect("ip")));
        assert!(lan.permits("::1".parse().expect("ip")));
        assert!(!lan.permits("127.0.0.1".parse().expect("ip")));
        assert!(AllowList::parse(&["localhost"]).is_err());
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
    }

    #[tokio::test]
    async fn pin_01_local_paths_and_other_schemes_are_never_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("operator.json");
        std::fs::write(&secret, "SECRET keystore").expect("write");
        let f = Fetcher::new(AllowList::loopback(), Limits::default());
        for uri in [
            format!("file://{}", secret.display()),
            secret.display().to_string(),
            "/etc/hostname".into(),
            "file:///proc/self/environ".into(),
            "/dev/zero".into(),
            "ftp://example.com/a".into(),
            "gopher://127.0.0.1/".into(),
        ] {
            let e = f.get(&uri, None).await.expect_err(&uri);
            assert_eq!(e.code(), "fetch-scheme", "{uri}: {e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
    }

    #[tokio::test]
    async fn pin_02_internal_hosts_are_refused_before_any_request() {
        let (port, hits) = secret_server().await;
        let f = Fetcher::default();
        for uri in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::1]:{port}/"),
            format!("http://0x7f.1:{port}/"),
            format!("http://2130706433:{port}/"),
            format!("http://0177.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://localhost:{port}/"),
            "http://169.254.169.254/latest/meta-data/iam/".into(),
            "http://[fd00:ec2::254]/latest/".into(),
            "http://10.0.0.1/".into(),
            "http://0.0.0.0/".into(),
        ] {
            let e = f.get(&uri, None).await.expect_err(&uri);
            assert_eq!(e.code(), "fetch-internal-address", "{uri}: {e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
        assert_eq!(
            hits.load(SeqCst),
            0,
            "no request reached the internal server"
        );
        // The allow-list opens loopback for a devnet, and only loopback.
        let devnet = Fetcher::new(AllowList::loopback(), Limits::default());
        let got = devnet
            .get(&format!("http://127.0.0.1:{port}/x"), None)
            .await
            .expect("allowed");
        assert_eq!(got, b"SECRET internal page");
        assert!(
            devnet
                .get("http://169.254.169.254/", None)
                .await
                .is_err_and(|e| e.code() == "fetch-internal-address")
        );
    }

    #[tokio::test]
    async fn pin_02_redirects_are_held_to_the_same_rules_and_capped() {
        // The only network allowed is 127.0.0.1 itself; 127.0.0.2 (another loopback address)
        // plays the internal server a redirect points at.
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let internal = serve(
            "127.0.0.2",
            Router::new().fallback(move || {
                h.fetch_add(1, SeqCst);
                async { "SECRET" }
            }),
        )
        .await;
        let to_internal = format!("{internal}/secret");
        let public = serve(
            "127.0.0.1",
            Router::new()
                .route(
                    "/hop",
                    get(move || async move { Redirect::temporary(&to_internal) }),
                )
                .route(
                    "/meta",
                    get(|| async { Redirect::temporary("http://169.254.169.254/") }),
                )
                .route(
                    "/file",
                    get(|| async { Redirect::temporary("file:///etc/hostname") }),
                )
                .route("/ok", get(|| async { "fine" }))
                .route("/one", get(|| async { Redirect::temporary("/ok") }))
                .route(
                    "/loop/{n}",
                    get(
                        |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                            Redirect::temporary(&format!("/loop/{}", n + 1))
                        },
                    ),
                ),
        )
        .await;
        let allow = AllowList::parse(&["127.0.0.1/32"]).expect("valid");
        let f = Fetcher::new(allow, Limits::default());
        assert_eq!(
            f.get(&format!("{public}/one"), None).await,
            Ok(b"fine".to_vec())
        );
        for (path, code) in [
            ("/hop", "fetch-internal-address"),
            ("/meta", "fetch-internal-address"),
            // The client does not follow a redirect off http(s): the 3xx is the answer.
            ("/file", "fetch-http-status"),
            ("/loop/0", "fetch-redirect"),
        ] {
            let e = f
                .get(&format!("{public}{path}"), None)
                .await
                .expect_err(path);
            assert_eq!(e.code(), code, "{path}: {e}");
        }
        assert_eq!(
            hits.load(SeqCst),
            0,
            "no redirect reached the internal server"
        );
    }

    #[tokio::test]
    async fn pin_03_a_chunked_endless_answer_stops_at_the_cap() {
        // An endless chunked body with no length (as a "10 GB" answer would start).
        let chunk = format!("4000\r\n{}\r\n", "z".repeat(0x4000)).into_bytes();
        let endless = raw_server(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Some(chunk),
        )
        .await;
        let cap = 1 << 20;
        let f = Fetcher::new(
            AllowList::loopback(),
            Limits {
                max_bytes: cap,
                ..Limits::default()
            },
        );
        let e = tokio::time::timeout(Duration::from_secs(60), f.get(&endless, None))
            .await
            .expect("stops at the cap, not at the end of the body")
            .expect_err("too large");
        assert_eq!(
            e,
            FetchError::TooLarge {
                uri: endless.clone(),
                cap
            }
        );
        // A per-call cap below the fetcher's (a spec) applies too.
        let e = f.get_capped(&endless, None, 1000).await.expect_err("over");
        assert_eq!(e.code(), "fetch-too-large");
        // A declared length over the cap is refused before the body is read.
        let big = serve(
            "127.0.0.1",
            Router::new().fallback(|| async { vec![7u8; (1 << 20) + 1] }),
        )
        .await;
        let e = f.get(&big, None).await.expect_err("declared too large");
        assert_eq!(e.code(), "fetch-too-large");
    }

    #[tokio::test]
    async fn pin_03_a_server_that_never_answers_times_out() {
        let silent = raw_server("", None).await;
        let f = Fetcher::new(
            AllowList::loopback(),
            Limits {
                total: Duration::from_millis(500),
                ..Limits::default()
            },
        );
        let e = tokio::time::timeout(Duration::from_secs(30), f.get(&silent, None))
            .await
            .expect("the fetcher's own timeout fires")
            .expect_err("timed out");
        assert_eq!(e.code(), "fetch-timeout", "{e}");
    }

    #[tokio::test]
    async fn error_answers_are_not_read_into_messages() {
        let base = serve(
            "127.0.0.1",
            Router::new()
                .fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "SECRET stack trace") }),
        )
        .await;
        let f = Fetcher::new(AllowList::loopback(), Limits::default());
        let e = f.get(&base, None).await.expect_err("500");
        assert_eq!(
            e,
            FetchError::Status {
                uri: base,
                status: 500
            }
        );
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[tokio::test]
    async fn pin_04_a_data_spec_without_roots_is_refused_before_any_download() {
        let (port, hits) = secret_server().await;
        let spec = RunSpec {
            version: 1,
            workload: crate::spec::Workload::MatmulI8Data {
                m: 1,
                k: 436,
                n: 1,
                a_uri: format!("http://127.0.0.1:{port}/a"),
                b_uri: format!("http://127.0.0.1:{port}/b"),
                a_root: B256::ZERO,
                b_root: B256::ZERO,
            },
            resources: crate::spec::Resources {
                gpu_class: 0,
                gpu_count: 1,
                vram_gib: 1,
                cpu_cores: 1,
                ram_gib: 1,
            },
        };
        let f = Fetcher::new(AllowList::loopback(), Limits::default());
        let e = f
            .spec(&spec.data_uri(), spec.hash())
            .await
            .expect_err("no roots");
        assert_eq!(e.code(), "fetch-spec");
        assert!(e.to_string().contains("must name the roots"), "{e}");
        let e = crate::verify::BuiltinJob::from_spec(&spec, &f)
            .await
            .expect_err("no roots");
        assert!(e.contains("must name the roots"), "{e}");
        assert_eq!(hits.load(SeqCst), 0, "nothing was downloaded");
    }
}
