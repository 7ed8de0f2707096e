//! The dispatcher: turns each `proxy_on_*` callback into a call on the right [`Plugin`] or [`HttpFilter`].
//!
//! One `Dispatcher` per filter module holds the plugins (root contexts) and the per-request filters (stream
//! contexts) by context id. On wasm32 the exports that [`filter!`](crate::filter!) emits forward to a
//! thread-local one; natively [`FakeHost`](crate::testing::FakeHost) owns one and calls the same methods, so tests
//! run exactly this code. Nothing here is `unsafe`, and no filter code can reach the dispatcher while it runs a
//! callback (callouts wait in their own table), so its `RefCell` is never borrowed twice.

use crate::abi::{Action, BufferType, LogLevel, MapType};
use crate::callout::{self, CallResult, Callback, Token};
use crate::context::{self, ContextId};
use crate::filter::HttpFilter;
use crate::host::raw;
use crate::http::{Body, Headers};
use crate::plugin::Plugin;
use crate::queue::Queue;
use crate::table::Table;
use crate::{config, logger};

/// A request's filter and the plugin that created it.
struct Stream<F> {
    root: u32,
    filter: F,
}

/// The context tables of one filter module. Public only for [`filter!`](crate::filter!); not an API.
pub struct Dispatcher<P: Plugin> {
    new_plugin: fn() -> P,
    roots: Table<P>,
    streams: Table<Stream<P::Filter>>,
}

impl<P: Plugin> Dispatcher<P> {
    /// A dispatcher that builds plugins with `new_plugin`.
    pub const fn new(new_plugin: fn() -> P) -> Dispatcher<P> {
        Dispatcher { new_plugin, roots: Table::new(), streams: Table::new() }
    }

    /// The plugin of root context `root`.
    pub fn plugin(&self, root: u32) -> Option<&P> {
        self.roots.get(root)
    }

    /// The plugin of root context `root`, mutably.
    pub fn plugin_mut(&mut self, root: u32) -> Option<&mut P> {
        self.roots.get_mut(root)
    }

    /// The filter of stream context `stream`.
    pub fn filter(&self, stream: u32) -> Option<&P::Filter> {
        self.streams.get(stream).map(|stream| &stream.filter)
    }

    /// `proxy_on_context_create`: a plugin when `parent` is 0, else a request of plugin `parent`.
    pub fn on_context_create(&mut self, context: u32, parent: u32) {
        context::enter(context);
        if parent == 0 {
            logger::adopt_host_level();
            self.roots.insert(context, (self.new_plugin)());
        } else if let Some(plugin) = self.roots.get_mut(parent) {
            let filter = plugin.create_filter(ContextId(context));
            self.streams.insert(context, Stream { root: parent, filter });
        } else {
            unknown(context);
        }
    }

    /// `proxy_on_vm_start`: the plugin reads the VM configuration.
    pub fn on_vm_start(&mut self, root: u32, size: usize) -> bool {
        context::enter(root);
        let Some(plugin) = self.roots.get_mut(root) else { return unknown(root) };
        let bytes = read(BufferType::VmConfiguration, size);
        plugin.on_vm_start(&bytes)
    }

    /// `proxy_on_configure`: parses the configuration into `P::Config`, or logs why not and refuses it.
    pub fn on_configure(&mut self, root: u32, size: usize) -> bool {
        context::enter(root);
        logger::adopt_host_level();
        let Some(plugin) = self.roots.get_mut(root) else { return unknown(root) };
        match config::parse::<P::Config>(&read(BufferType::PluginConfiguration, size)) {
            Ok(config) => plugin.on_configure(config),
            Err(error) => {
                let _ = raw::log(LogLevel::Error, error.to_string().as_bytes());
                false
            }
        }
    }

    /// `proxy_on_tick`.
    pub fn on_tick(&mut self, root: u32) {
        context::enter(root);
        match self.roots.get_mut(root) {
            Some(plugin) => plugin.on_tick(),
            None => _ = unknown(root),
        }
    }

    /// `proxy_on_queue_ready`.
    pub fn on_queue_ready(&mut self, root: u32, queue: u32) {
        context::enter(root);
        match self.roots.get_mut(root) {
            Some(plugin) => plugin.on_queue_ready(Queue(queue)),
            None => _ = unknown(root),
        }
    }

    /// `proxy_on_request_headers`.
    pub fn on_request_headers(&mut self, stream: u32, _num_headers: usize, end_of_stream: bool) -> Action {
        self.phase(stream, |f| f.on_request_headers(Headers::new(MapType::HttpRequestHeaders), end_of_stream))
    }

    /// `proxy_on_request_body`.
    pub fn on_request_body(&mut self, stream: u32, size: usize, end_of_stream: bool) -> Action {
        self.phase(stream, |f| f.on_request_body(Body::new(BufferType::HttpRequestBody, size), end_of_stream))
    }

    /// `proxy_on_request_trailers`.
    pub fn on_request_trailers(&mut self, stream: u32, _num_trailers: usize) -> Action {
        self.phase(stream, |f| f.on_request_trailers(Headers::new(MapType::HttpRequestTrailers)))
    }

    /// `proxy_on_response_headers`.
    pub fn on_response_headers(&mut self, stream: u32, _num_headers: usize, end_of_stream: bool) -> Action {
        self.phase(stream, |f| f.on_response_headers(Headers::new(MapType::HttpResponseHeaders), end_of_stream))
    }

    /// `proxy_on_response_body`.
    pub fn on_response_body(&mut self, stream: u32, size: usize, end_of_stream: bool) -> Action {
        self.phase(stream, |f| f.on_response_body(Body::new(BufferType::HttpResponseBody, size), end_of_stream))
    }

    /// `proxy_on_response_trailers`.
    pub fn on_response_trailers(&mut self, stream: u32, _num_trailers: usize) -> Action {
        self.phase(stream, |f| f.on_response_trailers(Headers::new(MapType::HttpResponseTrailers)))
    }

    /// `proxy_on_log`: streams only (Weir never logs root contexts).
    pub fn on_log(&mut self, context: u32) {
        if self.streams.contains(context) {
            self.phase(context, |f| {
                f.on_log();
                Action::Continue
            });
        }
    }

    /// `proxy_on_done`.
    pub fn on_done(&mut self, context: u32) -> bool {
        context::enter(context);
        if let Some(stream) = self.streams.get_mut(context) {
            stream.filter.on_done()
        } else if let Some(plugin) = self.roots.get_mut(context) {
            plugin.on_done()
        } else {
            unknown(context)
        }
    }

    /// `proxy_on_delete`: drops the filter or plugin, and forgets the callouts it sent.
    pub fn on_delete(&mut self, context: u32) {
        callout::forget(context);
        if self.streams.remove(context).is_none() {
            self.roots.remove(context);
        }
    }

    /// `proxy_on_http_call_response`: delivers the answer to the closure or trait method of whoever sent it, with
    /// the sender made the effective context. An answer for a request that is gone is dropped.
    pub fn on_http_call_response(&mut self, root: u32, token: u32, headers: usize, body: usize, trailers: usize) {
        context::enter(root);
        let Some(pending) = callout::take(token) else {
            // Sent by a context deleted since (or never sent by this module).
            log::debug!("weir-sdk: answer for unknown callout {token} dropped");
            return;
        };
        let response = callout::collect(headers, body, trailers);
        let token = Token(token);
        let sender = pending.context;
        if let Some(stream) = self.streams.get_mut(sender) {
            let _ = raw::set_effective_context(sender);
            context::enter(sender);
            match pending.callback.map(|cb| cb.downcast::<Callback<P::Filter>>()) {
                None => stream.filter.on_http_call_response(token, response),
                Some(Ok(callback)) => callback(&mut stream.filter, response),
                Some(Err(other)) => {
                    let root = stream.root;
                    deliver_to_root(self.roots.get_mut(root), other, token, response);
                }
            }
        } else if let Some(plugin) = self.roots.get_mut(sender) {
            match pending.callback {
                None => plugin.on_http_call_response(token, response),
                Some(callback) => deliver_to_root(Some(plugin), callback, token, response),
            }
        }
    }

    /// Runs one stream callback with the stream as the current context.
    fn phase(&mut self, stream: u32, run: impl FnOnce(&mut P::Filter) -> Action) -> Action {
        context::enter(stream);
        match self.streams.get_mut(stream) {
            Some(stream) => run(&mut stream.filter),
            None => {
                unknown(stream);
                Action::Continue
            }
        }
    }
}

/// Runs a callback typed for the plugin, or logs that its type is neither the filter's nor the plugin's.
fn deliver_to_root<P: Plugin>(plugin: Option<&mut P>, callback: Box<dyn std::any::Any>, token: Token, r: CallResult) {
    match (plugin, callback.downcast::<Callback<P>>()) {
        (Some(plugin), Ok(callback)) => callback(plugin, r),
        (_, Err(_)) => {
            log::error!("weir-sdk: the callback of callout {} takes neither the filter nor the plugin", token.0)
        }
        (None, Ok(_)) => {}
    }
}

/// Reads a whole configuration buffer (absent is empty).
fn read(buffer: BufferType, size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    raw::get_buffer_bytes(buffer, 0, size).unwrap_or_default()
}

/// A callback for a context this module never created: logged, then ignored (`false`).
#[cold]
fn unknown(context: u32) -> bool {
    log::error!("weir-sdk: callback for unknown context {context}");
    false
}

#[cfg(test)]
mod tests {
    use super::Dispatcher;
    use crate::abi::Action;
    use crate::testing::FakeHost;
    use crate::{ContextId, HttpFilter, Plugin};

    #[derive(Default)]
    struct Nothing;

    impl Plugin for Nothing {
        type Config = ();
        type Filter = Nothing;
        fn create_filter(&mut self, _stream: ContextId) -> Nothing {
            Nothing
        }
    }

    impl HttpFilter for Nothing {}

    #[test]
    fn callbacks_for_unknown_contexts_are_logged_and_ignored() {
        let host = FakeHost::<Nothing>::new();
        let mut dispatcher = Dispatcher::new(Nothing::default);
        dispatcher.on_context_create(5, 77);
        assert_eq!(dispatcher.on_request_headers(5, 0, true), Action::Continue);
        assert_eq!(dispatcher.on_response_body(5, 0, true), Action::Continue);
        assert!(!dispatcher.on_vm_start(9, 0));
        assert!(!dispatcher.on_configure(9, 0));
        assert!(!dispatcher.on_done(9));
        dispatcher.on_tick(9);
        dispatcher.on_log(5);
        dispatcher.on_delete(5);
        for context in [5, 9] {
            assert!(host.logged(&format!("weir-sdk: callback for unknown context {context}")), "{:?}", host.logs());
        }
        assert!(dispatcher.filter(5).is_none() && dispatcher.plugin(9).is_none());
    }
}
