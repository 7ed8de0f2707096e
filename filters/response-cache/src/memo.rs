//! Hits the gateway may answer by itself: on Weir, a hit of a request without a body is declared with
//! everything that decided it (`weir.memoize_response`), and the gateway sends the same answer to the requests
//! that agree on all of it, without entering this filter, while the entry's shared data is unchanged and it is
//! fresh. Every `memoize_revalidate_ms` one request comes back here (its hit is counted and its recency written
//! as usual). Other hosts (Envoy) do not have the function: nothing changes there.

use weir_sdk::abi::{MemoAge, MemoSpec};

use crate::entry::Entry;
use crate::Shared;

/// The request headers a hit depends on besides those the configuration names.
const ALWAYS: &[&str] = &[":method", ":path", ":authority", "accept", "pragma", "cache-control"];

/// Declares the hit being sent: `entry`, read from shared data `keys`, for a request whose `Cache-Control`
/// asked for at most `max_age_ms`.
pub fn declare(shared: &Shared, entry: &Entry, keys: Vec<String>, max_age_ms: Option<u64>) {
    let rules = &shared.rules;
    let Some(revalidate_ms) = rules.memoize_revalidate_ms else { return };
    let configured = [Some(&rules.bypass_header), rules.consumer_header.as_ref(), rules.tenant_header.as_ref()];
    let headers = ALWAYS
        .iter()
        .map(|name| (*name).to_owned())
        .chain(configured.into_iter().flatten().cloned())
        .chain(rules.key_headers.iter().cloned())
        .filter(|name| !name.is_empty())
        .collect();
    // Fresh while `now < expires_ms` and, under a request max-age, while `now - stored_ms <= max_age_ms`.
    let expires_unix_ms = max_age_ms
        .map_or(entry.expires_ms, |max| entry.expires_ms.min(entry.stored_ms.saturating_add(max).saturating_add(1)));
    weir_sdk::http::memoize_response(&MemoSpec {
        headers,
        properties: if rules.consumer { vec!["weir.consumer".to_owned()] } else { Vec::new() },
        shared_data: keys,
        expires_unix_ms,
        revalidate_ms: Some(revalidate_ms),
        age: Some(MemoAge { header: "age".to_owned(), origin_unix_ms: entry.stored_ms }),
        counters: shared.metrics.hit_counter().map(|id| vec![(id, 1)]).unwrap_or_default(),
    });
}
