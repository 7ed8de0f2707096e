//! The OpenAI Chat Completions protocol: `chat.completion` documents, `chat.completion.chunk` streams, and
//! `{"error": {...}}` errors. Documents are structs so their keys come in OpenAI's order.

use super::{answer, last_user_text, text_of, to_json, token_limit, well_formed, words, Answer, Reply, CREATED};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// The answer to a Chat Completions `req` whose body hashed to `hash`; `Err` is a 400's message.
pub(super) fn respond(req: &Value, hash: &str) -> Result<Reply, String> {
    let model = req.get("model").and_then(Value::as_str).ok_or("you must provide a model parameter")?;
    let messages = match req.get("messages") {
        None | Some(Value::Null) => return Err("Missing required parameter: 'messages'.".into()),
        Some(Value::Array(m)) if m.is_empty() => return Err("Invalid 'messages': empty array.".into()),
        Some(Value::Array(m)) if well_formed(m) => m,
        Some(_) => return Err("Invalid 'messages': expected an array of objects with a 'role'.".into()),
    };
    let limit = req.get("max_completion_tokens").or_else(|| req.get("max_tokens"));
    let limit = token_limit(limit).map_err(|()| "Invalid 'max_tokens': expected an integer of at least 1.")?;
    let prompt_tokens = messages.iter().map(|m| words(&text_of(m.get("content")))).sum();
    let answer = answer(&last_user_text(messages), prompt_tokens, limit);
    let id = format!("chatcmpl-demo-{hash}");
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
        Ok(Reply::Events(events(&id, model, &answer, include_usage)))
    } else {
        Ok(Reply::Json(to_json(&completion(&id, model, &answer))))
    }
}

/// `usage`.
#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    /// Words of the prompt.
    prompt_tokens: u64,
    /// Words of the reply.
    completion_tokens: u64,
    /// Their sum.
    total_tokens: u64,
}

/// A `chat.completion` document.
#[derive(Debug, Serialize)]
struct Completion<'a> {
    /// `chatcmpl-demo-<hash>`.
    id: &'a str,
    /// `chat.completion`.
    object: &'static str,
    /// [`CREATED`].
    created: u64,
    /// The request's model.
    model: &'a str,
    /// The one choice.
    choices: [Choice<'a>; 1],
    /// The token counts.
    usage: Usage,
}

/// A completion's choice.
#[derive(Debug, Serialize)]
struct Choice<'a> {
    /// Always 0.
    index: u32,
    /// The assistant message.
    message: Message<'a>,
    /// Always null.
    logprobs: Option<()>,
    /// `stop` or `length`.
    finish_reason: &'static str,
}

/// The assistant message of a completion.
#[derive(Debug, Serialize)]
struct Message<'a> {
    /// `assistant`.
    role: &'static str,
    /// The reply.
    content: &'a str,
    /// Always null.
    refusal: Option<()>,
}

/// A `chat.completion.chunk` document.
#[derive(Debug, Serialize)]
struct Chunk<'a> {
    /// The completion's id.
    id: &'a str,
    /// `chat.completion.chunk`.
    object: &'static str,
    /// [`CREATED`].
    created: u64,
    /// The request's model.
    model: &'a str,
    /// One choice, none in the usage chunk.
    choices: Vec<ChunkChoice<'a>>,
    /// With `include_usage`: null, but the usage in the last chunk; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

/// A chunk's choice.
#[derive(Debug, Serialize)]
struct ChunkChoice<'a> {
    /// Always 0.
    index: u32,
    /// What the chunk adds.
    delta: Delta<'a>,
    /// Always null.
    logprobs: Option<()>,
    /// Null but in the finish chunk.
    finish_reason: Option<&'static str>,
}

/// A chunk's delta: the role in the first, a word in the next ones, nothing in the finish chunk.
#[derive(Debug, Default, Serialize)]
struct Delta<'a> {
    /// `assistant`, in the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// The text added.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

/// `stop`, or `length` when the limit cut the reply.
fn finish_reason(answer: &Answer) -> &'static str {
    if answer.truncated {
        "length"
    } else {
        "stop"
    }
}

/// The `usage` of `answer`.
fn usage(answer: &Answer) -> Usage {
    Usage {
        prompt_tokens: answer.prompt_tokens,
        completion_tokens: answer.completion_tokens,
        total_tokens: answer.prompt_tokens + answer.completion_tokens,
    }
}

/// The `chat.completion` document.
fn completion<'a>(id: &'a str, model: &'a str, answer: &'a Answer) -> Completion<'a> {
    let message = Message { role: "assistant", content: &answer.text, refusal: None };
    let choice = Choice { index: 0, message, logprobs: None, finish_reason: finish_reason(answer) };
    Completion { id, object: "chat.completion", created: CREATED, model, choices: [choice], usage: usage(answer) }
}

/// The stream: a role chunk, a chunk per word, a finish chunk, the usage chunk when asked for, `[DONE]`.
fn events(id: &str, model: &str, answer: &Answer, include_usage: bool) -> Vec<String> {
    let chunk = |delta: Delta<'_>, finish: Option<&'static str>| {
        let choice = ChunkChoice { index: 0, delta, logprobs: None, finish_reason: finish };
        let usage = include_usage.then_some(None);
        let chunk =
            Chunk { id, object: "chat.completion.chunk", created: CREATED, model, choices: vec![choice], usage };
        format!("data: {}\n\n", to_json(&chunk))
    };
    let mut events = vec![chunk(Delta { role: Some("assistant"), content: Some("") }, None)];
    events.extend(answer.deltas.iter().map(|d| chunk(Delta { role: None, content: Some(d) }, None)));
    events.push(chunk(Delta::default(), Some(finish_reason(answer))));
    if include_usage {
        let usage = Some(Some(usage(answer)));
        let last = Chunk { id, object: "chat.completion.chunk", created: CREATED, model, choices: vec![], usage };
        events.push(format!("data: {}\n\n", to_json(&last)));
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// An error document.
#[derive(Debug, Serialize)]
struct ErrorDoc<'a> {
    /// What went wrong.
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    /// In words.
    message: &'a str,
    /// `invalid_request_error`, `requests` (429) or `server_error` (5xx).
    #[serde(rename = "type")]
    kind: &'static str,
    /// Always null.
    param: Option<()>,
    /// `rate_limit_exceeded` for 429, null otherwise.
    code: Option<&'static str>,
}

/// `{"error": {"message", "type", "param", "code"}}` for `status`.
pub(super) fn error_body(status: StatusCode, message: &str) -> String {
    let (kind, code) = match status.as_u16() {
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    to_json(&ErrorDoc { error: ErrorDetail { message, kind, param: None, code } })
}
