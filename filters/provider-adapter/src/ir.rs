//! The internal representation every translation goes through: the client's request is parsed into
//! [`Request`], each provider encodes it and decodes its answer into [`Response`] or a sequence of
//! [`StreamEvent`]s, and [`crate::openai`] writes those out for the client.

use serde_json::{Map, Value};

/// One chat request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The provider's model (after mapping).
    pub model: String,
    /// The model name the client asked for (answers carry it).
    pub client_model: String,
    /// System and developer messages, in order.
    pub system: Vec<String>,
    /// The conversation (system messages lifted out).
    pub messages: Vec<Message>,
    /// Function tools.
    pub tools: Vec<Tool>,
    /// The tool choice, if given.
    pub tool_choice: Option<ToolChoice>,
    /// `parallel_tool_calls` as given.
    pub parallel_tool_calls: Option<bool>,
    /// JSON mode or a schema.
    pub response_format: Option<ResponseFormat>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
    /// `max_completion_tokens` ?? `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `stop`, always as a list.
    pub stop: Vec<String>,
    /// `seed`.
    pub seed: Option<i64>,
    /// `presence_penalty`.
    pub presence_penalty: Option<f64>,
    /// `frequency_penalty`.
    pub frequency_penalty: Option<f64>,
    /// `n`.
    pub n: Option<u64>,
    /// `user`.
    pub user: Option<String>,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Other OpenAI fields, passed on to OpenAI-family providers only (in order of appearance).
    pub extra: Map<String, Value>,
}

/// A role in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// One conversation message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// Text and image parts (empty for an assistant turn with only tool calls).
    pub content: Vec<Part>,
    /// Whether the content was a plain string (kept as one for OpenAI-family providers).
    pub plain: bool,
    /// The assistant's tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    pub tool_call_id: Option<String>,
    /// `name` as given.
    pub name: Option<String>,
    /// Its index in the client's `messages` (for error paths).
    pub index: usize,
}

impl Message {
    /// The text parts joined.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let Part::Text(text) = part {
                out.push_str(text);
            }
        }
        out
    }
}

/// A content part.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image (or a PDF given as a data URI).
    Image(Image),
}

/// An image part.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// Inline bytes from a data URI: media type and base64 data.
    Data {
        /// e.g. `image/png`.
        media_type: String,
        /// Base64, as given.
        data: String,
    },
    /// An http(s) URL.
    Url(String),
}

/// A tool call the assistant made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Its id.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments, a JSON text.
    pub arguments: String,
}

/// A function tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its JSON schema (`parameters`), `{"type":"object"}` when absent.
    pub parameters: Value,
    /// `strict`, when given.
    pub strict: Option<bool>,
}

/// The tool choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool.
    None,
    /// Some tool.
    Required,
    /// This function.
    Function(String),
}

/// JSON output.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Plain text (the default, as given).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON following a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The schema.
        schema: Value,
        /// `strict`.
        strict: Option<bool>,
    },
}

/// Why generation stopped, in OpenAI's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The token limit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Filtered.
    ContentFilter,
}

impl FinishReason {
    /// OpenAI's word.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// Token usage, one record whatever the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, cached ones included (OpenAI's `prompt_tokens`).
    pub input: u64,
    /// Input tokens read from a cache.
    pub cached: u64,
    /// Output tokens, reasoning included.
    pub output: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
}

/// A non-stream answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The answer's id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name reported.
    pub model: String,
    /// The choices.
    pub choices: Vec<Choice>,
    /// Usage, when the provider gave it.
    pub usage: Option<Usage>,
}

/// One choice of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Its index.
    pub index: u32,
    /// The text (`None`: null content).
    pub content: Option<String>,
    /// Reasoning text, as the `reasoning_content` extension.
    pub reasoning: Option<String>,
    /// Tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish_reason: Option<FinishReason>,
}

/// One step of a streamed answer, before it becomes OpenAI chunks.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer's id (and model) became known.
    Start {
        /// The provider's id, if any.
        id: Option<String>,
    },
    /// Text.
    Text(String),
    /// Reasoning text.
    Reasoning(String),
    /// A tool call begins (`index` counts tool calls from 0).
    ToolStart {
        /// The tool-call index.
        index: u32,
        /// Its id.
        id: String,
        /// The function name.
        name: String,
    },
    /// More arguments for tool call `index`.
    ToolArgs {
        /// The tool-call index.
        index: u32,
        /// The JSON text fragment.
        arguments: String,
    },
    /// Why it stopped.
    Finish(FinishReason),
    /// Usage so far (replaces what came before).
    Usage(Usage),
    /// An error inside the stream: ends it.
    Error {
        /// OpenAI's error type.
        kind: String,
        /// The message.
        message: String,
    },
    /// The provider's stream is over.
    Done,
}
