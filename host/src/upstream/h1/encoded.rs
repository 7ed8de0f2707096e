//! An upstream response's fields kept as the lines they are written with to an HTTP/1.1 client, when nothing on
//! the way reads them: no filter on the route and a client on HTTP/1.x (`ResponseFields::Encoded`).
//!
//! Building a `HeaderMap` of the fields (a `HeaderName` and a shared `HeaderValue` each, hashed in) only to encode
//! it again cost about 2.7k more instructions than this (a proxied request: 26.7k before, 24.0k after; callgrind,
//! docs/benchmarks.md, "Response fields as lines"). Here
//! the lines are copied once, names in lower case, and the gateway's response policy is applied on the way: the
//! hop-by-hop fields of `proxy::headers::strip_hop_by_hop` and the upstream's `x-request-id` (the gateway sets its
//! own) are left out. A head with a field only the map's rules decide on (below) is built into a map instead.

use crate::http1::decode::Side;
use crate::http1::fields::{names_fields, Field, Framing};

/// The fields of a response head, as they go to the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EncodedFields {
    /// `name: value\r\n` for each field passed on, in the upstream's order, names in lower case.
    pub lines: Vec<u8>,
    /// The `content-length` among them: the answer's framing, as if it were in a map.
    pub length: Option<u64>,
    /// A `date` is among them (the server adds none).
    pub date: bool,
}

/// What a field of an upstream's response is to its encoded lines, by name in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Passed on as it is.
    Plain,
    /// `date`: passed on, and noted.
    Date,
    /// A framing field: noted; passed on only if `content-length` (of an answer that may have one).
    Framing(Field),
    /// Left out: hop-by-hop (RFC 9110 section 7.6.1), or `x-request-id` (the gateway's own replaces it).
    Removed,
    /// Only the map's rules decide: `te` (kept when `trailers`), `trailer` (it declares the trailers the server
    /// passes on), `x-weir-fallback` (a fallback answer sets it).
    Map,
}

/// The kind of field `name` (in lower case) is.
fn kind(name: &[u8]) -> Kind {
    match name {
        b"te" | b"trailer" | b"x-weir-fallback" => Kind::Map,
        b"date" => Kind::Date,
        b"connection" => Kind::Framing(Field::Connection),
        b"content-length" => Kind::Framing(Field::ContentLength),
        b"transfer-encoding" => Kind::Framing(Field::TransferEncoding),
        b"keep-alive" | b"proxy-connection" | b"proxy-authenticate" | b"proxy-authorization" | b"upgrade" => {
            Kind::Removed
        }
        b"x-request-id" => Kind::Removed,
        _ => Kind::Plain,
    }
}

/// The encoded lines of the fields of `head` at `spans` (name offset and length, value offset and length, as
/// `http1::fields::spans` gives them), their framing noted in `framing`; `bodiless`: the status carries no
/// length (204). None when the head needs a map: a field only the map's rules decide on, a `connection` that
/// names fields, or a `content-length` the server would not pass on as it is (one beside a transfer-encoding,
/// repeated, or not one plain number).
pub fn encode(
    head: &[u8],
    spans: &[(u32, u32, u32, u32)],
    bodiless: bool,
    framing: &mut Framing,
) -> Option<Box<EncodedFields>> {
    // Each line is at most one byte longer than it came (`name:value` gets its space); the status line is not copied.
    let mut lines = Vec::with_capacity(head.len() + spans.len());
    let mut date = false;
    for &(name, name_len, value, value_len) in spans {
        let name = &head[name as usize..][..name_len as usize];
        let value = &head[value as usize..][..value_len as usize];
        // The name goes in first, in lower case, and is read from there (taken out again if the field is not).
        let at = lines.len();
        lines.extend_from_slice(name);
        lines[at..].make_ascii_lowercase();
        let passed = match kind(&lines[at..]) {
            Kind::Plain => true,
            Kind::Date => {
                date = true;
                true
            }
            Kind::Framing(Field::ContentLength) => {
                if framing.length.is_some() || value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                framing.note(Field::ContentLength, value, Side::Response);
                !bodiless
            }
            Kind::Framing(field) => {
                framing.note(field, value, Side::Response);
                if field == Field::Connection && names_fields(value) {
                    return None;
                }
                false
            }
            Kind::Removed => false,
            Kind::Map => return None,
        };
        if passed {
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value);
            lines.extend_from_slice(b"\r\n");
        } else {
            lines.truncate(at);
        }
    }
    if framing.chunked.is_some() && framing.length.is_some() {
        return None; // the map's rules drop the length (RFC 9112 section 6.3)
    }
    let length = match &framing.length {
        Some(Ok(n)) if !bodiless => Some(*n),
        _ => None,
    };
    // Boxed: the response carrying it is moved a dozen times on its way to the server (48 bytes more each).
    Some(Box::new(EncodedFields { lines, length, date }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};

    /// Every name the gateway's response policy removes from a map is left out or sent to the map here, and every
    /// other name is passed on: `kind` agrees with `strip_hop_by_hop` and the `x-request-id` the gateway sets.
    #[test]
    fn kinds_agree_with_the_policy_on_maps() {
        let mut names: Vec<&str> = crate::proxy::headers::HOP_BY_HOP.iter().map(|h| h.as_str()).collect();
        names.extend([
            "te",
            "trailer",
            "x-request-id",
            "x-weir-fallback",
            "date",
            "content-length",
            "content-type",
            "server",
            "x-te",
            "keep-alives",
            "connections",
            "set-cookie",
        ]);
        for name in names {
            let kind = kind(name.as_bytes());
            let mut map = HeaderMap::new();
            map.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("x"));
            crate::proxy::headers::strip_hop_by_hop(&mut map);
            let kept = !map.is_empty() && name != "x-request-id";
            match kind {
                Kind::Plain | Kind::Date => assert!(kept, "{name} is passed on, but the map loses it"),
                Kind::Framing(f) => {
                    assert_eq!(Field::of(&HeaderName::from_bytes(name.as_bytes()).unwrap()), Some(f), "{name}")
                }
                Kind::Removed => assert!(!kept, "{name} is left out, but the map keeps it"),
                Kind::Map => {}
            }
            assert_eq!(kind == Kind::Date, name == "date", "{name}");
        }
    }

    #[test]
    fn heads_are_encoded_or_sent_to_the_map() {
        // (what, fields, bodiless, Some((lines, length, date)) or None for the map)
        type Case = (&'static str, &'static str, bool, Option<(&'static str, Option<u64>, bool)>);
        let cases: Vec<Case> = vec![
            (
                "names lower-cased, hop-by-hop left out",
                "Server: nginx\r\nContent-Type:text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n",
                false,
                Some(("server: nginx\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n", Some(5), false)),
            ),
            (
                "chunked: transfer-encoding left out",
                "Transfer-Encoding: chunked\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
                false,
                Some(("date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", None, true)),
            ),
            ("the upstream's request id", "x-request-id: up\r\nx-a: 1\r\n", false, Some(("x-a: 1\r\n", None, false))),
            ("204: no length", "content-length: 0\r\nx-a: 1\r\n", true, Some(("x-a: 1\r\n", None, false))),
            ("no fields", "", false, Some(("", None, false))),
            ("connection naming a field", "connection: x-hop\r\nx-hop: 1\r\n", false, None),
            ("length beside chunked", "content-length: 3\r\ntransfer-encoding: chunked\r\n", false, None),
            ("length repeated", "content-length: 3\r\ncontent-length: 3\r\n", false, None),
            ("length not one number", "content-length: 3, 3\r\n", false, None),
            ("trailer", "trailer: x-sum\r\n", false, None),
            ("te", "te: trailers\r\n", false, None),
            ("fallback", "x-weir-fallback: no\r\n", false, None),
        ];
        for (what, fields, bodiless, expected) in cases {
            let head = format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
            let mut parsed = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut parsed);
            response.parse(head.as_bytes()).unwrap();
            let mut spans = [(0u32, 0u32, 0u32, 0u32); 16];
            let count = response.headers.len();
            crate::http1::fields::spans(response.headers, head.as_ptr() as usize, &mut spans);
            let got = encode(head.as_bytes(), &spans[..count], bodiless, &mut Framing::default());
            let expected =
                expected.map(|(lines, length, date)| Box::new(EncodedFields { lines: lines.into(), length, date }));
            assert_eq!(got, expected, "{what}");
        }
    }
}
