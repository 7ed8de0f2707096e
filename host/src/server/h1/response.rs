//! A response written to a client connection: the head in one buffer, the body framed as it comes.
//!
//! Framing follows hyper's server (1.8, `proto::h1::role::Server::encode`), so clients see what they saw
//! before Weir had its own server: a `content-length` or `transfer-encoding` the response carries is kept; else a
//! body known empty gets `content-length: 0`, a known length its `content-length`, an unknown one is chunked (or,
//! for HTTP/1.0 clients, runs to the connection's close). HEAD, 1xx, 204 and 304 answers carry no body; 204 and
//! 1xx no length either. A `date` field is added when missing.

pub use crate::http1::encode::Encoder;
use crate::http1::fields::{ends_chunked, write_field};
use crate::upstream::h1::encoded::EncodedFields;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use std::io::Write as _;

/// What the request said that shapes the answer.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// It was a HEAD request.
    pub head: bool,
    /// HTTP/1.0 client.
    pub http10: bool,
    /// The connection may carry another request (the client allows it, the request's body can be read to its
    /// end, the worker is not closing it).
    pub keep_alive: bool,
}

/// The body: known to be empty, its exact length, or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// `is_end_stream` at the start.
    Empty,
    /// The exact length.
    Known(u64),
    /// Unknown.
    Unknown,
}

/// Appends the response head to `out`: how its body goes out, and whether the connection stays open after it.
/// `encoded`: upstream fields kept as lines (`upstream::ResponseFields::Encoded`), written before the map's.
pub fn encode_head(
    status: StatusCode,
    headers: &HeaderMap,
    encoded: Option<&EncodedFields>,
    body: Length,
    asked: Asked,
    out: &mut Vec<u8>,
) -> (Encoder, bool) {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT;
    let can_have_body = !(asked.head || bodiless || status == StatusCode::NOT_MODIFIED);
    let can_chunk = can_have_body && !asked.http10;
    let chunked_field = can_chunk && headers.contains_key(TRANSFER_ENCODING);

    let mut encoder = None;
    let mut wrote_date = false;
    let mut close = false;
    let mut keep_alive_field = false;
    if let Some(encoded) = encoded {
        // Without hop-by-hop fields, a `transfer-encoding` or a length that could not pass (`encoded::encode`).
        out.extend_from_slice(&encoded.lines);
        wrote_date = encoded.date;
        if let Some(n) = encoded.length.filter(|_| !chunked_field) {
            encoder = Some(Encoder::Length(n));
        }
    }
    for (name, value) in headers {
        if *name == CONTENT_LENGTH {
            if bodiless || chunked_field || encoder.is_some() {
                continue; // one length, never beside chunked
            }
            let Some(n) = std::str::from_utf8(value.as_bytes()).ok().and_then(|v| v.trim().parse::<u64>().ok()) else {
                continue; // not a length: framed from the body instead
            };
            encoder = Some(Encoder::Length(n));
        } else if *name == TRANSFER_ENCODING {
            if !can_chunk {
                continue;
            }
            encoder = Some(Encoder::Chunked);
        } else if *name == CONNECTION {
            for token in value.to_str().unwrap_or("").split(',') {
                let token = token.trim();
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_field |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if *name == DATE {
            wrote_date = true;
        }
        write_field(name.as_str(), value.as_bytes(), out);
    }
    if chunked_field && !ends_chunked(headers) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    let encoder = match encoder {
        Some(e) => e,
        None => match body {
            Length::Empty | Length::Known(0) => {
                if !bodiless && !asked.head && status != StatusCode::NOT_MODIFIED {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Encoder::Length(0)
            }
            Length::Known(n) => {
                if !bodiless && status != StatusCode::NOT_MODIFIED {
                    let _ = write!(out, "content-length: {n}\r\n");
                }
                Encoder::Length(n)
            }
            Length::Unknown if can_chunk => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Encoder::Chunked
            }
            Length::Unknown => Encoder::Close,
        },
    };
    let encoder = if can_have_body { encoder } else { Encoder::None };
    let keep_alive = asked.keep_alive && !close && encoder != Encoder::Close;
    if !keep_alive && !close && !asked.http10 {
        out.extend_from_slice(b"connection: close\r\n");
    } else if keep_alive && asked.http10 && !keep_alive_field {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    if !wrote_date {
        crate::http1::date::append_field(out);
    }
    out.extend_from_slice(b"\r\n");
    (encoder, keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head without its `date` line, the framing and whether the connection stays open.
    fn head(status: u16, fields: &[(&str, &str)], body: Length, asked: Asked) -> (String, Encoder, bool) {
        let mut headers = HeaderMap::new();
        for (k, v) in fields {
            headers.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let mut out = Vec::new();
        let (encoder, keep) = encode_head(StatusCode::from_u16(status).unwrap(), &headers, None, body, asked, &mut out);
        let text = String::from_utf8(out).unwrap();
        let text: String = text.split_inclusive("\r\n").filter(|l| !l.starts_with("date: ")).collect();
        (text, encoder, keep)
    }

    #[test]
    fn heads_are_framed_as_hyper_frames_them() {
        let get = Asked { head: false, http10: false, keep_alive: true };
        let head_req = Asked { head: true, ..get };
        let old = Asked { http10: true, keep_alive: false, ..get };
        let old_keep = Asked { http10: true, ..get };
        let closing = Asked { keep_alive: false, ..get };
        use Encoder as E;
        use Length::*;
        // (what, status, fields, body, request, (head, framing, keep-alive))
        type Case =
            (&'static str, u16, Vec<(&'static str, &'static str)>, Length, Asked, (&'static str, Encoder, bool));
        let cases: Vec<Case> = vec![
            (
                "known length",
                200,
                vec![("x", "1")],
                Known(5),
                get,
                ("HTTP/1.1 200 OK\r\nx: 1\r\ncontent-length: 5\r\n\r\n", E::Length(5), true),
            ),
            ("empty", 200, vec![], Empty, get, ("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", E::Length(0), true)),
            (
                "unknown: chunked",
                404,
                vec![],
                Unknown,
                get,
                ("HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n", E::Chunked, true),
            ),
            (
                "its own length kept",
                200,
                vec![("content-length", "7")],
                Unknown,
                get,
                ("HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", E::Length(7), true),
            ),
            (
                "its coding made chunked",
                200,
                vec![("transfer-encoding", "gzip"), ("content-length", "7")],
                Unknown,
                get,
                ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n", E::Chunked, true),
            ),
            (
                "HEAD keeps the length, sends no body",
                200,
                vec![("content-length", "7")],
                Empty,
                head_req,
                ("HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", E::None, true),
            ),
            (
                "HEAD of a known body",
                200,
                vec![],
                Known(2),
                head_req,
                ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", E::None, true),
            ),
            (
                "204 has no length",
                204,
                vec![("content-length", "0")],
                Empty,
                get,
                ("HTTP/1.1 204 No Content\r\n\r\n", E::None, true),
            ),
            (
                "304 keeps its length",
                304,
                vec![("content-length", "9")],
                Empty,
                get,
                ("HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n", E::None, true),
            ),
            ("HTTP/1.0 unknown runs to close", 200, vec![], Unknown, old, ("HTTP/1.1 200 OK\r\n\r\n", E::Close, false)),
            (
                "HTTP/1.0 keep-alive",
                200,
                vec![],
                Known(1),
                old_keep,
                ("HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: keep-alive\r\n\r\n", E::Length(1), true),
            ),
            (
                "HTTP/1.0 keep-alive, unknown length",
                200,
                vec![],
                Unknown,
                old_keep,
                ("HTTP/1.1 200 OK\r\n\r\n", E::Close, false),
            ),
            (
                "closing says so",
                200,
                vec![],
                Known(1),
                closing,
                ("HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\n", E::Length(1), false),
            ),
            (
                "the response closes",
                200,
                vec![("connection", "close")],
                Known(1),
                get,
                ("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n", E::Length(1), false),
            ),
            (
                "its own date",
                500,
                vec![("date", "Sun, 06 Nov 1994 08:49:37 GMT")],
                Empty,
                get,
                ("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n", E::Length(0), true),
            ),
        ];
        for (what, status, fields, body, asked, (text, encoder, keep)) in cases {
            assert_eq!(head(status, &fields, body, asked), (text.to_string(), encoder, keep), "{what}");
        }
        let mut out = Vec::new();
        encode_head(StatusCode::OK, &HeaderMap::new(), None, Empty, get, &mut out);
        assert_eq!(String::from_utf8(out).unwrap().matches("date: ").count(), 1, "a date is added when missing");
    }

    /// An upstream head written from its encoded lines gives the client the same fields and framing as from the
    /// map the gateway builds, strips of hop-by-hop fields and adds its request id to (order aside).
    #[test]
    fn encoded_fields_are_written_as_their_map_would_be() {
        use crate::upstream::h1::response::{parse_head, Parsed, ResponseFields};
        let get = Asked { head: false, http10: false, keep_alive: true };
        let head_req = Asked { head: true, ..get };
        let old_keep = Asked { http10: true, ..get };
        let old = Asked { http10: true, keep_alive: false, ..get };
        let closing = Asked { keep_alive: false, ..get };
        let nginx = "Server: nginx\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive";
        // (what, status line and fields, request)
        let cases = [
            ("nginx's answer", format!("HTTP/1.1 200 OK\r\n{nginx}"), get),
            ("to HEAD", format!("HTTP/1.1 200 OK\r\n{nginx}"), head_req),
            ("to HTTP/1.0 keep-alive", format!("HTTP/1.1 200 OK\r\n{nginx}"), old_keep),
            ("closing", format!("HTTP/1.1 200 OK\r\n{nginx}"), closing),
            ("chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1".into(), get),
            ("chunked to HTTP/1.0", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1".into(), old),
            ("to the close", "HTTP/1.0 200 OK\r\nx-a: 1".into(), get),
            ("204", "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nx-a: 1".into(), get),
            ("304", "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\nETag: \"e\"".into(), get),
            (
                "hop-by-hop and the upstream's id",
                "HTTP/1.1 500 Internal Server Error\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-Request-Id: up\r\nContent-Length: 0".into(),
                get,
            ),
        ];
        let request_id = http::HeaderValue::from_static("rid");
        for (what, head, asked) in cases {
            let text = format!("{head}\r\n\r\n");
            let mut written = Vec::new();
            for kept in [ResponseFields::Proxied, ResponseFields::Encoded] {
                let mut buf = bytes::BytesMut::from(text.as_str());
                let Ok(Parsed::Final(parsed)) = parse_head(&mut buf, asked.head, kept) else { panic!("{what}") };
                assert_eq!(parsed.encoded.is_some(), kept == ResponseFields::Encoded, "{what}: {kept:?}");
                let mut headers = parsed.headers;
                crate::proxy::headers::strip_hop_by_hop(&mut headers);
                headers.insert(crate::proxy::headers::X_REQUEST_ID.clone(), request_id.clone());
                let body = match parsed.decoder {
                    crate::http1::decode::Decoder::Length(0) => Length::Empty,
                    crate::http1::decode::Decoder::Length(n) => Length::Known(n),
                    _ => Length::Unknown,
                };
                let mut out = Vec::new();
                let framing = encode_head(parsed.status, &headers, parsed.encoded.as_deref(), body, asked, &mut out);
                let text = String::from_utf8(out).unwrap();
                assert_eq!(text.matches("date: ").count(), 1, "{what}: {kept:?}: one date");
                let mut lines: Vec<String> = text
                    .split("\r\n")
                    .filter(|l| !l.starts_with("date: ") || head.contains("Date:"))
                    .map(str::to_string)
                    .collect();
                lines[1..].sort();
                written.push((lines, framing));
            }
            assert_eq!(written[1], written[0], "{what}: encoded (right) as the map (left)");
        }
    }
}
