//! Integration tests: the real gateway on 127.0.0.1 ports, real HTTP servers behind it, real clients.

mod admin;
mod admin_api;
mod balancing;
mod failures;
mod filters_add_header;
mod filters_body;
mod filters_callout;
mod filters_foreign;
mod filters_http;
mod filters_pause;
mod filters_state;
mod filters_trailers;
mod headers;
mod http2_tls;
mod jwt_auth;
mod misbehaving;
mod prompt_template;
mod provider_adapter;
mod quota;
mod registry;
mod resilience;
mod response_cache;
mod routing;
mod streaming;
mod timeouts;
mod wasm_load;
