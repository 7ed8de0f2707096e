//! The Anthropic Messages protocol: `message` documents, the `event:`-named stream, and
//! `{"type": "error", "error": {...}}` errors. Documents are structs so their keys come in Anthropic's order.

use super::{answer, last_user_text, text_of, to_json, token_limit, well_formed, words, Answer, Reply};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// The answer to a Messages `req` whose body hashed to `hash`; `Err` is a 400's message.
pub(super) fn respond(req: &Value, hash: &str) -> Result<Reply, String> {
    let model = match req.get("model") {
        None | Some(Value::Null) => return Err("model: Field required".into()),
        Some(m) => m.as_str().ok_or("model: Input should be a valid string")?,
    };
    let limit = match req.get("max_tokens") {
        None | Some(Value::Null) => return Err("max_tokens: Field required".into()),
        limit => {
            token_limit(limit).map_err(|()| "max_tokens: Input should be an integer greater than or equal to 1")?
        }
    };
    let messages = match req.get("messages") {
        None | Some(Value::Null) => return Err("messages: Field required".into()),
        Some(Value::Array(m)) if m.is_empty() => return Err("messages: at least one message is required".into()),
        Some(Value::Array(m)) if well_formed(m) => m,
        Some(_) => return Err("messages: Input should be a valid list of objects with a role".into()),
    };
    let system = words(&text_of(req.get("system")));
    let prompt_tokens = system + messages.iter().map(|m| words(&text_of(m.get("content")))).sum::<u64>();
    let answer = answer(&last_user_text(messages), prompt_tokens, limit);
    let id = format!("msg_demo_{hash}");
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        Ok(Reply::Events(events(&id, model, &answer)))
    } else {
        Ok(Reply::Json(to_json(&message(&id, model, &answer, true))))
    }
}

/// A `message` document: the whole answer, or its empty start in `message_start`.
#[derive(Debug, Serialize)]
struct Message<'a> {
    /// `msg_demo_<hash>`.
    id: &'a str,
    /// `message`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `assistant`.
    role: &'static str,
    /// The request's model.
    model: &'a str,
    /// The text block; empty at a stream's start.
    content: Vec<Text<'a>>,
    /// `end_turn` or `max_tokens`; null at a stream's start.
    stop_reason: Option<&'static str>,
    /// Always null.
    stop_sequence: Option<()>,
    /// The token counts.
    usage: Usage,
}

/// A `text` content block.
#[derive(Debug, Serialize)]
struct Text<'a> {
    /// `text` (`text_delta` in a delta).
    #[serde(rename = "type")]
    kind: &'static str,
    /// The text.
    text: &'a str,
}

/// `usage`.
#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    /// Words of the system prompt and the messages.
    input_tokens: u64,
    /// Words of the reply (1 at a stream's start, as Anthropic sends).
    output_tokens: u64,
}

/// A stream event's data, `type` first.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    /// The message, empty.
    MessageStart {
        /// The message.
        message: Message<'a>,
    },
    /// Keeps the connection busy.
    Ping,
    /// The text block opens.
    ContentBlockStart {
        /// Always 0.
        index: u32,
        /// An empty text block.
        content_block: Text<'a>,
    },
    /// A word.
    ContentBlockDelta {
        /// Always 0.
        index: u32,
        /// The `text_delta`.
        delta: Text<'a>,
    },
    /// The text block closes.
    ContentBlockStop {
        /// Always 0.
        index: u32,
    },
    /// Why the message stopped, and its output tokens.
    MessageDelta {
        /// The stop reason.
        delta: Stop,
        /// The output tokens.
        usage: OutputTokens,
    },
    /// The end.
    MessageStop,
}

impl Event<'_> {
    /// The `event:` name, which is the `type`.
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::Ping => "ping",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }

    /// The event with its `event:` and `data:` lines.
    fn sse(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.name(), to_json(self))
    }
}

/// The `delta` of `message_delta`.
#[derive(Debug, Serialize)]
struct Stop {
    /// `end_turn` or `max_tokens`.
    stop_reason: &'static str,
    /// Always null.
    stop_sequence: Option<()>,
}

/// The `usage` of `message_delta`.
#[derive(Debug, Serialize)]
struct OutputTokens {
    /// Words of the reply.
    output_tokens: u64,
}

/// `end_turn`, or `max_tokens` when the limit cut the reply.
fn stop_reason(answer: &Answer) -> &'static str {
    if answer.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// The `message` document: whole when `done`, else as `message_start` carries it.
fn message<'a>(id: &'a str, model: &'a str, answer: &'a Answer, done: bool) -> Message<'a> {
    Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content: if done { vec![Text { kind: "text", text: &answer.text }] } else { vec![] },
        stop_reason: done.then(|| stop_reason(answer)),
        stop_sequence: None,
        usage: Usage {
            input_tokens: answer.prompt_tokens,
            output_tokens: if done { answer.completion_tokens } else { 1 },
        },
    }
}

/// The stream: message_start, ping, content_block_start, a content_block_delta per word, content_block_stop,
/// message_delta, message_stop.
fn events(id: &str, model: &str, answer: &Answer) -> Vec<String> {
    let mut events = vec![
        Event::MessageStart { message: message(id, model, answer, false) },
        Event::Ping,
        Event::ContentBlockStart { index: 0, content_block: Text { kind: "text", text: "" } },
    ];
    events.extend(
        answer
            .deltas
            .iter()
            .map(|text| Event::ContentBlockDelta { index: 0, delta: Text { kind: "text_delta", text } }),
    );
    events.extend([
        Event::ContentBlockStop { index: 0 },
        Event::MessageDelta {
            delta: Stop { stop_reason: stop_reason(answer), stop_sequence: None },
            usage: OutputTokens { output_tokens: answer.completion_tokens },
        },
        Event::MessageStop,
    ]);
    events.iter().map(Event::sse).collect()
}

/// An error document.
#[derive(Debug, Serialize)]
struct ErrorDoc<'a> {
    /// `error`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// What went wrong.
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    /// `invalid_request_error`, `not_found_error`, `request_too_large`, `rate_limit_error`, `api_error` or
    /// `overloaded_error`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// In words.
    message: &'a str,
}

/// `{"type": "error", "error": {"type", "message"}}` for `status`.
pub(super) fn error_body(status: StatusCode, message: &str) -> String {
    let kind = match status.as_u16() {
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    to_json(&ErrorDoc { kind: "error", error: ErrorDetail { kind, message } })
}
