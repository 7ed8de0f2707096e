//! Ollama's native `/api/chat`: messages with `images` (base64) and `tool_calls` whose arguments are JSON
//! objects, sampling in `options`, `format` for JSON; answers and the newline-delimited JSON stream read back
//! (`prompt_eval_count` → prompt tokens, `eval_count` → completion tokens). For Ollama's OpenAI-compatible
//! endpoint use provider `openai_compatible` instead.

use serde_json::{json, Map, Value};

use super::{count, minted_call_id, parse_arguments, refuse_extra, unsupported, Answer, Outgoing};
use crate::config::Settings;
use crate::errors::{kind_for_status, ApiError};
use crate::ir::{
    Choice, FinishReason, Image, Part, Request, Response, ResponseFormat, Role, StreamEvent, ToolCall, Usage,
};
use crate::sse::Lines;

/// Encodes an `/api/chat` request.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    refuse_extra(settings, request)?;
    if request.n.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid("n", "Ollama returns one choice (n must be 1)"));
    }
    unsupported(settings, request.tool_choice.is_some(), "tool_choice")?;
    unsupported(settings, request.parallel_tool_calls.is_some(), "parallel_tool_calls")?;
    unsupported(settings, request.user.is_some(), "user")?;
    let mut messages: Vec<Value> = request.system.iter().map(|s| json!({"role": "system", "content": s})).collect();
    for message in &request.messages {
        let path = format!("messages[{}]", message.index);
        let mut images = Vec::new();
        for (i, part) in message.content.iter().enumerate() {
            match part {
                Part::Image(Image::Data { data, .. }) => images.push(json!(data)),
                Part::Image(Image::Url(_)) => {
                    return Err(ApiError::invalid(
                        &format!("{path}.content[{i}].image_url.url"),
                        "Ollama takes image bytes only: send a base64 data URI, not a URL",
                    ))
                }
                Part::Text(_) => {}
            }
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        let mut out = json!({"role": role, "content": message.text()});
        if !images.is_empty() {
            out["images"] = Value::Array(images);
        }
        if !message.tool_calls.is_empty() {
            let mut calls = Vec::new();
            for (i, call) in message.tool_calls.iter().enumerate() {
                let args = parse_arguments(&call.arguments, &format!("{path}.tool_calls[{i}].function.arguments"))?;
                calls.push(json!({"function": {"name": call.name, "arguments": args}}));
            }
            out["tool_calls"] = Value::Array(calls);
        }
        if message.role == Role::Tool {
            let id = message.tool_call_id.as_deref().unwrap_or_default();
            if let Some(call) = request.messages.iter().flat_map(|m| m.tool_calls.iter()).find(|c| c.id == id) {
                out["tool_name"] = json!(call.name);
            }
        }
        messages.push(out);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(request.stream));
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|t| {
            let mut function = json!({"name": t.name, "parameters": t.parameters});
            if let Some(d) = &t.description {
                function["description"] = json!(d);
            }
            json!({"type": "function", "function": function})
        });
        body.insert("tools".into(), Value::Array(tools.collect()));
    }
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => {
            body.insert("format".into(), json!("json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert("format".into(), schema.clone());
        }
        _ => {}
    }
    let mut options = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            options.insert(key.into(), v);
        }
    };
    put("temperature", request.temperature.map(Value::from));
    put("top_p", request.top_p.map(Value::from));
    put("num_predict", request.max_tokens.map(Value::from));
    put("stop", (!request.stop.is_empty()).then(|| json!(request.stop)));
    put("seed", request.seed.map(Value::from));
    put("presence_penalty", request.presence_penalty.map(Value::from));
    put("frequency_penalty", request.frequency_penalty.map(Value::from));
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    Ok(Outgoing { path: format!("{}/api/chat", settings.prefix), body: Value::Object(body).to_string().into_bytes() })
}

fn done_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

fn usage(value: &Value) -> Usage {
    Usage { input: count(value, "prompt_eval_count"), cached: 0, output: count(value, "eval_count"), reasoning: 0 }
}

fn calls(message: &Value, stem: &str, first: u32) -> Result<Vec<ToolCall>, String> {
    let mut out = Vec::new();
    for (i, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("tool_calls[{i}] has no function name"))?;
        let arguments = match call.pointer("/function/arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "{}".into(),
        };
        out.push(ToolCall { id: minted_call_id(stem, first + i as u32), name: name.into(), arguments });
    }
    Ok(out)
}

/// Reads an `/api/chat` answer.
pub fn decode_response(value: &Value, answer: &Answer) -> Result<Response, String> {
    let message = value.get("message").ok_or("no `message`")?;
    let tool_calls = calls(message, &answer.id, 0)?;
    let mut reason = done_reason(value.get("done_reason").and_then(Value::as_str));
    if !tool_calls.is_empty() && reason == FinishReason::Stop {
        reason = FinishReason::ToolCalls;
    }
    Ok(Response {
        id: answer.id.clone(),
        created: answer.created,
        model: answer.model.clone(),
        choices: vec![Choice {
            index: 0,
            content: message.get("content").and_then(Value::as_str).map(str::to_string),
            reasoning: message.get("thinking").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string),
            tool_calls,
            finish_reason: Some(reason),
        }],
        usage: Some(usage(value)),
    })
}

/// Reads `{"error": "..."}`.
pub fn decode_error(status: u16, value: &Value) -> Option<ApiError> {
    let message = value.get("error").and_then(Value::as_str)?;
    Some(ApiError::provider(status, kind_for_status(status), message))
}

/// The NDJSON stream decoder.
#[derive(Debug)]
pub struct Stream {
    lines: Lines,
    id: String,
    started: bool,
    calls: u32,
}

impl Stream {
    /// A decoder holding at most `max` bytes of one line; `id` stems the minted tool-call ids.
    pub fn new(max: usize, id: String) -> Stream {
        Stream { lines: Lines::new(max), id, started: false, calls: 0 }
    }

    /// Feeds a chunk.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let mut lines = Vec::new();
        self.lines.feed(chunk, |l| lines.push(l.to_vec())).map_err(|e| e.to_string())?;
        for line in lines {
            self.line(&line, out)?;
        }
        Ok(())
    }

    /// The body ended.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let mut lines = Vec::new();
        self.lines.finish(|l| lines.push(l.to_vec()));
        for line in lines {
            self.line(&line, out)?;
        }
        out.push(StreamEvent::Done);
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let value: Value = serde_json::from_slice(line).map_err(|e| format!("stream line is not JSON ({e})"))?;
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            out.push(StreamEvent::Error { kind: "api_error".into(), message: error.into() });
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { id: None });
        }
        let message = value.get("message").unwrap_or(&Value::Null);
        if let Some(t) = message.get("thinking").and_then(Value::as_str) {
            out.push(StreamEvent::Reasoning(t.into()));
        }
        if let Some(t) = message.get("content").and_then(Value::as_str) {
            out.push(StreamEvent::Text(t.into()));
        }
        for call in calls(message, &self.id, self.calls)? {
            let index = self.calls;
            self.calls += 1;
            out.push(StreamEvent::ToolStart { index, id: call.id, name: call.name });
            out.push(StreamEvent::ToolArgs { index, arguments: call.arguments });
        }
        if value.get("done") == Some(&Value::Bool(true)) {
            out.push(StreamEvent::Finish(done_reason(value.get("done_reason").and_then(Value::as_str))));
            out.push(StreamEvent::Usage(usage(&value)));
            out.push(StreamEvent::Done);
        }
        Ok(())
    }
}
