//! The quota filter: request and LLM-token quotas per key (consumer, API key, client address, route, any
//! header, or a combination), several limits at once with per-key overrides, in fixed windows, sliding windows
//! or token buckets. Counters live in shared data, updated with compare-and-swap, so every worker counts into
//! the same counter and a new version of the filter finds the counts of the old one.
//! `filters/quota/README.md` has the configuration.
//!
//! Files: `request` (one request's phases), [`config`] (the configuration), [`algorithm`] (the counting,
//! pure), [`store`] (the counter store interface and its shared-data implementation), [`key`] (key sources, the
//! client address), [`usage`] (token usage of JSON and SSE responses), [`response`] (headers and error bodies),
//! [`metrics`].

use std::rc::Rc;

use weir_sdk::abi::StreamNeeds;
use weir_sdk::http::HeaderSnapshot;
use weir_sdk::prelude::*;

pub mod algorithm;
pub mod config;
pub mod key;
pub mod metrics;
mod request;
pub mod response;
pub mod store;
pub mod usage;

use algorithm::{Op, Policy};
use config::{Config, FailureMode, Rules};
use key::Source;
pub use request::QuotaRequest;
use store::{CounterStore, SharedDataStore, StoreError};

/// What one configuration shares with its requests.
pub(crate) struct Shared {
    rules: Rules,
    metrics: metrics::Metrics,
    store: SharedDataStore,
    needs_consumer: bool,
    needs_client_ip: bool,
    needs_route: bool,
    /// A key source or the token accounting reads request headers.
    needs_headers: bool,
    /// Store failures so far (for logging).
    failures: std::cell::Cell<u64>,
}

/// The plugin: one per attachment and VM.
#[derive(Default)]
pub struct Quota {
    shared: Option<Rc<Shared>>,
}

impl Plugin for Quota {
    type Config = Config;
    type Filter = QuotaRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        let rules = match config.compile() {
            Ok(rules) => rules,
            Err(why) => {
                log::error!("quota: invalid configuration: {why}");
                return false;
            }
        };
        // Weir skips what this filter's streams never use (docs/filters.md): the response body is read only for
        // token usage, and no callback reads a header map after its own phase.
        let needs = if rules.has_tokens() {
            StreamNeeds { done: false, headers_after_phase: false, ..StreamNeeds::ALL }
        } else {
            StreamNeeds::HEADERS_ONLY
        };
        http::declare_stream_needs(&needs);
        let uses = |wanted: fn(&Source) -> bool| rules.limits.iter().any(|l| l.key.iter().any(wanted));
        let shared = Shared {
            needs_consumer: uses(|s| *s == Source::Consumer),
            needs_client_ip: uses(|s| *s == Source::ClientIp),
            needs_route: uses(|s| *s == Source::Route),
            needs_headers: rules.has_tokens()
                || uses(|s| matches!(s, Source::Consumer | Source::Header(_) | Source::ApiKey(_)))
                || (rules.forwarded_header.is_some() && uses(|s| *s == Source::ClientIp)),
            store: SharedDataStore { retries: rules.store_retries },
            failures: std::cell::Cell::new(0),
            metrics: metrics::Metrics::define(),
            rules,
        };
        self.shared = Some(Rc::new(shared));
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> QuotaRequest {
        QuotaRequest::new(self.shared.clone())
    }
}

impl Shared {
    /// The request's key facts, read once.
    fn request<'a>(&self, headers: &'a HeaderSnapshot) -> key::Request<'a> {
        let consumer = if self.needs_consumer { key::consumer(headers, &self.rules.consumer_header) } else { None };
        let client_ip = if self.needs_client_ip {
            let peer = property::source_address().map(|a| a.ip());
            let forwarded: Vec<&str> = match &self.rules.forwarded_header {
                Some(name) => headers.get_all(name).collect(),
                None => Vec::new(),
            };
            key::client_ip(peer, &forwarded, self.rules.trusted_hops, &self.rules.trusted_proxies)
                .map(|ip| ip.to_string())
        } else {
            None
        };
        let route = if self.needs_route { property::route_name() } else { None };
        key::Request { headers, consumer, client_ip, route }
    }

    /// Gives back what a refused request took from earlier limits.
    fn refund(&self, taken: &[(String, Policy, u64)], now: u64) {
        for (key, policy, cost) in taken {
            if let Err(error) = self.store.apply(key, policy, Op::Refund { cost: *cost, at: now }, now) {
                self.metrics.store_error(None);
                self.log_failure(key, &error, "not refunded");
            }
        }
    }

    /// Counts and logs a store failure deciding a request; whether the request goes on.
    fn store_failed(&self, key: &str, error: &StoreError) -> bool {
        let open = self.rules.failure_mode == FailureMode::Open;
        self.metrics.store_error(Some(open));
        self.log_failure(key, error, if open { "failing open" } else { "failing closed" });
        open
    }

    /// Logs the first store failure and then one in 1000 (a full store fails every request).
    fn log_failure(&self, key: &str, error: &StoreError, what: &str) {
        let seen = self.failures.get();
        self.failures.set(seen.wrapping_add(1));
        if seen.is_multiple_of(1000) {
            log::warn!("quota: counter store failed on {key:?} ({error}); {what} ({} failures so far)", seen + 1);
        }
    }
}

weir_sdk::filter!(Quota);

#[cfg(test)]
mod tests;
