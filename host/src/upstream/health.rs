//! Whether each endpoint of a cluster may take requests, shared by every worker: the verdict of the active
//! health checks ([`super::checker`]) and passive outlier ejection (consecutive 5xx answers or connect
//! failures eject an endpoint for a time that grows with each ejection, capped, with at most a configured share
//! of the endpoints out at once).
//!
//! One [`ClusterState`] exists per cluster definition for the process; a new configuration snapshot that keeps a
//! cluster's definition keeps its state (and its checker), so health survives a route change.

use super::breaker::Breakers;
use crate::config;
use crate::telemetry::metrics::{EndpointMetrics, Metrics};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How one try with an endpoint went, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer below 500.
    Answered,
    /// A 5xx answer.
    ServerError,
    /// No connection, or the connection broke before an answer.
    ConnectFailure,
}

/// One endpoint's shared state.
#[derive(Debug)]
pub struct EndpointState {
    /// `host:port`.
    pub address: Arc<str>,
    /// The active checks' verdict (true without active checks).
    checked_healthy: AtomicBool,
    /// Passed or failed checks in a row (the sign says which: > 0 passed, < 0 failed), as an i32 in a u32.
    check_streak: AtomicU32,
    /// Ejected until this many milliseconds after the cluster state's epoch (0: not ejected).
    ejected_until: AtomicU64,
    /// Ejections so far (each lasts one base time longer).
    ejections: AtomicU32,
    consecutive_5xx: AtomicU32,
    consecutive_connect: AtomicU32,
    metrics: EndpointMetrics,
}

/// A cluster's shared state: endpoints, breakers, and what outlier detection needs.
pub struct ClusterState {
    /// The cluster's name.
    pub name: Arc<str>,
    /// Endpoints, in configured order.
    pub endpoints: Vec<EndpointState>,
    /// Circuit breakers and the retry budget's counters.
    pub breakers: Breakers,
    outlier: Option<config::OutlierDetection>,
    epoch: Instant,
    /// Every worker's connection pools for the cluster, for [`ClusterState::reclaim_idle`].
    pools: std::sync::Mutex<Vec<std::sync::Weak<super::pool::EndpointPool>>>,
    /// The definition it was built from.
    source: config::Cluster,
}

impl ClusterState {
    /// Fresh state for `cfg`: every endpoint healthy, nothing ejected.
    pub fn new(cfg: &config::Cluster, metrics: &Metrics) -> ClusterState {
        let endpoints = cfg
            .endpoints
            .iter()
            .map(|e| {
                let metrics = metrics.endpoint(&cfg.name, &e.address);
                metrics.healthy.set(1);
                EndpointState {
                    address: e.address.as_str().into(),
                    checked_healthy: AtomicBool::new(true),
                    check_streak: AtomicU32::new(0),
                    ejected_until: AtomicU64::new(0),
                    ejections: AtomicU32::new(0),
                    consecutive_5xx: AtomicU32::new(0),
                    consecutive_connect: AtomicU32::new(0),
                    metrics,
                }
            })
            .collect();
        ClusterState {
            name: cfg.name.as_str().into(),
            endpoints,
            breakers: Breakers::new(&cfg.circuit_breakers, metrics.breaker(&cfg.name)),
            outlier: cfg.outlier_detection.clone(),
            epoch: Instant::now(),
            pools: std::sync::Mutex::default(),
            source: cfg.clone(),
        }
    }

    /// Registers a worker's pool, so its idle connections can be reclaimed.
    pub fn register_pool(&self, pool: &Arc<super::pool::EndpointPool>) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    /// Closes one idle connection of any worker's pool, so a request waiting under `max_connections` can open
    /// its own; false when no connection is idle.
    pub fn reclaim_idle(&self) -> bool {
        let pools: Vec<_> =
            self.pools.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(|p| p.upgrade()).collect();
        pools.iter().any(|p| p.close_one_idle())
    }

    /// Whether this state was built for exactly `cfg`.
    pub fn built_from(&self, cfg: &config::Cluster) -> bool {
        self.source == *cfg
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Whether endpoint `i` may take requests now: healthy by the checks and not ejected.
    pub fn available(&self, i: usize) -> bool {
        let Some(e) = self.endpoints.get(i) else { return false };
        if !e.checked_healthy.load(Relaxed) {
            return false;
        }
        let until = e.ejected_until.load(Relaxed);
        until == 0 || self.lift_if_expired(e, until)
    }

    /// Whether any endpoint may take requests.
    pub fn any_available(&self) -> bool {
        (0..self.endpoints.len()).any(|i| self.available(i))
    }

    /// Ends an ejection whose time is over; true if it was.
    fn lift_if_expired(&self, e: &EndpointState, until: u64) -> bool {
        if self.now_ms() < until {
            return false;
        }
        if e.ejected_until.compare_exchange(until, 0, Relaxed, Relaxed).is_ok() {
            tracing::info!(cluster = %self.name, endpoint = %e.address, "ejection over; endpoint back in the balancer");
            self.publish(e);
        }
        true
    }

    /// Ends expired ejections (so the gauges are right without traffic); called by the metrics and admin views.
    pub fn refresh(&self) {
        for e in &self.endpoints {
            let until = e.ejected_until.load(Relaxed);
            if until != 0 {
                self.lift_if_expired(e, until);
            }
        }
    }

    fn publish(&self, e: &EndpointState) {
        let up = e.checked_healthy.load(Relaxed) && e.ejected_until.load(Relaxed) == 0;
        e.metrics.healthy.set(i64::from(up));
    }

    /// Records how a try with endpoint `i` went; may eject it.
    pub fn record(&self, i: usize, outcome: Outcome) {
        let (Some(e), Some(od)) = (self.endpoints.get(i), &self.outlier) else { return };
        let (streak, limit, reason) = match outcome {
            Outcome::Answered => {
                e.consecutive_5xx.store(0, Relaxed);
                e.consecutive_connect.store(0, Relaxed);
                return;
            }
            Outcome::ServerError => {
                e.consecutive_connect.store(0, Relaxed);
                (e.consecutive_5xx.fetch_add(1, Relaxed) + 1, od.consecutive_5xx, "5xx")
            }
            Outcome::ConnectFailure => {
                (e.consecutive_connect.fetch_add(1, Relaxed) + 1, od.consecutive_connect_failures, "connect")
            }
        };
        if limit == 0 || streak < limit {
            return;
        }
        self.eject(e, od, reason);
    }

    fn eject(&self, e: &EndpointState, od: &config::OutlierDetection, reason: &str) {
        let now = self.now_ms();
        if e.ejected_until.load(Relaxed) > now {
            return; // already out
        }
        let n = self.endpoints.len();
        let cap = (n * od.max_ejection_percent as usize / 100).max(1);
        let out = self.endpoints.iter().filter(|x| x.ejected_until.load(Relaxed) > now).count();
        if out >= cap {
            tracing::warn!(cluster = %self.name, endpoint = %e.address, reason, ejected = out, cap, "not ejected: the share of ejected endpoints is at its cap");
            return;
        }
        let times = e.ejections.fetch_add(1, Relaxed) + 1;
        let length = od.base_ejection_time.saturating_mul(times).min(od.max_ejection_time);
        let until = now + u64::try_from(length.as_millis()).unwrap_or(u64::MAX / 2);
        e.ejected_until.store(until, Relaxed);
        e.consecutive_5xx.store(0, Relaxed);
        e.consecutive_connect.store(0, Relaxed);
        e.metrics.ejections(reason).inc();
        self.publish(e);
        tracing::warn!(cluster = %self.name, endpoint = %e.address, reason, ejection = times, millis = length.as_millis() as u64, "endpoint ejected");
    }

    /// Records an active check's result for endpoint `i` with the thresholds of `hc`.
    pub fn record_check(&self, i: usize, passed: bool, hc: &config::HealthCheck, detail: &str) {
        let Some(e) = self.endpoints.get(i) else { return };
        e.metrics.checks(passed).inc();
        let streak = e.check_streak.load(Relaxed) as i32;
        let streak = match (passed, streak > 0) {
            (true, true) => streak.saturating_add(1),
            (true, false) => 1,
            (false, false) => streak.saturating_sub(1),
            (false, true) => -1,
        };
        e.check_streak.store(streak as u32, Relaxed);
        let healthy = e.checked_healthy.load(Relaxed);
        if healthy && !passed && streak.unsigned_abs() >= hc.unhealthy_threshold {
            e.checked_healthy.store(false, Relaxed);
            tracing::warn!(cluster = %self.name, endpoint = %e.address, detail, "endpoint failed its health checks; out of the balancer");
            self.publish(e);
        } else if !healthy && passed && streak.unsigned_abs() >= hc.healthy_threshold {
            e.checked_healthy.store(true, Relaxed);
            tracing::info!(cluster = %self.name, endpoint = %e.address, "endpoint passed its health checks; back in the balancer");
            self.publish(e);
        }
    }

    /// What the admin API shows of each endpoint.
    pub fn view(&self) -> serde_json::Value {
        self.refresh();
        let now = self.now_ms();
        let endpoints: Vec<serde_json::Value> = self
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let until = e.ejected_until.load(Relaxed);
                serde_json::json!({
                    "address": &*e.address,
                    "available": self.available(i),
                    "health_check": if e.checked_healthy.load(Relaxed) { "healthy" } else { "unhealthy" },
                    "ejected_for_ms": until.saturating_sub(now),
                    "ejections": e.ejections.load(Relaxed),
                })
            })
            .collect();
        serde_json::json!({ "name": &*self.name, "endpoints": endpoints, "circuit_breakers": self.breakers.view() })
    }
}

/// Every cluster's state for the process, kept across snapshots while a cluster's definition is unchanged.
#[derive(Default)]
pub struct ClusterStates {
    states: std::sync::Mutex<Vec<Arc<ClusterState>>>,
}

impl ClusterStates {
    /// The state of each of `clusters` (kept, or new; a new one with active checks starts its checker);
    /// states of clusters no longer defined are dropped, which stops their checkers.
    pub fn update(
        &self,
        clusters: &[config::Cluster],
        tls: &super::TlsConfigs,
        metrics: &Metrics,
    ) -> Vec<Arc<ClusterState>> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let next: Vec<Arc<ClusterState>> = clusters
            .iter()
            .map(|c| match states.iter().find(|s| s.built_from(c)) {
                Some(s) => s.clone(),
                None => {
                    let state = Arc::new(ClusterState::new(c, metrics));
                    if let Some(hc) = &c.health_check {
                        super::checker::start(&state, c, hc.clone(), tls);
                    }
                    state
                }
            })
            .collect();
        *states = next.clone();
        next
    }

    /// The current states (for the admin API and metrics).
    pub fn all(&self) -> Vec<Arc<ClusterState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A backoff with full jitter: a random time up to `base * 2^(retry-1)`, capped at `max`.
pub fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << retry.saturating_sub(1).min(16)).min(max);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    if micros == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rand::random_range(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_per_retry_within_its_cap() {
        let ms = Duration::from_millis;
        // (retry, base, cap, the longest wait allowed)
        for (retry, base, cap, longest) in
            [(1, 25, 250, 25), (2, 25, 250, 50), (3, 25, 250, 100), (6, 25, 250, 250), (1, 0, 0, 0)]
        {
            let waits: Vec<Duration> = (0..500).map(|_| backoff(retry, ms(base), ms(cap))).collect();
            assert!(waits.iter().all(|w| *w <= ms(longest)), "retry {retry}, base {base}: {:?}", waits.iter().max());
            if longest > 0 {
                assert!(waits.iter().any(|w| *w > ms(longest) / 2), "jitter spans the range, retry {retry}");
                assert!(waits.iter().any(|w| *w < ms(longest) / 2), "jitter spans the range, retry {retry}");
            }
        }
    }
}
