//! TLS on the proxy's own listener: the certificate and key read from PEM files, offered
//! with ALPN `h2` and `http/1.1`, and swapped for new ones when the files change without
//! dropping a connection.

use std::sync::Arc;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::ListenerTls;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no certificate.
    #[error("{0}: {1}")]
    Cert(String, String),
    /// The key file is unreadable, holds no key, or a key rustls cannot sign with.
    #[error("{0}: {1}")]
    Key(String, String),
    /// The key is not the certificate's.
    #[error("the key in {0} is not the key of the certificate in {1}")]
    Mismatch(String, String),
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// The certificate chain and key the files of `files` hold, checked to belong together.
pub fn certified_key(files: &ListenerTls) -> Result<CertifiedKey, TlsError> {
    let cert_name = files.cert_file.display().to_string();
    let key_name = files.key_file.display().to_string();
    let cert_pem = std::fs::read(&files.cert_file)
        .map_err(|e| TlsError::Cert(cert_name.clone(), format!("cannot read it: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Cert(cert_name.clone(), format!("not PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Cert(
            cert_name,
            "holds no PEM certificate".to_owned(),
        ));
    }
    let key_pem = std::fs::read(&files.key_file)
        .map_err(|e| TlsError::Key(key_name.clone(), format!("cannot read it: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::Key(key_name.clone(), format!("holds no PEM private key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| TlsError::Key(key_name.clone(), e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| TlsError::Mismatch(key_name, cert_name))?;
    Ok(certified)
}

/// The certificate the listener presents, replaced in place on a reload.
#[derive(Debug)]
pub struct ListenerCert {
    files: ListenerTls,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ListenerCert {
    /// The certificate `files` hold now.
    pub fn load(files: &ListenerTls) -> Result<Self, TlsError> {
        Ok(ListenerCert {
            files: files.clone(),
            current: RwLock::new(Arc::new(certified_key(files)?)),
        })
    }

    /// The files it is read from.
    pub fn files(&self) -> &ListenerTls {
        &self.files
    }

    /// Reads the files again; on an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = certified_key(&self.files)?;
        *self.current.write() = Arc::new(fresh);
        Ok(())
    }

    /// A rustls server configuration presenting this certificate, with ALPN `h2` then
    /// `http/1.1`.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Settings(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Hands every handshake the certificate in use at that moment.
#[derive(Debug)]
struct Resolver(Arc<ListenerCert>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current.read().clone())
    }
}
