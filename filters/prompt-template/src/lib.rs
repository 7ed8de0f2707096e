//! Prompt encapsulation: a prompt template with typed variables becomes a REST API. A request such as
//! `POST /api/sentiment` with `{"text": "..."}` is checked against the template's variables, turned into an
//! OpenAI Chat Completions request (sent on through the route, usually to the provider adapter, or as a
//! callout), and the model's answer comes back shaped as plain JSON, or as a stream of its text. The same
//! attachment serves the API's OpenAPI document, and can add messages to ordinary chat requests (decorators).
//! `filters/prompt-template/README.md` has the configuration.
//!
//! Files: `request` (one request's phases), [`config`] (the configuration), [`vars`] (typed variables and the
//! inputs), [`template`] (placeholders, substitution, decorators), [`answer`] (output modes and errors),
//! [`schema`] (the JSON Schema subset checked), [`stream`] (SSE to text stream), [`openapi`], [`metrics`].

use std::rc::Rc;

use weir_sdk::prelude::*;

pub mod answer;
pub mod config;
pub mod metrics;
pub mod openapi;
mod request;
pub mod schema;
pub mod stream;
pub mod template;
pub mod vars;

use config::{Config, Prompt};
pub use request::PromptRequest;

/// The plugin: one per attachment and VM.
#[derive(Default)]
pub struct PromptTemplate {
    prompt: Option<Rc<Prompt>>,
    metrics: Rc<metrics::Metrics>,
}

impl Plugin for PromptTemplate {
    type Config = Config;
    type Filter = PromptRequest;

    fn on_configure(&mut self, config: Config) -> bool {
        match config.compile() {
            Ok(prompt) => {
                self.prompt = Some(Rc::new(prompt));
                self.metrics = Rc::new(metrics::Metrics::define());
                true
            }
            Err(why) => {
                log::error!("prompt-template: invalid configuration: {why}");
                false
            }
        }
    }

    fn create_filter(&mut self, _stream: ContextId) -> PromptRequest {
        PromptRequest::new(self.prompt.clone(), self.metrics.clone())
    }
}

weir_sdk::filter!(PromptTemplate);

#[cfg(test)]
mod tests;
