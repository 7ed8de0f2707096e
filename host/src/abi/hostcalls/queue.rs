//! Shared queues: `proxy_register_shared_queue`, `proxy_resolve_shared_queue`,
//! `proxy_enqueue_shared_queue`, `proxy_dequeue_shared_queue`, on the process-wide queues named by
//! `(vm_id, name)` (see [`crate::abi::shared::SharedQueues`] for Weir's limits).

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::Status;

/// Creates or opens queue `(own vm_id, name)`, makes this VM's listener (for the acting root context) the
/// one woken by it (a VM without a listener leaves the current one), and writes its id. OK, or
/// `BAD_ARGUMENT` beyond Weir's limits.
fn register(c: &mut Caller<'_, VmState>, name: (u32, u32), ret_id: u32) -> Result<(), Status> {
    let name = memory::read(c, name.0, name.1)?;
    let id = {
        let state = c.data();
        let registrant = state.queue_listener.clone().zip(state.acting_root());
        state.host.queues.register(&state.vm_id, &name, registrant)?
    };
    memory::write_u32(c, ret_id, id).map_err(Status::from)
}

/// Writes the id of queue `(vm_id, name)`; an empty `vm_id` is the caller's own. `NOT_FOUND` when the
/// queue was never registered.
fn resolve(c: &mut Caller<'_, VmState>, vm_id: (u32, u32), name: (u32, u32), ret_id: u32) -> Result<(), Status> {
    let vm_id = memory::read(c, vm_id.0, vm_id.1)?;
    let name = memory::read(c, name.0, name.1)?;
    let id = {
        let state = c.data();
        let vm_id = match vm_id.as_slice() {
            b"" => &*state.vm_id,
            // A vm_id that is not UTF-8 names no VM.
            other => std::str::from_utf8(other).map_err(|_| Status::NotFound)?,
        };
        state.host.queues.resolve(vm_id, &name).ok_or(Status::NotFound)?
    };
    memory::write_u32(c, ret_id, id).map_err(Status::from)
}

/// Appends an item: OK, `NOT_FOUND` for an unknown id, `BAD_ARGUMENT` beyond Weir's limits.
fn enqueue(c: &mut Caller<'_, VmState>, id: u32, value: (u32, u32)) -> Result<(), Status> {
    let item = memory::read(c, value.0, value.1)?;
    c.data().host.queues.enqueue(id, item)
}

/// Hands the oldest item to the guest: OK, `EMPTY`, or `NOT_FOUND` for an unknown id. An item that cannot
/// be handed over (bad out-pointers, failed allocation) goes back to the front of the queue.
fn dequeue(c: &mut Caller<'_, VmState>, id: u32, ret_ptr: u32, ret_len: u32) -> Result<(), Status> {
    let host = c.data().host.clone();
    let item = host.queues.dequeue(id)?.ok_or(Status::Empty)?;
    memory::return_bytes(c, &item, ret_ptr, ret_len).inspect_err(|_| host.queues.requeue_front(id, item.clone()))
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Caller<'_, VmState>, np: i32, nl: i32, ret: i32| {
            status(register(&mut c, (np as u32, nl as u32), ret as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_, VmState>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32| {
            status(resolve(&mut c, (vp as u32, vl as u32), (np as u32, nl as u32), ret as u32))
        },
    )?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", |mut c: Caller<'_, VmState>, id: i32, p: i32, l: i32| {
        status(enqueue(&mut c, id as u32, (p as u32, l as u32)))
    })?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Caller<'_, VmState>, id: i32, rp: i32, rl: i32| {
            status(dequeue(&mut c, id as u32, rp as u32, rl as u32))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{host, i, Guest, BAD, IN, OUT};
    use crate::abi::shared::QueueListener;
    use std::sync::{Arc, Mutex};
    use weir_sdk::abi::Status;

    const CALLS: &[(&str, &str)] = &[
        ("proxy_register_shared_queue", "iii"),
        ("proxy_resolve_shared_queue", "iiiii"),
        ("proxy_enqueue_shared_queue", "iii"),
        ("proxy_dequeue_shared_queue", "iii"),
    ];

    fn register(g: &mut Guest, name: &[u8]) -> (i32, u32) {
        let [np, nl] = g.put(IN, name);
        let status = g.call("proxy_register_shared_queue", &[np, nl, i(OUT)]);
        (status, g.u32_at(OUT))
    }

    fn resolve(g: &mut Guest, vm_id: &[u8], name: &[u8]) -> (i32, u32) {
        let [vp, vl] = g.put(IN, vm_id);
        let [np, nl] = g.put(IN + 0x100, name);
        g.clear_out();
        let status = g.call("proxy_resolve_shared_queue", &[vp, vl, np, nl, i(OUT)]);
        (status, g.u32_at(OUT))
    }

    fn enqueue(g: &mut Guest, id: u32, item: &[u8]) -> i32 {
        let [p, l] = g.put(IN, item);
        g.call("proxy_enqueue_shared_queue", &[i(id), p, l])
    }

    fn dequeue(g: &mut Guest, id: u32, ret: u32) -> i32 {
        g.clear_out();
        g.call("proxy_dequeue_shared_queue", &[i(id), i(ret), i(ret + 4)])
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<u32>>);

    impl QueueListener for Recorder {
        fn queue_ready(&self, queue_id: u32) {
            self.0.lock().expect("lock").push(queue_id);
        }
    }

    #[test]
    fn statuses_through_guest_memory() {
        let shared = host();
        let mut g = Guest::new(CALLS, shared.clone(), "vm");
        let (status, id) = register(&mut g, b"q");
        assert_eq!(status, 0);
        assert_ne!(id, 0);
        for (vm_id, name, expect) in [
            (&b""[..], &b"q"[..], (0, id)),
            (b"vm", b"q", (0, id)),
            (b"other", b"q", (Status::NotFound as i32, 0xeeee_eeee)),
            (b"\xff", b"q", (Status::NotFound as i32, 0xeeee_eeee)),
            (b"", b"missing", (Status::NotFound as i32, 0xeeee_eeee)),
        ] {
            assert_eq!(resolve(&mut g, vm_id, name), expect, "resolve {vm_id:?} {name:?}");
        }
        let empty = Status::Empty as i32;
        let not_found = Status::NotFound as i32;
        let bad = Status::InvalidMemoryAccess as i32;
        assert_eq!(dequeue(&mut g, id, OUT), empty);
        assert_eq!(dequeue(&mut g, id + 100, OUT), not_found);
        assert_eq!(enqueue(&mut g, id + 100, b"x"), not_found);
        assert_eq!(g.call("proxy_enqueue_shared_queue", &[i(id), i(BAD), i(1)]), bad);
        assert_eq!(enqueue(&mut g, id, b"x"), 0);
        assert_eq!(enqueue(&mut g, id, b"y"), 0);
        assert_eq!(dequeue(&mut g, id, BAD), bad, "bad out-pointers");
        assert_eq!(dequeue(&mut g, id, OUT), 0);
        assert_eq!(g.returned(), b"x", "the item a bad dequeue could not hand over is still first");
        assert_eq!(dequeue(&mut g, id, OUT), 0);
        assert_eq!(g.returned(), b"y");
        assert_eq!(dequeue(&mut g, id, OUT), empty);
        // Another VM with the same vm_id resolves the queue and enqueues on it.
        let mut twin = Guest::new(CALLS, shared, "vm");
        assert_eq!(resolve(&mut twin, b"", b"q"), (0, id));
    }

    #[test]
    fn register_hands_the_listener_and_acting_root_over() {
        let shared = host();
        let mut g = Guest::new(CALLS, shared.clone(), "vm");
        let recorder = Arc::new(Recorder::default());
        let listener: Arc<dyn QueueListener> = recorder.clone();
        let state = g.store.data_mut();
        state.queue_listener = Some(listener);
        state.roots = vec![3];
        state.current_context = 3;
        let (status, id) = register(&mut g, b"events");
        assert_eq!(status, 0);
        assert_eq!(shared.queues.registrant_root(id), Some(3));
        assert_eq!(enqueue(&mut g, id, b"item"), 0);
        assert_eq!(*recorder.0.lock().expect("lock"), [id]);
    }
}
