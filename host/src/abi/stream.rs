//! What an HTTP context sees through hostcalls: its header maps (pseudo-headers included), the body chunk
//! of the current callback, and the actions it asked for (a local response, a close).

/// A header map as the ABI sees it: ordered pairs, lower-case keys, duplicates kept.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a stream is, which decides what its hostcalls may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Phase {
    /// Request headers callback: request headers writable.
    #[default]
    RequestHeaders,
    /// Request body callbacks.
    RequestBody,
    /// Response headers callback: response headers writable.
    ResponseHeaders,
    /// Response body callbacks.
    ResponseBody,
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

/// Facts about a request that properties expose (`source.address`, `request.protocol`, ...).
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
}

/// One HTTP context's data.
#[derive(Debug, Default)]
pub struct StreamData {
    /// Facts about the request (absent in unit tests that build streams by hand).
    pub info: Option<std::sync::Arc<RequestInfo>>,
    /// Values set with `proxy_set_property` on this stream, by raw path.
    pub properties: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    /// The root context this stream belongs to.
    pub root: u32,
    /// Current phase.
    pub phase: Phase,
    /// Request headers with `:method`, `:scheme`, `:authority`, `:path`.
    pub request_headers: Pairs,
    /// Response headers with `:status`.
    pub response_headers: Pairs,
    /// The body bytes the current body callback sees.
    pub body: Vec<u8>,
    /// A local response asked for (the first one wins; later ones are ignored).
    pub local_response: Option<LocalResponse>,
    /// `proxy_close_stream` was called.
    pub close: bool,
    /// `proxy_continue_stream(HTTP_REQUEST)` was called (while the request is paused).
    pub resume_request: bool,
    /// `proxy_continue_stream(HTTP_RESPONSE)` was called (while the response is paused).
    pub resume_response: bool,
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

/// Replaces every value of `key` with one (appended if absent).
pub fn replace_value(pairs: &mut Pairs, key: &[u8], value: &[u8]) {
    let key = key.to_ascii_lowercase();
    match pairs.iter().position(|(k, _)| *k == key) {
        Some(first) => {
            pairs[first].1 = value.to_vec();
            let mut i = first + 1;
            while i < pairs.len() {
                if pairs[i].0 == key {
                    pairs.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        None => pairs.push((key, value.to_vec())),
    }
}

/// Removes every value of `key`.
pub fn remove_values(pairs: &mut Pairs, key: &[u8]) {
    pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[(&str, &str)]) -> Pairs {
        items.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn map_edits_table() {
        let mut m = p(&[(":path", "/"), ("a", "1"), ("b", "2"), ("a", "3")]);
        replace_value(&mut m, b"A", b"x");
        assert_eq!(m, p(&[(":path", "/"), ("a", "x"), ("b", "2")]));
        replace_value(&mut m, b"c", b"new");
        assert_eq!(first_value(&m, b"C"), Some(&b"new"[..]));
        remove_values(&mut m, b"B");
        assert_eq!(m, p(&[(":path", "/"), ("a", "x"), ("c", "new")]));
        assert_eq!(first_value(&m, b"missing"), None);
    }
}
