//! The admin listener: health, readiness and metrics for anyone who can reach it (127.0.0.1 by
//! default), and the `/api/` endpoints behind the bearer token.
//!
//! | endpoint | auth | answers |
//! |---|---|---|
//! | `GET /healthz` | none | 200 while the process runs |
//! | `GET /readyz` | none | 200 when every worker accepts; 503 while starting or draining |
//! | `GET /metrics` | none | Prometheus text |
//! | `/api/v1/...` | bearer | the registry and the running configuration: see [`api`] and `docs/admin-api/openapi.json` |

pub mod api;
mod respond;
mod token;

pub use token::{token, TokenError, TOKEN_FILE};

use crate::control::Control;
use crate::server::Shared;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use respond::{error, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the admin API serves from.
#[derive(Clone)]
pub struct AdminState {
    /// Readiness and metrics.
    pub shared: Arc<Shared>,
    /// The bearer token.
    pub token: String,
    /// The registry and the running configuration.
    pub control: Arc<Control>,
    /// Bound data-plane addresses by listener name.
    pub listeners: BTreeMap<String, SocketAddr>,
}

/// Serves the admin API on its own thread until `shutdown` turns true. The gateway stops it after the
/// workers have drained, so `/readyz` answers 503 (draining) for the whole drain.
pub fn run(
    socket: std::net::TcpListener,
    state: AdminState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(socket)?;
        let state = Arc::new(state);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(&state, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(10))
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return Ok(());
                    }
                }
            }
        }
    })
}

/// Routes one admin request.
pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            if state.shared.ready() {
                json(StatusCode::OK, serde_json::json!({"status": "ready"}))
            } else {
                let status = if state.shared.draining() { "draining" } else { "starting" };
                json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": status}))
            }
        }
        (&Method::GET, "/metrics") => {
            let mut resp = Response::new(Full::new(Bytes::from(state.shared.metrics.render())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            resp
        }
        (_, p) if p.starts_with("/api/") => {
            if !authorized(&req, &state.token) {
                let mut resp = error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token; send 'Authorization: Bearer <token>' (the token is in the config, WEIR_ADMIN_TOKEN, or <data_dir>/admin-token)");
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"weir-admin\""));
                return resp;
            }
            api::handle(state, req).await
        }
        (m, p) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no admin endpoint {m} {p}; try /healthz, /readyz, /metrics"),
        ),
    }
}

fn authorized(req: &Request<Incoming>, expected: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|t| token::matches(t, expected))
}
