//! The filter's metrics: counters `response_cache_hits`, `_misses`, `_bypasses`, `_expired`, `_stored`,
//! `_not_stored`, `_evictions`, `_collapsed`, `_collapse_timeouts`, `_purged`, `_store_errors`; gauges
//! `response_cache_entries` and `response_cache_bytes` (the index as the last write left it).

use weir_sdk::metrics::{Counter, Gauge};

/// Metric handles, defined once per configuration (a refused definition is left out: metrics never fail a
/// request).
#[derive(Debug, Default)]
pub struct Metrics {
    hits: Option<Counter>,
    misses: Option<Counter>,
    bypasses: Option<Counter>,
    expired: Option<Counter>,
    stored: Option<Counter>,
    not_stored: Option<Counter>,
    evictions: Option<Counter>,
    collapsed: Option<Counter>,
    collapse_timeouts: Option<Counter>,
    purged: Option<Counter>,
    store_errors: Option<Counter>,
    entries: Option<Gauge>,
    bytes: Option<Gauge>,
}

fn bump(counter: Option<Counter>, delta: u64) {
    if let Some(c) = counter {
        c.increment(delta);
    }
}

/// What the cache made of a request, as `X-Cache-Status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the cache.
    Hit,
    /// Not in the cache.
    Miss,
    /// The cache was skipped.
    Bypass,
    /// In the cache but too old.
    Expired,
}

impl Outcome {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Bypass => "BYPASS",
            Outcome::Expired => "EXPIRED",
        }
    }
}

impl Metrics {
    /// Defines the metrics.
    pub fn define() -> Metrics {
        let counter = |name: &str| Counter::define(name).ok();
        let gauge = |name: &str| Gauge::define(name).ok();
        Metrics {
            hits: counter("response_cache_hits"),
            misses: counter("response_cache_misses"),
            bypasses: counter("response_cache_bypasses"),
            expired: counter("response_cache_expired"),
            stored: counter("response_cache_stored"),
            not_stored: counter("response_cache_not_stored"),
            evictions: counter("response_cache_evictions"),
            collapsed: counter("response_cache_collapsed"),
            collapse_timeouts: counter("response_cache_collapse_timeouts"),
            purged: counter("response_cache_purged"),
            store_errors: counter("response_cache_store_errors"),
            entries: gauge("response_cache_entries"),
            bytes: gauge("response_cache_bytes"),
        }
    }

    /// A request's outcome.
    pub fn outcome(&self, outcome: Outcome) {
        bump(
            match outcome {
                Outcome::Hit => self.hits,
                Outcome::Miss => self.misses,
                Outcome::Bypass => self.bypasses,
                Outcome::Expired => self.expired,
            },
            1,
        );
    }

    /// The id of `response_cache_hits`, if defined.
    pub fn hit_counter(&self) -> Option<u32> {
        self.hits.map(|c| c.id())
    }

    /// A response stored, and the index after it.
    pub fn stored(&self, evicted: usize, entries: usize, bytes: u64) {
        bump(self.stored, 1);
        bump(self.evictions, evicted as u64);
        self.size(entries, bytes);
    }

    /// The index's size.
    pub fn size(&self, entries: usize, bytes: u64) {
        if let Some(g) = self.entries {
            g.set(entries as i64);
        }
        if let Some(g) = self.bytes {
            g.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// A response that could not be stored (status, directives, size, an incomplete stream).
    pub fn not_stored(&self) {
        bump(self.not_stored, 1);
    }

    /// A waiting request answered with the answer of the one in flight.
    pub fn collapsed(&self) {
        bump(self.collapsed, 1);
    }

    /// A waiting request that went upstream itself.
    pub fn collapse_timeout(&self) {
        bump(self.collapse_timeouts, 1);
    }

    /// Entries purged.
    pub fn purged(&self, n: usize) {
        bump(self.purged, n as u64);
    }

    /// A store operation that failed.
    pub fn store_error(&self) {
        bump(self.store_errors, 1);
    }
}
