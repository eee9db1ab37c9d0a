//! The TLS front of a service lease whose spec asks for it (`[service] tls = true`, ACC-03).
//!
//! The node serves the service's port itself, over TLS with a key of the lease's own, and carries
//! each connection to the service, which is published on a loopback port only. The key's hash
//! (SHA-256 of its DER SubjectPublicKeyInfo) is bound on chain to the lease
//! (`Results.bindCertificate`) before the port opens; the lease's clients (`gridlease connect`,
//! `curl --pinnedpubkey`) refuse any other key, so whatever else answers on that host and port
//! (another lease's service after this one ends, a machine in between) is refused, and the node
//! can serve another key only by binding it in the open.
//!
//! The key is derived from the operator's key, the chain, the market and the lease (Ed25519, the
//! seed a keccak of them): a restarted node serves the same key, so its binding stands and no
//! key file is kept on disk; a node with another operator key derives another and binds it.
//! The certificate is self-signed over it (no authority vouches for a lease's endpoint; the
//! chain does).

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use alloy::primitives::{Address, B256, keccak256};
use rustls::{
    ServerConfig,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Connections one lease's front carries at once; past it the front accepts no more until one
/// ends (they wait in the listen backlog).
pub const MAX_CONNECTIONS: usize = 512;
/// Time a client has to complete its TLS handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Time the service has to take a connection on its loopback port.
const BACKEND_CONNECT: Duration = Duration::from_secs(5);

/// A lease's TLS identity.
pub struct Identity {
    /// SHA-256 of the key's DER SubjectPublicKeyInfo: the lease's on-chain binding.
    pub key: B256,
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

/// The TLS identity of `lease` of `market` on chain `chain_id`, derived from `secret`
/// ([`node_secret`]).
pub fn identity(
    secret: B256,
    chain_id: u64,
    market: Address,
    lease: B256,
) -> Result<Identity, String> {
    let seed = keccak256(
        [
            secret.as_slice(),
            &chain_id.to_be_bytes(),
            market.as_slice(),
            lease.as_slice(),
        ]
        .concat(),
    );
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_slice())
        .map_err(|e| format!("deriving the lease's TLS key: {e}"))?;
    let pkcs8 = pair
        .to_pkcs8()
        .map_err(|_| "encoding the lease's TLS key failed".to_owned())?;
    let signing = rcgen::KeyPair::try_from(pkcs8.as_ref())
        .map_err(|e| format!("loading the lease's TLS key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("the lease's certificate: {e}"))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("gridlease service lease {lease}"),
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
        config: Arc::new(config),
    })
}

/// A loopback port free now, for a service behind its front (the engine or the process binds it
/// next).
pub fn free_loopback_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()
        .map(|a| a.port())
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

/// Serve `listener` over TLS with `config` until `cancel`: each connection's handshake, then its
/// bytes both ways to the service on loopback port `backend`. Every connection ends with the
/// front (a lease's connections do not outlive it).
pub async fn serve(
    lease: B256,
    listener: TcpListener,
    config: Arc<ServerConfig>,
    backend: u16,
    cancel: CancellationToken,
    counts: Counts,
) {
    let acceptor = TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    info!(lease = %lease, addr = ?listener.local_addr().ok(), backend, "service TLS front open");
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("the front's semaphore is never closed"),
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
        let (acceptor, cancel, counts) = (acceptor.clone(), cancel.clone(), counts.clone());
        tokio::spawn(async move {
            let _slot = permit;
            tokio::select! {
                () = cancel.cancelled() => {}
                r = carry(tcp, peer, &acceptor, backend, &counts) => {
                    if let Err(e) = r {
                        debug!(lease = %lease, peer = %peer, error = %e, "service connection ended");
                    }
                }
            }
        });
    }
    info!(lease = %lease, "service TLS front closed");
}

/// One connection: the handshake, then bytes both ways until either side ends.
async fn carry(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    backend: u16,
    counts: &Counts,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let reached = async {
        let tls = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp))
            .await
            .map_err(|_| format!("no TLS handshake from {peer} within {HANDSHAKE:?}"))?
            .map_err(|e| format!("TLS handshake with {peer}: {e}"))?;
        let connect = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, backend));
        let service = tokio::time::timeout(BACKEND_CONNECT, connect)
            .await
            .map_err(|_| "the service took no connection within 5 s".to_owned())?
            .map_err(|e| format!("the service is not listening: {e}"))?;
        Ok::<_, String>((tls, service))
    };
    let (mut tls, mut service) = reached.await.inspect_err(|_| counts.failed.increment(1))?;
    counts.carried.increment(1);
    let _ = service.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut tls, &mut service)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
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
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let port = l.local_addr().expect("bound").port();
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            B256::ZERO,
            l,
            id.config.clone(),
            backend,
            stop.clone(),
            Counts::none(),
        ));
        (port, stop)
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
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free");
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
}
