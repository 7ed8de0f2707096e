//! Running a filter's HTTP callouts on the worker's own upstream pools, and delivering each answer to the
//! root context that asked, exactly once.

use super::VmSlot;
use crate::abi::callout::{Callout, CalloutResponse, MAX_CALLOUT_TIME};
use crate::abi::stream::{pseudo, Headers};
use crate::upstream::{self, balance::Pick, UpstreamBody};
use bytes::Bytes;
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The largest callout answer body kept; a larger one fails the callout.
pub const MAX_CALLOUT_BODY: usize = 16 << 20;

/// What every VM slot of a worker needs to run callouts: the worker's clusters.
#[derive(Default)]
pub struct CalloutRunner {
    /// The worker's clusters (set once the pipeline is built).
    pub clusters: OnceLock<Arc<Vec<Arc<upstream::Cluster>>>>,
    /// Where callouts go instead of the network, when set (`weir::harness`, which answers them itself).
    pub(crate) sink: OnceLock<CalloutSink>,
}

/// Takes the callouts a worker's VMs start, instead of sending them.
pub(crate) type CalloutSink = Arc<dyn Fn(CalloutTicket) + Send + Sync>;

/// A callout handed to a [`CalloutSink`], with what is needed to deliver its answer to the VM that asked.
pub(crate) struct CalloutTicket {
    slot: Weak<Mutex<VmSlot>>,
    generation: u64,
    /// What the filter asked for.
    pub(crate) callout: Callout,
}

impl CalloutTicket {
    /// Delivers the answer (`None`: the callout failed) as an answer from the network is delivered.
    pub(crate) fn answer(self, answer: Option<CalloutResponse>) {
        deliver(&self.slot, self.generation, &self.callout, answer);
    }
}

/// Starts `callouts` on the current worker runtime; their answers go to `slot`.
pub fn spawn(runner: &Arc<CalloutRunner>, slot: &Weak<Mutex<VmSlot>>, generation: u64, callouts: Vec<Callout>) {
    if let Some(sink) = runner.sink.get() {
        for callout in callouts {
            sink(CalloutTicket { slot: slot.clone(), generation, callout });
        }
        return;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        // Only the canary VM runs outside a worker; a callout from its on_configure is not sent.
        if !callouts.is_empty() {
            tracing::warn!(count = callouts.len(), "callouts started during configuration are not sent");
        }
        return;
    }
    for callout in callouts {
        tokio::spawn(run(runner.clone(), slot.clone(), generation, callout));
    }
}

async fn run(runner: Arc<CalloutRunner>, slot: Weak<Mutex<VmSlot>>, generation: u64, callout: Callout) {
    let cluster = runner
        .clusters
        .get()
        .and_then(|cs| cs.iter().position(|k| *k.name == callout.cluster).map(|i| (cs.clone(), i)));
    tracing::debug!(token = callout.token, cluster = %callout.cluster, known = cluster.is_some(), "callout started");
    let answer = match cluster {
        Some((clusters, i)) => fetch(&clusters[i], &callout).await,
        None => None,
    };
    tracing::debug!(token = callout.token, answered = answer.is_some(), "callout finished");
    deliver(&slot, generation, &callout, answer);
}

/// `proxy_on_http_call_response` for `callout` on the VM that asked, unless it was replaced since; then wakes
/// the streams that callback resumed or answered.
fn deliver(slot: &Weak<Mutex<VmSlot>>, generation: u64, callout: &Callout, answer: Option<CalloutResponse>) {
    let Some(slot) = slot.upgrade() else { return };
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if guard.generation != generation {
        return; // the VM that asked was replaced; its token means nothing to the new one
    }
    let delivered = guard.vm.as_mut().filter(|v| !v.failed()).map(|vm| vm.deliver_callout(callout, answer));
    if let Some(Err(e)) = delivered {
        tracing::error!(error = %e, "filter failed in proxy_on_http_call_response");
        guard.note_failure();
    }
    guard.wake();
}

/// A body of one data frame, then trailers.
struct WithTrailers {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl http_body::Body for WithTrailers {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let frame = match self.data.take() {
            Some(data) => Some(http_body::Frame::data(data)),
            None => self.trailers.take().map(http_body::Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}

/// Sends the callout and reads the whole answer. As Envoy's async client does, a callout that got no response
/// headers (no connection, a reset before them, a circuit breaker) answers 503 with Envoy's text, and a timeout
/// 504; `None` (the filter sees a failure: no headers) when the answer broke after its headers or was too large.
async fn fetch(cluster: &upstream::Cluster, c: &Callout) -> Option<CalloutResponse> {
    let mut builder = http::Request::builder()
        .method(pseudo(&c.headers, b":method").and_then(|m| http::Method::from_bytes(m).ok())?)
        .header(http::header::HOST, pseudo(&c.headers, b":authority")?);
    let path = pseudo(&c.headers, b":path").and_then(|p| http::uri::PathAndQuery::try_from(p).ok())?;
    let in_flight = cluster
        .balancer
        .pick(&Pick { client_ip: std::net::Ipv4Addr::LOCALHOST.into(), headers: &http::HeaderMap::new() });
    let endpoint = &cluster.endpoints[in_flight.index()];
    let uri = if cluster.http2 {
        http::Uri::builder()
            .scheme(cluster.scheme.clone())
            .authority(endpoint.authority.clone())
            .path_and_query(path)
            .build()
            .ok()?
    } else {
        http::Uri::from(path)
    };
    builder = builder.uri(uri);
    for (k, v) in &c.headers {
        if k.first() != Some(&b':') {
            builder = builder.header(k.as_slice(), v.as_slice());
        }
    }
    let body: UpstreamBody = if c.trailers.is_empty() {
        if !c.body.is_empty() {
            builder = builder.header(http::header::CONTENT_LENGTH, c.body.len());
        }
        Full::new(Bytes::from(c.body.clone())).map_err(|e| match e {}).boxed_unsync()
    } else {
        // Trailers: a body of unknown length (chunked on HTTP/1.1, which sends only declared trailers).
        let mut map = http::HeaderMap::new();
        for (k, v) in &c.trailers {
            if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k), http::HeaderValue::from_bytes(v)) {
                map.append(k, v);
            }
        }
        let declared: Vec<&str> = map.keys().map(http::HeaderName::as_str).collect();
        builder = builder.header(http::header::TRAILER, declared.join(", "));
        let data = (!c.body.is_empty()).then(|| Bytes::from(c.body.clone()));
        WithTrailers { data, trailers: Some(map) }.map_err(|e| match e {}).boxed_unsync()
    };
    let request = builder.body(body).ok()?;
    let exchange = async {
        let resp = match cluster.send(in_flight.index(), request, crate::upstream::ResponseFields::All).await {
            Ok(sent) => sent,
            Err(e) => return Some(unanswered(&e)),
        };
        let (head, mut body) = resp.into_parts();
        let mut answer =
            CalloutResponse { headers: Headers::response(head.status, head.headers), ..Default::default() };
        loop {
            let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                None => break,
                Some(Err(_)) => return None,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        if answer.body.len() + data.len() > MAX_CALLOUT_BODY {
                            return None;
                        }
                        answer.body.extend_from_slice(&data);
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            answer.trailers = Headers::from_map(trailers);
                        }
                    }
                },
            }
            if body.is_end_stream() {
                break;
            }
        }
        Some(answer)
    };
    match tokio::time::timeout(c.timeout.unwrap_or(MAX_CALLOUT_TIME), exchange).await {
        Ok(answer) => answer,
        Err(_) => Some(CalloutResponse {
            headers: Headers::response(http::StatusCode::GATEWAY_TIMEOUT, http::HeaderMap::new()),
            body: b"upstream request timeout".to_vec(),
            ..Default::default()
        }),
    }
}

/// The answer Envoy's router gives its async client when the upstream gave no response headers: 503, `text/plain`,
/// `upstream connect error or disconnect/reset before headers. reset reason: ...`.
fn unanswered(e: &crate::upstream::pool::SendError) -> CalloutResponse {
    use crate::upstream::pool::SendError;
    let reason = match e {
        SendError::ConnectTimeout => "connection timeout".to_string(),
        SendError::Connect(detail) => format!("remote connection failure, transport failure reason: {detail}"),
        SendError::Protocol(detail) => format!("connection termination, {detail}"),
        SendError::Overflow(_) => "overflow".to_string(),
    };
    let text = format!("upstream connect error or disconnect/reset before headers. reset reason: {reason}");
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(text.len()));
    CalloutResponse {
        headers: Headers::response(http::StatusCode::SERVICE_UNAVAILABLE, headers),
        body: text.into_bytes(),
        ..Default::default()
    }
}
