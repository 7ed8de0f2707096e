//! A body passed through the filter chain's body callbacks, chunk by chunk, as it streams.

use crate::abi::stream::LocalResponse;
use crate::filter::{BodyChain, BodyVerdict};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Errors of filtered bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a filtered body stopped early, for the request path to answer accordingly.
#[derive(Debug)]
pub enum BodyStop {
    /// A filter answered from a body callback.
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
    /// A body whose data frames go through a [`BodyChain`] (or pass untouched when there is none).
    pub struct Filtered<B> {
        #[pin]
        inner: B,
        chain: Option<BodyChain>,
        eos_sent: bool,
        pending_trailers: Option<http::HeaderMap>,
        done: bool,
        stop: Option<StopSlot>,
    }
}

impl<B> Filtered<B> {
    /// Wraps `inner` with the body callbacks of `chain`; why it stopped early goes to `stop`.
    pub fn new(inner: B, chain: Option<BodyChain>, stop: StopSlot) -> Self {
        Filtered { inner, chain, eos_sent: false, pending_trailers: None, done: false, stop: Some(stop) }
    }

    /// Passes frames untouched (no filters): nothing allocated.
    pub fn passthrough(inner: B) -> Self {
        Filtered { inner, chain: None, eos_sent: false, pending_trailers: None, done: false, stop: None }
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
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(trailers) = this.pending_trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let Some(chain) = this.chain.as_mut() else {
            return this.inner.as_mut().poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into)));
        };
        loop {
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => Some(frame),
                Poll::Ready(None) => None,
            };
            let (data, eos, trailers) = match frame {
                Some(frame) => match frame.into_data() {
                    Ok(data) => (data.to_vec(), this.inner.is_end_stream(), None),
                    Err(frame) => match frame.into_trailers() {
                        // Trailers end the body. Envoy would call the body callback with end_of_stream = false
                        // and then the trailers callbacks; until those exist, the filter sees the end here,
                        // so a body it holds is released instead of lost.
                        Ok(t) if !*this.eos_sent => (Vec::new(), true, Some(t)),
                        Ok(t) => return Poll::Ready(Some(Ok(Frame::trailers(t)))),
                        Err(_) => continue,
                    },
                },
                None if *this.eos_sent => {
                    *this.done = true;
                    return Poll::Ready(None);
                }
                None => (Vec::new(), true, None),
            };
            *this.eos_sent |= eos;
            match chain.chunk(data, eos) {
                BodyVerdict::Data(out) => {
                    if trailers.is_some() {
                        *this.pending_trailers = trailers;
                        *this.eos_sent = true;
                        if out.is_empty() {
                            let t = this.pending_trailers.take().unwrap_or_default();
                            return Poll::Ready(Some(Ok(Frame::trailers(t))));
                        }
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    if eos {
                        *this.done = true;
                        if out.is_empty() {
                            return Poll::Ready(None);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    if out.is_empty() {
                        continue; // a filter holds the body: read on
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
                BodyVerdict::Respond(local) => {
                    if let Some(stop) = this.stop.as_ref() {
                        *stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(BodyStop::Respond(local));
                    }
                    *this.done = true;
                    return Poll::Ready(Some(Err(Box::new(Stopped))));
                }
                BodyVerdict::Fail { filter, detail, too_large } => {
                    if let Some(stop) = this.stop.as_ref() {
                        *stop.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(BodyStop::Fail { filter, detail, too_large });
                    }
                    *this.done = true;
                    return Poll::Ready(Some(Err(Box::new(Stopped))));
                }
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
