//! Prometheus metrics: one registry for the process, with handles resolved per worker ahead of time so
//! the request path only touches atomics (and a histogram no other worker writes to).
//!
//! Metrics that filters define (`proxy_define_metric`) are exported as one family per kind, with the name of
//! the module that defined the metric as the `filter` label and the filter's metric name as the `name` label,
//! registered the first time a filter defines a metric of that kind:
//!
//! | kind | exposition |
//! |---|---|
//! | counter | `weir_filter_counter_total{filter="<module>",name="<metric name>"}` |
//! | gauge | `weir_filter_gauge{filter="<module>",name="<metric name>"}` |
//! | histogram | `weir_filter_histogram_bucket{filter="<module>",name="<metric name>",le="…"}`, `_sum`, `_count` |
//!
//! Histogram buckets are 1, 4, 16, … 4^15 (about 1.07e9): filters record sizes, counts and latencies in any
//! unit, so the buckets span nine orders of magnitude.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use std::sync::{Mutex, OnceLock};

type Labels = Vec<(&'static str, String)>;

/// A histogram family whose histograms are built by a plain function.
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Duration buckets in seconds, 100 µs to about 30 s.
const DURATION_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Filter histogram buckets: 1, 4, 16, … 4^15.
fn filter_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 16))
}

/// A filter metric's labels: the defining module and the metric's name, as OpenMetrics label values.
fn filter_labels(module: &str, name: &str) -> Labels {
    vec![("filter", label_value(module)), ("name", label_value(name))]
}

/// A label value as OpenMetrics text. prometheus-client writes label values as they are, so `\`, `"` and a
/// newline are escaped here and other control characters (which the text format cannot carry) become U+FFFD.
fn label_value(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => value.push_str("\\\\"),
            '"' => value.push_str("\\\""),
            '\n' => value.push_str("\\n"),
            c if c.is_control() => value.push(char::REPLACEMENT_CHARACTER),
            c => value.push(c),
        }
    }
    value
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
    handed_off: Family<Labels, Counter>,
    endpoint_healthy: Family<Labels, Gauge>,
    health_checks: Family<Labels, Counter>,
    ejections: Family<Labels, Counter>,
    overflows: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    fallbacks: Family<Labels, Counter>,
    filter_counters: OnceLock<Family<Labels, Counter>>,
    filter_gauges: OnceLock<Family<Labels, Gauge>>,
    filter_histograms: OnceLock<HistogramFamily>,
    memo_answers: OnceLock<Family<Labels, Counter>>,
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
        let handed_off = Family::<Labels, Counter>::default();
        registry.register(
            "connections_handed_off",
            "Downstream connections a worker accepted and handed to a worker with fewer open, by listener and worker",
            handed_off.clone(),
        );
        let endpoint_healthy = Family::<Labels, Gauge>::default();
        let health_checks = Family::<Labels, Counter>::default();
        let ejections = Family::<Labels, Counter>::default();
        let overflows = Family::<Labels, Counter>::default();
        let retries = Family::<Labels, Counter>::default();
        let fallbacks = Family::<Labels, Counter>::default();
        registry.register(
            "upstream_endpoint_available",
            "1 when an endpoint takes requests (healthy by its checks and not ejected), by cluster and endpoint",
            endpoint_healthy.clone(),
        );
        registry.register(
            "upstream_health_checks",
            "Active health checks by cluster, endpoint and result (pass, fail)",
            health_checks.clone(),
        );
        registry.register(
            "upstream_ejections",
            "Outlier ejections by cluster, endpoint and reason (5xx, connect)",
            ejections.clone(),
        );
        registry.register(
            "upstream_overflows",
            "Requests refused or retries not made by a circuit breaker, by cluster and limit",
            overflows.clone(),
        );
        registry.register("upstream_retries", "Retries by cluster and reason", retries.clone());
        registry.register(
            "route_fallbacks",
            "Requests served by a route's fallback, by route and reason",
            fallbacks.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            duration,
            upstream_errors,
            upstream_timeouts,
            open_connections,
            connections,
            handed_off,
            endpoint_healthy,
            health_checks,
            ejections,
            overflows,
            retries,
            fallbacks,
            filter_counters: OnceLock::new(),
            filter_gauges: OnceLock::new(),
            filter_histograms: OnceLock::new(),
            memo_answers: OnceLock::new(),
        }
    }

    /// Registers a family after start (filter metrics appear when first defined).
    fn register_late<M: Metric + Clone>(&self, name: &str, help: &str, family: &M) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.register(name, help, family.clone());
    }

    /// The counter behind filter metric `name` defined by `module`
    /// (`weir_filter_counter_total{filter, name}`); every call for one pair returns a handle to the same value.
    pub fn filter_counter(&self, module: &str, name: &str) -> Counter {
        let family = self.filter_counters.get_or_init(|| {
            let family = Family::default();
            self.register_late("filter_counter", "Counters defined by filters, by module and metric name", &family);
            family
        });
        family.get_or_create(&filter_labels(module, name)).clone()
    }

    /// The gauge behind filter metric `name` defined by `module` (`weir_filter_gauge{filter, name}`).
    pub fn filter_gauge(&self, module: &str, name: &str) -> Gauge {
        let family = self.filter_gauges.get_or_init(|| {
            let family = Family::default();
            self.register_late("filter_gauge", "Gauges defined by filters, by module and metric name", &family);
            family
        });
        family.get_or_create(&filter_labels(module, name)).clone()
    }

    /// The histogram behind filter metric `name` defined by `module` (`weir_filter_histogram{filter, name}`).
    pub fn filter_histogram(&self, module: &str, name: &str) -> Histogram {
        let family = self.filter_histograms.get_or_init(|| {
            let family = HistogramFamily::new_with_constructor(filter_histogram);
            self.register_late("filter_histogram", "Histograms defined by filters, by module and metric name", &family);
            family
        });
        family.get_or_create(&filter_labels(module, name)).clone()
    }

    /// Answers the worker sent from a filter's memoized local response without entering its VM, by module and
    /// route (`weir_filter_memo_answers_total{filter, route}`).
    pub fn filter_memo_answers(&self, module: &str, route: &str) -> Counter {
        let family = self.memo_answers.get_or_init(|| {
            let family = Family::default();
            self.register_late(
                "filter_memo_answers",
                "Answers sent from a filter's memoized local response without entering its VM, by module and route",
                &family,
            );
            family
        });
        family.get_or_create(&vec![("filter", label_value(module)), ("route", label_value(route))]).clone()
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

    /// Handles for one endpoint of a cluster (shared by the workers).
    pub fn endpoint(&self, cluster: &str, endpoint: &str) -> EndpointMetrics {
        let labels = vec![("cluster", label_value(cluster)), ("endpoint", label_value(endpoint))];
        EndpointMetrics {
            healthy: self.endpoint_healthy.get_or_create(&labels).clone(),
            checks: self.health_checks.clone(),
            ejections: self.ejections.clone(),
            labels,
        }
    }

    /// Handles for a cluster's circuit breakers and retries.
    pub fn breaker(&self, cluster: &str) -> BreakerMetrics {
        BreakerMetrics {
            cluster: label_value(cluster),
            overflows: self.overflows.clone(),
            retries: self.retries.clone(),
        }
    }

    /// Counts a request served by `route`'s fallback because of `reason`.
    pub fn fallback(&self, route: &str, reason: &str) {
        self.fallbacks.get_or_create(&vec![("route", label_value(route)), ("reason", reason.to_string())]).inc();
    }

    /// Handles for one listener on one worker.
    pub fn listener(&self, listener: &str, worker: usize) -> ListenerMetrics {
        let labels = vec![("listener", listener.to_string()), ("worker", worker.to_string())];
        ListenerMetrics {
            open: self.open_connections.get_or_create(&labels).clone(),
            accepted: self.connections.get_or_create(&labels).clone(),
            handed_off: self.handed_off.get_or_create(&labels).clone(),
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

/// One endpoint's handles.
#[derive(Clone, Debug)]
pub struct EndpointMetrics {
    /// 1 when the endpoint takes requests.
    pub healthy: Gauge,
    checks: Family<Labels, Counter>,
    ejections: Family<Labels, Counter>,
    labels: Labels,
}

impl EndpointMetrics {
    fn with(&self, key: &'static str, value: &str) -> Labels {
        let mut labels = self.labels.clone();
        labels.push((key, value.to_string()));
        labels
    }

    /// The counter of passed or failed checks.
    pub fn checks(&self, passed: bool) -> Counter {
        self.checks.get_or_create(&self.with("result", if passed { "pass" } else { "fail" })).clone()
    }

    /// The counter of ejections for `reason`.
    pub fn ejections(&self, reason: &str) -> Counter {
        self.ejections.get_or_create(&self.with("reason", reason)).clone()
    }
}

/// A cluster's circuit-breaker and retry handles.
#[derive(Clone, Debug)]
pub struct BreakerMetrics {
    cluster: String,
    overflows: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
}

impl BreakerMetrics {
    /// Refusals by `limit`.
    pub fn overflow(&self, limit: &str) -> Counter {
        self.overflows.get_or_create(&vec![("cluster", self.cluster.clone()), ("limit", limit.to_string())]).clone()
    }

    /// Retries for `reason`.
    pub fn retry(&self, reason: &str) -> Counter {
        self.retries.get_or_create(&vec![("cluster", self.cluster.clone()), ("reason", reason.to_string())]).clone()
    }
}

/// Per-listener, per-worker handles.
#[derive(Clone, Debug)]
pub struct ListenerMetrics {
    /// Currently open connections.
    pub open: Gauge,
    /// Connections accepted since start.
    pub accepted: Counter,
    /// Connections this worker accepted and handed to a worker with fewer open (`server::balance`).
    pub handed_off: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_metrics_render_under_one_family_per_kind() {
        let m = Metrics::new();
        assert!(!m.render().contains("weir_filter_"), "families appear only once a filter defines a metric");
        m.filter_counter("auth", "reqs").inc_by(3);
        assert_eq!(m.filter_counter("auth", "reqs").get(), 3, "one module and name, one value");
        assert_eq!(m.filter_counter("quota", "reqs").get(), 0, "another module's series");
        m.filter_gauge("auth", "in_flight").set(-2);
        m.filter_histogram("auth", "sizes").observe(5.0);
        m.filter_counter("odd\"module", "odd \"name\"\\\nend\r").inc();
        let text = m.render();
        for line in [
            "weir_filter_counter_total{filter=\"auth\",name=\"reqs\"} 3",
            "weir_filter_counter_total{filter=\"quota\",name=\"reqs\"} 0",
            "weir_filter_gauge{filter=\"auth\",name=\"in_flight\"} -2",
            "weir_filter_histogram_bucket{le=\"16.0\",filter=\"auth\",name=\"sizes\"} 1",
            "weir_filter_histogram_count{filter=\"auth\",name=\"sizes\"} 1",
            "weir_filter_counter_total{filter=\"odd\\\"module\",name=\"odd \\\"name\\\"\\\\\\nend\u{fffd}\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
