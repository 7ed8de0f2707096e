//! A per-worker connection pool for one cluster: idle HTTP/1.1 connections per endpoint (most recently
//! used first), one shared HTTP/2 connection per endpoint, connects bounded by the connect timeout,
//! idle connections closed after the idle timeout.
//!
//! Why not hyper-util's pooled client: it is built for sharing across threads (a mutex-guarded map keyed by
//! scheme and authority, a checkout future racing a connect) and measured at about 15 µs of CPU per
//! proxied request here; a worker-owned pool that only pops and pushes a vector costs a fraction of that
//! (docs/benchmarks.md).

use super::breaker::{Limit, Slot};
use super::h1::{self, response::ResponseFields};
use super::received::Received;
use super::UpstreamBody;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why a request could not be sent or answered.
#[derive(Debug)]
pub enum SendError {
    /// The connection was not established within the connect timeout.
    ConnectTimeout,
    /// The connection (TCP or TLS) failed.
    Connect(String),
    /// The connection broke after the request was sent.
    Protocol(String),
    /// A circuit breaker refused (no connection could be opened or waited for).
    Overflow(super::breaker::Limit),
}

/// How connections to the cluster's endpoints are made.
pub struct Connector {
    /// TLS, when the cluster uses it.
    pub tls: Option<(tokio_rustls::TlsConnector, Option<ServerName<'static>>)>,
    /// Speak HTTP/2.
    pub http2: bool,
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// Idle HTTP/1.1 connections kept per endpoint.
    pub max_idle: usize,
    /// The cluster's shared state, whose breakers count connections (none: not counted, as for health checks).
    pub state: Option<Arc<super::health::ClusterState>>,
}

/// The pool of one endpoint.
pub struct EndpointPool {
    address: Arc<str>,
    /// Boxed: a connection moves between the pool and a response body once per request, as a pointer.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<h1::Conn>>>,
    shared_h2: Mutex<Option<http2::SendRequest<UpstreamBody>>>,
    sweeping: AtomicBool,
}

/// Where an HTTP/1.1 connection goes back to when its response ends cleanly.
pub struct Home {
    pool: Arc<EndpointPool>,
    connector: Arc<Connector>,
}

impl Home {
    /// Keeps `conn` idle for the next request (up to the pool's bound; beyond it, it closes).
    pub(super) fn put_back(self, conn: Box<h1::Conn>) {
        let Ok(mut idle) = self.pool.idle.lock() else { return };
        if idle.len() < self.connector.max_idle {
            idle.push(conn);
            drop(idle);
            if let Some(state) = &self.connector.state {
                state.breakers.notify_freed();
            }
        }
    }
}

impl EndpointPool {
    /// An empty pool for `address` (`host:port`).
    pub fn new(address: Arc<str>) -> Arc<EndpointPool> {
        Arc::new(EndpointPool {
            address,
            idle: Mutex::new(Vec::new()),
            shared_h2: Mutex::new(None),
            sweeping: AtomicBool::new(false),
        })
    }

    /// Closes this pool's oldest idle connection, if it has one (its place under `max_connections` frees).
    pub(crate) fn close_one_idle(&self) -> bool {
        let oldest = self.idle.lock().ok().and_then(|mut idle| (!idle.is_empty()).then(|| idle.remove(0)));
        oldest.is_some()
    }

    /// Idle HTTP/1.1 connections (for tests and metrics).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Closes idle connections older than the idle timeout, from a task on the worker that owns the pool
    /// (started with its first connection, ended when the pool is dropped).
    fn start_sweeper(self: &Arc<Self>, idle_timeout: Duration) {
        if self.sweeping.swap(true, Relaxed) {
            return;
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let period = idle_timeout.max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = pool.upgrade() else { return };
                let expired = match pool.idle.lock() {
                    Ok(mut idle) => {
                        let before = idle.len();
                        idle.retain(|c| c.idle_since.elapsed() < idle_timeout);
                        before - idle.len()
                    }
                    Err(_) => 0,
                };
                if expired > 0 {
                    tracing::trace!(endpoint = %pool.address, expired, "closed idle upstream connections");
                }
            }
        });
    }
}

/// A connection checked out for one request.
enum Checked {
    H1 { conn: Box<h1::Conn>, reused: bool },
    H2(http2::SendRequest<UpstreamBody>),
}

/// Sends `req` to the endpoint: on a pooled connection when one is idle, else on a new one. A request
/// that a reused connection could not take (closed by the peer while idle) is sent again on a new one.
/// An HTTP/1.1 connection goes back to the pool when the response body ends cleanly.
pub async fn send(
    pool: &Arc<EndpointPool>,
    connector: &Arc<Connector>,
    mut req: Request<UpstreamBody>,
    kept: ResponseFields,
) -> Result<Response<Received>, SendError> {
    for _ in 0..2 {
        match checkout(pool, connector).await? {
            Checked::H2(mut sender) => {
                return match sender.try_send_request(req).await {
                    Ok(resp) => Ok(resp.map(Received::H2)),
                    Err(mut e) => {
                        let _ = e.take_message();
                        Err(SendError::Protocol(error_chain(&e.into_error())))
                    }
                };
            }
            Checked::H1 { conn, reused } => {
                let home = Home { pool: pool.clone(), connector: connector.clone() };
                match h1::send(conn, req, Some(home), kept).await {
                    Ok(resp) => return Ok(resp.map(Received::H1)),
                    Err(h1::Failed { detail, request: Some(back) }) if reused => {
                        tracing::debug!(endpoint = %pool.address, error = %detail, "pooled connection was closed; retrying on a new one");
                        req = back;
                    }
                    Err(h1::Failed { detail, .. }) => return Err(SendError::Protocol(detail)),
                }
            }
        }
    }
    Err(SendError::Connect("no usable connection".into()))
}

async fn checkout(pool: &Arc<EndpointPool>, connector: &Arc<Connector>) -> Result<Checked, SendError> {
    if connector.http2 {
        let shared = pool.shared_h2.lock().ok().and_then(|g| g.as_ref().filter(|s| !s.is_closed()).cloned());
        if let Some(sender) = shared {
            return Ok(Checked::H2(sender));
        }
        let permit = match &connector.state {
            Some(state) => Some(
                state
                    .breakers
                    .connection()
                    .ok_or_else(|| SendError::Overflow(state.breakers.overflow(Limit::Connections)))?,
            ),
            None => None,
        };
        // Connecting is rare and its future is large (TLS state): boxed, so the per-request future stays small.
        let sender = Box::pin(connect_h2(&pool.address, connector, permit)).await?;
        if let Ok(mut slot) = pool.shared_h2.lock() {
            *slot = Some(sender.clone());
        }
        return Ok(Checked::H2(sender));
    }
    let mut waited: Option<(Slot, Instant)> = None;
    loop {
        if let Some(conn) = idle_conn(pool, connector).await {
            return Ok(Checked::H1 { conn, reused: true });
        }
        let Some(state) = &connector.state else { break };
        // Registered before looking, so a connection freed in between still wakes this request.
        let freed = state.breakers.freed().notified();
        let mut freed = std::pin::pin!(freed);
        freed.as_mut().enable();
        if let Some(permit) = state.breakers.connection() {
            return new_conn(pool, connector, Some(permit)).await;
        }
        let deadline = match &waited {
            Some((_, deadline)) => *deadline,
            None => {
                let slot = state.breakers.pending().map_err(SendError::Overflow)?;
                let deadline = Instant::now() + connector.connect_timeout;
                waited = Some((slot, deadline));
                deadline
            }
        };
        // Every place is taken: idle connections (of any worker) yield theirs to a waiting request.
        if state.reclaim_idle() {
            continue;
        }
        if tokio::time::timeout_at(deadline, freed).await.is_err() {
            return Err(SendError::Overflow(state.breakers.overflow(Limit::Connections)));
        }
    }
    new_conn(pool, connector, None).await
}

/// An idle HTTP/1.1 connection of this worker's pool, still open and not expired.
async fn idle_conn(pool: &Arc<EndpointPool>, connector: &Arc<Connector>) -> Option<Box<h1::Conn>> {
    loop {
        let mut conn = pool.idle.lock().ok().and_then(|mut v| v.pop())?;
        if conn.idle_since.elapsed() >= connector.idle_timeout {
            continue;
        }
        if std::future::poll_fn(|cx| Poll::Ready(conn.poll_still_open(cx))).await {
            return Some(conn);
        }
    }
}

/// A new HTTP/1.1 connection for one request.
async fn new_conn(
    pool: &Arc<EndpointPool>,
    connector: &Arc<Connector>,
    permit: Option<Slot>,
) -> Result<Checked, SendError> {
    // Boxed for the same reason: keeps every request's future small to move.
    let conn = Box::pin(connect_h1(&pool.address, connector, permit)).await?;
    pool.start_sweeper(connector.idle_timeout);
    Ok(Checked::H1 { conn, reused: false })
}

async fn connect_tcp(address: &str, connector: &Connector) -> Result<TcpStream, SendError> {
    let connect = async {
        let stream = match address.parse::<SocketAddr>() {
            Ok(addr) => TcpStream::connect(addr).await,
            Err(_) => TcpStream::connect(address).await,
        }
        .map_err(|e| SendError::Connect(format!("tcp connect error: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    };
    tokio::time::timeout(connector.connect_timeout, connect).await.map_err(|_| SendError::ConnectTimeout)?
}

async fn tls(
    address: &str,
    stream: TcpStream,
    tls: &tokio_rustls::TlsConnector,
    name: &Option<ServerName<'static>>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SendError> {
    let name = match name {
        Some(n) => n.clone(),
        None => {
            let host =
                address.rsplit_once(':').map_or(address, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
            ServerName::try_from(host.to_string())
                .map_err(|e| SendError::Connect(format!("\"{host}\" is not a valid TLS server name: {e}")))?
        }
    };
    tls.connect(name, stream).await.map_err(|e| SendError::Connect(format!("TLS handshake failed: {e}")))
}

async fn connect_h1(address: &str, connector: &Connector, permit: Option<Slot>) -> Result<Box<h1::Conn>, SendError> {
    let deadline = Instant::now() + connector.connect_timeout;
    let stream = connect_tcp(address, connector).await?;
    let stream = match &connector.tls {
        None => Stream::Plain(stream),
        Some((tc, name)) => {
            let handshake = tls(address, stream, tc, name);
            Stream::Tls(Box::new(
                tokio::time::timeout_at(deadline, handshake).await.map_err(|_| SendError::ConnectTimeout)??,
            ))
        }
    };
    Ok(Box::new(h1::Conn::new(stream, permit)))
}

async fn connect_h2(
    address: &str,
    connector: &Connector,
    permit: Option<Slot>,
) -> Result<http2::SendRequest<UpstreamBody>, SendError> {
    let deadline = Instant::now() + connector.connect_timeout;
    let stream = connect_tcp(address, connector).await?;
    let handshake = async {
        let builder = http2::Builder::new(TokioExecutor::new());
        match &connector.tls {
            None => {
                let (sender, conn) =
                    builder.handshake(TokioIo::new(stream)).await.map_err(|e| SendError::Connect(error_chain(&e)))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
                Ok(sender)
            }
            Some((tc, name)) => {
                let stream = tls(address, stream, tc, name).await?;
                if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(SendError::Connect("the endpoint did not agree to HTTP/2 (ALPN h2)".into()));
                }
                let (sender, conn) =
                    builder.handshake(TokioIo::new(stream)).await.map_err(|e| SendError::Connect(error_chain(&e)))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
                Ok(sender)
            }
        }
    };
    tokio::time::timeout_at(deadline, handshake).await.map_err(|_| SendError::ConnectTimeout)?
}

/// One active health check: a fresh connection to `address`, `GET path` with `host`, and the answer's status
/// within `timeout` (connect included). The connection is closed afterwards.
pub(crate) async fn probe(
    address: &str,
    connector: &Connector,
    path: &str,
    host: &str,
    timeout: Duration,
) -> Result<u16, String> {
    let check = async {
        let req = |uri: http::Uri| {
            Request::get(uri)
                .header(http::header::HOST, host)
                .header(http::header::USER_AGENT, "weir-health-check")
                .body(http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync())
                .map_err(|e| e.to_string())
        };
        if connector.http2 {
            let mut sender = connect_h2(address, connector, None).await.map_err(describe)?;
            let scheme = if connector.tls.is_some() { "https" } else { "http" };
            let uri =
                format!("{scheme}://{address}{path}").parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
            let resp = sender.send_request(req(uri)?).await.map_err(|e| error_chain(&e))?;
            Ok(resp.status().as_u16())
        } else {
            let conn = connect_h1(address, connector, None).await.map_err(describe)?;
            let uri = path.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
            let resp = h1::send(conn, req(uri)?, None, ResponseFields::All).await.map_err(|e| e.detail)?;
            Ok(resp.status().as_u16())
        }
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

fn describe(e: SendError) -> String {
    match e {
        SendError::ConnectTimeout => "connect timed out".into(),
        SendError::Connect(d) | SendError::Protocol(d) => d,
        SendError::Overflow(limit) => format!("circuit breaker {}", limit.as_str()),
    }
}

/// A connection to an endpoint, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
