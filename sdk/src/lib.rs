//! The Weir SDK: write proxy-wasm filters for Weir (and Envoy) in safe Rust, and test them natively.
//!
//! A filter is a [`Plugin`] (one per attachment and VM: configuration, shared handles, timers) that creates one
//! [`HttpFilter`] per request (one method per phase, each with a default). [`filter!`] registers it: it emits the
//! proxy-wasm 0.2.1 exports for `wasm32-wasip1`, and the SDK does the rest (context ids, configuration parsing,
//! logging, callouts). No `unsafe` in filter code: all FFI is in one private module.
//!
//! ```
//! use weir_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { greeting: String }
//!
//! #[derive(Default)]
//! struct Hello { greeting: String }
//!
//! impl Plugin for Hello {
//!     type Config = Config;
//!     type Filter = HelloRequest;
//!
//!     fn on_configure(&mut self, config: Config) -> bool {
//!         self.greeting = config.greeting;
//!         true
//!     }
//!
//!     fn create_filter(&mut self, _stream: ContextId) -> HelloRequest {
//!         HelloRequest { greeting: self.greeting.clone() }
//!     }
//! }
//!
//! struct HelloRequest { greeting: String }
//!
//! impl HttpFilter for HelloRequest {
//!     fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
//!         if headers.path().as_deref() == Some("/hello") {
//!             return http::send_response(200, &[], self.greeting.as_bytes());
//!         }
//!         headers.set("x-greeting", &self.greeting);
//!         Action::Continue
//!     }
//! }
//!
//! weir_sdk::filter!(Hello);
//!
//! // The same filter, natively, against the fake host:
//! use weir_sdk::testing::FakeHost;
//!
//! let mut host = FakeHost::<Hello>::new();
//! assert!(host.configure(r#"{"greeting": "hi"}"#));
//! let mut request = host.stream();
//! assert_eq!(request.send_request_headers(&[(":path", "/hello")], true), Action::Pause);
//! assert_eq!(request.local_response().unwrap().body, b"hi");
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`http`] | headers, bodies, trailers, local responses ([`http::send_json`]), resume and close |
//! | [`property`] | `request_path()`, `source_address()`, ..., and any path as any [`property::PropertyValue`] |
//! | [`callout`] | HTTP callouts to a cluster, answered to a closure or a trait method |
//! | [`shared`] | shared data (bytes or serde), with a compare-and-swap update loop |
//! | [`queue`], [`metrics`], [`time`] | shared queues, counters/gauges/histograms, the clock and the tick timer |
//! | [`context`] | context ids, acting on another stream |
//! | [`config`] | how the configuration is parsed (serde_json; errors with line and column) |
//! | [`testing`] | the fake host: unit tests of filter logic, natively |
//! | [`abi`] | the ABI's numbers and encodings, shared with the Weir host |
//!
//! Logging: use the `log` macros; records go to the host's log at the host's level. A panic is logged at critical
//! before the trap.
//!
//! Build a filter crate (`crate-type = ["cdylib"]`) with
//! `cargo build --target wasm32-wasip1 --profile filter` (lto, opt-level 3, panic abort, strip).

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod abi;
#[cfg(any(test, all(target_arch = "wasm32", feature = "small-blocks")))]
mod alloc;
pub mod callout;
pub mod config;
pub mod context;
mod dispatch;
mod export;
mod filter;
mod host;
pub mod http;
mod logger;
pub mod metrics;
mod plugin;
pub mod property;
pub mod queue;
pub mod shared;
mod table;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

#[doc(hidden)]
pub use export::__private;

/// Small blocks from free lists, the rest from dlmalloc (`src/alloc.rs`; feature `small-blocks`, on by default).
#[cfg(all(target_arch = "wasm32", feature = "small-blocks"))]
#[global_allocator]
static ALLOCATOR: alloc::SmallBlocks = alloc::SmallBlocks::new();

pub use abi::{Action, Status};
pub use context::ContextId;
pub use filter::HttpFilter;
pub use plugin::Plugin;

/// Everything a filter usually needs: `use weir_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::abi::{Action, Status};
    pub use crate::callout::{CallResult, HttpCall, Response, Token};
    pub use crate::context::ContextId;
    pub use crate::http::{self, Body, Headers};
    pub use crate::metrics::{Counter, Gauge, Histogram};
    pub use crate::queue::Queue;
    pub use crate::{property, shared, time, HttpFilter, Plugin};
}
