//! The body of an upstream's response, whichever protocol brought it.

use super::{h1, BoxError};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A response body from an upstream: read by Weir's HTTP/1.1 client, or by hyper's HTTP/2 connection.
pub enum Received {
    /// HTTP/1.1 ([`h1::Body`]).
    H1(h1::Body),
    /// HTTP/2.
    H2(hyper::body::Incoming),
}

impl Received {
    /// The response's fields as lines, when the HTTP/1.1 client kept them so (`ResponseFields::Encoded`).
    pub fn take_encoded(&mut self) -> Option<Box<h1::encoded::EncodedFields>> {
        match self {
            Received::H1(body) => body.take_encoded(),
            Received::H2(_) => None,
        }
    }
}

impl Body for Received {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Received::H1(body) => Pin::new(body).poll_frame(cx),
            Received::H2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Received::H1(body) => body.is_end_stream(),
            Received::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Received::H1(body) => body.size_hint(),
            Received::H2(body) => body.size_hint(),
        }
    }
}
