//! Weir's HTTP/1.1 client: one request at a time on a pooled connection, driven by the task of the request
//! it serves, its response body reading straight from the connection's buffer.
//!
//! Why not hyper's client connection: each exchange on it crossed two channels (request in, response out),
//! a body channel, and a connection future polled four to six times; at about 16k instructions of the
//! 44k a proxied request cost, it was the largest part of Weir's own work (docs/benchmarks.md, "Own
//! HTTP/1.1 upstream client"). Here a request is written, its head parsed from the first read, and its body's
//! bytes handed on as slices of that read. hyper still serves downstream and HTTP/2 upstreams.

pub mod encoded;
pub mod request;
pub mod response;

use super::pool::{Home, Stream};
use super::{BoxError, UpstreamBody};
use crate::http1::decode::{Decoded, Decoder, Side};
use crate::io::Batched;
use crate::upstream::breaker::Slot;
use bytes::{Bytes, BytesMut};
use encoded::EncodedFields;
use http::{Method, Request, Response};
use http_body::{Frame, SizeHint};
use request::Outgoing;
use response::{Parsed, ResponseFields};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::time::Instant;

/// An open HTTP/1.1 connection to an endpoint.
pub struct Conn {
    io: Batched<Stream>,
    buf: BytesMut,
    read_size: usize,
    /// When it last went back to its pool.
    pub(super) idle_since: Instant,
    /// The connection's place under the cluster's `max_connections`, given back when it closes.
    _permit: Option<Slot>,
}

impl Conn {
    /// A connection over `stream`.
    pub fn new(stream: Stream, permit: Option<Slot>) -> Conn {
        Conn {
            io: Batched::upstream(stream),
            buf: BytesMut::new(),
            read_size: crate::http1::read::FIRST_READ,
            idle_since: Instant::now(),
            _permit: permit,
        }
    }

    /// Reads what the socket has into the buffer: the byte count, 0 at the peer's close.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        crate::http1::read::poll_fill(&mut self.io, &mut self.buf, &mut self.read_size, cx)
    }

    /// Whether an idle connection can take a request: its peer neither closed it nor sent anything unasked.
    /// Costs no system call when nothing arrived (the socket is known drained since the last read).
    pub(super) fn poll_still_open(&mut self, cx: &mut Context<'_>) -> bool {
        self.buf.is_empty() && self.poll_fill(cx).is_pending()
    }

    /// Reads until a final response head is whole; interim (1xx) heads are skipped.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        head_request: bool,
        kept: ResponseFields,
    ) -> Poll<Result<response::Head, HeadError>> {
        loop {
            if !self.buf.is_empty() {
                match response::parse_head(&mut self.buf, head_request, kept) {
                    Ok(Parsed::Final(head)) => return Poll::Ready(Ok(head)),
                    Ok(Parsed::Interim) => continue,
                    Ok(Parsed::Partial) => {}
                    Err(e) => return Poll::Ready(Err(HeadError::Answered(e))),
                }
            }
            let had = !self.buf.is_empty();
            match ready!(self.poll_fill(cx)) {
                Ok(0) if had => {
                    return Poll::Ready(Err(HeadError::Answered(
                        "the upstream closed the connection inside the response head".into(),
                    )))
                }
                Ok(0) => {
                    return Poll::Ready(Err(HeadError::Unanswered(
                        "the upstream closed the connection before answering".into(),
                    )))
                }
                Ok(_) => {}
                Err(e) if had => return Poll::Ready(Err(HeadError::Answered(format!("reading the response: {e}")))),
                Err(e) => return Poll::Ready(Err(HeadError::Unanswered(format!("reading the response: {e}")))),
            }
        }
    }
}

/// Why no response head came.
enum HeadError {
    /// Nothing of an answer arrived (the request may not have been seen).
    Unanswered(String),
    /// Part of an answer arrived, or it was not valid.
    Answered(String),
}

/// A request that got no answer, with the request when it can be sent again elsewhere: no byte of its body
/// was taken, and either it did not go out whole or its method is idempotent and nothing answered it.
pub struct Failed {
    /// What went wrong.
    pub detail: String,
    /// The request, unchanged.
    pub request: Option<Request<UpstreamBody>>,
}

/// Sends `req` on `conn` and waits for the response head (with the fields `kept`). The body streams from the
/// connection; when it ends cleanly the connection goes back to `home` (when given) for the next request.
pub async fn send(
    mut conn: Box<Conn>,
    req: Request<UpstreamBody>,
    home: Option<Home>,
    kept: ResponseFields,
) -> Result<Response<Body>, Failed> {
    let (parts, body) = req.into_parts();
    let mut out = Outgoing::new(&parts, body);
    let head_request = parts.method == Method::HEAD;
    let mut write_failed = false;
    let head = poll_fn(|cx| {
        if let Err(e) = out.poll(&mut conn.io, cx) {
            write_failed = true;
            return Poll::Ready(Err(HeadError::Answered(e)));
        }
        conn.poll_head(cx, head_request, kept)
    })
    .await;
    let head = match head {
        Ok(head) => head,
        Err(HeadError::Unanswered(detail)) | Err(HeadError::Answered(detail)) if write_failed || !out.started() => {
            let request = out.take_unread_body().map(|body| Request::from_parts(parts, body));
            return Err(Failed { detail, request });
        }
        Err(HeadError::Unanswered(detail)) => {
            let again = parts.method.is_idempotent();
            let request = again.then(|| out.take_unread_body()).flatten().map(|b| Request::from_parts(parts, b));
            return Err(Failed { detail, request });
        }
        Err(HeadError::Answered(detail)) => return Err(Failed { detail, request: None }),
    };
    let mut response = Response::new(Body {
        conn: Some(conn),
        out,
        decoder: head.decoder,
        keep_alive: head.keep_alive,
        home,
        ended: false,
        encoded: head.encoded,
    });
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    response.body_mut().settle();
    Ok(response)
}

/// A response body read from its connection as it is polled; it also writes what is left of the request.
pub struct Body {
    /// Boxed where it is made, so moving the body (and the response holding it) does not copy it.
    conn: Option<Box<Conn>>,
    out: Outgoing,
    decoder: Decoder,
    keep_alive: bool,
    home: Option<Home>,
    ended: bool,
    /// The response's fields as lines, when they were kept so (`ResponseFields::Encoded`).
    encoded: Option<Box<EncodedFields>>,
}

impl Body {
    /// The response's fields as lines, when they were kept so: the response's map then holds none of them.
    pub fn take_encoded(&mut self) -> Option<Box<EncodedFields>> {
        self.encoded.take()
    }

    /// Moves past framing already read; at the body's end, gives the connection back.
    fn settle(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            if self.decoder.settle(&mut conn.buf, Side::Response).is_err() {
                return; // reported by the next decode
            }
        }
        if self.decoder.is_done() {
            self.end();
        }
    }

    /// The body ended: its connection goes back to the pool when it can carry another request, else closes.
    fn end(&mut self) {
        self.ended = true;
        let Some(mut conn) = self.conn.take() else { return };
        if self.keep_alive && self.out.done() && conn.buf.is_empty() {
            if let Some(home) = self.home.take() {
                conn.idle_since = Instant::now();
                home.put_back(conn);
            }
        }
    }

    fn fail(&mut self, detail: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(detail.into())))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
        if !this.out.done() {
            if let Err(e) = this.out.poll(&mut conn.io, cx) {
                return this.fail(e);
            }
        }
        loop {
            match this.decoder.decode(&mut conn.buf, Side::Response) {
                Ok(Decoded::Data(data)) => {
                    this.settle();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Trailers(trailers)) => {
                    this.end();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(Decoded::End) => {
                    this.end();
                    return Poll::Ready(None);
                }
                Ok(Decoded::More) => match ready!(conn.poll_fill(cx)) {
                    Ok(0) => {
                        return match this.decoder.at_close(Side::Response) {
                            Ok(()) => {
                                this.keep_alive = false;
                                this.end();
                                Poll::Ready(None)
                            }
                            Err(e) => this.fail(e),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return this.fail(format!("reading the response body: {e}")),
                },
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
