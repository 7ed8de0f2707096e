//! Weir's HTTP/1.1 server: one connection served by its own task, requests one after the other (pipelined
//! ones from the buffer), each head parsed from the read that brought it and each answer written with one
//! write where it fits.
//!
//! Why not hyper's server connection: with its h1/h2c `auto` wrapper it was about 10k instructions of the
//! 32k a proxied request cost, and it copied the request's future (6.6 KB) once more when storing it
//! (docs/benchmarks.md, "Own HTTP/1.1 server"). hyper still serves HTTP/2 (h2c prior knowledge and ALPN `h2`).
//!
//! What it keeps of hyper's behaviour: keep-alive per version and `connection`, pipelining, chunked request
//! bodies streamed as they arrive (full duplex with the answer), `Expect: 100-continue` answered when the
//! body is first read, the header-read timeout (armed only when a head does not arrive whole in one read), a
//! `date` field, framing of answers as hyper framed them (`response.rs`), and closing once the current answer
//! is out when the worker asks (idle or shutdown).

mod body;
pub mod request;
pub mod response;

pub use body::Incoming;

use super::idle::Watched;
use crate::http1::decode::Side;
use crate::http1::read::MAX_READ;
use crate::proxy::{ConnInfo, Pipeline, RequestBody};
use arc_swap::ArcSwap;
use body::{Inbound, Need};
use bytes::BytesMut;
use http_body::Body as _;
use request::Refused;
use response::{Asked, Encoder, Length};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Body bytes gathered before they are written (a head and a small body leave in one write).
const WRITE_BATCH: usize = 64 * 1024;

/// A client connection: the socket, what was read and not yet used, and what is still to be written.
pub struct Conn<S> {
    io: S,
    buf: BytesMut,
    read_size: usize,
    out: Vec<u8>,
    written: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// A connection over `io`.
    pub fn new(io: S) -> Conn<S> {
        Conn {
            io,
            buf: BytesMut::new(),
            read_size: crate::http1::read::FIRST_READ,
            out: Vec::with_capacity(1024),
            written: 0,
        }
    }

    /// What was read and not yet used.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The socket and the bytes read from it, for a protocol that takes over (HTTP/2).
    pub fn into_parts(self) -> (S, BytesMut) {
        (self.io, self.buf)
    }

    /// Reads what the socket has into the buffer: the byte count, 0 at the peer's close.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        crate::http1::read::poll_fill(&mut self.io, &mut self.buf, &mut self.read_size, cx)
    }

    /// Writes everything gathered, then flushes.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.out.clear();
        self.written = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    async fn write_out(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_out(cx)).await
    }
}

/// What a connection's listener gives it.
pub struct Settings<'a> {
    /// The pipeline current when each request arrives serves it.
    pub pipeline: &'a ArcSwap<Pipeline>,
    /// Time for a request head to arrive whole once its first byte did.
    pub header_timeout: Duration,
}

/// A request head, or what came instead. (The head is the large variant and the usual one: boxing it would cost
/// an allocation per request.)
#[allow(clippy::large_enum_variant)]
enum Next {
    Head(request::Head),
    /// The client closed, the worker asked to close while idle, or the socket failed: close quietly.
    Close,
    /// Answer this and close.
    Refuse(Refused),
}

/// Serves requests on `conn` until either side closes it.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: Conn<S>,
    info: &ConnInfo,
    settings: Settings<'_>,
    watched: &Watched,
) {
    loop {
        let head = match read_head(&mut conn, settings.header_timeout, watched).await {
            Next::Head(head) => head,
            Next::Close => break,
            Next::Refuse(refused) => {
                refuse(&mut conn, refused).await;
                break;
            }
        };
        match exchange(&mut conn, head, info, settings.pipeline, watched).await {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), poll_fn(|cx| Pin::new(&mut conn.io).poll_shutdown(cx))).await;
}

/// Waits for a whole request head. Its timeout runs once part of a head is in; an idle connection is left
/// to the worker's sweeper.
async fn read_head<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    header_timeout: Duration,
    watched: &Watched,
) -> Next {
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(|cx| loop {
        if !conn.buf.is_empty() {
            match request::parse_head(&mut conn.buf) {
                Ok(Some(head)) => return Poll::Ready(Next::Head(head)),
                Ok(None) => {}
                Err(refused) => return Poll::Ready(Next::Refuse(refused)),
            }
            let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(header_timeout)));
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Next::Refuse(Refused {
                    status: http::StatusCode::REQUEST_TIMEOUT,
                    detail: format!(
                        "the request head did not arrive within {} ms (the listener's header_timeout_ms)",
                        header_timeout.as_millis()
                    ),
                }));
            }
        } else if watched.poll_close(cx) {
            return Poll::Ready(Next::Close);
        }
        match ready!(conn.poll_fill(cx)) {
            Ok(0) | Err(_) => return Poll::Ready(Next::Close),
            Ok(_) => {}
        }
    })
    .await
}

/// Answers a request that cannot be served (its head is refused or late) with a JSON error; the connection
/// closes after it.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, refused: Refused) {
    let code = match refused.status.as_u16() {
        408 => "request_timeout",
        431 => "request_header_fields_too_large",
        505 => "http_version_not_supported",
        _ => "bad_request",
    };
    tracing::debug!(status = refused.status.as_u16(), detail = %refused.detail, "request refused");
    let answer = crate::error::json_error(refused.status, code, &refused.detail, "-");
    let (parts, bytes) = answer.into_parts();
    let asked = Asked { head: false, http10: false, keep_alive: false };
    let length = Length::Known(bytes.len() as u64);
    response::encode_head(parts.status, &parts.headers, None, length, asked, &mut conn.out);
    conn.out.extend_from_slice(&bytes);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.write_out()).await;
}

/// Serves one request: the pipeline's answer written as it comes while the request body is read as it is
/// asked for. `Ok(true)`: the connection can carry the next request.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    head: request::Head,
    info: &ConnInfo,
    pipeline: &ArcSwap<Pipeline>,
    watched: &Watched,
) -> io::Result<bool> {
    let request::Head { request, decoder, keep_alive, expects_continue, takes_trailers } = head;
    let asked_head = request.method() == http::Method::HEAD;
    let http10 = request.version() == http::Version::HTTP_10;
    let (mut inbound, request) = if decoder.is_done() {
        (None, request.map(|()| RequestBody::Empty))
    } else {
        let (inbound, incoming) = Inbound::new(decoder, expects_continue);
        (Some(inbound), request.map(|()| RequestBody::H1(incoming)))
    };
    // A body cut short or failed on the socket: the connection is not reused.
    let mut read_failed = false;

    let pipeline = pipeline.load_full();
    let mut answer = pin!(pipeline.handle(info.clone(), request));
    let response = poll_fn(|cx| {
        if let Some(inbound) = inbound.as_mut() {
            feed(conn, inbound, &mut read_failed, cx)?;
        }
        answer.as_mut().poll(cx).map(Ok::<_, io::Error>)
    })
    .await?;

    let (parts, mut body) = response.into_parts();
    let encoded = body.take_encoded();
    let mut body = pin!(body);
    let length = match (body.is_end_stream(), body.size_hint().exact()) {
        (true, _) => Length::Empty,
        (false, Some(n)) => Length::Known(n),
        (false, None) => Length::Unknown,
    };
    // Reusable only if the request body can still be read to its end and the worker does not want it closed.
    let drains = inbound.as_ref().is_none_or(|i| !i.will_not_drain());
    let keep_alive = keep_alive && drains && !read_failed && !watched.asked_to_close();
    let asked = Asked { head: asked_head, http10, keep_alive };
    let (mut encoder, mut reuse) =
        response::encode_head(parts.status, &parts.headers, encoded.as_deref(), length, asked, &mut conn.out);
    // The trailer fields the response declares, which alone go out as trailers (none unless the client takes them).
    let declared: Vec<http::HeaderValue> = match encoder {
        Encoder::Chunked if takes_trailers => crate::http1::trailers::declared(&parts.headers),
        _ => Vec::new(),
    };
    drop((parts, encoded));
    let mut body_done = length == Length::Empty || encoder == Encoder::None;
    if body_done {
        encoder.end(None, &declared, Side::Response, &mut conn.out).map_err(io::Error::other)?;
    }
    poll_fn(|cx| loop {
        if let Some(inbound) = inbound.as_mut() {
            feed(conn, inbound, &mut read_failed, cx)?;
        }
        let mut waiting = false;
        while !body_done && conn.out.len() - conn.written < WRITE_BATCH {
            match body.as_mut().poll_frame(cx) {
                Poll::Pending => {
                    waiting = true;
                    break;
                }
                Poll::Ready(None) => {
                    encoder.end(None, &declared, Side::Response, &mut conn.out).map_err(io::Error::other)?;
                    body_done = true;
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        encoder.data(&data, Side::Response, &mut conn.out).map_err(io::Error::other)?;
                        // A body that says it ended is not polled again (as hyper does).
                        if body.is_end_stream() {
                            encoder.end(None, &declared, Side::Response, &mut conn.out).map_err(io::Error::other)?;
                            body_done = true;
                        }
                    }
                    Err(frame) => {
                        encoder
                            .end(frame.trailers_ref(), &declared, Side::Response, &mut conn.out)
                            .map_err(io::Error::other)?;
                        body_done = true;
                    }
                },
                // The answer cannot be finished: the connection is cut so the client sees it incomplete.
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.to_string()))),
            }
        }
        ready!(conn.poll_write_out(cx))?;
        if body_done {
            return Poll::Ready(Ok::<_, io::Error>(()));
        }
        if waiting {
            // The answer waits (a stream between events): a client that leaves meanwhile is noticed now, not at
            // the next write, so the upstream exchange ends with it. Once the request body was read, a read
            // here sees the client's close (or the next pipelined request, kept, within one read's bound).
            if inbound.as_ref().is_none_or(Inbound::is_done) {
                while conn.buf.len() < MAX_READ {
                    match conn.poll_fill(cx) {
                        Poll::Pending => break,
                        Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(_)) => {}
                    }
                }
            }
            return Poll::Pending;
        }
    })
    .await?;

    // What is left of the request body is read and thrown away (within a bound), so the next request
    // starts where it should.
    if let Some(mut inbound) = inbound.filter(|i| !i.is_done()) {
        if reuse && !read_failed {
            reuse = poll_fn(|cx| loop {
                match inbound.drain(&mut conn.buf) {
                    Ok(true) => return Poll::Ready(true),
                    Err(()) => return Poll::Ready(false),
                    Ok(false) => match ready!(conn.poll_fill(cx)) {
                        Ok(0) | Err(_) => return Poll::Ready(false),
                        Ok(_) => {}
                    },
                }
            })
            .await;
        }
    }
    Ok(reuse && !read_failed)
}

/// Feeds the request body what it asks for; writes `100 Continue` first when owed.
fn feed<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    inbound: &mut Inbound,
    read_failed: &mut bool,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    if *read_failed {
        return Ok(());
    }
    loop {
        match inbound.feed(&mut conn.buf, cx) {
            Need::Wait => return Ok(()),
            Need::Continue => {
                conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                if let Poll::Ready(Err(e)) = conn.poll_write_out(cx) {
                    return Err(e);
                }
            }
            Need::Read => match conn.poll_fill(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(0)) => {
                    *read_failed = true;
                    inbound.cut(None);
                    return Ok(());
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    *read_failed = true;
                    inbound.cut(Some(e));
                    return Ok(());
                }
            },
        }
    }
}

/// A request head as HTTP/2's connection preface starts ("PRI * HTTP/2.0"): hyper takes the connection over.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the connection's first bytes tell HTTP/2's preface from an HTTP/1.1 request. `None`: the client
/// closed (or the worker asked to close) before.
pub async fn sniff<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, watched: &Watched) -> Option<bool> {
    poll_fn(|cx| loop {
        let n = conn.buf.len().min(H2_PREFACE.len());
        if conn.buf[..n] != H2_PREFACE[..n] {
            return Poll::Ready(Some(false));
        }
        if n == H2_PREFACE.len() {
            return Poll::Ready(Some(true));
        }
        if n == 0 && watched.poll_close(cx) {
            return Poll::Ready(None);
        }
        match ready!(conn.poll_fill(cx)) {
            Ok(0) | Err(_) => return Poll::Ready(None),
            Ok(_) => {}
        }
    })
    .await
}
