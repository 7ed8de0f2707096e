//! State the ABI says is shared: shared data (with CAS), shared queues and metrics. It lives outside the
//! VMs, in the process, so every worker's VM and every version of the same filter see the same values
//! (a quota counter survives a hot swap).

use crate::telemetry::metrics::Metrics;
use std::sync::Arc;

/// Process-wide filter state.
pub struct HostShared {
    /// The process's metric registry (filter metrics are exported on `/metrics`).
    pub metrics: Arc<Metrics>,
}

impl HostShared {
    /// Empty shared state.
    pub fn new(metrics: Arc<Metrics>) -> Arc<HostShared> {
        Arc::new(HostShared { metrics })
    }
}
