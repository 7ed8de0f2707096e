//! The filter's counters: `jwt_auth_success`, `jwt_auth_failure_<code>` for every cause, the JWKS fetches, and verified-token cache hits.

use weir_sdk::metrics::Counter;

use crate::failure::{self, Failure};

/// Counter handles, defined once per configuration.
#[derive(Debug, Default)]
pub struct Metrics {
    success: Option<Counter>,
    failures: Vec<(Failure, Counter)>,
    fetch_ok: Option<Counter>,
    fetch_failed: Option<Counter>,
    cache_hits: Option<Counter>,
}

impl Metrics {
    /// Defines the counters (a refused definition is left out: metrics never fail a request).
    pub fn define() -> Metrics {
        Metrics {
            success: Counter::define("jwt_auth_success").ok(),
            failures: failure::ALL
                .iter()
                .filter_map(|&f| Counter::define(&format!("jwt_auth_failure_{}", f.code())).ok().map(|c| (f, c)))
                .collect(),
            fetch_ok: Counter::define("jwt_auth_jwks_fetch_ok").ok(),
            fetch_failed: Counter::define("jwt_auth_jwks_fetch_failed").ok(),
            cache_hits: Counter::define("jwt_auth_token_cache_hits").ok(),
        }
    }

    /// Counts a verified request.
    pub fn success(&self) {
        if let Some(c) = self.success {
            c.increment(1);
        }
    }

    /// Counts a refusal.
    pub fn failure(&self, failure: Failure) {
        if let Some((_, c)) = self.failures.iter().find(|(f, _)| *f == failure) {
            c.increment(1);
        }
    }

    /// Counts a token found verified in the cache.
    pub fn cache_hit(&self) {
        if let Some(c) = self.cache_hits {
            c.increment(1);
        }
    }

    /// Counts a JWKS fetch.
    pub fn fetch(&self, ok: bool) {
        if let Some(c) = if ok { self.fetch_ok } else { self.fetch_failed } {
            c.increment(1);
        }
    }
}
