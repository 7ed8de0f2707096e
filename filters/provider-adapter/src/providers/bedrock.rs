//! AWS Bedrock Converse (`/model/{modelId}/converse`, `/converse-stream`): content blocks, `toolUse` /
//! `toolResult`, `inferenceConfig`, `toolConfig`; answers, the binary event stream and errors (status plus
//! `x-amzn-errortype`) read back (gateway-features.md section 3.3). Signing is in [`crate::sigv4`].

use serde_json::{json, Map, Value};

use super::{count, encode_segment, parse_arguments, refuse_extra, unsupported, Answer, Outgoing};
use crate::config::Settings;
use crate::errors::ApiError;
use crate::eventstream::Decoder;
use crate::ir::{Choice, FinishReason, Image, Part, Request, Response, Role, StreamEvent, ToolCall, ToolChoice, Usage};

/// Encodes a Converse request.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    refuse_extra(settings, request)?;
    if request.n.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid("n", "Bedrock Converse returns one choice (n must be 1)"));
    }
    unsupported(settings, request.seed.is_some(), "seed")?;
    unsupported(settings, request.presence_penalty.is_some(), "presence_penalty")?;
    unsupported(settings, request.frequency_penalty.is_some(), "frequency_penalty")?;
    unsupported(settings, request.response_format.is_some(), "response_format")?;
    unsupported(settings, request.parallel_tool_calls.is_some(), "parallel_tool_calls")?;
    unsupported(settings, request.user.is_some(), "user")?;
    let mut body = Map::new();
    let (messages, history_has_tools) = messages(request)?;
    body.insert("messages".into(), Value::Array(messages));
    if !request.system.is_empty() {
        body.insert("system".into(), request.system.iter().map(|s| json!({"text": s})).collect());
    }
    let mut inference = Map::new();
    if let Some(v) = request.max_tokens {
        inference.insert("maxTokens".into(), json!(v));
    }
    if let Some(v) = request.temperature {
        inference.insert("temperature".into(), json!(v));
    }
    if let Some(v) = request.top_p {
        inference.insert("topP".into(), json!(v));
    }
    if !request.stop.is_empty() {
        inference.insert("stopSequences".into(), json!(request.stop));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    let none = request.tool_choice == Some(ToolChoice::None);
    if !request.tools.is_empty() && (!none || history_has_tools) {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut spec = json!({"name": t.name, "inputSchema": {"json": t.parameters}});
                if let Some(d) = &t.description {
                    spec["description"] = json!(d);
                }
                json!({"toolSpec": spec})
            })
            .collect();
        let mut config = json!({"tools": tools});
        match &request.tool_choice {
            Some(ToolChoice::Auto) => config["toolChoice"] = json!({"auto": {}}),
            Some(ToolChoice::Required) => config["toolChoice"] = json!({"any": {}}),
            Some(ToolChoice::Function(name)) => config["toolChoice"] = json!({"tool": {"name": name}}),
            Some(ToolChoice::None) | None => {}
        }
        body.insert("toolConfig".into(), config);
    }
    let action = if request.stream { "converse-stream" } else { "converse" };
    let path = format!("{}/model/{}/{action}", settings.prefix, encode_segment(&request.model));
    Ok(Outgoing { path, body: Value::Object(body).to_string().into_bytes() })
}

fn messages(request: &Request) -> Result<(Vec<Value>, bool), ApiError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut has_tools = false;
    for message in &request.messages {
        let path = format!("messages[{}]", message.index);
        let (role, blocks) = match message.role {
            Role::User => ("user", blocks(&message.content, &path)?),
            Role::Assistant => {
                let mut blocks = blocks(&message.content, &path)?;
                blocks.retain(|b| b.get("text").and_then(Value::as_str) != Some(""));
                for (i, call) in message.tool_calls.iter().enumerate() {
                    has_tools = true;
                    let input =
                        parse_arguments(&call.arguments, &format!("{path}.tool_calls[{i}].function.arguments"))?;
                    blocks.push(json!({"toolUse": {"toolUseId": call.id, "name": call.name, "input": input}}));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                has_tools = true;
                let text = message.text();
                let content = match serde_json::from_str::<Value>(&text) {
                    Ok(object @ Value::Object(_)) => json!({"json": object}),
                    _ => json!({"text": text}),
                };
                let id = message.tool_call_id.clone().unwrap_or_default();
                let mut result = json!({"toolUseId": id, "content": [content]});
                if super::is_tool_error(&text) {
                    result["status"] = json!("error");
                }
                ("user", vec![json!({"toolResult": result})])
            }
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    Ok((out.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect(), has_tools))
}

fn blocks(content: &[Part], path: &str) -> Result<Vec<Value>, ApiError> {
    content
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let at = || format!("{path}.content[{i}].image_url.url");
            match part {
                Part::Text(text) => Ok(json!({"text": text})),
                Part::Image(Image::Url(_)) => {
                    Err(ApiError::invalid(&at(), "Bedrock takes image bytes only: send a base64 data URI, not a URL"))
                }
                Part::Image(Image::Data { media_type, data }) => match media_type.as_str() {
                    "image/png" | "image/jpeg" | "image/gif" | "image/webp" => {
                        let format = &media_type["image/".len()..];
                        Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
                    }
                    "application/pdf" => Ok(json!({"document": {"format": "pdf", "name": format!("document{i}"), "source": {"bytes": data}}})),
                    other => Err(ApiError::invalid(&at(), format!("media type {other:?} is not supported by Bedrock (png, jpeg, gif, webp, pdf are)"))),
                },
            }
        })
        .collect()
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "content_filtered" | "guardrail_intervened" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn usage(u: &Value) -> Usage {
    let read = count(u, "cacheReadInputTokens");
    let write = count(u, "cacheWriteInputTokens");
    Usage {
        input: count(u, "inputTokens") + read + write,
        cached: read,
        output: count(u, "outputTokens"),
        reasoning: 0,
    }
}

/// Reads a Converse answer.
pub fn decode_response(value: &Value, answer: &Answer) -> Result<Response, String> {
    let blocks = value
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or("no `output.message.content` array")?;
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let (Some(id), Some(name)) =
                (tool.get("toolUseId").and_then(Value::as_str), tool.get("name").and_then(Value::as_str))
            else {
                return Err(format!("content[{i}].toolUse lacks a toolUseId or a name"));
            };
            let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
            tool_calls.push(ToolCall { id: id.into(), name: name.into(), arguments: input.to_string() });
        } else if let Some(t) = block.pointer("/reasoningContent/reasoningText/text").and_then(Value::as_str) {
            reasoning.get_or_insert_with(String::new).push_str(t);
        }
    }
    let reason = stop_reason(value.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn"));
    Ok(Response {
        id: answer.id.clone(),
        created: answer.created,
        model: answer.model.clone(),
        choices: vec![Choice { index: 0, content: text, reasoning, tool_calls, finish_reason: Some(reason) }],
        usage: value.get("usage").map(usage),
    })
}

/// Reads `{"message": ...}` with the `x-amzn-errortype` header.
pub fn decode_error(status: u16, error_type: Option<&str>, value: &Value) -> Option<ApiError> {
    let message = value.get("message").or_else(|| value.get("Message")).and_then(Value::as_str)?;
    Some(error_from_type(status, error_type.unwrap_or("UnknownError"), message))
}

/// An error from Bedrock's type (`ValidationException:http://...` is cut at `:`).
pub fn error_from_type(status: u16, error_type: &str, message: &str) -> ApiError {
    let kind = error_type.split(':').next().unwrap_or(error_type);
    ApiError::provider(status, kind, message)
}

/// The ConverseStream decoder.
#[derive(Debug)]
pub struct Stream {
    frames: Decoder,
    /// (contentBlockIndex, tool-call index) of tool blocks.
    tools: Vec<(u64, u32)>,
}

impl Stream {
    /// A decoder accepting messages of at most `max` bytes.
    pub fn new(max: usize) -> Stream {
        Stream { frames: Decoder::new(max), tools: Vec::new() }
    }

    /// Feeds a chunk.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let mut messages = Vec::new();
        self.frames.feed(chunk, |m| messages.push(m)).map_err(|e| e.to_string())?;
        for message in messages {
            self.message(&message, out)?;
        }
        Ok(())
    }

    /// The body ended.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        if self.frames.held() > 0 {
            return Err(format!("the event stream ended inside a message ({} bytes held)", self.frames.held()));
        }
        out.push(StreamEvent::Done);
        Ok(())
    }

    fn message(&mut self, message: &crate::eventstream::Message, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let payload: Value = if message.payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&message.payload).map_err(|e| format!("event payload is not JSON ({e})"))?
        };
        match message.header(":message-type") {
            Some("exception") => {
                let kind = message.header(":exception-type").unwrap_or("exception");
                let text =
                    payload.get("message").or_else(|| payload.get("Message")).and_then(Value::as_str).unwrap_or(kind);
                out.push(StreamEvent::Error { kind: kind.into(), message: text.into() });
                return Ok(());
            }
            Some("error") => {
                out.push(StreamEvent::Error {
                    kind: message.header(":error-code").unwrap_or("error").into(),
                    message: message.header(":error-message").unwrap_or("stream error").into(),
                });
                return Ok(());
            }
            _ => {}
        }
        let index = payload.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match message.header(":event-type").unwrap_or("") {
            "messageStart" => out.push(StreamEvent::Start { id: None }),
            "contentBlockStart" => {
                if let Some(tool) = payload.pointer("/start/toolUse") {
                    let k = self.tools.len() as u32;
                    self.tools.push((index, k));
                    out.push(StreamEvent::ToolStart {
                        index: k,
                        id: tool.get("toolUseId").and_then(Value::as_str).unwrap_or_default().into(),
                        name: tool.get("name").and_then(Value::as_str).unwrap_or_default().into(),
                    });
                }
            }
            "contentBlockDelta" => {
                let delta = payload.get("delta").unwrap_or(&Value::Null);
                if let Some(t) = delta.get("text").and_then(Value::as_str) {
                    out.push(StreamEvent::Text(t.into()));
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
                    let Some(&(_, k)) = self.tools.iter().find(|(i, _)| *i == index) else {
                        return Err(format!("a toolUse delta for block {index}, which did not start as a tool"));
                    };
                    out.push(StreamEvent::ToolArgs { index: k, arguments: input.into() });
                } else if let Some(t) = delta.pointer("/reasoningContent/text").and_then(Value::as_str) {
                    out.push(StreamEvent::Reasoning(t.into()));
                }
            }
            "messageStop" => out.push(StreamEvent::Finish(stop_reason(
                payload.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn"),
            ))),
            "metadata" => {
                if let Some(u) = payload.get("usage") {
                    out.push(StreamEvent::Usage(usage(u)));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
