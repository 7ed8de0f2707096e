//! The bridge between HTTP messages and the filter chain: the maps filters see (hyper's header map plus
//! the pseudo-headers, no copy of the headers) in, changed requests and responses out (untouched ones as
//! they were).

use crate::abi::stream::{Headers, LocalResponse, Pairs};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// The request as filters see it: `:authority`, `:path`, `:method`, `:scheme`, then the headers.
///
/// The headers move into the view (no copy); [`apply_request`] gives them back.
pub fn request_headers(parts: &mut http::request::Parts, authority: &[u8], tls: bool) -> Headers {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    Headers::request(authority, path, &parts.method, tls, std::mem::take(&mut parts.headers))
}

/// The response as filters see it: `:status`, then the headers (moved in; [`apply_response`] gives them
/// back).
pub fn response_headers(status: StatusCode, headers: HeaderMap) -> Headers {
    Headers::response(status, headers)
}

/// Headers from pairs, pseudo-headers and invalid entries left out.
fn headers_from(pairs: &Pairs) -> HeaderMap {
    Headers::from_pairs(pairs.iter().map(|(k, v)| (&k[..], &v[..]))).into_map()
}

/// Applies the filters' view back to the request: method, path (and query), Host, headers. A request no
/// filter changed gets its headers back as they were.
pub fn apply_request(parts: &mut http::request::Parts, view: Headers) {
    if !view.changed() {
        parts.headers = view.into_map();
        return;
    }
    // Only the pseudo-headers a filter changed are parsed again (most filters change headers only).
    let path_now = parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes();
    // The authority the view was built from: the Host header, else the URI's (`request_headers`' callers).
    let host_now = match view.map().get(http::header::HOST) {
        Some(h) => Some(h.as_bytes()),
        None => parts.uri.authority().map(|a| a.as_str().as_bytes()),
    };
    let (method, path, authority) = (
        view.pseudo(b":method")
            .filter(|m| *m != parts.method.as_str().as_bytes())
            .and_then(|m| Method::from_bytes(m).ok()),
        view.pseudo(b":path").filter(|p| *p != path_now).and_then(|p| http::uri::PathAndQuery::try_from(p).ok()),
        view.pseudo(b":authority").filter(|a| Some(*a) != host_now).and_then(|a| HeaderValue::from_bytes(a).ok()),
    );
    let mut headers = view.into_map();
    if let Some(m) = method {
        parts.method = m;
    }
    if let Some(p) = path {
        parts.uri = http::Uri::from(p);
    }
    if let Some(a) = authority {
        headers.insert(http::header::HOST, a);
    }
    parts.headers = headers;
}

/// Applies the filters' view back to a response: status and headers. A response no filter changed gets its
/// headers back as they were.
pub fn apply_response(status: &mut StatusCode, headers: &mut HeaderMap, view: Headers) {
    if view.changed() {
        if let Some(s) = view.pseudo(b":status").and_then(|s| StatusCode::from_bytes(s).ok()) {
            *status = s;
        }
    }
    *headers = view.into_map();
}

/// A local response as an HTTP response head and body.
pub fn local_response(local: &LocalResponse) -> (StatusCode, HeaderMap, Bytes) {
    let status = StatusCode::from_u16(local.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = headers_from(&local.headers);
    if !local.body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    if let Some(grpc) = local.grpc_status {
        if let Ok(v) = HeaderValue::from_str(&grpc.to_string()) {
            headers.insert(HeaderName::from_static("grpc-status"), v);
        }
    }
    (status, headers, Bytes::from(local.body.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_applies_pseudo_headers() {
        let req = http::Request::builder()
            .method("GET")
            .uri("/a?b=1")
            .header("host", "x.test")
            .header("x-a", "1")
            .body(())
            .unwrap();
        let (mut parts, _) = req.into_parts();
        let view = request_headers(&mut parts, b"x.test", false);
        let pairs: Vec<_> = view.iter().take(2).collect();
        assert_eq!(pairs, [(&b":authority"[..], &b"x.test"[..]), (&b":path"[..], &b"/a?b=1"[..])]);
        apply_request(&mut parts, view);
        assert_eq!(parts.uri, "/a?b=1", "untouched");
        assert_eq!(parts.headers.len(), 2, "the headers are back");
        let mut view = request_headers(&mut parts, b"x.test", false);
        view.replace(b":path", b"/rewritten?c=2");
        view.replace(b":method", b"POST");
        view.add(b"x-new", b"yes");
        view.add(b"bad header", b"dropped");
        apply_request(&mut parts, view);
        assert_eq!(parts.method, Method::POST);
        assert_eq!(parts.uri, "/rewritten?c=2");
        assert_eq!(parts.headers["host"], "x.test");
        assert_eq!(parts.headers["x-new"], "yes");
        assert_eq!(parts.headers["x-a"], "1");
        assert_eq!(parts.headers.len(), 3);
    }

    #[test]
    fn a_header_change_leaves_the_pseudo_headers_as_they_were() {
        let req = http::Request::builder().uri("http://x.test/a?b=1").header("x-a", "1").body(()).unwrap();
        let (mut parts, _) = req.into_parts();
        let mut view = request_headers(&mut parts, b"x.test", false);
        view.add(b"x-new", b"yes");
        apply_request(&mut parts, view);
        // Not parsed again: the absolute form stays, and no Host header is made from the unchanged `:authority`.
        assert_eq!(parts.uri, "http://x.test/a?b=1");
        assert_eq!(parts.method, Method::GET);
        assert_eq!(parts.headers.get("host"), None);
        assert_eq!(parts.headers["x-new"], "yes");
        let mut view = request_headers(&mut parts, b"x.test", false);
        view.replace(b":authority", b"y.test");
        apply_request(&mut parts, view);
        assert_eq!(parts.headers["host"], "y.test", "a changed authority becomes the Host header");
    }
}
