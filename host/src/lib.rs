//! Weir: a WebAssembly-extensible API and AI gateway.
//!
//! The library behind the `weir` binary. Tests and embedders start a gateway with
//! [`Gateway::start`] from a validated [`config::Config`]:
//!
//! ```no_run
//! let config = weir::config::Config::embedded_default();
//! let gateway = weir::Gateway::start(config, Default::default()).expect("starts");
//! println!("listening on {:?}", gateway.listener_addr("default"));
//! gateway.shutdown();
//! ```
//!
//! Architecture: `docs/architecture.md` in the repository.

#![deny(missing_docs)]

pub mod abi;
pub mod admin;
pub mod artifact;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod error;
pub mod filter;
pub mod harness;
pub mod http1;
pub mod io;
pub mod proxy;
pub mod registry;
pub mod router;
pub mod server;
pub mod telemetry;
pub mod upstream;
pub mod wasm;

pub use server::{Gateway, StartError, StartOptions};
