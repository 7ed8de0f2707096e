//! The SDK twin of `tests/filters/add_header` (written with the crates.io `proxy-wasm` crate): one request header
//! added, one response header added, no logging on the request path. `host/benches/sdk_vs_proxy_wasm.rs` runs both
//! through `weir::harness` to hold the SDK to the target: no more CPU per request than `proxy-wasm`.
//!
//! Configuration: `{"name": "<name>"}` (optional; the default is `default`). Build it with
//! `cargo build -p weir-sdk --target wasm32-wasip1 --profile filter --example add_header`.
#![forbid(unsafe_code)]

use std::rc::Rc;
use weir_sdk::prelude::*;

/// The configuration.
#[derive(serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// The value of the headers added.
    pub name: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { name: "default".into() }
    }
}

/// The plugin: holds the name.
pub struct AddHeader {
    name: Rc<str>,
}

impl Default for AddHeader {
    fn default() -> Self {
        AddHeader { name: Rc::from("default") }
    }
}

impl Plugin for AddHeader {
    type Config = Config;
    type Filter = AddHeaderRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        self.name = Rc::from(config.name);
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> AddHeaderRequest {
        AddHeaderRequest { name: self.name.clone() }
    }
}

/// One request.
pub struct AddHeaderRequest {
    name: Rc<str>,
}

impl HttpFilter for AddHeaderRequest {
    fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        headers.add("x-add-header", &self.name);
        Action::Continue
    }

    fn on_response_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        headers.add("x-add-header-order", &self.name);
        Action::Continue
    }
}

weir_sdk::filter!(AddHeader);
