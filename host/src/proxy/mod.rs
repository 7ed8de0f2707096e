//! The per-request pipeline: route, request policy, upstream, response.
//!
//! ```text
//! request ─▶ route ─▶ request policy ─▶ [filter chain: request phases] ─▶ upstream
//!                                                                          │
//! client ◀── observed body ◀── [filter chain: response phases] ◀──────────┘
//! ```
//!
//! Each worker owns one [`Pipeline`]; a request is served start to end on the worker that accepted
//! its connection. The filter chain (proxy-wasm) runs between the request policy and the upstream,
//! and on the response before the body is handed back.

mod body;
mod filtered;
pub(crate) mod filters;
mod forward;
pub mod headers;
mod log;
mod paused;
mod retry;
#[cfg(test)]
mod sizes;

pub use body::{RequestBody, ResponseBody};

use crate::abi::stream::{LocalResponse, RequestInfo};
use crate::config;
use crate::error::ProxyError;
use crate::filter::{
    run_request_headers_from, run_response_headers, Attachment, BodyChain, ChainStreams, RequestStart, RequestVerdict,
    ResponseVerdict, WorkerFilters,
};
use crate::router::{Action, RequestView, Route, Router};
use crate::telemetry::metrics::{Metrics, RouteMetrics};
use crate::upstream::{self, TlsConfigs};
use body::{full, Observed};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use log::Completion;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What the pipeline knows about the downstream connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub client: SocketAddr,
    /// Whether the client connected over TLS.
    pub tls: bool,
    /// The listener's local address.
    pub local: SocketAddr,
    /// The connection's id (unique per worker: worker in the top bits).
    pub id: u64,
    /// What the TLS handshake settled (TLS connections only), for the `connection.*` properties.
    pub tls_facts: Option<Arc<TlsFacts>>,
}

/// What a downstream TLS handshake settled.
#[derive(Debug)]
pub struct TlsFacts {
    /// The SNI name the client sent, if any.
    pub server_name: Option<Arc<str>>,
    /// The protocol version: `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
}

impl TlsFacts {
    /// What a finished server handshake settled.
    pub fn of(connection: &rustls::ServerConnection) -> TlsFacts {
        TlsFacts {
            server_name: connection.server_name().map(Arc::from),
            version: match connection.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                _ => "TLS",
            },
        }
    }
}

/// The filter chain a request went through: the route it is attached to, its attachments, and the contexts
/// they opened (each ended when the stream ends).
struct Chained<'a> {
    route: &'a Route,
    chain: &'a [Attachment],
    streams: ChainStreams,
    /// The body that went through the first filters while a filter held the request headers.
    prelude: Option<Prelude>,
}

/// Request body that went through the body callbacks of the filters up to one that held the request headers
/// (`allow_on_headers_stop_iteration`), to go through the rest of the chain first.
struct Prelude {
    /// The request's body chain, its first stages done with what came so far.
    chain: crate::filter::BodyChain,
    /// What got through them.
    passed: Vec<u8>,
    /// The stage it goes on from.
    from: usize,
    /// The client's body has ended (with these trailers, if any).
    ended: bool,
    trailers: Option<http::HeaderMap>,
}

/// Where a request goes once its filters ran.
enum Routed<'a> {
    /// Where it was routed at first (no filter called `clear_route_cache`).
    Same,
    /// A filter called `clear_route_cache`, and the request as the filters left it matches a route that
    /// answers by itself, with this status, these headers and this body.
    Direct(http::StatusCode, &'a http::HeaderMap, &'a bytes::Bytes),
    /// ... or this route, which proxies to this cluster.
    Proxied(&'a Route, &'a upstream::Cluster),
    /// ... or no route that can serve it (the answer to send).
    Nowhere(ProxyError),
}

/// One worker's request pipeline.
pub struct Pipeline {
    worker: usize,
    router: Arc<Router>,
    /// For each route, the index of its cluster in `clusters`.
    route_cluster: Vec<Option<usize>>,
    route_metrics: Vec<RouteMetrics>,
    unrouted_metrics: RouteMetrics,
    clusters: Arc<Vec<Arc<upstream::Cluster>>>,
    access_log: bool,
    /// This worker's filter VMs, and each route's chain (by route index; empty: no filters).
    filters: Option<WorkerFilters>,
    chains: Vec<Vec<Attachment>>,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Builds a worker's pipeline: its own clusters and pools, metric handles resolved up front. Clusters
    /// whose definition is the same as in `previous` (the pipeline this one replaces) are kept, with their
    /// pooled connections.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        worker: usize,
        config: &config::Config,
        router: Arc<Router>,
        tls: &TlsConfigs,
        metrics: &Arc<Metrics>,
        states: &[Arc<upstream::health::ClusterState>],
        filters: Option<WorkerFilters>,
        previous: Option<&Pipeline>,
    ) -> Pipeline {
        let clusters: Vec<Arc<upstream::Cluster>> = config
            .clusters
            .iter()
            .zip(states)
            .map(|(c, state)| {
                let kept =
                    previous.and_then(|p| p.clusters.iter().find(|k| k.built_from(c) && Arc::ptr_eq(&k.state, state)));
                match kept {
                    Some(k) => k.clone(),
                    None => Arc::new(upstream::Cluster::new(c, tls, metrics.cluster(&c.name, worker), state.clone())),
                }
            })
            .collect();
        let route_cluster = router
            .routes()
            .iter()
            .map(|r| match &r.action {
                Action::Cluster(name) => clusters.iter().position(|c| &*c.name == name.as_str()),
                Action::Direct { .. } => None,
            })
            .collect();
        let route_metrics = router.routes().iter().map(|r| metrics.route(&r.name, worker)).collect();
        let clusters = Arc::new(clusters);
        if let Some(f) = &filters {
            f.set_clusters(clusters.clone());
        }
        let chains = match &filters {
            Some(f) => (0..router.routes().len()).map(|i| f.chain(i)).collect(),
            None => Vec::new(),
        };
        Pipeline {
            filters,
            chains,
            worker,
            route_cluster,
            route_metrics,
            unrouted_metrics: metrics.route("-", worker),
            clusters,
            router,
            access_log: config.logging.access_log,
            metrics: metrics.clone(),
        }
    }

    /// Starts the worker's background work for filters (ticks); call inside the worker's runtime.
    pub fn start_background(&self) {
        if let Some(f) = &self.filters {
            f.start_background();
        }
    }

    /// Serves one request. Never fails: every error becomes a JSON error response.
    pub async fn handle(&self, conn: ConnInfo, req: Request<RequestBody>) -> Response<ResponseBody> {
        let start = Instant::now();
        let request_id = headers::request_id(req.headers());
        let host = request_host(&req);
        let route = self.router.find(&RequestView {
            host: &host,
            path: req.uri().path(),
            method: req.method(),
            headers: req.headers(),
        });
        let metrics = route.map_or(&self.unrouted_metrics, |r| &self.route_metrics[r.index]).clone();
        let mut completion = Completion::new(
            start,
            req.method().clone(),
            req.uri().clone(),
            request_id.clone(),
            metrics,
            self.access_log,
            self.worker,
        );
        let Some(route) = route else {
            let err = ProxyError::NoRoute {
                method: req.method().to_string(),
                host: host.into_owned(),
                path: req.uri().path().to_string(),
            };
            return error_response(&err, completion);
        };
        completion.route = Some(route.name.clone());
        let chain = self.chains.get(route.index).map(Vec::as_slice).filter(|c| !c.is_empty());
        if let Some(first) = chain.and_then(<[Attachment]>::first).filter(|a| a.has_memoized()) {
            // No filter has seen this request, so none reads `response.code_details`: it is left unset.
            if let Some(memo) = early_memo(first, &req, route, conn.tls) {
                return answer(memo.status, memo.headers, memo.body, completion);
            }
        }
        match &route.action {
            Action::Direct { status, headers, body } => match (chain, &self.filters) {
                (Some(chain), Some(filters)) => {
                    // Inline: smaller than the proxying path's future, so it adds no space (sizes.rs).
                    let direct = (*status, headers, body);
                    self.direct_filtered(conn, req, route, chain, filters, direct, completion).await
                }
                _ => direct_response(*status, headers, body, completion),
            },
            Action::Cluster(_) => {
                let cluster = self.route_cluster[route.index].map(|i| &self.clusters[i]);
                match cluster {
                    Some(cluster) => self.proxy(conn, req, route, cluster, completion).await,
                    None => error_response(&ProxyError::BadRequest("route has no cluster".into()), completion),
                }
            }
        }
    }

    /// A direct-response route with filters: the request phase, then the route's response (or the one the
    /// request now matches: `clear_route_cache`) through the response callbacks.
    #[allow(clippy::too_many_arguments)]
    async fn direct_filtered(
        &self,
        conn: ConnInfo,
        req: Request<RequestBody>,
        route: &Route,
        chain: &[Attachment],
        filters: &WorkerFilters,
        (status, headers, body): (StatusCode, &http::HeaderMap, &Bytes),
        completion: Completion,
    ) -> Response<ResponseBody> {
        let (mut parts, request_body) = req.into_parts();
        let phase = self.request_phase(filters, &conn, &mut parts, route, chain, None, None, completion);
        let streams = match phase.await {
            Ok(ok) => ok,
            Err(answered) => return answered,
        };
        let (streams, mut completion, _) = streams;
        let mut head = (status, headers.clone(), body.clone());
        // clear_route_cache: the route the headers as the filters left them match serves the request.
        match self.route_again(&parts, &mut completion) {
            Routed::Same => {}
            Routed::Direct(status, headers, body) => head = (status, headers.clone(), body.clone()),
            Routed::Proxied(other, cluster) => {
                // The first route answers by itself, so the gateway's request policy has not
                // run yet: it runs now, for the route that proxies.
                if let Err(err) = self.policy(&conn, &mut parts, other, &completion) {
                    completion.filter_streams = Some(streams);
                    return error_response(&err, completion);
                }
                let chained = Chained { route, chain, streams, prelude: None };
                let forward =
                    Box::pin(self.forward(&conn, parts, request_body, other, cluster, Some(chained), completion, true));
                return forward.await;
            }
            Routed::Nowhere(err) => {
                completion.filter_streams = Some(streams);
                return error_response(&err, completion);
            }
        }
        completion.code_details("direct_response");
        self.respond_through_chain(route, chain, streams, head, chain.len(), completion).await
    }

    /// The gateway's own request policy, before filters: hop-by-hop headers out, `Host` (the route's
    /// `host_rewrite`, else the client's), `X-Forwarded-*`, `X-Request-Id`, `traceparent`.
    fn policy(
        &self,
        conn: &ConnInfo,
        parts: &mut http::request::Parts,
        route: &Route,
        completion: &Completion,
    ) -> Result<(), ProxyError> {
        let host = match &route.host_rewrite {
            Some(h) => h.clone(),
            None => match parts.headers.get(http::header::HOST) {
                Some(h) => h.clone(),
                None => match parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
                    Some(h) => h,
                    None => return Err(ProxyError::BadRequest("the request has no Host header or authority".into())),
                },
            },
        };
        headers::strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(http::header::HOST, host);
        headers::set_forwarded(&mut parts.headers, conn.client.ip(), conn.tls);
        parts.headers.insert(headers::X_REQUEST_ID.clone(), completion.request_id.clone());
        headers::propagate_traceparent(&mut parts.headers);
        Ok(())
    }

    async fn proxy<'a>(
        &'a self,
        conn: ConnInfo,
        req: Request<RequestBody>,
        route: &'a Route,
        mut cluster: &'a upstream::Cluster,
        mut completion: Completion,
    ) -> Response<ResponseBody> {
        let (mut parts, mut body) = req.into_parts();
        if let Err(err) = self.policy(&conn, &mut parts, route, &completion) {
            return error_response(&err, completion);
        }
        // The filter chain's request phase: after the gateway's own headers, before the route's rules.
        let chain = self.chains.get(route.index).map(Vec::as_slice).filter(|c| !c.is_empty());
        let mut chained = None;
        let mut upstream_route = route;
        if let (Some(chain), Some(filters)) = (chain, &self.filters) {
            let cluster_name = Some(cluster.name.clone());
            let phase =
                self.request_phase(filters, &conn, &mut parts, route, chain, cluster_name, Some(&mut body), completion);
            let (streams, c, prelude) = match phase.await {
                Ok(ok) => ok,
                Err(answered) => return answered,
            };
            completion = c;
            // clear_route_cache: the route the headers as the filters left them match serves the request.
            match self.route_again(&parts, &mut completion) {
                Routed::Same => {}
                Routed::Proxied(other, other_cluster) => {
                    if let Some(h) = &other.host_rewrite {
                        parts.headers.insert(http::header::HOST, h.clone());
                    }
                    (upstream_route, cluster) = (other, other_cluster);
                }
                Routed::Direct(status, headers, body) => {
                    let head = (status, headers.clone(), body.clone());
                    completion.code_details("direct_response");
                    let respond = self.respond_through_chain(route, chain, streams, head, chain.len(), completion);
                    return Box::pin(respond).await;
                }
                Routed::Nowhere(err) => {
                    completion.filter_streams = Some(streams);
                    return error_response(&err, completion);
                }
            }
            chained = Some(Chained { route, chain, streams, prelude });
        }
        self.forward(&conn, parts, body, upstream_route, cluster, chained, completion, true).await
    }
}

impl Pipeline {
    /// Runs the request headers through `chain` (after the gateway's own headers). On CONTINUE the request
    /// is changed in place and the contexts the filters opened come back; otherwise the answer to send. With the
    /// request's `body` (none: answered as if the headers ended the stream), a filter attached with
    /// `allow_on_headers_stop_iteration` that holds the headers gets the body meanwhile (the [`Prelude`]).
    #[allow(clippy::too_many_arguments)]
    async fn request_phase(
        &self,
        filters: &WorkerFilters,
        conn: &ConnInfo,
        parts: &mut http::request::Parts,
        route: &Route,
        chain: &[Attachment],
        cluster: Option<Arc<str>>,
        body: Option<&mut RequestBody>,
        mut completion: Completion,
    ) -> Result<(ChainStreams, Completion, Option<Prelude>), Response<ResponseBody>> {
        let authority = host_value(parts);
        let mut streams = ChainStreams::default();
        let view = filters::request_headers(parts, authority.as_ref().map_or(&[][..], HeaderValue::as_bytes), conn.tls);
        let info = request_info(conn, parts, route, cluster, completion.start);
        completion.attach(info.clone());
        let info = Some(info);
        let eos = body.as_ref().is_none_or(|b| b.is_end_stream());
        let start = run_request_headers_from(filters, &info, chain, &mut streams, view, eos, 0, body.is_some()).await;
        let (verdict, prelude) = match (start, body) {
            (RequestStart::Decided(verdict), _) => (verdict, None),
            (RequestStart::Paused(mut paused), Some(body)) => {
                let at = paused.at;
                let mut body_chain = BodyChain::paused(chain, &streams, true, at);
                let position = body_chain.as_ref().and_then(|c| c.position(at));
                let (Some(mut body_chain), Some(position)) = (body_chain.take(), position) else {
                    completion.filter_streams = Some(streams);
                    let detail = "paused request headers without a stream context".to_string();
                    return Err(error_response(&ProxyError::filter(&route.name, &chain[at].name, detail), completion));
                };
                body_chain.gate(position, true);
                let name = chain[at].name.clone();
                let driven = paused::drive(body, &mut body_chain, position, &mut paused.signal, &name).await;
                body_chain.gate(position, false);
                match driven {
                    paused::Driven::Stopped(crate::filter::BodyVerdict::Respond(response)) => {
                        (RequestVerdict::Respond { response, upto: at + 1 }, None)
                    }
                    paused::Driven::Stopped(crate::filter::BodyVerdict::Fail { filter, detail, too_large }) => {
                        completion.filter_streams = Some(streams);
                        let err = if too_large {
                            ProxyError::BodyTooLarge { filter: filter.to_string(), detail }
                        } else {
                            ProxyError::filter(&route.name, &filter, detail)
                        };
                        return Err(error_response(&err, completion));
                    }
                    paused::Driven::Stopped(_) => {
                        unreachable!("a paused stream stops only with an answer or a failure")
                    }
                    paused::Driven::Continued { mut passed, ended, trailers } => {
                        passed.extend(body_chain.release(position));
                        let verdict = match paused.request_outcome(&chain[at]) {
                            RequestVerdict::Continue(view) => {
                                let rest = run_request_headers_from(
                                    filters,
                                    &info,
                                    chain,
                                    &mut streams,
                                    view,
                                    false,
                                    at + 1,
                                    false,
                                );
                                match rest.await {
                                    RequestStart::Decided(verdict) => verdict,
                                    RequestStart::Paused(_) => unreachable!("no pause is handed back without a body"),
                                }
                            }
                            other => other,
                        };
                        let prelude = Prelude { chain: body_chain, passed, from: position + 1, ended, trailers };
                        (verdict, Some(prelude))
                    }
                }
            }
            (RequestStart::Paused(_), None) => unreachable!("a pause is handed back only with a body"),
        };
        match verdict {
            RequestVerdict::Continue(view) => {
                filters::apply_request(parts, view);
                Ok((streams, completion, prelude))
            }
            RequestVerdict::Respond { response, upto } => {
                Err(self.reply_through_chain(route, chain, streams, response, upto, completion).await)
            }
            RequestVerdict::Memoized { answer, upto } => {
                completion.code_details(answer.details.to_string());
                let head = (answer.status, answer.headers, answer.body);
                Err(self.respond_through_chain(route, chain, streams, head, upto, completion).await)
            }
            RequestVerdict::Fail { filter, detail } => {
                completion.filter_streams = Some(streams);
                Err(error_response(&ProxyError::filter(&route.name, &filter, detail), completion))
            }
        }
    }

    /// A filter answered in the request phase: its response goes through the response callbacks of the
    /// filters before it (and its own), as in Envoy.
    async fn reply_through_chain(
        &self,
        route: &Route,
        chain: &[Attachment],
        streams: ChainStreams,
        local: LocalResponse,
        upto: usize,
        completion: Completion,
    ) -> Response<ResponseBody> {
        completion.code_details(local.details.clone());
        self.respond_through_chain(route, chain, streams, filters::local_response(&local), upto, completion).await
    }

    /// A response the gateway makes (a filter's or a direct response) through the response callbacks of
    /// filters `0..upto`, last first.
    async fn respond_through_chain(
        &self,
        route: &Route,
        chain: &[Attachment],
        mut streams: ChainStreams,
        (mut status, mut headers, body): (StatusCode, http::HeaderMap, Bytes),
        upto: usize,
        mut completion: Completion,
    ) -> Response<ResponseBody> {
        let Some(filters) = &self.filters else { return direct_response(status, &headers, &body, completion) };
        if !streams.any_open(upto) {
            completion.filter_streams = Some(streams);
            return answer(status, headers, body, completion);
        }
        let view = filters::response_headers(status, std::mem::take(&mut headers));
        let verdict = run_response_headers(filters, chain, &mut streams, view, body.is_empty(), upto).await;
        completion.filter_streams = Some(streams);
        match verdict {
            ResponseVerdict::Continue(view) => filters::apply_response(&mut status, &mut headers, view),
            ResponseVerdict::Respond(other) => return local_reply(&other, completion),
            ResponseVerdict::Fail { filter, detail } => {
                return error_response(&ProxyError::filter(&route.name, &filter, detail), completion)
            }
        }
        answer(status, headers, body, completion)
    }
}

/// What properties tell filters about a request.
fn request_info(
    conn: &ConnInfo,
    parts: &http::request::Parts,
    route: &Route,
    cluster: Option<Arc<str>>,
    started: Instant,
) -> Arc<RequestInfo> {
    Arc::new(RequestInfo {
        source: conn.client,
        destination: conn.local,
        tls: conn.tls,
        protocol: match parts.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        },
        time: std::time::SystemTime::now(),
        route: route.name.clone(),
        cluster,
        connection_id: conn.id,
        started,
        server_name: conn.tls_facts.as_ref().and_then(|t| t.server_name.clone()),
        tls_version: conn.tls_facts.as_ref().map(|t| t.version),
        live: Arc::default(),
    })
}
impl Pipeline {
    /// When a filter called `clear_route_cache` during the request callbacks, chooses the route again from
    /// the request as the filters left it (`:authority`, `:path`, `:method`, headers). The filter chain that
    /// ran is not run again; the new route's upstream, rewrite and header rules apply, and the request is
    /// logged and counted under it.
    fn route_again(&self, parts: &http::request::Parts, completion: &mut Completion) -> Routed<'_> {
        let Some(info) = completion.info.clone() else { return Routed::Same };
        if !info.live.take_route_cache_cleared() {
            return Routed::Same;
        }
        let host = host_of(&parts.headers, &parts.uri);
        let view = RequestView { host: &host, path: parts.uri.path(), method: &parts.method, headers: &parts.headers };
        let Some(route) = self.router.find(&view) else {
            return Routed::Nowhere(ProxyError::NoRoute {
                method: parts.method.to_string(),
                host: host.into_owned(),
                path: parts.uri.path().to_string(),
            });
        };
        let cluster = self.route_cluster[route.index].map(|i| &self.clusters[i]);
        info.live.set_rerouted(route.name.clone(), cluster.map(|c| c.name.clone()));
        completion.route = Some(route.name.clone());
        completion.metrics = self.route_metrics[route.index].clone();
        match (&route.action, cluster) {
            (Action::Direct { status, headers, body }, _) => Routed::Direct(*status, headers, body),
            (Action::Cluster(_), Some(cluster)) => Routed::Proxied(route, cluster),
            (Action::Cluster(_), None) => Routed::Nowhere(ProxyError::BadRequest("route has no cluster".into())),
        }
    }
}

/// The Host header, or the authority of an HTTP/2 request.
fn host_value(parts: &http::request::Parts) -> Option<HeaderValue> {
    parts
        .headers
        .get(http::header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
}

/// The first filter's memoized answer to a request without a body, before the gateway's request policy (see
/// [`crate::filter::memo`]); never for a request whose `Connection` header names headers the policy would remove
/// on a proxied route.
fn early_memo(
    first: &Attachment,
    req: &Request<RequestBody>,
    route: &Route,
    tls: bool,
) -> Option<crate::filter::memo::MemoAnswer> {
    use http_body::Body as _;
    if !req.body().is_end_stream() {
        return None;
    }
    let proxied = matches!(route.action, Action::Cluster(_));
    if proxied && headers::connection_names_headers(req.headers()) {
        return None;
    }
    let host = req.headers().get(http::header::HOST).map(HeaderValue::as_bytes);
    let authority = match (&route.host_rewrite, proxied) {
        (Some(rewrite), true) => Some(rewrite.as_bytes()),
        _ => host.or_else(|| req.uri().authority().map(|a| a.as_str().as_bytes())),
    };
    let request = crate::abi::memo::ClientRequest {
        method: req.method(),
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        authority: authority.unwrap_or_default(),
        tls,
        headers: req.headers(),
    };
    first.early_answer(&request, &route.name)
}

/// A filter's local response, as is.
fn local_reply(local: &LocalResponse, completion: Completion) -> Response<ResponseBody> {
    completion.code_details(local.details.clone());
    let (status, headers, body) = filters::local_response(local);
    direct_response(status, &headers, &body, completion)
}

/// The host a request is for: the `Host` header, or the URI authority (HTTP/2), without the port,
/// lower case (copied only when it is not already).
fn request_host(req: &Request<RequestBody>) -> std::borrow::Cow<'_, str> {
    host_of(req.headers(), req.uri())
}

/// [`request_host`] from a request's headers and URI.
fn host_of<'a>(headers: &'a http::HeaderMap, uri: &'a Uri) -> std::borrow::Cow<'a, str> {
    let raw = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let without_port = match raw.rfind(':') {
        Some(i) if !raw.ends_with(']') && raw[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &raw[..i],
        _ => raw,
    };
    if without_port.bytes().any(|b| b.is_ascii_uppercase()) {
        without_port.to_ascii_lowercase().into()
    } else {
        without_port.into()
    }
}

fn error_response(err: &ProxyError, mut completion: Completion) -> Response<ResponseBody> {
    completion.code_details(err.code());
    let resp = err.to_response(completion.request_id.to_str().unwrap_or("-"));
    completion.status = resp.status().as_u16();
    let (mut parts, bytes) = resp.into_parts();
    parts.headers.insert(headers::X_REQUEST_ID.clone(), completion.request_id.clone());
    Response::from_parts(parts, Observed::new(full(bytes), completion))
}

fn direct_response(
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &Bytes,
    completion: Completion,
) -> Response<ResponseBody> {
    answer(status, headers.clone(), body.clone(), completion)
}

/// [`direct_response`] with the head and body moved in.
fn answer(
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
    mut completion: Completion,
) -> Response<ResponseBody> {
    completion.status = status.as_u16();
    let request_id = completion.request_id.clone();
    let mut resp = Response::new(Observed::new(full(body), completion));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp.headers_mut().insert(headers::X_REQUEST_ID.clone(), request_id);
    resp
}
