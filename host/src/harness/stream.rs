//! One request through the chain: the request phase, then (once it was forwarded) the response phase, then
//! the end of the stream. Each phase is the gateway's own future (chain runner, body chain); the harness polls
//! it when the test looks at the stream, so a stream a tick or a callout answer resumed goes on then.

use super::message::{header_map, pairs_headers, pairs_of, ClientResponse, Request, Response, UpstreamRequest};
use super::{Inner, ROUTE};
use crate::abi::stream::{Headers, RequestInfo};
use crate::error::ProxyError;
use crate::filter::{
    run_request_headers, run_response_headers, Attachment, BodyChain, BodyVerdict, ChainStreams, RequestVerdict,
    ResponseVerdict, WorkerFilters,
};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

type Phase<T> = Pin<Box<dyn Future<Output = (ChainStreams, T)>>>;

/// How the request phase ended.
enum RequestEnd {
    Forwarded(UpstreamRequest),
    Answered(ClientResponse),
}

enum State {
    Request(Phase<RequestEnd>),
    Forwarded(ChainStreams, UpstreamRequest),
    Response(Phase<ClientResponse>, UpstreamRequest),
    Answered(ChainStreams, Option<UpstreamRequest>, ClientResponse),
    Finished(Option<UpstreamRequest>, Option<ClientResponse>),
}

/// What each phase's future owns.
#[derive(Clone)]
struct Ctx {
    filters: Arc<WorkerFilters>,
    chain: Arc<Vec<Attachment>>,
    info: Arc<RequestInfo>,
}

/// A request going through the harness's chain.
///
/// It starts with [`FilterHarness::request`](super::FilterHarness::request), which runs the request phase as far
/// as the filters let it: the request is then forwarded ([`upstream_request`](Self::upstream_request)),
/// answered ([`client_response`](Self::client_response): a local response, or the gateway's error when a
/// filter failed), or paused ([`is_paused`](Self::is_paused): a filter waits for a callout answer, a tick,
/// another stream). Feed the upstream's answer with [`respond`](Self::respond). The stream ends (`on_log`,
/// `on_done`, `on_delete` for every filter, last first) with [`finish`](Self::finish) or when dropped.
pub struct Stream {
    inner: Rc<Inner>,
    ctx: Ctx,
    state: State,
    started: std::time::Instant,
}

impl Stream {
    pub(crate) fn start(inner: Rc<Inner>, request: Request) -> Stream {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(1);
        let info = Arc::new(RequestInfo {
            source: request.source,
            destination: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: false,
            protocol: "HTTP/1.1",
            time: std::time::SystemTime::now(),
            route: ROUTE.into(),
            cluster: Some(ROUTE.into()),
            connection_id: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
            started: std::time::Instant::now(),
            server_name: None,
            tls_version: None,
            live: Arc::default(),
        });
        let ctx = Ctx { filters: inner.filters.clone(), chain: Arc::new(inner.filters.chain(0)), info };
        let phase: Phase<RequestEnd> = Box::pin(request_phase(ctx.clone(), request));
        let mut stream = Stream { inner, ctx, state: State::Request(phase), started: std::time::Instant::now() };
        stream.settle();
        stream
    }

    /// Polls the phase under way, inside the harness's runtime and log capture.
    fn settle(&mut self) {
        let inner = self.inner.clone();
        let mut cx = Context::from_waker(Waker::noop());
        match &mut self.state {
            State::Request(phase) => {
                if let Poll::Ready((streams, end)) = inner.enter(|| phase.as_mut().poll(&mut cx)) {
                    self.state = match end {
                        RequestEnd::Forwarded(upstream) => State::Forwarded(streams, upstream),
                        RequestEnd::Answered(client) => State::Answered(streams, None, client),
                    };
                }
            }
            State::Response(phase, _) => {
                if let Poll::Ready((streams, client)) = inner.enter(|| phase.as_mut().poll(&mut cx)) {
                    let State::Response(_, upstream) = std::mem::replace(&mut self.state, State::Finished(None, None))
                    else {
                        unreachable!("matched above")
                    };
                    self.state = State::Answered(streams, Some(upstream), client);
                }
            }
            _ => {}
        }
        // Queue notifications the phase caused, delivered once the worker is free, as its background task does.
        inner.enter(|| inner.filters.deliver_queue_notifications());
    }

    /// Whether a filter holds the stream now (the request or the response phase is paused).
    pub fn is_paused(&mut self) -> bool {
        self.settle();
        matches!(self.state, State::Request(_) | State::Response(..))
    }

    /// The request as it went upstream, once the request phase let it go (`None` while paused, or when a
    /// filter answered or failed).
    pub fn upstream_request(&mut self) -> Option<&UpstreamRequest> {
        self.settle();
        match &self.state {
            State::Forwarded(_, upstream) | State::Response(_, upstream) => Some(upstream),
            State::Answered(_, upstream, _) | State::Finished(upstream, _) => upstream.as_ref(),
            State::Request(_) => None,
        }
    }

    /// The response as the client gets it, once there is one: a local response or the gateway's error from
    /// the request phase, or the upstream's response after [`respond`](Self::respond) went through the chain.
    pub fn client_response(&mut self) -> Option<&ClientResponse> {
        self.settle();
        match &self.state {
            State::Answered(_, _, client) => Some(client),
            State::Finished(_, client) => client.as_ref(),
            _ => None,
        }
    }

    /// Feeds the upstream's response: its headers, body chunks and trailers go through the response callbacks
    /// (last filter first); returns the response as the client gets it, or `None` while a filter holds it.
    /// Panics unless the request was forwarded (it is paused, or was answered already).
    pub fn respond(&mut self, response: Response) -> Option<&ClientResponse> {
        self.settle();
        let state = std::mem::replace(&mut self.state, State::Finished(None, None));
        let State::Forwarded(streams, upstream) = state else {
            let why = match &state {
                State::Request(_) => "the request phase is paused".to_string(),
                State::Answered(_, _, c) | State::Finished(_, Some(c)) => {
                    format!("the stream was answered already ({} {:?}: {})", c.status, c.origin, c.body_text())
                }
                _ => "the stream is over".to_string(),
            };
            self.state = state;
            panic!("respond: the request was not forwarded: {why}");
        };
        self.ctx.info.live.set_upstream(ROUTE.into());
        let phase: Phase<ClientResponse> = Box::pin(response_phase(self.ctx.clone(), streams, response));
        self.state = State::Response(phase, upstream);
        self.client_response()
    }

    /// Ends the stream: `on_log`, `on_done` and `on_delete` of every filter that saw it, last filter first (a
    /// stream dropped unfinished ends the same way). Returns how many filters' contexts ended so (a filter whose
    /// VM failed during the stream, or that never saw it, is not counted; 0 when called again). What the stream
    /// did stays readable.
    pub fn finish(&mut self) -> usize {
        self.settle();
        let state = std::mem::replace(&mut self.state, State::Finished(None, None));
        self.ctx.info.live.finish(self.started.elapsed());
        let (upstream, client, streams) = match state {
            State::Forwarded(streams, upstream) => (Some(upstream), None, Some(streams)),
            State::Answered(streams, upstream, client) => (upstream, Some(client), Some(streams)),
            State::Finished(upstream, client) => (upstream, client, None),
            State::Response(phase, upstream) => {
                self.inner.enter(|| drop(phase));
                (Some(upstream), None, None)
            }
            State::Request(phase) => {
                self.inner.enter(|| drop(phase));
                (None, None, None)
            }
        };
        let ended = match streams {
            Some(mut streams) => self.inner.enter(|| streams.finish()),
            None => 0,
        };
        self.state = State::Finished(upstream, client);
        ended
    }

    /// Whether [`finish`](Self::finish) ran.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(..))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.is_finished() {
            let _ = self.finish();
        }
    }
}

/// The response the client gets when filter `filter` failed.
fn failed(filter: &str, detail: String) -> ClientResponse {
    ClientResponse::error(&ProxyError::filter(ROUTE, filter, detail))
}

/// Request headers, body and trailers through the chain, as `Pipeline::handle` and `forward` run them.
async fn request_phase(ctx: Ctx, request: Request) -> (ChainStreams, RequestEnd) {
    let Ctx { filters, chain, info } = ctx;
    let mut streams = ChainStreams::default();
    let method = http::Method::from_bytes(request.method.as_bytes())
        .unwrap_or_else(|e| panic!("method {:?}: {e}", request.method));
    let view =
        Headers::request(request.authority.as_bytes(), &request.path, &method, false, header_map(&request.headers));
    let eos = request.body.is_empty() && request.trailers.is_empty();
    let answered = match run_request_headers(&filters, &Some(info.clone()), &chain, &mut streams, view, eos).await {
        RequestVerdict::Continue(view) => Ok(view),
        RequestVerdict::Respond { response, upto } => Err((response, upto)),
        RequestVerdict::Memoized { answer, upto } => Err((answer.to_local(), upto)),
        RequestVerdict::Fail { filter, detail } => return (streams, RequestEnd::Answered(failed(&filter, detail))),
    };
    let view = match answered {
        Ok(view) => view,
        Err((response, upto)) => {
            info.live.set_code_details(response.details.clone());
            let local = ClientResponse::local(&response);
            let client = through_response_headers(&filters, &chain, &mut streams, local, upto).await;
            return (streams, RequestEnd::Answered(client));
        }
    };
    let mut upstream = UpstreamRequest::from_view(&view);
    let body = BodyChain::new(&chain, &streams, true);
    let counted = |n: usize| info.live.add_request_body(n as u64);
    match through_body(body, request.body, &request.trailers, counted).await {
        Ok((chunks, trailers)) => {
            upstream.body = chunks.concat();
            upstream.chunks = chunks;
            upstream.trailers = trailers.as_ref().map(pairs_of).unwrap_or_default();
            (streams, RequestEnd::Forwarded(upstream))
        }
        Err((BodyVerdict::Respond(local), _)) => {
            info.live.set_code_details(local.details.clone());
            let upto = chain.len();
            let client = through_response_headers(&filters, &chain, &mut streams, ClientResponse::local(&local), upto);
            let client = client.await;
            (streams, RequestEnd::Answered(client))
        }
        Err((BodyVerdict::Fail { filter, detail, too_large: true }, _)) => {
            let error = ProxyError::BodyTooLarge { filter: filter.to_string(), detail };
            (streams, RequestEnd::Answered(ClientResponse::error(&error)))
        }
        Err((BodyVerdict::Fail { filter, detail, .. }, _)) => (streams, RequestEnd::Answered(failed(&filter, detail))),
        Err((_, _)) => unreachable!("through_body stops only on a local response or a failure"),
    }
}

/// A response the gateway makes (a filter's local response) through the response headers callbacks of
/// filters `0..upto`, last first, as `respond_through_chain` does.
async fn through_response_headers(
    filters: &WorkerFilters,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    client: ClientResponse,
    upto: usize,
) -> ClientResponse {
    let eos = client.body.is_empty();
    match run_response_headers(filters, chain, streams, client.head(), eos, upto).await {
        ResponseVerdict::Continue(view) => client.with_view(&view),
        ResponseVerdict::Respond(other) => ClientResponse::local(&other),
        ResponseVerdict::Fail { filter, detail } => failed(&filter, detail),
    }
}

/// Response headers, body and trailers through the chain, last filter first, as `forward` runs them.
async fn response_phase(ctx: Ctx, mut streams: ChainStreams, response: Response) -> (ChainStreams, ClientResponse) {
    let Ctx { filters, chain, info } = ctx;
    info.live.set_code_details("via_upstream");
    let eos = response.body.is_empty() && response.trailers.is_empty();
    let mut client = match run_response_headers(&filters, &chain, &mut streams, response.head(), eos, chain.len()).await
    {
        ResponseVerdict::Continue(view) => ClientResponse::upstream(&view),
        ResponseVerdict::Respond(local) => {
            info.live.set_code_details(local.details.clone());
            return (streams, ClientResponse::local(&local));
        }
        ResponseVerdict::Fail { filter, detail } => return (streams, failed(&filter, detail)),
    };
    let body = BodyChain::new(&chain, &streams, false);
    let (chunks, trailers) = match through_body(body, response.body, &response.trailers, |_| {}).await {
        Ok(done) => done,
        Err((verdict, sent)) => {
            client.reset = Some(match verdict {
                BodyVerdict::Respond(local) => {
                    format!("filter answered {} after the response had started", local.status)
                }
                BodyVerdict::Fail { filter, detail, .. } => format!("filter {filter} failed: {detail}"),
                _ => String::new(),
            });
            (sent, None)
        }
    };
    for chunk in &chunks {
        info.live.add_response_body(chunk.len() as u64);
    }
    client.body = chunks.concat();
    client.chunks = chunks;
    if let Some(trailers) = trailers {
        client.set_trailers(&trailers);
    }
    (streams, client)
}

/// Body chunks, then trailers, through a body chain, as `proxy::filtered::Filtered` feeds it: the last chunk
/// has `end_of_stream` unless trailers follow. The chunks and trailers that went on, or the verdict that stopped
/// the stream with what went on before it.
async fn through_body(
    chain: Option<BodyChain>,
    chunks: Vec<Vec<u8>>,
    trailers: &[(String, String)],
    counted: impl Fn(usize),
) -> Result<(Vec<Vec<u8>>, Option<Headers>), (BodyVerdict, Vec<Vec<u8>>)> {
    let trailers = (!trailers.is_empty()).then(|| pairs_headers(trailers));
    let Some(mut chain) = chain else {
        chunks.iter().for_each(|c| counted(c.len()));
        return Ok((chunks, trailers));
    };
    let mut out = Vec::new();
    let mut out_trailers = None;
    let take = |verdict: BodyVerdict, out: &mut Vec<Vec<u8>>, out_trailers: &mut Option<Headers>| match verdict {
        BodyVerdict::Data(data) => {
            if !data.is_empty() {
                out.push(data);
            }
            Ok(())
        }
        BodyVerdict::Trailers { data, trailers } => {
            if !data.is_empty() {
                out.push(data);
            }
            *out_trailers = Some(trailers);
            Ok(())
        }
        stop => Err(stop),
    };
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        counted(chunk.len());
        let eos = i + 1 == n && trailers.is_none();
        let verdict = chain.chunk(chunk, eos);
        if let Err(stop) = take(verdict, &mut out, &mut out_trailers) {
            return Err((stop, out));
        }
        if let Some(verdict) = std::future::poll_fn(|cx| chain.poll_trailers(cx)).await {
            if let Err(stop) = take(verdict, &mut out, &mut out_trailers) {
                return Err((stop, out));
            }
        }
    }
    if let Some(trailers) = trailers {
        chain.trailers(trailers);
        if let Some(verdict) = std::future::poll_fn(|cx| chain.poll_trailers(cx)).await {
            if let Err(stop) = take(verdict, &mut out, &mut out_trailers) {
                return Err((stop, out));
            }
        }
    }
    Ok((out, out_trailers))
}
