//! What clients see: the IETF `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers),
//! the legacy `X-RateLimit-Limit|Remaining|Reset` trio, OpenAI's `x-ratelimit-*-tokens`, `Retry-After`, and
//! OpenAI-shaped error bodies.

use serde_json::json;

use crate::algorithm::Outcome;
use crate::config::{ErrorCode, HeaderSet, Kind};

/// One limit's state as this request left it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The limit's name.
    pub name: String,
    /// Requests or tokens.
    pub kind: Kind,
    /// The quota for this key.
    pub quota: u64,
    /// The window in seconds.
    pub window_s: u64,
    /// The outcome.
    pub outcome: Outcome,
}

/// Whole seconds, rounded up.
pub fn seconds(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

/// The rate-limit headers of `set` for `seen` (in configuration order).
pub fn headers(seen: &[Seen], set: HeaderSet) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let requests: Vec<&Seen> = seen.iter().filter(|s| s.kind == Kind::Requests).collect();
    if !requests.is_empty() && set.ietf {
        let policy: Vec<String> =
            requests.iter().map(|s| format!("\"{}\";q={};w={}", s.name, s.quota, s.window_s)).collect();
        let state: Vec<String> = requests
            .iter()
            .map(|s| format!("\"{}\";r={};t={}", s.name, s.outcome.remaining, seconds(s.outcome.reset_ns)))
            .collect();
        out.push(("ratelimit-policy", policy.join(", ")));
        out.push(("ratelimit", state.join(", ")));
    }
    // The legacy trio describes the limit closest to refusing.
    if set.legacy {
        if let Some(tight) = requests.iter().min_by_key(|s| (s.outcome.remaining, u64::MAX - s.outcome.reset_ns)) {
            out.push(("x-ratelimit-limit", tight.quota.to_string()));
            out.push(("x-ratelimit-remaining", tight.outcome.remaining.to_string()));
            out.push(("x-ratelimit-reset", seconds(tight.outcome.reset_ns).to_string()));
        }
    }
    if let Some(tight) = seen.iter().filter(|s| s.kind == Kind::Tokens).min_by_key(|s| s.outcome.remaining) {
        out.push(("x-ratelimit-limit-tokens", tight.quota.to_string()));
        out.push(("x-ratelimit-remaining-tokens", tight.outcome.remaining.to_string()));
        out.push(("x-ratelimit-reset-tokens", format!("{}s", seconds(tight.outcome.reset_ns))));
    }
    out
}

/// The body of a 429 for `refused` under a limit of `kind` answering with `code`.
pub fn refusal_body(refused: &Seen, code: ErrorCode) -> Vec<u8> {
    let retry = seconds(refused.outcome.retry_ns).max(1);
    let unit = if refused.kind == Kind::Tokens { "tokens" } else { "requests" };
    let (message, error_type, code) = match code {
        ErrorCode::RateLimitExceeded => (
            format!(
                "Rate limit reached for {unit} (limit \"{}\": {} per {}s). Please try again in {retry}s.",
                refused.name, refused.quota, refused.window_s
            ),
            unit,
            "rate_limit_exceeded",
        ),
        ErrorCode::InsufficientQuota => (
            format!(
                "You exceeded your current quota of {unit} (limit \"{}\": {} per {}s). It renews in {retry}s.",
                refused.name, refused.quota, refused.window_s
            ),
            "insufficient_quota",
            "insufficient_quota",
        ),
    };
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}}).to_string().into_bytes()
}

/// The body of the 503 of a store failing closed.
pub fn unavailable_body() -> Vec<u8> {
    json!({"error": {
        "message": "The quota store is unavailable; the request was not admitted.",
        "type": "server_error", "param": null, "code": "quota_store_unavailable"
    }})
    .to_string()
    .into_bytes()
}
