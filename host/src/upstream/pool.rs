//! A per-worker connection pool for one cluster: idle HTTP/1.1 connections per endpoint (most recently
//! used first), one shared HTTP/2 connection per endpoint, connects bounded by the connect timeout,
//! idle connections closed after the idle timeout.
//!
//! Why not hyper-util's pooled client: it is built for sharing across threads (a mutex-guarded map keyed by
//! scheme and authority, a checkout future racing a connect) and measured at about 15 µs of CPU per
//! proxied request here; a worker-owned pool that only pops and pushes a vector costs a fraction of that
//! (docs/benchmarks.md).

use super::UpstreamBody;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
}

/// The pool of one endpoint.
pub struct EndpointPool {
    address: Arc<str>,
    idle: Mutex<Vec<IdleConn>>,
    shared_h2: Mutex<Option<http2::SendRequest<UpstreamBody>>>,
}

struct IdleConn {
    sender: http1::SendRequest<UpstreamBody>,
    state: Arc<ConnState>,
}

/// When the connection went idle (milliseconds since the pool's epoch), or `IN_USE`.
struct ConnState {
    idle_since: AtomicU64,
}

const IN_USE: u64 = u64::MAX;

/// A connection lent to one request until its response body ends.
pub struct Lease {
    conn: Option<LeasedConn>,
    reused: bool,
    reusable: bool,
}

enum LeasedConn {
    H1 {
        sender: http1::SendRequest<UpstreamBody>,
        state: Arc<ConnState>,
        pool: Arc<EndpointPool>,
        connector: Arc<Connector>,
    },
    H2(http2::SendRequest<UpstreamBody>),
}

fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl EndpointPool {
    /// An empty pool for `address` (`host:port`).
    pub fn new(address: Arc<str>) -> Arc<EndpointPool> {
        Arc::new(EndpointPool { address, idle: Mutex::new(Vec::new()), shared_h2: Mutex::new(None) })
    }

    /// Idle HTTP/1.1 connections (for tests and metrics).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
}

/// Sends `req` to the endpoint: on a pooled connection when one is idle, else on a new one. A request
/// that a reused connection could not take (closed by the peer while idle) is sent again on a new one.
pub async fn send(
    pool: &Arc<EndpointPool>,
    connector: &Arc<Connector>,
    mut req: Request<UpstreamBody>,
) -> Result<(Response<Incoming>, Lease), SendError> {
    for _ in 0..2 {
        let mut lease = checkout(pool, connector).await?;
        match lease.try_send(req).await {
            Ok(resp) => return Ok((resp, lease)),
            Err(Failed { detail, request: Some(back) }) if lease.reused => {
                tracing::debug!(endpoint = %pool.address, error = %detail, "pooled connection was closed; retrying on a new one");
                req = back;
            }
            Err(Failed { detail, .. }) => return Err(SendError::Protocol(detail)),
        }
    }
    Err(SendError::Connect("no usable connection".into()))
}

async fn checkout(pool: &Arc<EndpointPool>, connector: &Arc<Connector>) -> Result<Lease, SendError> {
    if connector.http2 {
        let shared = pool.shared_h2.lock().ok().and_then(|g| g.as_ref().filter(|s| !s.is_closed()).cloned());
        if let Some(sender) = shared {
            return Ok(Lease { conn: Some(LeasedConn::H2(sender)), reused: true, reusable: false });
        }
        // Connecting is rare and its future is large (TLS state): boxed, so the per-request future stays small.
        let sender = Box::pin(connect_h2(&pool.address, connector)).await?;
        if let Ok(mut slot) = pool.shared_h2.lock() {
            *slot = Some(sender.clone());
        }
        return Ok(Lease { conn: Some(LeasedConn::H2(sender)), reused: false, reusable: false });
    }
    loop {
        let popped = pool.idle.lock().ok().and_then(|mut v| v.pop());
        let Some(IdleConn { mut sender, state }) = popped else { break };
        let idle_for = now_ms().saturating_sub(state.idle_since.load(Relaxed));
        if sender.is_closed() || idle_for >= connector.idle_timeout.as_millis() as u64 {
            continue;
        }
        // The previous response may have ended a moment ago; the connection becomes ready at once.
        if sender.ready().await.is_err() {
            continue;
        }
        state.idle_since.store(IN_USE, Relaxed);
        return Ok(Lease {
            conn: Some(LeasedConn::H1 { sender, state, pool: pool.clone(), connector: connector.clone() }),
            reused: true,
            reusable: false,
        });
    }
    // Boxed for the same reason: keeps every request's future small to move.
    let (sender, state) = Box::pin(connect_h1(&pool.address, connector)).await?;
    Ok(Lease {
        conn: Some(LeasedConn::H1 { sender, state, pool: pool.clone(), connector: connector.clone() }),
        reused: false,
        reusable: false,
    })
}

/// A request that could not be sent, with the request when the connection gave it back unsent.
struct Failed {
    detail: String,
    request: Option<Request<UpstreamBody>>,
}

impl Lease {
    async fn try_send(&mut self, req: Request<UpstreamBody>) -> Result<Response<Incoming>, Failed> {
        let result = match self.conn.as_mut() {
            Some(LeasedConn::H1 { sender, .. }) => sender.try_send_request(req).await,
            Some(LeasedConn::H2(sender)) => sender.try_send_request(req).await,
            None => return Err(Failed { detail: "the lease holds no connection".into(), request: Some(req) }),
        };
        result.map_err(|mut e| {
            let request = e.take_message();
            Failed { detail: error_chain(&e.into_error()), request }
        })
    }

    /// The response body ended normally: the connection may serve another request.
    pub fn release(&mut self) {
        self.reusable = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(LeasedConn::H1 { sender, state, pool, connector }) = self.conn.take() else { return };
        if !self.reusable || sender.is_closed() {
            return;
        }
        state.idle_since.store(now_ms(), Relaxed);
        let mut idle = match pool.idle.lock() {
            Ok(idle) => idle,
            Err(_) => return,
        };
        if idle.len() < connector.max_idle {
            idle.push(IdleConn { sender, state });
        }
    }
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

async fn connect_h1(
    address: &str,
    connector: &Connector,
) -> Result<(http1::SendRequest<UpstreamBody>, Arc<ConnState>), SendError> {
    let state = Arc::new(ConnState { idle_since: AtomicU64::new(IN_USE) });
    let deadline = Instant::now() + connector.connect_timeout;
    let stream = connect_tcp(address, connector).await?;
    let handshake = async {
        let mut builder = http1::Builder::new();
        builder.preserve_header_case(false);
        let result = match &connector.tls {
            None => {
                let (sender, conn) =
                    builder.handshake(TokioIo::new(stream)).await.map_err(|e| SendError::Connect(error_chain(&e)))?;
                tokio::spawn(drive(conn, state.clone(), connector.idle_timeout));
                sender
            }
            Some((tc, name)) => {
                let stream = tls(address, stream, tc, name).await?;
                let (sender, conn) =
                    builder.handshake(TokioIo::new(stream)).await.map_err(|e| SendError::Connect(error_chain(&e)))?;
                tokio::spawn(drive(conn, state.clone(), connector.idle_timeout));
                sender
            }
        };
        Ok(result)
    };
    let sender = tokio::time::timeout_at(deadline, handshake).await.map_err(|_| SendError::ConnectTimeout)??;
    Ok((sender, state))
}

async fn connect_h2(address: &str, connector: &Connector) -> Result<http2::SendRequest<UpstreamBody>, SendError> {
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
                });
                Ok(sender)
            }
        }
    };
    tokio::time::timeout_at(deadline, handshake).await.map_err(|_| SendError::ConnectTimeout)?
}

/// Runs an HTTP/1.1 connection until it ends, or until it has sat idle in the pool for the idle timeout.
async fn drive<C: std::future::Future>(conn: C, state: Arc<ConnState>, idle_timeout: Duration) {
    tokio::pin!(conn);
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep(idle_timeout) => {
                let since = state.idle_since.load(Relaxed);
                if since != IN_USE && now_ms().saturating_sub(since) >= idle_timeout.as_millis() as u64 {
                    return; // dropping the connection closes it; the pooled sender then reports closed
                }
            }
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
