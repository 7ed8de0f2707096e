//! TLS towards upstreams: rustls client configuration from the system roots or a CA bundle.

use crate::config::UpstreamTls;
use rustls::RootCertStore;
use rustls_pki_types::{pem::PemObject, CertificateDer};
use std::sync::{Arc, OnceLock};

/// Why an upstream TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    /// The CA bundle could not be read or holds no certificate.
    #[error("cluster {cluster}: CA bundle {file}: {detail}")]
    CaBundle {
        /// Cluster name.
        cluster: String,
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// No system root certificate could be loaded.
    #[error("cluster {cluster}: no system root certificates found ({detail}); set tls.ca_file")]
    NoSystemRoots {
        /// Cluster name.
        cluster: String,
        /// What the loader said.
        detail: String,
    },
}

/// The system's root certificates, loaded once per process (upstream TLS and the OCI registry client).
pub(crate) fn system_roots() -> &'static Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(loaded.certs);
        if added == 0 {
            Err(loaded.errors.first().map(|e| e.to_string()).unwrap_or_else(|| "none installed".into()))
        } else {
            Ok(Arc::new(store))
        }
    })
}

/// The client configuration for a cluster; `None` for plain-text clusters.
/// ALPN is set by the connector from the cluster's protocol.
pub fn client_config(
    cluster: &str,
    tls: Option<&UpstreamTls>,
) -> Result<Option<rustls::ClientConfig>, UpstreamTlsError> {
    let Some(tls) = tls else { return Ok(None) };
    let roots = match &tls.ca_file {
        Some(file) => {
            let err = |detail: String| UpstreamTlsError::CaBundle {
                cluster: cluster.to_string(),
                file: file.display().to_string(),
                detail,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("not a PEM certificate bundle: {e}")))?;
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(err("holds no usable certificate".into()));
            }
            Arc::new(store)
        }
        None => system_roots()
            .clone()
            .map_err(|detail| UpstreamTlsError::NoSystemRoots { cluster: cluster.to_string(), detail })?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamTlsError::CaBundle {
            cluster: cluster.into(),
            file: String::new(),
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(config))
}
