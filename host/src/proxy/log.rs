//! What is recorded when a request completes: one access-log line and the route's metrics.

use crate::abi::stream::{LiveFacts, RequestInfo};
use crate::telemetry::metrics::RouteMetrics;
use crate::upstream::balance::InFlight;
use http::{HeaderValue, Method, Uri};
use std::sync::Arc;
use std::time::Instant;

/// Everything known about a request that is needed when it completes. Reported exactly once: at the
/// end of the response body, on a body error, or when dropped (the client went away).
///
/// Boxed: the record goes by value through every step of a request (the handler, the filter phases, the
/// forwarding, the response body), and each async step keeps what it was given in its state. Unboxed, its
/// ~480 bytes were stored several times over in the request's future, which hyper moves whole (see
/// docs/benchmarks.md, "Future sizes").
pub struct Completion(Box<Record>);

/// The fields of a [`Completion`].
pub struct Record {
    pub(super) start: Instant,
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) route: Option<Arc<str>>,
    pub(super) upstream: Option<Arc<str>>,
    pub(super) status: u16,
    pub(super) request_id: HeaderValue,
    pub(super) bytes: BodyBytes,
    pub(super) metrics: RouteMetrics,
    pub(super) access_log: bool,
    pub(super) worker: usize,
    pub(super) in_flight: Option<InFlight>,
    /// The request's place under its cluster's `max_requests`, until the response ends.
    pub(super) admitted: Option<crate::upstream::breaker::Slot>,
    /// The retry's place in the retry budget, while the try is under way.
    pub(super) retry_slot: Option<crate::upstream::breaker::Slot>,
    pub(super) filter_streams: Option<crate::filter::ChainStreams>,
    /// What filters see of the request (routes with filters only): sizes, the upstream, code details and
    /// the duration are recorded into it.
    pub(super) info: Option<Arc<RequestInfo>>,
    outcome: Outcome,
}

/// Response body bytes sent to the client; mirrored into the request's [`LiveFacts`] once filters see it,
/// so `response.size` grows as the body streams.
#[derive(Default)]
pub struct BodyBytes {
    sent: u64,
    live: Option<Arc<LiveFacts>>,
}

impl std::ops::AddAssign<u64> for BodyBytes {
    fn add_assign(&mut self, n: u64) {
        self.sent += n;
        if let Some(live) = &self.live {
            live.add_response_body(n);
        }
    }
}

#[derive(PartialEq)]
enum Outcome {
    Open,
    Done,
    Failed(String),
    Reported,
}

impl Completion {
    /// Starts the record of a request.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        start: Instant,
        method: Method,
        uri: Uri,
        request_id: HeaderValue,
        metrics: RouteMetrics,
        access_log: bool,
        worker: usize,
    ) -> Completion {
        Completion(Box::new(Record {
            start,
            method,
            uri,
            route: None,
            upstream: None,
            status: 0,
            request_id,
            bytes: BodyBytes::default(),
            metrics,
            access_log,
            worker,
            in_flight: None,
            admitted: None,
            retry_slot: None,
            filter_streams: None,
            info: None,
            outcome: Outcome::Open,
        }))
    }
}

impl std::ops::Deref for Completion {
    type Target = Record;

    fn deref(&self) -> &Record {
        &self.0
    }
}

impl std::ops::DerefMut for Completion {
    fn deref_mut(&mut self) -> &mut Record {
        &mut self.0
    }
}

impl Record {
    /// Records what filters see of this request, to keep it up to date until the stream ends.
    pub(super) fn attach(&mut self, info: Arc<RequestInfo>) {
        self.bytes.live = Some(info.live.clone());
        self.info = Some(info);
    }

    /// Records why the response is what it is (`response.code_details`), when filters see this request.
    pub(super) fn code_details(&self, details: impl Into<std::borrow::Cow<'static, str>>) {
        if let Some(info) = &self.info {
            info.live.set_code_details(details);
        }
    }

    /// The body ended normally.
    pub fn finish(&mut self) {
        if self.outcome == Outcome::Open {
            self.outcome = Outcome::Done;
        }
        self.report();
    }

    /// The body failed mid-stream.
    pub fn fail(&mut self, error: String) {
        if self.outcome == Outcome::Open {
            self.outcome = Outcome::Failed(error);
        }
        self.report();
    }

    fn report(&mut self) {
        let outcome = std::mem::replace(&mut self.outcome, Outcome::Reported);
        let result = match &outcome {
            Outcome::Reported => return,
            Outcome::Done => "complete",
            Outcome::Open => "client_closed",
            Outcome::Failed(_) => "upstream_reset",
        };
        self.in_flight = None;
        let elapsed = self.start.elapsed();
        self.metrics.observe(self.status, elapsed.as_secs_f64());
        if self.access_log {
            tracing::info!(
                target: "weir::access",
                method = %self.method,
                path = %self.uri.path(),
                route = self.route.as_deref().unwrap_or("-"),
                upstream = self.upstream.as_deref().unwrap_or("-"),
                status = self.status,
                bytes = self.bytes.sent,
                duration_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
                request_id = self.request_id.to_str().unwrap_or("-"),
                worker = self.worker,
                result,
                "access"
            );
        }
        // Filters get on_log, on_done and on_delete once the stream is over (request.duration readable).
        if let Some(info) = &self.info {
            info.live.finish(elapsed);
        }
        self.filter_streams = None;
        if let Outcome::Failed(error) = outcome {
            tracing::warn!(request_id = self.request_id.to_str().unwrap_or("-"), %error, "response body failed mid-stream");
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.report();
    }
}

pin_project_lite::pin_project! {
    /// A request body whose data bytes are counted into the request's [`LiveFacts`] as they pass
    /// (`request.size` for a body without `content-length`).
    pub struct Counted<B> {
        #[pin]
        inner: B,
        live: Arc<LiveFacts>,
    }
}

impl<B> Counted<B> {
    /// Counts the data of `inner` into `live`.
    pub fn new(inner: B, live: Arc<LiveFacts>) -> Self {
        Counted { inner, live }
    }
}

impl<B: http_body::Body<Data = bytes::Bytes>> http_body::Body for Counted<B> {
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.live.add_request_body(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
