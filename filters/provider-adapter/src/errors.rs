//! Errors in OpenAI's shape: `{"error":{"message","type","param","code"}}` with an HTTP status, for the
//! client's mistakes (400, 413), the provider's errors (mapped by each provider's decoder) and malformed
//! provider answers (502).

use serde_json::{json, Value};

/// An error answer for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// OpenAI's `type`.
    pub kind: String,
    /// The message.
    pub message: String,
    /// The request field at fault (`param`).
    pub param: Option<String>,
    /// `code`: a string or the upstream status.
    pub code: Value,
}

impl ApiError {
    /// A 400 about the request field at `path` (a JSON path like `messages[2].content`).
    pub fn invalid(path: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error".into(),
            message: format!("{path}: {}", message.into()),
            param: Some(path.into()),
            code: Value::Null,
        }
    }

    /// A 400 that names no field.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error".into(),
            message: message.into(),
            param: None,
            code: Value::Null,
        }
    }

    /// 413: the request body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError {
            status: 413,
            kind: "invalid_request_error".into(),
            message: format!("the request body is larger than {limit} bytes (max_request_bytes)"),
            param: None,
            code: json!("request_too_large"),
        }
    }

    /// 502: the provider's answer could not be read.
    pub fn bad_gateway(provider: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 502,
            kind: "bad_gateway".into(),
            message: format!("malformed answer from {provider}: {why}"),
            param: None,
            code: json!(502),
        }
    }

    /// An error of the gateway's own (`code` = `status`).
    pub fn upstream(status: u16, kind: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { status, kind: kind.into(), message: message.into(), param: None, code: json!(status) }
    }

    /// A provider's error: the client gets [`client_status`] of the provider's status, `code` is the
    /// provider's status itself (529 stays visible as the code while the client sees 503).
    pub fn provider(status: u16, kind: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: client_status(status),
            kind: kind.into(),
            message: message.into(),
            param: None,
            code: json!(status),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }

    /// The JSON body as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.body().to_string().into_bytes()
    }
}

/// The status the client gets for a provider's status: 529 (Anthropic "overloaded") becomes 503 so generic
/// clients retry; other 4xx and 5xx statuses are kept; anything else unexpected becomes 502.
pub fn client_status(upstream: u16) -> u16 {
    match upstream {
        529 => 503,
        400..=599 => upstream,
        _ => 502,
    }
}

/// OpenAI's error type for a status, used when the provider gives none.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// A provider error body that no decoder understood: keep the status, quote the body (at most 512 bytes).
pub fn generic(status: u16, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_string();
    let message = if text.is_empty() { format!("the provider answered {status}") } else { text };
    ApiError::provider(status, kind_for_status(status), message)
}
