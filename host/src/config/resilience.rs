//! What a cluster and a route say about failing backends: active health checks, outlier ejection and circuit
//! breakers (clusters), retries and a fallback (routes). Types and their parsing; `docs/configuration.md`
//! ("Upstream resilience") documents every field.

use super::reader::{as_str, as_u64_in, Issues, Obj};
use super::DirectResponse;
use serde_json::Value;
use std::time::Duration;

/// Active health checking of a cluster's endpoints: a `GET` of `path` on every endpoint each `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Path (and query) requested.
    pub path: String,
    /// `Host` header sent (default: the endpoint's address).
    pub host: Option<String>,
    /// Time between two checks of one endpoint.
    pub interval: Duration,
    /// A check not answered (headers) within this fails.
    pub timeout: Duration,
    /// Consecutive passed checks that bring an unhealthy endpoint back.
    pub healthy_threshold: u32,
    /// Consecutive failed checks that take a healthy endpoint out.
    pub unhealthy_threshold: u32,
    /// Statuses that pass, as inclusive ranges (default: 200-299).
    pub expected_statuses: Vec<(u16, u16)>,
}

impl HealthCheck {
    /// Whether `status` passes.
    pub fn expects(&self, status: u16) -> bool {
        self.expected_statuses.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// Passive outlier detection: endpoints that keep failing real requests are ejected for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses that eject (0: never on 5xx).
    pub consecutive_5xx: u32,
    /// Consecutive connect failures (refused, timed out, reset before an answer) that eject (0: never).
    pub consecutive_connect_failures: u32,
    /// The first ejection lasts this long; each further ejection of the same endpoint one more time as long.
    pub base_ejection_time: Duration,
    /// Cap on one ejection's length.
    pub max_ejection_time: Duration,
    /// At most this share (percent) of the endpoints is ejected at once (at least one endpoint always may be).
    pub max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx: 5,
            consecutive_connect_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

/// Circuit breakers of a cluster, counted across all workers. Over a limit the gateway answers 503 at once.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakers {
    /// Open upstream connections.
    pub max_connections: u32,
    /// Requests waiting for a connection because `max_connections` are open.
    pub max_pending_requests: u32,
    /// Requests in flight to the cluster.
    pub max_requests: u32,
    /// Retries in flight to the cluster (on top of the retry budget).
    pub max_retries: u32,
}

impl Default for CircuitBreakers {
    /// Envoy's defaults.
    fn default() -> Self {
        CircuitBreakers { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 }
    }
}

/// When a route tries again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retry when the connection could not be made (refused, connect timeout).
    pub on_connect_failure: bool,
    /// Retry when the connection broke or timed out before response headers came.
    pub on_reset: bool,
    /// Retry on any 5xx answer.
    pub on_5xx: bool,
    /// Retry on these answers.
    pub statuses: Vec<u16>,
    /// Tries after the first.
    pub num_retries: u32,
    /// Bound on one try's wait for response headers (default: the route's or cluster's request timeout).
    pub per_try_timeout: Option<Duration>,
    /// First backoff; each retry doubles it, up to `max_interval`, and a random part of it is waited (full
    /// jitter). Zero: retries go at once.
    pub base_interval: Duration,
    /// Cap on one backoff.
    pub max_interval: Duration,
    /// Retries in flight may be at most this share (percent) of the cluster's requests in flight ...
    pub budget_percent: u32,
    /// ... or this many, whichever is more.
    pub min_retry_concurrency: u32,
    /// Also retry methods that are not idempotent (POST, PATCH).
    pub all_methods: bool,
    /// Request bodies up to this size are kept to be sent again; a longer body streams and is not retried.
    pub max_body_bytes: usize,
}

impl Default for RetryPolicy {
    /// The documented defaults, with no condition set (`retry_on` absent means connect failures and resets;
    /// the parser sets those).
    fn default() -> Self {
        RetryPolicy {
            on_connect_failure: false,
            on_reset: false,
            on_5xx: false,
            statuses: Vec::new(),
            num_retries: 1,
            per_try_timeout: None,
            base_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
            budget_percent: 20,
            min_retry_concurrency: 3,
            all_methods: false,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl RetryPolicy {
    /// Whether an answer with `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.on_5xx && status >= 500) || self.statuses.contains(&status)
    }
}

/// What a route does when its cluster cannot take the request: no endpoint available, or a circuit open.
#[derive(Debug, Clone, PartialEq)]
pub enum Fallback {
    /// Send it to this cluster instead.
    Cluster(String),
    /// Answer with this response.
    Response(DirectResponse),
}

fn millis_in(o: &mut Obj, key: &'static str, default: Duration, min: u64, issues: &mut Issues) -> Duration {
    o.u64_in(key, min, 86_400_000, issues).map_or(default, Duration::from_millis)
}

fn count(o: &mut Obj, key: &'static str, default: u32, min: u64, max: u64, issues: &mut Issues) -> u32 {
    o.u64_in(key, min, max, issues).map_or(default, |n| n as u32)
}

/// `health_check` of a cluster.
pub(super) fn health_check(v: &Value, path: &str, issues: &mut Issues) -> Option<HealthCheck> {
    let mut o = Obj::new(v, path, issues)?;
    let ppath = o.child("path");
    let check_path = o.req_str("path", issues, " (like \"/healthz\")").map(str::to_string);
    if let Some(p) = &check_path {
        if !p.starts_with('/') || http::uri::PathAndQuery::try_from(p.as_str()).is_err() {
            issues.push(&ppath, format!("\"{p}\" is not a request path; write it like \"/healthz\""));
        }
    }
    let host = o.str("host", issues).map(str::to_string);
    let interval = millis_in(&mut o, "interval_ms", Duration::from_secs(5), 10, issues);
    let tpath = o.child("timeout_ms");
    let timeout = millis_in(&mut o, "timeout_ms", Duration::from_secs(1), 1, issues);
    if timeout > interval {
        issues.push(
            &tpath,
            format!("{} ms is longer than interval_ms; a check must end before the next", timeout.as_millis()),
        );
    }
    let healthy_threshold = count(&mut o, "healthy_threshold", 2, 1, 1000, issues);
    let unhealthy_threshold = count(&mut o, "unhealthy_threshold", 3, 1, 1000, issues);
    let expected_statuses = match o.array("expected_statuses", issues) {
        None => vec![(200, 299)],
        Some(items) => items.into_iter().filter_map(|(p, v)| status_range(v, &p, issues)).collect(),
    };
    o.finish(issues);
    Some(HealthCheck {
        path: check_path?,
        host,
        interval,
        timeout,
        healthy_threshold,
        unhealthy_threshold,
        expected_statuses,
    })
}

/// `200` or `"200-299"`.
fn status_range(v: &Value, path: &str, issues: &mut Issues) -> Option<(u16, u16)> {
    let bad = |issues: &mut Issues| {
        issues.push(path, "expected a status like 200 or a range like \"200-399\" (100 to 599)");
        None
    };
    match v {
        Value::Number(_) => as_u64_in(v, path, 100, 599, issues).map(|s| (s as u16, s as u16)),
        Value::String(s) => {
            let (lo, hi) = s.split_once('-').unwrap_or((s, s));
            match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                (Ok(lo), Ok(hi)) if (100..=599).contains(&lo) && (lo..=599).contains(&hi) => Some((lo, hi)),
                _ => bad(issues),
            }
        }
        _ => bad(issues),
    }
}

/// `outlier_detection` of a cluster.
pub(super) fn outlier_detection(v: &Value, path: &str, issues: &mut Issues) -> Option<OutlierDetection> {
    let mut o = Obj::new(v, path, issues)?;
    let d = OutlierDetection::default();
    let consecutive_5xx = count(&mut o, "consecutive_5xx", d.consecutive_5xx, 0, 1000, issues);
    let consecutive_connect_failures =
        count(&mut o, "consecutive_connect_failures", d.consecutive_connect_failures, 0, 1000, issues);
    let base_ejection_time = millis_in(&mut o, "base_ejection_time_ms", d.base_ejection_time, 1, issues);
    let mpath = o.child("max_ejection_time_ms");
    let max_ejection_time =
        millis_in(&mut o, "max_ejection_time_ms", d.max_ejection_time.max(base_ejection_time), 1, issues);
    if max_ejection_time < base_ejection_time {
        issues.push(&mpath, "shorter than base_ejection_time_ms; the cap must allow the first ejection");
    }
    let max_ejection_percent = count(&mut o, "max_ejection_percent", d.max_ejection_percent, 0, 100, issues);
    o.finish(issues);
    Some(OutlierDetection {
        consecutive_5xx,
        consecutive_connect_failures,
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent,
    })
}

/// `circuit_breakers` of a cluster (absent: the defaults).
pub(super) fn circuit_breakers(v: Option<&Value>, path: &str, issues: &mut Issues) -> CircuitBreakers {
    let d = CircuitBreakers::default();
    let Some(mut o) = v.and_then(|v| Obj::new(v, path, issues)) else { return d };
    let limits = CircuitBreakers {
        max_connections: count(&mut o, "max_connections", d.max_connections, 1, 1_000_000, issues),
        max_pending_requests: count(&mut o, "max_pending_requests", d.max_pending_requests, 0, 1_000_000, issues),
        max_requests: count(&mut o, "max_requests", d.max_requests, 1, 1_000_000, issues),
        max_retries: count(&mut o, "max_retries", d.max_retries, 0, 1_000_000, issues),
    };
    o.finish(issues);
    limits
}

/// The `retry_on` conditions Envoy users know.
const RETRY_ON: &[&str] = &["connect-failure", "reset", "5xx", "gateway-error", "retriable-status-codes"];

/// `retry_policy` of a route.
pub(super) fn retry_policy(v: &Value, path: &str, issues: &mut Issues) -> Option<RetryPolicy> {
    let mut o = Obj::new(v, path, issues)?;
    let mut policy = RetryPolicy::default();
    let rpath = o.child("retry_on");
    let mut wants_codes = false;
    match o.get("retry_on") {
        None => {
            policy.on_connect_failure = true;
            policy.on_reset = true;
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let ipath = format!("{rpath}[{i}]");
                match as_str(item, &ipath, issues) {
                    Some("connect-failure") => policy.on_connect_failure = true,
                    Some("reset") => policy.on_reset = true,
                    Some("5xx") => policy.on_5xx = true,
                    Some("gateway-error") => policy.statuses.extend([502, 503, 504]),
                    Some("retriable-status-codes") => wants_codes = true,
                    Some(other) => issues.push(
                        &ipath,
                        format!("unknown retry condition \"{other}\"; use one of {}", RETRY_ON.join(", ")),
                    ),
                    None => {}
                }
            }
        }
        Some(_) => issues.push(
            &rpath,
            format!("expected a list of conditions, like [\"connect-failure\", \"5xx\"] ({})", RETRY_ON.join(", ")),
        ),
    }
    let cpath = o.child("retriable_status_codes");
    match o.array("retriable_status_codes", issues) {
        Some(items) => {
            if !wants_codes {
                issues.push(&cpath, "listed, but retry_on does not include \"retriable-status-codes\"");
            }
            for (p, v) in items {
                if let Some(s) = as_u64_in(v, &p, 100, 599, issues) {
                    policy.statuses.push(s as u16);
                }
            }
        }
        None if wants_codes => issues
            .push(o.path(), "retry_on includes \"retriable-status-codes\": list them in \"retriable_status_codes\""),
        None => {}
    }
    policy.num_retries = count(&mut o, "num_retries", 1, 1, 10, issues);
    policy.per_try_timeout = o.u64_in("per_try_timeout_ms", 1, 86_400_000, issues).map(Duration::from_millis);
    policy.base_interval = millis_in(&mut o, "base_interval_ms", policy.base_interval, 0, issues);
    let mpath = o.child("max_interval_ms");
    policy.max_interval = millis_in(&mut o, "max_interval_ms", policy.base_interval * 10, 0, issues);
    if policy.max_interval < policy.base_interval {
        issues.push(&mpath, "shorter than base_interval_ms");
    }
    policy.budget_percent = count(&mut o, "budget_percent", policy.budget_percent, 0, 100, issues);
    policy.min_retry_concurrency =
        count(&mut o, "min_retry_concurrency", policy.min_retry_concurrency, 0, 100_000, issues);
    policy.all_methods = o.bool("retry_non_idempotent", issues).unwrap_or(false);
    policy.max_body_bytes =
        o.u64_in("max_body_bytes", 0, 64 * 1024 * 1024, issues).map_or(policy.max_body_bytes, |n| n as usize);
    o.finish(issues);
    Some(policy)
}

/// `fallback` of a route: `{"cluster": "backup"}` or `{"direct_response": {...}}`; `known` are the defined
/// clusters.
pub(super) fn fallback(
    v: &Value,
    path: &str,
    known: &[&str],
    direct: impl FnOnce(&Value, &str, &mut Issues) -> Option<DirectResponse>,
    issues: &mut Issues,
) -> Option<Fallback> {
    let mut o = Obj::new(v, path, issues)?;
    let cpath = o.child("cluster");
    let cluster = o.str("cluster", issues);
    let dpath = o.child("direct_response");
    let response = o.get("direct_response");
    let fallback = match (cluster, response) {
        (Some(c), None) => {
            if known.contains(&c) {
                Some(Fallback::Cluster(c.to_string()))
            } else {
                issues.push(&cpath, format!("unknown cluster \"{c}\"; defined clusters: {}", known.join(", ")));
                None
            }
        }
        (None, Some(r)) => direct(r, &dpath, issues).map(Fallback::Response),
        _ => {
            issues.push(path, "a fallback needs exactly one of \"cluster\" or \"direct_response\"");
            None
        }
    };
    o.finish(issues);
    fallback
}
