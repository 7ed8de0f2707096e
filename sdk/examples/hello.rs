//! The smallest useful filter: answers `GET /hello` itself and tags every other request.
//!
//! Build it with `cargo build -p weir-sdk --target wasm32-wasip1 --profile filter --example hello`
//! (the module is `target/wasm32-wasip1/filter/examples/hello.wasm`); `sdk/tests/all/wasm.rs` builds it, checks its
//! imports and exports and keeps it under 150 KB, and `sdk/tests/all/examples.rs` unit-tests it natively.
//!
//! Configuration: `{"greeting": "hello"}` (optional; the default is `hello from weir`).
#![forbid(unsafe_code)]

use weir_sdk::prelude::*;

/// The configuration.
#[derive(serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// What `/hello` answers.
    pub greeting: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { greeting: "hello from weir".into() }
    }
}

/// The plugin: holds the greeting.
#[derive(Default)]
pub struct Hello {
    greeting: String,
}

impl Plugin for Hello {
    type Config = Config;
    type Filter = HelloRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        self.greeting = config.greeting;
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> HelloRequest {
        HelloRequest { greeting: self.greeting.clone() }
    }
}

/// One request.
pub struct HelloRequest {
    greeting: String,
}

impl HttpFilter for HelloRequest {
    fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        if headers.path().as_deref() == Some("/hello") {
            return http::send_response(200, &[("content-type", "text/plain")], self.greeting.as_bytes());
        }
        headers.set("x-hello", "1");
        Action::Continue
    }
}

weir_sdk::filter!(Hello);
