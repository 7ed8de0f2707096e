//! The example filter on Weir's Rust SDK (`weir-sdk`). The behaviour, the same in every language, is specified in
//! docs/filters-in-other-languages.md; compare examples/lang/rust-proxy-wasm, the same on the crates.io crate.

use std::rc::Rc;
use std::time::Duration;

use weir_sdk::prelude::*;

/// The configuration: every key required, no other key.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    tag: String,
    deny_path: String,
    callout_cluster: String,
    callout_path: String,
    callout_header: String,
}

/// The plugin: the configuration and the request counter.
#[derive(Default)]
pub struct Example {
    config: Option<Rc<Config>>,
    requests: Option<Counter>,
}

impl Plugin for Example {
    type Config = Config;
    type Filter = ExampleRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        self.config = Some(Rc::new(config));
        self.requests = Counter::define("example_requests").ok();
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> ExampleRequest {
        let config = Rc::clone(self.config.as_ref().expect("on_configure ran before any request"));
        ExampleRequest { config, requests: self.requests, callout_value: None }
    }
}

/// One request.
pub struct ExampleRequest {
    config: Rc<Config>,
    requests: Option<Counter>,
    callout_value: Option<String>,
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

impl HttpFilter for ExampleRequest {
    fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        if let Some(requests) = &self.requests {
            requests.increment(1);
        }
        headers.add("x-example-request", &self.config.tag);
        if headers.path().as_deref() == Some(self.config.deny_path.as_str()) {
            return http::send_response(403, JSON, br#"{"error":"forbidden"}"#);
        }
        let sent = HttpCall::get(&self.config.callout_cluster, &self.config.callout_path)
            .authority(&self.config.callout_cluster)
            .timeout(Duration::from_secs(5))
            .dispatch(|filter: &mut ExampleRequest, answer: CallResult| match answer {
                Ok(answer) => {
                    filter.callout_value = answer.header(&filter.config.callout_header).map(str::to_owned);
                    http::resume_request();
                }
                Err(_) => _ = http::send_response(502, JSON, br#"{"error":"callout failed"}"#),
            });
        match sent {
            Ok(_) => Action::Pause,
            Err(_) => http::send_response(502, JSON, br#"{"error":"callout failed"}"#),
        }
    }

    fn on_response_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        headers.add("x-example-response", &self.config.tag);
        if let Some(value) = &self.callout_value {
            headers.add("x-example-callout", value);
        }
        Action::Continue
    }
}

weir_sdk::filter!(Example);
