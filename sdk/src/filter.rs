//! [`HttpFilter`]: one per request, called for each phase of the request and its response.

use crate::abi::Action;
use crate::callout::{CallResult, Token};
use crate::http::{Body, Headers};

/// The per-request part of a filter (the proxy-wasm HTTP context), created by
/// [`Plugin::create_filter`](crate::Plugin::create_filter).
///
/// Each phase has a default that returns [`Action::Continue`] (or does nothing). Return [`Action::Pause`] to hold
/// the request or response until the filter resumes it ([`http::resume_request`](crate::http::resume_request),
/// usually from a callout answer) or answers it ([`http::send_response`](crate::http::send_response)).
///
/// Order: request headers, request body chunks, request trailers (if any), response headers, response body
/// chunks, response trailers (if any), then [`on_log`](HttpFilter::on_log) and [`on_done`](HttpFilter::on_done).
///
/// ```
/// use weir_sdk::prelude::*;
///
/// struct DenyDelete;
///
/// impl HttpFilter for DenyDelete {
///     fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
///         if headers.method().as_deref() == Some("DELETE") {
///             return http::send_response(405, &[("allow", "GET, POST")], b"no deletes here\n");
///         }
///         Action::Continue
///     }
/// }
/// ```
pub trait HttpFilter: 'static {
    /// The request headers arrived (pseudo-headers `:method`, `:path`, `:authority`, `:scheme` included);
    /// `end_of_stream` means there is no body. Changes made here go upstream. Pause to hold the request (no body
    /// callbacks run while it is held). Default: continue.
    fn on_request_headers(&mut self, _headers: Headers, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// A chunk of the request body: `body` holds the chunk, or everything held so far if the previous body call
    /// paused. Pause to hold it and get it again with the next chunk appended; continue to send it on.
    /// `end_of_stream` is set on the last call (not when trailers follow). Default: continue.
    fn on_request_body(&mut self, _body: Body, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// The request trailers (only for requests that have them). Default: continue.
    fn on_request_trailers(&mut self, _trailers: Headers) -> Action {
        Action::Continue
    }

    /// The response headers arrived (`:status` included), from the upstream or a local response. Default:
    /// continue.
    fn on_response_headers(&mut self, _headers: Headers, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// A chunk of the response body, as for [`on_request_body`](HttpFilter::on_request_body). Default: continue.
    fn on_response_body(&mut self, _body: Body, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// The response trailers (only for responses that have them). Default: continue.
    fn on_response_trailers(&mut self, _trailers: Headers) -> Action {
        Action::Continue
    }

    /// The answer to a callout this request sent without a callback
    /// ([`HttpCall::send`](crate::callout::HttpCall::send)); hostcalls act on this request. Default: nothing.
    fn on_http_call_response(&mut self, _token: Token, _response: CallResult) {}

    /// The exchange is over: headers are read-only, properties such as `response.code` and `request.duration`
    /// are final. Default: nothing.
    fn on_log(&mut self) {}

    /// The host is done with this request; the filter is dropped right after. Default: `true`.
    fn on_done(&mut self) -> bool {
        true
    }
}
