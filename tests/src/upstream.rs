//! Mock upstream servers: real HTTP/1.1 and h2c servers on 127.0.0.1 whose behaviour is chosen by the
//! request path.
//!
//! | path | behaviour |
//! |---|---|
//! | `/sse` | `text/event-stream`; one event per [`Upstream::release`] call, 3 events, then the end |
//! | `/slow/<ms>` | waits `<ms>` before answering |
//! | `/status/<code>` | answers with that status |
//! | `/stream-in` | reads the request body frame by frame, reporting each chunk ([`Upstream::chunks`]) |
//! | `/reset` | drops the connection without answering |
//! | `/trailers...` | the JSON echo below as a streamed body (no `content-length`), then trailers `x-up-trailer: up`, `x-replace: original`, `x-remove: gone` (declared in a `trailer` header, which an HTTP/1.1 server needs, as is `te: trailers` in the request) |
//! | anything else | 200 with a JSON echo of the request (`upstream`, `method`, `uri`, `version`, `headers`, `body`, `trailers`: the request trailers, an object like `headers`) |

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

type Body = BoxBody<Bytes, Infallible>;

struct State {
    name: String,
    requests: AtomicUsize,
    connections: AtomicUsize,
    sse_permits: Semaphore,
    chunks: Mutex<Vec<Bytes>>,
    chunk_seen: tokio::sync::Notify,
}

/// A running mock upstream; stops when dropped.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Starts an upstream that answers HTTP/1.1 and h2c (prior knowledge) on 127.0.0.1.
    pub async fn start(name: &str) -> Upstream {
        Self::start_with(name, None).await
    }

    /// Starts an upstream that answers over TLS (HTTP/1.1 and h2 by ALPN) with this certificate.
    pub async fn start_tls(name: &str, config: Arc<rustls::ServerConfig>) -> Upstream {
        Self::start_with(name, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_with(name: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            name: name.to_string(),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            sse_permits: Semaphore::new(0),
            chunks: Mutex::new(Vec::new()),
            chunk_seen: tokio::sync::Notify::new(),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { handle(s, req).await }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Upstream { addr, state, task }
    }

    /// `host:port` for a cluster endpoint.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Lets the `/sse` handler send one more event.
    pub fn release(&self) {
        self.state.sse_permits.add_permits(1);
    }

    /// Chunks `/stream-in` has read so far.
    pub fn chunks(&self) -> Vec<Bytes> {
        self.state.chunks.lock().expect("chunks").clone()
    }

    /// Waits until `/stream-in` has read at least `n` chunks.
    pub async fn wait_chunks(&self, n: usize) {
        loop {
            let seen = self.state.chunk_seen.notified();
            if self.chunks().len() >= n {
                return;
            }
            seen.await;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("response")
}

async fn handle(s: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let mut resp = if path == "/sse" {
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
        let s2 = s.clone();
        tokio::spawn(async move {
            for i in 1..=3 {
                let Ok(permit) = s2.sse_permits.acquire().await else { return };
                permit.forget();
                let event = format!("id: {i}\ndata: {{\"n\":{i}}}\n\n");
                if tx.send(Ok(Frame::data(Bytes::from(event)))).await.is_err() {
                    return;
                }
            }
        });
        let stream = futures_stream(rx);
        Response::builder()
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(StreamBody::new(stream).boxed())
            .expect("sse response")
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1000))).await;
        full(StatusCode::OK, "text/plain", "slow\n")
    } else if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        full(status, "text/plain", format!("status {code}\n"))
    } else if path == "/duplex" {
        // Each request chunk is sent back as it arrives, while the request is still coming.
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
        let mut body = req.into_body();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    if tx.send(Ok(Frame::data(data))).await.is_err() {
                        return;
                    }
                }
            }
        });
        Response::builder().body(StreamBody::new(futures_stream(rx)).boxed()).expect("duplex response")
    } else if path == "/reset" {
        return Err(std::io::Error::other("reset requested"));
    } else if path == "/stream-in" {
        let mut body = req.into_body();
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                n += 1;
                s.chunks.lock().expect("chunks").push(data);
                s.chunk_seen.notify_waiters();
            }
        }
        full(StatusCode::OK, "text/plain", format!("{n} chunks\n"))
    } else {
        let (parts, body) = req.into_parts();
        let collected = body.collect().await.ok();
        let trailers = collected.as_ref().and_then(|c| c.trailers()).map(json_headers).unwrap_or_default();
        let body = collected.map(|c| c.to_bytes()).unwrap_or_default();
        let echo = serde_json::json!({
            "upstream": s.name,
            "method": parts.method.as_str(),
            "uri": parts.uri.to_string(),
            "version": format!("{:?}", parts.version),
            "headers": json_headers(&parts.headers),
            "body": String::from_utf8_lossy(&body),
            "trailers": trailers,
        });
        let echo = serde_json::to_vec(&echo).expect("json");
        if path.starts_with("/trailers") {
            with_trailers(echo)
        } else {
            full(StatusCode::OK, "application/json", echo)
        }
    };
    resp.headers_mut().insert("x-upstream", s.name.parse().expect("name"));
    Ok(resp)
}

/// Headers as a JSON object, repeated values joined with `, `.
fn json_headers(headers: &http::HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    headers
        .keys()
        .map(|k| {
            let values: Vec<String> =
                headers.get_all(k).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
            (k.to_string(), values.join(", ").into())
        })
        .collect()
}

/// A 200 streaming `body`, then the trailers of `/trailers`.
fn with_trailers(body: Vec<u8>) -> Response<Body> {
    let mut trailers = http::HeaderMap::new();
    for (name, value) in [("x-up-trailer", "up"), ("x-replace", "original"), ("x-remove", "gone")] {
        trailers.insert(name, value.parse().expect("value"));
    }
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
    let _ = tx.try_send(Ok(Frame::data(Bytes::from(body))));
    let _ = tx.try_send(Ok(Frame::trailers(trailers)));
    Response::builder()
        .header("content-type", "application/json")
        .header("trailer", "x-up-trailer, x-replace, x-remove")
        .body(StreamBody::new(futures_stream(rx)).boxed())
        .expect("trailers response")
}

fn futures_stream<T>(rx: mpsc::Receiver<T>) -> impl futures_core::Stream<Item = T> {
    ReceiverStream(rx)
}

/// A channel's receiving end as a stream (for request and response bodies written chunk by chunk).
pub struct ReceiverStream<T>(pub mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// A `127.0.0.1:port` nothing listens on (bound, then released), for upstreams that refuse connections.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}
