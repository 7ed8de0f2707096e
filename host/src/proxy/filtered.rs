//! A body passed through the filter chain's body callbacks, chunk by chunk, as it streams, and its trailers
//! through the trailers callbacks.

use crate::abi::stream::{Headers, LocalResponse};
use crate::filter::{BodyChain, BodyVerdict};
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Errors of filtered bodies.
pub use crate::upstream::BoxError;

/// Why a filtered body stopped early, for the request path to answer accordingly.
#[derive(Debug)]
pub enum BodyStop {
    /// A filter answered from a body or trailers callback.
    Respond(LocalResponse),
    /// A filter failed or held too much.
    Fail {
        /// The filter.
        filter: Arc<str>,
        /// Why.
        detail: String,
        /// The body limit was exceeded (413 on the request side).
        too_large: bool,
    },
}

/// Where a filtered body leaves its reason for stopping.
pub type StopSlot = Arc<Mutex<Option<BodyStop>>>;

#[derive(Debug, thiserror::Error)]
#[error("the filter chain stopped the body")]
struct Stopped;

pin_project! {
    /// A body whose data frames and trailers go through a [`BodyChain`] (or pass untouched when there is
    /// none).
    pub struct Filtered<B> {
        #[pin]
        inner: B,
        chain: Option<BodyChain>,
        // The inner body has ended (its last data frame, its trailers, or its end was seen).
        ended: bool,
        // Output not yet handed on: body bytes, then the trailers that end the stream.
        out_data: Option<Bytes>,
        out_trailers: Option<HeaderMap>,
        done: bool,
        stop: Option<StopSlot>,
        // Body that went through the chain's first stages while a filter's response headers were paused, to go
        // through the stages from this position on first.
        prelude: Option<(Vec<u8>, usize)>,
    }
}

impl<B: Body> Filtered<B> {
    /// Wraps `inner` with the body and trailers callbacks of `chain`; why it stopped early goes to `stop`. A
    /// body that has ended already (the headers ended the stream) gets no callback.
    pub fn new(inner: B, chain: Option<BodyChain>, stop: StopSlot) -> Self {
        let ended = inner.is_end_stream();
        Filtered {
            inner,
            chain,
            ended,
            out_data: None,
            out_trailers: None,
            done: ended,
            stop: Some(stop),
            prelude: None,
        }
    }

    /// Like [`Filtered::new`], after a paused response-headers phase: `prelude` (what got through the stages
    /// before `from` meanwhile) goes through the stages from `from` on first; `ended` says whether the inner
    /// body ended meanwhile, and `trailers` are its trailers if it ended with them.
    pub fn with_prelude(
        inner: B,
        mut chain: BodyChain,
        stop: StopSlot,
        prelude: Vec<u8>,
        from: usize,
        ended: bool,
        trailers: Option<HeaderMap>,
    ) -> Self {
        if let Some(trailers) = trailers {
            chain.trailers(Headers::from_map(trailers));
        }
        Filtered {
            inner,
            chain: Some(chain),
            ended,
            out_data: None,
            out_trailers: None,
            done: false,
            stop: Some(stop),
            prelude: Some((prelude, from)),
        }
    }

    /// Passes frames untouched (no filters): nothing allocated.
    pub fn passthrough(inner: B) -> Self {
        Filtered {
            inner,
            chain: None,
            ended: false,
            out_data: None,
            out_trailers: None,
            done: false,
            stop: None,
            prelude: None,
        }
    }
}

impl<B> Body for Filtered<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let Some(chain) = this.chain.as_mut() else {
            return this.inner.as_mut().poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into)));
        };
        if let Some((data, from)) = this.prelude.take() {
            // With trailers to come, the body has not ended for the stages that have not seen them.
            let eos = *this.ended && chain.idle();
            let (verdict, _) = chain.chunk_range(data, eos, from, usize::MAX);
            if let Err(stopped) = take(verdict, this.out_data, this.out_trailers, this.stop) {
                *this.done = true;
                return Poll::Ready(Some(Err(stopped)));
            }
        }
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            if let Some(data) = this.out_data.take() {
                // The last bytes of a stream with nothing after them: say so now. hyper stops polling a body
                // whose declared length it has written, so a `None` after them might never be asked for,
                // and the stream would look cut short (no completion, no connection reuse).
                if *this.ended && this.out_trailers.is_none() && chain.idle() {
                    *this.done = true;
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match chain.poll_trailers(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(verdict)) => {
                    if let Err(stopped) = take(verdict, this.out_data, this.out_trailers, this.stop) {
                        *this.done = true;
                        return Poll::Ready(Some(Err(stopped)));
                    }
                    continue;
                }
                Poll::Ready(None) => {}
            }
            if let Some(trailers) = this.out_trailers.take() {
                *this.done = true;
                if trailers.is_empty() {
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            if *this.ended {
                *this.done = true;
                return Poll::Ready(None);
            }
            let verdict = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        // With trailers to come the body has not ended here: this callback gets eos = false.
                        let eos = this.inner.is_end_stream();
                        *this.ended = eos;
                        chain.chunk(data.to_vec(), eos)
                    }
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => {
                            *this.ended = true;
                            chain.trailers(Headers::from_map(trailers));
                            continue;
                        }
                        Err(_) => continue,
                    },
                },
                Poll::Ready(None) => {
                    // The end, after a callback with eos = false: one more, empty, with eos = true.
                    *this.ended = true;
                    chain.chunk(Vec::new(), true)
                }
            };
            if let Err(stopped) = take(verdict, this.out_data, this.out_trailers, this.stop) {
                *this.done = true;
                return Poll::Ready(Some(Err(stopped)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.chain.is_some() {
            self.done
        } else {
            self.inner.is_end_stream()
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.chain.is_some() {
            SizeHint::default() // filters may change the length
        } else {
            self.inner.size_hint()
        }
    }
}

/// Queues what a verdict passes on; a local response or a failure is left in `stop` and ends the body with
/// an error (the request path answers as asked; a response already under way is reset).
fn take(
    verdict: BodyVerdict,
    out_data: &mut Option<Bytes>,
    out_trailers: &mut Option<HeaderMap>,
    stop: &Option<StopSlot>,
) -> Result<(), BoxError> {
    let why = match verdict {
        BodyVerdict::Data(data) => {
            if !data.is_empty() {
                *out_data = Some(Bytes::from(data));
            }
            return Ok(());
        }
        BodyVerdict::Trailers { data, trailers } => {
            if !data.is_empty() {
                *out_data = Some(Bytes::from(data));
            }
            // Pseudo-headers and entries that are not valid HTTP stay behind.
            *out_trailers = Some(trailers.into_map());
            return Ok(());
        }
        BodyVerdict::Respond(local) => BodyStop::Respond(local),
        BodyVerdict::Fail { filter, detail, too_large } => BodyStop::Fail { filter, detail, too_large },
    };
    if let Some(stop) = stop {
        *stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
    Err(Box::new(Stopped))
}
