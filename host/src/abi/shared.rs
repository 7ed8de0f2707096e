//! State the ABI says is shared: shared data (with CAS), shared queues and metrics. It lives outside the
//! VMs, in the process, so every worker's VM and every version of the same filter see the same values
//! (a quota counter survives a hot swap).
//!
//! - [`SharedData`]: the key-value store of `proxy_get_shared_data` / `proxy_set_shared_data`, keyed by
//!   `(vm_id, key)`.
//! - [`SharedQueues`]: the queues of `proxy_*_shared_queue`, named by `(vm_id, name)`, with the one listener
//!   (the last registrant) to wake when an item arrives.
//! - [`FilterMetrics`]: the metric ids of `proxy_define_metric` and the Prometheus handles behind them.
//!
//! Unlike cpp-host, which erases a `vm_id`'s shared data when its last VM goes away, Weir keeps data and
//! queues for the life of the process: a VM replaced after a trap, or a new version of a filter with the
//! same `vm_id`, finds them as they were.

mod data;
mod metrics;
mod queues;

pub use data::{SharedData, MAX_KEYS_PER_VM_ID, MAX_VALUE_BYTES};
pub use metrics::{FilterMetrics, MAX_METRICS, MAX_METRIC_IDS, MAX_METRIC_NAME_BYTES};
pub use queues::{QueueListener, Registrant, SharedQueues, MAX_ITEM_BYTES, MAX_QUEUED_ITEMS, MAX_QUEUES_PER_VM_ID};

use crate::telemetry::metrics::Metrics;
use std::sync::Arc;

/// Process-wide filter state.
pub struct HostShared {
    /// The process's metric registry (filter metrics are exported on `/metrics`).
    pub metrics: Arc<Metrics>,
    /// Shared data, by `(vm_id, key)`.
    pub data: SharedData,
    /// Shared queues, by `(vm_id, name)` and by id.
    pub queues: SharedQueues,
    /// Metrics filters define, by id.
    pub filter_metrics: FilterMetrics,
}

impl HostShared {
    /// Empty shared state.
    pub fn new(metrics: Arc<Metrics>) -> Arc<HostShared> {
        Arc::new(HostShared {
            filter_metrics: FilterMetrics::new(metrics.clone()),
            metrics,
            data: SharedData::default(),
            queues: SharedQueues::default(),
        })
    }
}

/// Locks a mutex, taking the data even if a thread panicked while holding it: every update here leaves
/// the maps consistent at each step, so a poisoned lock holds nothing half-written.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
