//! Certificates made at test time: a CA and leaf certificates it signs, written as PEM files.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, DER.
    pub der: CertificateDer<'static>,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A leaf certificate and its key, as PEM files.
pub struct Leaf {
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

impl Ca {
    /// A new CA.
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Weir Test CA");
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("ca cert");
        let der = cert.der().clone();
        let pem = cert.pem();
        Ca { issuer: Issuer::new(params, key), der, pem }
    }

    /// Writes the CA certificate to `dir/name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).expect("write ca");
        path
    }

    /// Issues a certificate for `names` and writes `dir/<stem>.crt` and `dir/<stem>.key`.
    pub fn leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> Leaf {
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        let leaf = Leaf { cert: dir.join(format!("{stem}.crt")), key: dir.join(format!("{stem}.key")) };
        std::fs::write(&leaf.cert, cert.pem()).expect("write cert");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write key");
        leaf
    }
}

impl Default for Ca {
    fn default() -> Self {
        Self::new()
    }
}

impl Leaf {
    /// A rustls server configuration serving this certificate (for TLS mock upstreams).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&self.cert).expect("read").collect::<Result<_, _>>().expect("pem");
        let key = PrivateKeyDer::from_pem_file(&self.key).expect("key");
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
