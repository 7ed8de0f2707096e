//! Decoding an HTTP/1.1 message body as its bytes arrive: by `content-length`, chunked (RFC 9112 section 7.1,
//! trailers included), or to the connection's close. Each piece is handed on as a slice of the read buffer.
//! Weir's upstream client decodes response bodies with it and its HTTP/1.1 server request bodies.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Bound on a chunked body's trailers.
pub const MAX_TRAILERS: usize = 64 * 1024;
/// Bound on the fields of a trailer section.
const MAX_FIELDS: usize = 100;
/// Bound on a chunk-size line (size and extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// Which message a body belongs to, for the words of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A request body, from a client.
    Request,
    /// A response body, from an upstream.
    Response,
}

impl Side {
    /// "request" or "response".
    pub fn noun(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Response => "response",
        }
    }

    fn peer(self) -> &'static str {
        match self {
            Side::Request => "client",
            Side::Response => "upstream",
        }
    }
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

/// How a message body is framed, and how much of it is left.
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
    pub fn decode(&mut self, buf: &mut BytesMut, side: Side) -> Result<Decoded, String> {
        match self {
            Decoder::Length(0) => Ok(Decoded::End),
            Decoder::Length(_) | Decoder::Eof if buf.is_empty() => Ok(Decoded::More),
            Decoder::Length(left) => {
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                Ok(Decoded::Data(buf.split_to(n as usize).freeze()))
            }
            Decoder::Eof => Ok(Decoded::Data(buf.split().freeze())),
            Decoder::Chunked(state) => decode_chunked(state, buf, side),
        }
    }

    /// Consumes the framing that follows data already passed on when it is all in `buf` (a chunk's CRLF, the
    /// last chunk, an empty trailer section), so the body is seen to end without another read.
    pub fn settle(&mut self, buf: &mut BytesMut, side: Side) -> Result<(), String> {
        if let Decoder::Chunked(state) = self {
            loop {
                match *state {
                    Chunk::DataEnd | Chunk::Size => {
                        if !step(state, buf, side)? {
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
    pub fn at_close(&self, side: Side) -> Result<(), String> {
        match self {
            Decoder::Eof => Ok(()),
            d if d.is_done() => Ok(()),
            Decoder::Length(left) => {
                Err(format!("the {} closed the connection {left} bytes before the body's end", side.peer()))
            }
            _ => Err(format!("the {} closed the connection before the chunked body's end", side.peer())),
        }
    }
}

fn decode_chunked(state: &mut Chunk, buf: &mut BytesMut, side: Side) -> Result<Decoded, String> {
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
                    if buf.len() > MAX_TRAILERS {
                        return Err(format!(
                            "the {}'s trailers are larger than {} KiB",
                            side.noun(),
                            MAX_TRAILERS / 1024
                        ));
                    }
                    return Ok(Decoded::More);
                };
                let section = buf.split_to(end + 4);
                let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
                let parsed = httparse::parse_headers(&section, &mut fields)
                    .map_err(|e| format!("the {}'s trailers are malformed: {e}", side.noun()))?;
                let httparse::Status::Complete((_, fields)) = parsed else {
                    return Err(format!("the {}'s trailers are malformed", side.noun()));
                };
                let mut trailers = HeaderMap::with_capacity(fields.len());
                for field in fields {
                    let name = HeaderName::from_bytes(field.name.as_bytes())
                        .map_err(|_| format!("the {}'s trailers have an invalid name", side.noun()))?;
                    let value = HeaderValue::from_bytes(field.value)
                        .map_err(|_| format!("the {}'s trailer {name} has an invalid value", side.noun()))?;
                    trailers.append(name, value);
                }
                *state = Chunk::Done;
                return Ok(Decoded::Trailers(trailers));
            }
            Chunk::Size | Chunk::DataEnd => {
                if !step(state, buf, side)? {
                    return Ok(Decoded::More);
                }
            }
        }
    }
}

/// Reads a chunk-size line or a chunk's CRLF when whole in `buf`; false when more bytes are needed.
fn step(state: &mut Chunk, buf: &mut BytesMut, side: Side) -> Result<bool, String> {
    match *state {
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(false);
            }
            if !buf.starts_with(b"\r\n") {
                return Err(format!("a chunk of the {} body does not end with CRLF", side.noun()));
            }
            let _ = buf.split_to(2);
            *state = Chunk::Size;
            Ok(true)
        }
        Chunk::Size => {
            let Some(end) = find(&buf[..buf.len().min(MAX_CHUNK_LINE)], b"\r\n") else {
                if buf.len() >= MAX_CHUNK_LINE {
                    return Err(format!(
                        "a chunk-size line of the {} is longer than {MAX_CHUNK_LINE} bytes",
                        side.noun()
                    ));
                }
                return Ok(false);
            };
            let size = chunk_size(&buf[..end], side)?;
            let _ = buf.split_to(end + 2);
            *state = if size == 0 { Chunk::Trailers } else { Chunk::Data(size) };
            Ok(true)
        }
        _ => Ok(true),
    }
}

/// The size of a chunk-size line (hex digits, then optional whitespace and `;` extensions).
fn chunk_size(line: &[u8], side: Side) -> Result<u64, String> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let rest_ok = rest.iter().position(|b| !matches!(b, b' ' | b'\t')).is_none_or(|i| rest[i] == b';');
    if digits == 0 || digits > 16 || !rest_ok {
        return Err(format!("the chunk size {:?} of the {} is not valid", String::from_utf8_lossy(line), side.noun()));
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

    /// Decodes `input` fed in pieces of `step` bytes; the data, trailers and how it ended.
    fn decode_all(mut decoder: Decoder, input: &str, step: usize) -> (String, Option<String>, Result<(), String>) {
        let (mut buf, mut data, mut trailers) = (BytesMut::new(), String::new(), None);
        let mut rest = input.as_bytes();
        loop {
            match decoder.decode(&mut buf, Side::Response) {
                Ok(Decoded::Data(b)) => data.push_str(std::str::from_utf8(&b).unwrap()),
                Ok(Decoded::Trailers(t)) => {
                    trailers = Some(t.iter().map(|(k, v)| format!("{k}={}", v.to_str().unwrap())).collect())
                }
                Ok(Decoded::End) => return (data, trailers, Ok(())),
                Ok(Decoded::More) if rest.is_empty() => return (data, trailers, decoder.at_close(Side::Response)),
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
        let huge_trailers = format!("0\r\nx-t: {}", "v".repeat(MAX_TRAILERS + 1));
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
        assert_eq!(decoder.decode(&mut buf, Side::Response), Ok(Decoded::Data(Bytes::from_static(b"abc"))));
        assert!(!decoder.is_done());
        decoder.settle(&mut buf, Side::Response).unwrap();
        assert!(decoder.is_done() && buf.is_empty());
        // Trailers are left for decode to hand over.
        let mut decoder = Decoder::Chunked(Chunk::Size);
        let mut buf = BytesMut::from("1\r\na\r\n0\r\nx: y\r\n\r\n");
        let _ = decoder.decode(&mut buf, Side::Response);
        decoder.settle(&mut buf, Side::Response).unwrap();
        assert_eq!((decoder, &buf[..]), (Decoder::Chunked(Chunk::Trailers), &b"x: y\r\n\r\n"[..]));
    }
}
