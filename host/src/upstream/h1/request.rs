//! The request half of an HTTP/1.1 exchange: the head written in one buffer, the body framed (by its
//! content-length or chunked) and written as it arrives, with no copy kept once it is out.
//!
//! The framing follows hyper's client (1.8, `proto::h1::role::Client::set_length`), so upstreams see what they
//! saw before Weir had its own client: a body that is known empty gets no framing header (a `content-length`
//! the request carries is kept); a length the body knows becomes `content-length`; an unknown length is
//! sent chunked, except for GET, HEAD and CONNECT, which are sent without a body.

use super::super::UpstreamBody;
use crate::http1::decode::Side;
pub use crate::http1::encode::Encoder;
use crate::http1::fields::{ends_chunked, write_field};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Version};
use http_body::Body as _;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// Bytes gathered from the body before they are written (a head and its small body leave in one write).
const WRITE_BATCH: usize = 64 * 1024;

/// The request's head (request line, fields, framing) appended to `out`, and how its body is framed.
/// `known` is the body's exact length when it knows it; `empty` says it is known to have no bytes.
pub fn encode_head(parts: &http::request::Parts, empty: bool, known: Option<u64>, out: &mut Vec<u8>) -> Encoder {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = match (&parts.method, parts.uri.authority()) {
        (&Method::CONNECT, Some(authority)) => authority.as_str(),
        _ => parts.uri.path_and_query().map_or("/", |p| p.as_str()),
    };
    out.extend_from_slice(target.as_bytes());
    let http10 = parts.version == Version::HTTP_10;
    out.extend_from_slice(if http10 { b" HTTP/1.0\r\n" } else { b" HTTP/1.1\r\n" });

    let headers = &parts.headers;
    let (encoder, framing) = framing(&parts.method, headers, http10, empty, known);
    match framing {
        Framing::AsIs => write_fields(headers, out),
        Framing::Without(skip) => {
            for (name, value) in headers {
                if !skip.iter().any(|s| s == name) {
                    write_field(name.as_str(), value.as_bytes(), out);
                }
            }
        }
    }
    match encoder {
        Encoder::Length(n) if !headers.contains_key(CONTENT_LENGTH) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Encoder::Chunked => {
            let mut values = headers.get_all(TRANSFER_ENCODING).iter().peekable();
            if values.peek().is_none() {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            } else {
                // Transfer codings the request named, with `chunked` made the last.
                let named: Vec<&[u8]> = values.map(|v| v.as_bytes()).collect();
                out.extend_from_slice(b"transfer-encoding: ");
                out.extend_from_slice(&named.join(&b", "[..]));
                if !ends_chunked(headers) {
                    out.extend_from_slice(b", chunked");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
    encoder
}

/// Which of the request's fields are written as they are.
enum Framing {
    AsIs,
    Without(&'static [http::HeaderName]),
}

fn framing(method: &Method, headers: &HeaderMap, http10: bool, empty: bool, known: Option<u64>) -> (Encoder, Framing) {
    static TE: [http::HeaderName; 1] = [TRANSFER_ENCODING];
    static TE_AND_LENGTH: [http::HeaderName; 2] = [TRANSFER_ENCODING, CONTENT_LENGTH];
    let has_te = headers.contains_key(TRANSFER_ENCODING);
    if empty {
        return (Encoder::None, if has_te { Framing::Without(&TE) } else { Framing::AsIs });
    }
    let declared = declared_length(headers);
    if http10 {
        // HTTP/1.0 has no chunked coding: a body of unknown length cannot be sent.
        let encoder = match (declared, known) {
            (Some(n), _) | (None, Some(n)) => Encoder::Length(n),
            (None, None) => Encoder::None,
        };
        return (encoder, if has_te { Framing::Without(&TE) } else { Framing::AsIs });
    }
    if has_te {
        return (Encoder::Chunked, Framing::Without(&TE_AND_LENGTH));
    }
    match (declared, known) {
        (Some(n), _) | (None, Some(n)) => (Encoder::Length(n), Framing::AsIs),
        (None, None) if matches!(*method, Method::GET | Method::HEAD | Method::CONNECT) => {
            (Encoder::None, Framing::AsIs)
        }
        (None, None) => (Encoder::Chunked, Framing::AsIs),
    }
}

/// The request's `content-length`, when every value it gives is the same number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.to_str().ok()?.split(',') {
            let n: u64 = part.trim().parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    length
}

fn write_fields(headers: &HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        write_field(name.as_str(), value.as_bytes(), out);
    }
}

/// The request going out: bytes not yet written, and the body still to read from.
pub struct Outgoing {
    buf: Vec<u8>,
    written: usize,
    flush: bool,
    /// Some byte went out (kept when the buffer is cleared and reused).
    sent: bool,
    body: Option<UpstreamBody>,
    encoder: Encoder,
    /// The request's `trailer` values (chunked bodies only).
    declared: Vec<HeaderValue>,
    /// The body gave its end (or is not sent).
    body_done: bool,
    /// A body frame was taken: the request cannot be given back to be sent elsewhere.
    pub polled: bool,
}

impl Outgoing {
    /// The request's head encoded, its body kept to be written as it comes.
    pub fn new(parts: &http::request::Parts, body: UpstreamBody) -> Outgoing {
        let mut buf = Vec::with_capacity(512);
        let empty = body.is_end_stream();
        let encoder = encode_head(parts, empty, body.size_hint().exact(), &mut buf);
        let body_done = encoder == Encoder::None;
        let declared =
            if encoder == Encoder::Chunked { crate::http1::trailers::declared(&parts.headers) } else { Vec::new() };
        Outgoing {
            buf,
            written: 0,
            flush: false,
            sent: false,
            body: Some(body),
            encoder,
            declared,
            body_done,
            polled: false,
        }
    }

    /// Everything was written and flushed: the connection may carry another request once the answer ends.
    pub fn done(&self) -> bool {
        self.body_done && self.written >= self.buf.len() && !self.flush
    }

    /// Whether any byte went out.
    pub fn started(&self) -> bool {
        self.sent
    }

    /// The body, when no frame was taken from it.
    pub fn take_unread_body(&mut self) -> Option<UpstreamBody> {
        if self.polled {
            return None;
        }
        self.body.take()
    }

    /// Writes as far as the socket and the body allow; returns once either would wait (its waker is
    /// registered) or all is out.
    pub fn poll<W: AsyncWrite + Unpin>(&mut self, io: &mut W, cx: &mut Context<'_>) -> Result<(), String> {
        loop {
            while !self.body_done && self.buf.len() - self.written < WRITE_BATCH {
                let Some(body) = self.body.as_mut() else { break };
                let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) else { break };
                // Even a failed read consumed the body (a filter may have stopped it): it is not sent again.
                self.polled = true;
                match frame {
                    None => self.finish(None)?,
                    Some(Err(e)) => return Err(format!("reading the request body: {e}")),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => self.encoder.data(&data, Side::Request, &mut self.buf)?,
                        Err(frame) => {
                            let trailers = frame.into_trailers().ok();
                            self.finish(trailers.as_ref())?;
                        }
                    },
                }
            }
            if self.written >= self.buf.len() {
                self.buf.clear();
                self.written = 0;
                if self.flush {
                    match Pin::new(&mut *io).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.flush = false,
                        Poll::Ready(Err(e)) => return Err(format!("writing the request: {e}")),
                        Poll::Pending => {}
                    }
                }
                return Ok(());
            }
            match Pin::new(&mut *io).poll_write(cx, &self.buf[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Err("the upstream closed the connection while the request was written".into())
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.flush = true;
                    self.sent = true;
                }
                Poll::Ready(Err(e)) => return Err(format!("writing the request: {e}")),
                Poll::Pending => return Ok(()),
            }
        }
    }

    fn finish(&mut self, trailers: Option<&HeaderMap>) -> Result<(), String> {
        self.body_done = true;
        self.body = None;
        self.encoder.end(trailers, &self.declared, Side::Request, &mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt as _;

    fn full(data: &'static str) -> UpstreamBody {
        http_body_util::Full::new(Bytes::from_static(data.as_bytes())).map_err(|never| match never {}).boxed_unsync()
    }

    fn head(req: http::Request<()>, empty: bool, known: Option<u64>) -> (String, Encoder) {
        let (parts, ()) = req.into_parts();
        let mut out = Vec::new();
        let encoder = encode_head(&parts, empty, known, &mut out);
        (String::from_utf8(out).unwrap(), encoder)
    }

    #[test]
    fn heads_are_framed_as_hyper_frames_them() {
        let get = || http::Request::get("/a?b=1").header("host", "h");
        let post = || http::Request::post("/p").header("host", "h");
        // (what, request, body known empty, body's known length, head written, framing)
        type Case = (&'static str, http::Request<()>, bool, Option<u64>, &'static str, Encoder);
        let cases: Vec<Case> = vec![
            (
                "empty GET",
                get().body(()).unwrap(),
                true,
                Some(0),
                "GET /a?b=1 HTTP/1.1\r\nhost: h\r\n\r\n",
                Encoder::None,
            ),
            (
                "empty POST keeps its content-length: 0",
                post().header("content-length", "0").body(()).unwrap(),
                true,
                Some(0),
                "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n",
                Encoder::None,
            ),
            (
                "known length",
                post().body(()).unwrap(),
                false,
                Some(5),
                "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\n",
                Encoder::Length(5),
            ),
            (
                "declared length wins over the body's",
                post().header("content-length", "7").body(()).unwrap(),
                false,
                None,
                "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 7\r\n\r\n",
                Encoder::Length(7),
            ),
            (
                "unknown length is chunked",
                post().body(()).unwrap(),
                false,
                None,
                "POST /p HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n",
                Encoder::Chunked,
            ),
            (
                "GET of unknown length sends no body",
                get().body(()).unwrap(),
                false,
                None,
                "GET /a?b=1 HTTP/1.1\r\nhost: h\r\n\r\n",
                Encoder::None,
            ),
            (
                "a named coding gets chunked last, content-length dropped",
                post().header("transfer-encoding", "gzip").header("content-length", "3").body(()).unwrap(),
                false,
                None,
                "POST /p HTTP/1.1\r\nhost: h\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Encoder::Chunked,
            ),
            (
                "HTTP/1.0 with unknown length sends no body",
                post().version(Version::HTTP_10).body(()).unwrap(),
                false,
                None,
                "POST /p HTTP/1.0\r\nhost: h\r\n\r\n",
                Encoder::None,
            ),
        ];
        for (what, req, empty, known, want, encoder) in cases {
            assert_eq!(head(req, empty, known), (want.to_string(), encoder), "{what}");
        }
    }

    /// An in-memory writer that takes at most `step` bytes per write.
    struct Sink {
        got: Vec<u8>,
        step: usize,
    }

    impl AsyncWrite for Sink {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
            let this = self.get_mut();
            let n = data.len().min(this.step);
            this.got.extend_from_slice(&data[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn written(req: http::Request<UpstreamBody>) -> Result<String, String> {
        let (parts, body) = req.into_parts();
        let mut out = Outgoing::new(&parts, body);
        let mut sink = Sink { got: Vec::new(), step: 7 };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..100 {
            out.poll(&mut sink, &mut cx)?;
            if out.done() {
                return Ok(String::from_utf8(sink.got).unwrap());
            }
        }
        Err("did not finish".into())
    }

    #[test]
    fn bodies_are_written_in_their_framing() {
        let stream = |parts: &'static [&'static str], trailer: bool| -> UpstreamBody {
            let mut frames: std::collections::VecDeque<http_body::Frame<Bytes>> =
                parts.iter().map(|p| http_body::Frame::data(Bytes::from_static(p.as_bytes()))).collect();
            if trailer {
                let mut t = HeaderMap::new();
                t.insert("x-sum", "9".parse().unwrap());
                frames.push_back(http_body::Frame::trailers(t));
            }
            Frames(frames).boxed_unsync()
        };
        let cases: Vec<(&str, http::Request<UpstreamBody>, Result<&str, &str>)> = vec![
            (
                "content-length",
                http::Request::post("/").body(full("hello")).unwrap(),
                Ok("POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello"),
            ),
            (
                "chunked, an empty frame skipped",
                http::Request::post("/").body(stream(&["ab", "", "cde"], false)).unwrap(),
                Ok("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
            ),
            (
                "chunked with declared trailers",
                http::Request::post("/").header("trailer", "x-sum").body(stream(&["ab"], true)).unwrap(),
                Ok("POST / HTTP/1.1\r\ntrailer: x-sum\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nx-sum: 9\r\n\r\n"),
            ),
            (
                "chunked with undeclared trailers (dropped, as hyper's client drops them)",
                http::Request::post("/").body(stream(&["ab"], true)).unwrap(),
                Ok("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"),
            ),
            (
                "shorter than declared",
                http::Request::post("/").header("content-length", "9").body(stream(&["ab"], false)).unwrap(),
                Err("the request body ended 7 bytes short of its content-length"),
            ),
            (
                "longer than declared",
                http::Request::post("/").header("content-length", "1").body(stream(&["ab"], false)).unwrap(),
                Err("the request body is longer than its content-length (1 more bytes than announced)"),
            ),
        ];
        for (what, req, want) in cases {
            assert_eq!(written(req), want.map(str::to_string).map_err(str::to_string), "{what}");
        }
    }

    /// A body that yields the given frames, each at once.
    struct Frames(std::collections::VecDeque<http_body::Frame<Bytes>>);

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = Box<dyn std::error::Error + Send + Sync>;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(Ok))
        }
    }
}
