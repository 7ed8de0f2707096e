//! Running a route's chain on one request: request callbacks in chain order, response callbacks in
//! reverse, and `on_log` / `on_done` / `on_delete` for every context when the stream ends.

use super::{Attachment, VmSlot, WorkerFilters};
use crate::abi::stream::{LocalResponse, Pairs, RequestInfo};
use crate::config::FailurePolicy;
use std::sync::{Arc, Mutex};
use weir_sdk::abi::Action;

/// The HTTP contexts one request opened; each is ended exactly once, when the stream ends.
#[derive(Default)]
pub struct ChainStreams {
    contexts: Vec<Option<OpenContext>>,
}

struct OpenContext {
    slot: Arc<Mutex<VmSlot>>,
    generation: u64,
    id: u32,
}

impl ChainStreams {
    /// The context attachment `i` opened, if any: its slot, the VM generation, and the context id.
    pub(super) fn context(&self, i: usize) -> Option<(Arc<Mutex<VmSlot>>, u64, u32)> {
        self.contexts.get(i)?.as_ref().map(|c| (c.slot.clone(), c.generation, c.id))
    }

    /// Ends every open context (`on_log`, `on_done`, `on_delete`), last filter first.
    pub fn finish(&mut self) {
        for ctx in self.contexts.drain(..).rev().flatten() {
            let mut slot = ctx.slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.generation != ctx.generation {
                continue; // the VM was replaced: its contexts are gone with it
            }
            if let Some(vm) = slot.vm.as_mut().filter(|v| !v.failed()) {
                if let Err(e) = vm.finish_http_context(ctx.id) {
                    tracing::error!(error = %e, "filter failed at the end of a stream");
                    slot.note_failure();
                }
            }
        }
    }
}

impl Drop for ChainStreams {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What the request phase decided.
pub enum RequestVerdict {
    /// Forward the request with these headers.
    Continue(Pairs),
    /// Answer with this local response; response callbacks run for filters before `upto` (exclusive).
    Respond {
        /// The response.
        response: LocalResponse,
        /// Filters `0..upto` see the local response in their response callbacks.
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
    Continue(Pairs),
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

enum Step {
    Continue(Pairs),
    Respond(LocalResponse),
    Paused,
    Fail(String),
}

/// Runs one headers callback of attachment `i`, opening its context on first use.
#[allow(clippy::too_many_arguments)]
fn step(
    filters: &WorkerFilters,
    info: &Option<Arc<RequestInfo>>,
    a: &Attachment,
    i: usize,
    streams: &mut ChainStreams,
    headers: Pairs,
    eos: bool,
    request: bool,
) -> Step {
    let mut slot = a.slot.lock().unwrap_or_else(|e| e.into_inner());
    let generation = slot.generation;
    let root = slot.roots.get(a.root).copied();
    let Some(vm) = slot.ready(filters.plan()) else {
        return Step::Fail("its VM failed and is waiting to be replaced".into());
    };
    if streams.contexts.len() <= i {
        streams.contexts.resize_with(i + 1, || None);
    }
    let id = match &streams.contexts[i] {
        Some(c) if c.generation == generation => c.id,
        Some(_) => return Step::Fail("its VM was replaced during this request".into()),
        None => {
            let Some(root) = root else { return Step::Fail("no root context".into()) };
            vm.set_tag(a.tag.clone());
            match vm.create_http_context(root, info.clone()) {
                Ok(id) => {
                    streams.contexts[i] = Some(OpenContext { slot: a.slot.clone(), generation, id });
                    id
                }
                Err(e) => {
                    slot.note_failure();
                    return Step::Fail(e.to_string());
                }
            }
        }
    };
    vm.set_tag(a.tag.clone());
    let result =
        if request { vm.on_request_headers(id, headers, eos) } else { vm.on_response_headers(id, headers, eos) };
    match result {
        Err(e) => {
            tracing::error!(filter = %a.tag, error = %e, "filter failed");
            slot.note_failure();
            Step::Fail(e.to_string())
        }
        Ok((outcome, headers)) => {
            if let Some(local) = outcome.local_response {
                return Step::Respond(local);
            }
            if outcome.close {
                return Step::Fail("the filter closed the stream".into());
            }
            match outcome.action {
                Action::Continue => Step::Continue(headers),
                _ => Step::Paused,
            }
        }
    }
}

/// Runs `on_request_headers` through the chain.
pub fn run_request_headers(
    filters: &WorkerFilters,
    info: &Option<Arc<RequestInfo>>,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    mut headers: Pairs,
    eos: bool,
) -> RequestVerdict {
    for (i, a) in chain.iter().enumerate() {
        let before = headers.clone();
        match step(filters, info, a, i, streams, headers, eos, true) {
            Step::Continue(h) => headers = h,
            Step::Respond(response) => return RequestVerdict::Respond { response, upto: i + 1 },
            Step::Paused => {
                return RequestVerdict::Fail {
                    filter: a.name.clone(),
                    detail: "the filter paused the request, and pausing across callbacks is not supported yet".into(),
                }
            }
            Step::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => headers = before,
                FailurePolicy::FailClosed => return RequestVerdict::Fail { filter: a.name.clone(), detail },
            },
        }
    }
    RequestVerdict::Continue(headers)
}

/// Runs `on_response_headers` through filters `0..upto`, last first.
pub fn run_response_headers(
    filters: &WorkerFilters,
    chain: &[Attachment],
    streams: &mut ChainStreams,
    mut headers: Pairs,
    eos: bool,
    upto: usize,
) -> ResponseVerdict {
    for (i, a) in chain.iter().enumerate().take(upto).rev() {
        if streams.contexts.get(i).is_none_or(Option::is_none) {
            continue; // this filter never saw the request (an earlier one answered or failed open)
        }
        let before = headers.clone();
        match step(filters, &None, a, i, streams, headers, eos, false) {
            Step::Continue(h) => headers = h,
            Step::Respond(response) => return ResponseVerdict::Respond(response),
            Step::Paused => {
                return ResponseVerdict::Fail {
                    filter: a.name.clone(),
                    detail: "the filter paused the response, and pausing across callbacks is not supported yet".into(),
                }
            }
            Step::Fail(detail) => match a.failure_policy {
                FailurePolicy::FailOpen => headers = before,
                FailurePolicy::FailClosed => return ResponseVerdict::Fail { filter: a.name.clone(), detail },
            },
        }
    }
    ResponseVerdict::Continue(headers)
}
