//! One worker: an OS thread with its own current-thread tokio runtime, its own listener sockets and its
//! own pipeline (clusters, pools). It accepts, serves, and on shutdown stops accepting and drains.

use super::balance::{Balancer, Handoff, Open};
use super::h1;
use super::idle::{Activity, Sweeper, Tracked, Watched};
use super::rewind::Rewind;
use super::Shared;
use crate::io::Batched;
use crate::proxy::{ConnInfo, Pipeline, RequestBody, TlsFacts};
use crate::telemetry::metrics::ListenerMetrics;
use arc_swap::ArcSwap;
use http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};

/// A new pipeline for a worker, and who to tell once it serves.
pub struct Swap {
    /// The pipeline built for this worker from the new snapshot.
    pub pipeline: Arc<Pipeline>,
    /// Answered once the worker serves new requests with it (capacity 1: the worker never blocks).
    pub done: std::sync::mpsc::SyncSender<()>,
}

/// A listener as one worker serves it.
pub struct WorkerListener {
    /// Listener name.
    pub name: String,
    /// This worker's socket.
    pub socket: std::net::TcpListener,
    /// TLS, when the listener terminates it.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Idle timeout for connections.
    pub idle_timeout: Duration,
    /// Time to receive request headers (and to finish a TLS handshake).
    pub header_timeout: Duration,
    /// With more than one worker: the listener's balancer, and this worker's inbox of connections handed to it.
    pub balance: Option<(Arc<Balancer>, mpsc::UnboundedReceiver<Handoff>)>,
}

/// Open connections on this worker, with a way to wait until there are none.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    idle: Notify,
}

impl Connections {
    fn enter(self: &Arc<Self>) -> ConnGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        ConnGuard(self.clone())
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct ConnGuard(Arc<Connections>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Runs a worker until shutdown is signalled and its connections are drained (or the drain bound
/// passes). `started` is called once every listener accepts. Each request is served by the pipeline
/// current when it arrives; a [`Swap`] replaces it for later requests (hot swap).
pub fn run(
    id: usize,
    current: Arc<ArcSwap<Pipeline>>,
    mut swaps: mpsc::UnboundedReceiver<Swap>,
    listeners: Vec<WorkerListener>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        current.load().start_background();
        let connections = Arc::new(Connections::default());
        let sweeper = Arc::new(Sweeper::default());
        let shortest = listeners.iter().map(|l| l.idle_timeout).min().unwrap_or(Duration::from_secs(60));
        let sweeps = tokio::spawn(sweeper.clone().run(Sweeper::period(shortest), shutdown.clone()));
        let mut accept_loops = Vec::new();
        for l in listeners {
            let socket = tokio::net::TcpListener::from_std(l.socket)?;
            let metrics = shared.metrics.listener(&l.name, id);
            let (balancer, inbox) = l.balance.unzip();
            let ctx = Arc::new(ListenerCtx {
                worker: id,
                local: socket.local_addr()?,
                balancer,
                tls: l.tls,
                idle_timeout: l.idle_timeout,
                header_timeout: l.header_timeout,
                metrics,
                pipeline: current.clone(),
                connections: connections.clone(),
                sweeper: sweeper.clone(),
            });
            if let Some(inbox) = inbox {
                accept_loops.push(tokio::spawn(inbox_loop(inbox, ctx.clone())));
            }
            accept_loops.push(tokio::spawn(accept_loop(socket, ctx)));
        }
        shared.worker_started();
        while !*shutdown.borrow_and_update() {
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                swap = swaps.recv() => match swap {
                    Some(swap) => {
                        // Background work (ticks, queues) runs on this worker's runtime; the pipeline it
                        // replaces stops its own once the last stream that uses it ends.
                        swap.pipeline.start_background();
                        current.store(swap.pipeline);
                        let _ = swap.done.try_send(());
                    }
                    None => break,
                },
            }
        }
        for task in &accept_loops {
            task.abort();
        }
        tracing::debug!(worker = id, open = connections.open.load(Ordering::Acquire), "worker draining");
        if tokio::time::timeout(drain_timeout, connections.all_closed()).await.is_err() {
            tracing::warn!(
                worker = id,
                open = connections.open.load(Ordering::Acquire),
                "drain timeout reached; closing the remaining connections"
            );
        }
        sweeps.abort();
        Ok(())
    })
}

/// Connection ids for the `connection.id` property: unique in the process.
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

struct ListenerCtx {
    /// This worker.
    worker: usize,
    /// The listener's address.
    local: std::net::SocketAddr,
    /// Spreads the listener's connections over the workers (with more than one).
    balancer: Option<Arc<Balancer>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle_timeout: Duration,
    header_timeout: Duration,
    metrics: ListenerMetrics,
    pipeline: Arc<ArcSwap<Pipeline>>,
    connections: Arc<Connections>,
    /// Closes idle connections, and every connection at shutdown.
    sweeper: Arc<Sweeper>,
}

async fn accept_loop(listener: tokio::net::TcpListener, ctx: Arc<ListenerCtx>) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => {
                let _ = stream.set_nodelay(true);
                ctx.metrics.accepted.inc();
                let stream = match ctx.balancer.as_ref().map(|b| (b, b.place(ctx.worker))) {
                    Some((balancer, to)) if to != ctx.worker => match hand_off(balancer, to, stream, client) {
                        Some(given_back) => given_back,
                        None => {
                            ctx.metrics.handed_off.inc();
                            continue;
                        }
                    },
                    _ => stream,
                };
                let open = ctx.balancer.as_ref().map(|b| b.enter(ctx.worker));
                tokio::spawn(serve_connection(stream, client, ctx.clone(), open));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Hands a connection to worker `to`; None once it is there, else the connection, to serve here (that worker no
/// longer takes connections).
fn hand_off(balancer: &Arc<Balancer>, to: usize, stream: TcpStream, client: std::net::SocketAddr) -> Option<TcpStream> {
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(%client, error = %e, "a connection to hand to another worker failed");
            return None;
        }
    };
    match balancer.hand_off(to, stream, client) {
        Ok(()) => None,
        Err(stream) => TcpStream::from_std(stream).ok(),
    }
}

/// Serves the connections other workers hand to this one.
async fn inbox_loop(mut inbox: mpsc::UnboundedReceiver<Handoff>, ctx: Arc<ListenerCtx>) {
    while let Some(Handoff { stream, client, open }) = inbox.recv().await {
        match TcpStream::from_std(stream) {
            Ok(stream) => {
                tokio::spawn(serve_connection(stream, client, ctx.clone(), Some(open)));
            }
            Err(e) => tracing::warn!(%client, error = %e, "a connection handed from another worker failed"),
        }
    }
}

/// Serves one accepted connection; `_open` counts it on this worker for the listener's balancer.
async fn serve_connection(stream: TcpStream, client: std::net::SocketAddr, ctx: Arc<ListenerCtx>, _open: Option<Open>) {
    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let info = ConnInfo { client, tls: ctx.tls.is_some(), local: ctx.local, id, tls_facts: None };
    let _guard = ctx.connections.enter();
    ctx.metrics.open.inc();
    let activity = Activity::new();
    let tracked = Tracked::new(Batched::downstream(stream), activity.clone());
    // The worker's sweeper asks the connection to close when it is idle or the worker shuts down; the
    // connection then finishes the request it has and closes.
    let watched = ctx.sweeper.watch(activity, ctx.idle_timeout);
    match &ctx.tls {
        None => serve_http(tracked, info, &ctx, &watched, false).await,
        Some(acceptor) => match tokio::time::timeout(ctx.header_timeout, acceptor.accept(tracked)).await {
            Ok(Ok(tls)) => {
                let facts = Some(Arc::new(TlsFacts::of(tls.get_ref().1)));
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                serve_http(tls, ConnInfo { tls_facts: facts, ..info }, &ctx, &watched, h2).await
            }
            Ok(Err(e)) => tracing::debug!(client = %info.client, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(client = %info.client, "TLS handshake timed out"),
        },
    }
    ctx.metrics.open.dec();
}

/// Serves HTTP/1.1 with Weir's own server, HTTP/2 (ALPN `h2`, or the h2c preface on a plain connection) with
/// hyper's.
async fn serve_http<S>(io: S, info: ConnInfo, ctx: &ListenerCtx, watched: &Watched, alpn_h2: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if alpn_h2 {
        return serve_h2(io, info, ctx, watched).await;
    }
    let mut conn = h1::Conn::new(io);
    match h1::sniff(&mut conn, watched).await {
        None => {}
        Some(true) => {
            let (io, read) = conn.into_parts();
            serve_h2(Rewind::new(read, io), info, ctx, watched).await
        }
        Some(false) => {
            let settings = h1::Settings { pipeline: &ctx.pipeline, header_timeout: ctx.header_timeout };
            h1::serve(conn, &info, settings, watched).await
        }
    }
}

async fn serve_h2<S>(io: S, info: ConnInfo, ctx: &ListenerCtx, watched: &Watched)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let pipeline = ctx.pipeline.clone();
    let conn = info.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let pipeline = pipeline.load_full();
        let info = conn.clone();
        async move { Ok::<_, Infallible>(pipeline.handle(info, req.map(RequestBody::H2)).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new()).max_concurrent_streams(1024);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    let result = std::future::poll_fn(|cx| {
        if !closing && watched.poll_close(cx) {
            closing = true;
            conn.as_mut().graceful_shutdown();
        }
        std::future::Future::poll(conn.as_mut(), cx)
    })
    .await;
    if let Err(e) = result {
        tracing::debug!(client = %info.client, error = %e, "connection ended with an error");
    }
}
