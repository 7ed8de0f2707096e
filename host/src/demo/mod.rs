//! The embedded demo: what `weir serve` with no `--config` runs, so a newcomer sees every part of the product
//! work together without installing anything else (docs/quickstart.md).
//!
//! - [`shipped`]: the five shipped filters, embedded in the binary by `host/build.rs`.
//! - [`seed`]: what `weir serve` writes into a registry at start (the shipped filters, the demo routes).
//! - [`token`]: the demo's JWT issuer (`weir token`).
//! - [`llm`]: a deterministic LLM upstream speaking the OpenAI and Anthropic protocols, streaming included.

pub mod llm;
pub mod seed;
pub mod shipped;
pub mod token;
