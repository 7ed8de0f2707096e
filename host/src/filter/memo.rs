//! Memoized answers of one attachment on one worker: local responses its filter declared memoizable
//! (`weir.memoize_response`, [`crate::abi::memo`]), sent again by the worker, without entering the VM, to the
//! requests without a body that agree on every input the filter named, on the same route, until the memo's
//! time is up or a shared data key it was read from changes. A memo that no longer holds is dropped, so the
//! filter decides that request (and may memoize its answer again).
//!
//! Bounded: at most [`MAX_ENTRIES`] memos and [`MAX_BYTES`] per attachment and worker (the oldest go first), and
//! a response of more than a quarter of that is not kept.
//!
//! A memo of the first filter of a chain that depends on nothing the gateway's request policy sets (the
//! forwarding headers, the request id, `traceparent`, `host`, hop-by-hop headers) and on no property answers
//! [early](MemoTable::answer_early): from the client's request, before the policy runs, since the filter would
//! have seen the same values. The shared data check costs one atomic load while no shared data was written
//! since the last one ([`crate::abi::shared::SharedData::version`]).

use crate::abi::header_map::Headers;
use crate::abi::memo::{ClientRequest, Input, MemoDraft, RequestView, Values};
use crate::abi::stream::{LocalResponse, RequestInfo};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The most memos one attachment keeps on one worker.
pub const MAX_ENTRIES: usize = 256;
/// The most bytes (bodies, headers, recorded values) one attachment's memos hold on one worker.
pub const MAX_BYTES: usize = 4 << 20;

/// A memoized answer as the worker sends it: the local response, built once when it was memoized.
#[derive(Debug, Clone)]
pub struct MemoAnswer {
    /// The status.
    pub status: StatusCode,
    /// The headers (the age header set for this answer).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The local response's details (`response.code_details`).
    pub details: Arc<str>,
}

impl MemoAnswer {
    /// The answer as a filter's local response (for callers that take one).
    pub fn to_local(&self) -> LocalResponse {
        LocalResponse {
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: self.body.to_vec(),
            details: self.details.to_string(),
            grpc_status: None,
        }
    }
}

/// The memos of one attachment on one worker, by the `:path` they were recorded for (empty: memos that do
/// not depend on the path).
#[derive(Default)]
pub struct MemoTable {
    by_path: HashMap<Bytes, Vec<Memo>, ahash::RandomState>,
    entries: usize,
    bytes: usize,
    seq: u64,
}

struct Memo {
    route: Arc<str>,
    /// It may answer before the gateway's request policy runs ([`MemoTable::answer_early`]).
    early: bool,
    draft: Box<MemoDraft>,
    answer: MemoAnswer,
    /// The age header, its origin, and the value `answer` holds now.
    age: Option<(HeaderName, Instant, u64)>,
    /// The shared data version at which the memo's keys were last found unchanged.
    checked: u32,
    bytes: usize,
    seq: u64,
}

impl Memo {
    /// Whether `request` agrees with every input and property this memo was recorded with.
    fn agrees(&self, request: &impl RequestView, info: Option<&RequestInfo>) -> bool {
        let draft = &self.draft;
        draft.inputs.iter().all(|(input, values)| input.matches(request, values))
            && (draft.properties.is_empty()
                || match info {
                    Some(info) => info.live.with_properties(|set| {
                        draft.properties.iter().all(|(name, value)| set.get(name) == value.as_ref())
                    }),
                    // Before the chain no filter has set a property.
                    None => draft.properties.iter().all(|(_, value)| value.is_none()),
                })
    }
}

impl MemoTable {
    /// How many memos it holds.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The memoized answer to a request without a body on `route` whose headers, as this filter gets them, are
    /// `headers`, if one holds; its counters are incremented. A memo that matches but no longer holds is dropped.
    pub fn answer(&mut self, headers: &Headers, info: &RequestInfo) -> Option<MemoAnswer> {
        self.find(headers, Some(info), &info.route, false)
    }

    /// [`MemoTable::answer`] for a request that has not been through the gateway's request policy, for the first
    /// filter of its route's chain: only memos that depend on nothing the policy sets (and on no property)
    /// answer it, since the filter would have seen the same values.
    pub fn answer_early(&mut self, request: &ClientRequest<'_>, route: &str) -> Option<MemoAnswer> {
        self.find(request, None, route, true)
    }

    fn find(
        &mut self,
        request: &impl RequestView,
        info: Option<&RequestInfo>,
        route: &str,
        early: bool,
    ) -> Option<MemoAnswer> {
        if self.entries == 0 {
            return None;
        }
        let path = request.pseudo(b":path").unwrap_or_default();
        let (key, at) = [path, b""].into_iter().find_map(|key| {
            let memos = self.by_path.get(key)?;
            let at = memos.iter().position(|m| *m.route == *route && (m.early || !early) && m.agrees(request, info))?;
            Some((key, at))
        })?;
        let memos = self.by_path.get_mut(key)?;
        let memo = &mut memos[at];
        let now = Instant::now();
        let draft = &memo.draft;
        let version = draft.host.data.version();
        let fresh = now < draft.until
            && (version == memo.checked || draft.host.data.unchanged(&draft.vm_id, &draft.shared_data));
        if !fresh {
            self.remove(key, at);
            return None;
        }
        memo.checked = version;
        for (counter, delta) in &draft.counters {
            counter.inc_by(*delta);
        }
        draft.answers.inc();
        if let Some((name, origin, shown)) = &mut memo.age {
            let age = now.saturating_duration_since(*origin).as_secs();
            if age != *shown {
                memo.answer.headers.insert(name.clone(), HeaderValue::from(age));
                *shown = age;
            }
        }
        Some(memo.answer.clone())
    }

    /// Keeps `response`, the local response a filter sent on `route` after declaring `draft`. `first`: the filter
    /// is the first of its chain, and `proxied`: the route goes upstream (its request policy ran before the
    /// filter), which decide whether the memo may answer early.
    pub fn insert(
        &mut self,
        draft: Box<MemoDraft>,
        route: Arc<str>,
        response: &LocalResponse,
        first: bool,
        proxied: bool,
    ) {
        let values_bytes: usize = draft.inputs.iter().map(|(_, v)| v.byte_size()).sum::<usize>()
            + draft.properties.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>();
        let bytes = response.body.len()
            + response.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + values_bytes
            + 256;
        let now = Instant::now();
        if bytes > MAX_BYTES / 4 || draft.until <= now {
            return;
        }
        let (status, mut headers, body) = crate::proxy::filters::local_response(response);
        let age = match &draft.age {
            Some((name, origin)) => {
                let Ok(name) = HeaderName::from_bytes(name) else { return };
                let age = now.saturating_duration_since(*origin).as_secs();
                headers.insert(name.clone(), HeaderValue::from(age));
                Some((name, *origin, age))
            }
            None => None,
        };
        let answer = MemoAnswer { status, headers, body, details: response.details.as_str().into() };
        let early = first
            && draft.properties.iter().all(|(_, value)| value.is_none())
            && (!proxied
                || draft.inputs.iter().all(|(input, _)| match input {
                    Input::Header(name) => !crate::proxy::headers::set_by_policy(name),
                    Input::Pseudo(_) => true,
                }));
        let key = draft
            .inputs
            .iter()
            .find_map(|(input, values)| match (input, values) {
                (Input::Pseudo(name), Values::Pseudo(Some(path))) if name.as_ref() == b":path" => Some(path.clone()),
                _ => None,
            })
            .unwrap_or_default();
        // The same request memoized again replaces its memo.
        if let Some(at) = self.by_path.get(&key).and_then(|memos| {
            memos.iter().position(|m| {
                m.route == route && m.draft.inputs == draft.inputs && m.draft.properties == draft.properties
            })
        }) {
            self.remove(&key, at);
        }
        while self.entries >= MAX_ENTRIES || self.bytes + bytes > MAX_BYTES {
            self.evict_oldest();
        }
        self.seq += 1;
        let checked = draft.host.data.version().wrapping_sub(1);
        let memo = Memo { route, early, draft, answer, age, checked, bytes, seq: self.seq };
        self.by_path.entry(key).or_default().push(memo);
        self.entries += 1;
        self.bytes += bytes;
    }

    fn remove(&mut self, key: &[u8], at: usize) {
        let Some(memos) = self.by_path.get_mut(key) else { return };
        let memo = memos.swap_remove(at);
        if memos.is_empty() {
            self.by_path.remove(key);
        }
        self.entries -= 1;
        self.bytes -= memo.bytes;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .by_path
            .iter()
            .flat_map(|(key, memos)| memos.iter().enumerate().map(move |(at, m)| (m.seq, key.clone(), at)))
            .min_by_key(|(seq, _, _)| *seq);
        match oldest {
            Some((_, key, at)) => self.remove(&key, at),
            None => {
                self.entries = 0;
                self.bytes = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
