//! The TLS front of a service lease whose spec asks for it (`[service] tls = true`, ACC-03).
//!
//! The node serves the service's port itself, over TLS with a key of the lease's own, and carries
//! each connection to the service, which is published on a loopback port only. The key's hash
//! (SHA-256 of its DER SubjectPublicKeyInfo) is bound on chain to the lease
//! (`Results.bindCertificate`) before the front serves; the lease's clients (`gridlease connect`,
//! `curl --pinnedpubkey`) refuse any other key, so whatever else answers on that host and port
//! (another lease's service after this one ends, a machine in between) is refused, and the node
//! can serve another key only by binding it in the open.
//!
//! The key is derived from the operator's key, the chain, the market and the lease (ECDSA P-256,
//! the scalar a keccak of them): a restarted node serves the same key, so its binding stands and
//! no key file is kept on disk; a node with another operator key derives another and binds it.
//! The certificate is self-signed over it (no authority vouches for a lease's endpoint; the
//! chain does).
//!
//! Anyone may connect to a service, so a front is bounded: the node's fronts together carry at
//! most [`Budget`] connections (sized from the node's file-descriptor limit, which the node
//! raises to its hard limit at start), one lease at most [`MAX_CONNECTIONS`], one address at most
//! [`MAX_PER_PEER`] of a lease's; a handshake has [`HANDSHAKE`], and a connection silent both ways
//! for [`IDLE`] is closed. The service is reached on a loopback port chosen afresh for each of its
//! runs; between runs (a restart) the front carries nothing to it.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, keccak256};
use rustls::{
    ServerConfig,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Connections one lease's front carries at once; past it the front accepts no more until one
/// ends (they wait in the listen backlog).
pub const MAX_CONNECTIONS: usize = 512;
/// Connections of one lease's front from one address at once; more are closed at once. A client
/// application's server calling the service may well hold dozens (one per request in flight).
pub const MAX_PER_PEER: usize = 128;
/// Time a client has to complete its TLS handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// A connection with no byte either way for this long is closed.
pub const IDLE: Duration = Duration::from_secs(600);
/// Time the service has to take a connection on its loopback port.
const BACKEND_CONNECT: Duration = Duration::from_secs(5);
/// File descriptors kept for the node's own use (RPC, its API, the store, logs, the engine).
const RESERVED_FDS: u64 = 256;

/// A lease's TLS identity.
pub struct Identity {
    /// SHA-256 of the key's DER SubjectPublicKeyInfo: the lease's on-chain binding.
    pub key: B256,
    /// The self-signed certificate over it (DER).
    pub cert: rustls::pki_types::CertificateDer<'static>,
    /// The front's server configuration (the self-signed certificate and its key).
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("key", &self.key).finish()
    }
}

/// The node's secret the lease keys are derived from: a hash of the operator key, so no lease
/// key reveals it.
pub fn node_secret(operator_key: &[u8]) -> B256 {
    keccak256([b"gridlease service tls v1".as_slice(), operator_key].concat())
}

/// RFC 5915 `ECPrivateKey` of P-256 scalar `d`, without its public key (computed on load).
fn p256_private_key(d: &[u8; 32]) -> Vec<u8> {
    // SEQUENCE { INTEGER 1, OCTET STRING d, [0] { OID prime256v1 } }
    let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(d);
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    der
}

/// The TLS identity of `lease` of `market` on chain `chain_id`, derived from `secret`
/// ([`node_secret`]).
pub fn identity(
    secret: B256,
    chain_id: u64,
    market: Address,
    lease: B256,
) -> Result<Identity, String> {
    let pkcs8 = derive_key(secret, chain_id, market, lease)?;
    let signing = rcgen::KeyPair::try_from(pkcs8.as_ref())
        .map_err(|e| format!("loading the lease's TLS key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("the lease's certificate: {e}"))?;
    // The lease id's first 8 bytes: a common name stays within X.509's 64 characters.
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("gridlease lease 0x{}", alloy::hex::encode(&lease[..8])),
    );
    let cert = params
        .self_signed(&signing)
        .map_err(|e| format!("signing the lease's certificate: {e}"))?;
    let key = gridlease_fetch::service::spki_hash(&rcgen::PublicKeyData::subject_public_key_info(
        &signing,
    ));
    let config = ServerConfig::builder_with_provider(gridlease_fetch::service::tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec())),
        )
        .map_err(|e| format!("the lease's TLS configuration: {e}"))?;
    Ok(Identity {
        key,
        cert: cert.der().clone(),
        config: Arc::new(config),
    })
}

/// The PKCS#8 document of `lease`'s key ([`identity`]).
fn derive_key(
    secret: B256,
    chain_id: u64,
    market: Address,
    lease: B256,
) -> Result<aws_lc_rs::pkcs8::Document, String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    // The scalar must lie in [1, n - 1]: a hash outside it (about one in 2^32) is hashed again.
    let pair = (0u8..=255)
        .find_map(|round| {
            let d = keccak256(
                [
                    secret.as_slice(),
                    &chain_id.to_be_bytes(),
                    market.as_slice(),
                    lease.as_slice(),
                    &[round],
                ]
                .concat(),
            );
            EcdsaKeyPair::from_private_key_der(
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                &p256_private_key(&d.0),
            )
            .ok()
        })
        .ok_or_else(|| "deriving the lease's TLS key failed".to_owned())?;
    pair.to_pkcs8v1()
        .map_err(|_| "encoding the lease's TLS key failed".to_owned())
}

/// A loopback port free now, for a service behind its front (the engine or the process binds it
/// next).
pub fn free_loopback_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()
        .map(|a| a.port())
}

/// How many connections all of a node's fronts carry at once: shared by every lease.
#[derive(Clone, Debug)]
pub struct Budget(Arc<Semaphore>, usize);

impl Budget {
    /// A budget of `n` connections.
    pub fn new(n: usize) -> Self {
        Self(Arc::new(Semaphore::new(n)), n)
    }

    /// How many connections it allows in all.
    pub fn connections(&self) -> usize {
        self.1
    }

    /// Raise this process's soft limit of open files to its hard limit, and size the budget from
    /// it: each carried connection holds two descriptors in the node (the client's, the
    /// service's), and [`RESERVED_FDS`] stay for the node's own use. Between 64 and 16,384.
    pub fn from_fd_limit() -> Self {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the one struct passed, which outlives them.
        let soft = unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) != 0 {
                1024
            } else {
                if lim.rlim_cur < lim.rlim_max {
                    let raised = libc::rlimit {
                        rlim_cur: lim.rlim_max,
                        rlim_max: lim.rlim_max,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) == 0 {
                        lim.rlim_cur = lim.rlim_max;
                    }
                }
                lim.rlim_cur
            }
        };
        let n = (soft.saturating_sub(RESERVED_FDS) / 2).clamp(64, 16_384);
        Self::new(usize::try_from(n).unwrap_or(16_384))
    }
}

/// What a front counts: connections carried to the service, and those that never reached it.
#[derive(Clone, Debug)]
pub struct Counts {
    /// Carried to the service.
    pub carried: metrics::Counter,
    /// Ended before the service was reached.
    pub failed: metrics::Counter,
}

impl Counts {
    /// Counting nothing (tests).
    pub fn none() -> Self {
        Self {
            carried: metrics::Counter::noop(),
            failed: metrics::Counter::noop(),
        }
    }
}

/// Where a front carries its connections: the service's loopback port while a run of it is up
/// (None between runs).
pub type Backend = watch::Receiver<Option<u16>>;

/// Connections of one lease's front per address.
#[derive(Debug, Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One of an address's connections; gives its place back when dropped.
struct PeerSlot(Arc<Peers>, IpAddr);

impl Peers {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_default();
        if *n >= MAX_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot(self.clone(), ip))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = (self.0)
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// One lease's front: what it serves with, where it carries to, and what bounds it.
#[derive(Debug)]
pub struct Front {
    /// The lease (for the log).
    pub lease: B256,
    /// Its TLS configuration ([`Identity::config`]).
    pub config: Arc<ServerConfig>,
    /// Where the service is now.
    pub backend: Backend,
    /// The node's connections, shared by every front.
    pub budget: Budget,
    /// What it counts.
    pub counts: Counts,
    /// How long a connection may be silent both ways ([`IDLE`]).
    pub idle: Duration,
}

impl Front {
    /// A front carrying to the fixed loopback port `backend`, with a budget of its own and
    /// counting nothing (tests, benches).
    pub fn to_port(lease: B256, config: Arc<ServerConfig>, backend: u16) -> Self {
        let (_, backend) = watch::channel(Some(backend));
        Self {
            lease,
            config,
            backend,
            budget: Budget::new(MAX_CONNECTIONS),
            counts: Counts::none(),
            idle: IDLE,
        }
    }
}

/// Serve `listener` over TLS until `cancel`: each connection's handshake, then its bytes both
/// ways to the service. Every connection ends with the front (a lease's connections do not
/// outlive it).
pub async fn serve(front: Front, listener: TcpListener, cancel: CancellationToken) {
    let Front {
        lease,
        config,
        backend,
        budget,
        counts,
        idle,
    } = front;
    let acceptor = TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let peers = Arc::new(Peers::default());
    info!(lease = %lease, addr = ?listener.local_addr().ok(), "service TLS front open");
    loop {
        // The lease's place first, then the node's: a lease at its cap holds none of the node's.
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("the front's semaphore is never closed"),
        };
        let node = tokio::select! {
            () = cancel.cancelled() => break,
            p = budget.0.clone().acquire_owned() => p.expect("the budget is never closed"),
        };
        let (tcp, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, mostly: pause rather than spin.
                    warn!(lease = %lease, error = %e, "service TLS front: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Some(place) = peers.take(peer.ip()) else {
            counts.failed.increment(1);
            debug!(lease = %lease, peer = %peer, "service connection refused: too many from this address");
            continue;
        };
        let (acceptor, cancel, counts, backend) = (
            acceptor.clone(),
            cancel.clone(),
            counts.clone(),
            backend.clone(),
        );
        tokio::spawn(async move {
            let _held: (OwnedSemaphorePermit, OwnedSemaphorePermit, PeerSlot) =
                (permit, node, place);
            tokio::select! {
                () = cancel.cancelled() => {}
                r = carry(tcp, peer, &acceptor, &backend, &counts, idle) => {
                    if let Err(e) = r {
                        debug!(lease = %lease, peer = %peer, error = %e, "service connection ended");
                    }
                }
            }
        });
    }
    info!(lease = %lease, "service TLS front closed");
}

/// One connection: the handshake, then bytes both ways until either side ends or both are silent
/// for `idle`.
async fn carry(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    backend: &Backend,
    counts: &Counts,
    idle: Duration,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let reached = async {
        let tls = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp))
            .await
            .map_err(|_| format!("no TLS handshake from {peer} within {HANDSHAKE:?}"))?
            .map_err(|e| format!("TLS handshake with {peer}: {e}"))?;
        let port = (*backend.borrow()).ok_or("the service is starting again")?;
        let connect = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port));
        let service = tokio::time::timeout(BACKEND_CONNECT, connect)
            .await
            .map_err(|_| "the service took no connection within 5 s".to_owned())?
            .map_err(|e| format!("the service is not listening: {e}"))?;
        Ok::<_, String>((tls, service))
    };
    let (tls, service) = reached.await.inspect_err(|_| counts.failed.increment(1))?;
    counts.carried.increment(1);
    let _ = service.set_nodelay(true);
    let start = Instant::now();
    let seen = Arc::new(AtomicU64::new(0));
    let (mut tls, mut service) = (
        Watched::new(tls, &seen, start),
        Watched::new(service, &seen, start),
    );
    let silent = async {
        loop {
            let last = Duration::from_millis(seen.load(Relaxed));
            let quiet = start.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut tls, &mut service) => r.map(drop).map_err(|e| e.to_string()),
        () = silent => Err(format!("closed after {idle:?} without a byte either way")),
    }
}

/// A stream that notes when a byte last went through it (milliseconds since `start`, shared by
/// both ends of a connection).
struct Watched<S> {
    inner: S,
    seen: Arc<AtomicU64>,
    start: Instant,
}

impl<S> Watched<S> {
    fn new(inner: S, seen: &Arc<AtomicU64>, start: Instant) -> Self {
        Self {
            inner,
            seen: seen.clone(),
            start,
        }
    }

    fn note(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.seen.store(ms, Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.note();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.note();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use gridlease_fetch::{
        AllowList, Fetcher, Limits,
        service::{ServiceError, curl_pin},
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const MARKET: Address = Address::repeat_byte(0x4d);

    fn lease_key(operator: u8, chain: u64, lease: u8) -> Identity {
        identity(
            node_secret(&[operator; 32]),
            chain,
            MARKET,
            B256::repeat_byte(lease),
        )
        .expect("an identity")
    }

    #[test]
    fn a_lease_key_survives_a_restart_and_belongs_to_one_lease_operator_and_chain() {
        let key = lease_key(1, 31_337, 7).key;
        assert_eq!(lease_key(1, 31_337, 7).key, key, "derived again, the same");
        for other in [
            lease_key(2, 31_337, 7),
            lease_key(1, 1, 7),
            lease_key(1, 31_337, 8),
        ] {
            assert_ne!(other.key, key);
        }
        assert!(curl_pin(key).starts_with("sha256//"));
    }

    /// A front for `id` on a loopback port, carrying to `backend`.
    async fn front(id: &Identity, backend: u16) -> (u16, CancellationToken) {
        let (port, stop, _) = front_with(id, Some(backend), IDLE).await;
        (port, stop)
    }

    /// A front for `id` on a loopback port, carrying to what its sender says (first `backend`),
    /// closing connections silent for `idle`.
    async fn front_with(
        id: &Identity,
        backend: Option<u16>,
        idle: Duration,
    ) -> (u16, CancellationToken, watch::Sender<Option<u16>>) {
        let (to, backend) = watch::channel(backend);
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let port = l.local_addr().expect("bound").port();
        let stop = CancellationToken::new();
        let f = Front {
            lease: B256::ZERO,
            config: id.config.clone(),
            backend,
            budget: Budget::new(1_024),
            counts: Counts::none(),
            idle,
        };
        tokio::spawn(serve(f, l, stop.clone()));
        (port, stop, to)
    }

    fn client() -> Fetcher {
        Fetcher::new(AllowList::loopback(), Limits::default())
    }

    #[tokio::test]
    async fn a_client_talks_only_to_the_key_bound_to_its_lease_acc03() {
        let (lease, other) = (lease_key(1, 31_337, 7), lease_key(1, 31_337, 8));
        let backend = gridlease_testkit::echo::echo()
            .await
            .expect("an echo service");
        let (port, stop) = front(&lease, backend).await;
        let mut c = client()
            .service("127.0.0.1", port, lease.key)
            .await
            .expect("the bound key answers");
        c.write_all(b"hello over tls").await.expect("on loopback");
        let mut got = [0u8; 14];
        c.read_exact(&mut got).await.expect("on loopback");
        assert_eq!(&got, b"hello over tls", "carried to the service and back");

        // A client pinned to another lease's key refuses this front: whoever answers on a port
        // without the lease's key (another lease's service, something in between) is not it.
        let e = client()
            .service("127.0.0.1", port, other.key)
            .await
            .expect_err("another key");
        assert!(
            matches!(&e, ServiceError::Tls(m) if m.contains("is not the one bound on chain")),
            "{e}"
        );
        // A node that swaps its key without binding the new one is refused the same way.
        let swapped = front(&other, backend).await.0;
        let e = client()
            .service("127.0.0.1", swapped, lease.key)
            .await
            .expect_err("a swapped key");
        assert!(e.to_string().contains("not the one bound on chain"), "{e}");
        // Plain TCP on the port gets no service: the front answers TLS only.
        let mut raw = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("the front listens");
        raw.write_all(b"GET / HTTP/1.0\r\n\r\n")
            .await
            .expect("on loopback");
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer).await;
        assert!(
            !answer.starts_with(b"GET"),
            "nothing of a plain request reaches the service"
        );

        // Closed with its lease: open connections end and the port is free.
        stop.cancel();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("the connection ends with the front");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        assert!(
            within_5s(async || std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
                .await,
            "the port is free"
        );
    }

    #[tokio::test]
    async fn a_client_that_never_completes_its_handshake_does_not_hold_up_the_next() {
        let lease = lease_key(1, 31_337, 7);
        let backend = gridlease_testkit::echo::echo()
            .await
            .expect("an echo service");
        let (port, _stop) = front(&lease, backend).await;
        // A connection that sends nothing does not stop another from being served.
        let _idle = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("the front listens");
        let mut c = client()
            .service("127.0.0.1", port, lease.key)
            .await
            .expect("served beside an idle connection");
        c.write_all(b"x").await.expect("on loopback");
        let mut one = [0u8; 1];
        c.read_exact(&mut one).await.expect("on loopback");
        assert_eq!(&one, b"x");
    }

    /// Whether `done` comes true within 5 s (asked every 20 ms): the front lets go of what a
    /// closed connection held a moment after the client sees it closed.
    async fn within_5s(mut done: impl AsyncFnMut() -> bool) -> bool {
        for _ in 0..250 {
            if done().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// A pinned connection that echoes one byte: it reached the service.
    async fn reaches(port: u16, key: B256) -> bool {
        let Ok(mut c) = client().service("127.0.0.1", port, key).await else {
            return false;
        };
        let mut one = [0u8; 1];
        c.write_all(b"?").await.is_ok()
            && tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut one))
                .await
                .is_ok_and(|r| r.is_ok())
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_of_a_leases_connections() {
        let lease = lease_key(1, 31_337, 7);
        let backend = gridlease_testkit::echo::echo()
            .await
            .expect("an echo service");
        let (port, _stop) = front(&lease, backend).await;
        let mut held = Vec::new();
        for _ in 0..MAX_PER_PEER {
            let mut c = client()
                .service("127.0.0.1", port, lease.key)
                .await
                .expect("within its share");
            c.write_all(b"x").await.expect("on loopback");
            let mut one = [0u8; 1];
            c.read_exact(&mut one).await.expect("echoed");
            held.push(c);
        }
        assert!(
            !reaches(port, lease.key).await,
            "one past its share is closed"
        );
        held.pop();
        assert!(
            within_5s(async || reaches(port, lease.key).await).await,
            "a place given back is taken again"
        );
    }

    #[tokio::test]
    async fn between_the_services_runs_nothing_is_carried_and_silent_connections_close() {
        let lease = lease_key(1, 31_337, 7);
        let backend = gridlease_testkit::echo::echo()
            .await
            .expect("an echo service");
        let (port, _stop, to) = front_with(&lease, None, Duration::from_millis(300)).await;
        // The service is starting again: the handshake completes, nothing is carried.
        assert!(!reaches(port, lease.key).await);
        // Up (on a fresh loopback port): carried.
        to.send_replace(Some(backend));
        assert!(reaches(port, lease.key).await);
        // A connection silent both ways past the idle limit is closed by the front.
        let mut c = client()
            .service("127.0.0.1", port, lease.key)
            .await
            .expect("served");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("closed by the front, not left open");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }

    /// A server that shows the lease's bound certificate but holds another key cannot sign the
    /// handshake with the bound one: the client checks the signature against the certificate's
    /// key, so a copied certificate is worth nothing.
    #[tokio::test]
    async fn a_server_showing_the_bound_certificate_without_its_key_is_refused() {
        use rustls::{
            server::{ClientHello, ResolvesServerCert},
            sign::CertifiedKey,
        };
        #[derive(Debug)]
        struct Copied(Arc<CertifiedKey>);
        impl ResolvesServerCert for Copied {
            fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
                Some(self.0.clone())
            }
        }
        let lease = lease_key(1, 31_337, 7);
        let own =
            derive_key(node_secret(&[2; 32]), 31_337, MARKET, B256::repeat_byte(7)).expect("a key");
        let provider = gridlease_fetch::service::tls_provider();
        let signer = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                own.as_ref().to_vec(),
            )))
            .expect("a signing key");
        let copied = CertifiedKey::new(vec![lease.cert.clone()], signer);
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Copied(Arc::new(copied))));
        let backend = gridlease_testkit::echo::echo()
            .await
            .expect("an echo service");
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let port = l.local_addr().expect("bound").port();
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            Front::to_port(B256::ZERO, Arc::new(config), backend),
            l,
            stop.clone(),
        ));
        let e = client()
            .service("127.0.0.1", port, lease.key)
            .await
            .expect_err("a signature by another key");
        assert!(matches!(e, ServiceError::Tls(_)), "{e}");
        // The same certificate with its own key is served (the refusal was the signature's).
        assert!(reaches(front(&lease, backend).await.0, lease.key).await);
        stop.cancel();
    }
}
