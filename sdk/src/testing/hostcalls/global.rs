//! The fake host's process-wide hostcalls: shared data, shared queues and metrics.

use std::collections::VecDeque;

use super::call;
use crate::abi::{MetricType, Status};
use crate::testing::state::{lossy, FakeState, Metric, Queue};

/// `proxy_get_shared_data`.
pub fn get_shared_data(key: &[u8]) -> Result<(Vec<u8>, u32), Status> {
    call("proxy_get_shared_data", |s| s.shared.get(key).cloned().ok_or(Status::NotFound))
}

/// `proxy_set_shared_data`: a non-zero `cas` must match the stored one (a missing key is created whatever it is).
pub fn set_shared_data(key: &[u8], value: &[u8], cas: u32) -> Result<(), Status> {
    call("proxy_set_shared_data", |s| store(s, key, value, cas))
}

/// Stores a shared value with a fresh CAS.
pub(crate) fn store(state: &mut FakeState, key: &[u8], value: &[u8], cas: u32) -> Result<(), Status> {
    if let Some((_, stored)) = state.shared.get(key) {
        if cas != 0 && cas != *stored {
            return Err(Status::CasMismatch);
        }
    }
    state.next_cas = state.next_cas.wrapping_add(1).max(1);
    state.shared.insert(key.to_vec(), (value.to_vec(), state.next_cas));
    Ok(())
}

/// `proxy_register_shared_queue`: ids are 1, 2, ...
pub fn register_shared_queue(name: &[u8]) -> Result<u32, Status> {
    call("proxy_register_shared_queue", |s| {
        let id = queue_id(s, &lossy(name), true);
        s.queues[id as usize - 1].registered = true;
        Ok(id)
    })
}

/// The id of queue `name`, created if `create`.
pub(crate) fn queue_id(state: &mut FakeState, name: &str, create: bool) -> u32 {
    match state.queues.iter().position(|queue| queue.name == name) {
        Some(index) => index as u32 + 1,
        None if create => {
            state.queues.push(Queue { name: name.to_owned(), items: VecDeque::new(), registered: false });
            state.queues.len() as u32
        }
        None => 0,
    }
}

/// `proxy_resolve_shared_queue`: the fake has one VM id, the empty one.
pub fn resolve_shared_queue(vm_id: &[u8], name: &[u8]) -> Result<u32, Status> {
    call("proxy_resolve_shared_queue", |s| {
        if !vm_id.is_empty() {
            return Err(Status::NotFound);
        }
        match queue_id(s, &lossy(name), false) {
            0 => Err(Status::NotFound),
            id => Ok(id),
        }
    })
}

/// `proxy_enqueue_shared_queue`: a registered queue's plugin is notified by
/// [`FakeHost::deliver_queues`](super::FakeHost::deliver_queues).
pub fn enqueue_shared_queue(queue: u32, value: &[u8]) -> Result<(), Status> {
    call("proxy_enqueue_shared_queue", |s| push(s, queue, value))
}

/// Appends to queue `id` and notes the notification.
pub(crate) fn push(state: &mut FakeState, id: u32, value: &[u8]) -> Result<(), Status> {
    let queue = state.queues.get_mut((id as usize).wrapping_sub(1)).ok_or(Status::NotFound)?;
    queue.items.push_back(value.to_vec());
    if queue.registered {
        state.ready_queues.push(id);
    }
    Ok(())
}

/// `proxy_dequeue_shared_queue`.
pub fn dequeue_shared_queue(queue: u32) -> Result<Vec<u8>, Status> {
    call("proxy_dequeue_shared_queue", |s| {
        let queue = s.queues.get_mut((queue as usize).wrapping_sub(1)).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    })
}

/// `proxy_define_metric`: ids step by 4 with the kind in the low bits; a name defined again is the same metric.
pub fn define_metric(kind: MetricType, name: &[u8]) -> Result<u32, Status> {
    call("proxy_define_metric", |s| {
        let name = lossy(name);
        let index = match s.metrics.iter().position(|m| m.name == name && m.kind == kind) {
            Some(index) => index,
            None => {
                s.metrics.push(Metric { name, kind, value: 0, samples: Vec::new() });
                s.metrics.len() - 1
            }
        };
        Ok(((index as u32 + 1) << 2) | kind.as_u32())
    })
}

fn metric(state: &mut FakeState, id: u32) -> Result<&mut Metric, Status> {
    let metric = state.metrics.get_mut(((id >> 2) as usize).wrapping_sub(1)).ok_or(Status::NotFound)?;
    if metric.kind.as_u32() != id & 3 {
        return Err(Status::NotFound);
    }
    Ok(metric)
}

/// `proxy_increment_metric`: counters take only positive deltas; histograms none.
pub fn increment_metric(id: u32, delta: i64) -> Result<(), Status> {
    call("proxy_increment_metric", |s| {
        let metric = metric(s, id)?;
        match metric.kind {
            MetricType::Counter if delta > 0 => metric.value = metric.value.saturating_add(delta),
            MetricType::Gauge => metric.value = metric.value.saturating_add(delta),
            _ => return Err(Status::BadArgument),
        }
        Ok(())
    })
}

/// `proxy_record_metric`: adds to a counter, sets a gauge, observes a histogram.
pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    call("proxy_record_metric", |s| {
        let metric = metric(s, id)?;
        match metric.kind {
            MetricType::Counter => metric.value = metric.value.saturating_add(value as i64),
            MetricType::Histogram => metric.samples.push(value),
            _ => metric.value = value as i64,
        }
        Ok(())
    })
}

/// `proxy_get_metric`.
pub fn get_metric(id: u32) -> Result<u64, Status> {
    call("proxy_get_metric", |s| {
        let metric = metric(s, id)?;
        match metric.kind {
            MetricType::Histogram => Err(Status::BadArgument),
            _ => Ok(metric.value as u64),
        }
    })
}
