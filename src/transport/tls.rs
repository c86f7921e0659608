//! TLS termination on the proxy listener (`[server] tls = { cert, key }`) with rustls: HTTP/1.1 and h2 offered via
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

/// The crypto every TLS config of hookwall uses (listener and outbound).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why certificate or key files cannot be used. Never holds key material, only where it
/// came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file is not a PEM chain.
    #[error("{}: not a PEM certificate chain ({detail})", path.display())]
    NotCertificates {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        detail: String,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate found", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no usable private key.
    #[error("{}: no usable PEM private key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate.
    #[error("{} does not fit {}: {detail}", key.display(), cert.display())]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// rustls' reason.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
}

/// Reads a file of PEM certificates (a chain, or a bundle of trusted roots).
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NotCertificates {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoKey {
        path: path.to_owned(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads and checks the files: the key must be usable and match the certificate.
pub(crate) fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = read_certificates(&files.cert)?;
    let key = read_key(&files.key)?;
    let certified =
        CertifiedKey::from_der(certs, key, &provider()).map_err(|e| TlsError::Mismatch {
            key: files.key.clone(),
            cert: files.cert.clone(),
            detail: e.to_string(),
        })?;
    Ok(Arc::new(certified))
}

/// Serves whatever certificate was loaded last.
#[derive(Debug)]
struct CertResolver(ArcSwap<CertifiedKey>);

impl CertResolver {
    /// Starts with `key`.
    fn new(key: Arc<CertifiedKey>) -> Self {
        CertResolver(ArcSwap::new(key))
    }

    /// New connections get `key` from now on.
    fn replace(&self, key: Arc<CertifiedKey>) {
        self.0.store(key);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// A rustls acceptor offering h2 and HTTP/1.1.
fn acceptor(resolver: Arc<CertResolver>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor and the resolver reload swaps certificates in.
#[derive(Clone)]
pub(crate) struct Termination {
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
    pub(crate) fn new(key: Arc<CertifiedKey>) -> Result<Self, TlsError> {
        let resolver = Arc::new(CertResolver::new(key));
        Ok(Termination {
            acceptor: acceptor(resolver.clone())?,
            resolver,
        })
    }

    /// New connections get `key` from now on.
    pub(crate) fn replace(&self, key: Arc<CertifiedKey>) {
        self.resolver.replace(key);
    }

    /// The acceptor for new connections.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }
}
