//! One request: the limits taken when it arrives, the rate-limit headers on its response, and the token usage
//! read from the response and charged once.

use std::rc::Rc;

use weir_sdk::http::HeaderSnapshot;
use weir_sdk::prelude::*;

use crate::algorithm::{Op, Policy};
use crate::config::{self, Kind, Missing};
use crate::response::{self, Seen};
use crate::store::CounterStore;
use crate::usage::{self, SseUsage, Usage};
use crate::{key, Shared};

/// A token limit this request is charged to when its usage is known.
struct Charge {
    key: String,
    policy: Policy,
    reserved: u64,
    count: config::TokenCount,
}

/// How the response's usage is read.
#[derive(Default)]
enum Reading {
    /// Not at all.
    #[default]
    Off,
    /// A JSON body, kept until its end (`None` once it was too large).
    Json(Option<Vec<u8>>),
    /// An SSE stream, parsed as it goes.
    Sse(SseUsage),
}

/// One request.
#[derive(Default)]
pub struct QuotaRequest {
    shared: Option<Rc<Shared>>,
    /// Every limit that applied, for the response headers.
    seen: Vec<Seen>,
    /// Token limits to settle.
    charges: Vec<Charge>,
    /// When the request was admitted (reservations are refunded into that window).
    admitted_at: u64,
    /// This filter answered the request itself.
    answered: bool,
    /// The request body is held to add `stream_options.include_usage`.
    rewrite_body: bool,
    reading: Reading,
    response_ok: bool,
    settled: bool,
}

impl QuotaRequest {
    /// A request of the plugin sharing `shared` (`None`: not configured, answered 503).
    pub(crate) fn new(shared: Option<Rc<Shared>>) -> QuotaRequest {
        QuotaRequest { shared, ..QuotaRequest::default() }
    }
}

impl QuotaRequest {
    fn refuse(&mut self, shared: &Shared, refused: &Seen, code: config::ErrorCode) -> Action {
        shared.metrics.refused();
        self.answered = true;
        // Reservations already taken were given back with the other takes: nothing is left to settle.
        self.charges.clear();
        let retry = response::seconds(refused.outcome.retry_ns).max(1).to_string();
        let mut seen = self.seen.clone();
        seen.push(refused.clone());
        let mut extra: Vec<(&str, String)> = Vec::new();
        response::headers(&seen, config::HeaderSet::ALL, |name, value| extra.push((name, value.to_owned())));
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json"), ("retry-after", &retry)];
        headers.extend(extra.iter().map(|(n, v)| (*n, v.as_str())));
        let body = response::refusal_body(refused, code);
        http::send_response_with_details(429, &headers, &body, &format!("quota_{}", refused.name))
    }

    fn unavailable(&mut self) -> Action {
        self.answered = true;
        self.charges.clear();
        let headers = [("content-type", "application/json"), ("retry-after", "1")];
        http::send_response_with_details(503, &headers, &response::unavailable_body(), "quota_store_unavailable")
    }

    /// Charges the token limits once, with the usage read (or settles reservations without it).
    fn settle(&mut self) {
        if self.settled || self.charges.is_empty() {
            return;
        }
        self.settled = true;
        let Some(shared) = self.shared.clone() else { return };
        let usage: Option<Usage> = match &mut self.reading {
            Reading::Off => None,
            Reading::Json(body) => body.as_deref().and_then(usage::from_json),
            Reading::Sse(sse) => sse.finish(),
        };
        if usage.is_none() && self.response_ok {
            shared.metrics.usage_missing();
            log::info!("quota: no usage in the response; only reservations are charged");
        }
        let now = time::unix_nanos();
        for charge in &self.charges {
            let reserved = i128::from(charge.reserved);
            let delta = match usage {
                Some(usage) => i128::from(usage.cost(charge.count)) - reserved,
                None if !self.response_ok => -reserved,
                None => 0,
            };
            let op = match u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX) {
                0 => continue,
                cost if delta > 0 => Op::Charge(cost),
                cost => Op::Refund { cost, at: self.admitted_at },
            };
            if let Err(error) = shared.store.apply(&charge.key, &charge.policy, op, now) {
                shared.metrics.store_error(None);
                shared.log_failure(&charge.key, &error, "tokens not charged");
            }
        }
        if let Some(usage) = usage {
            shared.metrics.tokens(usage.input.saturating_add(usage.output));
        }
    }
}

/// The counter key and the numbers of `limit` for `request`; `None` when the limit does not apply (a key part is
/// missing and `missing` is `skip`).
fn plan(limit: &config::Limit, request: &key::Request<'_>) -> Option<(String, Policy)> {
    let mut parts = Vec::with_capacity(limit.key.len());
    for source in &limit.key {
        match key::value(source, request) {
            Some(value) => parts.push(value),
            None if limit.missing == Missing::Group => parts.push(String::new()),
            None => return None,
        }
    }
    let mut store_key = limit.prefix.clone();
    for (i, (part, source)) in parts.iter().zip(&limit.key).enumerate() {
        if i > 0 {
            store_key.push('|');
        }
        store_key.push_str(&key::store_part(source, part));
    }
    Some((store_key, limit.policy_for(&parts)))
}

/// What a request does to `limit` when it arrives: take one request, take the token reservation, or check that
/// the token budget is not spent.
fn first_op(limit: &config::Limit) -> Op {
    match limit.kind {
        Kind::Requests => Op::Take(1),
        Kind::Tokens if limit.reserve > 0 => Op::Take(limit.reserve),
        Kind::Tokens => Op::Peek(1),
    }
}

/// Whether `path` (with its query) is an OpenAI completions endpoint, whose streams carry usage only on request.
fn is_openai_completions(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    path.ends_with("/chat/completions") || path.ends_with("/completions")
}

impl HttpFilter for QuotaRequest {
    fn on_request_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return http::send_response(503, &[], b"");
        };
        // The headers are read (one hostcall and a copy) only when a key or the token accounting needs them.
        let snapshot = if shared.needs_headers { headers.snapshot() } else { HeaderSnapshot::default() };
        let request = shared.request(&snapshot);
        let now = time::unix_nanos();
        // Every limit that applies, with its counter and numbers for this request's key.
        let plans: Vec<(&config::Limit, String, Policy)> = shared
            .rules
            .limits
            .iter()
            .filter_map(|limit| plan(limit, &request).map(|(key, policy)| (limit, key, policy)))
            .collect();
        let mut taken: Vec<(String, Policy, u64)> = Vec::new();
        for (n, (limit, store_key, policy)) in plans.iter().enumerate() {
            let (limit, policy) = (*limit, *policy);
            let op = first_op(limit);
            let outcome = match shared.store.apply(store_key, &policy, op, now) {
                Ok(outcome) => outcome,
                Err(error) if shared.store_failed(store_key, &error) => continue,
                Err(_) => {
                    shared.refund(&taken, now);
                    return self.unavailable();
                }
            };
            let seen = Seen { name: limit.name.clone(), kind: limit.kind, texts: limit.texts_for(&policy), outcome };
            if !outcome.allowed {
                shared.refund(&taken, now);
                // Retry-After: when every limit has room again, not only the first that refused.
                let mut seen = seen;
                for (later, key, policy) in &plans[n + 1..] {
                    let cost = match first_op(later) {
                        Op::Take(cost) | Op::Peek(cost) => cost,
                        _ => 1,
                    };
                    if let Ok(o) = shared.store.apply(key, policy, Op::Peek(cost), now) {
                        seen.outcome.retry_ns = seen.outcome.retry_ns.max(o.retry_ns);
                    }
                }
                return self.refuse(&shared, &seen, limit.error);
            }
            // What a later limit's refusal gives back (none after the last limit).
            if let (Op::Take(cost), true) = (op, n + 1 < plans.len()) {
                taken.push((store_key.clone(), policy, cost));
            }
            if limit.kind == Kind::Tokens {
                let key = store_key.clone();
                self.charges.push(Charge { key, policy, reserved: limit.reserve, count: limit.count });
            }
            self.seen.push(seen);
        }
        shared.metrics.allowed();
        self.admitted_at = now;
        let completions = || {
            let method = snapshot.get(":method").unwrap_or_default();
            method.eq_ignore_ascii_case("POST") && is_openai_completions(snapshot.get(":path").unwrap_or_default())
        };
        if !self.charges.is_empty() && shared.rules.stream_usage && !end_of_stream && completions() {
            // The body may grow by `stream_options`: its length is not known yet.
            headers.remove("content-length");
            self.rewrite_body = true;
        }
        Action::Continue
    }

    fn on_request_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if !self.rewrite_body {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.rewrite_body = false;
        if let Some(rewritten) = usage::ask_for_stream_usage(&body.bytes()) {
            body.replace(&rewritten);
        }
        Action::Continue
    }

    fn on_response_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        if self.answered {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if shared.rules.headers.any() {
            response::headers(&self.seen, shared.rules.headers, |name, value| headers.set(name, value));
        }
        if !self.charges.is_empty() {
            self.response_ok = headers.status().is_some_and(|s| (200..300).contains(&s));
            let content_type = headers.get("content-type").unwrap_or_default().to_ascii_lowercase();
            self.reading = if content_type.starts_with("text/event-stream") {
                Reading::Sse(SseUsage::default())
            } else if content_type.contains("json") || content_type.is_empty() {
                Reading::Json(Some(Vec::new()))
            } else {
                Reading::Off
            };
            if end_of_stream {
                self.settle();
            }
        }
        Action::Continue
    }

    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if self.charges.is_empty() || self.settled {
            return Action::Continue;
        }
        let max = self.shared.as_ref().map_or(0, |s| s.rules.max_response_bytes);
        match &mut self.reading {
            Reading::Off => {}
            Reading::Json(kept) => {
                if let Some(buffer) = kept {
                    if buffer.len() + body.len() > max {
                        *kept = None;
                    } else {
                        buffer.extend_from_slice(&body.bytes());
                    }
                }
            }
            Reading::Sse(sse) => sse.feed(&body.bytes()),
        }
        if end_of_stream {
            self.settle();
        }
        Action::Continue
    }

    fn on_response_trailers(&mut self, _trailers: Headers) -> Action {
        self.settle();
        Action::Continue
    }

    fn on_log(&mut self) {
        // A stream that ended early (the client left, the upstream reset) is settled with what was read.
        self.settle();
    }
}
