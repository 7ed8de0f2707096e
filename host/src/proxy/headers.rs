//! Header policy on the way through: hop-by-hop removal, forwarding headers, request ids and W3C trace
//! context.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rand::RngCore;
use std::net::IpAddr;

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes the hop-by-hop headers of RFC 9110 section 7.6.1, and every header the `Connection` header
/// names. `te: trailers` is kept: it is how gRPC clients ask for trailers end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(listed) = headers.get(header::CONNECTION).and_then(|v| v.to_str().ok()).map(str::to_owned) {
        for name in listed.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                headers.remove(name);
            }
        }
    }
    for name in [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ] {
        headers.remove(name);
    }
    let te_trailers = headers.get(header::TE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !te_trailers {
        headers.remove(header::TE);
    }
}

/// The request id to use: the client's `x-request-id` when it is sane (1 to 128 visible ASCII
/// characters), a fresh UUID v4 otherwise.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Appends the client address to `x-forwarded-for` (joining repeated headers into one) and sets
/// `x-forwarded-proto` to the scheme the client used with us.
pub fn set_forwarded(headers: &mut HeaderMap, client: IpAddr, tls: bool) {
    let mut chain = String::new();
    for v in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(s) = v.to_str() {
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(s.trim());
        }
    }
    if !chain.is_empty() {
        chain.push_str(", ");
    }
    chain.push_str(&client.to_string());
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(if tls { "https" } else { "http" }));
}

/// Continues the client's W3C trace (same trace id and flags, the gateway's own span as parent) or
/// starts a new one (unsampled) when the client sent none or an invalid one. Returns the trace id.
pub fn propagate_traceparent(headers: &mut HeaderMap) -> String {
    let mut rng = rand::rng();
    let mut span = [0u8; 8];
    rng.fill_bytes(&mut span);
    let (trace_id, flags) = match headers.get(&TRACEPARENT).and_then(|v| parse_traceparent(v.as_bytes())) {
        Some((trace, flags)) => (trace, flags),
        None => {
            let mut t = [0u8; 16];
            rng.fill_bytes(&mut t);
            (hex(&t), "00".to_string())
        }
    };
    let value = format!("00-{trace_id}-{}-{flags}", hex(&span));
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(TRACEPARENT.clone(), v);
    }
    trace_id
}

fn parse_traceparent(v: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = s.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let is_hex =
        |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    let valid = is_hex(version, 2)
        && version != "ff"
        && is_hex(trace, 32)
        && trace.bytes().any(|c| c != b'0')
        && is_hex(parent, 16)
        && parent.bytes().any(|c| c != b'0')
        && is_hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    valid.then(|| (trace.to_string(), flags.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "secret"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("te", "gzip"),
            ("x-kept", "yes"),
        ] {
            h.append(k, v.parse().unwrap());
        }
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);

        let mut h = HeaderMap::new();
        h.insert("te", "trailers".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.get("te").unwrap(), "trailers");
    }

    #[test]
    fn request_id_is_kept_when_sane() {
        for (given, kept) in [(Some("abc-123"), true), (Some(""), false), (Some("has space"), false), (None, false)] {
            let mut h = HeaderMap::new();
            if let Some(g) = given {
                h.insert("x-request-id", g.parse().unwrap());
            }
            let id = request_id(&h);
            assert_eq!(id == given.unwrap_or(""), kept, "{given:?}");
            assert!(!id.is_empty());
        }
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1".parse().unwrap());
        h.append("x-forwarded-for", "2.2.2.2".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        set_forwarded(&mut h, "127.0.0.1".parse().unwrap(), false);
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
    }

    #[test]
    fn traceparent_continues_or_starts() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert("traceparent", incoming.parse().unwrap());
        let trace = propagate_traceparent(&mut h);
        assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        let out = h["traceparent"].to_str().unwrap();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && out.ends_with("-01"), "{out}");
        assert_ne!(out, incoming, "the gateway's span becomes the parent");

        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let mut h = HeaderMap::new();
            h.insert("traceparent", bad.parse().unwrap());
            let trace = propagate_traceparent(&mut h);
            assert_ne!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert!(parse_traceparent(h["traceparent"].as_bytes()).is_some(), "fresh trace for {bad}");
        }
    }
}
