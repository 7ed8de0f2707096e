//! The response half of an HTTP/1.1 exchange: the head parsed (httparse) into `http` types whose values
//! share the read buffer, and the body's framing decoded as bytes arrive, each piece passed on at once.
//!
//! Framing follows RFC 9112 section 6.3, as hyper's client applied it: no body for HEAD, 1xx, 204 and 304;
//! `transfer-encoding` ending in `chunked` first; else one agreed `content-length`; else the body runs to
//! the connection's close (and the connection is not reused).

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

/// Bound on a response head (status line and fields) and on a chunked body's trailers.
pub const MAX_HEAD: usize = 64 * 1024;
/// Bound on the fields of a response head.
pub const MAX_FIELDS: usize = 100;
/// Bound on a chunk-size line (size and extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// A parsed final response head.
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The fields, values sharing the read buffer.
    pub headers: HeaderMap,
    /// How the body is framed.
    pub decoder: Decoder,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
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
/// request was HEAD (the response has no body whatever its fields say).
pub fn parse_head(buf: &mut BytesMut, head_request: bool) -> Result<Parsed, String> {
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
    // Where each field sits in the head, so the map's values can share the buffer once it is split off.
    let base = buf.as_ptr() as usize;
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_FIELDS];
    let count = response.headers.len();
    for (span, field) in spans.iter_mut().zip(response.headers.iter()) {
        let name = field.name.as_ptr() as usize - base;
        let value = field.value.as_ptr() as usize - base;
        *span = (name as u32, field.name.len() as u32, value as u32, field.value.len() as u32);
    }
    let head = buf.split_to(len).freeze();
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err("the upstream switched protocols (101), which Weir does not proxy".into());
        }
        return Ok(Parsed::Interim);
    }
    let mut headers = HeaderMap::with_capacity(count);
    let mut fields = Fields::default();
    for &(name, name_len, value, value_len) in &spans[..count] {
        let (name, value) = (name as usize, value as usize);
        let name = HeaderName::from_bytes(&head[name..name + name_len as usize])
            .map_err(|_| "the response head has a field with an invalid name".to_string())?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len as usize))
            .map_err(|_| format!("the response field {name} has an invalid value"))?;
        fields.see(&name, &value);
        headers.append(name, value);
    }
    let (decoder, delimited) = fields.framing(status, version, head_request)?;
    let keep_alive = !delimited && fields.keeps_alive(version);
    Ok(Parsed::Final(Head { status, version, headers, decoder, keep_alive }))
}

/// What the framing fields (`transfer-encoding`, `content-length`, `connection`) say, gathered as the head is
/// read (no lookups in the map afterwards).
#[derive(Default)]
struct Fields {
    /// `transfer-encoding` is present; whether its last coding is `chunked`.
    chunked: Option<bool>,
    /// The agreed `content-length`, or why it is invalid (reported unless `transfer-encoding` wins).
    length: Option<Result<u64, String>>,
    close: bool,
    keep_alive: bool,
}

impl Fields {
    fn see(&mut self, name: &HeaderName, value: &HeaderValue) {
        if *name == TRANSFER_ENCODING {
            let last = value.to_str().ok().and_then(|v| v.rsplit(',').next());
            self.chunked = Some(last.is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked")));
        } else if *name == CONTENT_LENGTH {
            if !matches!(self.length, Some(Err(_))) {
                self.length = Some(agree(self.length.take(), value));
            }
        } else if *name == CONNECTION {
            let bytes = value.as_bytes();
            // The usual cases, one token: no splitting.
            if bytes.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if bytes.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else {
                for token in value.to_str().unwrap_or("").split(',') {
                    let token = token.trim();
                    self.keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                    self.close |= token.eq_ignore_ascii_case("close");
                }
            }
        }
    }

    /// The body's framing, and whether it runs to the connection's close.
    fn framing(&self, status: StatusCode, version: Version, head_request: bool) -> Result<(Decoder, bool), String> {
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return Ok((Decoder::Length(0), false));
        }
        if let Some(chunked) = self.chunked {
            if version == Version::HTTP_10 {
                return Err("the HTTP/1.0 response has a transfer-encoding".into());
            }
            return Ok(if chunked { (Decoder::Chunked(Chunk::Size), false) } else { (Decoder::Eof, true) });
        }
        match &self.length {
            Some(Ok(n)) => Ok((Decoder::Length(*n), false)),
            Some(Err(e)) => Err(e.clone()),
            None => Ok((Decoder::Eof, true)),
        }
    }

    fn keeps_alive(&self, version: Version) -> bool {
        if version == Version::HTTP_10 {
            self.keep_alive && !self.close
        } else {
            !self.close
        }
    }
}

/// The length a `content-length` value gives, checked against the one seen before.
fn agree(before: Option<Result<u64, String>>, value: &HeaderValue) -> Result<u64, String> {
    let text = value.to_str().map_err(|_| "the response's content-length is not a number".to_string())?;
    let mut length = before.transpose()?;
    for part in text.split(',') {
        let part = part.trim();
        let n: u64 = part
            .parse()
            .ok()
            .filter(|_| part.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("the response's content-length {part:?} is not a number"))?;
        if length.is_some_and(|l| l != n) {
            return Err("the response has content-length fields that disagree".into());
        }
        length = Some(n);
    }
    length.ok_or_else(|| "the response's content-length is empty".to_string())
}

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data: the bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailers, or the final CRLF.
    Trailers,
    /// The body ended.
    Done,
}

/// How a response body is framed, and how much of it is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// `content-length`: the bytes left.
    Length(u64),
    /// Chunked.
    Chunked(Chunk),
    /// Until the connection closes.
    Eof,
}

/// One step of decoding.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// A chunked body's trailers (the body ended).
    Trailers(HeaderMap),
    /// The body ended.
    End,
    /// More bytes must be read.
    More,
}

impl Decoder {
    /// The body ended (nothing more will be read for it).
    pub fn is_done(&self) -> bool {
        matches!(self, Decoder::Length(0) | Decoder::Chunked(Chunk::Done))
    }

    /// The bytes still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Decoder::Length(n) => Some(*n),
            Decoder::Chunked(Chunk::Done) => Some(0),
            _ => None,
        }
    }

    /// Decodes what `buf` holds: the next body bytes (removed from `buf`), the end, or a need for more.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, String> {
        match self {
            Decoder::Length(0) => Ok(Decoded::End),
            Decoder::Length(_) | Decoder::Eof if buf.is_empty() => Ok(Decoded::More),
            Decoder::Length(left) => {
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                Ok(Decoded::Data(buf.split_to(n as usize).freeze()))
            }
            Decoder::Eof => Ok(Decoded::Data(buf.split().freeze())),
            Decoder::Chunked(state) => decode_chunked(state, buf),
        }
    }

    /// Consumes the framing that follows data already passed on when it is all in `buf` (a chunk's CRLF, the
    /// last chunk, an empty trailer section), so the body is seen to end without another read.
    pub fn settle(&mut self, buf: &mut BytesMut) -> Result<(), String> {
        if let Decoder::Chunked(state) = self {
            loop {
                match *state {
                    Chunk::DataEnd | Chunk::Size => {
                        if !step(state, buf)? {
                            return Ok(());
                        }
                    }
                    Chunk::Trailers if buf.starts_with(b"\r\n") => {
                        let _ = buf.split_to(2);
                        *state = Chunk::Done;
                    }
                    _ => return Ok(()),
                }
            }
        }
        Ok(())
    }

    /// The connection closed: the end of a body that runs to it, else an error.
    pub fn at_close(&self) -> Result<(), String> {
        match self {
            Decoder::Eof => Ok(()),
            d if d.is_done() => Ok(()),
            Decoder::Length(left) => {
                Err(format!("the upstream closed the connection {left} bytes before the body's end"))
            }
            _ => Err("the upstream closed the connection before the chunked body's end".into()),
        }
    }
}

fn decode_chunked(state: &mut Chunk, buf: &mut BytesMut) -> Result<Decoded, String> {
    loop {
        match *state {
            Chunk::Done => return Ok(Decoded::End),
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let n = left.min(buf.len() as u64);
                *state = if n == left { Chunk::DataEnd } else { Chunk::Data(left - n) };
                return Ok(Decoded::Data(buf.split_to(n as usize).freeze()));
            }
            Chunk::Trailers => {
                if buf.len() < 2 {
                    return Ok(Decoded::More);
                }
                if buf.starts_with(b"\r\n") {
                    let _ = buf.split_to(2);
                    *state = Chunk::Done;
                    return Ok(Decoded::End);
                }
                let Some(end) = find(buf, b"\r\n\r\n") else {
                    if buf.len() > MAX_HEAD {
                        return Err(format!("the response's trailers are larger than {} KiB", MAX_HEAD / 1024));
                    }
                    return Ok(Decoded::More);
                };
                let section = buf.split_to(end + 4);
                let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
                let parsed = httparse::parse_headers(&section, &mut fields)
                    .map_err(|e| format!("the response's trailers are malformed: {e}"))?;
                let httparse::Status::Complete((_, fields)) = parsed else {
                    return Err("the response's trailers are malformed".into());
                };
                let mut trailers = HeaderMap::with_capacity(fields.len());
                for field in fields {
                    let name = HeaderName::from_bytes(field.name.as_bytes())
                        .map_err(|_| "the response's trailers have an invalid name".to_string())?;
                    let value = HeaderValue::from_bytes(field.value)
                        .map_err(|_| format!("the response's trailer {name} has an invalid value"))?;
                    trailers.append(name, value);
                }
                *state = Chunk::Done;
                return Ok(Decoded::Trailers(trailers));
            }
            Chunk::Size | Chunk::DataEnd => {
                if !step(state, buf)? {
                    return Ok(Decoded::More);
                }
            }
        }
    }
}

/// Reads a chunk-size line or a chunk's CRLF when whole in `buf`; false when more bytes are needed.
fn step(state: &mut Chunk, buf: &mut BytesMut) -> Result<bool, String> {
    match *state {
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(false);
            }
            if !buf.starts_with(b"\r\n") {
                return Err("a chunk of the response body does not end with CRLF".into());
            }
            let _ = buf.split_to(2);
            *state = Chunk::Size;
            Ok(true)
        }
        Chunk::Size => {
            let Some(end) = find(&buf[..buf.len().min(MAX_CHUNK_LINE)], b"\r\n") else {
                if buf.len() >= MAX_CHUNK_LINE {
                    return Err(format!("a chunk-size line of the response is longer than {MAX_CHUNK_LINE} bytes"));
                }
                return Ok(false);
            };
            let size = chunk_size(&buf[..end])?;
            let _ = buf.split_to(end + 2);
            *state = if size == 0 { Chunk::Trailers } else { Chunk::Data(size) };
            Ok(true)
        }
        _ => Ok(true),
    }
}

/// The size of a chunk-size line (hex digits, then optional whitespace and `;` extensions).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let rest_ok = rest.iter().position(|b| !matches!(b, b' ' | b'\t')).is_none_or(|i| rest[i] == b';');
    if digits == 0 || digits > 16 || !rest_ok {
        return Err(format!("the chunk size {:?} of the response is not valid", String::from_utf8_lossy(line)));
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|e| e.to_string())?;
    u64::from_str_radix(text, 16).map_err(|e| e.to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, head_request: bool) -> Result<(u16, Decoder, bool, String), String> {
        let mut buf = BytesMut::from(text);
        loop {
            match parse_head(&mut buf, head_request)? {
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
        let Ok(Parsed::Final(head)) = parse_head(&mut buf, false) else { panic!("not parsed") };
        let a: Vec<_> = head.headers.get_all("x-a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(
            (head.status.as_u16(), a, head.headers["x-b"].to_str().unwrap()),
            (404, vec!["1", "3"], "two words")
        );
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

    /// Decodes `input` fed in pieces of `step` bytes; the data, trailers and how it ended.
    fn decode_all(mut decoder: Decoder, input: &str, step: usize) -> (String, Option<String>, Result<(), String>) {
        let (mut buf, mut data, mut trailers) = (BytesMut::new(), String::new(), None);
        let mut rest = input.as_bytes();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(b)) => data.push_str(std::str::from_utf8(&b).unwrap()),
                Ok(Decoded::Trailers(t)) => {
                    trailers = Some(t.iter().map(|(k, v)| format!("{k}={}", v.to_str().unwrap())).collect())
                }
                Ok(Decoded::End) => return (data, trailers, Ok(())),
                Ok(Decoded::More) if rest.is_empty() => return (data, trailers, decoder.at_close()),
                Ok(Decoded::More) => {
                    let n = step.min(rest.len());
                    buf.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                }
                Err(e) => return (data, trailers, Err(e)),
            }
        }
    }

    #[test]
    fn bodies_decode_whatever_the_read_sizes() {
        let chunked = Decoder::Chunked(Chunk::Size);
        // (what, framing, bytes, (data, trailers, how it ended))
        type Case =
            (&'static str, Decoder, &'static str, (&'static str, Option<&'static str>, Result<(), &'static str>));
        let cases: Vec<Case> = vec![
            ("length", Decoder::Length(5), "hello", ("hello", None, Ok(()))),
            (
                "length cut short",
                Decoder::Length(5),
                "hel",
                ("hel", None, Err("the upstream closed the connection 2 bytes before the body's end")),
            ),
            ("to close", Decoder::Eof, "all of it", ("all of it", None, Ok(()))),
            ("chunked", chunked, "5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n", ("hello!", None, Ok(()))),
            ("chunked, upper hex", chunked, "A\r\n0123456789\r\n0\r\n\r\n", ("0123456789", None, Ok(()))),
            ("chunked trailers", chunked, "2\r\nhi\r\n0\r\nx-sum: 7\r\n\r\n", ("hi", Some("x-sum=7"), Ok(()))),
            (
                "chunked cut short",
                chunked,
                "5\r\nhel",
                ("hel", None, Err("the upstream closed the connection before the chunked body's end")),
            ),
            ("bad size", chunked, "zz\r\n", ("", None, Err("the chunk size \"zz\" of the response is not valid"))),
            (
                "missing CRLF",
                chunked,
                "2\r\nhiX\r\n",
                ("hi", None, Err("a chunk of the response body does not end with CRLF")),
            ),
        ];
        for (what, decoder, input, (data, trailers, end)) in cases {
            for step in [1, 3, 1000] {
                let got = decode_all(decoder, input, step);
                let want = (data.to_string(), trailers.map(str::to_string), end.map_err(str::to_string));
                assert_eq!(got, want, "{what}, read {step} at a time");
            }
        }
    }

    #[test]
    fn chunked_framing_beyond_its_bounds_is_refused() {
        let long_line = format!("1;{}\r\n", "x".repeat(MAX_CHUNK_LINE));
        let (_, _, end) = decode_all(Decoder::Chunked(Chunk::Size), &long_line, 1000);
        assert_eq!(end, Err("a chunk-size line of the response is longer than 4096 bytes".to_string()));
        let huge_trailers = format!("0\r\nx-t: {}", "v".repeat(MAX_HEAD + 1));
        let (_, _, end) = decode_all(Decoder::Chunked(Chunk::Size), &huge_trailers, 4096);
        assert_eq!(end, Err("the response's trailers are larger than 64 KiB".to_string()));
        let overflow = "10000000000000000\r\n";
        let (_, _, end) = decode_all(Decoder::Chunked(Chunk::Size), overflow, 1000);
        assert_eq!(end, Err("the chunk size \"10000000000000000\" of the response is not valid".to_string()));
    }

    #[test]
    fn settle_sees_the_end_of_a_chunked_body_without_a_read() {
        let mut decoder = Decoder::Chunked(Chunk::Size);
        let mut buf = BytesMut::from("3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(decoder.decode(&mut buf), Ok(Decoded::Data(Bytes::from_static(b"abc"))));
        assert!(!decoder.is_done());
        decoder.settle(&mut buf).unwrap();
        assert!(decoder.is_done() && buf.is_empty());
        // Trailers are left for decode to hand over.
        let mut decoder = Decoder::Chunked(Chunk::Size);
        let mut buf = BytesMut::from("1\r\na\r\n0\r\nx: y\r\n\r\n");
        let _ = decoder.decode(&mut buf);
        decoder.settle(&mut buf).unwrap();
        assert_eq!((decoder, &buf[..]), (Decoder::Chunked(Chunk::Trailers), &b"x: y\r\n\r\n"[..]));
    }
}
