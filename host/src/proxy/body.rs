//! The response body handed to the client: streams the inner body frame by frame (never buffered),
//! counts the bytes, and when the stream ends (or the client goes away) writes the access-log line and
//! the request metrics and releases the endpoint's in-flight count.

use super::filtered::Filtered;
use super::log::Completion;
use crate::upstream::h1::encoded::EncodedFields;
use crate::upstream::received::Received;
use crate::upstream::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The body of every request the gateway serves.
pub enum RequestBody {
    /// No body (known when the head was read).
    Empty,
    /// Read by Weir's HTTP/1.1 server.
    H1(crate::server::h1::Incoming),
    /// Read by hyper's HTTP/2 server.
    H2(hyper::body::Incoming),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::H1(body) => Pin::new(body).poll_frame(cx),
            RequestBody::H2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::H1(body) => body.is_end_stream(),
            RequestBody::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::H1(body) => body.size_hint(),
            RequestBody::H2(body) => body.size_hint(),
        }
    }
}

/// The body type of every response the gateway writes.
pub type ResponseBody = Observed<Either<Full<Bytes>, Filtered<Received>>>;

pin_project! {
    /// A body that reports its completion.
    pub struct Observed<B: Body> {
        #[pin]
        inner: B,
        completion: Completion,
        // The response's fields as lines, for the HTTP/1.1 server to write (`ResponseFields::Encoded`).
        encoded: Option<Box<EncodedFields>>,
    }

    impl<B: Body> PinnedDrop for Observed<B> {
        fn drop(this: Pin<&mut Self>) {
            // hyper stops polling once `is_end_stream` is true (a complete in-memory body is never
            // polled to its end): such a body was delivered in full.
            let this = this.project();
            if this.inner.is_end_stream() {
                this.completion.finish();
            }
        }
    }
}

impl<B: Body> Observed<B> {
    /// Wraps `inner`; `completion` is reported once, when the body ends or is dropped.
    pub fn new(inner: B, completion: Completion) -> Self {
        Observed { inner, completion, encoded: None }
    }

    /// With the response's fields as lines: the response's map holds only what the gateway added.
    pub fn with_encoded(mut self, encoded: Option<Box<EncodedFields>>) -> Self {
        self.encoded = encoded;
        self
    }

    /// The response's fields as lines, to write before the map's, when they were kept so. Only Weir's HTTP/1.1
    /// server takes them: the pipeline keeps them so only for an HTTP/1.x client.
    pub fn take_encoded(&mut self) -> Option<Box<EncodedFields>> {
        self.encoded.take()
    }
}

impl<B: Body<Data = Bytes>> Body for Observed<B>
where
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.completion.bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.completion.finish();
                }
            }
            Poll::Ready(Some(Err(e))) => this.completion.fail(e.to_string()),
            Poll::Ready(None) => this.completion.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A complete in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> Either<Full<Bytes>, Filtered<Received>> {
    Either::Left(Full::new(bytes.into()))
}
