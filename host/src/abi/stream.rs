//! What an HTTP context sees through hostcalls: its header maps (pseudo-headers included), the body chunk
//! of the current callback, and the actions it asked for (a local response, a close).

pub use super::header_map::Headers;

/// A header map the guest sent, as ordered pairs (lower-case keys, duplicates kept): local responses and
/// callout requests. The maps a stream carries are [`Headers`].
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a stream is, which decides what its hostcalls may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Phase {
    /// Request headers callback: request headers writable.
    #[default]
    RequestHeaders,
    /// Request body callbacks.
    RequestBody,
    /// Request trailers callback (and while paused from it): request trailers writable.
    RequestTrailers,
    /// Response headers callback: response headers writable.
    ResponseHeaders,
    /// Response body callbacks.
    ResponseBody,
    /// Response trailers callback (and while paused from it): response trailers writable.
    ResponseTrailers,
    /// `on_log` and later: everything read-only.
    Log,
}

/// A response a filter asked the host to send instead of the normal flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Pairs,
    /// Body.
    pub body: Vec<u8>,
    /// Free text for logs (response code details).
    pub details: String,
    /// gRPC status, when 0..=16.
    pub grpc_status: Option<u32>,
}

/// Facts about a request that properties expose (`source.address`, `request.protocol`, ...). One is shared
/// (behind an `Arc`) by every HTTP context of a request and by the proxy; what changes while the stream
/// runs is in [`live`](RequestInfo::live).
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The client's address.
    pub source: std::net::SocketAddr,
    /// The listener's local address.
    pub destination: std::net::SocketAddr,
    /// Whether the client used TLS.
    pub tls: bool,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    /// When the request arrived.
    pub time: std::time::SystemTime,
    /// The route's name.
    pub route: std::sync::Arc<str>,
    /// The route's cluster, for proxied routes.
    pub cluster: Option<std::sync::Arc<str>>,
    /// The connection's id.
    pub connection_id: u64,
    /// When the request arrived, on the monotonic clock (for `request.duration`).
    pub started: std::time::Instant,
    /// The SNI name the client sent (TLS connections that sent one).
    pub server_name: Option<std::sync::Arc<str>>,
    /// The TLS version of the connection (`TLSv1.2`, `TLSv1.3`), for TLS connections.
    pub tls_version: Option<&'static str>,
    /// What the proxy learns while the stream runs, and what filters ask of it.
    pub live: std::sync::Arc<LiveFacts>,
}

/// The parts of a request's facts that change while it runs: body bytes so far, the upstream endpoint once
/// chosen, the response's code details, the duration once the stream is over; and the route-cache mark
/// `clear_route_cache` leaves for the proxy. Written by the proxy (and that one hostcall), read by
/// properties; plain atomics, so neither side waits on the other.
#[derive(Debug, Default)]
pub struct LiveFacts {
    request_body_bytes: std::sync::atomic::AtomicU64,
    response_body_bytes: std::sync::atomic::AtomicU64,
    /// The duration in nanoseconds plus one once the stream is over (0: not yet).
    duration_nanos: std::sync::atomic::AtomicU64,
    route_cache_cleared: std::sync::atomic::AtomicBool,
    upstream: std::sync::OnceLock<std::sync::Arc<str>>,
    rerouted: std::sync::OnceLock<(std::sync::Arc<str>, Option<std::sync::Arc<str>>)>,
    code_details: std::sync::Mutex<Option<std::borrow::Cow<'static, str>>>,
    /// Values set with `proxy_set_property` by any filter of the request, by raw path: Envoy keeps them as the
    /// stream's filter state, which every filter of the stream reads (jwt-auth's consumer, read by quota).
    properties: std::sync::Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>,
}

impl LiveFacts {
    /// Runs `f` on the request's set properties.
    pub fn with_properties<T>(&self, f: impl FnOnce(&mut std::collections::HashMap<Vec<u8>, Vec<u8>>) -> T) -> T {
        let mut properties = self.properties.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut properties)
    }

    /// Counts request body bytes received from the client.
    pub fn add_request_body(&self, n: u64) {
        self.request_body_bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Request body bytes received so far.
    pub fn request_body_bytes(&self) -> u64 {
        self.request_body_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts response body bytes sent to the client.
    pub fn add_response_body(&self, n: u64) {
        self.response_body_bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Response body bytes sent so far.
    pub fn response_body_bytes(&self) -> u64 {
        self.response_body_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records how long the whole stream took (the first record stands).
    pub fn finish(&self, duration: std::time::Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX - 1).saturating_add(1);
        let _ = self.duration_nanos.compare_exchange(
            0,
            nanos,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// How long the whole stream took, once it is over.
    pub fn duration(&self) -> Option<std::time::Duration> {
        match self.duration_nanos.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            n => Some(std::time::Duration::from_nanos(n - 1)),
        }
    }

    /// A filter asked for the route to be chosen again (`clear_route_cache`).
    pub fn clear_route_cache(&self) {
        self.route_cache_cleared.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a filter asked for the route to be chosen again since the last call; clears the mark.
    pub fn take_route_cache_cleared(&self) -> bool {
        self.route_cache_cleared.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Records the upstream endpoint (`host:port`) the request goes to (the first record stands).
    pub fn set_upstream(&self, address: std::sync::Arc<str>) {
        let _ = self.upstream.set(address);
    }

    /// The upstream endpoint, once chosen.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.get().map(|a| &**a)
    }

    /// Records the route (and its cluster) chosen again after `clear_route_cache`.
    pub fn set_rerouted(&self, route: std::sync::Arc<str>, cluster: Option<std::sync::Arc<str>>) {
        let _ = self.rerouted.set((route, cluster));
    }

    /// The route (and its cluster) chosen again after `clear_route_cache`, if it was.
    pub fn rerouted(&self) -> Option<(&str, Option<&str>)> {
        self.rerouted.get().map(|(r, c)| (&**r, c.as_deref()))
    }

    /// Records why the response is what it is (`via_upstream`, `direct_response`, an error code, or a
    /// filter's local-response details); a later record replaces an earlier one.
    pub fn set_code_details(&self, details: impl Into<std::borrow::Cow<'static, str>>) {
        *self.code_details.lock().unwrap_or_else(|e| e.into_inner()) = Some(details.into());
    }

    /// The response's code details, once a response is decided.
    pub fn code_details(&self) -> Option<String> {
        self.code_details.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|d| d.to_string())
    }
}

/// One HTTP context's data.
#[derive(Debug, Default)]
pub struct StreamData {
    /// Facts about the request (absent in unit tests that build streams by hand).
    pub info: Option<std::sync::Arc<RequestInfo>>,
    /// Values set with `proxy_set_property` on a stream without request facts (streams built by hand in tests),
    /// by raw path; a request's streams keep them in [`LiveFacts`], shared by the whole filter chain.
    pub properties: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    /// The root context this stream belongs to.
    pub root: u32,
    /// Current phase.
    pub phase: Phase,
    /// Request headers with `:method`, `:scheme`, `:authority`, `:path`.
    pub request_headers: Headers,
    /// Response headers with `:status`.
    pub response_headers: Headers,
    /// The filter holds the request headers while its body callbacks run (`allow_on_headers_stop_iteration`):
    /// they stay writable there.
    pub request_headers_held: bool,
    /// The filter holds the response headers while its body callbacks run (`allow_on_headers_stop_iteration`):
    /// they stay writable there.
    pub response_headers_held: bool,
    /// The body bytes the current body callback sees; in a trailers callback, the body the filter held
    /// (paused on) when the trailers came, if it held one ([`StreamData::body_held`]).
    pub body: Vec<u8>,
    /// In the trailers phase: the filter holds a buffered body, readable and writable as the body buffer
    /// of that direction until it continues (Envoy keeps a buffering filter's body through its trailers).
    pub body_held: bool,
    /// The current body callback has `end_of_stream = true`: the stream has no trailers, and the filter may
    /// create them (Envoy's `addDecodedTrailers` / `addEncodedTrailers`). Cleared when the callback returns.
    pub final_body: bool,
    /// Request trailers: `None` until they reach this filter or it creates them in its final request body
    /// callback.
    pub request_trailers: Option<Headers>,
    /// Response trailers, as for the request.
    pub response_trailers: Option<Headers>,
    /// A local response asked for (the first one wins; later ones are ignored).
    pub local_response: Option<LocalResponse>,
    /// `proxy_close_stream` was called.
    pub close: bool,
    /// The filter declared the local response it sends from `on_request_headers` memoizable
    /// (`weir.memoize_response`).
    pub memo: Option<Box<super::memo::MemoDraft>>,
    /// `proxy_continue_stream(HTTP_REQUEST)` was called (while the request is paused).
    pub resume_request: bool,
    /// `proxy_continue_stream(HTTP_RESPONSE)` was called (while the response is paused).
    pub resume_response: bool,
    /// What the plugin declared its streams use (`weir.declare_stream_needs`), as it was when this one began.
    pub needs: weir_sdk::abi::StreamNeeds,
}

impl StreamData {
    /// The value set with `proxy_set_property` under the raw `path` by any filter of this request.
    pub fn property(&self, path: &[u8]) -> Option<Vec<u8>> {
        match &self.info {
            Some(info) => info.live.with_properties(|properties| properties.get(path).cloned()),
            None => self.properties.get(path).cloned(),
        }
    }
}

/// A header map the guest sent (serialized pairs), keys lower-cased as they enter the host.
pub fn pairs_from_guest(bytes: &[u8]) -> Result<Pairs, weir_sdk::abi::PairsError> {
    Ok(weir_sdk::abi::decode_pairs(bytes)?.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_vec())).collect())
}

/// Finds the first value of `key` (compared case-insensitively).
pub fn first_value<'a>(pairs: &'a Pairs, key: &[u8]) -> Option<&'a [u8]> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_slice())
}

/// The value of a pseudo-header (`:path`, `:status`, ...), matched exactly.
pub fn pseudo<'a>(pairs: &'a Pairs, name: &[u8]) -> Option<&'a [u8]> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}
