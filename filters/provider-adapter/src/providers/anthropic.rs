//! Anthropic Messages (`POST /v1/messages`): system prompts lifted to `system`, tool results batched into
//! user turns, consecutive same-role turns merged, `max_tokens` always set; answers, named SSE events and
//! errors read back (gateway-features.md section 3.1).

use serde_json::{json, Map, Value};

use super::{parse_arguments, refuse_extra, unsupported, Answer, Outgoing};
use crate::config::Settings;
use crate::errors::ApiError;
use crate::ir::{
    Choice, FinishReason, Image, Message, Part, Request, Response, ResponseFormat, Role, StreamEvent, ToolCall,
    ToolChoice, Usage,
};
use crate::sse::Parser;

/// Encodes a Messages request.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    refuse_extra(settings, request)?;
    if request.n.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid("n", "Anthropic returns one choice (n must be 1)"));
    }
    if request.temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(ApiError::invalid("temperature", "Anthropic accepts 0 to 1"));
    }
    unsupported(settings, request.seed.is_some(), "seed")?;
    unsupported(settings, request.presence_penalty.is_some(), "presence_penalty")?;
    unsupported(settings, request.frequency_penalty.is_some(), "frequency_penalty")?;
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("max_tokens".into(), json!(request.max_tokens.unwrap_or(settings.anthropic.default_max_tokens)));
    match request.system.len() {
        0 => {}
        1 => {
            body.insert("system".into(), json!(request.system[0]));
        }
        _ => {
            let blocks: Vec<Value> = request.system.iter().map(|s| json!({"type": "text", "text": s})).collect();
            body.insert("system".into(), Value::Array(blocks));
        }
    }
    body.insert("messages".into(), Value::Array(messages(&request.messages)?));
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    if request.stream {
        body.insert("stream".into(), json!(true));
    }
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|t| {
            let mut tool = json!({"name": t.name, "input_schema": t.parameters});
            if let Some(d) = &t.description {
                tool["description"] = json!(d);
            }
            if let Some(s) = t.strict {
                tool["strict"] = json!(s);
            }
            tool
        });
        body.insert("tools".into(), Value::Array(tools.collect()));
    }
    let mut choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
        Some(ToolChoice::Required) => Some(json!({"type": "any"})),
        Some(ToolChoice::Function(name)) => Some(json!({"type": "tool", "name": name})),
    };
    if request.parallel_tool_calls == Some(false) && !request.tools.is_empty() {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
    match &request.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert("output_config".into(), json!({"format": {"type": "json_schema", "schema": schema}}));
        }
        Some(ResponseFormat::JsonObject) => unsupported(settings, true, "response_format")?,
        _ => {}
    }
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    Ok(Outgoing {
        path: format!("{}/v1/messages", settings.prefix),
        body: Value::Object(body).to_string().into_bytes(),
    })
}

fn messages(messages: &[Message]) -> Result<Vec<Value>, ApiError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let path = format!("messages[{}]", message.index);
        let (role, blocks) = match message.role {
            Role::User => ("user", content_blocks(&message.content, &path)?),
            Role::Assistant => {
                let mut blocks = content_blocks(&message.content, &path)?;
                blocks.retain(|b| b.get("text").and_then(Value::as_str) != Some(""));
                for (i, call) in message.tool_calls.iter().enumerate() {
                    let input =
                        parse_arguments(&call.arguments, &format!("{path}.tool_calls[{i}].function.arguments"))?;
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let id = message.tool_call_id.clone().unwrap_or_default();
                let text = message.text();
                let mut result = json!({"type": "tool_result", "tool_use_id": id, "content": text});
                if super::is_tool_error(&text) {
                    result["is_error"] = json!(true);
                }
                ("user", vec![result])
            }
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    Ok(out.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect())
}

fn content_blocks(parts: &[Part], path: &str) -> Result<Vec<Value>, ApiError> {
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| match part {
            Part::Text(text) => Ok(json!({"type": "text", "text": text})),
            Part::Image(Image::Url(url)) => Ok(json!({"type": "image", "source": {"type": "url", "url": url}})),
            Part::Image(Image::Data { media_type, data }) => match media_type.as_str() {
                "image/jpeg" | "image/png" | "image/gif" | "image/webp" => {
                    Ok(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}))
                }
                "application/pdf" => Ok(
                    json!({"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}),
                ),
                other => Err(ApiError::invalid(
                    &format!("{path}.content[{i}].image_url.url"),
                    format!("media type {other:?} is not supported by Anthropic (jpeg, png, gif, webp, pdf are)"),
                )),
            },
        })
        .collect()
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn usage(u: &Value, into: &mut Usage) {
    let read = u.get("cache_read_input_tokens").and_then(Value::as_u64);
    let write = u.get("cache_creation_input_tokens").and_then(Value::as_u64);
    if let Some(input) = u.get("input_tokens").and_then(Value::as_u64) {
        into.input = input + read.unwrap_or(0) + write.unwrap_or(0);
        into.cached = read.unwrap_or(0);
    }
    if let Some(output) = u.get("output_tokens").and_then(Value::as_u64) {
        into.output = output;
    }
}

/// Reads a Messages answer.
pub fn decode_response(value: &Value, answer: &Answer) -> Result<Response, String> {
    let blocks = value.get("content").and_then(Value::as_array).ok_or("no `content` array")?;
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                text.get_or_insert_with(String::new).push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
            }
            Some("thinking") => reasoning
                .get_or_insert_with(String::new)
                .push_str(block.get("thinking").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let (Some(id), Some(name)) =
                    (block.get("id").and_then(Value::as_str), block.get("name").and_then(Value::as_str))
                else {
                    return Err(format!("content[{i}] (tool_use) lacks an id or a name"));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(ToolCall { id: id.into(), name: name.into(), arguments: input.to_string() });
            }
            _ => {}
        }
    }
    let mut u = Usage::default();
    if let Some(v) = value.get("usage") {
        usage(v, &mut u);
    }
    Ok(Response {
        id: value.get("id").and_then(Value::as_str).unwrap_or(&answer.id).to_string(),
        created: answer.created,
        model: answer.model.clone(),
        choices: vec![Choice {
            index: 0,
            content: text,
            reasoning,
            tool_calls,
            finish_reason: Some(stop_reason(value.get("stop_reason").and_then(Value::as_str).unwrap_or("end_turn"))),
        }],
        usage: value.get("usage").map(|_| u),
    })
}

/// Reads `{"type":"error","error":{"type","message"}}`.
pub fn decode_error(status: u16, value: &Value) -> Option<ApiError> {
    let error = value.get("error")?;
    let message = error.get("message").and_then(Value::as_str)?;
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("api_error");
    Some(ApiError::provider(status, kind, message))
}

/// The stream decoder: Anthropic block indexes mapped to tool-call indexes counted from 0.
#[derive(Debug)]
pub struct Stream {
    sse: Parser,
    /// (Anthropic block index, tool-call index) of tool blocks.
    tools: Vec<(u64, u32)>,
    usage: Usage,
}

impl Stream {
    /// A decoder holding at most `max` bytes of one event.
    pub fn new(max: usize) -> Stream {
        Stream { sse: Parser::new(max), tools: Vec::new(), usage: Usage::default() }
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let value: Value = serde_json::from_str(data).map_err(|e| format!("stream event is not JSON ({e})"))?;
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        match value.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let message = value.get("message").unwrap_or(&Value::Null);
                out.push(StreamEvent::Start { id: message.get("id").and_then(Value::as_str).map(str::to_string) });
                if let Some(u) = message.get("usage") {
                    usage(u, &mut self.usage);
                    out.push(StreamEvent::Usage(self.usage));
                }
            }
            "content_block_start" => {
                let block = value.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let k = self.tools.len() as u32;
                        self.tools.push((index, k));
                        let id = block.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                        let name = block.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                        out.push(StreamEvent::ToolStart { index: k, id, name });
                    }
                    Some("text") => {
                        if let Some(text) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::Text(text.into()));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = value.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => out.push(StreamEvent::Text(str_of(delta, "text"))),
                    Some("thinking_delta") => out.push(StreamEvent::Reasoning(str_of(delta, "thinking"))),
                    Some("input_json_delta") => {
                        let Some(&(_, k)) = self.tools.iter().find(|(i, _)| *i == index) else {
                            return Err(format!("input_json_delta for block {index}, which is not a tool_use block"));
                        };
                        out.push(StreamEvent::ToolArgs { index: k, arguments: str_of(delta, "partial_json") });
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push(StreamEvent::Finish(stop_reason(reason)));
                }
                if let Some(u) = value.get("usage") {
                    usage(u, &mut self.usage);
                    out.push(StreamEvent::Usage(self.usage));
                }
            }
            "message_stop" => out.push(StreamEvent::Done),
            "error" => {
                let error = value.get("error").unwrap_or(&Value::Null);
                out.push(StreamEvent::Error {
                    kind: error.get("type").and_then(Value::as_str).unwrap_or("api_error").into(),
                    message: error.get("message").and_then(Value::as_str).unwrap_or("stream error").into(),
                });
            }
            _ => {}
        }
        Ok(())
    }
}

fn str_of(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

impl super::SseStream for Stream {
    fn parser(&mut self) -> &mut Parser {
        &mut self.sse
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        Stream::event(self, data, out)
    }
}
