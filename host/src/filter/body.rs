//! Bodies through the chain: each data chunk goes through the filters' body callbacks (request: chain
//! order; response: reverse), as it arrives. A filter that answers PAUSE holds the chunk; later chunks are
//! appended and its callback runs again with the accumulated size, until it continues (§6.2 of the ABI
//! reference). PAUSE in the final callback holds the whole body until the filter resumes the stream ([`resume`]). A body that ends without trailers after a callback with
//! `end_of_stream = false` gets one more, empty, `end_of_stream = true` callback.
//!
//! A stream with trailers ends with them instead: the last body callback has `end_of_stream = false`, and
//! the trailers callbacks follow ([`trailers`]). A filter that creates trailers in its final body callback
//! turns the stream into one with trailers for the filters after it, as Envoy does: they see that chunk
//! with `end_of_stream = false`, then the trailers.

mod resume;
mod trailers;

use super::chain::ChainStreams;
use super::{Attachment, VmSlot};
use crate::abi::stream::{Headers, LocalResponse};
use crate::config::FailurePolicy;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use weir_sdk::abi::Action;

/// Limit on what a pausing filter may hold, per direction and filter. Beyond it the request gets 413
/// (request side) or the stream fails (response side), as Envoy does with its buffer limit.
pub const MAX_BUFFERED_BODY: usize = 16 << 20;

struct Stage {
    slot: Arc<Mutex<VmSlot>>,
    generation: u64,
    id: u32,
    name: Arc<str>,
    /// The attachment's log tag (route and filter), set on the VM before each callback.
    tag: Arc<str>,
    failure_policy: FailurePolicy,
    held: Option<Vec<u8>>,
    /// The attachment's position in the chain.
    index: usize,
    /// Its headers are paused ([`BodyChain::gate`]): a PAUSE in its final body callback holds the body for the
    /// headers' resume, with no waiter of its own.
    gated: bool,
}

/// What happened to a chunk, or to the trailers.
pub enum BodyVerdict {
    /// Pass these bytes on (possibly empty while a filter holds the body).
    Data(Vec<u8>),
    /// The trailers phase is over: pass these bytes on, then these trailers (none when empty), and end.
    Trailers {
        /// Body the filters released at the end (held until the trailers came).
        data: Vec<u8>,
        /// The trailers as the filters left them, pseudo-headers never among them.
        trailers: Headers,
    },
    /// A filter asked for a local response.
    Respond(LocalResponse),
    /// A filter failed (fail closed) or held more than the limit.
    Fail {
        /// The filter.
        filter: Arc<str>,
        /// Why.
        detail: String,
        /// The body limit was exceeded.
        too_large: bool,
    },
}

/// The trailers phase under way; it owns the stages until it ends.
type Running = Pin<Box<dyn Future<Output = (Vec<Stage>, BodyVerdict)> + Send>>;

/// The body and trailers callbacks of one direction of one request.
pub struct BodyChain {
    stages: Vec<Stage>,
    request: bool,
    /// Trailers waiting for their phase, and the first stage that gets them.
    pending: Option<(Headers, usize)>,
    running: Option<Running>,
}

/// What one stage did with a chunk.
enum Passed {
    /// These bytes go on, with the trailers the stage created in its final body callback, if any.
    On(Vec<u8>, Option<Headers>),
    /// The stage holds the body.
    Held,
    /// The stage paused in its final body callback: it holds the whole body until it resumes (this signal).
    Waiting(tokio::sync::oneshot::Receiver<()>),
    /// The stream stops.
    Stop(BodyVerdict),
}

impl BodyChain {
    /// The chain for one direction: the filters that opened a context in the headers phase, except those whose
    /// plugin declared it reads no body in that direction (`weir.declare_stream_needs`). `None` when no filter
    /// is left: the body then streams past every VM.
    pub fn new(chain: &[Attachment], streams: &ChainStreams, request: bool) -> Option<BodyChain> {
        Self::build(chain, streams, request, None)
    }

    /// [`new`](Self::new), for headers paused by filter `at`: it keeps a stage whatever it declared, since its
    /// stage holds the body while its headers wait.
    pub fn paused(chain: &[Attachment], streams: &ChainStreams, request: bool, at: usize) -> Option<BodyChain> {
        Self::build(chain, streams, request, Some(at))
    }

    fn build(chain: &[Attachment], streams: &ChainStreams, request: bool, keep: Option<usize>) -> Option<BodyChain> {
        let mut stages: Vec<Stage> = chain
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let (slot, generation, id) = streams.context(i)?;
                if !streams.needs(i).body(request) && keep != Some(i) {
                    return None;
                }
                Some(Stage {
                    slot,
                    generation,
                    id,
                    name: a.name.clone(),
                    tag: a.tag.clone(),
                    failure_policy: a.failure_policy,
                    held: None,
                    index: i,
                    gated: false,
                })
            })
            .collect();
        if !request {
            stages.reverse();
        }
        (!stages.is_empty()).then_some(BodyChain { stages, request, pending: None, running: None })
    }

    /// Runs one chunk through the chain. When a filter creates trailers in its final callback, the
    /// trailers phase is due next ([`BodyChain::poll_trailers`]).
    pub fn chunk(&mut self, data: Vec<u8>, end_of_stream: bool) -> BodyVerdict {
        self.chunk_range(data, end_of_stream, 0, usize::MAX).0
    }

    /// Runs one chunk through stages `from..to` only (positions in callback order); true when it got through
    /// all of them (no stage held it).
    pub fn chunk_range(&mut self, data: Vec<u8>, end_of_stream: bool, from: usize, to: usize) -> (BodyVerdict, bool) {
        let mut data = data;
        let mut eos = end_of_stream;
        let to = to.min(self.stages.len());
        for i in from..to {
            match self.stages[i].body(self.request, data, eos) {
                Passed::On(out, created) => {
                    data = out;
                    if let Some(trailers) = created {
                        eos = false;
                        self.pending = Some((trailers, i + 1));
                    }
                }
                Passed::Held => return (BodyVerdict::Data(Vec::new()), false),
                Passed::Waiting(rx) => {
                    // The rest of the range runs once the stage resumes, as the trailers phase does.
                    let stages = std::mem::take(&mut self.stages);
                    self.running = Some(Box::pin(resume::run(stages, self.request, i, to, rx)));
                    return (BodyVerdict::Data(Vec::new()), false);
                }
                Passed::Stop(verdict) => return (verdict, false),
            }
        }
        (BodyVerdict::Data(data), true)
    }

    /// The position, in callback order, of the chain's attachment `index` (if it opened a context).
    pub fn position(&self, index: usize) -> Option<usize> {
        self.stages.iter().position(|s| s.index == index)
    }

    /// Marks the stage at `position` as having its headers paused (or no longer): a PAUSE in its final body
    /// callback then waits for the headers' resume, and its headers stay writable in its body callbacks.
    pub fn gate(&mut self, position: usize, paused: bool) {
        let Some(stage) = self.stages.get_mut(position) else { return };
        stage.gated = paused;
        let mut slot = stage.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.generation == stage.generation {
            if let Some(vm) = slot.vm.as_mut() {
                vm.hold_headers(stage.id, self.request, paused);
            }
        }
    }

    /// What the stage at `position` holds (its paused chunks, or the whole body it held for its headers'
    /// resume), as it left it; the hold ends.
    pub fn release(&mut self, position: usize) -> Vec<u8> {
        let Some(stage) = self.stages.get_mut(position) else { return Vec::new() };
        if let Some(held) = stage.held.take() {
            return held;
        }
        let mut slot = stage.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.generation != stage.generation {
            return Vec::new();
        }
        slot.vm.as_mut().and_then(|vm| vm.take_held_body(stage.id)).unwrap_or_default()
    }

    /// The stream's trailers arrived (the body, if any, has gone through with `end_of_stream = false`): the
    /// trailers phase is due next.
    pub fn trailers(&mut self, trailers: Headers) {
        self.pending = Some((trailers, 0));
    }

    /// No trailers phase is due or under way.
    pub fn idle(&self) -> bool {
        self.pending.is_none() && self.running.is_none()
    }

    /// Runs the trailers phase when one is due: `Ready(None)` when none is, else its verdict (a
    /// [`BodyVerdict::Trailers`], a local response or a failure) once every filter has continued.
    pub fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Option<BodyVerdict>> {
        if self.running.is_none() {
            let Some((pairs, from)) = self.pending.take() else { return Poll::Ready(None) };
            let stages = std::mem::take(&mut self.stages);
            self.running = Some(Box::pin(trailers::run(stages, self.request, pairs, from)));
        }
        let Some(running) = self.running.as_mut() else { return Poll::Ready(None) };
        let Poll::Ready((stages, verdict)) = running.as_mut().poll(cx) else { return Poll::Pending };
        self.running = None;
        self.stages = stages;
        Poll::Ready(Some(verdict))
    }
}

impl Stage {
    /// The failure policy applied to a stage that failed: fail open passes `input` on as if the filter were
    /// absent; fail closed stops the stream.
    fn failed<T>(&self, detail: String, input: T) -> Result<T, BodyVerdict> {
        match self.failure_policy {
            FailurePolicy::FailOpen => Ok(input),
            FailurePolicy::FailClosed => Err(BodyVerdict::Fail { filter: self.name.clone(), detail, too_large: false }),
        }
    }

    fn closed(&self) -> BodyVerdict {
        BodyVerdict::Fail { filter: self.name.clone(), detail: "the filter closed the stream".into(), too_large: false }
    }

    /// One body callback of this stage, with what it holds and `data` appended.
    fn body(&mut self, request: bool, data: Vec<u8>, end_of_stream: bool) -> Passed {
        let input = match self.held.take() {
            Some(mut held) => {
                held.extend_from_slice(&data);
                held
            }
            None => data,
        };
        if input.len() > MAX_BUFFERED_BODY {
            return Passed::Stop(BodyVerdict::Fail {
                filter: self.name.clone(),
                detail: format!("the filter held more than {MAX_BUFFERED_BODY} bytes of body"),
                too_large: true,
            });
        }
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let same_vm = slot.generation == self.generation;
        let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed() && same_vm) else {
            drop(slot);
            return match self.failed("its VM failed during this request".into(), input) {
                Ok(input) => Passed::On(input, None),
                Err(verdict) => Passed::Stop(verdict),
            };
        };
        vm.set_tag(&self.tag);
        let result = vm.on_body(self.id, request, input, end_of_stream);
        let created = match &result {
            Ok(_) if end_of_stream => vm.stream_trailers(self.id, request),
            _ => None,
        };
        slot.wake();
        let (outcome, out) = match result {
            Ok(ok) => {
                drop(slot);
                ok
            }
            Err((e, input)) => {
                slot.note_failure();
                drop(slot);
                tracing::error!(filter = %self.name, error = %e, "filter failed in a body callback");
                return match self.failed(e.summary(), input) {
                    Ok(input) => Passed::On(input, None),
                    Err(verdict) => Passed::Stop(verdict),
                };
            }
        };
        if let Some(local) = outcome.local_response {
            return Passed::Stop(BodyVerdict::Respond(local));
        }
        if outcome.close {
            return Passed::Stop(self.closed());
        }
        match outcome.action {
            Action::Continue => Passed::On(out, created),
            // Trailers it created follow the body: what it holds goes on with them.
            _ if end_of_stream && created.is_some() => Passed::On(out, created),
            // Paused on the last chunk: the body waits, whole and readable, until the filter resumes the stream
            // (Envoy's StopIterationAndBuffer at end of stream), as a paused headers callback does.
            _ if end_of_stream => {
                let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
                let same_vm = slot.generation == self.generation;
                let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed() && same_vm) else {
                    return Passed::On(out, None);
                };
                vm.hold_body(self.id, out);
                if self.gated {
                    return Passed::Held; // its paused headers' resume releases it
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                slot.waiters.insert((self.id, request), tx);
                Passed::Waiting(rx)
            }
            _ => {
                self.held = Some(out);
                Passed::Held
            }
        }
    }
}
