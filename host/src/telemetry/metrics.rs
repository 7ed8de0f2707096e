//! Prometheus metrics: one registry for the process, with handles resolved per worker ahead of time so
//! the request path only touches atomics (and a histogram no other worker writes to).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;

/// Duration buckets in seconds, 100 µs to about 30 s.
const DURATION_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The process's metric families.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    upstream_errors: Family<Labels, Counter>,
    upstream_timeouts: Family<Labels, Counter>,
    open_connections: Family<Labels, Gauge>,
    connections: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the gateway's metric families.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("weir");
        let requests = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        let upstream_errors = Family::<Labels, Counter>::default();
        let upstream_timeouts = Family::<Labels, Counter>::default();
        let open_connections = Family::<Labels, Gauge>::default();
        let connections = Family::<Labels, Counter>::default();
        registry.register("requests", "Requests by route, status class and worker", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request received to response body end, by route and worker",
            duration.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures (connect, reset, protocol) by cluster, kind and worker",
            upstream_errors.clone(),
        );
        registry.register("upstream_timeouts", "Upstream timeouts by cluster and worker", upstream_timeouts.clone());
        registry.register(
            "open_connections",
            "Open downstream connections by listener and worker",
            open_connections.clone(),
        );
        registry.register("connections", "Accepted downstream connections by listener and worker", connections.clone());
        Metrics {
            registry: Mutex::new(registry),
            requests,
            duration,
            upstream_errors,
            upstream_timeouts,
            open_connections,
            connections,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    /// Handles for one route on one worker.
    pub fn route(&self, route: &str, worker: usize) -> RouteMetrics {
        let labels = |class: &str| {
            vec![("route", route.to_string()), ("status_class", class.to_string()), ("worker", worker.to_string())]
        };
        RouteMetrics {
            by_class: ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|c| self.requests.get_or_create(&labels(c)).clone()),
            duration: self
                .duration
                .get_or_create(&vec![("route", route.to_string()), ("worker", worker.to_string())])
                .clone(),
        }
    }

    /// Handles for one cluster on one worker.
    pub fn cluster(&self, cluster: &str, worker: usize) -> ClusterMetrics {
        let errors = |kind: &str| {
            self.upstream_errors
                .get_or_create(&vec![
                    ("cluster", cluster.to_string()),
                    ("kind", kind.to_string()),
                    ("worker", worker.to_string()),
                ])
                .clone()
        };
        ClusterMetrics {
            connect_errors: errors("connect"),
            other_errors: errors("protocol"),
            timeouts: self
                .upstream_timeouts
                .get_or_create(&vec![("cluster", cluster.to_string()), ("worker", worker.to_string())])
                .clone(),
        }
    }

    /// Handles for one listener on one worker.
    pub fn listener(&self, listener: &str, worker: usize) -> ListenerMetrics {
        let labels = vec![("listener", listener.to_string()), ("worker", worker.to_string())];
        ListenerMetrics {
            open: self.open_connections.get_or_create(&labels).clone(),
            accepted: self.connections.get_or_create(&labels).clone(),
        }
    }
}

/// Per-route, per-worker handles.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    by_class: [Counter; 5],
    duration: Histogram,
}

impl RouteMetrics {
    /// Counts a finished request.
    pub fn observe(&self, status: u16, seconds: f64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].inc();
        self.duration.observe(seconds);
    }
}

/// Per-cluster, per-worker handles.
#[derive(Clone, Debug)]
pub struct ClusterMetrics {
    /// Connection failures.
    pub connect_errors: Counter,
    /// Resets and protocol errors after connecting.
    pub other_errors: Counter,
    /// Connect and response timeouts.
    pub timeouts: Counter,
}

/// Per-listener, per-worker handles.
#[derive(Clone, Debug)]
pub struct ListenerMetrics {
    /// Currently open connections.
    pub open: Gauge,
    /// Connections accepted since start.
    pub accepted: Counter,
}
