//! Framing an HTTP/1.1 message body as it is written: by `content-length` (a body longer or shorter than it is
//! an error, never a silent cut), chunked (with the trailers the head declares), or to the connection's close.
//! Weir's upstream client frames request bodies with it and its HTTP/1.1 server answers.

use super::decode::Side;
use http::{HeaderMap, HeaderValue};
use std::io::Write as _;

/// How the body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// No body goes out (frames are not written).
    None,
    /// `content-length`: the bytes still to send.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the connection closes (an answer of unknown length to an HTTP/1.0 client).
    Close,
}

impl Encoder {
    /// Appends `data` in this framing; a body longer than its `content-length` is an error.
    pub fn data(&mut self, data: &[u8], side: Side, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Encoder::None => {}
            Encoder::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(format!(
                        "the {} body is longer than its content-length ({} more bytes than announced)",
                        side.noun(),
                        data.len() as u64 - *remaining
                    ));
                }
                *remaining -= data.len() as u64;
                out.extend_from_slice(data);
            }
            Encoder::Chunked if data.is_empty() => {} // an empty chunk would end the body
            Encoder::Chunked => {
                let _ = write!(out, "{:x}\r\n", data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Encoder::Close => out.extend_from_slice(data),
        }
        Ok(())
    }

    /// Appends the body's end; a body shorter than its `content-length` is an error. A chunked body's trailers
    /// go with it when `declared` (the message's `trailer` values; for an answer, given only when the client takes
    /// trailers) names them, as hyper sends them; fields that may not be trailers never do.
    pub fn end(
        &mut self,
        trailers: Option<&HeaderMap>,
        declared: &[HeaderValue],
        side: Side,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match *self {
            Encoder::Length(remaining) if remaining > 0 => {
                Err(format!("the {} body ended {remaining} bytes short of its content-length", side.noun()))
            }
            Encoder::Chunked => {
                out.extend_from_slice(b"0\r\n");
                if let Some(trailers) = trailers {
                    crate::http1::trailers::write_declared(trailers, declared, out);
                }
                out.extend_from_slice(b"\r\n");
                *self = Encoder::None;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_framed_and_their_lengths_kept() {
        let mut out = Vec::new();
        let mut chunked = Encoder::Chunked;
        chunked.data(b"hello", Side::Response, &mut out).unwrap();
        chunked.data(b"", Side::Response, &mut out).unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "7".parse().unwrap());
        trailers.insert("x-other", "1".parse().unwrap());
        trailers.insert("content-type", "text/plain".parse().unwrap());
        let declared = ["X-Sum, content-type".parse().unwrap()];
        chunked.end(Some(&trailers), &declared, Side::Response, &mut out).unwrap();
        assert_eq!(out, b"5\r\nhello\r\n0\r\nx-sum: 7\r\n\r\n", "declared trailers only, never content-type");
        let mut undeclared = Encoder::Chunked;
        out.clear();
        undeclared.end(Some(&trailers), &[], Side::Response, &mut out).unwrap();
        assert_eq!(out, b"0\r\n\r\n");
        let mut length = Encoder::Length(3);
        out.clear();
        length.data(b"ab", Side::Request, &mut out).unwrap();
        assert_eq!(
            length.data(b"cd", Side::Request, &mut out).unwrap_err(),
            "the request body is longer than its content-length (1 more bytes than announced)"
        );
        let mut short = Encoder::Length(3);
        short.data(b"a", Side::Response, &mut out).unwrap();
        assert_eq!(
            short.end(None, &[], Side::Response, &mut out).unwrap_err(),
            "the response body ended 2 bytes short of its content-length"
        );
    }
}
