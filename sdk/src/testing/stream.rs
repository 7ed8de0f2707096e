//! [`FakeStream`]: one request through the fake host.

use std::ops::{Deref, DerefMut};

use super::state::{from_pairs, to_pairs, with, LocalResponse, Pairs, StreamState};
use super::FakeHost;
use crate::abi::Action;
use crate::plugin::Plugin;

/// One request through a [`FakeHost`]: send it the phases, then look at what the filter left.
///
/// It borrows the host (and derefs to it, so `stream.respond(..)`, `stream.callouts()` work); keep its
/// [`id`](FakeStream::id) and use [`FakeHost::stream_by_id`] to interleave several requests.
///
/// A body callback gets the chunk sent, appended to what the filter held if its previous body call paused, as
/// in Weir. The fake does not forward anything: what "went upstream" is what the maps and buffers hold after the
/// call, and the returned [`Action`] says whether it would have gone on.
pub struct FakeStream<'a, P: Plugin> {
    host: &'a mut FakeHost<P>,
    id: u32,
    request_body_held: bool,
    response_body_held: bool,
}

impl<'a, P: Plugin> FakeStream<'a, P> {
    pub(crate) fn new(host: &'a mut FakeHost<P>, id: u32) -> FakeStream<'a, P> {
        FakeStream { host, id, request_body_held: false, response_body_held: false }
    }

    /// The stream's context id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The filter of this request.
    pub fn filter(&self) -> &P::Filter {
        self.host.dispatcher.filter(self.id).expect("the stream's filter exists until finish")
    }

    fn state<T>(&self, f: impl FnOnce(&mut StreamState) -> T) -> T {
        let id = self.id;
        with(|s| f(s.streams.get_mut(&id).expect("the stream exists until finish")))
    }

    fn map(&self, index: usize) -> Vec<(String, String)> {
        self.state(|stream| from_pairs(&stream.maps[index]))
    }

    fn set_map(&self, index: usize, pairs: Pairs) {
        self.state(|stream| stream.maps[index] = pairs);
    }

    fn enter(&mut self) {
        self.host.enter(self.id);
    }

    /// Runs `on_request_headers` with `headers` (include the pseudo-headers the filter reads: `:method`, `:path`,
    /// `:authority`, `:scheme`).
    pub fn send_request_headers(&mut self, headers: &[(&str, &str)], end_of_stream: bool) -> Action {
        self.set_map(0, to_pairs(headers));
        self.enter();
        self.host.dispatcher.on_request_headers(self.id, headers.len(), end_of_stream)
    }

    /// Runs `on_request_body` with `chunk` (after what the filter held, if its last body call paused).
    pub fn send_request_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Action {
        let held = self.request_body_held;
        let size = self.state(|stream| {
            if !held {
                stream.request_body.clear();
            }
            stream.request_body.extend_from_slice(chunk);
            stream.request_body.len()
        });
        self.enter();
        let action = self.host.dispatcher.on_request_body(self.id, size, end_of_stream);
        self.request_body_held = action == Action::Pause;
        action
    }

    /// Runs `on_request_trailers` with `trailers`.
    pub fn send_request_trailers(&mut self, trailers: &[(&str, &str)]) -> Action {
        self.set_map(1, to_pairs(trailers));
        self.enter();
        self.host.dispatcher.on_request_trailers(self.id, trailers.len())
    }

    /// Runs `on_response_headers` with `headers` (include `:status`).
    pub fn send_response_headers(&mut self, headers: &[(&str, &str)], end_of_stream: bool) -> Action {
        self.set_map(2, to_pairs(headers));
        self.enter();
        self.host.dispatcher.on_response_headers(self.id, headers.len(), end_of_stream)
    }

    /// Runs `on_response_body` with `chunk` (after what the filter held, if its last body call paused).
    pub fn send_response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Action {
        let held = self.response_body_held;
        let size = self.state(|stream| {
            if !held {
                stream.response_body.clear();
            }
            stream.response_body.extend_from_slice(chunk);
            stream.response_body.len()
        });
        self.enter();
        let action = self.host.dispatcher.on_response_body(self.id, size, end_of_stream);
        self.response_body_held = action == Action::Pause;
        action
    }

    /// Runs `on_response_trailers` with `trailers`.
    pub fn send_response_trailers(&mut self, trailers: &[(&str, &str)]) -> Action {
        self.set_map(3, to_pairs(trailers));
        self.enter();
        self.host.dispatcher.on_response_trailers(self.id, trailers.len())
    }

    /// Ends the request: `on_log`, `on_done`, then `on_delete` (the filter is dropped). Returns what `on_done`
    /// returned.
    pub fn finish(mut self) -> bool {
        self.enter();
        self.host.dispatcher.on_log(self.id);
        self.enter();
        let done = self.host.dispatcher.on_done(self.id);
        self.host.dispatcher.on_delete(self.id);
        let id = self.id;
        with(|s| s.streams.remove(&id));
        done
    }

    /// The request headers as the filter left them.
    pub fn request_headers(&self) -> Vec<(String, String)> {
        self.map(0)
    }

    /// The first value of request header `name` as the filter left it.
    pub fn request_header(&self, name: &str) -> Option<String> {
        first(self.map(0), name)
    }

    /// The request trailers as the filter left them.
    pub fn request_trailers(&self) -> Vec<(String, String)> {
        self.map(1)
    }

    /// The response headers as the filter left them.
    pub fn response_headers(&self) -> Vec<(String, String)> {
        self.map(2)
    }

    /// The first value of response header `name` as the filter left it.
    pub fn response_header(&self, name: &str) -> Option<String> {
        first(self.map(2), name)
    }

    /// The response trailers as the filter left them.
    pub fn response_trailers(&self) -> Vec<(String, String)> {
        self.map(3)
    }

    /// The request body buffer as the filter left it.
    pub fn request_body(&self) -> Vec<u8> {
        self.state(|stream| stream.request_body.clone())
    }

    /// The response body buffer as the filter left it.
    pub fn response_body(&self) -> Vec<u8> {
        self.state(|stream| stream.response_body.clone())
    }

    /// The local response the filter sent, if any.
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.state(|stream| stream.local_response.clone())
    }

    /// Whether the filter resumed the request (`proxy_continue_stream(HTTP_REQUEST)`).
    pub fn request_resumed(&self) -> bool {
        self.state(|stream| stream.resumed_request > 0)
    }

    /// Whether the filter resumed the response.
    pub fn response_resumed(&self) -> bool {
        self.state(|stream| stream.resumed_response > 0)
    }

    /// Whether the filter closed (reset) the stream.
    pub fn closed(&self) -> bool {
        self.state(|stream| stream.closed)
    }

    /// Sets a property of this request only (bytes in the ABI encodings).
    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) {
        let path = path.join("\0").into_bytes();
        self.state(|stream| stream.properties.insert(path, value.as_ref().to_vec()));
    }

    /// The property of this request at `path`, e.g. one the filter set.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let path = path.join("\0").into_bytes();
        self.state(|stream| stream.properties.get(&path).cloned())
    }
}

fn first(pairs: Vec<(String, String)>, name: &str) -> Option<String> {
    pairs.into_iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
}

impl<P: Plugin> Deref for FakeStream<'_, P> {
    type Target = FakeHost<P>;

    fn deref(&self) -> &FakeHost<P> {
        self.host
    }
}

impl<P: Plugin> DerefMut for FakeStream<'_, P> {
    fn deref_mut(&mut self) -> &mut FakeHost<P> {
        self.host
    }
}
