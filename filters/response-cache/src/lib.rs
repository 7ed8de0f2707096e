//! The response cache: HTTP and LLM responses kept in shared data (seen by every worker, kept across hot swaps),
//! with a TTL, bounds on entries and bytes (least recently used evicted), `Cache-Control` honoured, streamed LLM
//! answers stored only when complete and replayed as SSE, request collapsing, and a purge API.
//! `filters/response-cache/README.md` has the configuration and the storage design.
//!
//! Files: `request` (one request's phases), [`config`], [`key`] (key composition), [`control`]
//! (`Cache-Control`), [`entry`] (a stored response and its parts), [`index`] (the bounds and LRU), [`store`]
//! (shared data), `collapse` (requests waiting for the one in flight), `admin` (purge and stats), `replay`
//! (answers from entries), `memo` (hits the gateway answers by itself), [`sse`] (terminal events), [`metrics`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use weir_sdk::prelude::*;

mod admin;
mod collapse;
pub mod config;
pub mod control;
pub mod entry;
pub mod index;
pub mod key;
mod memo;
pub mod metrics;
mod replay;
mod request;
pub mod sse;
pub mod store;

use config::{Config, Rules};
use index::Touch;
pub use request::CacheRequest;
use store::{Store, StoreError};

/// What one configuration shares with its requests.
pub(crate) struct Shared {
    rules: Rules,
    metrics: metrics::Metrics,
    /// Uses of entries not yet written to the index: the latest per (slot, generation).
    touches: RefCell<HashMap<(u32, u64), u64>>,
    /// When this VM last wrote uses (ms).
    touched_at: Cell<u64>,
    /// Requests of this VM waiting for a request in flight.
    waiters: RefCell<Vec<collapse::Waiter>>,
    /// Store failures so far (for logging).
    failures: Cell<u64>,
}

/// The plugin: one per attachment and VM.
#[derive(Default)]
pub struct ResponseCache {
    shared: Option<Rc<Shared>>,
}

/// Milliseconds since the epoch, by the host's clock.
pub(crate) fn now_ms() -> u64 {
    time::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Plugin for ResponseCache {
    type Config = Config;
    type Filter = CacheRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        let rules = match config.compile() {
            Ok(rules) => rules,
            Err(why) => {
                log::error!("response-cache: invalid configuration: {why}");
                return false;
            }
        };
        self.shared = Some(Rc::new(Shared {
            rules,
            metrics: metrics::Metrics::define(),
            touches: RefCell::new(HashMap::new()),
            touched_at: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            failures: Cell::new(0),
        }));
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> CacheRequest {
        CacheRequest::new(self.shared.clone())
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            collapse::poll(shared);
        }
    }
}

impl Shared {
    fn store(&self) -> Store<'_> {
        Store::new(&self.rules)
    }

    /// Records a hit's use of an entry; writes the uses to the index when `touch_interval_ms` has passed.
    fn touch(&self, slot: u32, generation: u64, now: u64) {
        let mut touches = self.touches.borrow_mut();
        let last = touches.entry((slot, generation)).or_insert(now);
        *last = (*last).max(now);
        drop(touches);
        if now.saturating_sub(self.touched_at.get()) >= self.rules.touch_interval_ms {
            self.flush_touches(now);
        }
    }

    /// The recorded uses, taken (to be written to the index).
    fn take_touches(&self) -> Vec<Touch> {
        let touches = std::mem::take(&mut *self.touches.borrow_mut());
        touches.into_iter().map(|((slot, generation), at_ms)| Touch { slot, generation, at_ms }).collect()
    }

    fn flush_touches(&self, now: u64) {
        let touches = self.take_touches();
        self.touched_at.set(now);
        if let Err(error) = self.store().touch(&touches) {
            self.failed("recording uses", &error);
        }
    }

    /// Counts and logs a store failure: the first, then one in 1000.
    fn failed(&self, what: &str, error: &StoreError) {
        self.metrics.store_error();
        let seen = self.failures.get();
        self.failures.set(seen.wrapping_add(1));
        if seen.is_multiple_of(1000) {
            log::warn!("response-cache: {what} failed: {error} ({} failures so far)", seen + 1);
        }
    }
}

weir_sdk::filter!(ResponseCache);

#[cfg(test)]
mod tests;
