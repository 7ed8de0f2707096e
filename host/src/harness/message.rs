//! What a test gives the harness (a [`Request`], a [`Response`]) and what it gets back (the
//! [`UpstreamRequest`] as it would go upstream, the [`ClientResponse`] as the client would get it).

use crate::abi::stream::{Headers, LocalResponse};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;

/// A request from a client, as the gateway would hand it to the filter chain.
///
/// ```
/// use weir::harness::Request;
///
/// let request = Request::post("/upload")
///     .authority("api.example.com")
///     .header("content-type", "text/plain")
///     .body("hello, ")
///     .body("world")
///     .trailer("x-checksum", "abc");
/// # let _ = request;
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authority: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<Vec<u8>>,
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) source: SocketAddr,
}

impl Request {
    /// A request with this method and path (`/path?query`), authority `example.com`, no headers, no body.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            authority: "example.com".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            trailers: Vec::new(),
            source: SocketAddr::from(([127, 0, 0, 1], 40000)),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Request {
        Request::new("POST", path)
    }

    /// The `:authority` (the Host header).
    pub fn authority(mut self, authority: &str) -> Request {
        self.authority = authority.to_string();
        self
    }

    /// Adds a header (names are lower-cased, as HTTP/2 and the filter maps have them).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Adds a body chunk: each chunk goes through the body callbacks on its own, as it would arrive.
    pub fn body(mut self, chunk: impl AsRef<[u8]>) -> Request {
        self.body.push(chunk.as_ref().to_vec());
        self
    }

    /// Adds a trailer: the request then ends with trailers (the last body callback has `end_of_stream = false`).
    pub fn trailer(mut self, name: &str, value: &str) -> Request {
        self.trailers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The client's address (`source.address`); default `127.0.0.1:40000`.
    pub fn source(mut self, address: SocketAddr) -> Request {
        self.source = address;
        self
    }
}

/// A response from the upstream (or the answer to a callout).
///
/// ```
/// use weir::harness::Response;
///
/// let response = Response::new(200).header("content-type", "application/json").body(r#"{"ok":true}"#);
/// # let _ = response;
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<Vec<u8>>,
    pub(crate) trailers: Vec<(String, String)>,
}

impl Response {
    /// A response with this status, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new(), trailers: Vec::new() }
    }

    /// `200 OK`.
    pub fn ok() -> Response {
        Response::new(200)
    }

    /// Adds a header (lower-cased).
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Adds a body chunk (each goes through the body callbacks on its own).
    pub fn body(mut self, chunk: impl AsRef<[u8]>) -> Response {
        self.body.push(chunk.as_ref().to_vec());
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: &str, value: &str) -> Response {
        self.trailers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The headers as a filter map: `:status` first.
    pub(crate) fn head(&self) -> Headers {
        let status = http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        Headers::response(status, header_map(&self.headers))
    }
}

/// A `HeaderMap` as text pairs, in its order.
fn map_pairs(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// Header pairs as a `HeaderMap`; panics (a test's mistake) on a name or value HTTP does not allow.
pub(crate) fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|e| panic!("header name {k:?}: {e}"));
        let value = HeaderValue::from_str(v).unwrap_or_else(|e| panic!("header {k}: value {v:?}: {e}"));
        map.append(name, value);
    }
    map
}

/// Pairs as a filter map (trailers).
pub(crate) fn pairs_headers(pairs: &[(String, String)]) -> Headers {
    Headers::from_pairs(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

/// A filter map as text pairs, pseudo-headers left out.
fn text_pairs(headers: &Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| !k.starts_with(b":"))
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn find_all<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

/// The request as the filters let it go upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// `:method`.
    pub method: String,
    /// `:path` (with the query).
    pub path: String,
    /// `:authority` (the Host header upstream).
    pub authority: String,
    /// The headers, in order, pseudo-headers left out.
    pub headers: Vec<(String, String)>,
    /// The body, every chunk that went on, concatenated.
    pub body: Vec<u8>,
    /// The body as it went on, chunk by chunk (a filter holding the body sends it in fewer, larger chunks).
    pub chunks: Vec<Vec<u8>>,
    /// The trailers (empty: none).
    pub trailers: Vec<(String, String)>,
}

impl UpstreamRequest {
    pub(crate) fn from_view(view: &Headers) -> UpstreamRequest {
        let pseudo =
            |name: &[u8]| view.pseudo(name).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        UpstreamRequest {
            method: pseudo(b":method"),
            path: pseudo(b":path"),
            authority: pseudo(b":authority"),
            headers: text_pairs(view),
            body: Vec::new(),
            chunks: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        find_all(&self.headers, name)
    }

    /// The first value of trailer `name`.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }

    /// The body as UTF-8 (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Who made the response the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The upstream (through the filters' response callbacks).
    Upstream,
    /// A filter's local response (`proxy_send_local_response`), with its details.
    LocalResponse(String),
    /// The gateway's error response: a filter failed (503 `filter_failed`) or held too much body (413).
    Error(String),
}

/// The response as the client would get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// The status.
    pub status: u16,
    /// The headers, in order (`content-type: text/plain` is added to a local response with a body and none).
    pub headers: Vec<(String, String)>,
    /// The body, every chunk that went to the client, concatenated.
    pub body: Vec<u8>,
    /// The body chunk by chunk, as it went to the client.
    pub chunks: Vec<Vec<u8>>,
    /// The trailers (empty: none).
    pub trailers: Vec<(String, String)>,
    /// Who made it.
    pub origin: Origin,
    /// Why the stream was reset after the headers, if it was: a filter answered, closed the stream or failed
    /// while the response body or trailers went through the chain (the client sees what `body` holds, then a
    /// reset: HTTP/2 `RST_STREAM`, HTTP/1.1 connection closed).
    pub reset: Option<String>,
}

impl ClientResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        find_all(&self.headers, name)
    }

    /// The first value of trailer `name`.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }

    /// The body as UTF-8 (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A filter's local response, turned into HTTP by the gateway's own code (`proxy::filters::local_response`).
    pub(crate) fn local(local: &LocalResponse) -> ClientResponse {
        let (status, headers, body) = crate::proxy::filters::local_response(local);
        let body = body.to_vec();
        ClientResponse {
            status: status.as_u16(),
            headers: map_pairs(&headers),
            chunks: if body.is_empty() { Vec::new() } else { vec![body.clone()] },
            body,
            trailers: Vec::new(),
            origin: Origin::LocalResponse(local.details.clone()),
            reset: None,
        }
    }

    /// The gateway's error response for `err`.
    pub(crate) fn error(err: &crate::error::ProxyError) -> ClientResponse {
        let response = err.to_response("-");
        let headers = map_pairs(response.headers());
        let body = response.body().to_vec();
        ClientResponse {
            status: response.status().as_u16(),
            headers,
            chunks: vec![body.clone()],
            body,
            trailers: Vec::new(),
            origin: Origin::Error(err.code().to_string()),
            reset: None,
        }
    }

    /// The upstream's response head as the filters left it.
    pub(crate) fn upstream(view: &Headers) -> ClientResponse {
        let status = view.pseudo(b":status").and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()).unwrap_or(0);
        ClientResponse {
            status,
            headers: text_pairs(view),
            body: Vec::new(),
            chunks: Vec::new(),
            trailers: Vec::new(),
            origin: Origin::Upstream,
            reset: None,
        }
    }

    /// Applies the response headers callbacks' view to a gateway-made response (local or direct).
    pub(crate) fn with_view(mut self, view: &Headers) -> ClientResponse {
        if view.changed() {
            if let Some(status) = view.pseudo(b":status").and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()) {
                self.status = status;
            }
            self.headers = text_pairs(view);
        }
        self
    }

    /// Its head as a filter map (for the response headers callbacks).
    pub(crate) fn head(&self) -> Headers {
        let status = http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        Headers::response(status, header_map(&self.headers))
    }

    /// The trailers from a filter map.
    pub(crate) fn set_trailers(&mut self, trailers: &Headers) {
        self.trailers = text_pairs(trailers);
    }
}

/// Text pairs of a filter map (callout answers, trailers).
pub(crate) fn pairs_of(headers: &Headers) -> Vec<(String, String)> {
    text_pairs(headers)
}
