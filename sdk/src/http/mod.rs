//! The HTTP stream: headers, bodies, trailers, local responses and stream control.
//!
//! Every function acts on the stream whose callback is running (or the one made effective with
//! [`context::set_effective`](crate::context::set_effective)).
//!
//! ```no_run
//! use weir_sdk::http;
//!
//! let path = http::request_headers().path().unwrap_or_default();
//! if path.starts_with("/admin") {
//!     http::send_response(403, &[], b"forbidden\n");
//! }
//! ```

mod body;
mod headers;
mod response;
mod snapshot;

pub use body::Body;
pub use headers::Headers;
pub use response::{send_json, send_response, send_response_with_details};
pub use snapshot::HeaderSnapshot;

use crate::abi::{MapType, StreamType};
use crate::host::{raw, report};

/// The request headers (pseudo-headers included).
pub fn request_headers() -> Headers {
    Headers::new(MapType::HttpRequestHeaders)
}

/// The request trailers (empty until the request has them).
pub fn request_trailers() -> Headers {
    Headers::new(MapType::HttpRequestTrailers)
}

/// The response headers (`:status` included).
pub fn response_headers() -> Headers {
    Headers::new(MapType::HttpResponseHeaders)
}

/// The response trailers (empty until the response has them).
pub fn response_trailers() -> Headers {
    Headers::new(MapType::HttpResponseTrailers)
}

/// Resumes a request held by a [`Pause`](crate::Action::Pause) (`proxy_continue_stream`); the host resumes it
/// once the current callback returns.
///
/// ```no_run
/// weir_sdk::http::resume_request();
/// ```
pub fn resume_request() {
    if let Err(status) = raw::continue_stream(StreamType::HttpRequest) {
        report("resume_request", status);
    }
}

/// Resumes a response held by a [`Pause`](crate::Action::Pause).
///
/// ```no_run
/// weir_sdk::http::resume_response();
/// ```
pub fn resume_response() {
    if let Err(status) = raw::continue_stream(StreamType::HttpResponse) {
        report("resume_response", status);
    }
}

/// Resets the stream instead of answering it (`proxy_close_stream`).
///
/// ```no_run
/// weir_sdk::http::close();
/// ```
pub fn close() {
    if let Err(status) = raw::close_stream(StreamType::HttpRequest) {
        report("close", status);
    }
}

/// Tells Weir that the local response this `on_request_headers` sends (before or after this call) answers every
/// request without a body that agrees with this one on what `spec` names (headers, filter-set properties, the
/// shared data read), until `spec.expires_unix_ms`: Weir then sends it by itself to such requests, without
/// entering the VM, and hands one back to the filter every `revalidate_ms` (the foreign function
/// `weir.memoize_response`; docs/filters.md, "Memoized answers").
///
/// Call it only when nothing else decided the answer: whatever the filter would do for those requests (its
/// other callbacks, logs, shared data writes) does not happen for the answers Weir sends, except the counter
/// increments `spec.counters` names. Returns whether the host took it: `false` on hosts without it (Envoy) or
/// outside `on_request_headers` of a request without a body.
///
/// ```no_run
/// use weir_sdk::abi::MemoSpec;
/// let now = weir_sdk::time::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
/// weir_sdk::http::send_response(200, &[], b"cached\n");
/// weir_sdk::http::memoize_response(&MemoSpec {
///     headers: vec![":method".into(), ":path".into()],
///     expires_unix_ms: now.as_millis() as u64 + 10_000,
///     ..MemoSpec::default()
/// });
/// ```
pub fn memoize_response(spec: &crate::abi::MemoSpec) -> bool {
    weir_function(crate::abi::MEMOIZE_RESPONSE, spec)
}

/// Tells Weir what this plugin's HTTP contexts use, so that it skips the rest (the foreign function
/// `weir.declare_stream_needs`; docs/filters.md, "Declaring what a filter's streams need"): the body and
/// trailers callbacks of a direction (the bytes stream past the VM), `on_log`, `on_done`, and the copy of each
/// header map kept for reads after its phase. Call it from [`Plugin::on_configure`](crate::Plugin::on_configure);
/// it applies to the requests that start after it, and a later call replaces it.
///
/// Declare only what the filter's code never uses: a callback Weir skips does not run, and a header map read
/// after its phase reads as empty. On hosts without it (Envoy) every callback runs as before; it returns
/// whether the host took it.
///
/// ```no_run
/// use weir_sdk::abi::StreamNeeds;
/// // A filter that only looks at request headers and adds response headers.
/// weir_sdk::http::declare_stream_needs(&StreamNeeds::HEADERS_ONLY);
/// ```
pub fn declare_stream_needs(needs: &crate::abi::StreamNeeds) -> bool {
    weir_function(crate::abi::DECLARE_STREAM_NEEDS, needs)
}

/// Calls Weir's foreign function `name` with `args` as JSON: whether the host took it (`false` on hosts without
/// it, such as Envoy, and on a refusal, which is reported).
fn weir_function(name: &str, args: &impl serde::Serialize) -> bool {
    let Ok(args) = serde_json::to_vec(args) else { return false };
    match raw::call_foreign_function(name.as_bytes(), &args) {
        Ok(_) => true,
        Err(crate::abi::Status::NotFound) => false,
        Err(status) => {
            report(name, status);
            false
        }
    }
}

/// Asks the host to choose the route again after this filter changed the request headers (the foreign function
/// `clear_route_cache`). Only meaningful in [`on_request_headers`](crate::HttpFilter::on_request_headers).
///
/// ```no_run
/// weir_sdk::http::request_headers().set(":path", "/v2/users");
/// weir_sdk::http::clear_route_cache();
/// ```
pub fn clear_route_cache() {
    if let Err(status) = raw::call_foreign_function(b"clear_route_cache", b"") {
        report("clear_route_cache", status);
    }
}
