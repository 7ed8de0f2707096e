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

/// The rate-limit headers of `set` for `seen` (in configuration order), handed to `emit` one by one. Written
/// into one reused buffer with `itoa`: this runs on every response, where `format!` and `join` made a dozen
/// allocations.
pub fn headers(seen: &[Seen], set: HeaderSet, mut emit: impl FnMut(&'static str, &str)) {
    let mut text = String::with_capacity(64);
    let mut number = itoa::Buffer::new();
    let requests = || seen.iter().filter(|s| s.kind == Kind::Requests);
    if requests().next().is_some() && set.ietf {
        // `"name";q=quota;w=window, ...` and `"name";r=remaining;t=reset, ...`.
        for (header, first, second) in [("ratelimit-policy", "q", "w"), ("ratelimit", "r", "t")] {
            text.clear();
            for s in requests() {
                let values = if first == "q" {
                    (s.quota, s.window_s)
                } else {
                    (s.outcome.remaining, seconds(s.outcome.reset_ns))
                };
                if !text.is_empty() {
                    text.push_str(", ");
                }
                for piece in ["\"", &s.name, "\";", first, "=", number.format(values.0), ";", second, "="] {
                    text.push_str(piece);
                }
                text.push_str(number.format(values.1));
            }
            emit(header, &text);
        }
    }
    // The legacy trio describes the limit closest to refusing.
    if set.legacy {
        if let Some(tight) = requests().min_by_key(|s| (s.outcome.remaining, u64::MAX - s.outcome.reset_ns)) {
            emit("x-ratelimit-limit", number.format(tight.quota));
            emit("x-ratelimit-remaining", number.format(tight.outcome.remaining));
            emit("x-ratelimit-reset", number.format(seconds(tight.outcome.reset_ns)));
        }
    }
    if let Some(tight) = seen.iter().filter(|s| s.kind == Kind::Tokens).min_by_key(|s| s.outcome.remaining) {
        emit("x-ratelimit-limit-tokens", number.format(tight.quota));
        emit("x-ratelimit-remaining-tokens", number.format(tight.outcome.remaining));
        text.clear();
        text.push_str(number.format(seconds(tight.outcome.reset_ns)));
        text.push('s');
        emit("x-ratelimit-reset-tokens", &text);
    }
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
