//! Bodies through the chain: each data chunk goes through the filters' body callbacks (request: chain
//! order; response: reverse), as it arrives. A filter that answers PAUSE holds the chunk; later chunks are
//! appended and its callback runs again with the accumulated size, until it continues or the stream ends
//! (§6.2 of the ABI reference). A body that ends without trailers after a callback with
//! `end_of_stream = false` gets one more, empty, `end_of_stream = true` callback.

use super::chain::ChainStreams;
use super::{Attachment, VmSlot};
use crate::abi::stream::LocalResponse;
use crate::config::FailurePolicy;
use std::sync::{Arc, Mutex};
use weir_sdk::abi::Action;

/// Limit on what a pausing filter may hold, per direction and filter. Beyond it the request gets 413
/// (request side) or the stream fails (response side), as Envoy does with its buffer limit.
pub const MAX_BUFFERED_BODY: usize = 16 << 20;

struct Stage {
    slot: Arc<Mutex<VmSlot>>,
    generation: u64,
    id: u32,
    name: Arc<str>,
    failure_policy: FailurePolicy,
    held: Option<Vec<u8>>,
}

/// What happened to a chunk.
pub enum BodyVerdict {
    /// Pass these bytes on (possibly empty while a filter holds the body).
    Data(Vec<u8>),
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

/// The body callbacks of one direction of one request.
pub struct BodyChain {
    stages: Vec<Stage>,
    request: bool,
}

impl BodyChain {
    /// The chain for one direction: the filters that opened a context in the headers phase.
    pub fn new(chain: &[Attachment], streams: &ChainStreams, request: bool) -> Option<BodyChain> {
        let mut stages: Vec<Stage> = chain
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let (slot, generation, id) = streams.context(i)?;
                Some(Stage { slot, generation, id, name: a.name.clone(), failure_policy: a.failure_policy, held: None })
            })
            .collect();
        if !request {
            stages.reverse();
        }
        (!stages.is_empty()).then_some(BodyChain { stages, request })
    }

    /// Runs one chunk through the chain.
    pub fn chunk(&mut self, data: Vec<u8>, end_of_stream: bool) -> BodyVerdict {
        let mut data = data;
        for stage in &mut self.stages {
            let input = match stage.held.take() {
                Some(mut held) => {
                    held.extend_from_slice(&data);
                    held
                }
                None => data,
            };
            if input.len() > MAX_BUFFERED_BODY {
                return BodyVerdict::Fail {
                    filter: stage.name.clone(),
                    detail: format!("the filter held more than {MAX_BUFFERED_BODY} bytes of body"),
                    too_large: true,
                };
            }
            let mut slot = stage.slot.lock().unwrap_or_else(|e| e.into_inner());
            let same_vm = slot.generation == stage.generation;
            let result = match slot.vm.as_mut().filter(|v| !v.failed() && same_vm) {
                Some(vm) => {
                    let r = vm.on_body(stage.id, self.request, input.clone(), end_of_stream);
                    slot.wake();
                    r
                }
                None => {
                    drop(slot);
                    match stage.failure_policy {
                        FailurePolicy::FailOpen => {
                            data = input;
                            continue;
                        }
                        FailurePolicy::FailClosed => {
                            return BodyVerdict::Fail {
                                filter: stage.name.clone(),
                                detail: "its VM failed during this request".into(),
                                too_large: false,
                            }
                        }
                    }
                }
            };
            match result {
                Err(e) => {
                    slot.note_failure();
                    drop(slot);
                    tracing::error!(filter = %stage.name, error = %e, "filter failed in a body callback");
                    match stage.failure_policy {
                        FailurePolicy::FailOpen => data = input,
                        FailurePolicy::FailClosed => {
                            return BodyVerdict::Fail {
                                filter: stage.name.clone(),
                                detail: e.summary(),
                                too_large: false,
                            }
                        }
                    }
                }
                Ok((outcome, out)) => {
                    drop(slot);
                    if let Some(local) = outcome.local_response {
                        return BodyVerdict::Respond(local);
                    }
                    if outcome.close {
                        return BodyVerdict::Fail {
                            filter: stage.name.clone(),
                            detail: "the filter closed the stream".into(),
                            too_large: false,
                        };
                    }
                    match outcome.action {
                        Action::Continue => data = out,
                        _ if end_of_stream => data = out, // nothing more will come: what it holds goes on
                        _ => {
                            stage.held = Some(out);
                            return BodyVerdict::Data(Vec::new());
                        }
                    }
                }
            }
        }
        BodyVerdict::Data(data)
    }
}
