//! A memoized answer as a filter declared it (the foreign function `weir.memoize_response`, recorded by
//! `hostcalls::memoize`): what the local response it sent from `on_request_headers` depends on, with the values
//! recorded at the call, and how long the host may send it again by itself. The worker keeps these
//! ([`crate::filter::memo`]) and answers the requests that agree on every input without entering the VM.

use super::header_map::Headers;
use super::shared::HostShared;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a memo answers before the next matching request goes to the filter again, unless it asks otherwise.
pub const DEFAULT_REVALIDATE: Duration = Duration::from_millis(1000);
/// The longest a filter may ask for.
pub const MAX_REVALIDATE: Duration = Duration::from_secs(60);
/// The most headers, properties and shared data keys one memo may depend on, together.
pub const MAX_INPUTS: usize = 64;

/// A request header an answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Input {
    /// A pseudo-header (`:method`, `:path`, `:authority`, `:scheme`), lower case.
    Pseudo(Bytes),
    /// A header.
    Header(HeaderName),
}

/// What an input was when the filter decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// A pseudo-header's value (`None`: absent).
    Pseudo(Option<Bytes>),
    /// Every value of a header, in order (empty: absent).
    Header(Vec<HeaderValue>),
}

/// A request as a memo reads it: pseudo-headers and headers.
pub trait RequestView {
    /// A pseudo-header's value.
    fn pseudo(&self, name: &[u8]) -> Option<&[u8]>;
    /// The headers.
    fn headers(&self) -> &HeaderMap;
}

impl RequestView for Headers {
    fn pseudo(&self, name: &[u8]) -> Option<&[u8]> {
        Headers::pseudo(self, name)
    }
    fn headers(&self) -> &HeaderMap {
        self.map()
    }
}

/// A request as the client sent it, as the first filter of a chain would see it: before the gateway's request
/// policy, whose changes a memo answered here must not depend on ([`crate::filter::memo`]).
pub struct ClientRequest<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The path and query.
    pub path: &'a str,
    /// The authority the filter would see (the route's `host_rewrite`, else `Host`, else the URI's).
    pub authority: &'a [u8],
    /// Whether the client came over TLS.
    pub tls: bool,
    /// The client's headers.
    pub headers: &'a HeaderMap,
}

impl RequestView for ClientRequest<'_> {
    fn pseudo(&self, name: &[u8]) -> Option<&[u8]> {
        match name {
            b":method" => Some(self.method.as_str().as_bytes()),
            b":path" => Some(self.path.as_bytes()),
            b":authority" => Some(self.authority),
            b":scheme" => Some(if self.tls { b"https" } else { b"http" }),
            _ => None,
        }
    }
    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

impl Input {
    /// The input named `name` (any case): `None` for a name no request header can have.
    pub fn parse(name: &str) -> Option<Input> {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(':') {
            return (lower.len() > 1).then(|| Input::Pseudo(Bytes::from(lower)));
        }
        HeaderName::from_bytes(lower.as_bytes()).ok().map(Input::Header)
    }

    /// This input's values in `request`.
    pub fn values(&self, request: &impl RequestView) -> Values {
        match self {
            Input::Pseudo(name) => Values::Pseudo(request.pseudo(name).map(Bytes::copy_from_slice)),
            Input::Header(name) => Values::Header(request.headers().get_all(name).iter().cloned().collect()),
        }
    }

    /// Whether `request` holds exactly `recorded` for this input (no allocation).
    pub fn matches(&self, request: &impl RequestView, recorded: &Values) -> bool {
        match (self, recorded) {
            (Input::Pseudo(name), Values::Pseudo(value)) => request.pseudo(name) == value.as_deref(),
            (Input::Header(name), Values::Header(values)) => request.headers().get_all(name).iter().eq(values.iter()),
            _ => false,
        }
    }
}

impl Values {
    /// Bytes held.
    pub fn byte_size(&self) -> usize {
        match self {
            Values::Pseudo(value) => value.as_ref().map_or(0, Bytes::len),
            Values::Header(values) => values.iter().map(HeaderValue::len).sum(),
        }
    }
}

/// What a filter declared about the local response it is sending, with the values recorded at the call.
pub struct MemoDraft {
    /// Request headers and their values.
    pub inputs: Vec<(Input, Values)>,
    /// Properties set by filters of the request (raw one-segment paths) and their values (`None`: not set).
    pub properties: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The process's shared state (shared data for the checks below, metrics).
    pub host: Arc<HostShared>,
    /// The VM's `vm_id`, under which the shared data keys live.
    pub vm_id: Arc<str>,
    /// Shared data keys and their CAS at the call (0: absent).
    pub shared_data: Vec<(Vec<u8>, u32)>,
    /// When the host stops answering by itself: the revalidation time or the expiry, whichever comes first.
    pub until: Instant,
    /// A response header to set to the seconds elapsed since the instant given.
    pub age: Option<(Vec<u8>, Instant)>,
    /// Counters to increment on each answer, with their deltas.
    pub counters: Vec<(Counter, u64)>,
    /// `weir_filter_memo_answers_total` for this module and route.
    pub answers: Counter,
}

impl std::fmt::Debug for MemoDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoDraft")
            .field("inputs", &self.inputs)
            .field("properties", &self.properties)
            .field("shared_data", &self.shared_data)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn request(pairs: &[(&str, &str)]) -> Headers {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        Headers::request(b"example.com", "/a?b=1", &Method::GET, false, map)
    }

    #[test]
    fn names_parse_to_inputs_or_are_refused() {
        let table: &[(&str, Option<Input>)] = &[
            (":path", Some(Input::Pseudo(Bytes::from_static(b":path")))),
            (":Authority", Some(Input::Pseudo(Bytes::from_static(b":authority")))),
            ("Accept", Some(Input::Header(HeaderName::from_static("accept")))),
            (":", None),
            ("", None),
            ("bad name", None),
        ];
        for (name, expect) in table {
            assert_eq!(&Input::parse(name), expect, "{name:?}");
        }
    }

    #[test]
    fn recorded_values_match_the_same_request_only() {
        let inputs: Vec<Input> =
            [":path", ":method", "accept", "cache-control"].iter().map(|n| Input::parse(n).expect("input")).collect();
        let first = request(&[("accept", "a"), ("accept", "b")]);
        let recorded: Vec<Values> = inputs.iter().map(|i| i.values(&first)).collect();
        // (request, matches the recorded values)
        let table = [
            (request(&[("accept", "a"), ("accept", "b")]), true),
            (request(&[("accept", "a"), ("accept", "b"), ("x-other", "ignored")]), true),
            (request(&[("accept", "b"), ("accept", "a")]), false),
            (request(&[("accept", "a")]), false),
            (request(&[("accept", "a"), ("accept", "b"), ("cache-control", "no-cache")]), false),
            (request(&[("accept", "ab")]), false),
        ];
        for (n, (headers, expect)) in table.iter().enumerate() {
            let matches = inputs.iter().zip(&recorded).all(|(i, v)| i.matches(headers, v));
            assert_eq!(matches, *expect, "row {n}");
        }
        // The client's request reads the same as the filter's view of it.
        let map = first.map().clone();
        let client = ClientRequest {
            method: &Method::GET,
            path: "/a?b=1",
            authority: b"example.com",
            tls: false,
            headers: &map,
        };
        assert!(inputs.iter().zip(&recorded).all(|(i, v)| i.matches(&client, v)));
        assert_eq!(client.pseudo(b":scheme"), first.pseudo(b":scheme"));
        assert_eq!(client.pseudo(b":authority"), first.pseudo(b":authority"));
    }
}
