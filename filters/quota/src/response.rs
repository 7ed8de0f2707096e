//! What clients see: the IETF `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers),
//! the legacy `X-RateLimit-Limit|Remaining|Reset` trio, OpenAI's `x-ratelimit-*-tokens`, `Retry-After`, and
//! OpenAI-shaped error bodies.

use serde_json::json;

use crate::algorithm::Outcome;
use crate::config::{ErrorCode, HeaderSet, Kind, Texts};

/// One limit's state as this request left it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The limit's name.
    pub name: std::rc::Rc<str>,
    /// Requests or tokens.
    pub kind: Kind,
    /// The quota and window for this key, with their header texts.
    pub texts: Texts,
    /// The outcome.
    pub outcome: Outcome,
}

/// Whole seconds, rounded up (a real division: see [`push_decimal`]).
pub fn seconds(ns: u64) -> u64 {
    ns.div_ceil(std::hint::black_box(1_000_000_000))
}

/// Appends `n` in decimal. `itoa` divides a `u64` by constants, which wasm32 turns into 128-bit multiplies (a
/// `__multi3` call for every four digits); here one real division splits a large `n` into `u32` halves.
pub fn push_decimal(out: &mut String, n: u64) {
    let mut digits = itoa::Buffer::new();
    if let Ok(small) = u32::try_from(n) {
        out.push_str(digits.format(small));
        return;
    }
    let eight = std::hint::black_box(100_000_000_u64);
    push_decimal(out, n / eight);
    let low = digits.format(u32::try_from(n % eight).unwrap_or_default());
    out.push_str(&"00000000"[low.len()..]);
    out.push_str(low);
}

/// The rate-limit headers of `set` for `seen` (in configuration order), handed to `emit` one by one. Written
/// into one reused buffer: this runs on every response, where `format!` and `join` made a dozen allocations.
pub fn headers(seen: &[Seen], set: HeaderSet, mut emit: impl FnMut(&'static str, &str)) {
    let mut text = String::with_capacity(96);
    let number = |n: u64, text: &mut String| {
        text.clear();
        push_decimal(text, n);
    };
    let requests = || seen.iter().filter(|s| s.kind == Kind::Requests);
    if requests().next().is_some() && set.ietf {
        // `"name";q=quota;w=window, ...` (written once per limit) and `"name";r=remaining;t=reset, ...`.
        text.clear();
        for s in requests() {
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(&s.texts.policy_item);
        }
        emit("ratelimit-policy", &text);
        text.clear();
        for s in requests() {
            if !text.is_empty() {
                text.push_str(", ");
            }
            for piece in ["\"", &*s.name, "\";r="] {
                text.push_str(piece);
            }
            push_decimal(&mut text, s.outcome.remaining);
            text.push_str(";t=");
            push_decimal(&mut text, seconds(s.outcome.reset_ns));
        }
        emit("ratelimit", &text);
    }
    // The legacy trio describes the limit closest to refusing.
    if set.legacy {
        if let Some(tight) = requests().min_by_key(|s| (s.outcome.remaining, u64::MAX - s.outcome.reset_ns)) {
            emit("x-ratelimit-limit", &tight.texts.quota_text);
            for (header, value) in [
                ("x-ratelimit-remaining", tight.outcome.remaining),
                ("x-ratelimit-reset", seconds(tight.outcome.reset_ns)),
            ] {
                number(value, &mut text);
                emit(header, &text);
            }
        }
    }
    if let Some(tight) = seen.iter().filter(|s| s.kind == Kind::Tokens).min_by_key(|s| s.outcome.remaining) {
        emit("x-ratelimit-limit-tokens", &tight.texts.quota_text);
        number(tight.outcome.remaining, &mut text);
        emit("x-ratelimit-remaining-tokens", &text);
        number(seconds(tight.outcome.reset_ns), &mut text);
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
                refused.name, refused.texts.quota, refused.texts.window_s
            ),
            unit,
            "rate_limit_exceeded",
        ),
        ErrorCode::InsufficientQuota => (
            format!(
                "You exceeded your current quota of {unit} (limit \"{}\": {} per {}s). It renews in {retry}s.",
                refused.name, refused.texts.quota, refused.texts.window_s
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
