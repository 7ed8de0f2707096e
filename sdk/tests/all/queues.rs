//! Shared queues: register, resolve, enqueue, dequeue, and `on_queue_ready`.

use std::cell::RefCell;
use std::rc::Rc;

use weir_sdk::prelude::*;

use super::{scripted, Phase};

#[test]
fn items_flow_from_requests_to_the_registered_plugin() {
    let drained = Rc::new(RefCell::new(Vec::new()));
    let out = drained.clone();
    let mut host = scripted(move |phase| {
        match phase {
            Phase::RequestHeaders(headers, _) => {
                if headers.path().as_deref() == Some("/register") {
                    assert_eq!(Queue::resolve("", "events"), Ok(None), "not registered yet");
                    let queue = Queue::register("events").unwrap();
                    assert_eq!(Queue::register("events"), Ok(queue), "registering again opens the same queue");
                    assert_eq!(queue.dequeue(), Ok(None), "empty");
                } else {
                    let queue = Queue::resolve("", "events").unwrap().unwrap();
                    queue.enqueue(headers.path().unwrap_or_default().as_bytes()).unwrap();
                }
                assert_eq!(Queue::resolve("other-vm", "events"), Ok(None));
                assert_eq!(Queue(99).enqueue(b"x"), Err(Status::NotFound));
                assert_eq!(Queue(99).dequeue(), Err(Status::NotFound));
            }
            Phase::QueueReady(queue) => {
                while let Some(item) = queue.dequeue().unwrap() {
                    out.borrow_mut().push(String::from_utf8(item).unwrap());
                }
            }
            _ => {}
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[(":path", "/register")], true);
    host.stream().send_request_headers(&[(":path", "/a")], true);
    host.stream().send_request_headers(&[(":path", "/b")], true);
    assert_eq!(host.queue("events"), [b"/a".to_vec(), b"/b".to_vec()], "delivered after the callback, not during");
    assert_eq!(host.deliver_queues(), 2);
    assert_eq!(*drained.borrow(), ["/a", "/b"]);
    host.enqueue("events", b"from another worker");
    assert_eq!(drained.borrow().last().map(String::as_str), Some("from another worker"));
    assert!(host.queue("events").is_empty());
    assert_eq!(host.deliver_queues(), 0);
}
