//! [`Body`]: the body bytes a body callback was given.

use crate::abi::{BufferType, Status};
use crate::host::{raw, report};

/// The request or response body available to the running body callback: the chunk, or everything held so far
/// when the previous body call paused.
///
/// ```no_run
/// use weir_sdk::prelude::*;
///
/// struct Redact;
///
/// impl HttpFilter for Redact {
///     fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
///         if !end_of_stream {
///             return Action::Pause; // hold chunks until the whole body is here
///         }
///         let text = String::from_utf8_lossy(&body.bytes()).replace("secret", "******");
///         body.replace(text.as_bytes());
///         Action::Continue
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    buffer: BufferType,
    size: usize,
}

impl Body {
    /// The body in `buffer`, `size` bytes long.
    pub(crate) fn new(buffer: BufferType, size: usize) -> Body {
        Body { buffer, size }
    }

    /// Which buffer this is (request or response body).
    pub fn buffer_type(&self) -> BufferType {
        self.buffer
    }

    /// How many bytes are available.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether no bytes are available (e.g. the final, empty end-of-stream call).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// All available bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.range(0, self.size)
    }

    /// Up to `len` bytes from `start` (fewer at the end; none past it).
    pub fn range(&self, start: usize, len: usize) -> Vec<u8> {
        raw::get_buffer_bytes(self.buffer, start, len).unwrap_or_default()
    }

    /// The available bytes parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.bytes())
    }

    /// Replaces all available bytes with `data` (remove `content-length` in the headers callback when the length
    /// changes).
    pub fn replace(&self, data: &[u8]) {
        self.replace_range(0, self.size, data);
    }

    /// Replaces `len` bytes from `start` with `data`.
    pub fn replace_range(&self, start: usize, len: usize, data: &[u8]) {
        self.done(raw::set_buffer_bytes(self.buffer, start, len, data));
    }

    /// Adds `data` after the available bytes.
    pub fn append(&self, data: &[u8]) {
        self.done(raw::set_buffer_bytes(self.buffer, self.size, 0, data));
    }

    /// Adds `data` before the available bytes.
    pub fn prepend(&self, data: &[u8]) {
        self.done(raw::set_buffer_bytes(self.buffer, 0, 0, data));
    }

    fn done(&self, result: Result<(), Status>) {
        if let Err(status) = result {
            report(&format!("changing {:?}", self.buffer), status);
        }
    }
}
