//! Upstream clusters as one worker sees them: endpoints, a balancer, and a keep-alive connection pool.
//!
//! Every worker builds its own [`ClusterSet`], so connections, pools and balancer state never cross
//! threads: a request is served start to end on the worker that accepted it.

pub mod balance;
mod tls;

pub use tls::UpstreamTlsError;

use crate::config;
use crate::telemetry::metrics::ClusterMetrics;
use balance::Balancer;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Body type sent upstream.
pub type UpstreamBody = http_body_util::combinators::UnsyncBoxBody<Bytes, hyper::Error>;

/// The pooled HTTP client of one cluster on one worker.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// TLS client configurations, built once per cluster for all workers (loading roots is not free).
#[derive(Default, Clone)]
pub struct TlsConfigs(HashMap<String, Arc<rustls::ClientConfig>>);

impl TlsConfigs {
    /// Builds the TLS configuration of every TLS cluster; the first error stops (it names the cluster).
    pub fn build(clusters: &[config::Cluster]) -> Result<TlsConfigs, UpstreamTlsError> {
        let mut map = HashMap::new();
        for c in clusters {
            if let Some(cfg) = tls::client_config(&c.name, c.tls.as_ref())? {
                map.insert(c.name.clone(), Arc::new(cfg));
            }
        }
        Ok(TlsConfigs(map))
    }
}

/// One endpoint, ready to address.
#[derive(Debug)]
pub struct EndpointTarget {
    /// `host:port` as configured.
    pub address: Arc<str>,
    /// The same, as a URI authority.
    pub authority: Authority,
}

/// A cluster on one worker.
pub struct Cluster {
    /// Name.
    pub name: Arc<str>,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Endpoints in configured order.
    pub endpoints: Vec<EndpointTarget>,
    /// Chooses endpoints.
    pub balancer: Balancer,
    /// Connection pool and HTTP client.
    pub client: UpstreamClient,
    /// Time allowed for response headers.
    pub request_timeout: Duration,
    /// Time allowed to connect (for error messages).
    pub connect_timeout: Duration,
    /// Metric handles.
    pub metrics: ClusterMetrics,
}

impl Cluster {
    /// Builds a cluster's per-worker runtime.
    pub fn new(cfg: &config::Cluster, tls: &TlsConfigs, metrics: ClusterMetrics) -> Cluster {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let tls_config = tls.0.get(&cfg.name).cloned();
        let connector = match &tls_config {
            Some(tc) => {
                let b = HttpsConnectorBuilder::new().with_tls_config((**tc).clone()).https_only();
                let fixed = cfg
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_name.as_deref())
                    .and_then(|n| rustls_pki_types::ServerName::try_from(n.to_string()).ok());
                let b = match fixed {
                    Some(name) => b.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name)),
                    None => b,
                };
                if cfg.http2 {
                    b.enable_http2().wrap_connector(http)
                } else {
                    b.enable_http1().wrap_connector(http)
                }
            }
            None => HttpsConnectorBuilder::new()
                .with_tls_config(plain_placeholder())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http),
        };
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(cfg.idle_timeout)
            .pool_max_idle_per_host(cfg.max_idle_per_endpoint)
            .set_host(false);
        if cfg.http2 && tls_config.is_none() {
            builder.http2_only(true);
        }
        let client = builder.build(connector);
        Cluster {
            name: cfg.name.as_str().into(),
            scheme: if tls_config.is_some() { Scheme::HTTPS } else { Scheme::HTTP },
            endpoints: cfg
                .endpoints
                .iter()
                .map(|e| EndpointTarget {
                    address: e.address.as_str().into(),
                    authority: e.address.parse().unwrap_or_else(|_| Authority::from_static("invalid.endpoint:1")),
                })
                .collect(),
            balancer: Balancer::new(&cfg.lb_policy, &cfg.endpoints),
            client,
            request_timeout: cfg.request_timeout,
            connect_timeout: cfg.connect_timeout,
            metrics,
        }
    }
}

/// A plain-text cluster's connector never starts TLS; it still needs a configuration to be built.
fn plain_placeholder() -> rustls::ClientConfig {
    static CONFIG: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default TLS versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        .clone()
}
