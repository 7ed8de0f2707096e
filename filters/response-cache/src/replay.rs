//! Answers from entries, and the headers an entry keeps.

use weir_sdk::prelude::*;

use crate::config::Rules;
use crate::entry::Entry;
use crate::metrics::Outcome;

/// Headers never stored: hop-by-hop ones, those the gateway sets per response, and the cache's own.
const NOT_STORED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "age",
    "x-request-id",
];

/// The response headers an entry keeps.
pub fn kept_headers(rules: &Rules, all: Vec<(String, String)>) -> Vec<(String, String)> {
    all.into_iter()
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            !name.starts_with(':')
                && !NOT_STORED.contains(&name.as_str())
                && name != rules.status_header
                && (rules.cache_set_cookie || name != "set-cookie")
        })
        .collect()
}

/// Answers the acting stream with `entry` (no body for HEAD), marked HIT with its `Age`.
pub fn answer(rules: &Rules, entry: &Entry, head: bool, now_ms: u64) -> Action {
    let age = (now_ms.saturating_sub(entry.stored_ms) / 1000).to_string();
    let mut headers: Vec<(&str, &str)> = entry.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    headers.push(("age", &age));
    if !rules.status_header.is_empty() {
        headers.push((&rules.status_header, Outcome::Hit.as_str()));
    }
    let body: &[u8] = if head { b"" } else { &entry.body };
    http::send_response_with_details(entry.status, &headers, body, "response_cache_hit")
}
