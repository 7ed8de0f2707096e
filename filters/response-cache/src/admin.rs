//! The purge and stats API on `purge.path`, answered by the filter itself (nothing goes upstream), with
//! `Authorization: Bearer <purge.token>`:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET <path>` | `{"entries", "bytes", "max_entries", "max_bytes"}` |
//! | `POST <path>?key=<readable key>` | removes the entries of that exact readable key (`GET api.test/items?a=1`): `{"purged": n, ...}` |
//! | `POST <path>?prefix=<text>` | removes the entries whose readable key starts with it |

use serde_json::json;
use weir_sdk::http::HeaderSnapshot;
use weir_sdk::prelude::*;

use crate::key::query_param;
use crate::Shared;

/// Whether two byte strings are equal, in a time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: u16, code: &str, message: &str) -> Action {
    let body = json!({"error": {"code": code, "message": message}}).to_string();
    let mut headers = vec![("content-type", "application/json")];
    if status == 401 {
        headers.push(("www-authenticate", "Bearer realm=\"response-cache\""));
    }
    http::send_response_with_details(status, &headers, body.as_bytes(), &format!("response_cache_{code}"))
}

/// Answers a request to the purge path.
pub fn handle(shared: &Shared, token: &str, headers: &HeaderSnapshot, path: &str) -> Action {
    let given = headers.get("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    if !same(given.trim().as_bytes(), token.as_bytes()) {
        return refuse(401, "unauthorized", "a bearer token is required (purge.token)");
    }
    let store = shared.store();
    let rules = &shared.rules;
    let method = headers.get(":method").unwrap_or_default().to_ascii_uppercase();
    let result = match method.as_str() {
        "GET" => store.index().map(|index| (None, index)),
        "POST" | "DELETE" => {
            let (exact, prefix) = (query_param(path, "key"), query_param(path, "prefix"));
            match (exact, prefix) {
                (Some(key), None) => store.purge(|readable| readable == key).map(|(n, i)| (Some(n), i)),
                (None, Some(prefix)) => {
                    store.purge(|readable| readable.starts_with(&prefix)).map(|(n, i)| (Some(n), i))
                }
                _ => return refuse(400, "bad_request", "give exactly one of the query parameters key and prefix"),
            }
        }
        _ => return refuse(405, "method_not_allowed", "use GET (stats) or POST (purge)"),
    };
    match result {
        Ok((purged, index)) => {
            if let Some(n) = purged {
                shared.metrics.purged(n);
            }
            shared.metrics.size(index.records.len(), index.bytes());
            let mut body = json!({
                "entries": index.records.len(), "bytes": index.bytes(),
                "max_entries": rules.max_entries, "max_bytes": rules.max_bytes,
            });
            if let Some(n) = purged {
                body["purged"] = n.into();
            }
            http::send_json(200, &body)
        }
        Err(error) => {
            shared.failed("the purge API", &error);
            refuse(503, "store_unavailable", &format!("the cache store failed: {error}"))
        }
    }
}
