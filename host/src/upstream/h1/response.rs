//! The response half of an HTTP/1.1 exchange: the head parsed (httparse) into `http` types whose values
//! share the read buffer, and the body's framing decoded as bytes arrive, each piece passed on at once.
//!
//! Framing follows RFC 9112 section 6.3, as hyper's client applied it: no body for HEAD, 1xx, 204 and 304;
//! `transfer-encoding` ending in `chunked` first; else one agreed `content-length`; else the body runs to
//! the connection's close (and the connection is not reused).

use super::encoded::{self, EncodedFields};
use crate::http1::decode::Side;
pub use crate::http1::decode::{Chunk, Decoded, Decoder};
use crate::http1::fields::{names_fields, Framing};
use bytes::{Buf as _, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

/// Bound on a response head (status line and fields).
pub const MAX_HEAD: usize = 64 * 1024;
/// Bound on the fields of a response head.
pub const MAX_FIELDS: usize = 100;

/// A parsed final response head.
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The fields, values sharing the read buffer (empty when they are `encoded`).
    pub headers: HeaderMap,
    /// The fields as lines for an HTTP/1.1 client, instead of the map (`ResponseFields::Encoded`).
    pub encoded: Option<Box<EncodedFields>>,
    /// How the body is framed.
    pub decoder: Decoder,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Which fields of a response head its map keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFields {
    /// Every field as the upstream sent it: a filter's callout sees the head whole, as in Envoy.
    All,
    /// All but `connection` and `transfer-encoding`, which are read for the framing and which the gateway
    /// removes from a proxied response anyway (`proxy::headers::strip_hop_by_hop`); a `connection` that names
    /// other fields stays, so that they are removed with it. Nearly every upstream sends `connection:
    /// keep-alive` or `transfer-encoding: chunked`: adding one to the map to remove it again cost about 800
    /// instructions of the 27.8k a proxied request took (callgrind, docs/benchmarks.md). A `content-length`
    /// beside a `transfer-encoding` is left out too (RFC 9112 section 6.3: the body is re-framed).
    Proxied,
    /// As `Proxied`, written to an HTTP/1.1 client with nothing reading them on the way: kept as lines
    /// ([`EncodedFields`]), no map built, unless a field needs the map's rules (then as `Proxied`).
    Encoded,
}

/// What the buffer held.
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An interim (1xx) response, consumed.
    Interim,
    /// The final response head, consumed.
    Final(Head),
}

/// Parses the response head at the start of `buf`; a complete head is removed from it. `head_request`: the
/// request was HEAD (the response has no body whatever its fields say); `kept`: which fields the map keeps.
pub fn parse_head(buf: &mut BytesMut, head_request: bool, kept: ResponseFields) -> Result<Parsed, String> {
    // Left uninitialised: httparse writes the fields it finds (a 3 KiB array cleared per response otherwise).
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    let len =
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            // A whole head past the bound (one large read) is refused as a partial one is.
            Ok(_) if buf.len() > MAX_HEAD => {
                return Err(format!("the response head is larger than {} KiB", MAX_HEAD / 1024))
            }
            Ok(_) => return Ok(Parsed::Partial),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(format!("the response head has more than {MAX_FIELDS} fields"))
            }
            Err(e) => return Err(format!("the response head is malformed: {e}")),
        };
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| format!("the response status {code} is not valid"))?;
    let version = if response.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err("the upstream switched protocols (101), which Weir does not proxy".into());
        }
        buf.advance(len);
        return Ok(Parsed::Interim);
    }
    // Where each field sits in the head, so the map's values can share the buffer once it is split off.
    let base = buf.as_ptr() as usize;
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_FIELDS];
    let count = response.headers.len();
    crate::http1::fields::spans(response.headers, base, &mut spans);
    if kept == ResponseFields::Encoded {
        let mut fields = Framing::default();
        let bodiless = status == StatusCode::NO_CONTENT;
        if let Some(lines) = encoded::encode(&buf[..len], &spans[..count], bodiless, &mut fields) {
            buf.advance(len);
            return final_head(&fields, status, version, head_request, HeaderMap::new(), Some(lines));
        }
    }
    let mut fields = Framing::default();
    let head = buf.split_to(len).freeze();
    // Room for the x-request-id the gateway adds (the map's storage stays small: see the request's FIELDS_ADDED).
    let mut headers = HeaderMap::with_capacity(count + 1);
    for &(name, name_len, value, value_len) in &spans[..count] {
        let (name, value) = (name as usize, value as usize);
        let name = HeaderName::from_bytes(&head[name..name + name_len as usize])
            .map_err(|_| "the response head has a field with an invalid name".to_string())?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len as usize))
            .map_err(|_| format!("the response field {name} has an invalid value"))?;
        let framing = fields.see(&name, &value, Side::Response);
        if framing
            && kept != ResponseFields::All
            && (name == TRANSFER_ENCODING || (name == CONNECTION && !names_fields(value.as_bytes())))
        {
            continue;
        }
        headers.append(name, value);
    }
    if kept != ResponseFields::All && fields.chunked.is_some() && fields.length.is_some() {
        headers.remove(CONTENT_LENGTH);
    }
    final_head(&fields, status, version, head_request, headers, None)
}

/// A final response head with the framing its fields gave, its fields in `headers` or as `encoded` lines.
fn final_head(
    fields: &Framing,
    status: StatusCode,
    version: Version,
    head_request: bool,
    headers: HeaderMap,
    encoded: Option<Box<EncodedFields>>,
) -> Result<Parsed, String> {
    let (decoder, delimited) = framing(fields, status, version, head_request)?;
    let keep_alive = !delimited && fields.keeps_alive(version);
    Ok(Parsed::Final(Head { status, version, headers, encoded, decoder, keep_alive }))
}

/// The body's framing, and whether it runs to the connection's close.
fn framing(
    fields: &Framing,
    status: StatusCode,
    version: Version,
    head_request: bool,
) -> Result<(Decoder, bool), String> {
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Decoder::Length(0), false));
    }
    if let Some(chunked) = fields.chunked {
        if version == Version::HTTP_10 {
            return Err("the HTTP/1.0 response has a transfer-encoding".into());
        }
        return Ok(if chunked { (Decoder::Chunked(Chunk::Size), false) } else { (Decoder::Eof, true) });
    }
    match &fields.length {
        Some(Ok(n)) => Ok((Decoder::Length(*n), false)),
        Some(Err(e)) => Err(e.clone()),
        None => Ok((Decoder::Eof, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [ResponseFields; 3] = [ResponseFields::All, ResponseFields::Proxied, ResponseFields::Encoded];

    fn parse(text: &str, head_request: bool) -> Result<(u16, Decoder, bool, String), String> {
        let all = parse_as(text, head_request, ResponseFields::All);
        for mode in MODES {
            assert_eq!(parse_as(text, head_request, mode), all, "{text:?}: {mode:?} reads it as All does");
        }
        all
    }

    fn parse_as(text: &str, head_request: bool, mode: ResponseFields) -> Result<(u16, Decoder, bool, String), String> {
        let mut buf = BytesMut::from(text);
        loop {
            match parse_head(&mut buf, head_request, mode)? {
                Parsed::Partial => return Err("partial".into()),
                Parsed::Interim => continue,
                Parsed::Final(h) => {
                    return Ok((h.status.as_u16(), h.decoder, h.keep_alive, String::from_utf8_lossy(&buf).into()))
                }
            }
        }
    }

    #[test]
    fn heads_give_status_framing_and_reuse() {
        // (what, bytes, HEAD request, (status, framing, keep-alive, bytes left after the head) or the error)
        type Case = (&'static str, &'static str, bool, Result<(u16, Decoder, bool, &'static str), &'static str>);
        let cases: Vec<Case> = vec![
            (
                "length",
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
                false,
                Ok((200, Decoder::Length(3), true, "abc")),
            ),
            (
                "chunked",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                false,
                Ok((200, Decoder::Chunked(Chunk::Size), true, "")),
            ),
            (
                "chunked wins",
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
                false,
                Ok((200, Decoder::Chunked(Chunk::Size), true, "")),
            ),
            (
                "coding not chunked runs to close",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                false,
                Ok((200, Decoder::Eof, false, "")),
            ),
            ("no framing runs to close", "HTTP/1.1 200 OK\r\n\r\nabc", false, Ok((200, Decoder::Eof, false, "abc"))),
            (
                "connection: close",
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                false,
                Ok((200, Decoder::Length(0), false, "")),
            ),
            (
                "HTTP/1.0 closes",
                "HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
                false,
                Ok((200, Decoder::Length(0), false, "")),
            ),
            (
                "HTTP/1.0 keep-alive",
                "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n",
                false,
                Ok((200, Decoder::Length(0), true, "")),
            ),
            (
                "HEAD has no body",
                "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
                true,
                Ok((200, Decoder::Length(0), true, "")),
            ),
            ("204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", false, Ok((204, Decoder::Length(0), true, ""))),
            (
                "304 has no body",
                "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
                false,
                Ok((304, Decoder::Length(0), true, "")),
            ),
            (
                "100 skipped",
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
                false,
                Ok((201, Decoder::Length(0), true, "")),
            ),
            (
                "same length twice",
                "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\n",
                false,
                Ok((200, Decoder::Length(2), true, "")),
            ),
            (
                "lengths disagree",
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n",
                false,
                Err("the response has content-length fields that disagree"),
            ),
            (
                "length not a number",
                "HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\n",
                false,
                Err("the response's content-length \"+2\" is not a number"),
            ),
            (
                "HTTP/1.0 with chunked",
                "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                false,
                Err("the HTTP/1.0 response has a transfer-encoding"),
            ),
            (
                "101",
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                false,
                Err("the upstream switched protocols (101), which Weir does not proxy"),
            ),
            ("garbage", "HTTX/1.1 200 OK\r\n\r\n", false, Err("the response head is malformed: invalid HTTP version")),
            ("partial", "HTTP/1.1 200 OK\r\ncontent-le", false, Err("partial")),
        ];
        for (what, text, head_request, want) in cases {
            let got = parse(text, head_request);
            let want = want.map(|(s, d, k, rest)| (s, d, k, rest.to_string())).map_err(str::to_string);
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn values_share_the_head_and_keep_their_bytes() {
        let mut buf = BytesMut::from("HTTP/1.1 404 Not Found\r\nX-A: 1\r\nx-b:  two words \r\nx-a: 3\r\n\r\n");
        let Ok(Parsed::Final(head)) = parse_head(&mut buf, false, ResponseFields::All) else { panic!("not parsed") };
        let a: Vec<_> = head.headers.get_all("x-a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(
            (head.status.as_u16(), a, head.headers["x-b"].to_str().unwrap()),
            (404, vec!["1", "3"], "two words")
        );
    }

    #[test]
    fn a_proxied_head_leaves_out_the_framing_fields_the_gateway_would_strip() {
        // (what, head fields, fields kept for a proxied exchange, whether the connection is reused, and whether
        // `Encoded` keeps them as lines): a callout (`All`) keeps every field, always; `Encoded` keeps the same as
        // `Proxied`, less the hop-by-hop fields the gateway strips when it keeps them as lines.
        let cases = [
            (
                "keep-alive",
                "Connection: keep-alive\r\nContent-Length: 2\r\nServer: s",
                "content-length,server",
                true,
                true,
            ),
            ("close", "connection: close\r\ncontent-length: 2", "content-length", false, true),
            ("chunked", "Transfer-Encoding: chunked\r\nx-a: 1", "x-a", true, true),
            (
                "names a field",
                "Connection: keep-alive, x-hop\r\nx-hop: 1\r\ncontent-length: 2",
                "connection,x-hop,content-length",
                true,
                false,
            ),
            ("keep-alive field", "Keep-Alive: timeout=5\r\ncontent-length: 2", "keep-alive,content-length", true, true),
            ("length beside chunked", "content-length: 9\r\ntransfer-encoding: chunked\r\nx-a: 1", "x-a", true, false),
        ];
        for (what, fields, kept, reused, as_lines) in cases {
            let text = format!("HTTP/1.1 200 OK\r\n{fields}\r\n\r\n");
            for mode in MODES {
                let mut buf = BytesMut::from(text.as_str());
                let Ok(Parsed::Final(head)) = parse_head(&mut buf, false, mode) else { panic!("{what}: not parsed") };
                let mut names: Vec<&str> = head.headers.keys().map(|n| n.as_str()).collect();
                let lines = head.encoded.as_ref().map(|e| String::from_utf8(e.lines.clone()).unwrap());
                names.extend(lines.iter().flat_map(|l| l.lines()).map(|l| l.split(':').next().unwrap()));
                if mode == ResponseFields::Encoded {
                    assert_eq!(head.encoded.is_some(), as_lines, "{what}: kept as lines");
                }
                let hop_by_hop = ["connection", "x-hop", "keep-alive"];
                let want = match mode {
                    ResponseFields::Proxied => kept.to_string(),
                    ResponseFields::Encoded if !as_lines => kept.to_string(),
                    ResponseFields::Encoded => {
                        kept.split(',').filter(|n| !hop_by_hop.contains(n)).collect::<Vec<_>>().join(",")
                    }
                    ResponseFields::All => fields
                        .split("\r\n")
                        .map(|f| f.split(':').next().unwrap().to_ascii_lowercase())
                        .collect::<Vec<_>>()
                        .join(","),
                };
                assert_eq!(names.join(","), want, "{what} {mode:?}");
                assert_eq!(head.keep_alive, reused, "{what} {mode:?}: the framing is read either way");
            }
        }
    }

    #[test]
    fn heads_beyond_the_bounds_are_refused() {
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "a: b\r\n".repeat(MAX_FIELDS + 1));
        assert_eq!(parse(&many, false).unwrap_err(), "the response head has more than 100 fields");
        let long = format!("HTTP/1.1 200 OK\r\nx: {}", "v".repeat(MAX_HEAD));
        assert_eq!(parse(&long, false).unwrap_err(), "the response head is larger than 64 KiB");
        let whole = format!("{long}\r\n\r\n");
        assert_eq!(parse(&whole, false).unwrap_err(), "the response head is larger than 64 KiB");
    }
}
