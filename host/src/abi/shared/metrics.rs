//! Metrics filters define: ids by the cpp-host scheme, each naming a Prometheus handle in
//! [`Metrics`](crate::telemetry::metrics::Metrics) (exported on the admin `/metrics`).
//!
//! - An id's low 2 bits are its [`MetricType`]; ids step by 4 per type: counters 4, 8, …, gauges 5, 9, …,
//!   histograms 6, 10, ….
//! - Metrics are process-wide and named by `(type, name)`: defining a name again (another worker, a
//!   replaced VM, another filter) gives a new id for the same value.
//! - Ids are looked up under a read lock; an update then touches only the handle's atomics.
//!
//! Weir's limits: a name is at most [`MAX_METRIC_NAME_BYTES`] and at most [`MAX_METRICS`] distinct metrics
//! exist (defining another gets `BAD_ARGUMENT`). Once [`MAX_METRIC_IDS`] ids have been handed out, defining
//! a known metric again returns its latest id instead of a new one, so a filter that defines its metrics on
//! every request cannot grow the table without bound.

use crate::telemetry::metrics::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use weir_sdk::abi::{MetricType, Status};

/// The longest metric name, in bytes.
pub const MAX_METRIC_NAME_BYTES: usize = 1024;
/// The most distinct `(type, name)` metrics.
pub const MAX_METRICS: usize = 10_000;
/// The most ids handed out before redefinitions reuse ids.
pub const MAX_METRIC_IDS: usize = 100_000;

/// The Prometheus handle behind an id (clones share the value).
#[derive(Clone)]
enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// A metric by name: its handle and the last id handed out for it.
struct Defined {
    handle: Handle,
    last_id: u32,
}

#[derive(Default)]
struct Table {
    by_name: HashMap<(u32, String), Defined>,
    by_id: HashMap<u32, Handle>,
    /// Ids handed out so far per type (the next id of type `t` is `(count + 1) << 2 | t`).
    count: [u32; 3],
}

/// The metrics filters define in one process.
pub struct FilterMetrics {
    metrics: Arc<Metrics>,
    table: RwLock<Table>,
}

impl FilterMetrics {
    /// No metrics yet; handles are created in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> FilterMetrics {
        FilterMetrics { metrics, table: RwLock::new(Table::default()) }
    }

    fn handle(&self, id: u32) -> Result<Handle, Status> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table.by_id.get(&id).cloned().ok_or(Status::NotFound)
    }

    /// Defines metric `name` of type `kind` and returns a new id for it (the same value as every other id
    /// of that name and type).
    pub fn define(&self, kind: MetricType, name: &str) -> Result<u32, Status> {
        let tag = match kind {
            MetricType::Counter | MetricType::Gauge | MetricType::Histogram => kind.as_u32(),
            _ => return Err(Status::BadArgument),
        };
        if name.len() > MAX_METRIC_NAME_BYTES {
            return Err(Status::BadArgument);
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let key = (tag, name.to_string());
        let full = table.by_id.len() >= MAX_METRIC_IDS;
        if let (true, Some(defined)) = (full, table.by_name.get(&key)) {
            return Ok(defined.last_id);
        }
        if full || (!table.by_name.contains_key(&key) && table.by_name.len() >= MAX_METRICS) {
            return Err(Status::BadArgument);
        }
        let n = table.count[tag as usize] + 1;
        let id = n.checked_mul(4).ok_or(Status::BadArgument)? | tag;
        table.count[tag as usize] = n;
        let handle = match table.by_name.get_mut(&key) {
            Some(defined) => {
                defined.last_id = id;
                defined.handle.clone()
            }
            None => {
                let handle = match kind {
                    MetricType::Counter => Handle::Counter(self.metrics.filter_counter(name)),
                    MetricType::Gauge => Handle::Gauge(self.metrics.filter_gauge(name)),
                    _ => Handle::Histogram(self.metrics.filter_histogram(name)),
                };
                table.by_name.insert(key, Defined { handle: handle.clone(), last_id: id });
                handle
            }
        };
        table.by_id.insert(id, handle);
        Ok(id)
    }

    /// Adds `delta`: a counter takes only `delta > 0` (else `BAD_ARGUMENT`, as Envoy); a gauge adds it (a
    /// negative delta subtracts); a histogram gets `BAD_ARGUMENT`; an unknown id `NOT_FOUND`.
    pub fn increment(&self, id: u32, delta: i64) -> Result<(), Status> {
        match self.handle(id)? {
            Handle::Counter(c) if delta > 0 => {
                c.inc_by(delta.unsigned_abs());
            }
            Handle::Gauge(g) => {
                g.inc_by(delta);
            }
            Handle::Counter(_) | Handle::Histogram(_) => return Err(Status::BadArgument),
        }
        Ok(())
    }

    /// Records `value` (a `u64` on the wire, as Envoy): a counter adds it, a gauge is set to it (its bits as
    /// an `i64`), a histogram observes it. `NOT_FOUND` for an unknown id.
    pub fn record(&self, id: u32, value: u64) -> Result<(), Status> {
        match self.handle(id)? {
            Handle::Counter(c) => {
                c.inc_by(value);
            }
            Handle::Gauge(g) => {
                g.set(value as i64);
            }
            Handle::Histogram(h) => h.observe(value as f64),
        }
        Ok(())
    }

    /// The value of a counter or gauge (a negative gauge as its two's-complement bits); `BAD_ARGUMENT` for
    /// a histogram, `NOT_FOUND` for an unknown id.
    pub fn get(&self, id: u32) -> Result<u64, Status> {
        match self.handle(id)? {
            Handle::Counter(c) => Ok(c.get()),
            Handle::Gauge(g) => Ok(g.get() as u64),
            Handle::Histogram(_) => Err(Status::BadArgument),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (Arc<Metrics>, FilterMetrics) {
        let metrics = Arc::new(Metrics::new());
        (metrics.clone(), FilterMetrics::new(metrics))
    }

    #[test]
    fn ids_carry_the_type_in_their_low_bits() {
        let (_, m) = fresh();
        for (kind, name, id) in [
            (MetricType::Counter, "c", 4),
            (MetricType::Gauge, "g", 5),
            (MetricType::Histogram, "h", 6),
            (MetricType::Counter, "c2", 8),
            (MetricType::Counter, "c", 12),
            (MetricType::Gauge, "g", 9),
            (MetricType::Histogram, "c", 10),
        ] {
            assert_eq!(m.define(kind, name), Ok(id), "{kind:?} {name}");
        }
        assert_eq!(m.define(MetricType::Counter, &"x".repeat(MAX_METRIC_NAME_BYTES + 1)), Err(Status::BadArgument));
    }

    #[test]
    fn ops_per_kind() {
        let (metrics, m) = fresh();
        let c = m.define(MetricType::Counter, "reqs").expect("counter");
        let c2 = m.define(MetricType::Counter, "reqs").expect("counter again");
        let g = m.define(MetricType::Gauge, "in_flight").expect("gauge");
        let h = m.define(MetricType::Histogram, "sizes").expect("histogram");
        let unknown = 400;
        // (operation, id, argument, status, counter value, gauge value) after each step.
        type Op = fn(&FilterMetrics, u32, i64) -> Result<(), Status>;
        let inc: Op = |m, id, v| m.increment(id, v);
        let rec: Op = |m, id, v| m.record(id, v as u64);
        type Row = (&'static str, Op, u32, i64, Result<(), Status>, u64, u64);
        let table: [Row; 14] = [
            ("counter +1", inc, c, 1, Ok(()), 1, 0),
            ("same counter, other id", inc, c2, 2, Ok(()), 3, 0),
            ("counter 0", inc, c, 0, Err(Status::BadArgument), 3, 0),
            ("counter -1", inc, c, -1, Err(Status::BadArgument), 3, 0),
            ("counter record adds", rec, c, 10, Ok(()), 13, 0),
            ("gauge +5", inc, g, 5, Ok(()), 13, 5),
            ("gauge -2", inc, g, -2, Ok(()), 13, 3),
            ("gauge record sets", rec, g, 42, Ok(()), 13, 42),
            ("gauge below zero", inc, g, -43, Ok(()), 13, u64::MAX),
            ("histogram increment", inc, h, 1, Err(Status::BadArgument), 13, u64::MAX),
            ("histogram record", rec, h, 300, Ok(()), 13, u64::MAX),
            ("unknown increment", inc, unknown, 1, Err(Status::NotFound), 13, u64::MAX),
            ("unknown record", rec, unknown, 1, Err(Status::NotFound), 13, u64::MAX),
            ("type 3 id", inc, 7, 1, Err(Status::NotFound), 13, u64::MAX),
        ];
        for (what, op, id, arg, status, counter, gauge) in table {
            assert_eq!(op(&m, id, arg), status, "{what}");
            assert_eq!((m.get(c), m.get(c2), m.get(g)), (Ok(counter), Ok(counter), Ok(gauge)), "{what}");
        }
        assert_eq!(m.get(h), Err(Status::BadArgument));
        assert_eq!(m.get(unknown), Err(Status::NotFound));
        let text = metrics.render();
        assert!(text.contains("weir_filter_counter_total{name=\"reqs\"} 13"), "{text}");
        assert!(text.contains("weir_filter_histogram_sum{name=\"sizes\"} 300"), "{text}");
    }

    #[test]
    fn redefinitions_reuse_ids_once_the_table_is_full() {
        let (_, m) = fresh();
        let first = m.define(MetricType::Counter, "c").expect("define");
        {
            let mut table = m.table.write().expect("lock");
            for i in 0..MAX_METRIC_IDS as u32 {
                let handle = table.by_id[&first].clone();
                table.by_id.insert(1_000_000 + i * 4, handle);
            }
        }
        assert_eq!(m.define(MetricType::Counter, "c"), Ok(first), "the latest id of a known metric");
        assert_eq!(m.define(MetricType::Counter, "new"), Err(Status::BadArgument));
    }
}
