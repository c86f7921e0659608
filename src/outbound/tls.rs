//! TLS client settings for outbound connections: which roots to trust, which certificate
//! to present.

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;

use crate::transport::tls::{provider, read_certificates, read_key, TlsError};

/// The system's trusted roots, read once per process (a restart picks up new ones).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "a system root certificate could not be read");
        }
        if found.certs.is_empty() {
            tracing::warn!(
                "no system root certificates found: https upstreams need upstream_tls.ca_file"
            );
        }
        found.certs
    })
}

/// The files of a route's `upstream_tls` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsClientFiles {
    /// Extra trusted roots (PEM), added to the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// The client certificate chain (PEM) and its key, for mTLS.
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// A client config trusting the system roots and `files.ca_file`, presenting
/// `files.identity` when set, offering HTTP/1.1.
pub(crate) fn client_config(files: &TlsClientFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    // A root the system store holds but rustls cannot parse is skipped, not fatal.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(ca) = &files.ca_file {
        for cert in read_certificates(ca)? {
            roots.add(cert).map_err(TlsError::Config)?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match &files.identity {
        Some((cert, key)) => {
            let chain = read_certificates(cert)?;
            let key_der = read_key(key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TlsError::Mismatch {
                    key: key.clone(),
                    cert: cert.clone(),
                    detail: e.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
