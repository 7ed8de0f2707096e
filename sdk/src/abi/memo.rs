//! The arguments of Weir's foreign function `weir.memoize_response`, as JSON: one definition for the host that
//! reads them and the SDK that writes them ([`crate::http::memoize_response`] says when a filter calls it).

use serde::{Deserialize, Serialize};

/// The foreign function's name.
pub const MEMOIZE_RESPONSE: &str = "weir.memoize_response";

/// What decided a local response sent from `on_request_headers`, and how long the host may send it again by
/// itself to requests that agree on all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoSpec {
    /// Request headers the answer depends on (pseudo-headers such as `:path` included), by name: the host
    /// records every value each has now (or its absence) and answers only requests with the same values.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Properties set by filters of the request (`proxy_set_property`, one segment, such as `weir.consumer`)
    /// the answer depends on: recorded and compared as the headers are. An Envoy attribute (`request.path`)
    /// is refused: name the header it comes from instead.
    #[serde(default)]
    pub properties: Vec<String>,
    /// Shared data keys (of this VM's `vm_id`) the answer was read from: the host answers only while each is
    /// unchanged since this call (the same CAS, or still absent).
    #[serde(default)]
    pub shared_data: Vec<String>,
    /// The answer is not sent by the host after this time (milliseconds since the Unix epoch).
    pub expires_unix_ms: u64,
    /// The host hands the next matching request back to the filter this long after this call (default 1000,
    /// at most 60000), so the filter sees a request now and then (LRU touches, logs) and memoizes it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revalidate_ms: Option<u64>,
    /// A response header whose value the host sets to the whole seconds elapsed since `origin_unix_ms` on each
    /// answer (an `Age`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<MemoAge>,
    /// Counters (metric ids from `proxy_define_metric`) the filter incremented for this answer, with their
    /// deltas: the host increments them again on each answer it sends.
    #[serde(default)]
    pub counters: Vec<(u32, u64)>,
}

/// A header carrying the answer's age in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoAge {
    /// The header's name.
    pub header: String,
    /// When the age was 0 (milliseconds since the Unix epoch).
    pub origin_unix_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips_and_defaults_what_it_omits() {
        let spec = MemoSpec {
            headers: vec![":path".into(), "accept".into()],
            properties: vec!["weir.consumer".into()],
            shared_data: vec!["rc:dir:1".into()],
            expires_unix_ms: 1_700_000_000_000,
            revalidate_ms: Some(500),
            age: Some(MemoAge { header: "age".into(), origin_unix_ms: 1_699_999_999_000 }),
            counters: vec![(5, 1)],
        };
        let json = serde_json::to_string(&spec).expect("serialize");
        assert_eq!(serde_json::from_str::<MemoSpec>(&json).expect("parse"), spec);
        let minimal: MemoSpec = serde_json::from_str(r#"{"expires_unix_ms": 7}"#).expect("parse");
        assert_eq!(minimal, MemoSpec { expires_unix_ms: 7, ..MemoSpec::default() });
        assert!(serde_json::from_str::<MemoSpec>(r#"{"expires_unix_ms": 7, "header": []}"#).is_err(), "typo refused");
    }
}
