//! The filter's log lines, captured: while the harness calls into the VM, a tracing dispatcher of its own is
//! the thread's default, and it keeps the events of target `weir::filter` (what `proxy_log` and the guest's
//! stdout/stderr write) at the harness's level. The level is also what the filter reads with
//! `proxy_get_log_level`.

use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One line a filter logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level (`proxy_log`'s critical is [`Level::ERROR`]).
    pub level: Level,
    /// The attachment that logged it: `harness/<filter name>`.
    pub filter: String,
    /// The text.
    pub message: String,
}

pub(crate) type Lines = Arc<Mutex<Vec<LogLine>>>;

struct Capture(Lines);

#[derive(Default)]
struct Fields {
    message: String,
    filter: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "filter" => self.filter = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "filter" => self.filter = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "weir::filter" {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = LogLine { level: *event.metadata().level(), filter: fields.filter, message: fields.message };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

/// A dispatcher that keeps the filter's lines at `level` and more severe, and drops everything else.
pub(crate) fn dispatcher(level: Level, lines: Lines) -> tracing::Dispatch {
    let targets = Targets::new().with_target("weir::filter", level);
    let subscriber = tracing_subscriber::registry().with(Capture(lines).with_filter(targets));
    tracing::Dispatch::new(subscriber)
}

/// A filter metric's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    /// A counter.
    Counter(u64),
    /// A gauge.
    Gauge(i64),
    /// A histogram: how many values, and their sum.
    Histogram {
        /// Values recorded.
        count: u64,
        /// Their sum.
        sum: f64,
    },
}

/// Metric `name` in the text exposition of the registry (`weir_filter_*{filter=..,name=..}`).
pub(crate) fn metric(rendered: &str, name: &str) -> Option<MetricValue> {
    let label = format!("name=\"{name}\"");
    let value = |prefix: &str| {
        rendered.lines().find_map(|line| {
            let rest = line.strip_prefix(prefix)?.strip_prefix('{')?;
            let (labels, value) = rest.split_once("} ")?;
            labels.split(',').any(|l| l == label).then(|| value.trim().to_string())
        })
    };
    if let Some(v) = value("weir_filter_counter_total") {
        return v.parse().ok().map(MetricValue::Counter);
    }
    if let Some(v) = value("weir_filter_gauge") {
        return v.parse().ok().map(MetricValue::Gauge);
    }
    let count = value("weir_filter_histogram_count")?.parse().ok()?;
    let sum = value("weir_filter_histogram_sum")?.parse().ok()?;
    Some(MetricValue::Histogram { count, sum })
}
