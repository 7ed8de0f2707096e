//! The Weir SDK for filter authors.
//!
//! Weir runs proxy-wasm filters compiled to `wasm32-wasip1`. Today this crate holds only [`abi`]: the status
//! codes, enumerations and wire encodings of the proxy-wasm ABI, defined once and shared by the Weir host and by
//! guest filters. It uses only `std`, contains no `unsafe` and builds for every target.
//!
//! The filter-author API (contexts, hostcall wrappers, the `proxy_on_*` exports) comes in a later issue.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod abi;
