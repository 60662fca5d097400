//! TLS settings and the rustls configurations built from them.
//!
//! Why here, next to the keys: the same PEM files are read three times (by
//! validation, so a missing or mismatched file is a config error at startup
//! with exit 2 instead of a node that fails every request; by the node
//! client; and by the listener, again on every SIGHUP), and each reading
//! must mean the same thing.
//!
//! The crypto provider is always `ring`, passed explicitly rather than
//! installed process-wide, so no other crate's choice can change it.
//!
//! - Node side ([`NodeTls`], `addresses[].tls`): the roots are `ca_file`
//!   when set (it *replaces* the built-in Mozilla roots, like `curl
//!   --cacert`), else the `webpki-roots` bundle, which needs no system
//!   store and so behaves the same on every machine. `cert_file`/`key_file`
//!   give a client certificate (mTLS). `insecure_skip_verify` accepts any
//!   server certificate (signatures are still checked, so the handshake is
//!   real); the node client logs a warning for it at start.
//! - Listener side ([`ListenerTls`], top-level `tls`): one certificate chain
//!   and key, loaded into a [`CertifiedKey`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::Serialize;

/// `addresses[].tls`: how the gateway verifies (and authenticates to) one
/// https node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeTls {
    /// PEM CA certificates trusted for this node instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (mTLS); set together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. For tests and emergencies only.
    pub insecure_skip_verify: bool,
}

/// Top-level `tls`: the listener serves HTTPS with this certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key of the leaf.
    pub key_file: PathBuf,
}

/// A TLS file that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every TLS configuration uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(path: &Path, msg: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(path, e))
}

/// A certificate chain and its key, checked to belong together.
pub fn certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let certs = load_certs(cert_file)?;
    let key = load_key(key_file)?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        file_err(
            key_file,
            format!("does not fit {}: {e}", cert_file.display()),
        )
    })
}

impl ListenerTls {
    /// Reads the certificate and key (at startup and on every SIGHUP).
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        certified_key(&self.cert_file, &self.key_file)
    }
}

impl NodeTls {
    /// The rustls client configuration for a node with these settings.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider())))
        } else {
            let mut roots = RootCertStore::empty();
            match &self.ca_file {
                Some(ca) => {
                    for cert in load_certs(ca)? {
                        roots.add(cert).map_err(|e| file_err(ca, e))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        };
        // No ALPN here: hyper-rustls sets it (`http/1.1`) and refuses a preset.
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
                .map_err(|e| file_err(key, format!("does not fit {}: {e}", cert.display())))?,
            _ => builder.with_no_client_auth(),
        };
        Ok(config)
    }

    /// Whether this is the default (built-in roots, no client certificate).
    pub fn is_default(&self) -> bool {
        *self == NodeTls::default()
    }
}

/// `insecure_skip_verify`: every certificate is accepted, but handshake
/// signatures are still verified with the provider's algorithms.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
