//! A filter that paused in its final body callback (the last chunk, no trailers): the body waits, whole, as
//! that filter's body buffer until the filter resumes the stream (`proxy_continue_stream`, from a callout answer,
//! a tick or another stream) or answers it, up to the same deadline as a paused headers callback; then the body
//! as the filter left it goes on through the next filters' final body callbacks (each of which may pause the
//! same way). Envoy does the same with a filter that answers StopIterationAndBuffer at the end of the stream.

use super::{trailers, BodyVerdict, Passed, Stage};
use crate::abi::stream::Headers;
use crate::filter::chain::wait_signal;
use tokio::sync::oneshot;

/// Waits for stage `from`'s resume, then runs the body through the stages after it, up to `to` (exclusive);
/// hands the stages back with the verdict.
pub(super) async fn run(
    mut stages: Vec<Stage>,
    request: bool,
    from: usize,
    to: usize,
    rx: oneshot::Receiver<()>,
) -> (Vec<Stage>, BodyVerdict) {
    let to = to.min(stages.len());
    let (mut at, mut rx) = (from, rx);
    loop {
        let (mut data, created) = match stages[at].resumed(request, rx).await {
            Ok(resumed) => resumed,
            Err(verdict) => return (stages, verdict),
        };
        if let Some(trailers) = created {
            // It created trailers while it held the body: the rest of the chain sees the body, then them.
            return trailers::run_with(stages, request, trailers, at + 1, data).await;
        }
        let mut next = None;
        for (i, stage) in stages.iter_mut().enumerate().take(to).skip(at + 1) {
            match stage.body(request, data, true) {
                Passed::On(out, None) => data = out,
                Passed::On(out, Some(trailers)) => {
                    return trailers::run_with(stages, request, trailers, i + 1, out).await;
                }
                Passed::Waiting(signal) => {
                    next = Some((i, signal));
                    data = Vec::new();
                    break;
                }
                // A final callback never holds without waiting; nothing goes on.
                Passed::Held => return (stages, BodyVerdict::Data(Vec::new())),
                Passed::Stop(verdict) => return (stages, verdict),
            }
        }
        match next {
            Some((i, signal)) => (at, rx) = (i, signal),
            None => return (stages, BodyVerdict::Data(data)),
        }
    }
}

impl Stage {
    /// Waits for this stage's resume; the body it held as it left it, and trailers it created meanwhile.
    async fn resumed(
        &mut self,
        request: bool,
        rx: oneshot::Receiver<()>,
    ) -> Result<(Vec<u8>, Option<Headers>), BodyVerdict> {
        let waited = wait_signal(&self.slot, rx, self.id, request).await;
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let same_vm = slot.generation == self.generation;
        let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed() && same_vm) else {
            drop(slot);
            return self.failed("its VM failed while the stream was paused".into(), (Vec::new(), None));
        };
        let body = vm.take_held_body(self.id).unwrap_or_default();
        if let Err(detail) = waited {
            drop(slot);
            return self.failed(detail, (body, None));
        }
        let outcome = vm.take_stream_outcome(self.id);
        let created = vm.stream_trailers(self.id, request);
        drop(slot);
        if let Some(local) = outcome.local_response {
            return Err(BodyVerdict::Respond(local));
        }
        if outcome.close {
            return Err(self.closed());
        }
        Ok((body, created))
    }
}
