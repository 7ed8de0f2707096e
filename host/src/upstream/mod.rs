//! Upstream clusters as one worker sees them: endpoints, a balancer, and a keep-alive connection pool.
//!
//! Every worker builds its own [`ClusterSet`], so connections, pools and balancer state never cross
//! threads: a request is served start to end on the worker that accepted it.

pub mod balance;
pub mod breaker;
mod checker;
pub mod h1;
pub mod health;
pub mod pool;
pub mod received;
pub(crate) mod tls;

pub use h1::response::ResponseFields;
pub use tls::UpstreamTlsError;

use crate::config;
use crate::telemetry::metrics::ClusterMetrics;
use balance::Balancer;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Error type of the bodies that cross the proxy (sent upstream, received, filtered).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Body type sent upstream.
pub type UpstreamBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

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

impl pool::Connector {
    /// How `cfg`'s endpoints are connected to (TLS with ALPN per the cluster's protocol), counting nothing.
    pub fn for_cluster(cfg: &config::Cluster, tls: &TlsConfigs) -> pool::Connector {
        let tls_connector = tls.0.get(&cfg.name).map(|base| {
            let mut config = (**base).clone();
            config.alpn_protocols = if cfg.http2 { vec![b"h2".to_vec()] } else { vec![b"http/1.1".to_vec()] };
            let name = cfg
                .tls
                .as_ref()
                .and_then(|t| t.server_name.as_deref())
                .and_then(|n| rustls_pki_types::ServerName::try_from(n.to_string()).ok());
            (tokio_rustls::TlsConnector::from(Arc::new(config)), name)
        });
        pool::Connector {
            tls: tls_connector,
            http2: cfg.http2,
            connect_timeout: cfg.connect_timeout,
            idle_timeout: cfg.idle_timeout,
            max_idle: cfg.max_idle_per_endpoint,
            state: None,
        }
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
    /// Time allowed for response headers.
    pub request_timeout: Duration,
    /// Time allowed to connect (for error messages).
    pub connect_timeout: Duration,
    /// Whether requests go out as HTTP/2 (absolute URIs) or HTTP/1.1 (origin-form).
    pub http2: bool,
    /// Metric handles.
    pub metrics: ClusterMetrics,
    /// Health, ejections and circuit breakers, shared by every worker.
    pub state: Arc<health::ClusterState>,
    connector: Arc<pool::Connector>,
    pools: Vec<Arc<pool::EndpointPool>>,
    /// What it was built from: a new snapshot with the same definition keeps this cluster and its pools.
    source: config::Cluster,
}

impl Cluster {
    /// Builds a cluster's per-worker runtime over its process-wide `state`.
    pub fn new(
        cfg: &config::Cluster,
        tls: &TlsConfigs,
        metrics: ClusterMetrics,
        state: Arc<health::ClusterState>,
    ) -> Cluster {
        let mut connector = pool::Connector::for_cluster(cfg, tls);
        connector.state = Some(state.clone());
        let scheme = if connector.tls.is_some() { Scheme::HTTPS } else { Scheme::HTTP };
        let endpoints: Vec<EndpointTarget> = cfg
            .endpoints
            .iter()
            .map(|e| EndpointTarget {
                address: e.address.as_str().into(),
                authority: e.address.parse().unwrap_or_else(|_| Authority::from_static("invalid.endpoint:1")),
            })
            .collect();
        let pools: Vec<Arc<pool::EndpointPool>> =
            endpoints.iter().map(|e| pool::EndpointPool::new(e.address.clone())).collect();
        for p in &pools {
            state.register_pool(p);
        }
        Cluster {
            name: cfg.name.as_str().into(),
            scheme,
            pools,
            endpoints,
            balancer: Balancer::new(&cfg.lb_policy, &cfg.endpoints),
            request_timeout: cfg.request_timeout,
            connect_timeout: cfg.connect_timeout,
            http2: cfg.http2,
            metrics,
            state,
            connector: Arc::new(connector),
            source: cfg.clone(),
        }
    }

    /// Whether this cluster was built from exactly `cfg`.
    pub fn built_from(&self, cfg: &config::Cluster) -> bool {
        self.source == *cfg
    }

    /// Sends a request to endpoint `index` on a pooled connection. An HTTP/1.1 connection goes back to the
    /// pool when the response body is read to its end. `kept`: which fields of an HTTP/1.1 response head its map
    /// keeps (HTTP/2 heads carry no connection-specific fields).
    /// The pool's own future, not wrapped in another: it is moved once less per request.
    pub fn send(
        &self,
        index: usize,
        req: http::Request<UpstreamBody>,
        kept: ResponseFields,
    ) -> impl std::future::Future<Output = Result<http::Response<received::Received>, pool::SendError>> + '_ {
        pool::send(&self.pools[index], &self.connector, req, kept)
    }
}
