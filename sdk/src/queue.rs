//! Shared queues: FIFO queues of byte strings between VMs (workers), with a notification to the plugin that
//! registered the queue.
//!
//! ```no_run
//! use weir_sdk::queue::Queue;
//!
//! // In Plugin::on_configure of the consumer:
//! let events = Queue::register("events").expect("register");
//! // Anywhere (another filter, another worker):
//! if let Ok(Some(queue)) = Queue::resolve("", "events") {
//!     queue.enqueue(b"user signed in").ok();
//! }
//! // In Plugin::on_queue_ready(queue) of the consumer:
//! while let Ok(Some(item)) = events.dequeue() {
//!     log::info!("event: {}", String::from_utf8_lossy(&item));
//! }
//! ```

use crate::abi::Status;
use crate::host::{found, raw};

/// A shared queue, by the id the host gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Queue(pub u32);

impl Queue {
    /// Creates (or opens) queue `name` of this `vm_id` and makes this plugin the one notified
    /// ([`Plugin::on_queue_ready`](crate::Plugin::on_queue_ready)) when items arrive; the last plugin to register
    /// is the one notified.
    pub fn register(name: &str) -> Result<Queue, Status> {
        raw::register_shared_queue(name.as_bytes()).map(Queue)
    }

    /// Finds queue `name` of VM id `vm_id` (empty: this plugin's own); `None` if nobody registered it.
    pub fn resolve(vm_id: &str, name: &str) -> Result<Option<Queue>, Status> {
        Ok(found(raw::resolve_shared_queue(vm_id.as_bytes(), name.as_bytes()))?.map(Queue))
    }

    /// Appends `item`; the registrant is notified after this callback.
    pub fn enqueue(&self, item: &[u8]) -> Result<(), Status> {
        raw::enqueue_shared_queue(self.0, item)
    }

    /// Takes the oldest item; `None` when the queue is empty.
    pub fn dequeue(&self) -> Result<Option<Vec<u8>>, Status> {
        match raw::dequeue_shared_queue(self.0) {
            Ok(item) => Ok(Some(item)),
            Err(Status::Empty) => Ok(None),
            Err(status) => Err(status),
        }
    }
}
