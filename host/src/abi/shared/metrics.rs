//! Metrics filters define: ids by the cpp-host scheme, each naming a Prometheus handle in
//! [`Metrics`](crate::telemetry::metrics::Metrics) (exported on the admin `/metrics`).
//!
//! - An id's low 2 bits are its [`MetricType`]; ids step by 4 per type: counters 4, 8, …, gauges 5, 9, …,
//!   histograms 6, 10, ….
//! - Metrics are process-wide and named by `(type, name)`: defining a name again (another worker, a
//!   replaced VM, another filter) gives a new id for the same value, as in Envoy.
//! - Each is exported with the module that defined it first as its `filter` label. A second module that
//!   defines the same name shares that value (and its label): Envoy's per-name sharing is kept, and Weir logs
//!   a warning once per module and name so the collision is seen. Give each filter's metrics a prefix of
//!   its own to keep them apart.
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

/// A metric by name: its handle, the last id handed out for it, and the module that defined it first.
struct Defined {
    handle: Handle,
    last_id: u32,
    module: String,
}

#[derive(Default)]
struct Table {
    by_name: HashMap<(u32, String), Defined>,
    by_id: HashMap<u32, Handle>,
    /// Ids handed out so far per type (the next id of type `t` is `(count + 1) << 2 | t`).
    count: [u32; 3],
    /// `(type, name, module)` already warned about sharing another module's metric.
    warned: std::collections::HashSet<(u32, String, String)>,
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

    /// Defines metric `name` of type `kind` for `module` and returns a new id for it (the same value as
    /// every other id of that name and type, whichever module defined it).
    pub fn define(&self, kind: MetricType, name: &str, module: &str) -> Result<u32, Status> {
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
        let (handle, first) = match table.by_name.get_mut(&key) {
            Some(defined) => {
                defined.last_id = id;
                (defined.handle.clone(), (defined.module != module).then(|| defined.module.clone()))
            }
            None => {
                let handle = match kind {
                    MetricType::Counter => Handle::Counter(self.metrics.filter_counter(module, name)),
                    MetricType::Gauge => Handle::Gauge(self.metrics.filter_gauge(module, name)),
                    _ => Handle::Histogram(self.metrics.filter_histogram(module, name)),
                };
                let defined = Defined { handle: handle.clone(), last_id: id, module: module.to_string() };
                table.by_name.insert(key, defined);
                (handle, None)
            }
        };
        if let Some(first) = first {
            if table.warned.len() < MAX_METRICS && table.warned.insert((tag, name.to_string(), module.to_string())) {
                tracing::warn!(
                    target: "weir::filter",
                    metric = name,
                    module,
                    defined_by = %first,
                    "module {module} defines metric {name:?}, which module {first} defined first: they share one value \
                     (as in Envoy), exported with filter=\"{first}\""
                );
            }
        }
        table.by_id.insert(id, handle);
        Ok(id)
    }

    /// The counter behind `id`: `NOT_FOUND` for an unknown id, `BAD_ARGUMENT` for a gauge or histogram.
    pub fn counter(&self, id: u32) -> Result<Counter, Status> {
        match self.handle(id)? {
            Handle::Counter(c) => Ok(c),
            _ => Err(Status::BadArgument),
        }
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
            assert_eq!(m.define(kind, name, "mod"), Ok(id), "{kind:?} {name}");
        }
        assert_eq!(
            m.define(MetricType::Counter, &"x".repeat(MAX_METRIC_NAME_BYTES + 1), "mod"),
            Err(Status::BadArgument)
        );
    }

    #[test]
    fn ops_per_kind() {
        let (metrics, m) = fresh();
        let c = m.define(MetricType::Counter, "reqs", "mod").expect("counter");
        let c2 = m.define(MetricType::Counter, "reqs", "mod").expect("counter again");
        let g = m.define(MetricType::Gauge, "in_flight", "mod").expect("gauge");
        let h = m.define(MetricType::Histogram, "sizes", "mod").expect("histogram");
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
        assert!(text.contains("weir_filter_counter_total{filter=\"mod\",name=\"reqs\"} 13"), "{text}");
        assert!(text.contains("weir_filter_histogram_sum{filter=\"mod\",name=\"sizes\"} 300"), "{text}");
    }

    #[test]
    fn a_name_is_shared_across_modules_under_the_first_modules_label() {
        let (metrics, m) = fresh();
        let first = m.define(MetricType::Counter, "shared_total", "auth").expect("define");
        let second = m.define(MetricType::Counter, "shared_total", "quota").expect("define again");
        let again = m.define(MetricType::Counter, "shared_total", "quota").expect("and again");
        assert_eq!(m.increment(first, 2).and(m.increment(second, 3)), Ok(()));
        assert_eq!((m.get(first), m.get(second), m.get(again)), (Ok(5), Ok(5), Ok(5)), "one value, as in Envoy");
        assert_eq!(m.table.read().expect("lock").warned.len(), 1, "warned once per module and name");
        let text = metrics.render();
        assert!(text.contains("weir_filter_counter_total{filter=\"auth\",name=\"shared_total\"} 5"), "{text}");
        assert!(!text.contains("filter=\"quota\""), "{text}");
    }

    #[test]
    fn redefinitions_reuse_ids_once_the_table_is_full() {
        let (_, m) = fresh();
        let first = m.define(MetricType::Counter, "c", "mod").expect("define");
        {
            let mut table = m.table.write().expect("lock");
            for i in 0..MAX_METRIC_IDS as u32 {
                let handle = table.by_id[&first].clone();
                table.by_id.insert(1_000_000 + i * 4, handle);
            }
        }
        assert_eq!(m.define(MetricType::Counter, "c", "mod"), Ok(first), "the latest id of a known metric");
        assert_eq!(m.define(MetricType::Counter, "new", "mod"), Err(Status::BadArgument));
    }
}
