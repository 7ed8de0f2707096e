//! A scriptable failing upstream for the resilience tests: real HTTP/1.1 on 127.0.0.1 whose behaviour can be
//! changed while it runs.
//!
//! | behaviour | what a request gets |
//! |---|---|
//! | [`Mode::Ok`] | 200 `{"server": name, "n": <request number>}` |
//! | [`Mode::Status`] | that status |
//! | [`Mode::FailEvery`] | a 503 for every k-th request (the k-th, 2k-th, ...), 200 otherwise |
//! | [`Mode::Hang`] | nothing: the connection stays open, unanswered |
//! | [`Mode::Reset`] | the connection closed before any answer |
//! | [`Mode::Slow`] | 200 after a delay |
//! | [`Mode::DieMidStream`] | 200 with part of a chunked body, then the connection closed |
//!
//! `GET /healthz` answers with [`Flaky::set_health`]'s status (200 at first) whatever the mode, and is not
//! counted as a request. A closed port ([`crate::upstream::closed_port`]) stands for a server that refuses connections.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What requests get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200.
    Ok,
    /// This status.
    Status(u16),
    /// 503 for every k-th request, 200 for the others.
    FailEvery(usize),
    /// No answer at all.
    Hang,
    /// The connection closed without an answer.
    Reset,
    /// 200 after this many milliseconds.
    Slow(u64),
    /// Headers and a first chunk, then the connection dies.
    DieMidStream,
}

struct State {
    name: String,
    mode: Mutex<Mode>,
    health: AtomicU16,
    requests: AtomicUsize,
    checks: AtomicUsize,
    connections: AtomicUsize,
}

/// A running flaky upstream; stops when dropped.
pub struct Flaky {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Flaky {
    /// Starts one on 127.0.0.1 behaving as `mode`.
    pub async fn start(name: &str, mode: Mode) -> Flaky {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind flaky upstream");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            name: name.to_string(),
            mode: Mutex::new(mode),
            health: AtomicU16::new(200),
            requests: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                s.connections.fetch_add(1, SeqCst);
                let s = s.clone();
                // Kept in the set, so dropping the server (aborting this task) closes every connection too.
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { handle(s, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Flaky { addr, state, task }
    }

    /// Changes what requests get from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// The status `/healthz` answers.
    pub fn set_health(&self, status: u16) {
        self.state.health.store(status, SeqCst);
    }

    /// Requests received (health checks not counted).
    pub fn requests(&self) -> usize {
        self.state.requests.load(SeqCst)
    }

    /// Health checks received.
    pub fn checks(&self) -> usize {
        self.state.checks.load(SeqCst)
    }

    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(SeqCst)
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(status: u16, text: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

async fn handle(s: Arc<State>, req: http::Request<hyper::body::Incoming>) -> Result<Response<Body>, std::io::Error> {
    if req.uri().path() == "/healthz" {
        s.checks.fetch_add(1, SeqCst);
        return Ok(full(s.health.load(SeqCst), "health\n".into()));
    }
    let n = s.requests.fetch_add(1, SeqCst) + 1;
    let _ = req.into_body().collect().await;
    let mode = *s.mode.lock().unwrap_or_else(|e| e.into_inner());
    let ok = || full(200, format!("{{\"server\":\"{}\",\"n\":{n}}}", s.name));
    match mode {
        Mode::Ok => Ok(ok()),
        Mode::Status(code) => Ok(full(code, format!("{{\"server\":\"{}\",\"status\":{code}}}", s.name))),
        Mode::FailEvery(k) if k > 0 && n.is_multiple_of(k) => {
            Ok(full(503, format!("{{\"server\":\"{}\",\"failed\":{n}}}", s.name)))
        }
        Mode::FailEvery(_) => Ok(ok()),
        Mode::Hang => {
            std::future::pending::<()>().await;
            Ok(ok())
        }
        Mode::Reset => Err(std::io::Error::other("reset on purpose")),
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ok())
        }
        Mode::DieMidStream => {
            let frames = futures_stream(vec![
                Ok(Frame::data(Bytes::from_static(b"first part;"))),
                Err(std::io::Error::other("died mid-stream")),
            ]);
            Ok(Response::new(StreamBody::new(frames).boxed()))
        }
    }
}

/// A stream of frames, the first ready at once and the next after a short pause (so the first reaches the
/// client before the connection dies).
fn futures_stream(
    items: Vec<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    crate::upstream::ReceiverStream(rx)
}
