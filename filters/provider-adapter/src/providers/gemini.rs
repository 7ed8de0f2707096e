//! Google Gemini `generateContent` / `streamGenerateContent?alt=sse`: `systemInstruction`, `contents` of
//! `user` and `model` turns with `parts`, tool results as `functionResponse` parts (the function name looked
//! up from the earlier call by id), `generationConfig`; answers, SSE frames of whole responses and errors read
//! back (gateway-features.md section 3.2).

use serde_json::{json, Map, Value};

use super::{count, encode_segment, minted_call_id, parse_arguments, refuse_extra, unsupported, Answer, Outgoing};
use crate::config::Settings;
use crate::errors::ApiError;
use crate::ir::{
    Choice, FinishReason, Image, Part, Request, Response, ResponseFormat, Role, StreamEvent, ToolCall, ToolChoice,
    Usage,
};
use crate::sse::Parser;

/// Encodes a `generateContent` request.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    refuse_extra(settings, request)?;
    unsupported(settings, request.parallel_tool_calls.is_some(), "parallel_tool_calls")?;
    unsupported(settings, request.user.is_some(), "user")?;
    let mut body = Map::new();
    if !request.system.is_empty() {
        let parts: Vec<Value> = request.system.iter().map(|s| json!({"text": s})).collect();
        body.insert("systemInstruction".into(), json!({"parts": parts}));
    }
    body.insert("contents".into(), Value::Array(contents(request)?));
    if !request.tools.is_empty() {
        let declarations = request.tools.iter().map(|t| {
            let mut d = json!({"name": t.name, "parameters": clean_schema(&t.parameters)});
            if let Some(desc) = &t.description {
                d["description"] = json!(desc);
            }
            d
        });
        body.insert("tools".into(), json!([{"functionDeclarations": declarations.collect::<Vec<_>>()}]));
    }
    if let Some(choice) = &request.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
    }
    let mut generation = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            generation.insert(key.into(), v);
        }
    };
    put("temperature", request.temperature.map(Value::from));
    put("topP", request.top_p.map(Value::from));
    put("maxOutputTokens", request.max_tokens.map(Value::from));
    put("stopSequences", (!request.stop.is_empty()).then(|| json!(request.stop)));
    put("candidateCount", request.n.map(Value::from));
    put("seed", request.seed.map(Value::from));
    put("presencePenalty", request.presence_penalty.map(Value::from));
    put("frequencyPenalty", request.frequency_penalty.map(Value::from));
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => put("responseMimeType", Some(json!("application/json"))),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            put("responseMimeType", Some(json!("application/json")));
            put("responseJsonSchema", Some(schema.clone()));
        }
        _ => {}
    }
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    let model = encode_segment(&request.model);
    let path = if request.stream {
        format!("{}/models/{model}:streamGenerateContent?alt=sse", settings.prefix)
    } else {
        format!("{}/models/{model}:generateContent", settings.prefix)
    };
    Ok(Outgoing { path, body: Value::Object(body).to_string().into_bytes() })
}

/// JSON Schema keys Gemini's OpenAPI subset refuses, removed at every depth.
fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "$schema" | "additionalProperties" | "strict"))
                .map(|(k, v)| (k.clone(), clean_schema(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

fn contents(request: &Request) -> Result<Vec<Value>, ApiError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let path = format!("messages[{}]", message.index);
        let (role, parts) = match message.role {
            Role::User => ("user", parts(&message.content, &path)?),
            Role::Assistant => {
                let mut parts = parts(&message.content, &path)?;
                parts.retain(|p| p.get("text").and_then(Value::as_str) != Some(""));
                for (i, call) in message.tool_calls.iter().enumerate() {
                    let args = parse_arguments(&call.arguments, &format!("{path}.tool_calls[{i}].function.arguments"))?;
                    parts.push(json!({"functionCall": {"name": call.name, "args": args}}));
                }
                ("model", parts)
            }
            Role::Tool => {
                let id = message.tool_call_id.as_deref().unwrap_or_default();
                let name = request
                    .messages
                    .iter()
                    .flat_map(|m| m.tool_calls.iter())
                    .find(|c| c.id == id)
                    .map(|c| c.name.clone())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            &format!("{path}.tool_call_id"),
                            format!("{id:?} answers no earlier assistant tool call"),
                        )
                    })?;
                let text = message.text();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(object @ Value::Object(_)) => object,
                    _ => json!({"output": text}),
                };
                ("user", vec![json!({"functionResponse": {"name": name, "response": response}})])
            }
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    Ok(out.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect())
}

fn parts(content: &[Part], path: &str) -> Result<Vec<Value>, ApiError> {
    content
        .iter()
        .enumerate()
        .map(|(i, part)| match part {
            Part::Text(text) => Ok(json!({"text": text})),
            Part::Image(Image::Data { media_type, data }) => Ok(json!({"inlineData": {"mimeType": media_type, "data": data}})),
            Part::Image(Image::Url(url)) => match mime_from_url(url) {
                Some(mime) => Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}})),
                None => Err(ApiError::invalid(
                    &format!("{path}.content[{i}].image_url.url"),
                    "Gemini needs a MIME type: use a URL ending in .png, .jpg, .jpeg, .gif, .webp or .pdf, or a data URI",
                )),
            },
        })
        .collect()
}

fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    let ext = path.rsplit('.').next()?;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

fn finish(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "RECITATION" => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Stop,
    }
}

fn usage(value: &Value) -> Option<Usage> {
    let u = value.get("usageMetadata")?;
    let thoughts = count(u, "thoughtsTokenCount");
    Some(Usage {
        input: count(u, "promptTokenCount"),
        cached: count(u, "cachedContentTokenCount"),
        output: count(u, "candidatesTokenCount") + thoughts,
        reasoning: thoughts,
    })
}

/// Reads a `GenerateContentResponse`.
pub fn decode_response(value: &Value, answer: &Answer) -> Result<Response, String> {
    let mut choices = Vec::new();
    let mut calls = 0u32;
    let candidates = match value.get("candidates") {
        Some(Value::Array(c)) => c.as_slice(),
        None if value.pointer("/promptFeedback/blockReason").is_some() => &[],
        _ => return Err("no `candidates` array".into()),
    };
    for (i, candidate) in candidates.iter().enumerate() {
        let mut text: Option<String> = None;
        let mut reasoning: Option<String> = None;
        let mut tool_calls = Vec::new();
        for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                let into = if part.get("thought") == Some(&Value::Bool(true)) { &mut reasoning } else { &mut text };
                into.get_or_insert_with(String::new).push_str(t);
            } else if let Some(call) = part.get("functionCall") {
                let name = call
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("candidates[{i}]: a functionCall has no name"))?;
                let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(ToolCall {
                    id: minted_call_id(&answer.id, calls),
                    name: name.into(),
                    arguments: args.to_string(),
                });
                calls += 1;
            }
        }
        let mut reason = finish(candidate.get("finishReason").and_then(Value::as_str).unwrap_or("STOP"));
        if reason == FinishReason::Stop && !tool_calls.is_empty() {
            reason = FinishReason::ToolCalls;
        }
        choices.push(Choice {
            index: candidate.get("index").and_then(Value::as_u64).unwrap_or(i as u64) as u32,
            content: text,
            reasoning,
            tool_calls,
            finish_reason: Some(reason),
        });
    }
    if choices.is_empty() {
        choices.push(Choice {
            index: 0,
            content: None,
            reasoning: None,
            tool_calls: Vec::new(),
            finish_reason: Some(FinishReason::ContentFilter),
        });
    }
    Ok(Response {
        id: answer.id.clone(),
        created: answer.created,
        model: answer.model.clone(),
        choices,
        usage: usage(value),
    })
}

/// Reads `{"error":{"code","message","status"}}`.
pub fn decode_error(status: u16, value: &Value) -> Option<ApiError> {
    let error = value.get("error")?;
    let message = error.get("message").and_then(Value::as_str)?;
    let kind = error.get("status").and_then(Value::as_str).unwrap_or("UNKNOWN");
    Some(ApiError::provider(status, kind, message))
}

/// The stream decoder: each SSE frame is a whole response holding the next parts.
#[derive(Debug)]
pub struct Stream {
    sse: Parser,
    id: String,
    started: bool,
    calls: u32,
}

impl Stream {
    /// A decoder holding at most `max` bytes of one event; `id` stems the minted tool-call ids.
    pub fn new(max: usize, id: String) -> Stream {
        Stream { sse: Parser::new(max), id, started: false, calls: 0 }
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let value: Value = serde_json::from_str(data).map_err(|e| format!("stream event is not JSON ({e})"))?;
        if let Some(error) = value.get("error") {
            out.push(StreamEvent::Error {
                kind: error.get("status").and_then(Value::as_str).unwrap_or("UNKNOWN").into(),
                message: error.get("message").and_then(Value::as_str).unwrap_or("stream error").into(),
            });
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { id: None });
        }
        let candidate = value.pointer("/candidates/0").unwrap_or(&Value::Null);
        for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                if part.get("thought") == Some(&Value::Bool(true)) {
                    out.push(StreamEvent::Reasoning(t.into()));
                } else {
                    out.push(StreamEvent::Text(t.into()));
                }
            } else if let Some(call) = part.get("functionCall") {
                let name = call.get("name").and_then(Value::as_str).ok_or("a functionCall has no name")?;
                let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                let index = self.calls;
                self.calls += 1;
                out.push(StreamEvent::ToolStart { index, id: minted_call_id(&self.id, index), name: name.into() });
                out.push(StreamEvent::ToolArgs { index, arguments: args.to_string() });
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            out.push(StreamEvent::Finish(finish(reason)));
        } else if value.pointer("/promptFeedback/blockReason").is_some() {
            out.push(StreamEvent::Finish(FinishReason::ContentFilter));
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
