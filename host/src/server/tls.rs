//! TLS termination: a rustls server configuration per listener, with the certificate chosen by SNI
//! and ALPN offering HTTP/2 and HTTP/1.1.

use crate::config::ListenerTls;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A certificate or key that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("listener {listener}: {file}: {detail}")]
pub struct ListenerTlsError {
    /// Listener name.
    pub listener: String,
    /// The file at fault.
    pub file: String,
    /// What is wrong.
    pub detail: String,
}

/// Picks the certificate for a TLS handshake from its SNI name.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// (".example.com", key) for "*.example.com".
    wildcard: Vec<(String, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name().map(str::to_ascii_lowercase) else {
            return Some(self.default.clone());
        };
        if let Some(k) = self.exact.get(&name) {
            return Some(k.clone());
        }
        self.wildcard
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map(|(_, k)| k.clone())
            .or_else(|| Some(self.default.clone()))
    }
}

/// Builds the server configuration for a listener.
pub fn server_config(listener: &str, tls: &ListenerTls) -> Result<Arc<rustls::ServerConfig>, ListenerTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let keys = tls
        .certificates
        .iter()
        .map(|c| certified_key(listener, &c.cert_file, &c.key_file, &provider).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut exact = HashMap::new();
    let mut wildcard = Vec::new();
    for (cert, key) in tls.certificates.iter().zip(&keys) {
        for name in &cert.server_names {
            match name.strip_prefix('*') {
                Some(suffix) => wildcard.push((suffix.to_string(), key.clone())),
                None => {
                    exact.entry(name.clone()).or_insert_with(|| key.clone());
                }
            }
        }
    }
    // The default: the first certificate without names, else the first certificate.
    let default = tls
        .certificates
        .iter()
        .zip(&keys)
        .find(|(c, _)| c.server_names.is_empty())
        .map_or_else(|| keys[0].clone(), |(_, k)| k.clone());
    let resolver = SniResolver { exact, wildcard, default };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ListenerTlsError { listener: listener.into(), file: String::new(), detail: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certified_key(
    listener: &str,
    cert_file: &Path,
    key_file: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, ListenerTlsError> {
    let err = |file: &Path, detail: String| ListenerTlsError {
        listener: listener.to_string(),
        file: file.display().to_string(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| err(cert_file, format!("cannot read: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(err(cert_file, "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| err(key_file, format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| err(key_file, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| err(key_file, format!("the key does not belong to certificate {}: {e}", cert_file.display())))?;
    Ok(certified)
}
