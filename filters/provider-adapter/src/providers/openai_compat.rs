//! OpenAI, OpenAI-compatible hosts (vLLM, Groq, DeepSeek, ...) and Mistral: the request is written back as
//! OpenAI JSON (Mistral's traps handled), answers and streams are read into the representation.
//!
//! Mistral: `max_completion_tokens` → `max_tokens`, `seed` → `random_seed`, `tool_choice: "required"` →
//! `"any"`, `stream_options` dropped, tool-call ids that are not 9 alphanumerics rewritten deterministically
//! (the same id gives the same rewrite in the assistant turn and its tool results), finish reasons
//! `model_length` → `length` and `error` → an error.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{count, Answer, Outgoing};
use crate::config::{Provider, Settings};
use crate::errors::{kind_for_status, ApiError};
use crate::ir::{Choice, FinishReason, Request, Response, StreamEvent, ToolCall, Usage};
use crate::openai::write_request;
use crate::sse::Parser;

/// Encodes for OpenAI, an OpenAI-compatible host or Mistral.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    let mut body = write_request(request);
    if settings.provider == Provider::Mistral {
        mistral(settings, request, &mut body);
    }
    let path = format!("{}/chat/completions", settings.prefix);
    Ok(Outgoing { path, body: Value::Object(body).to_string().into_bytes() })
}

/// The OpenAI JSON body alone (Azure uses it too).
pub fn body(request: &Request) -> Vec<u8> {
    Value::Object(write_request(request)).to_string().into_bytes()
}

fn mistral(settings: &Settings, request: &Request, body: &mut Map<String, Value>) {
    if let Some(max) = body.remove("max_completion_tokens") {
        body.insert("max_tokens".into(), max);
    }
    if let Some(seed) = body.remove("seed") {
        body.insert("random_seed".into(), seed);
    }
    if body.get("tool_choice") == Some(&json!("required")) {
        body.insert("tool_choice".into(), json!("any"));
    }
    body.remove("stream_options");
    if let Some(safe) = settings.mistral.safe_prompt {
        body.insert("safe_prompt".into(), json!(safe));
    }
    let _ = request;
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for message in messages {
            if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                for call in calls {
                    if let Some(Value::String(id)) = call.get_mut("id") {
                        *id = mistral_id(id);
                    }
                }
            }
            if let Some(Value::String(id)) = message.get_mut("tool_call_id") {
                *id = mistral_id(id);
            }
        }
    }
}

/// A tool-call id Mistral accepts (`[a-zA-Z0-9]{9}`): kept when it already is one, else 9 base-62 characters
/// of its SHA-256.
pub fn mistral_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    Sha256::digest(id.as_bytes()).iter().take(9).map(|b| ALPHABET[(*b % 62) as usize] as char).collect()
}

fn finish_reason(value: &Value) -> Option<FinishReason> {
    match value.as_str()? {
        "stop" | "end_turn" | "eos" => Some(FinishReason::Stop),
        "length" | "model_length" => Some(FinishReason::Length),
        "tool_calls" | "function_call" => Some(FinishReason::ToolCalls),
        "content_filter" => Some(FinishReason::ContentFilter),
        _ => Some(FinishReason::Stop),
    }
}

fn usage(value: &Value) -> Option<Usage> {
    let u = value.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input: count(u, "prompt_tokens"),
        cached: u.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64).unwrap_or(0),
        output: count(u, "completion_tokens"),
        reasoning: u.pointer("/completion_tokens_details/reasoning_tokens").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// Reads a `chat.completion`.
pub fn decode_response(value: &Value, answer: &Answer) -> Result<Response, String> {
    let choices = value.get("choices").and_then(Value::as_array).ok_or("no `choices` array")?;
    let mut out = Vec::with_capacity(choices.len());
    for (i, choice) in choices.iter().enumerate() {
        let message = choice.get("message").ok_or_else(|| format!("choices[{i}] has no `message`"))?;
        if choice.get("finish_reason").and_then(Value::as_str) == Some("error") {
            return Err(format!("choices[{i}] finished with an error"));
        }
        let mut tool_calls = Vec::new();
        for (j, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let name = call.pointer("/function/name").and_then(Value::as_str);
            let id = call.get("id").and_then(Value::as_str);
            let (Some(name), Some(id)) = (name, id) else {
                return Err(format!("choices[{i}].message.tool_calls[{j}] lacks an id or a function name"));
            };
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "{}".into(),
            };
            tool_calls.push(ToolCall { id: id.into(), name: name.into(), arguments });
        }
        out.push(Choice {
            index: choice.get("index").and_then(Value::as_u64).unwrap_or(i as u64) as u32,
            content: message.get("content").and_then(Value::as_str).map(str::to_string),
            reasoning: message.get("reasoning_content").and_then(Value::as_str).map(str::to_string),
            tool_calls,
            finish_reason: finish_reason(choice.get("finish_reason").unwrap_or(&Value::Null)),
        });
    }
    Ok(Response {
        id: value.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).unwrap_or(&answer.id).to_string(),
        created: value.get("created").and_then(Value::as_u64).unwrap_or(answer.created),
        model: answer.model.clone(),
        choices: out,
        usage: usage(value),
    })
}

/// Reads an OpenAI-shaped error (`{"error":{"message","type","code"}}`, Mistral's `{"object":"error",...}`
/// or `{"detail": ...}`).
pub fn decode_error(status: u16, value: &Value) -> Option<ApiError> {
    let error = value.get("error").filter(|e| e.is_object()).unwrap_or(value);
    let message = error
        .get("message")
        .map(|m| m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string()))
        .or_else(|| value.get("detail").map(|d| d.as_str().map(str::to_string).unwrap_or_else(|| d.to_string())))?;
    let kind = error.get("type").and_then(Value::as_str).unwrap_or(kind_for_status(status));
    let mut out = ApiError::provider(status, kind, message);
    if let Some(code) = error.get("code").filter(|c| !c.is_null()) {
        out.code = code.clone();
    }
    out.param = error.get("param").and_then(Value::as_str).map(str::to_string);
    Some(out)
}

/// The OpenAI-family stream decoder.
#[derive(Debug)]
pub struct Stream {
    sse: Parser,
    started: bool,
    /// Tool-call indexes already announced.
    tools: Vec<u64>,
}

impl Stream {
    /// A decoder holding at most `max` bytes of one event.
    pub fn new(max: usize) -> Stream {
        Stream { sse: Parser::new(max), started: false, tools: Vec::new() }
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let data = data.trim();
        if data == "[DONE]" {
            out.push(StreamEvent::Done);
            return Ok(());
        }
        let value: Value = serde_json::from_str(data).map_err(|e| format!("stream event is not JSON ({e})"))?;
        if let Some(error) = value.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("stream error").to_string();
            let kind = error.get("type").and_then(Value::as_str).unwrap_or("api_error").to_string();
            out.push(StreamEvent::Error { kind, message });
            return Ok(());
        }
        if !self.started {
            // Azure's first chunk (prompt_filter_results) has an empty id: wait for a real one.
            if let Some(id) = value.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
                self.started = true;
                out.push(StreamEvent::Start { id: Some(id.to_string()) });
            }
        }
        for choice in value.get("choices").and_then(Value::as_array).into_iter().flatten() {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(text) = delta.get("reasoning_content").and_then(Value::as_str) {
                out.push(StreamEvent::Reasoning(text.into()));
            }
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                out.push(StreamEvent::Text(text.into()));
            }
            for (j, call) in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let index = call.get("index").and_then(Value::as_u64).unwrap_or(j as u64);
                if !self.tools.contains(&index) {
                    self.tools.push(index);
                    let id = call.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string();
                    out.push(StreamEvent::ToolStart { index: index as u32, id, name });
                }
                if let Some(arguments) = call.pointer("/function/arguments").and_then(Value::as_str) {
                    out.push(StreamEvent::ToolArgs { index: index as u32, arguments: arguments.into() });
                }
            }
            match choice.get("finish_reason").and_then(Value::as_str) {
                Some("error") => out.push(StreamEvent::Error {
                    kind: "api_error".into(),
                    message: "the provider ended the answer with an error".into(),
                }),
                Some(_) => out.extend(finish_reason(&choice["finish_reason"]).map(StreamEvent::Finish)),
                None => {}
            }
        }
        if let Some(usage) = usage(&value) {
            out.push(StreamEvent::Usage(usage));
        }
        Ok(())
    }
}

impl super::SseStream for Stream {
    fn parser(&mut self) -> &mut Parser {
        &mut self.sse
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        Stream::event(self, data, out)
    }
}
