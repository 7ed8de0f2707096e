//! Between the two answer shapes: [`Aggregator`] folds stream events into one answer (a non-stream client
//! behind a streaming upstream), [`events`] unfolds an answer into stream events (a streaming client behind
//! a whole answer).

use crate::ir::{Choice, FinishReason, Response, StreamEvent, ToolCall, Usage};

/// Folds [`StreamEvent`]s into a [`Response`].
#[derive(Debug, Default)]
pub struct Aggregator {
    id: Option<String>,
    text: Option<String>,
    reasoning: Option<String>,
    tools: Vec<(u32, ToolCall)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// The in-band error, if the stream carried one.
    pub error: Option<(String, String)>,
}

impl Aggregator {
    /// Takes one event.
    pub fn push(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Start { id } => {
                if self.id.is_none() {
                    self.id = id;
                }
            }
            StreamEvent::Text(t) => self.text.get_or_insert_with(String::new).push_str(&t),
            StreamEvent::Reasoning(t) => self.reasoning.get_or_insert_with(String::new).push_str(&t),
            StreamEvent::ToolStart { index, id, name } => {
                self.tools.push((index, ToolCall { id, name, arguments: String::new() }));
            }
            StreamEvent::ToolArgs { index, arguments } => {
                if let Some((_, call)) = self.tools.iter_mut().find(|(i, _)| *i == index) {
                    call.arguments.push_str(&arguments);
                }
            }
            StreamEvent::Finish(reason) => self.finish = Some(reason),
            StreamEvent::Usage(usage) => self.usage = Some(usage),
            StreamEvent::Error { kind, message } => {
                if self.error.is_none() {
                    self.error = Some((kind, message));
                }
            }
            StreamEvent::Done => {}
        }
    }

    /// The answer, with `id` when the stream gave none.
    pub fn finish(self, id: &str, created: u64, model: &str) -> Response {
        let tool_calls: Vec<ToolCall> = self.tools.into_iter().map(|(_, call)| call).collect();
        let mut finish = self.finish.unwrap_or(FinishReason::Stop);
        if finish == FinishReason::Stop && !tool_calls.is_empty() {
            finish = FinishReason::ToolCalls;
        }
        Response {
            id: self.id.unwrap_or_else(|| id.to_string()),
            created,
            model: model.to_string(),
            choices: vec![Choice {
                index: 0,
                content: self.text,
                reasoning: self.reasoning,
                tool_calls,
                finish_reason: Some(finish),
            }],
            usage: self.usage,
        }
    }
}

/// The events that stream `response`'s first choice.
pub fn events(response: &Response) -> Vec<StreamEvent> {
    let mut out = vec![StreamEvent::Start { id: Some(response.id.clone()) }];
    if let Some(choice) = response.choices.first() {
        if let Some(r) = &choice.reasoning {
            out.push(StreamEvent::Reasoning(r.clone()));
        }
        if let Some(t) = &choice.content {
            out.push(StreamEvent::Text(t.clone()));
        }
        for (i, call) in choice.tool_calls.iter().enumerate() {
            let index = i as u32;
            out.push(StreamEvent::ToolStart { index, id: call.id.clone(), name: call.name.clone() });
            out.push(StreamEvent::ToolArgs { index, arguments: call.arguments.clone() });
        }
        if let Some(reason) = choice.finish_reason {
            out.push(StreamEvent::Finish(reason));
        }
    }
    if let Some(usage) = response.usage {
        out.push(StreamEvent::Usage(usage));
    }
    out.push(StreamEvent::Done);
    out
}
