//! Running a route's chain on one request: request callbacks in chain order, response callbacks in
//! reverse, and `on_log` / `on_done` / `on_delete` for every context when the stream ends.

use super::memo::MemoAnswer;
use super::{Attachment, VmSlot, WorkerFilters};
use crate::abi::stream::{Headers, LocalResponse, RequestInfo};
use crate::config::FailurePolicy;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use weir_sdk::abi::{Action, StreamNeeds};

/// The HTTP contexts one request opened; each is ended exactly once, when the stream ends.
#[derive(Default)]
pub struct ChainStreams {
    contexts: Vec<Option<OpenContext>>,
}

struct OpenContext {
    slot: Arc<Mutex<VmSlot>>,
    generation: u64,
    id: u32,
    /// The attachment's log tag, set on the VM before `on_log` and the rest.
    tag: Arc<str>,
    /// What its plugin declared the stream uses.
    needs: StreamNeeds,
}

impl ChainStreams {
    /// Whether any of filters `0..upto` has a context open (sees a response in its callbacks).
    pub fn any_open(&self, upto: usize) -> bool {
        self.contexts.iter().take(upto).any(Option::is_some)
    }

    /// The context attachment `i` opened, if any: its slot, the VM generation, and the context id.
    pub(super) fn context(&self, i: usize) -> Option<(Arc<Mutex<VmSlot>>, u64, u32)> {
        self.contexts.get(i)?.as_ref().map(|c| (c.slot.clone(), c.generation, c.id))
    }

    /// What the plugin of attachment `i` declared its streams use (everything when it opened no context).
    pub(super) fn needs(&self, i: usize) -> StreamNeeds {
        self.contexts.get(i).and_then(Option::as_ref).map_or(StreamNeeds::ALL, |c| c.needs)
    }

    /// Ends every open context (`on_log`, `on_done`, `on_delete`), last filter first; returns how many ended
    /// that way (a context whose VM failed or was replaced meanwhile is gone without them).
    pub fn finish(&mut self) -> usize {
        let mut ended = 0;
        for ctx in self.contexts.drain(..).rev().flatten() {
            let mut slot = ctx.slot.lock().unwrap_or_else(|e| e.into_inner());
            // A stream that ends while paused (the client went away) leaves no waiter behind.
            if !slot.waiters.is_empty() {
                slot.waiters.remove(&(ctx.id, true));
                slot.waiters.remove(&(ctx.id, false));
            }
            if slot.generation != ctx.generation {
                continue; // the VM was replaced: its contexts are gone with it
            }
            if let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed()) {
                vm.set_tag(&ctx.tag);
                match vm.finish_http_context(ctx.id) {
                    Ok(()) => ended += 1,
                    Err(e) => {
                        tracing::error!(error = %e, "filter failed at the end of a stream");
                        slot.note_failure();
                    }
                }
            }
        }
        ended
    }
}

impl Drop for ChainStreams {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// What the request phase decided.
pub enum RequestVerdict {
    /// Forward the request with these headers.
    Continue(Headers),
    /// Answer with this local response; response callbacks run for filters before `upto` (exclusive).
    Respond {
        /// The response.
        response: LocalResponse,
        /// Filters `0..upto` see the local response in their response callbacks.
        upto: usize,
    },
    /// Answer with a memoized local response of the filter before `upto` ([`super::memo`]); response callbacks
    /// run for filters before `upto` (the answering filter has no context for this request).
    Memoized {
        /// The answer.
        answer: MemoAnswer,
        /// Filters `0..upto` see it in their response callbacks.
        upto: usize,
    },
    /// A filter failed (fail closed) or asked for something the host cannot do.
    Fail {
        /// The filter.
        filter: Arc<str>,
        /// Why.
        detail: String,
    },
}

/// What the response phase decided.
pub enum ResponseVerdict {
    /// Send the response with these headers.
    Continue(Headers),
    /// Replace the response with this one.
    Respond(LocalResponse),
    /// A filter failed (fail closed).
    Fail {
        /// The filter.
        filter: Arc<str>,
        /// Why.
        detail: String,
    },
}

/// A filter attached with `allow_on_headers_stop_iteration` paused the headers of a response whose body follows.
/// As in Envoy with that option (StopIteration), its body callbacks (and those of the filters before it in
/// response order) go on while the headers wait; the headers continue when it resumes
/// the stream or lets a body chunk through ([`PausedHeaders::outcome`]), and then go through the filters after
/// it (`run_response_headers` with `upto` = [`PausedHeaders::at`]).
pub struct PausedHeaders {
    /// The paused filter's position in the chain.
    pub at: usize,
    id: u32,
    /// The resume signal.
    pub signal: oneshot::Receiver<()>,
    /// The headers it got (kept for a fail-open filter that fails while paused).
    before: Option<Headers>,
    /// Request headers (else response headers).
    request: bool,
}

/// How the response headers phase of a response with a body started.
pub enum ResponseStart {
    /// Decided: as [`run_response_headers`].
    Decided(ResponseVerdict),
    /// A filter paused.
    Paused(PausedHeaders),
}

impl PausedHeaders {
    /// What the paused filter decided, once it resumed or let body through: its local response, or the headers
    /// as it left them. A failure goes by its failure policy (fail open: the headers it got).
    pub fn outcome(&self, a: &Attachment) -> ResponseVerdict {
        match self.decided(a) {
            Decided::Continue(h) => ResponseVerdict::Continue(h),
            Decided::Respond(local) => ResponseVerdict::Respond(local),
            Decided::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => ResponseVerdict::Continue(self.before.clone().unwrap_or_default()),
                FailurePolicy::FailClosed => ResponseVerdict::Fail { filter: a.name.clone(), detail },
            },
        }
    }

    /// [`PausedHeaders::outcome`] for request headers: a local response goes through the response callbacks of
    /// the filters up to this one.
    pub fn request_outcome(&self, a: &Attachment) -> RequestVerdict {
        match self.decided(a) {
            Decided::Continue(h) => RequestVerdict::Continue(h),
            Decided::Respond(response) => RequestVerdict::Respond { response, upto: self.at + 1 },
            Decided::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => RequestVerdict::Continue(self.before.clone().unwrap_or_default()),
                FailurePolicy::FailClosed => RequestVerdict::Fail { filter: a.name.clone(), detail },
            },
        }
    }

    fn decided(&self, a: &Attachment) -> Decided {
        let mut slot = a.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.waiters.remove(&(self.id, self.request));
        let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed()) else {
            return Decided::Fail("its VM failed while the stream was paused".into());
        };
        let outcome = vm.take_stream_outcome(self.id);
        if let Some(local) = outcome.local_response {
            return Decided::Respond(local);
        }
        if outcome.close {
            return Decided::Fail("the filter closed the stream".into());
        }
        match vm.stream_headers(self.id, self.request) {
            Some(headers) => Decided::Continue(headers),
            None => Decided::Fail("the stream's context is gone".into()),
        }
    }
}

/// What a filter decided about the headers.
enum Decided {
    Continue(Headers),
    Respond(LocalResponse),
    Fail(String),
}

enum Step {
    Done(Decided),
    /// A request answered from a memo of the attachment, without entering its VM.
    Memoized(MemoAnswer),
    /// Paused: wait on this signal, then look at context `id` again.
    Paused(oneshot::Receiver<()>, u32),
}

impl Step {
    async fn decide(self, a: &Attachment, request: bool) -> Decided {
        match self {
            Step::Done(d) => d,
            Step::Memoized(answer) => Decided::Respond(answer.to_local()),
            Step::Paused(rx, id) => wait_resume(a, rx, id, request).await,
        }
    }
}

/// How long a paused stream waits for its filter to resume it (from a callout answer, a tick, ...).
pub const PAUSE_DEADLINE: Duration = Duration::from_secs(30);

/// Waits, up to [`PAUSE_DEADLINE`], for the signal a paused stream gets when its filter resumes or answers
/// it; past the deadline, forgets the waiter and says why.
pub(super) async fn wait_signal(
    slot: &Mutex<VmSlot>,
    rx: oneshot::Receiver<()>,
    id: u32,
    request: bool,
) -> Result<(), String> {
    if tokio::time::timeout(PAUSE_DEADLINE, rx).await.is_err() {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.waiters.remove(&(id, request));
        return Err(format!(
            "the filter paused the stream and did not resume it within {} s",
            PAUSE_DEADLINE.as_secs()
        ));
    }
    Ok(())
}

/// Waits for a paused stream's resume; returns what the filter decided meanwhile.
async fn wait_resume(a: &Attachment, rx: oneshot::Receiver<()>, id: u32, request: bool) -> Decided {
    if let Err(detail) = wait_signal(&a.slot, rx, id, request).await {
        return Decided::Fail(detail);
    }
    let mut slot = a.slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed()) else {
        return Decided::Fail("its VM failed while the stream was paused".into());
    };
    let outcome = vm.take_stream_outcome(id);
    if let Some(local) = outcome.local_response {
        return Decided::Respond(local);
    }
    if outcome.close {
        return Decided::Fail("the filter closed the stream".into());
    }
    match vm.stream_headers(id, request) {
        Some(headers) => Decided::Continue(headers),
        None => Decided::Fail("the stream's context is gone".into()),
    }
}

/// Runs one headers callback of attachment `i`, opening its context on first use.
#[allow(clippy::too_many_arguments)]
fn step(
    filters: &WorkerFilters,
    info: &Option<Arc<RequestInfo>>,
    a: &Attachment,
    i: usize,
    streams: &mut ChainStreams,
    headers: Headers,
    eos: bool,
    request: bool,
) -> Step {
    let mut slot = a.slot.lock().unwrap_or_else(|e| e.into_inner());
    // `ready` may replace a failed VM: the generation and root context are read after it, or this
    // request's context would be filed under the old VM and its next phase refused.
    if slot.ready(filters.plan()).is_none() {
        return Step::Done(Decided::Fail("its VM failed and is waiting to be replaced".into()));
    }
    // A request without a body that agrees with a memoized answer of this attachment gets it without a context.
    if request && eos && streams.contexts.get(i).is_none_or(Option::is_none) {
        if let (Some(info), Some(table)) = (info, slot.memos.get_mut(a.root)) {
            if let Some(answer) = table.answer(&headers, info) {
                return Step::Memoized(answer);
            }
        }
    }
    let generation = slot.generation;
    let root = slot.roots.get(a.root).copied();
    let Some(vm) = slot.vm.as_mut() else {
        return Step::Done(Decided::Fail("its VM failed and is waiting to be replaced".into()));
    };
    vm.set_tag(&a.tag);
    if streams.contexts.len() <= i {
        streams.contexts.resize_with(i + 1, || None);
    }
    let id = match &streams.contexts[i] {
        Some(c) if c.generation == generation => c.id,
        Some(_) => return Step::Done(Decided::Fail("its VM was replaced during this request".into())),
        None => {
            let Some(root) = root else { return Step::Done(Decided::Fail("no root context".into())) };
            match vm.create_http_context(root, info.clone()) {
                Ok(id) => {
                    let needs = vm.stream_needs(id);
                    streams.contexts[i] =
                        Some(OpenContext { slot: a.slot.clone(), generation, id, tag: a.tag.clone(), needs });
                    id
                }
                Err(e) => {
                    slot.note_failure();
                    return Step::Done(Decided::Fail(e.summary()));
                }
            }
        }
    };
    let result =
        if request { vm.on_request_headers(id, headers, eos) } else { vm.on_response_headers(id, headers, eos) };
    // Starts the callouts it asked for and wakes streams it resumed (another stream, via the effective context).
    slot.wake();
    match result {
        Err(e) => {
            tracing::error!(filter = %a.tag, error = %e, "filter failed");
            slot.note_failure();
            Step::Done(Decided::Fail(e.summary()))
        }
        Ok((outcome, headers)) => {
            if let Some(local) = outcome.local_response {
                let memo = slot.vm.as_mut().and_then(|vm| vm.take_memo(id));
                if let (Some(draft), Some(info), true) = (memo, info, request && eos) {
                    if slot.memos.len() <= a.root {
                        slot.memos.resize_with(a.root + 1, Default::default);
                    }
                    slot.memos[a.root].insert(draft, info.route.clone(), &local, i == 0, info.cluster.is_some());
                    a.memoized.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                return Step::Done(Decided::Respond(local));
            }
            if outcome.close {
                return Step::Done(Decided::Fail("the filter closed the stream".into()));
            }
            match outcome.action {
                Action::Continue => Step::Done(Decided::Continue(headers)),
                _ => {
                    let (tx, rx) = oneshot::channel();
                    slot.waiters.insert((id, request), tx);
                    Step::Paused(rx, id)
                }
            }
        }
    }
}

/// Runs `on_request_headers` through the chain.
pub async fn run_request_headers(
    filters: &WorkerFilters,
    info: &Option<Arc<RequestInfo>>,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    headers: Headers,
    eos: bool,
) -> RequestVerdict {
    match run_request_headers_from(filters, info, chain, streams, headers, eos, 0, false).await {
        RequestStart::Decided(verdict) => verdict,
        RequestStart::Paused(_) => unreachable!("no body may go on while headers are held here"),
    }
}

/// How the request headers phase started.
pub enum RequestStart {
    /// Decided: as [`run_request_headers`].
    Decided(RequestVerdict),
    /// A filter attached with `allow_on_headers_stop_iteration` paused the headers of a request whose body
    /// follows: its body callbacks (and those of the filters before it) go on while the headers wait.
    Paused(PausedHeaders),
}

/// Runs `on_request_headers` through filters `from..`; with `body_follows`, a filter attached with
/// `allow_on_headers_stop_iteration` that pauses hands the phase back ([`RequestStart::Paused`]) instead of
/// waiting for its resume.
#[allow(clippy::too_many_arguments)]
pub async fn run_request_headers_from(
    filters: &WorkerFilters,
    info: &Option<Arc<RequestInfo>>,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    mut headers: Headers,
    eos: bool,
    from: usize,
    body_follows: bool,
) -> RequestStart {
    for (i, a) in chain.iter().enumerate().skip(from) {
        // Kept only where a failure falls back to them.
        let before = (a.failure_policy == FailurePolicy::FailOpen).then(|| headers.clone());
        let decided = match step(filters, info, a, i, streams, headers, eos, true) {
            Step::Paused(signal, id) if body_follows && !eos && a.allow_on_headers_stop_iteration => {
                return RequestStart::Paused(PausedHeaders { at: i, id, signal, before, request: true });
            }
            Step::Memoized(answer) => {
                return RequestStart::Decided(RequestVerdict::Memoized { answer, upto: i + 1 });
            }
            step => step.decide(a, true).await,
        };
        match decided {
            Decided::Continue(h) => headers = h,
            Decided::Respond(response) => {
                return RequestStart::Decided(RequestVerdict::Respond { response, upto: i + 1 })
            }
            Decided::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => headers = before.unwrap_or_default(),
                FailurePolicy::FailClosed => {
                    return RequestStart::Decided(RequestVerdict::Fail { filter: a.name.clone(), detail })
                }
            },
        }
    }
    RequestStart::Decided(RequestVerdict::Continue(headers))
}

/// Runs `on_response_headers` through filters `0..upto`, last first.
pub async fn run_response_headers(
    filters: &WorkerFilters,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    mut headers: Headers,
    eos: bool,
    upto: usize,
) -> ResponseVerdict {
    for (i, a) in chain.iter().enumerate().take(upto).rev() {
        if streams.contexts.get(i).is_none_or(Option::is_none) {
            continue; // this filter never saw the request (an earlier one answered or failed open)
        }
        let before = (a.failure_policy == FailurePolicy::FailOpen).then(|| headers.clone());
        match step(filters, &None, a, i, streams, headers, eos, false).decide(a, false).await {
            Decided::Continue(h) => headers = h,
            Decided::Respond(response) => return ResponseVerdict::Respond(response),
            Decided::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => headers = before.unwrap_or_default(),
                FailurePolicy::FailClosed => return ResponseVerdict::Fail { filter: a.name.clone(), detail },
            },
        }
    }
    ResponseVerdict::Continue(headers)
}

/// [`run_response_headers`] for a response whose body follows, through filters `0..upto`, last first: a filter
/// attached with `allow_on_headers_stop_iteration` that pauses does not stop its body callbacks
/// ([`PausedHeaders`]); any other pause waits for the filter's resume, as in [`run_response_headers`].
pub async fn run_response_headers_streaming(
    filters: &WorkerFilters,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    mut headers: Headers,
    upto: usize,
) -> ResponseStart {
    for (i, a) in chain.iter().enumerate().take(upto).rev() {
        if streams.contexts.get(i).is_none_or(Option::is_none) {
            continue;
        }
        let before = (a.failure_policy == FailurePolicy::FailOpen).then(|| headers.clone());
        let decided = match step(filters, &None, a, i, streams, headers, false, false) {
            Step::Paused(signal, id) if a.allow_on_headers_stop_iteration => {
                return ResponseStart::Paused(PausedHeaders { at: i, id, signal, before, request: false })
            }
            // Envoy's default (StopAllIteration): no body callback until the filter resumes.
            step => step.decide(a, false).await,
        };
        match decided {
            Decided::Continue(h) => headers = h,
            Decided::Respond(response) => return ResponseStart::Decided(ResponseVerdict::Respond(response)),
            Decided::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => headers = before.unwrap_or_default(),
                FailurePolicy::FailClosed => {
                    return ResponseStart::Decided(ResponseVerdict::Fail { filter: a.name.clone(), detail })
                }
            },
        }
    }
    ResponseStart::Decided(ResponseVerdict::Continue(headers))
}
