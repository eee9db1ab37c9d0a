//! The client's end of a service lease served over TLS by its provider's node (`[service]
//! tls = true`, ACC-03). The node's key is bound on chain to the lease
//! (`Results.bindCertificate`): the SHA-256 of its DER SubjectPublicKeyInfo, the same value
//! `curl --pinnedpubkey sha256//<base64>` takes. A connection here accepts exactly that key and
//! no other: no certificate authority, host name or validity period enters into it (the chain is
//! the authority, and the lease's state says whether the binding still stands), and the
//! handshake's signature is checked against the key, so only whoever holds it can answer.
//!
//! The host's address is held to the [`Fetcher`]'s rules, like every other connection a tenant
//! makes to what a provider names (no internal address unless the allow-list names it).

use std::sync::Arc;

use alloy::primitives::B256;
use base64::Engine;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, OtherError,
    SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::{FetchError, Fetcher, client::Connect};

/// SHA-256 of a DER SubjectPublicKeyInfo (outer SEQUENCE included): what a lease's binding holds.
pub fn spki_hash(spki_der: &[u8]) -> B256 {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    B256::from_slice(d.as_ref())
}

/// The `curl --pinnedpubkey` form of a bound key: `sha256//<base64>`.
pub fn curl_pin(key: B256) -> String {
    format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The rustls provider both ends use (aws-lc-rs, which alloy's rustls already builds), named
/// rather than taken from a process-wide default.
pub fn tls_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Why a service could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The host's address is not one to connect to.
    #[error(transparent)]
    Address(#[from] FetchError),
    /// No TCP connection.
    #[error("{0}")]
    Connection(String),
    /// The TLS handshake failed: the key served is not the one bound on chain, or the server
    /// does not speak TLS on this port.
    #[error("{0}")]
    Tls(String),
}

/// A served key that is not the bound one.
#[derive(Debug, thiserror::Error)]
#[error(
    "the service's key {served} is not the one bound on chain to the lease ({bound}): refusing to talk to it"
)]
pub struct KeyMismatch {
    /// SHA-256 of the SubjectPublicKeyInfo the server presented.
    pub served: B256,
    /// The lease's binding.
    pub bound: B256,
}

/// Accepts the server's certificate when its key is the bound one, and checks the handshake's
/// signature against that key.
#[derive(Debug)]
struct Pinned {
    key: B256,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadEncoding))?;
        let served = spki_hash(cert.subject_public_key_info().as_ref());
        if served != self.key {
            return Err(TlsError::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(KeyMismatch {
                    served,
                    bound: self.key,
                })),
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS client configuration that talks only to a server holding the key whose
/// SubjectPublicKeyInfo hashes to `key`.
pub fn pinned_config(key: B256) -> Arc<ClientConfig> {
    let provider = tls_provider();
    let algorithms = provider.signature_verification_algorithms;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { key, algorithms }))
        .with_no_client_auth();
    Arc::new(config)
}

impl Fetcher {
    /// A TLS connection to the service at `host`:`port` whose key is `key` (a lease's binding).
    pub async fn service(
        &self,
        host: &str,
        port: u16,
        key: B256,
    ) -> Result<TlsStream<TcpStream>, ServiceError> {
        let tcp = self.connect_tcp(host, port).await.map_err(|e| match e {
            Connect::Address(e) => ServiceError::Address(e),
            Connect::Failed(e) => ServiceError::Connection(e),
        })?;
        let _ = tcp.set_nodelay(true);
        // The name is sent (SNI) but checks nothing: the key does.
        let name = ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("gridlease-service").expect("a valid name"));
        let connect = TlsConnector::from(pinned_config(key)).connect(name, tcp);
        match tokio::time::timeout(self.limits.connect, connect).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(ServiceError::Tls(tls_failure(&e, host, port))),
            Err(_) => Err(ServiceError::Tls(format!(
                "no TLS handshake from {host}:{port} within {:?}",
                self.limits.connect
            ))),
        }
    }
}

/// What a failed handshake means for the user: the key mismatch itself when that is what it was.
fn tls_failure(e: &std::io::Error, host: &str, port: u16) -> String {
    let mismatch = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsError>())
        .and_then(|t| match t {
            TlsError::InvalidCertificate(CertificateError::Other(o)) => {
                o.0.downcast_ref::<KeyMismatch>().map(ToString::to_string)
            }
            _ => None,
        });
    match mismatch {
        Some(m) => format!("{host}:{port}: {m}"),
        None => format!(
            "TLS with {host}:{port} failed: {e} (is the lease's service served over TLS there?)"
        ),
    }
}
