//! A response whose headers a filter paused: as in Envoy, the upstream body keeps coming through the body
//! callbacks of that filter (and of the filters before it in response order, which saw the headers), while the
//! headers wait. The wait ends when the filter resumes the stream (from a callout answer, a tick, another
//! stream), lets a chunk through its body callback (CONTINUE), or answers; past the pause deadline it failed.
//! What got through meanwhile then goes on through the rest of the chain after the headers.

use crate::filter::{BodyChain, BodyVerdict, PAUSE_DEADLINE};
use bytes::Bytes;
use http::HeaderMap;
use http_body::Body as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::oneshot;

/// How the pause ended.
pub(super) enum Driven {
    /// The headers go on; then `passed` (what got through the paused filter) goes on through the rest of the
    /// chain, then the rest of the body. `ended`: the upstream body has ended (with `trailers`, if it had them).
    Continued { passed: Vec<u8>, ended: bool, trailers: Option<HeaderMap> },
    /// A filter answered, failed or held too much; or the upstream body failed.
    Stopped(BodyVerdict),
}

enum Event {
    Resumed,
    Frame(http_body::Frame<Bytes>),
    End,
    Failed(String),
    Ran(BodyVerdict),
    Late,
}

/// Drives `body` through `chain`'s stages up to and including `position` (the paused filter) until the pause
/// ends. `filter` names it in errors.
pub(super) async fn drive<B>(
    body: &mut B,
    chain: &mut BodyChain,
    position: usize,
    signal: &mut oneshot::Receiver<()>,
    filter: &Arc<str>,
) -> Driven
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let deadline = tokio::time::sleep(PAUSE_DEADLINE);
    tokio::pin!(deadline);
    let (mut passed, mut ended, mut trailers) = (Vec::new(), body.is_end_stream(), None);
    let mut eos_given = false;
    loop {
        let event = std::future::poll_fn(|cx| {
            if Pin::new(&mut *signal).poll(cx).is_ready() {
                return Poll::Ready(Event::Resumed);
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Late);
            }
            // A stage before the paused one that paused at the end runs the rest of the range when it resumes.
            if let Poll::Ready(Some(verdict)) = chain.poll_trailers(cx) {
                return Poll::Ready(Event::Ran(verdict));
            }
            if ended {
                return if eos_given { Poll::Pending } else { Poll::Ready(Event::End) };
            }
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Event::Frame(frame)),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Event::Failed(e.to_string())),
                Poll::Ready(None) => Poll::Ready(Event::End),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let (verdict, through) = match event {
            Event::Resumed => return Driven::Continued { passed, ended, trailers },
            Event::Late => {
                let detail = format!(
                    "the filter paused the response headers and did not resume within {} s",
                    PAUSE_DEADLINE.as_secs()
                );
                return Driven::Stopped(BodyVerdict::Fail { filter: filter.clone(), detail, too_large: false });
            }
            Event::Failed(detail) => {
                let detail = format!("the upstream body failed while the filter held the headers: {detail}");
                return Driven::Stopped(BodyVerdict::Fail { filter: filter.clone(), detail, too_large: false });
            }
            Event::Ran(verdict) => (verdict, true),
            Event::End => {
                ended = true;
                eos_given = true;
                chain.chunk_range(Vec::new(), true, 0, position + 1)
            }
            Event::Frame(frame) => match frame.into_data() {
                Ok(data) => {
                    ended = body.is_end_stream();
                    eos_given = ended;
                    chain.chunk_range(data.to_vec(), ended, 0, position + 1)
                }
                Err(frame) => {
                    // Trailers: the body has ended; the filter decides on what it holds (it resumes or answers).
                    ended = true;
                    eos_given = true;
                    trailers = frame.into_trailers().ok();
                    continue;
                }
            },
        };
        match verdict {
            BodyVerdict::Data(data) => {
                passed.extend_from_slice(&data);
                if through {
                    // The paused filter let body through: its headers go on (Envoy's CONTINUE from a data callback).
                    return Driven::Continued { passed, ended, trailers };
                }
            }
            BodyVerdict::Trailers { data, .. } => {
                passed.extend_from_slice(&data);
                return Driven::Continued { passed, ended, trailers };
            }
            stop => return Driven::Stopped(stop),
        }
    }
}
