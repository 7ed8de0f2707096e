//! The trailers phase of one direction: `proxy_on_request_trailers` in chain order, or
//! `proxy_on_response_trailers` in reverse, for each filter that opened a context.
//!
//! Stage by stage, as Envoy's filter manager does: body a filter held when the trailers came is readable and
//! writable as its body buffer in its trailers callback (and while that callback is paused), and is released
//! after the callback continues, and goes through the next filters' body callbacks (with
//! `end_of_stream = false`) before their trailers callbacks. A PAUSE waits for `proxy_continue_stream` (from
//! any callback: a tick, a callout answer, another stream) up to the same deadline as the headers phases;
//! while paused the trailers stay writable. A local response or `proxy_close_stream` stops the stream; a
//! failure goes by the filter's failure policy (fail open: the trailers go on as they were).

use super::{BodyVerdict, Passed, Stage};
use crate::abi::stream::Headers;
use crate::filter::chain::wait_signal;
use tokio::sync::oneshot;
use weir_sdk::abi::Action;

/// Runs the trailers through stages `from..`; hands the stages back with the verdict.
pub(super) async fn run(
    stages: Vec<Stage>,
    request: bool,
    trailers: Headers,
    from: usize,
) -> (Vec<Stage>, BodyVerdict) {
    run_with(stages, request, trailers, from, Vec::new()).await
}

/// [`run`], with body bytes released just before the trailers (they go through stages `from..` first).
pub(super) async fn run_with(
    mut stages: Vec<Stage>,
    request: bool,
    trailers: Headers,
    from: usize,
    data: Vec<u8>,
) -> (Vec<Stage>, BodyVerdict) {
    let verdict = through(&mut stages, request, trailers, from, data).await;
    if let BodyVerdict::Trailers { trailers, .. } = &verdict {
        if !request {
            // What `on_log` reads as the response trailers is what went downstream, for every filter.
            for stage in &stages {
                stage.record(request, trailers);
            }
        }
    }
    (stages, verdict)
}

async fn through(
    stages: &mut [Stage],
    request: bool,
    mut trailers: Headers,
    from: usize,
    data: Vec<u8>,
) -> BodyVerdict {
    let mut data = data;
    for stage in stages.iter_mut().skip(from) {
        if !data.is_empty() {
            data = match stage.body(request, std::mem::take(&mut data), false) {
                Passed::On(out, _) => out,
                // With end_of_stream = false a stage holds (it never waits).
                Passed::Held | Passed::Waiting(_) => Vec::new(),
                Passed::Stop(verdict) => return verdict,
            };
        }
        trailers = match stage.trailers(request, trailers).await {
            Ok(t) => t,
            Err(verdict) => return verdict,
        };
        if let Some(held) = stage.held.take() {
            data = held;
        }
    }
    BodyVerdict::Trailers { data, trailers }
}

impl Stage {
    /// This stage's trailers callback, waiting out a PAUSE; the trailers as it left them.
    async fn trailers(&mut self, request: bool, trailers: Headers) -> Result<Headers, BodyVerdict> {
        let rx = match self.call_trailers(request, &trailers) {
            Called::Done(result) => return result,
            Called::Paused(rx) => rx,
        };
        if let Err(detail) = wait_signal(&self.slot, rx, self.id, request).await {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.generation == self.generation {
                self.held = slot.vm.as_mut().and_then(|vm| vm.take_held_body(self.id));
            }
            drop(slot);
            return self.failed(detail, trailers);
        }
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let same_vm = slot.generation == self.generation;
        let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed() && same_vm) else {
            drop(slot);
            return self.failed("its VM failed while the stream was paused".into(), trailers);
        };
        let outcome = vm.take_stream_outcome(self.id);
        let now = vm.stream_trailers(self.id, request);
        if let Some(body) = vm.take_held_body(self.id) {
            self.held = Some(body);
        }
        drop(slot);
        if let Some(local) = outcome.local_response {
            return Err(BodyVerdict::Respond(local));
        }
        if outcome.close {
            return Err(self.closed());
        }
        match now {
            Some(t) => Ok(t),
            None => self.failed("the stream's context is gone".into(), trailers),
        }
    }

    /// Calls the trailers callback; on PAUSE, registers for the resume signal.
    fn call_trailers(&mut self, request: bool, trailers: &Headers) -> Called {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let same_vm = slot.generation == self.generation;
        let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed() && same_vm) else {
            drop(slot);
            return Called::Done(self.failed("its VM failed during this request".into(), trailers.clone()));
        };
        vm.set_tag(&self.tag);
        let result = vm.on_trailers(self.id, request, trailers.clone(), self.held.take());
        // Paused, the filter keeps the body through the pause; otherwise it goes on as the filter left it.
        let paused =
            matches!(&result, Ok((o, _)) if o.action != Action::Continue && o.local_response.is_none() && !o.close);
        if !paused {
            self.held = vm.take_held_body(self.id);
        }
        slot.wake();
        let (outcome, out) = match result {
            Ok(ok) => ok,
            Err(e) => {
                slot.note_failure();
                drop(slot);
                tracing::error!(filter = %self.name, error = %e, "filter failed in a trailers callback");
                return Called::Done(self.failed(e.summary(), trailers.clone()));
            }
        };
        if let Some(local) = outcome.local_response {
            return Called::Done(Err(BodyVerdict::Respond(local)));
        }
        if outcome.close {
            return Called::Done(Err(self.closed()));
        }
        match outcome.action {
            Action::Continue => Called::Done(Ok(out)),
            _ => {
                let (tx, rx) = oneshot::channel();
                slot.waiters.insert((self.id, request), tx);
                Called::Paused(rx)
            }
        }
    }

    /// Tells this stage's context which trailers went on.
    fn record(&self, request: bool, trailers: &Headers) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.generation != self.generation {
            return;
        }
        if let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed()) {
            vm.set_stream_trailers(self.id, request, trailers.clone());
        }
    }
}

/// A trailers callback's result: decided, or paused until this signal.
enum Called {
    Done(Result<Headers, BodyVerdict>),
    Paused(oneshot::Receiver<()>),
}
