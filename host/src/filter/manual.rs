//! Driving a worker's filters by hand, without the worker's background task and without the network: the
//! seam `weir::harness` uses. Callouts go to a sink instead of the upstream pools (and are answered through
//! the same delivery path), ticks are delivered on a clock the caller moves, and queue notifications are
//! delivered when the caller asks. Everything else (the chain runner, the body chain, VM replacement) is the
//! gateway's own code.

use super::callout::{CalloutSink, CalloutTicket};
use super::events::{self, Schedule};
use super::WorkerFilters;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A tick schedule per VM of a [`WorkerFilters`].
pub(crate) struct TickClock {
    schedules: Vec<Schedule>,
}

impl WorkerFilters {
    /// Hands every callout these filters start to `sink` instead of sending it; the sink answers each with
    /// [`CalloutTicket::answer`]. Call before the first request.
    pub(crate) fn capture_callouts(&self, sink: impl Fn(CalloutTicket) + Send + Sync + 'static) {
        let sink: CalloutSink = Arc::new(sink);
        let _ = self.runner.sink.set(sink);
    }

    /// An empty tick schedule for these filters' VMs.
    pub(crate) fn tick_clock(&self) -> TickClock {
        TickClock { schedules: self.slots.iter().map(|_| Schedule::new()).collect() }
    }

    /// Delivers the ticks due at `now` (every root's, when `force`), as the worker's background task does;
    /// returns how long until the next one is due.
    pub(crate) fn deliver_ticks(&self, clock: &mut TickClock, now: Instant, force: bool) -> Duration {
        let mut wait = Duration::MAX;
        for (slot, schedule) in self.slots.iter().zip(clock.schedules.iter_mut()) {
            wait = wait.min(events::deliver_due(slot, &self.plan, schedule, || now, force));
        }
        wait
    }

    /// Delivers `proxy_on_queue_ready` for every item enqueued (to a queue these VMs registered) since the
    /// last call; returns how many notifications were delivered.
    pub(crate) fn deliver_queue_notifications(&self) -> usize {
        let mut delivered = 0;
        for slot in &self.slots {
            let mut ready = Vec::new();
            {
                let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(inbox) = guard.inbox.as_mut() {
                    while let Ok(queue) = inbox.try_recv() {
                        ready.push(queue);
                    }
                }
            }
            for queue in ready {
                events::queue_ready(slot, &self.plan, queue);
                delivered += 1;
            }
        }
        delivered
    }
}
