//! The argument of Weir's foreign function `weir.declare_stream_needs`, as JSON: which per-stream callbacks and
//! reads a plugin's HTTP contexts use. One definition for the host that reads it and the SDK that writes it
//! ([`crate::http::declare_stream_needs`] says when a filter calls it).
//!
//! The host skips what a plugin declared it does not need: the body stage of a direction no filter reads
//! (the bytes stream past the VM), the `on_log` and `on_done` calls, and the copy of each header map it
//! keeps so the context can read the map after its phase. On Envoy the function does not exist and every
//! callback runs, so a filter behaves the same on both; it only costs less on Weir.

use serde::{Deserialize, Serialize};

/// The foreign function's name.
pub const DECLARE_STREAM_NEEDS: &str = "weir.declare_stream_needs";

/// What the HTTP contexts of one plugin (root context) use. Every field defaults to `true` (needed), so
/// `{}` changes nothing and a declaration names only what it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamNeeds {
    /// `proxy_on_request_body` and `proxy_on_request_trailers`.
    pub request_body: bool,
    /// `proxy_on_response_body` and `proxy_on_response_trailers`.
    pub response_body: bool,
    /// `proxy_on_log`.
    pub log: bool,
    /// `proxy_on_done` (`proxy_on_delete` always runs: it frees the context).
    pub done: bool,
    /// Reading the request headers after `on_request_headers` continued, and the response headers after
    /// `on_response_headers` continued (in later callbacks, `on_log` included). Without it such a read sees
    /// an empty map.
    pub headers_after_phase: bool,
}

impl Default for StreamNeeds {
    fn default() -> StreamNeeds {
        StreamNeeds::ALL
    }
}

impl StreamNeeds {
    /// Everything: what a plugin that declares nothing gets.
    pub const ALL: StreamNeeds =
        StreamNeeds { request_body: true, response_body: true, log: true, done: true, headers_after_phase: true };

    /// The two headers callbacks alone, each reading only its own map.
    pub const HEADERS_ONLY: StreamNeeds =
        StreamNeeds { request_body: false, response_body: false, log: false, done: false, headers_after_phase: false };

    /// Reads a declaration: a JSON object of the fields above (serde alone would also take an array).
    pub fn from_json(json: &[u8]) -> Result<StreamNeeds, serde_json::Error> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)?;
        serde_json::from_value(serde_json::Value::Object(object))
    }

    /// Whether the body and trailers callbacks of one direction are needed.
    pub fn body(&self, request: bool) -> bool {
        if request {
            self.request_body
        } else {
            self.response_body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_fields_are_needed() {
        let table: [(&str, StreamNeeds); 4] = [
            ("{}", StreamNeeds::ALL),
            (r#"{"log": false}"#, StreamNeeds { log: false, ..StreamNeeds::ALL }),
            (
                r#"{"response_body": false, "done": false}"#,
                StreamNeeds { response_body: false, done: false, ..StreamNeeds::ALL },
            ),
            (
                r#"{"request_body": false, "response_body": false, "log": false, "done": false, "headers_after_phase": false}"#,
                StreamNeeds::HEADERS_ONLY,
            ),
        ];
        for (json, want) in table {
            assert_eq!(StreamNeeds::from_json(json.as_bytes()).unwrap(), want, "{json}");
        }
        let round = serde_json::to_string(&StreamNeeds::HEADERS_ONLY).unwrap();
        assert_eq!(StreamNeeds::from_json(round.as_bytes()).unwrap(), StreamNeeds::HEADERS_ONLY);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        for bad in [r#"{"body": false}"#, r#"{"log": "no"}"#, "[]", "[true]", "", "null"] {
            assert!(StreamNeeds::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn body_names_the_direction() {
        let needs = StreamNeeds { request_body: false, ..StreamNeeds::ALL };
        assert!(!needs.body(true));
        assert!(needs.body(false));
    }
}
