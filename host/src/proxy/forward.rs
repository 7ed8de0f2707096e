//! From a routed request (its filters done) to the upstream's response: the cluster's circuit breakers and
//! endpoint health, the route's header rules and rewrite, the tries (with the route's retry policy: a
//! replayable body, per-try timeouts, backoff with jitter, the retry budget), the route's fallback, and the
//! response through the chain's response callbacks.

use super::body::Observed;
use super::filtered::{BodyStop, Filtered, StopSlot};
use super::log::{Completion, Counted};
use super::paused::{self, Driven};
use super::retry::{self, TryEnd};
use super::{direct_response, error_response, filters, headers, local_reply, Chained, ConnInfo, Pipeline};
use crate::error::ProxyError;
use crate::filter::{
    run_response_headers, run_response_headers_streaming, Attachment, BodyChain, BodyVerdict, ChainStreams,
    ResponseStart, ResponseVerdict, WorkerFilters,
};
use crate::router::{Action, Route};
use crate::upstream::breaker::Limit;
use crate::upstream::health::{backoff, Outcome};
use crate::upstream::pool::SendError;
use crate::upstream::received::Received;
use crate::upstream::{self, balance::Pick, UpstreamBody};
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full};
use std::future::Future as _;
use std::task::Poll;

use super::{RequestBody, ResponseBody};

/// Why a cluster did not take a request.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// No endpoint is healthy and not ejected.
    NoEndpoint,
    /// A circuit breaker is open.
    Overflow(Limit),
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::NoEndpoint => "no_healthy_endpoint",
            Refusal::Overflow(_) => "circuit_open",
        }
    }

    fn error(self, cluster: &upstream::Cluster) -> ProxyError {
        let cluster = cluster.name.to_string();
        match self {
            Refusal::NoEndpoint => ProxyError::NoHealthyUpstream { cluster },
            Refusal::Overflow(limit) => ProxyError::Overloaded { cluster, limit: limit.as_str() },
        }
    }
}

/// The request body as the tries send it.
enum Outgoing {
    /// Streamed once (no retry policy, a method it does not cover, or too long to keep).
    Once(Option<UpstreamBody>),
    /// Kept whole (filters applied), sent again on each try.
    Replay(Bytes),
}

fn replay(bytes: &Bytes) -> UpstreamBody {
    Full::new(bytes.clone()).map_err(|never| match never {}).boxed_unsync()
}

/// `index`'s bit in a set of tried endpoints (clusters beyond 64 endpoints share bits: only a preference).
fn bit(index: usize) -> u64 {
    1 << (index % 64)
}

impl Pipeline {
    /// Sends the request (its filters done) to an endpoint of `cluster` with `route`'s header rules and
    /// rewrite, trying again as `route`'s retry policy says, and the response back through the chain's response
    /// callbacks. When the cluster cannot take it, the route's fallback serves it (`may_fall_back`: not for a
    /// fallback cluster itself).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn forward(
        &self,
        conn: &ConnInfo,
        mut parts: http::request::Parts,
        body: RequestBody,
        route: &Route,
        cluster: &upstream::Cluster,
        chained: Option<Chained<'_>>,
        mut completion: Completion,
        may_fall_back: bool,
    ) -> Response<ResponseBody> {
        // Admission: the cluster's request breaker, an open circuit (connections and the queue for them full),
        // and at least one endpoint in the balancer.
        let state = &cluster.state;
        let refusal = match state.breakers.request() {
            Err(limit) => Some(Refusal::Overflow(limit)),
            Ok(slot) => {
                completion.admitted = Some(slot);
                if state.breakers.circuit_open() {
                    Some(Refusal::Overflow(state.breakers.overflow(Limit::Pending)))
                } else if !state.any_available() {
                    Some(Refusal::NoEndpoint)
                } else {
                    None
                }
            }
        };
        if let Some(why) = refusal {
            completion.admitted = None;
            return Box::pin(self.refused(conn, parts, body, route, cluster, chained, completion, why, may_fall_back))
                .await;
        }
        let (chain_route, chain, streams, prelude) = match chained {
            Some(Chained { route, chain, streams, prelude }) => (route, Some(chain), Some(streams), prelude),
            None => (route, None, None, None),
        };
        let stop = StopSlot::default();
        // A request without a body (its headers ended the stream) gets no body callback: no chain to build.
        let body_chain = match (chain, &streams) {
            (Some(chain), Some(s)) if !body.is_end_stream() && prelude.is_none() => BodyChain::new(chain, s, true),
            _ => None,
        };
        for name in &route.headers_to_remove {
            parts.headers.remove(name);
        }
        for (name, value) in &route.headers_to_add {
            parts.headers.insert(name.clone(), value.clone());
        }
        let path_and_query = match route.rewrite_path(parts.uri.path()) {
            // No rewrite: the client's path and query are reused as they are (no copy).
            std::borrow::Cow::Borrowed(_) => parts.uri.path_and_query().cloned(),
            std::borrow::Cow::Owned(path) => match parts.uri.query() {
                Some(q) => PathAndQuery::try_from(format!("{path}?{q}")).ok(),
                None => PathAndQuery::try_from(path).ok(),
            },
        };
        let Some(path_and_query) = path_and_query else {
            completion.filter_streams = streams;
            return error_response(&ProxyError::BadRequest("the rewritten path is not a valid URI".into()), completion);
        };
        // Nothing reads the upstream's fields on the way to an HTTP/1.x client of a route without filters: they
        // are kept as the lines written to it (no map built).
        let kept = match parts.version {
            http::Version::HTTP_10 | http::Version::HTTP_11 if chain.is_none() => upstream::ResponseFields::Encoded,
            _ => upstream::ResponseFields::Proxied,
        };
        parts.version = if cluster.http2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
        // The client's declared length (none for a chunked body, or one partly read already), before filters may
        // change it.
        let declared = body.size_hint().upper().filter(|_| prelude.is_none());
        let streamed: UpstreamBody = match (&completion.info, prelude) {
            (Some(info), Some(p)) => {
                let counted = Counted::new(body, info.live.clone());
                Filtered::with_prelude(counted, p.chain, stop.clone(), p.passed, p.from, p.ended, p.trailers)
                    .boxed_unsync()
            }
            // Filters read the request body's size (`request.size`): its bytes are counted as they pass.
            (Some(info), None) => {
                Filtered::new(Counted::new(body, info.live.clone()), body_chain, stop.clone()).boxed_unsync()
            }
            (None, _) => Filtered::passthrough(body).boxed_unsync(),
        };
        let policy = route.retry_policy.as_ref().filter(|p| p.all_methods || retry::idempotent(&parts.method));
        let mut outgoing = match policy {
            // A body to send again must be kept: one whose length is known and within the bound is read whole
            // first (through the filters' body callbacks, once); a longer or unknown-length body streams, untried.
            Some(p) if declared.is_some_and(|n| n <= p.max_body_bytes as u64) => match streamed.collect().await {
                Ok(collected) => Outgoing::Replay(collected.to_bytes()),
                Err(e) => {
                    let stopped = stop.lock().unwrap_or_else(|e| e.into_inner()).take();
                    return match stopped {
                        Some(why) => Box::pin(self.body_stopped(why, chain_route, chain, streams, completion)).await,
                        None => {
                            completion.filter_streams = streams;
                            let err = ProxyError::BadRequest(format!("reading the request body failed: {e}"));
                            error_response(&err, completion)
                        }
                    };
                }
            },
            _ => Outgoing::Once(Some(streamed)),
        };

        let total = route.timeout.unwrap_or(cluster.request_timeout);
        // One clock read for the first try: its start is the deadline's base.
        let started = tokio::time::Instant::now();
        let deadline = started + total;
        let mut tried = 0u64;
        let mut first = true;
        let mut retries = 0u32;
        let mut resp = loop {
            let pick = Pick { client_ip: conn.client.ip(), headers: &parts.headers };
            let fresh = |i: usize| state.available(i) && tried & bit(i) == 0;
            let chosen = cluster
                .balancer
                .pick_usable(&pick, &fresh)
                .or_else(|| cluster.balancer.pick_usable(&pick, &|i| state.available(i)));
            let Some(in_flight) = chosen else {
                // Every endpoint left the balancer between tries.
                completion.filter_streams = streams;
                return error_response(&Refusal::NoEndpoint.error(cluster), completion);
            };
            let index = in_flight.index();
            let endpoint = &cluster.endpoints[index];
            completion.upstream = Some(endpoint.address.clone());
            completion.in_flight = Some(in_flight);
            if let Some(info) = &completion.info {
                info.live.set_upstream(endpoint.address.clone());
            }
            // HTTP/1.1 upstreams get the origin form (`/path?query`); HTTP/2 needs scheme and authority.
            let uri = if cluster.http2 {
                Uri::builder()
                    .scheme(cluster.scheme.clone())
                    .authority(endpoint.authority.clone())
                    .path_and_query(path_and_query.clone())
                    .build()
                    .unwrap_or_else(|_| Uri::from(path_and_query.clone()))
            } else {
                Uri::from(path_and_query.clone())
            };
            let may_retry = policy.filter(|p| retries < p.num_retries && matches!(outgoing, Outgoing::Replay(_)));
            let body = match &mut outgoing {
                Outgoing::Once(body) => body.take().unwrap_or_else(|| replay(&Bytes::new())),
                Outgoing::Replay(bytes) => replay(bytes),
            };
            let mut req = Request::new(body);
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = uri;
            *req.version_mut() = parts.version;
            *req.headers_mut() =
                if may_retry.is_some() { parts.headers.clone() } else { std::mem::take(&mut parts.headers) };

            let now = if std::mem::take(&mut first) { started } else { tokio::time::Instant::now() };
            let left = deadline.saturating_duration_since(now);
            // The bound this try waits for, and the one an error names (the route's or cluster's whole timeout,
            // or the retry policy's per-try timeout when that is shorter).
            let (try_timeout, bound) = match policy.and_then(|p| p.per_try_timeout) {
                Some(t) if t < left => (t, t),
                _ => (left, total),
            };
            // The exchange's future is pinned where it is made (no `Timeout` wrapper to move it into).
            let mut exchange = std::pin::pin!(cluster.send(index, req, kept));
            let mut expiry = std::pin::pin!(tokio::time::sleep_until(now + try_timeout));
            let result = std::future::poll_fn(|cx| match exchange.as_mut().poll(cx) {
                Poll::Ready(sent) => Poll::Ready(Ok(sent)),
                Poll::Pending => expiry.as_mut().poll(cx).map(Err),
            })
            .await;
            let end = match &result {
                Ok(Ok(r)) => TryEnd::Answered(r.status().as_u16()),
                Ok(Err(SendError::Connect(_) | SendError::ConnectTimeout)) => TryEnd::ConnectFailure,
                Ok(Err(SendError::Protocol(_))) => TryEnd::Reset,
                Ok(Err(SendError::Overflow(_))) => TryEnd::Answered(503),
                Err(_) => TryEnd::Timeout,
            };
            match (&result, end) {
                (Ok(Err(SendError::Overflow(_))), _) => {}
                // A filter's body callback ended the request (answered it, failed, or held too much): the try's
                // error is the gateway's own doing, not the endpoint's, so outlier detection does not count it.
                (_, TryEnd::ConnectFailure | TryEnd::Reset | TryEnd::Timeout) if !stop_is_empty(&stop) => {}
                (_, TryEnd::Answered(status)) => {
                    state.record(index, if status >= 500 { Outcome::ServerError } else { Outcome::Answered })
                }
                _ => state.record(index, Outcome::ConnectFailure),
            }
            let again = match may_retry {
                // A try that a filter's body callback stopped is never repeated.
                Some(p) if !matches!(result, Ok(Err(SendError::Overflow(_)))) && stop_is_empty(&stop) => {
                    retry::reason(p, end).map(|why| (p, why))
                }
                _ => None,
            };
            if let Some((p, why)) = again {
                let wait = backoff(retries + 1, p.base_interval, p.max_interval);
                let budget = state.breakers.retry(p.budget_percent, p.min_retry_concurrency);
                if let (Some(slot), true) = (budget, tokio::time::Instant::now() + wait < deadline) {
                    state.breakers.count_retry(why);
                    tracing::debug!(request_id = completion.request_id.to_str().unwrap_or("-"), route = %route.name, endpoint = %endpoint.address, reason = why, retry = retries + 1, "retrying");
                    drop(result); // the answer is dropped unread: its connection closes
                    tried |= bit(index);
                    retries += 1;
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    completion.retry_slot = Some(slot);
                    continue;
                }
            }
            completion.retry_slot = None;
            match result {
                Ok(Ok(resp)) => break resp,
                Ok(Err(e)) => {
                    // A filter stopped the request body: answer as it asked.
                    let stopped = stop.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(why) = stopped {
                        return Box::pin(self.body_stopped(why, chain_route, chain, streams, completion)).await;
                    }
                    let err = classify(e, cluster, &endpoint.address);
                    match &err {
                        ProxyError::UpstreamTimeout { .. } => cluster.metrics.timeouts.inc(),
                        ProxyError::UpstreamConnect { .. } => cluster.metrics.connect_errors.inc(),
                        ProxyError::Overloaded { .. } => 0,
                        _ => cluster.metrics.other_errors.inc(),
                    };
                    tracing::warn!(request_id = completion.request_id.to_str().unwrap_or("-"), route = %route.name, error = %err, retries, "upstream request failed");
                    completion.filter_streams = streams;
                    return error_response(&err, completion);
                }
                Err(_) => {
                    cluster.metrics.timeouts.inc();
                    let err = ProxyError::UpstreamTimeout {
                        cluster: cluster.name.to_string(),
                        endpoint: endpoint.address.to_string(),
                        what: "respond",
                        millis: bound.as_millis(),
                    };
                    tracing::warn!(request_id = completion.request_id.to_str().unwrap_or("-"), route = %route.name, error = %err, retries, "upstream request timed out");
                    completion.filter_streams = streams;
                    return error_response(&err, completion);
                }
            }
        };
        headers::strip_hop_by_hop(resp.headers_mut());
        resp.headers_mut().insert(headers::X_REQUEST_ID.clone(), completion.request_id.clone());
        completion.code_details("via_upstream");
        if let (Some(chain), Some(filters), Some(s)) = (chain, &self.filters, streams) {
            // Boxed: inline, it would add ~470 bytes to every proxied request's future (sizes.rs).
            let respond = Box::pin(self.respond_filtered(resp, chain_route, chain, filters, s, completion));
            return respond.await;
        }
        completion.status = resp.status().as_u16();
        let encoded = resp.body_mut().take_encoded();
        resp.map(|b| Observed::new(Either::Right(Filtered::passthrough(b)), completion).with_encoded(encoded))
    }

    /// The upstream's response through the chain's response callbacks (headers now, body as it streams).
    async fn respond_filtered(
        &self,
        mut resp: Response<Received>,
        chain_route: &Route,
        chain: &[Attachment],
        filters: &WorkerFilters,
        mut s: ChainStreams,
        mut completion: Completion,
    ) -> Response<ResponseBody> {
        let view = filters::response_headers(resp.status(), std::mem::take(resp.headers_mut()));
        let eos = resp.body().is_end_stream();
        let start = if eos {
            ResponseStart::Decided(run_response_headers(filters, chain, &mut s, view, true, chain.len()).await)
        } else {
            run_response_headers_streaming(filters, chain, &mut s, view, chain.len()).await
        };
        let stop = StopSlot::default();
        let (verdict, body) = match start {
            ResponseStart::Decided(verdict) => (verdict, None),
            ResponseStart::Paused(mut paused) => {
                // The paused filter's body callbacks go on while its headers wait (Envoy's StopIteration).
                let mut body_chain = BodyChain::paused(chain, &s, false, paused.at);
                let at = paused.at;
                let position = body_chain.as_ref().and_then(|c| c.position(at));
                let (Some(mut body_chain), Some(position)) = (body_chain.take(), position) else {
                    completion.filter_streams = Some(s);
                    let detail = "paused response headers without a stream context".to_string();
                    return error_response(&ProxyError::filter(&chain_route.name, &chain[at].name, detail), completion);
                };
                body_chain.gate(position, true);
                let (head, mut upstream_body) = resp.into_parts();
                let name = chain[at].name.clone();
                let driven =
                    paused::drive(&mut upstream_body, &mut body_chain, position, &mut paused.signal, &name).await;
                body_chain.gate(position, false);
                resp = Response::from_parts(head, upstream_body);
                match driven {
                    Driven::Stopped(BodyVerdict::Respond(local)) => {
                        completion.filter_streams = Some(s);
                        return local_reply(&local, completion);
                    }
                    Driven::Stopped(BodyVerdict::Fail { filter, detail, .. }) => {
                        completion.filter_streams = Some(s);
                        return error_response(&ProxyError::filter(&chain_route.name, &filter, detail), completion);
                    }
                    Driven::Stopped(_) => unreachable_verdict(),
                    Driven::Continued { mut passed, ended, trailers } => {
                        passed.extend(body_chain.release(position));
                        let verdict = match paused.outcome(&chain[at]) {
                            ResponseVerdict::Continue(view) => {
                                Box::pin(run_response_headers(filters, chain, &mut s, view, false, at)).await
                            }
                            other => other,
                        };
                        (verdict, Some((body_chain, passed, position + 1, ended, trailers)))
                    }
                }
            }
        };
        match verdict {
            ResponseVerdict::Continue(view) => {
                let (mut head, body) = resp.into_parts();
                filters::apply_response(&mut head.status, &mut head.headers, view);
                resp = Response::from_parts(head, body);
            }
            ResponseVerdict::Respond(local) => {
                completion.filter_streams = Some(s); // the upstream body is dropped unread: its connection closes
                return local_reply(&local, completion);
            }
            ResponseVerdict::Fail { filter, detail } => {
                completion.filter_streams = Some(s);
                return error_response(&ProxyError::filter(&chain_route.name, &filter, detail), completion);
            }
        }
        completion.status = resp.status().as_u16();
        if let Some((body_chain, passed, from, ended, trailers)) = body {
            completion.filter_streams = Some(s);
            return resp.map(|b| {
                let filtered = Filtered::with_prelude(b, body_chain, stop, passed, from, ended, trailers);
                Observed::new(Either::Right(filtered), completion)
            });
        }
        let response_chain = BodyChain::new(chain, &s, false);
        completion.filter_streams = Some(s);
        resp.map(|b| Observed::new(Either::Right(Filtered::new(b, response_chain, stop)), completion))
    }

    /// The cluster did not take the request: the route's fallback serves it (a response, through the chain's
    /// response callbacks, or another cluster), else a 503 that says why. Fallback answers carry
    /// `x-weir-fallback: <reason>`.
    #[allow(clippy::too_many_arguments)]
    async fn refused(
        &self,
        conn: &ConnInfo,
        parts: http::request::Parts,
        body: RequestBody,
        route: &Route,
        cluster: &upstream::Cluster,
        chained: Option<Chained<'_>>,
        mut completion: Completion,
        why: Refusal,
        may_fall_back: bool,
    ) -> Response<ResponseBody> {
        let fallback = route.fallback.as_ref().filter(|_| may_fall_back);
        let reason = HeaderValue::from_static(why.reason());
        let mut resp = match fallback {
            Some(Action::Cluster(name)) => {
                let Some(other) = self.clusters.iter().find(|c| *c.name == **name) else {
                    completion.filter_streams = chained.map(|c| c.streams);
                    return error_response(&why.error(cluster), completion);
                };
                self.metrics.fallback(&route.name, why.reason());
                tracing::info!(request_id = completion.request_id.to_str().unwrap_or("-"), route = %route.name, cluster = %cluster.name, fallback = %other.name, reason = why.reason(), "fallback cluster");
                self.forward(conn, parts, body, route, other, chained, completion, false).await
            }
            Some(Action::Direct { status, headers, body }) => {
                self.metrics.fallback(&route.name, why.reason());
                completion.code_details("fallback");
                let head = (*status, headers.clone(), body.clone());
                match chained {
                    Some(Chained { route: chain_route, chain, streams, .. }) => {
                        self.respond_through_chain(chain_route, chain, streams, head, chain.len(), completion).await
                    }
                    None => direct_response(head.0, &head.1, &head.2, completion),
                }
            }
            None => {
                completion.filter_streams = chained.map(|c| c.streams);
                return error_response(&why.error(cluster), completion);
            }
        };
        resp.headers_mut().insert(headers::X_WEIR_FALLBACK.clone(), reason);
        resp
    }

    /// A filter stopped the request body (answered from a body callback, failed, or held too much).
    async fn body_stopped(
        &self,
        why: BodyStop,
        chain_route: &Route,
        chain: Option<&[Attachment]>,
        streams: Option<ChainStreams>,
        mut completion: Completion,
    ) -> Response<ResponseBody> {
        match (why, chain, streams) {
            (BodyStop::Respond(local), Some(chain), Some(s)) => {
                Box::pin(self.reply_through_chain(chain_route, chain, s, local, chain.len(), completion)).await
            }
            (BodyStop::Respond(local), _, _) => local_reply(&local, completion),
            (BodyStop::Fail { filter, detail, too_large }, _, s) => {
                completion.filter_streams = s;
                if too_large {
                    error_response(&ProxyError::BodyTooLarge { filter: filter.to_string(), detail }, completion)
                } else {
                    error_response(&ProxyError::filter(&chain_route.name, &filter, detail), completion)
                }
            }
        }
    }
}

fn stop_is_empty(stop: &StopSlot) -> bool {
    stop.lock().unwrap_or_else(|e| e.into_inner()).is_none()
}

fn classify(e: SendError, cluster: &upstream::Cluster, endpoint: &str) -> ProxyError {
    let millis = cluster.connect_timeout.as_millis();
    let (name, endpoint) = (cluster.name.to_string(), endpoint.to_string());
    match e {
        SendError::ConnectTimeout => ProxyError::UpstreamTimeout { millis, what: "connect", cluster: name, endpoint },
        SendError::Connect(detail) => ProxyError::UpstreamConnect { cluster: name, endpoint, detail },
        SendError::Protocol(detail) => ProxyError::UpstreamProtocol { cluster: name, endpoint, detail },
        SendError::Overflow(limit) => ProxyError::Overloaded { cluster: name, limit: limit.as_str() },
    }
}

/// [`paused::drive`] stops only with a local response or a failure.
fn unreachable_verdict() -> ! {
    unreachable!("a paused response stops only with a local response or a failure")
}
