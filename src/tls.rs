//! TLS termination (`[server] tls = { cert, key }`) with rustls: HTTP/1.1 and h2 offered via
//! ALPN. The certificate sits behind a resolver that reload swaps, so a renewed certificate
//! is served to new connections without dropping the ones already open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the files: the key must be usable and match the certificate.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{}: not a PEM certificate chain ({e})",
                files.cert.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", files.cert.display()));
    }
    // Never print key material, only where it came from.
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| format!("{}: no usable PEM private key", files.key.display()))?;
    let certified = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        format!(
            "{} does not fit {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// Serves whatever certificate was loaded last.
#[derive(Debug)]
pub struct CertResolver(ArcSwap<CertifiedKey>);

impl CertResolver {
    /// Starts with `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        CertResolver(ArcSwap::new(key))
    }

    /// New connections get `key` from now on.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        self.0.store(key);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// A rustls acceptor offering h2 and HTTP/1.1.
pub fn acceptor(resolver: Arc<CertResolver>) -> Result<tokio_rustls::TlsAcceptor, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor and the resolver reload swaps certificates in.
#[derive(Clone)]
pub struct Termination {
    resolver: Arc<CertResolver>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Termination").finish_non_exhaustive()
    }
}

impl Termination {
    /// Terminates TLS with `key`, offering h2 and HTTP/1.1.
    pub fn new(key: Arc<CertifiedKey>) -> Result<Self, String> {
        let resolver = Arc::new(CertResolver::new(key));
        Ok(Termination {
            acceptor: acceptor(resolver.clone())?,
            resolver,
        })
    }

    /// New connections get `key` from now on.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        self.resolver.replace(key);
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }
}
