//! JSON responses, and the one place control-plane errors become HTTP statuses.

use crate::control::ControlError;
use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

/// A JSON response.
pub fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

/// `{"error": {"status", "code", "message"}}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({"error": {"status": status.as_u16(), "code": code, "message": message}}))
}

/// A control-plane error as HTTP: what is wrong in `message`, and for configuration problems every issue
/// with its JSON path, for filters that refused to start their own log lines.
pub fn control_error(e: &ControlError) -> Response<Full<Bytes>> {
    let (status, code) = match e {
        ControlError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ControlError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ControlError::Untrusted(_) => (StatusCode::FORBIDDEN, "untrusted"),
        ControlError::Config(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_configuration"),
        ControlError::Build(_) => (StatusCode::UNPROCESSABLE_ENTITY, "filter_refused"),
        ControlError::Module(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_module"),
        ControlError::Registry(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        ControlError::Swap(_) => (StatusCode::SERVICE_UNAVAILABLE, "swap_pending"),
    };
    let mut body = serde_json::json!({"status": status.as_u16(), "code": code, "message": e.to_string()});
    match e {
        ControlError::Config(crate::config::ConfigError::Invalid { issues, .. }) => {
            body["issues"] = issues
                .iter()
                .map(|i| serde_json::json!({"path": i.path, "message": i.message}))
                .collect::<Vec<_>>()
                .into();
        }
        ControlError::Build(b) if !b.filter_logs().is_empty() => {
            body["filter_logs"] = b.filter_logs().to_vec().into();
        }
        _ => {}
    }
    json(status, serde_json::json!({ "error": body }))
}
