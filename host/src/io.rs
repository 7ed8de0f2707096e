//! Write batching for the sockets a worker serves: a write that answers a read waits, once, until the worker
//! has run every other task that was ready, so the answers of one round leave back to back.
//!
//! Why: the kernel wakes the reader of every segment it delivers. Written one by one, between the worker's
//! other requests, each answer finds its peer (client or upstream) asleep on the other core and pays a
//! wake-up, which on a virtual machine is an inter-processor interrupt and a VM exit; written back to back,
//! the first wakes the peer and the next find it awake. On the 2-core test machine (docs/benchmarks.md,
//! "Write batching"), plain proxying with 1 worker and 32 connections went from 30.7k to 38.9k requests/s.
//!
//! Only the first write after a read yields, and only when the worker owes other answers (a downstream
//! connection owes one from the request it read to the first write of the answer): the writes of one answer
//! that follow it (a large body) go straight out, a connection that only writes (a stream) is not slowed, and
//! a lone client does not wait a turn for nothing.

use pin_project_lite::pin_project;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pin_project! {
    /// An I/O object whose first write after a read yields once to the worker's other ready tasks.
    pub struct Batched<S> {
        #[pin]
        inner: S,
        // A read returned data and no write has gone out since.
        answering: bool,
        // This write yielded already.
        yielded: bool,
        // Whether this connection's requests count as the worker's answers in flight (downstream).
        counts: bool,
        // This connection's share of the count while it owes an answer.
        owed: Option<Owed>,
    }
}

thread_local! {
    /// Downstream connections of this worker that read a request and have not started answering it.
    static OWED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One answer in flight on this worker's count, given back when dropped.
struct Owed;

impl Owed {
    fn new() -> Owed {
        OWED.with(|n| n.set(n.get() + 1));
        Owed
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        OWED.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

impl<S> Batched<S> {
    /// Wraps a downstream connection: its requests count as answers the worker owes.
    pub fn downstream(inner: S) -> Self {
        Batched { inner, answering: false, yielded: false, counts: true, owed: None }
    }

    /// Wraps an upstream connection.
    pub fn upstream(inner: S) -> Self {
        Batched { inner, answering: false, yielded: false, counts: false, owed: None }
    }
}

/// Whether the caller should go on with the write now; if not, the task was woken to run again after the
/// tasks that are ready before it. A worker that owes no other answer has nothing to batch with: a lone client
/// is not made to wait a turn.
fn go_on(answering: &mut bool, yielded: &mut bool, owed: &mut Option<Owed>, cx: &mut Context<'_>) -> bool {
    if !*answering {
        return true;
    }
    // One answer owed is the one this write serves (its own request, or the request it forwards upstream).
    let others = OWED.with(|n| n.get()) > 1;
    if *yielded || !others {
        *answering = false;
        *yielded = false;
        *owed = None;
        return true;
    }
    // Woken now, the task is queued behind the tasks that are ready already (the worker's runtime runs them
    // in order), and writes when they have written theirs.
    *yielded = true;
    cx.waker().wake_by_ref();
    false
}

/// Polls a read and tells whether it brought data (not the end of the stream, an error or nothing yet).
pub fn poll_read_data<S: AsyncRead>(
    inner: Pin<&mut S>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> (Poll<io::Result<()>>, bool) {
    let before = buf.filled().len();
    let r = inner.poll_read(cx, buf);
    let data = matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before;
    (r, data)
}

impl<S: AsyncRead> AsyncRead for Batched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let (r, data) = poll_read_data(this.inner, cx, buf);
        if data {
            *this.answering = true;
            if *this.counts && this.owed.is_none() {
                *this.owed = Some(Owed::new());
            }
        }
        r
    }
}

impl<S: AsyncWrite> AsyncWrite for Batched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        if !go_on(this.answering, this.yielded, this.owed, cx) {
            return Poll::Pending;
        }
        this.inner.poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        if !go_on(this.answering, this.yielded, this.owed, cx) {
            return Poll::Pending;
        }
        this.inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        // hyper shuts down a connection it will not keep alive as soon as the last answer is encoded, without
        // waiting for a flush that is pending (hyper 1.8, `Dispatcher::poll_inner`): a write that yielded would
        // be lost. The shutdown waits one turn instead; hyper writes before it shuts down again.
        if *this.yielded {
            *this.answering = false;
            *this.yielded = false;
            *this.owed = None;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// Polls one write of `data` once: `Some(n)` when it went out, `None` when it yielded.
    async fn write_once<S: AsyncWrite + Unpin>(io: &mut S, data: &[u8]) -> Option<usize> {
        poll_fn(|cx| match Pin::new(&mut *io).poll_write(cx, data) {
            Poll::Ready(r) => Poll::Ready(Some(r.expect("writes"))),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }

    /// A downstream connection that read a request: `(connection, client end)`.
    async fn with_request(request: &[u8]) -> (Batched<DuplexStream>, DuplexStream) {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut io = Batched::downstream(near);
        far.write_all(request).await.unwrap();
        let mut buf = vec![0u8; request.len()];
        io.read_exact(&mut buf).await.unwrap();
        (io, far)
    }

    #[tokio::test]
    async fn only_the_first_write_after_a_read_yields_and_only_once() {
        // Another connection owes an answer too: there is something to batch with.
        let (_other, _other_client) = with_request(b"other").await;
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut io = Batched::downstream(near);
        // Nothing read yet: writes go straight out.
        assert_eq!(write_once(&mut io, b"a").await, Some(1));
        assert_eq!(write_once(&mut io, b"b").await, Some(1));
        // A read with data: the next write yields once, then goes out; the ones after it do not yield.
        far.write_all(b"request").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(io.read(&mut buf).await.unwrap(), 7);
        assert_eq!(write_once(&mut io, b"c").await, None, "the answer waits for the other ready tasks");
        assert_eq!(write_once(&mut io, b"c").await, Some(1));
        assert_eq!(write_once(&mut io, b"d").await, Some(1), "the rest of an answer is not held");
        // Every byte arrived, in order.
        let mut got = [0u8; 4];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcd");
    }

    #[tokio::test]
    async fn a_lone_answer_and_its_upstream_request_do_not_wait() {
        let (mut io, mut far) = with_request(b"request").await;
        // The worker owes this one answer: the request it forwards goes out at once...
        let (up_near, mut up_far) = tokio::io::duplex(1 << 16);
        let mut upstream = Batched::upstream(up_near);
        up_far.write_all(b"earlier response").await.unwrap();
        let mut buf = [0u8; 16];
        upstream.read_exact(&mut buf).await.unwrap();
        assert_eq!(write_once(&mut upstream, b"forwarded").await, Some(9));
        // ...and so does the answer.
        assert_eq!(write_once(&mut io, b"answer").await, Some(6));
        let mut got = [0u8; 6];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"answer");
        assert_eq!(OWED.with(|n| n.get()), 0, "the answer went out: nothing is owed");
    }

    #[tokio::test]
    async fn a_dropped_connection_gives_its_answer_back() {
        let (io, _far) = with_request(b"request").await;
        assert_eq!(OWED.with(|n| n.get()), 1);
        drop(io);
        assert_eq!(OWED.with(|n| n.get()), 0);
    }

    #[tokio::test]
    async fn a_yielded_write_is_woken_and_completes_through_the_async_api() {
        let (_other, _other_client) = with_request(b"other").await;
        let (mut io, mut far) = with_request(b"ping").await;
        // write_all must not hang: the yield wakes the task itself.
        tokio::time::timeout(std::time::Duration::from_secs(5), io.write_all(b"pong")).await.unwrap().unwrap();
        let mut buf = [0u8; 4];
        far.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }

    #[tokio::test]
    async fn an_answer_waits_for_the_tasks_ready_before_it() {
        use std::sync::{Arc, Mutex};
        let (_other, _other_client) = with_request(b"other").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let (mut io, mut far) = with_request(b"request").await;
        let answering = {
            let order = order.clone();
            tokio::spawn(async move {
                io.write_all(b"answer").await.unwrap();
                order.lock().unwrap().push("answer written");
            })
        };
        let other = {
            let order = order.clone();
            tokio::spawn(async move { order.lock().unwrap().push("other task ran") })
        };
        answering.await.unwrap();
        other.await.unwrap();
        // The test runtime has one thread: the answering task ran first and yielded its write to the task that
        // was ready behind it.
        assert_eq!(*order.lock().unwrap(), ["other task ran", "answer written"]);
        let mut got = [0u8; 6];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"answer");
    }

    #[tokio::test]
    async fn a_shutdown_waits_for_the_write_that_yielded() {
        let (_other, _other_client) = with_request(b"other").await;
        let (mut io, mut far) = with_request(b"request").await;
        assert_eq!(write_once(&mut io, b"answer").await, None, "the answer yielded");
        // As hyper does for a connection it will not keep alive: shut down before the write went out.
        let shut = poll_fn(|cx| Poll::Ready(Pin::new(&mut io).poll_shutdown(cx).is_ready())).await;
        assert!(!shut, "the shutdown waits a turn");
        assert_eq!(write_once(&mut io, b"answer").await, Some(6), "the write goes out on the next poll");
        io.shutdown().await.unwrap();
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"answer", "nothing was lost, and the stream ended");
    }
}
