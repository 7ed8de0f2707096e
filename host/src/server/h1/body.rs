//! A request body as the pipeline reads it, fed by the connection that owns the socket.
//!
//! The connection's task decodes the body from its read buffer only when the body asks for more (so a filter or
//! an upstream that reads slowly slows the client down, nothing piles up), and leaves one frame at a time in a
//! shared slot. Reader and connection are usually the same task; an HTTP/2 upstream reads the body from a task of
//! its own, hence the wakers.

use crate::http1::decode::{Decoded, Decoder, Side};
use crate::upstream::BoxError;
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// What the connection and the body share.
#[derive(Default)]
struct Slot {
    /// The next frame, or the error that ended the body.
    frame: Option<Result<Frame<Bytes>, String>>,
    /// No frame comes after `frame`.
    ended: bool,
    /// The body waits for a frame.
    wanted: bool,
    /// The body's reader, waiting for a frame.
    reader: Option<Waker>,
    /// The connection, waiting to be asked for more.
    conn: Option<Waker>,
    /// The body was dropped: nothing reads it any more.
    dropped: bool,
}

#[derive(Default)]
struct Link(Mutex<Slot>);

impl Link {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// The body of a request read by Weir's HTTP/1.1 server.
pub struct Incoming {
    link: Arc<Link>,
    /// Bytes still to come, when the request gave its length.
    remaining: Option<u64>,
    done: bool,
}

impl http_body::Body for Incoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut slot = this.link.lock();
        match slot.frame.take() {
            Some(Ok(frame)) => {
                if let (Some(data), Some(remaining)) = (frame.data_ref(), this.remaining.as_mut()) {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                }
                this.done = slot.ended;
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            None if slot.ended => {
                this.done = true;
                Poll::Ready(None)
            }
            None => {
                slot.wanted = true;
                set_waker(&mut slot.reader, cx.waker());
                let conn = slot.conn.take();
                drop(slot);
                if let Some(conn) = conn {
                    conn.wake();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let mut slot = self.link.lock();
        slot.dropped = true;
        let conn = slot.conn.take();
        drop(slot);
        if let Some(conn) = conn {
            conn.wake();
        }
    }
}

/// The connection's side of a request body being read.
pub struct Inbound {
    link: Arc<Link>,
    decoder: Decoder,
    /// `100 Continue` is owed before the first read of the body.
    continue_owed: bool,
    /// Body bytes read and thrown away after the answer (bounded by [`DRAIN_LIMIT`]).
    drained: u64,
}

/// Unread request body the connection reads and discards after the answer to stay reusable; past it, the
/// connection closes instead.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// What the connection must do for the body now.
pub enum Need {
    /// Nothing until woken.
    Wait,
    /// Read from the socket into the buffer, then call [`Inbound::feed`] again.
    Read,
    /// Write `100 Continue` before reading.
    Continue,
}

impl Inbound {
    /// A body framed by `decoder`, and the [`Incoming`] the pipeline reads.
    pub fn new(decoder: Decoder, expects_continue: bool) -> (Inbound, Incoming) {
        let link = Arc::new(Link::default());
        let incoming = Incoming { link: link.clone(), remaining: decoder.remaining(), done: false };
        (Inbound { link, decoder, continue_owed: expects_continue, drained: 0 }, incoming)
    }

    /// Whether the whole body was read off the connection.
    pub fn is_done(&self) -> bool {
        self.decoder.is_done()
    }

    /// Whether what is left of the body cannot be read to its end after the answer: no one reads it any more and
    /// either the client still waits for `100 Continue` (it may never send it) or more than [`DRAIN_LIMIT`] of it
    /// is announced.
    pub fn will_not_drain(&self) -> bool {
        let dropped = self.link.lock().dropped;
        dropped && (self.continue_owed || self.decoder.remaining().is_some_and(|n| n > DRAIN_LIMIT))
    }

    /// Leaves the next frame for the reader: from what `buf` holds already even before it is asked (as hyper
    /// does: a body that came with its head is there at the first poll, so a filter sees it before anything goes
    /// upstream), and from the socket once it is asked (`Read`: `buf` holds too little).
    pub fn feed(&mut self, buf: &mut BytesMut, cx: &mut Context<'_>) -> Need {
        let mut slot = self.link.lock();
        if slot.dropped || slot.ended {
            return Need::Wait;
        }
        // Woken when the reader asks next.
        set_waker(&mut slot.conn, cx.waker());
        if slot.frame.is_some() || (!slot.wanted && buf.is_empty()) {
            return Need::Wait;
        }
        if self.continue_owed && slot.wanted {
            self.continue_owed = false;
            return Need::Continue;
        }
        let frame = match self.decoder.decode(buf, Side::Request) {
            Ok(Decoded::Data(data)) => {
                // Framing already read (a chunk's CRLF, the last chunk) is consumed, so the end shows with the data.
                if self.decoder.settle(buf, Side::Request).is_ok() && self.decoder.is_done() {
                    slot.ended = true;
                }
                Ok(Frame::data(data))
            }
            Ok(Decoded::Trailers(trailers)) => {
                slot.ended = true;
                Ok(Frame::trailers(trailers))
            }
            Ok(Decoded::End) => {
                slot.ended = true;
                return self.hand_over(slot, None);
            }
            Ok(Decoded::More) if slot.wanted => return Need::Read,
            Ok(Decoded::More) => return Need::Wait,
            Err(e) => {
                slot.ended = true;
                Err(e)
            }
        };
        self.hand_over(slot, Some(frame))
    }

    /// The socket closed or failed before the body's end: the reader gets the error.
    pub fn cut(&mut self, error: Option<std::io::Error>) {
        let detail = match error {
            Some(e) => format!("reading the request body: {e}"),
            None => {
                self.decoder.at_close(Side::Request).err().unwrap_or_else(|| "the client closed the connection".into())
            }
        };
        let mut slot = self.link.lock();
        if slot.ended {
            return;
        }
        slot.ended = true;
        self.hand_over(slot, Some(Err(detail)));
    }

    fn hand_over(&self, mut slot: MutexGuard<'_, Slot>, frame: Option<Result<Frame<Bytes>, String>>) -> Need {
        slot.frame = frame;
        slot.wanted = false;
        let reader = slot.reader.take();
        drop(slot);
        if let Some(reader) = reader {
            reader.wake();
        }
        Need::Wait
    }

    /// After the answer: ends the body for a reader still holding it, and reads what is left of it from `buf`,
    /// throwing it away. `Ok(true)`: the body is over; `Ok(false)`: more must be read; `Err`: the connection
    /// cannot be reused (the body is malformed, longer than [`DRAIN_LIMIT`], or the client still waits for
    /// `100 Continue`).
    pub fn drain(&mut self, buf: &mut BytesMut) -> Result<bool, ()> {
        if self.continue_owed {
            return Err(()); // the client may never send it
        }
        let mut slot = self.link.lock();
        if !slot.ended {
            slot.ended = true;
            self.hand_over(slot, Some(Err("the answer was sent before the request body was read".into())));
        }
        loop {
            match self.decoder.decode(buf, Side::Request) {
                Ok(Decoded::Data(data)) => {
                    self.drained += data.len() as u64;
                    if self.drained > DRAIN_LIMIT {
                        return Err(());
                    }
                }
                Ok(Decoded::Trailers(_) | Decoded::End) => return Ok(true),
                Ok(Decoded::More) => return Ok(false),
                Err(_) => return Err(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::decode::Chunk;
    use http_body::Body as _;
    use std::task::Waker;

    fn poll(body: &mut Incoming) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn frames_are_decoded_one_ahead_and_the_end_shows_with_the_last() {
        let (mut inbound, mut body) = Inbound::new(Decoder::Chunked(Chunk::Size), false);
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = BytesMut::new();
        assert!(matches!(inbound.feed(&mut buf, &mut cx), Need::Wait), "not asked, nothing read: nothing to do");
        buf.extend_from_slice(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        // What came with the head is there at the first poll; one frame at a time.
        inbound.feed(&mut buf, &mut cx);
        assert_eq!(buf.len(), 9, "one frame decoded ahead (and the framing after it)");
        let Poll::Ready(Some(Ok(frame))) = poll(&mut body) else { panic!("no frame") };
        assert_eq!(frame.into_data().unwrap(), "abc");
        assert!(!body.is_end_stream());
        assert!(poll(&mut body).is_pending());
        inbound.feed(&mut buf, &mut cx);
        let Poll::Ready(Some(Ok(frame))) = poll(&mut body) else { panic!("no frame") };
        assert_eq!(frame.into_data().unwrap(), "de");
        assert!(body.is_end_stream() && inbound.is_done() && buf.is_empty());
    }

    #[test]
    fn a_cut_body_ends_in_an_error_and_an_unread_one_is_drained_within_its_bound() {
        let (mut inbound, mut body) = Inbound::new(Decoder::Length(10), true);
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = BytesMut::from("abc");
        assert!(poll(&mut body).is_pending());
        assert!(matches!(inbound.feed(&mut buf, &mut cx), Need::Continue), "100 Continue before the first read");
        inbound.feed(&mut buf, &mut cx);
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(poll(&mut body).is_pending());
        assert!(matches!(inbound.feed(&mut buf, &mut cx), Need::Read));
        inbound.cut(None);
        let Poll::Ready(Some(Err(e))) = poll(&mut body) else { panic!("no error") };
        assert_eq!(e.to_string(), "the client closed the connection 7 bytes before the body's end");

        let (mut inbound, body) = Inbound::new(Decoder::Length(5), false);
        drop(body);
        let mut buf = BytesMut::from("ab");
        assert_eq!(inbound.drain(&mut buf), Ok(false));
        buf.extend_from_slice(b"cdeGET");
        assert_eq!((inbound.drain(&mut buf), &buf[..]), (Ok(true), &b"GET"[..]));
        let (mut inbound, _body) = Inbound::new(Decoder::Length(DRAIN_LIMIT + 10), false);
        let mut buf = BytesMut::from(&vec![b'x'; DRAIN_LIMIT as usize + 1][..]);
        assert_eq!(inbound.drain(&mut buf), Err(()));
    }
}
