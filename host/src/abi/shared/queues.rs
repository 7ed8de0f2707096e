//! Shared queues: process-wide FIFO queues named by `(vm_id, name)`, each with a non-zero id from a global
//! counter, and the one listener to wake when an item arrives.
//!
//! Registering a queue that exists opens it and *replaces* its listener, so only the last registrant is
//! woken (as Envoy). A registrant without a listener (a VM no worker drives, such as the canary that checks
//! a configuration) opens the queue but leaves the current listener in place, so it cannot silence the
//! workers. Items are kept across registrations and across VM replacement.
//!
//! Weir's limits (the ABI sets none), each refused with `BAD_ARGUMENT` so nothing is silently lost:
//! a queue holds at most [`MAX_QUEUED_ITEMS`] items of at most [`MAX_ITEM_BYTES`] each, and one `vm_id`
//! has at most [`MAX_QUEUES_PER_VM_ID`] queues.

use super::lock;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use weir_sdk::abi::Status;

/// The most items one queue holds; an enqueue beyond is refused.
pub const MAX_QUEUED_ITEMS: usize = 10_000;
/// The largest item, in bytes (1 MiB).
pub const MAX_ITEM_BYTES: usize = 1 << 20;
/// The most queues one `vm_id` may register.
pub const MAX_QUEUES_PER_VM_ID: usize = 10_000;

/// Told when an item is enqueued on a queue it registered for.
///
/// Called on the enqueuing thread, while the enqueuing filter's hostcall is still running (possibly inside
/// another VM, or inside the listener's own VM): an implementation only posts an event (for the worker
/// that owns the registrant to deliver `proxy_on_queue_ready` later), never blocks and never enters a VM.
/// It is dropped silently when the registrant is gone.
pub trait QueueListener: Send + Sync {
    /// An item is waiting on `queue_id`.
    fn queue_ready(&self, queue_id: u32);
}

/// Who registered a queue last: the listener to wake and the root context that registered.
pub type Registrant = (Arc<dyn QueueListener>, u32);

/// One queue.
struct Queue {
    items: VecDeque<Vec<u8>>,
    listener: Option<Registrant>,
}

#[derive(Default)]
struct Queues {
    /// Ids by vm_id, then by name.
    ids: HashMap<String, HashMap<Vec<u8>, u32>>,
    by_id: HashMap<u32, Queue>,
    /// The last id handed out.
    last_id: u32,
}

/// The shared queues of one process.
pub struct SharedQueues {
    inner: Mutex<Queues>,
    max_items: usize,
    max_queues: usize,
}

impl Default for SharedQueues {
    fn default() -> Self {
        SharedQueues::with_limits(MAX_QUEUED_ITEMS, MAX_QUEUES_PER_VM_ID)
    }
}

impl SharedQueues {
    /// No queues, with other limits (tests use small ones).
    pub fn with_limits(max_items: usize, max_queues: usize) -> SharedQueues {
        SharedQueues { inner: Mutex::new(Queues::default()), max_items, max_queues }
    }

    /// Creates queue `(vm_id, name)` or opens it, and makes `listener` the one woken by its items (`None`
    /// keeps the current one). Returns the queue's id. `BAD_ARGUMENT` when the `vm_id` has too many queues.
    pub fn register(&self, vm_id: &str, name: &[u8], listener: Option<Registrant>) -> Result<u32, Status> {
        let mut q = lock(&self.inner);
        let existing = q.ids.get(vm_id).and_then(|names| names.get(name)).copied();
        let id = match existing {
            Some(id) => id,
            None => {
                if q.ids.get(vm_id).map_or(0, HashMap::len) >= self.max_queues {
                    return Err(Status::BadArgument);
                }
                let id = q.last_id.checked_add(1).ok_or(Status::BadArgument)?;
                q.last_id = id;
                q.ids.entry(vm_id.to_string()).or_default().insert(name.to_vec(), id);
                q.by_id.insert(id, Queue { items: VecDeque::new(), listener: None });
                id
            }
        };
        if let (Some(queue), Some(listener)) = (q.by_id.get_mut(&id), listener) {
            queue.listener = Some(listener);
        }
        Ok(id)
    }

    /// The id of queue `(vm_id, name)`, if it was registered.
    pub fn resolve(&self, vm_id: &str, name: &[u8]) -> Option<u32> {
        lock(&self.inner).ids.get(vm_id)?.get(name).copied()
    }

    /// The root context that registered `queue_id` last (for the listener to deliver to), if it has one.
    pub fn registrant_root(&self, queue_id: u32) -> Option<u32> {
        lock(&self.inner).by_id.get(&queue_id)?.listener.as_ref().map(|(_, root)| *root)
    }

    /// Appends `item` to the queue and then tells its listener. `NOT_FOUND` for an unknown id;
    /// `BAD_ARGUMENT` when the item is too large or the queue is full.
    pub fn enqueue(&self, queue_id: u32, item: Vec<u8>) -> Result<(), Status> {
        let listener = {
            let mut q = lock(&self.inner);
            let queue = q.by_id.get_mut(&queue_id).ok_or(Status::NotFound)?;
            if item.len() > MAX_ITEM_BYTES || queue.items.len() >= self.max_items {
                return Err(Status::BadArgument);
            }
            queue.items.push_back(item);
            queue.listener.as_ref().map(|(l, _)| l.clone())
        };
        // Outside the lock: the listener may look at the queues.
        if let Some(listener) = listener {
            listener.queue_ready(queue_id);
        }
        Ok(())
    }

    /// Takes the oldest item: `Ok(None)` when the queue is empty, `NOT_FOUND` for an unknown id.
    pub fn dequeue(&self, queue_id: u32) -> Result<Option<Vec<u8>>, Status> {
        let mut q = lock(&self.inner);
        Ok(q.by_id.get_mut(&queue_id).ok_or(Status::NotFound)?.items.pop_front())
    }

    /// Puts back an item that was dequeued but could not be handed to the guest, at the front so it is
    /// the next one out. Ignores the size limit (the item was in the queue a moment ago).
    pub fn requeue_front(&self, queue_id: u32, item: Vec<u8>) {
        if let Some(queue) = lock(&self.inner).by_id.get_mut(&queue_id) {
            queue.items.push_front(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every wake-up it gets.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<u32>>);

    impl QueueListener for Recorder {
        fn queue_ready(&self, queue_id: u32) {
            lock(&self.0).push(queue_id);
        }
    }

    impl Recorder {
        fn calls(&self) -> Vec<u32> {
            lock(&self.0).clone()
        }
    }

    fn registrant(r: &Arc<Recorder>, root: u32) -> Option<Registrant> {
        let listener: Arc<dyn QueueListener> = r.clone();
        Some((listener, root))
    }

    #[test]
    fn register_resolve_enqueue_dequeue() {
        let queues = SharedQueues::default();
        let id = queues.register("vm", b"events", None).expect("register");
        assert_ne!(id, 0, "queue ids are non-zero");
        let other = queues.register("vm2", b"events", None).expect("register");
        assert_ne!(other, id, "another vm_id, another queue");
        assert_eq!(queues.register("vm", b"events", None), Ok(id), "registering again opens the same queue");
        for (vm, name, expect) in [
            ("vm", &b"events"[..], Some(id)),
            ("vm2", b"events", Some(other)),
            ("vm", b"nope", None),
            ("vm3", b"events", None),
            ("", b"events", None),
        ] {
            assert_eq!(queues.resolve(vm, name), expect, "resolve {vm} {name:?}");
        }
        for item in [&b"a"[..], b"", b"c"] {
            assert_eq!(queues.enqueue(id, item.to_vec()), Ok(()));
        }
        type Expect = Result<Option<&'static [u8]>, Status>;
        let ops: [(u32, Expect); 6] = [
            (id, Ok(Some(b"a"))),
            (id, Ok(Some(b""))),
            (id, Ok(Some(b"c"))),
            (id, Ok(None)),
            (other, Ok(None)),
            (9999, Err(Status::NotFound)),
        ];
        for (i, (queue, expect)) in ops.into_iter().enumerate() {
            assert_eq!(queues.dequeue(queue), expect.map(|o| o.map(<[u8]>::to_vec)), "dequeue {i}");
        }
        assert_eq!(queues.enqueue(9999, b"x".to_vec()), Err(Status::NotFound));
        queues.enqueue(id, b"b".to_vec()).expect("enqueue");
        queues.requeue_front(id, b"a".to_vec());
        assert_eq!(queues.dequeue(id), Ok(Some(b"a".to_vec())), "a requeued item comes out first");
    }

    #[test]
    fn only_the_last_registrant_is_woken() {
        let queues = SharedQueues::default();
        let (first, second) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let id = queues.register("vm", b"q", registrant(&first, 1)).expect("register");
        queues.enqueue(id, b"1".to_vec()).expect("enqueue");
        assert_eq!(queues.register("vm", b"q", registrant(&second, 7)), Ok(id));
        assert_eq!(queues.registrant_root(id), Some(7));
        queues.enqueue(id, b"2".to_vec()).expect("enqueue");
        queues.enqueue(id, b"3".to_vec()).expect("enqueue");
        assert_eq!(first.calls(), [id], "the replaced listener hears nothing more");
        assert_eq!(second.calls(), [id, id]);
        assert_eq!(queues.dequeue(id), Ok(Some(b"1".to_vec())), "items survive a new registration");
        // A registrant without a listener (a canary VM) opens the queue and leaves the listener alone.
        assert_eq!(queues.register("vm", b"q", None), Ok(id));
        assert_eq!(queues.registrant_root(id), Some(7));
        queues.enqueue(id, b"4".to_vec()).expect("enqueue");
        assert_eq!(second.calls(), [id, id, id]);
    }

    #[test]
    fn limits_refuse_with_bad_argument() {
        let queues = SharedQueues::with_limits(2, 1);
        let id = queues.register("vm", b"q", None).expect("register");
        assert_eq!(queues.register("vm", b"q2", None), Err(Status::BadArgument), "one queue per vm_id here");
        assert!(queues.register("other", b"q2", None).is_ok(), "the cap is per vm_id");
        for (item, expect) in [
            (vec![0; MAX_ITEM_BYTES + 1], Err(Status::BadArgument)),
            (vec![1], Ok(())),
            (vec![2], Ok(())),
            (vec![3], Err(Status::BadArgument)),
        ] {
            assert_eq!(queues.enqueue(id, item), expect);
        }
        assert_eq!(queues.dequeue(id), Ok(Some(vec![1])), "a refused item dropped nothing");
    }
}
