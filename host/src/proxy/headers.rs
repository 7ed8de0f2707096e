//! Header policy on the way through: hop-by-hop removal, forwarding headers, request ids and W3C trace
//! context.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rand::RngCore;
use std::net::IpAddr;

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Set on a response that a route's fallback served: why the route's cluster did not (`no_healthy_endpoint`, `circuit_open`).
pub static X_WEIR_FALLBACK: HeaderName = HeaderName::from_static("x-weir-fallback");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop headers of RFC 9110 section 7.6.1 (and two legacy ones), `te` aside. `trailer` is not
/// one: it declares the trailer fields end to end (section 6.6.2), which HTTP/1.1 peers need to get them.
pub(crate) static HOP_BY_HOP: [&HeaderName; 7] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

/// Whether the gateway's request policy on a proxied route may set, change or remove header `name` before
/// the filters see the request: the hop-by-hop headers (and `te`), `host`, the forwarding headers, the request
/// id and `traceparent`. Every other header reaches the first filter as the client sent it, unless the client's
/// `Connection` header names it ([`connection_names_headers`]).
pub fn set_by_policy(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name)
        || [&header::TE, &header::HOST, &X_FORWARDED_FOR, &X_FORWARDED_PROTO, &X_REQUEST_ID, &TRACEPARENT]
            .contains(&name)
}

/// Whether the `Connection` header names headers to remove (anything but `keep-alive` and `close`).
pub fn connection_names_headers(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| crate::http1::fields::names_fields(v.as_bytes()))
}

/// Removes the hop-by-hop headers of RFC 9110 section 7.6.1, and every header the `Connection` header
/// names. `te: trailers` is kept: it is how gRPC clients ask for trailers end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names (comparisons, no hashing) finds which are present; only those are removed.
    // Most requests carry none, and most responses only `connection: keep-alive`.
    let (mut found, mut te) = (0u8, false);
    for name in headers.keys() {
        if *name == header::TE {
            te = true;
        } else if let Some(i) = HOP_BY_HOP.iter().position(|h| *h == name) {
            found |= 1 << i;
        }
    }
    if found & 1 != 0 {
        // HOP_BY_HOP[0] is `connection`: the headers it names go too. The usual `keep-alive` or `close`
        // names none, and then nothing is allocated.
        let mut named: Vec<HeaderName> = Vec::new();
        for line in headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok()) {
            for token in line.split(',').map(str::trim) {
                if token.is_empty() || token.eq_ignore_ascii_case("close") || token.eq_ignore_ascii_case("keep-alive") {
                    continue; // not header names (`keep-alive` is in the list below anyway)
                }
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
        for name in named {
            te |= name == header::TE;
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if found & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    if te && !headers.get(header::TE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers")) {
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
    // A version 4 UUID from the thread's id generator (see IDS): unique, not secret; drawing it from `uuid`'s
    // own ChaCha-based generator cost three times as much.
    let mut bytes = [0u8; 16];
    IDS.with_borrow_mut(|rng| rng.fill_bytes(&mut bytes));
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Appends the client address to `x-forwarded-for` (joining repeated headers into one) and sets
/// `x-forwarded-proto` to the scheme the client used with us.
pub fn set_forwarded(headers: &mut HeaderMap, client: IpAddr, tls: bool) {
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(if tls { "https" } else { "http" }));
    // One lookup for the usual case, a request without the field.
    if let http::header::Entry::Vacant(e) = headers.entry(X_FORWARDED_FOR.clone()) {
        e.insert(address_value(client));
        return;
    }
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
}

/// The client address as a header value. A worker sees the same few clients again and again: the last
/// one's text is kept per thread, so the common case formats nothing.
fn address_value(client: IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((ip, v)) = last.as_ref().filter(|(ip, _)| *ip == client) {
            debug_assert_eq!(*ip, client);
            return v.clone();
        }
        let v = HeaderValue::from_maybe_shared(bytes::Bytes::from(client.to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        *last = Some((client, v.clone()));
        v
    })
}

/// Continues the client's W3C trace (same trace id and flags, the gateway's own span as parent) or
/// starts a new one (unsampled) when the client sent none or an invalid one.
pub fn propagate_traceparent(headers: &mut HeaderMap) {
    // "00-" trace(32) "-" parent(16) "-" flags(2): 55 bytes, built on the stack.
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    IDS.with_borrow_mut(|rng| {
        match headers.get(&TRACEPARENT).filter(|v| valid_traceparent(v.as_bytes())) {
            Some(v) => {
                let v = v.as_bytes();
                out[3..35].copy_from_slice(&v[3..35]);
                out[53..55].copy_from_slice(&v[53..55]);
            }
            None => {
                let mut trace = [0u8; 16];
                rng.fill_bytes(&mut trace);
                hex_into(&trace, &mut out[3..35]);
            }
        }
        let mut span = [0u8; 8];
        rng.fill_bytes(&mut span);
        hex_into(&span, &mut out[36..52]);
    });
    if let Ok(v) = HeaderValue::from_bytes(&out) {
        headers.insert(TRACEPARENT.clone(), v);
    }
}

thread_local! {
    /// Trace and span ids must be unique and unpredictable enough not to collide, not secret: a small fast
    /// generator per thread (xoshiro), seeded once from the OS-seeded `ThreadRng`, costs a fraction of drawing
    /// each id from ChaCha12 (about 1.4k instructions per request went to `propagate_traceparent` before).
    static IDS: std::cell::RefCell<rand::rngs::SmallRng> =
        std::cell::RefCell::new(rand::SeedableRng::from_rng(&mut rand::rng()));
}

/// Version 00 traceparent with non-zero ids, lower-case hex (later versions may append fields).
fn valid_traceparent(v: &[u8]) -> bool {
    let hex = |s: &[u8]| s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    let nonzero = |s: &[u8]| s.iter().any(|c| *c != b'0');
    v.len() >= 55
        && hex(&v[0..2])
        && &v[0..2] != b"ff"
        && (v.len() == 55 || (&v[0..2] != b"00" && v[55] == b'-'))
        && v[2] == b'-'
        && v[35] == b'-'
        && v[52] == b'-'
        && hex(&v[3..35])
        && nonzero(&v[3..35])
        && hex(&v[36..52])
        && nonzero(&v[36..52])
        && hex(&v[53..55])
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
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

        // One header at a time: each is found by the quick scan on its own; `trailer` is end to end.
        for (name, value, kept) in [
            ("te", "trailers", true),
            ("te", "deflate", false),
            ("trailer", "x-checksum", true),
            ("upgrade", "h2c", false),
            ("proxy-connection", "keep-alive", false),
            ("proxy-authenticate", "Basic", false),
            ("proxy-authorization", "Basic x", false),
            ("transfer-encoding", "chunked", false),
            ("keep-alive", "timeout=5", false),
            ("connection", "close", false),
            ("x-plain", "1", true),
        ] {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(name), value.parse().unwrap());
            strip_hop_by_hop(&mut h);
            assert_eq!(h.get(name).is_some(), kept, "{name}: {value}");
        }
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
        // Generated ids are distinct version 4 UUIDs.
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| request_id(&HeaderMap::new()).to_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(20) {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!((uuid.get_version_num(), id.len()), (4, 36), "{id}");
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
        propagate_traceparent(&mut h);
        let out = h["traceparent"].to_str().unwrap().to_string();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && out.ends_with("-01"), "{out}");
        assert_ne!(out, incoming, "the gateway's span becomes the parent");
        assert!(valid_traceparent(out.as_bytes()));

        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let mut h = HeaderMap::new();
            h.insert("traceparent", bad.parse().unwrap());
            propagate_traceparent(&mut h);
            let out = h["traceparent"].to_str().unwrap();
            assert!(!out.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{bad} was continued");
            assert!(valid_traceparent(out.as_bytes()) && out.ends_with("-00"), "fresh trace for {bad}: {out}");
        }
        // A later version with extra fields is continued.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert!(valid_traceparent(future.as_bytes()));
    }
}
