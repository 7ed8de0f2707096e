//! Work a worker does for its VMs outside requests: delivering `proxy_on_tick` to the root contexts that
//! set a tick period and `proxy_on_queue_ready` to the root that registered a queue, and waking the streams
//! those callbacks resume.

use super::{FilterPlan, VmSlot};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// How often an idle VM is checked for a newly set tick period.
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// Delivers ticks to one VM's root contexts until the VM is gone (the worker stopped, or a hot swap
/// replaced the pipeline and its last stream ended). A tick is armed again after the callback returns, so
/// ticks drift by the callback's duration, as in Envoy.
pub async fn ticks(
    slot: Weak<Mutex<VmSlot>>,
    plan: Arc<FilterPlan>,
    mut inbox: Option<tokio::sync::mpsc::UnboundedReceiver<u32>>,
) {
    let mut next: HashMap<(u64, u32), Instant> = HashMap::new();
    loop {
        let Some(strong) = slot.upgrade() else { return };
        let wait = deliver_due(&strong, &plan, &mut next, Instant::now, false);
        // No strong reference while waiting: a retired VM is dropped as soon as its last stream ends.
        drop(strong);
        let sleep = tokio::time::sleep(wait.max(Duration::from_millis(1)));
        match inbox.as_mut() {
            Some(rx) => {
                tokio::select! {
                    _ = sleep => {}
                    queue = rx.recv() => match queue {
                        Some(queue) => match slot.upgrade() {
                            Some(strong) => queue_ready(&strong, &plan, queue),
                            None => return,
                        },
                        None => inbox = None,
                    },
                }
            }
            None => sleep.await,
        }
    }
}

/// Tick schedule of one VM: when each root context's next tick is due, by (VM generation, root).
pub(super) type Schedule = HashMap<(u64, u32), Instant>;

/// Delivers `proxy_on_tick` to the root contexts of the VM in `slot` whose tick is due at `now()` (every root
/// with a tick period when `force`), re-arming each at `now()` after its callback; a root seen for the first
/// time is due one period from now. Returns how long until the next tick is due (at most [`IDLE_CHECK`]).
pub(super) fn deliver_due(
    slot: &Mutex<VmSlot>,
    plan: &FilterPlan,
    next: &mut Schedule,
    now: impl Fn() -> Instant,
    force: bool,
) -> Duration {
    let started = now();
    let mut wait = IDLE_CHECK;
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let generation = guard.generation;
    let periods = match guard.ready(plan) {
        Some(vm) => vm.tick_periods(),
        None => Vec::new(),
    };
    next.retain(|(g, root), _| *g == generation && periods.iter().any(|(r, _)| r == root));
    for (root, period) in periods {
        let due = *next.entry((generation, root)).or_insert(started + period);
        if force || due <= started {
            let result = guard.vm.as_mut().map(|vm| vm.on_tick(root));
            if let Some(Err(e)) = result {
                tracing::error!(error = %e, "filter failed in proxy_on_tick");
                guard.note_failure();
            }
            guard.wake();
            next.insert((generation, root), now() + period);
            wait = wait.min(period);
        } else {
            wait = wait.min(due - started);
        }
    }
    wait
}

/// `proxy_on_queue_ready(root, queue)` to the root context that registered the queue last.
pub(super) fn queue_ready(slot: &Arc<Mutex<VmSlot>>, plan: &FilterPlan, queue: u32) {
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(root) = plan.runtime.host().queues.registrant_root(queue) else { return };
    let Some(vm) = guard.vm.as_mut().filter(|v| !v.failed()) else { return };
    if let Err(e) = vm.on_queue_ready(root, queue) {
        tracing::error!(error = %e, "filter failed in proxy_on_queue_ready");
        guard.note_failure();
    }
    guard.wake();
}
