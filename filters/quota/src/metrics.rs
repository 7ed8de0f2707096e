//! The filter's counters: `quota_allowed`, `quota_refused`, `quota_store_errors`, `quota_failed_open`,
//! `quota_failed_closed`, `quota_tokens_charged`, `quota_usage_missing`.

use weir_sdk::metrics::Counter;

/// Counter handles, defined once per configuration (a refused definition is left out: metrics never fail a
/// request).
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: Option<Counter>,
    refused: Option<Counter>,
    store_errors: Option<Counter>,
    failed_open: Option<Counter>,
    failed_closed: Option<Counter>,
    tokens: Option<Counter>,
    usage_missing: Option<Counter>,
}

fn bump(counter: Option<Counter>, delta: u64) {
    if let Some(c) = counter {
        c.increment(delta);
    }
}

impl Metrics {
    /// Defines the counters.
    pub fn define() -> Metrics {
        let define = |name: &str| Counter::define(name).ok();
        Metrics {
            allowed: define("quota_allowed"),
            refused: define("quota_refused"),
            store_errors: define("quota_store_errors"),
            failed_open: define("quota_failed_open"),
            failed_closed: define("quota_failed_closed"),
            tokens: define("quota_tokens_charged"),
            usage_missing: define("quota_usage_missing"),
        }
    }

    /// A request let through by every limit (or by a store failing open).
    pub fn allowed(&self) {
        bump(self.allowed, 1);
    }

    /// A request refused with 429.
    pub fn refused(&self) {
        bump(self.refused, 1);
    }

    /// A store operation that failed, and what the failure mode made of the request (`None`: it decided no
    /// request: a charge or a refund after the fact).
    pub fn store_error(&self, open: Option<bool>) {
        bump(self.store_errors, 1);
        match open {
            Some(true) => bump(self.failed_open, 1),
            Some(false) => bump(self.failed_closed, 1),
            None => {}
        }
    }

    /// Tokens charged to token limits (once per response, whatever the number of limits).
    pub fn tokens(&self, tokens: u64) {
        bump(self.tokens, tokens);
    }

    /// A response whose usage could not be read.
    pub fn usage_missing(&self) {
        bump(self.usage_missing, 1);
    }
}
