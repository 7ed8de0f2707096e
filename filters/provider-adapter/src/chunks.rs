//! The client's stream: [`StreamEvent`]s written as OpenAI `chat.completion.chunk` SSE frames.

use serde::Serialize;
use serde_json::{json, Value};

use crate::ir::{FinishReason, StreamEvent, Usage};
use crate::openai::usage_json;

/// One chunk, serialized without building a JSON tree (the hot path of a stream).
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChunkChoice<'a>; 1],
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// A chunk's `delta`: only the fields that are set.
#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Writes [`StreamEvent`]s as OpenAI `chat.completion.chunk` SSE frames, keeping the stream's state: one id
/// and `created` for every chunk, `role` on the first chunk, the finish reason, the usage (sent last when the
/// client asked for it), and `data: [DONE]` exactly once.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    /// The stream's id (the provider's when it gives one at the start).
    pub id: String,
    created: u64,
    model: String,
    include_usage: bool,
    role_sent: bool,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    finished: bool,
    tool_seen: bool,
    /// Whether the stream is over (`[DONE]` written).
    pub done: bool,
}

impl ChunkWriter {
    /// A writer for one stream.
    pub fn new(id: String, created: u64, model: String, include_usage: bool) -> ChunkWriter {
        ChunkWriter {
            id,
            created,
            model,
            include_usage,
            role_sent: false,
            usage: None,
            finish: None,
            finished: false,
            tool_seen: false,
            done: false,
        }
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn chunk(&mut self, out: &mut Vec<u8>, mut delta: Delta<'_>, finish: Option<FinishReason>) {
        if !self.role_sent {
            delta.role = Some("assistant");
            self.role_sent = true;
        }
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice { index: 0, delta, logprobs: None, finish_reason: finish.map(FinishReason::as_str) }],
        };
        out.extend_from_slice(b"data: ");
        if let Err(error) = serde_json::to_writer(&mut *out, &chunk) {
            log::error!("provider-adapter: a chunk did not serialize: {error}");
            // strings and numbers: never
        }
        out.extend_from_slice(b"\n\n");
    }

    /// Appends the frames for `event` to `out`.
    pub fn write(&mut self, event: StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id } => {
                if let Some(id) = id {
                    if !self.role_sent {
                        self.id = id;
                    }
                }
            }
            StreamEvent::Text(text) => {
                if !text.is_empty() {
                    self.chunk(out, Delta { content: Some(&text), ..Delta::default() }, None);
                }
            }
            StreamEvent::Reasoning(text) => {
                if !text.is_empty() {
                    self.chunk(out, Delta { reasoning_content: Some(&text), ..Delta::default() }, None);
                }
            }
            StreamEvent::ToolStart { index, id, name } => {
                self.tool_seen = true;
                let call = ToolDelta {
                    index,
                    id: Some(&id),
                    kind: Some("function"),
                    function: FunctionDelta { name: Some(&name), arguments: "" },
                };
                self.chunk(out, Delta { tool_calls: Some([call]), ..Delta::default() }, None);
            }
            StreamEvent::ToolArgs { index, arguments } => {
                if !arguments.is_empty() {
                    let call = ToolDelta {
                        index,
                        id: None,
                        kind: None,
                        function: FunctionDelta { name: None, arguments: &arguments },
                    };
                    self.chunk(out, Delta { tool_calls: Some([call]), ..Delta::default() }, None);
                }
            }
            StreamEvent::Finish(reason) => {
                // A stop after streamed tool calls is a tool_calls finish (Gemini sends STOP).
                let reason =
                    if reason == FinishReason::Stop && self.tool_seen { FinishReason::ToolCalls } else { reason };
                self.finish = Some(reason);
            }
            StreamEvent::Usage(usage) => self.usage = Some(usage),
            StreamEvent::Error { kind, message } => {
                let error = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
                frame(out, &error);
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.done = true;
            }
            StreamEvent::Done => self.end(out),
        }
    }

    /// Ends the stream: the finish chunk, the usage chunk if asked for, `[DONE]`.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if !self.finished {
            self.finished = true;
            let reason =
                self.finish.unwrap_or(if self.tool_seen { FinishReason::ToolCalls } else { FinishReason::Stop });
            self.chunk(out, Delta::default(), Some(reason));
        }
        if self.include_usage {
            let usage = self.usage.unwrap_or_default();
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_json(&usage),
            });
            frame(out, &chunk);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }
}

/// One SSE frame: `data: <json>` and a blank line.
pub fn frame(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
