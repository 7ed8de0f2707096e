//! One request: its key (after the body for POST), the lookup, a hit answered from the cache, a miss that
//! leads or waits (collapsing), and the response captured and stored when it is complete and cacheable.

use std::cell::Cell;
use std::rc::Rc;

use weir_sdk::http::HeaderSnapshot;
use weir_sdk::prelude::*;

use crate::collapse::{self, Wait, Waiter};
use crate::control::{self, RequestRule};
use crate::entry::Entry;
use crate::key::{self, Hash, Parts};
use crate::memo;
use crate::metrics::Outcome;
use crate::{admin, now_ms, replay, sse, Shared};

/// A request's key, once known.
struct Plan {
    hash: Hash,
    readable: String,
    stream: bool,
    outcome: Outcome,
    /// The response may be stored.
    store: bool,
    /// This request holds the collapsing lock, with this deadline.
    leader: Option<u64>,
    /// Set when this request waited for another.
    wait: Option<Rc<Cell<Wait>>>,
    capture: Option<Capture>,
}

/// A response being captured.
struct Capture {
    status: u16,
    headers: Vec<(String, String)>,
    ttl_ms: u64,
    sse: bool,
    body: Vec<u8>,
}

/// A POST whose key waits for its body.
struct Pending {
    readable: String,
    parts: Parts,
    rule: RequestRule,
}

#[derive(Default)]
enum Phase {
    /// The cache does not apply (method, not configured), or the request was answered here.
    #[default]
    Off,
    /// Reading the body for the key.
    Body(Box<Pending>),
    /// Forwarded; the response may be stored.
    Forwarded(Box<Plan>),
}

/// One request.
#[derive(Default)]
pub struct CacheRequest {
    shared: Option<Rc<Shared>>,
    phase: Phase,
}

impl CacheRequest {
    /// A request of the plugin sharing `shared` (`None`: not configured, answered 503).
    pub(crate) fn new(shared: Option<Rc<Shared>>) -> CacheRequest {
        CacheRequest { shared, phase: Phase::Off }
    }
}

/// Whether a bypass header's value turns the bypass on.
fn truthy(value: &str) -> bool {
    !matches!(value.trim().to_ascii_lowercase().as_str(), "0" | "false" | "off" | "no")
}

/// The request's key parts that do not depend on the body.
fn parts(shared: &Shared, headers: &HeaderSnapshot) -> Parts {
    let rules = &shared.rules;
    let header = |name: &Option<String>| {
        name.as_deref().and_then(|n| headers.get(n)).filter(|v| !v.is_empty()).map(str::to_owned)
    };
    let consumer = if rules.consumer {
        property::get::<String>(&["weir.consumer"]).filter(|c| !c.is_empty()).or_else(|| header(&rules.consumer_header))
    } else {
        None
    };
    let accept = headers.get_all("accept").any(|v| v.to_ascii_lowercase().contains("text/event-stream"));
    Parts {
        stream: accept,
        route: if rules.shared { None } else { property::route_name() },
        consumer,
        tenant: header(&rules.tenant_header),
        headers: rules
            .key_headers
            .iter()
            .map(|name| {
                let values: Vec<&str> = headers.get_all(name).collect();
                (name.clone(), (!values.is_empty()).then(|| values.join(",")))
            })
            .collect(),
        body: None,
    }
}

/// The callback deciding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The request headers callback (`body_less`: the request has no body).
    Headers { body_less: bool },
    /// The final request body callback.
    FinalBody,
}

impl CacheRequest {
    /// Decides a request whose key is known: answer a fresh entry, or forward (leading or waiting when
    /// collapsing applies). The callback may pause until the tick answers or resumes the request (`can_wait`)
    /// in the headers of a request without a body and in the final body callback of one with a body; a hit in
    /// the former is declared to the gateway ([`memo::declare`]).
    fn decide(
        &mut self,
        shared: &Rc<Shared>,
        readable: String,
        parts: &Parts,
        rule: RequestRule,
        head: bool,
        at: At,
    ) -> Action {
        let can_wait = at != At::Headers { body_less: false };
        let hash = key::compose(&readable, parts);
        let now = now_ms();
        let mut plan = Plan {
            hash,
            readable,
            stream: parts.stream,
            outcome: Outcome::Miss,
            store: rule != RequestRule::Skip,
            leader: None,
            wait: None,
            capture: None,
        };
        let max_age_ms = match rule {
            RequestRule::Normal { max_age_ms } => max_age_ms,
            _ => {
                plan.outcome = Outcome::Bypass;
                shared.metrics.outcome(Outcome::Bypass);
                self.phase = Phase::Forwarded(Box::new(plan));
                return Action::Continue;
            }
        };
        match shared.store().lookup_with_keys(&hash) {
            Ok(Some((entry, slot, keys))) => {
                let fresh =
                    entry.expires_ms > now && max_age_ms.is_none_or(|max| now.saturating_sub(entry.stored_ms) <= max);
                if fresh {
                    shared.metrics.outcome(Outcome::Hit);
                    shared.touch(slot, entry.generation, now);
                    self.phase = Phase::Off;
                    let action = replay::answer(&shared.rules, &entry, head, now);
                    if at == (At::Headers { body_less: true }) {
                        memo::declare(shared, &entry, keys, max_age_ms);
                    }
                    return action;
                }
                plan.outcome = Outcome::Expired;
            }
            Ok(None) => {}
            Err(error) => shared.failed("looking up", &error),
        }
        if can_wait && shared.rules.collapse {
            let deadline = now + shared.rules.collapse_timeout_ms;
            match shared.store().lead(&hash, now, deadline) {
                Ok(true) => plan.leader = Some(deadline),
                Ok(false) => {
                    let state = Rc::new(Cell::new(Wait::Waiting));
                    let waiter = Waiter {
                        stream: weir_sdk::context::current(),
                        hash,
                        deadline_ms: deadline,
                        max_age_ms,
                        head,
                        state: state.clone(),
                    };
                    plan.wait = Some(state);
                    collapse::wait(shared, waiter);
                    self.phase = Phase::Forwarded(Box::new(plan));
                    return Action::Pause;
                }
                Err(error) => shared.failed("taking the collapsing lock", &error),
            }
        }
        shared.metrics.outcome(plan.outcome);
        self.phase = Phase::Forwarded(Box::new(plan));
        Action::Continue
    }

    /// The response's headers say whether it may be stored, and for how long.
    fn capture(shared: &Shared, headers: &Headers) -> Option<Capture> {
        let rules = &shared.rules;
        let status = headers.status()?;
        if !rules.statuses.contains(&status) {
            return None;
        }
        let all = headers.all();
        let values =
            |name: &'static str| all.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let ttl_ms = if rules.response_cache_control {
            control::response_ttl(&control::parse(values("cache-control")), rules.ttl_ms, rules.max_ttl_ms)?
        } else {
            rules.ttl_ms
        };
        if !rules.cache_set_cookie && values("set-cookie").next().is_some() {
            return None;
        }
        // Vary: only on headers the key already holds.
        for vary in values("vary").flat_map(|v| v.split(',')).map(str::trim).filter(|v| !v.is_empty()) {
            if vary == "*" || !rules.key_headers.iter().any(|k| k.eq_ignore_ascii_case(vary)) {
                return None;
            }
        }
        if values("content-length").next().and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0)
            > rules.max_body_bytes
        {
            return None;
        }
        let sse = values("content-type").any(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
        Some(Capture { status, headers: replay::kept_headers(rules, all), ttl_ms, sse, body: Vec::new() })
    }

    /// The response is complete: store it if it may be, and end the lead.
    fn finish(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        let Phase::Forwarded(plan) = &mut self.phase else { return };
        if let Some(capture) = plan.capture.take() {
            if capture.sse && !sse::complete(&capture.body) {
                shared.metrics.not_stored();
            } else {
                let now = now_ms();
                let entry = Entry {
                    generation: 0,
                    hash: plan.hash,
                    stream: plan.stream,
                    stored_ms: now,
                    expires_ms: now + capture.ttl_ms,
                    status: capture.status,
                    headers: capture.headers,
                    body: capture.body,
                };
                let touches = shared.take_touches();
                match shared.store().insert(entry, &plan.readable, now, &touches) {
                    Ok(done) => shared.metrics.stored(done.evicted.len(), done.entries, done.bytes),
                    Err(error) => shared.failed("storing", &error),
                }
            }
        }
        self.release(&shared);
    }

    /// The request is over (`on_log`, again in `on_done`): a response that never ended (the client left, the
    /// upstream reset) is not stored; the lead ends; a request still waiting (its client left) is forgotten.
    fn end(&mut self) {
        if let (Some(shared), Phase::Forwarded(plan)) = (self.shared.clone(), &mut self.phase) {
            if plan.capture.take().is_some() {
                shared.metrics.not_stored();
            }
            if let Some(wait) = plan.wait.take() {
                collapse::forget(&shared, &wait);
            }
            self.release(&shared);
        }
    }

    fn release(&mut self, shared: &Shared) {
        if let Phase::Forwarded(plan) = &mut self.phase {
            if let Some(deadline) = plan.leader.take() {
                if let Err(error) = shared.store().release(&plan.hash, deadline) {
                    shared.failed("ending the collapsing lock", &error);
                }
            }
        }
    }
}

impl HttpFilter for CacheRequest {
    fn on_request_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return http::send_response(503, &[], b"");
        };
        let rules = &shared.rules;
        let snapshot = headers.snapshot();
        let path = snapshot.get(":path").unwrap_or("/");
        if let Some((purge_path, token)) = &rules.purge {
            if path.split('?').next() == Some(purge_path.as_str()) {
                return admin::handle(&shared, token, &snapshot, path);
            }
        }
        let method = snapshot.get(":method").unwrap_or_default().to_ascii_uppercase();
        if !rules.methods.contains(&method) {
            return Action::Continue;
        }
        let host = snapshot.get(":authority").unwrap_or_default();
        let readable = key::readable(rules, &method, host, path);
        let bypassed = snapshot.get(&rules.bypass_header).is_some_and(truthy);
        let rule = if bypassed {
            RequestRule::Skip
        } else if rules.request_cache_control {
            let pragma = snapshot.get_all("pragma").any(|v| v.to_ascii_lowercase().contains("no-cache"));
            control::request_rule(&control::parse(snapshot.get_all("cache-control")), pragma)
        } else {
            RequestRule::Normal { max_age_ms: None }
        };
        let parts = parts(&shared, &snapshot);
        if method == "POST" && !end_of_stream && rule != RequestRule::Skip {
            self.phase = Phase::Body(Box::new(Pending { readable, parts, rule }));
            return Action::Continue;
        }
        let body_less = end_of_stream;
        self.decide(&shared, readable, &parts, rule, method == "HEAD", At::Headers { body_less })
    }

    fn on_request_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if !matches!(self.phase, Phase::Body(_)) {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if body.len() > shared.rules.max_request_body_bytes {
            shared.metrics.outcome(Outcome::Bypass);
            self.phase = Phase::Off;
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let (digest, stream) = key::body_digest(&body.bytes(), &shared.rules.ignore_body_fields);
        let Pending { readable, mut parts, rule } = match std::mem::take(&mut self.phase) {
            Phase::Body(pending) => *pending,
            _ => return Action::Continue,
        };
        parts.body = Some(digest);
        parts.stream |= stream;
        // The final body callback may pause: the gateway then holds the whole body until the tick answers the
        // request from the cache or resumes it.
        self.decide(&shared, readable, &parts, rule, false, At::FinalBody)
    }

    fn on_response_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        let Phase::Forwarded(plan) = &mut self.phase else { return Action::Continue };
        if let Some(wait) = &plan.wait {
            match wait.get() {
                // Answered from the cache by the plugin: the local response is already marked HIT.
                Wait::Answered | Wait::Waiting | Wait::Gone => {
                    self.phase = Phase::Off;
                    return Action::Continue;
                }
                Wait::Resumed => {
                    plan.wait = None;
                    shared.metrics.outcome(plan.outcome);
                }
            }
        }
        if !shared.rules.status_header.is_empty() {
            headers.set(&shared.rules.status_header, plan.outcome.as_str());
        }
        if plan.store {
            plan.capture = Self::capture(&shared, &headers);
            if plan.capture.is_none() {
                shared.metrics.not_stored();
            }
        }
        if end_of_stream || plan.capture.is_none() {
            self.finish();
        }
        Action::Continue
    }

    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        let Phase::Forwarded(plan) = &mut self.phase else { return Action::Continue };
        if let Some(capture) = &mut plan.capture {
            if capture.body.len() + body.len() > shared.rules.max_body_bytes {
                plan.capture = None;
                shared.metrics.not_stored();
                self.release(&shared);
            } else {
                capture.body.extend_from_slice(&body.bytes());
            }
        }
        if end_of_stream {
            self.finish();
        }
        Action::Continue
    }

    fn on_response_trailers(&mut self, _trailers: Headers) -> Action {
        self.finish();
        Action::Continue
    }

    fn on_log(&mut self) {
        self.end();
    }

    fn on_done(&mut self) -> bool {
        self.end();
        true
    }
}
