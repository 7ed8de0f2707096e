//! [`Plugin`]: the root context, one per filter attachment and VM, that outlives requests.

use crate::callout::{CallResult, Token};
use crate::context::ContextId;
use crate::filter::HttpFilter;
use crate::queue::Queue;

/// A plugin: the part of a filter that lives as long as its VM (the proxy-wasm root context).
///
/// It receives the configuration, owns what requests share (configuration, metric handles, caches), gets timer
/// ticks, queue notifications and the answers of callouts it started, and creates one [`HttpFilter`] per request.
/// Every method but [`create_filter`](Plugin::create_filter) has a default. Register it with
/// [`filter!`](crate::filter!), which builds it with `Default` (or a function you name).
///
/// ```
/// use std::rc::Rc;
/// use weir_sdk::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Config { header: String }
///
/// #[derive(Default)]
/// struct Tagger { config: Option<Rc<Config>> }
///
/// impl Plugin for Tagger {
///     type Config = Config;
///     type Filter = TagRequest;
///
///     fn on_configure(&mut self, config: Config) -> bool {
///         self.config = Some(Rc::new(config));
///         true
///     }
///
///     fn create_filter(&mut self, _stream: ContextId) -> TagRequest {
///         TagRequest { config: self.config.clone().expect("configured before any request") }
///     }
/// }
///
/// struct TagRequest { config: Rc<Config> }
///
/// impl HttpFilter for TagRequest {
///     fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
///         headers.set(&self.config.header, "1");
///         Action::Continue
///     }
/// }
/// ```
pub trait Plugin: 'static {
    /// The configuration (the attachment's `configuration`), parsed from JSON by serde once per
    /// `proxy_on_configure`. Use `()` for none, `serde_json::Value` to take anything. Weir hands a configuration
    /// that is a JSON string to the filter as its raw text, which is not JSON: configure with an object instead.
    type Config: serde::de::DeserializeOwned;

    /// The per-request filter this plugin creates.
    type Filter: HttpFilter;

    /// Runs once when the plugin starts, before [`on_configure`](Plugin::on_configure), with the VM
    /// configuration's bytes (`vm_configuration`, often empty). Returning `false` fails the VM. Default: `true`.
    fn on_vm_start(&mut self, _vm_configuration: &[u8]) -> bool {
        true
    }

    /// Runs with the parsed configuration, before any request (and again if the host reconfigures the plugin).
    /// Return `false` to refuse it (Weir then does not start). A configuration that does not parse never gets
    /// here: the SDK logs serde's error and refuses it. Default: accept.
    fn on_configure(&mut self, _config: Self::Config) -> bool {
        true
    }

    /// Creates the filter for one request, `stream` being its context id (keep it to act on the request later
    /// with [`context::set_effective`](crate::context::set_effective)).
    fn create_filter(&mut self, stream: ContextId) -> Self::Filter;

    /// Runs every tick period set with [`time::set_tick_period`](crate::time::set_tick_period). Default: nothing.
    fn on_tick(&mut self) {}

    /// Runs when an item was enqueued on a queue this plugin registered ([`Queue::register`]). Default: nothing.
    fn on_queue_ready(&mut self, _queue: Queue) {}

    /// The answer to a callout this plugin sent without a callback
    /// ([`HttpCall::send`](crate::callout::HttpCall::send) from `on_tick` or another root callback).
    /// Default: nothing.
    fn on_http_call_response(&mut self, _token: Token, _response: CallResult) {}

    /// Runs when the host removes the plugin. Return `false` to finish work first, then call
    /// [`context::done`](crate::context::done). Default: `true`.
    fn on_done(&mut self) -> bool {
        true
    }
}
