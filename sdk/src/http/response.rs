//! Local responses: answering the client from the filter.

use crate::abi::{encode_pairs, Action};
use crate::host::{raw, report};

/// Answers the request with `status`, `headers` and `body` instead of forwarding it
/// (`proxy_send_local_response`), and returns [`Action::Pause`] so a headers or body callback can end with it.
///
/// The host sends it once the callback returns; the filter's own response callbacks see it, as in Envoy. Call
/// it at most once per request.
///
/// ```no_run
/// use weir_sdk::{http, Action};
///
/// fn deny() -> Action {
///     http::send_response(403, &[("content-type", "text/plain")], b"denied\n")
/// }
/// ```
pub fn send_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Action {
    send_response_with_details(status, headers, body, "")
}

/// [`send_response`] with a details string (Weir's `response.code_details` and access log).
///
/// ```no_run
/// weir_sdk::http::send_response_with_details(429, &[], b"slow down\n", "rate_limited");
/// ```
pub fn send_response_with_details(status: u16, headers: &[(&str, &str)], body: &[u8], details: &str) -> Action {
    let headers = encode_pairs(headers);
    if let Err(status) = raw::send_local_response(u32::from(status), details.as_bytes(), body, &headers, -1) {
        report("send_response", status);
    }
    Action::Pause
}

/// Answers with `value` as JSON (`content-type: application/json`). If `value` cannot be serialized, answers
/// 500 instead and logs why.
///
/// ```no_run
/// use weir_sdk::http;
///
/// #[derive(serde::Serialize)]
/// struct Problem<'a> { error: &'a str }
///
/// http::send_json(401, &Problem { error: "missing token" });
/// ```
pub fn send_json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Action {
    match serde_json::to_vec(value) {
        Ok(body) => send_response(status, &[("content-type", "application/json")], &body),
        Err(error) => {
            log::error!("send_json: cannot serialize the response: {error}");
            send_response(500, &[], b"")
        }
    }
}
