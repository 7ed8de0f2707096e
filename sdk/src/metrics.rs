//! Metrics: counters, gauges and histograms the host exports (Weir: `weir_filter_counter_total`,
//! `weir_filter_gauge`, `weir_filter_histogram` on the admin `/metrics`, labelled with the metric name).
//!
//! Define them once (in [`Plugin::on_configure`](crate::Plugin::on_configure)) and keep the handles; updates are
//! one hostcall each. An update the host refuses is logged at warn. Prefix names with the filter's name: a name
//! is one value per host, whoever defines it.
//!
//! ```no_run
//! use weir_sdk::metrics::{Counter, Gauge, Histogram};
//!
//! let requests = Counter::define("auth_requests").expect("define");
//! let in_flight = Gauge::define("auth_in_flight").expect("define");
//! let sizes = Histogram::define("auth_body_bytes").expect("define");
//! requests.increment(1);
//! in_flight.add(1);
//! sizes.record(512);
//! ```

use crate::abi::{MetricType, Status};
use crate::host::{raw, report};

/// A counter: only goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counter(u32);

/// A gauge: set, raised and lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gauge(u32);

/// A histogram: each recorded value is one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Histogram(u32);

fn done(what: &str, result: Result<(), Status>) {
    if let Err(status) = result {
        report(what, status);
    }
}

impl Counter {
    /// Defines (or finds) counter `name`.
    pub fn define(name: &str) -> Result<Counter, Status> {
        raw::define_metric(MetricType::Counter, name.as_bytes()).map(Counter)
    }

    /// Adds `delta` (zero is ignored: hosts refuse it).
    pub fn increment(&self, delta: u64) {
        if delta > 0 {
            done("counter increment", raw::increment_metric(self.0, i64::try_from(delta).unwrap_or(i64::MAX)));
        }
    }

    /// The current value.
    pub fn value(&self) -> Option<u64> {
        raw::get_metric(self.0).ok()
    }

    /// The metric id the host handed out (what [`crate::abi::MemoSpec::counters`] names).
    pub fn id(&self) -> u32 {
        self.0
    }
}

impl Gauge {
    /// Defines (or finds) gauge `name`.
    pub fn define(name: &str) -> Result<Gauge, Status> {
        raw::define_metric(MetricType::Gauge, name.as_bytes()).map(Gauge)
    }

    /// Sets the value.
    pub fn set(&self, value: i64) {
        done("gauge set", raw::record_metric(self.0, value as u64));
    }

    /// Adds `delta`, which may be negative.
    pub fn add(&self, delta: i64) {
        done("gauge add", raw::increment_metric(self.0, delta));
    }

    /// The current value.
    pub fn value(&self) -> Option<i64> {
        raw::get_metric(self.0).ok().map(|value| value as i64)
    }
}

impl Histogram {
    /// Defines (or finds) histogram `name`.
    pub fn define(name: &str) -> Result<Histogram, Status> {
        raw::define_metric(MetricType::Histogram, name.as_bytes()).map(Histogram)
    }

    /// Records one observation.
    pub fn record(&self, value: u64) {
        done("histogram record", raw::record_metric(self.0, value));
    }
}
