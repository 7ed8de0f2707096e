//! What passes between the server and a provider module: the request as received, the context of the answer,
//! and the answer to write.

use serde_json::Value;

use super::{AwsCredentials, Behavior, Provider};

/// One request a mock received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query as sent (`/v1/messages`, `/openai/deployments/d/chat/completions?api-version=...`).
    pub path: String,
    /// Headers, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is empty or not JSON).
    pub body: Value,
    /// The body's bytes.
    pub raw: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// The value of query parameter `name` (not percent-decoded).
    pub fn query(&self, name: &str) -> Option<&str> {
        let query = self.path.split_once('?')?.1;
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// What a provider module answers: status, headers and the body as events (one element for a plain body),
/// written paced when `stream` is set.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body, event by event.
    pub events: Vec<Vec<u8>>,
    /// Whether this is a stream (no `content-length`, written piece by piece).
    pub stream: bool,
}

impl Reply {
    /// A plain JSON answer.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            events: vec![serde_json::to_vec(body).expect("json")],
            stream: false,
        }
    }

    /// A stream of `events` with `content_type`.
    pub fn stream(content_type: &str, events: Vec<Vec<u8>>) -> Reply {
        Reply { status: 200, headers: vec![("content-type".into(), content_type.into())], events, stream: true }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a provider module gets to build its answer.
pub struct Ctx<'a> {
    /// The request.
    pub req: &'a Received,
    /// The scripted behaviour for it.
    pub behavior: &'a Behavior,
    /// API keys accepted (empty: any).
    pub keys: &'a [String],
    /// SigV4 credentials (Bedrock).
    pub aws: Option<&'a AwsCredentials>,
    /// The provider played.
    pub provider: Provider,
    /// A number unique to this request within the mock, for ids.
    pub seq: u64,
}

impl Ctx<'_> {
    /// Whether `key` is accepted.
    pub fn key_ok(&self, key: Option<&str>) -> bool {
        self.keys.is_empty() || key.is_some_and(|k| self.keys.iter().any(|x| x == k))
    }
}
