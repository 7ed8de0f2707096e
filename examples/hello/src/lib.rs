//! The hello filter: answers `GET /hello` and `GET /hello/NAME` itself, with JSON, and lets every other request
//! through to the route. `examples/hello/README.md` builds it, runs it in `weir serve` and curls it (and a test runs
//! those steps).
//!
//! Configuration: `{"greeting": "Hello"}` (optional; `Hello` by default).

use std::rc::Rc;

use weir_sdk::prelude::*;

/// The configuration (the attachment's `"configuration"`).
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The first word of the answer.
    pub greeting: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { greeting: "Hello".into() }
    }
}

/// The plugin: keeps the configuration.
#[derive(Default)]
pub struct Hello {
    config: Rc<Config>,
}

impl Plugin for Hello {
    type Config = Config;
    type Filter = HelloRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        self.config = Rc::new(config);
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> HelloRequest {
        HelloRequest { config: Rc::clone(&self.config) }
    }
}

/// One request.
pub struct HelloRequest {
    config: Rc<Config>,
}

/// The answer.
#[derive(serde::Serialize)]
struct Message {
    message: String,
}

impl HttpFilter for HelloRequest {
    fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        let path = headers.path().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        let name = match path.strip_prefix("/hello") {
            Some("") => "world",
            Some(rest) => match rest.strip_prefix('/') {
                Some(name) if !name.is_empty() && !name.contains('/') => name,
                _ => return Action::Continue,
            },
            None => return Action::Continue,
        };
        http::send_json(200, &Message { message: format!("{}, {name}!", self.config.greeting) })
    }
}

weir_sdk::filter!(Hello);

#[cfg(test)]
mod tests;
