//! The LLM provider adapter: one OpenAI Chat Completions API over OpenAI, Azure OpenAI, Anthropic, Gemini,
//! Bedrock, Mistral, Ollama and OpenAI-compatible hosts. `filters/provider-adapter/README.md` has the
//! configuration.
//!
//! Files: `request` (one request's phases), [`config`], [`ir`] (the internal representation every
//! translation goes through), [`openai`] (the client's contract), [`providers`] (one file per provider),
//! [`chunks`] (the client's stream), [`aggregate`] (stream ⇄ whole answer), [`sse`] and [`eventstream`] (incremental framing), [`sigv4`],
//! [`keys`], [`models`], [`errors`].

use std::cell::Cell;
use std::rc::Rc;

use weir_sdk::prelude::*;

pub mod aggregate;
pub mod chunks;
pub mod config;
pub mod errors;
pub mod eventstream;
pub mod ir;
pub mod keys;
pub mod models;
pub mod openai;
pub mod providers;
mod request;
pub mod sigv4;
pub mod sse;

use config::Settings;
pub use request::AdapterRequest;

/// What one configuration shares with its requests.
pub(crate) struct Shared {
    settings: Settings,
    /// When the configuration was accepted (Unix seconds; the model list's `created`).
    created: u64,
    /// Numbers minted ids when the request has no id.
    counter: Cell<u64>,
}

/// The plugin: one per attachment and VM.
#[derive(Default)]
pub struct ProviderAdapter {
    shared: Option<Rc<Shared>>,
}

impl Plugin for ProviderAdapter {
    type Config = serde_json::Value;
    type Filter = AdapterRequest;

    fn on_configure(&mut self, config: serde_json::Value) -> bool {
        match config::parse(&config).and_then(|config| config.compile(|name| std::env::var(name).ok())) {
            Ok(settings) => {
                let created = weir_sdk::time::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                self.shared = Some(Rc::new(Shared { settings, created, counter: Cell::new(0) }));
                true
            }
            Err(why) => {
                log::error!("provider-adapter: {why}");
                false
            }
        }
    }

    fn create_filter(&mut self, _stream: ContextId) -> AdapterRequest {
        AdapterRequest::new(self.shared.clone())
    }
}

weir_sdk::filter!(ProviderAdapter);

#[cfg(test)]
mod tests;
