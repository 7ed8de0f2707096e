//! Circuit breakers of a cluster, counted across every worker: requests in flight, open connections, requests
//! waiting for a connection, and retries in flight (with the retry budget). Each admitted unit is a guard that
//! gives its slot back when dropped, so nothing leaks on any path (errors, cancelled requests, closed
//! connections).

use crate::config;
use crate::telemetry::metrics::BreakerMetrics;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_requests`.
    Requests,
    /// `max_connections` reached and `max_pending_requests` waiting already.
    Pending,
    /// `max_connections` (HTTP/2 clusters, which do not queue).
    Connections,
}

impl Limit {
    /// The configuration field's name, as the `x-weir-overloaded` header and the metrics say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Requests => "max_requests",
            Limit::Pending => "max_pending_requests",
            Limit::Connections => "max_connections",
        }
    }
}

/// The counters and their limits.
pub struct Breakers {
    limits: config::CircuitBreakers,
    requests: Arc<AtomicU32>,
    connections: Arc<AtomicU32>,
    pending: Arc<AtomicU32>,
    retries: Arc<AtomicU32>,
    /// Woken when a connection closes or goes back to a pool: waiting requests look again.
    freed: Arc<tokio::sync::Notify>,
    metrics: BreakerMetrics,
}

/// A counted unit; its slot is given back when dropped.
#[derive(Debug)]
pub struct Slot {
    counter: Arc<AtomicU32>,
    freed: Option<Arc<tokio::sync::Notify>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Relaxed);
        if let Some(freed) = &self.freed {
            freed.notify_waiters();
        }
    }
}

fn take(counter: &Arc<AtomicU32>, max: u32) -> Option<Slot> {
    counter
        .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
        .ok()
        .map(|_| Slot { counter: counter.clone(), freed: None })
}

impl Breakers {
    /// Counters at zero with `limits`.
    pub fn new(limits: &config::CircuitBreakers, metrics: BreakerMetrics) -> Breakers {
        Breakers {
            limits: limits.clone(),
            requests: Arc::default(),
            connections: Arc::default(),
            pending: Arc::default(),
            retries: Arc::default(),
            freed: Arc::default(),
            metrics,
        }
    }

    /// Admits a request to the cluster, or says it is over `max_requests`.
    pub fn request(&self) -> Result<Slot, Limit> {
        take(&self.requests, self.limits.max_requests).ok_or_else(|| self.overflow(Limit::Requests))
    }

    /// Counts one more open connection, if under `max_connections`.
    pub fn connection(&self) -> Option<Slot> {
        take(&self.connections, self.limits.max_connections).map(|mut s| {
            s.freed = Some(self.freed.clone());
            s
        })
    }

    /// Counts a request waiting for a connection, or says too many wait already.
    pub fn pending(&self) -> Result<Slot, Limit> {
        take(&self.pending, self.limits.max_pending_requests).ok_or_else(|| self.overflow(Limit::Pending))
    }

    /// Whether the circuit is open: every connection is open and the queue for them is full, so a request
    /// would be refused by the pool (the route's fallback takes it instead).
    /// (Without a queue, `max_pending_requests` 0, that is only known in the pool, which refuses when no
    /// connection is idle.)
    pub fn circuit_open(&self) -> bool {
        self.limits.max_pending_requests > 0
            && self.pending.load(Relaxed) >= self.limits.max_pending_requests
            && self.connections.load(Relaxed) >= self.limits.max_connections
    }

    /// Counts a retry made for `reason`.
    pub fn count_retry(&self, reason: &str) {
        self.metrics.retry(reason).inc();
    }

    /// Records a refusal by `limit` (HTTP/2's connection limit is refused where it is met).
    pub fn overflow(&self, limit: Limit) -> Limit {
        self.metrics.overflow(limit.as_str()).inc();
        limit
    }

    /// Something that may let a waiting request go on happened (a connection went back to a pool).
    pub fn notify_freed(&self) {
        self.freed.notify_waiters();
    }

    /// What waiting requests wait on.
    pub fn freed(&self) -> &tokio::sync::Notify {
        &self.freed
    }

    /// Admits a retry when the budget allows it: retries in flight stay within `budget_percent` of the
    /// requests in flight or `min_retry_concurrency`, whichever is more, and within `max_retries`.
    pub fn retry(&self, budget_percent: u32, min_concurrency: u32) -> Option<Slot> {
        let active = self.requests.load(Relaxed);
        let budget = (u64::from(active) * u64::from(budget_percent) / 100).max(u64::from(min_concurrency));
        let max = u32::try_from(budget).unwrap_or(u32::MAX).min(self.limits.max_retries);
        let slot = take(&self.retries, max);
        if slot.is_none() {
            self.metrics.overflow("retry_budget").inc();
        }
        slot
    }

    /// Counters and limits, for the admin API.
    pub fn view(&self) -> serde_json::Value {
        let l = &self.limits;
        serde_json::json!({
            "requests": [self.requests.load(Relaxed), l.max_requests],
            "connections": [self.connections.load(Relaxed), l.max_connections],
            "pending_requests": [self.pending.load(Relaxed), l.max_pending_requests],
            "retries": [self.retries.load(Relaxed), l.max_retries],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers(max_requests: u32, max_connections: u32, max_pending: u32, max_retries: u32) -> Breakers {
        let limits =
            config::CircuitBreakers { max_connections, max_pending_requests: max_pending, max_requests, max_retries };
        Breakers::new(&limits, crate::telemetry::metrics::Metrics::new().breaker("c"))
    }

    #[test]
    fn slots_are_given_back_when_dropped() {
        let b = breakers(2, 1, 0, 3);
        let r1 = b.request().expect("first");
        let _r2 = b.request().expect("second");
        assert_eq!(b.request().unwrap_err(), Limit::Requests);
        drop(r1);
        assert!(b.request().is_ok(), "a slot came back");
        let c = b.connection().expect("one connection");
        assert!(b.connection().is_none());
        drop(c);
        assert!(b.connection().is_some());
        assert_eq!(b.pending().unwrap_err(), Limit::Pending, "max_pending_requests 0 queues nothing");
    }

    #[test]
    fn the_retry_budget_is_a_share_of_requests_in_flight_with_a_floor_and_a_cap() {
        // (requests in flight, budget %, floor, max_retries, retries admitted)
        let cases =
            [(0, 20, 3, 10, 3), (100, 20, 3, 50, 20), (100, 20, 3, 10, 10), (10, 50, 0, 100, 5), (10, 0, 0, 10, 0)];
        for (active, percent, floor, cap, admitted) in cases {
            let b = breakers(1000, 1, 1, cap);
            let _requests: Vec<Slot> = (0..active).map(|_| b.request().expect("request")).collect();
            let retries: Vec<Slot> = std::iter::from_fn(|| b.retry(percent, floor)).take(1000).collect();
            assert_eq!(retries.len(), admitted, "{active} in flight, {percent}%, floor {floor}, cap {cap}");
        }
    }
}
