//! Errors a request can meet on its way through the gateway, and the one place that turns them into
//! HTTP responses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

/// Why the gateway answered a request itself with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No route matched.
    #[error("no route matches {method} {host}{path}")]
    NoRoute {
        /// Request method.
        method: String,
        /// Request host.
        host: String,
        /// Request path.
        path: String,
    },
    /// The request could not be turned into an upstream request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The upstream refused or dropped the connection.
    #[error("upstream {cluster} ({endpoint}) connection failed: {detail}")]
    UpstreamConnect {
        /// Cluster name.
        cluster: String,
        /// Endpoint address.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// The upstream did not connect or answer in time.
    #[error("upstream {cluster} ({endpoint}) did not {what} within {millis} ms")]
    UpstreamTimeout {
        /// Cluster name.
        cluster: String,
        /// Endpoint address.
        endpoint: String,
        /// "connect" or "respond".
        what: &'static str,
        /// The bound that was exceeded.
        millis: u128,
    },
    /// A filter held more request body than the limit.
    #[error("filter {filter}: {detail}")]
    BodyTooLarge {
        /// Filter name.
        filter: String,
        /// What happened.
        detail: String,
    },
    /// A filter failed and fails closed.
    #[error("filter {filter} on route {route} failed: {detail}")]
    FilterFailed {
        /// Route name.
        route: String,
        /// Filter name.
        filter: String,
        /// What happened.
        detail: String,
    },
    /// Every endpoint of the cluster is unhealthy or ejected (and the route has no fallback).
    #[error("no healthy endpoint in cluster {cluster}: every endpoint failed its health checks or is ejected")]
    NoHealthyUpstream {
        /// Cluster name.
        cluster: String,
    },
    /// A circuit breaker of the cluster is open (and the route has no fallback).
    #[error("cluster {cluster} is overloaded: its circuit breaker {limit} is reached")]
    Overloaded {
        /// Cluster name.
        cluster: String,
        /// The limit: `max_requests`, `max_pending_requests` or `max_connections`.
        limit: &'static str,
    },
    /// The upstream broke the protocol or reset the stream.
    #[error("upstream {cluster} ({endpoint}) failed: {detail}")]
    UpstreamProtocol {
        /// Cluster name.
        cluster: String,
        /// Endpoint address.
        endpoint: String,
        /// What failed.
        detail: String,
    },
}

impl ProxyError {
    /// A filter failed (trap, limit, or an unsupported request) and its policy is to fail closed.
    pub fn filter(route: &str, filter: &str, detail: String) -> ProxyError {
        ProxyError::FilterFailed { route: route.to_string(), filter: filter.to_string(), detail }
    }

    /// The HTTP status this error is answered with: the only mapping from errors to statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::UpstreamConnect { .. } | ProxyError::UpstreamProtocol { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::FilterFailed { .. } | ProxyError::NoHealthyUpstream { .. } | ProxyError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// A stable machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::NoRoute { .. } => "route_not_found",
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::UpstreamConnect { .. } => "upstream_connect_failed",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
            ProxyError::UpstreamProtocol { .. } => "upstream_failed",
            ProxyError::FilterFailed { .. } => "filter_failed",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::NoHealthyUpstream { .. } => "no_healthy_upstream",
            ProxyError::Overloaded { .. } => "circuit_open",
        }
    }

    /// The response: status, `content-type: application/json`, and
    /// `{"error": {"status", "code", "message", "request_id"}}`.
    /// An overloaded cluster's answer also names the limit in `x-weir-overloaded`.
    pub fn to_response(&self, request_id: &str) -> Response<Bytes> {
        let mut resp = json_error(self.status(), self.code(), &self.to_string(), request_id);
        if let ProxyError::Overloaded { limit, .. } = self {
            resp.headers_mut().insert("x-weir-overloaded", HeaderValue::from_static(limit));
        }
        resp
    }
}

/// A JSON error response in the gateway's one error shape.
pub fn json_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<Bytes> {
    let body = serde_json::json!({
        "error": { "status": status.as_u16(), "code": code, "message": message, "request_id": request_id }
    });
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    let mut resp = Response::new(Bytes::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status_and_code() {
        let cases = [
            (ProxyError::NoRoute { method: "GET".into(), host: "h".into(), path: "/".into() }, 404, "route_not_found"),
            (ProxyError::BadRequest("x".into()), 400, "bad_request"),
            (
                ProxyError::UpstreamConnect { cluster: "c".into(), endpoint: "e".into(), detail: "d".into() },
                502,
                "upstream_connect_failed",
            ),
            (
                ProxyError::UpstreamTimeout { cluster: "c".into(), endpoint: "e".into(), what: "respond", millis: 5 },
                504,
                "upstream_timeout",
            ),
            (
                ProxyError::UpstreamProtocol { cluster: "c".into(), endpoint: "e".into(), detail: "d".into() },
                502,
                "upstream_failed",
            ),
            (ProxyError::NoHealthyUpstream { cluster: "c".into() }, 503, "no_healthy_upstream"),
            (ProxyError::Overloaded { cluster: "c".into(), limit: "max_requests" }, 503, "circuit_open"),
        ];
        for (err, status, code) in cases {
            let resp = err.to_response("rid");
            assert_eq!(resp.status().as_u16(), status, "{err}");
            let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
            assert_eq!(body["error"]["code"], code);
            assert_eq!(body["error"]["request_id"], "rid");
            assert_eq!(body["error"]["message"], err.to_string());
            let overloaded = resp.headers().get("x-weir-overloaded").map(|v| v.to_str().unwrap_or(""));
            assert_eq!(overloaded, matches!(err, ProxyError::Overloaded { .. }).then_some("max_requests"), "{err}");
        }
    }
}
