//! The bridge between HTTP messages and the filter chain: pseudo-header pair lists in, changed requests and
//! responses out.

use crate::abi::stream::{pseudo, LocalResponse, Pairs};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// The request as filters see it: `:authority`, `:path`, `:method`, `:scheme`, then the headers.
pub fn request_pairs(parts: &http::request::Parts, authority: &[u8], tls: bool) -> Pairs {
    let mut pairs = Vec::with_capacity(parts.headers.len() + 4);
    pairs.push((b":authority".to_vec(), authority.to_vec()));
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    pairs.push((b":path".to_vec(), path.as_bytes().to_vec()));
    pairs.push((b":method".to_vec(), parts.method.as_str().as_bytes().to_vec()));
    pairs.push((b":scheme".to_vec(), if tls { b"https".to_vec() } else { b"http".to_vec() }));
    push_headers(&mut pairs, &parts.headers);
    pairs
}

/// The response as filters see it: `:status`, then the headers.
pub fn response_pairs(status: StatusCode, headers: &HeaderMap) -> Pairs {
    let mut pairs = Vec::with_capacity(headers.len() + 1);
    pairs.push((b":status".to_vec(), status.as_str().as_bytes().to_vec()));
    push_headers(&mut pairs, headers);
    pairs
}

fn push_headers(pairs: &mut Pairs, headers: &HeaderMap) {
    for (name, value) in headers {
        pairs.push((name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
}

/// Headers from pairs, pseudo-headers and invalid entries left out.
fn headers_from(pairs: &Pairs) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if k.first() == Some(&b':') {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
            headers.append(n, v);
        }
    }
    headers
}

/// Applies the filters' view back to the request: method, path (and query), Host, headers.
pub fn apply_request(parts: &mut http::request::Parts, pairs: &Pairs) {
    let mut headers = headers_from(pairs);
    if let Some(m) = pseudo(pairs, b":method").and_then(|m| Method::from_bytes(m).ok()) {
        parts.method = m;
    }
    if let Some(p) = pseudo(pairs, b":path").and_then(|p| http::uri::PathAndQuery::try_from(p).ok()) {
        parts.uri = http::Uri::from(p);
    }
    if let Some(a) = pseudo(pairs, b":authority").and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(http::header::HOST, a);
    }
    parts.headers = headers;
}

/// Applies the filters' view back to a response: status and headers.
pub fn apply_response(status: &mut StatusCode, headers: &mut HeaderMap, pairs: &Pairs) {
    if let Some(s) = pseudo(pairs, b":status").and_then(|s| StatusCode::from_bytes(s).ok()) {
        *status = s;
    }
    *headers = headers_from(pairs);
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
        let mut pairs = request_pairs(&parts, b"x.test", false);
        assert_eq!(pairs[0], (b":authority".to_vec(), b"x.test".to_vec()));
        assert_eq!(pairs[1], (b":path".to_vec(), b"/a?b=1".to_vec()));
        pairs[1].1 = b"/rewritten?c=2".to_vec();
        pairs[2].1 = b"POST".to_vec();
        pairs.push((b"x-new".to_vec(), b"yes".to_vec()));
        pairs.push((b"bad header".to_vec(), b"dropped".to_vec()));
        apply_request(&mut parts, &pairs);
        assert_eq!(parts.method, Method::POST);
        assert_eq!(parts.uri, "/rewritten?c=2");
        assert_eq!(parts.headers["host"], "x.test");
        assert_eq!(parts.headers["x-new"], "yes");
        assert_eq!(parts.headers["x-a"], "1");
        assert_eq!(parts.headers.len(), 3);
    }
}
