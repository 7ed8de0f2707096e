//! Request collapsing: the first miss on a key leads (a lock in shared data with a deadline); later misses on
//! the same key, on any worker, wait paused (a request without a body in its headers callback, one with a body
//! in its final body callback, the whole body held by the gateway). Each worker's plugin polls for its waiting requests every
//! `collapse.poll_ms` (its tick runs only while some wait): a request whose key got stored is answered from the
//! cache; one whose leader ended without storing, or whose wait reached `collapse.timeout_ms`, goes upstream
//! itself.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use weir_sdk::context;
use weir_sdk::prelude::*;

use crate::key::Hash;
use crate::{now_ms, replay, Shared};

/// Where a waiting request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Paused.
    Waiting,
    /// Answered from the cache.
    Answered,
    /// Sent upstream.
    Resumed,
    /// Its request ended while it waited (the client left): forgotten.
    Gone,
}

/// A paused request.
pub struct Waiter {
    /// Its stream.
    pub stream: ContextId,
    /// Its key.
    pub hash: Hash,
    /// When it stops waiting (ms).
    pub deadline_ms: u64,
    /// Entries older than this (ms) do not answer it.
    pub max_age_ms: Option<u64>,
    /// A HEAD request (answered without a body).
    pub head: bool,
    /// Shared with the request's filter.
    pub state: Rc<Cell<Wait>>,
}

/// Adds a waiting request, starting the plugin's tick if it is the first.
pub fn wait(shared: &Shared, waiter: Waiter) {
    let mut waiters = shared.waiters.borrow_mut();
    if waiters.is_empty() {
        time::set_tick_period(Duration::from_millis(shared.rules.poll_ms));
    }
    waiters.push(waiter);
}

/// Forgets a waiting request whose request ended (the client left) while it waited, stopping the tick when it
/// was the last.
pub fn forget(shared: &Shared, state: &Rc<Cell<Wait>>) {
    if state.get() != Wait::Waiting {
        return;
    }
    state.set(Wait::Gone);
    let mut waiters = shared.waiters.borrow_mut();
    let before = waiters.len();
    waiters.retain(|w| !Rc::ptr_eq(&w.state, state));
    // Only when it was found: a poll in progress holds the list (and stops the tick itself).
    if waiters.len() < before && waiters.is_empty() {
        time::set_tick_period(Duration::ZERO);
    }
}

/// Answers or releases the waiting requests whose leader is done or whose wait is over; stops the tick when
/// none is left.
pub fn poll(shared: &Rc<Shared>) {
    let now = now_ms();
    let store = shared.store();
    let waiters = std::mem::take(&mut *shared.waiters.borrow_mut());
    let mut still = Vec::with_capacity(waiters.len());
    for waiter in waiters {
        if waiter.state.get() != Wait::Waiting {
            continue;
        }
        let fresh = match store.lookup(&waiter.hash) {
            Ok(found) => found.filter(|(entry, _)| {
                entry.expires_ms > now && waiter.max_age_ms.is_none_or(|max| now.saturating_sub(entry.stored_ms) <= max)
            }),
            Err(error) => {
                shared.failed("looking up for a waiting request", &error);
                None
            }
        };
        // The wait ends at its own bound or the leader's, whichever comes first; or when the leader is gone.
        let lock = store.lock_deadline(&waiter.hash).unwrap_or(None);
        let timed_out = now >= waiter.deadline_ms || lock.is_some_and(|deadline| deadline <= now);
        if fresh.is_none() && !timed_out && lock.is_some() {
            still.push(waiter);
            continue;
        }
        // A stream the host no longer knows (its client left) is forgotten.
        if context::set_effective(waiter.stream).is_err() {
            continue;
        }
        match fresh {
            Some((entry, slot)) => {
                waiter.state.set(Wait::Answered);
                shared.metrics.collapsed();
                shared.metrics.outcome(crate::metrics::Outcome::Hit);
                shared.touch(slot, entry.generation, now);
                replay::answer(&shared.rules, &entry, waiter.head, now);
            }
            None => {
                if timed_out {
                    shared.metrics.collapse_timeout();
                }
                waiter.state.set(Wait::Resumed);
                http::resume_request();
            }
        }
    }
    let mut waiters = shared.waiters.borrow_mut();
    waiters.extend(still);
    if waiters.is_empty() {
        time::set_tick_period(Duration::ZERO);
    }
}
