//! A filter that uses every part of the SDK: per-client quotas in shared data, an auth callout, metrics, a queue
//! of events drained on a timer, properties and JSON answers.
//!
//! Build it with `cargo build -p weir-sdk --target wasm32-wasip1 --profile filter --example quota`;
//! `sdk/tests/all/wasm.rs` checks that everything it imports is a proxy-wasm 0.2.1 hostcall.
//!
//! Configuration: `{"limit": 100, "auth_cluster": "auth"}`.
#![forbid(unsafe_code)]

use std::time::Duration;

use weir_sdk::prelude::*;

/// The configuration.
#[derive(serde::Deserialize)]
pub struct Config {
    /// Requests allowed per client address.
    pub limit: u64,
    /// The cluster that checks `authorization`.
    pub auth_cluster: String,
}

/// The plugin: configuration and metric handles.
#[derive(Default)]
pub struct Quota {
    config: Option<std::rc::Rc<Config>>,
    denied: Option<Counter>,
    events: Option<Queue>,
}

impl Plugin for Quota {
    type Config = Config;
    type Filter = QuotaRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        self.config = Some(std::rc::Rc::new(config));
        self.denied = Counter::define("quota_denied").ok();
        self.events = Queue::register("quota_events").ok();
        time::set_tick_period(Duration::from_secs(10));
        true
    }

    fn create_filter(&mut self, _stream: ContextId) -> QuotaRequest {
        let config = self.config.clone().expect("configured before requests");
        QuotaRequest { config, denied: self.denied }
    }

    fn on_tick(&mut self) {
        let Some(events) = self.events else { return };
        let mut drained = 0;
        while let Ok(Some(_)) = events.dequeue() {
            drained += 1;
        }
        log::info!("quota: {drained} events since the last tick");
    }
}

/// One request.
pub struct QuotaRequest {
    config: std::rc::Rc<Config>,
    denied: Option<Counter>,
}

#[derive(serde::Serialize)]
struct Denied<'a> {
    error: &'a str,
    used: u64,
}

impl HttpFilter for QuotaRequest {
    fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        let client = property::source_address().map(|addr| addr.ip().to_string()).unwrap_or_default();
        let key = format!("quota/{client}");
        let used = shared::update(&key, 8, |used: Option<u64>| used.unwrap_or(0) + 1).unwrap_or(u64::MAX);
        if used > self.config.limit {
            if let Some(denied) = self.denied {
                denied.increment(1);
            }
            return http::send_json(429, &Denied { error: "quota exceeded", used });
        }
        if let Ok(Some(events)) = Queue::resolve("", "quota_events") {
            let _ = events.enqueue(client.as_bytes());
        }
        let token = headers.get("authorization").unwrap_or_default();
        let sent = HttpCall::get(&self.config.auth_cluster, "/check")
            .header("authorization", &token)
            .timeout(Duration::from_secs(1))
            .dispatch(|_: &mut QuotaRequest, answer: CallResult| match answer {
                Ok(answer) if answer.status == 200 => {
                    http::request_headers().set("x-user", answer.header("x-user").unwrap_or(""));
                    http::resume_request();
                }
                _ => _ = http::send_response(403, &[], b"denied\n"),
            });
        match sent {
            Ok(_) => Action::Pause,
            Err(_) => http::send_response(503, &[], b"auth unavailable\n"),
        }
    }

    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if end_of_stream && property::response_code() == Some(500) {
            body.replace(b"internal error\n");
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(path) = property::request_path() {
            log::debug!("quota: done with {path}");
        }
    }
}

weir_sdk::filter!(Quota);
