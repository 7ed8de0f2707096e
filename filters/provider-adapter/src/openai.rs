//! The client-facing contract: OpenAI Chat Completions. Parses the client's request into the
//! [internal representation](crate::ir) (a 400 naming the JSON path for anything wrong), writes a request back
//! out for OpenAI-family providers, and writes answers for the client ([`crate::chunks`] writes streams).

use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::ir::{
    Choice, FinishReason, Image, Message, Part, Request, Response, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    Usage,
};

/// Parses a Chat Completions request body.
pub fn parse_request(body: &[u8]) -> Result<Request, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))?;
    let Value::Object(mut root) = value else {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    };
    let mut request = Request::default();
    request.client_model = match root.remove("model") {
        Some(Value::String(model)) if !model.is_empty() => model,
        Some(_) => return Err(ApiError::invalid("model", "must be a non-empty string")),
        None => return Err(ApiError::invalid("model", "is required")),
    };
    request.model = request.client_model.clone();
    let messages = match root.remove("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(_) => return Err(ApiError::invalid("messages", "must be a non-empty array")),
        None => return Err(ApiError::invalid("messages", "is required")),
    };
    for (i, message) in messages.into_iter().enumerate() {
        parse_message(&mut request, message, i)?;
    }
    if let Some(tools) = root.remove("tools") {
        let Value::Array(tools) = tools else { return Err(ApiError::invalid("tools", "must be an array")) };
        for (i, tool) in tools.into_iter().enumerate() {
            request.tools.push(parse_tool(tool, &format!("tools[{i}]"))?);
        }
    }
    if let Some(choice) = root.remove("tool_choice") {
        request.tool_choice = Some(parse_tool_choice(&choice)?);
    }
    request.parallel_tool_calls = take_bool(&mut root, "parallel_tool_calls")?;
    if let Some(format) = root.remove("response_format") {
        request.response_format = Some(parse_response_format(&format)?);
    }
    request.temperature = take_f64(&mut root, "temperature")?;
    request.top_p = take_f64(&mut root, "top_p")?;
    let max_completion = take_u64(&mut root, "max_completion_tokens")?;
    let max_tokens = take_u64(&mut root, "max_tokens")?;
    request.max_tokens = max_completion.or(max_tokens);
    request.stop = match root.remove("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(stop)) => vec![stop],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::invalid(&format!("stop[{i}]"), "must be a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::invalid("stop", "must be a string or an array of strings")),
    };
    request.seed = match root.remove("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| ApiError::invalid("seed", "must be an integer"))?),
    };
    request.presence_penalty = take_f64(&mut root, "presence_penalty")?;
    request.frequency_penalty = take_f64(&mut root, "frequency_penalty")?;
    request.n = take_u64(&mut root, "n")?;
    request.user = match root.remove("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user),
        Some(_) => return Err(ApiError::invalid("user", "must be a string")),
    };
    request.stream = take_bool(&mut root, "stream")?.unwrap_or(false);
    match root.remove("stream_options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(options)) => match options.get("include_usage") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => request.include_usage = *b,
            Some(_) => return Err(ApiError::invalid("stream_options.include_usage", "must be a boolean")),
        },
        Some(_) => return Err(ApiError::invalid("stream_options", "must be an object")),
    }
    request.extra = root;
    Ok(request)
}

fn take_f64(root: &mut Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match root.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| ApiError::invalid(key, "must be a number")),
    }
}

fn take_u64(root: &mut Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match root.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| ApiError::invalid(key, "must be a non-negative integer")),
    }
}

fn take_bool(root: &mut Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match root.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(ApiError::invalid(key, "must be a boolean")),
    }
}

fn parse_message(request: &mut Request, message: Value, index: usize) -> Result<(), ApiError> {
    let path = &format!("messages[{index}]");
    let Value::Object(message) = message else { return Err(ApiError::invalid(path, "must be an object")) };
    let role = match message.get("role").and_then(Value::as_str) {
        Some(role) => role,
        None => return Err(ApiError::invalid(&format!("{path}.role"), "is required (a string)")),
    };
    let content_path = format!("{path}.content");
    let (content, plain) = parse_content(message.get("content"), &content_path)?;
    let name = message.get("name").and_then(Value::as_str).map(str::to_string);
    let role = match role {
        "system" | "developer" => {
            let text = content.iter().map(|p| match p {
                Part::Text(t) => Ok(t.as_str()),
                Part::Image(_) => Err(ApiError::invalid(&content_path, "a system message holds text only")),
            });
            request.system.push(text.collect::<Result<Vec<_>, _>>()?.join(""));
            return Ok(());
        }
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        "function" => {
            return Err(ApiError::invalid(
                &format!("{path}.role"),
                "\"function\" messages are deprecated; use \"tool\"",
            ))
        }
        other => return Err(ApiError::invalid(&format!("{path}.role"), format!("unknown role {other:?}"))),
    };
    let mut parsed = Message { role, content, plain, tool_calls: Vec::new(), tool_call_id: None, name, index };
    if role == Role::Assistant {
        if let Some(calls) = message.get("tool_calls").filter(|v| !v.is_null()) {
            let Value::Array(calls) = calls else {
                return Err(ApiError::invalid(&format!("{path}.tool_calls"), "must be an array"));
            };
            for (i, call) in calls.iter().enumerate() {
                parsed.tool_calls.push(parse_tool_call(call, &format!("{path}.tool_calls[{i}]"))?);
            }
        }
    } else if role == Role::Tool {
        parsed.tool_call_id = match message.get("tool_call_id") {
            Some(Value::String(id)) => Some(id.clone()),
            _ => return Err(ApiError::invalid(&format!("{path}.tool_call_id"), "is required for a tool message")),
        };
        if parsed.content.iter().any(|p| matches!(p, Part::Image(_))) {
            return Err(ApiError::invalid(&content_path, "a tool message holds text only"));
        }
    } else if parsed.content.is_empty() {
        return Err(ApiError::invalid(&content_path, "is required for a user message"));
    }
    if role == Role::Assistant && parsed.content.is_empty() && parsed.tool_calls.is_empty() {
        return Err(ApiError::invalid(&content_path, "an assistant message needs content or tool_calls"));
    }
    request.messages.push(parsed);
    Ok(())
}

fn parse_content(content: Option<&Value>, path: &str) -> Result<(Vec<Part>, bool), ApiError> {
    match content {
        None | Some(Value::Null) => Ok((Vec::new(), false)),
        Some(Value::String(text)) => Ok((vec![Part::Text(text.clone())], true)),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                let part_path = format!("{path}[{i}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => match part.get("text") {
                        Some(Value::String(text)) => out.push(Part::Text(text.clone())),
                        _ => return Err(ApiError::invalid(&format!("{part_path}.text"), "must be a string")),
                    },
                    Some("image_url") => {
                        let url = match part.get("image_url") {
                            Some(Value::String(url)) => url.as_str(),
                            Some(Value::Object(image)) => match image.get("url") {
                                Some(Value::String(url)) => url.as_str(),
                                _ => {
                                    return Err(ApiError::invalid(
                                        &format!("{part_path}.image_url.url"),
                                        "must be a string",
                                    ))
                                }
                            },
                            _ => return Err(ApiError::invalid(&format!("{part_path}.image_url"), "is required")),
                        };
                        out.push(Part::Image(parse_image_url(url, &format!("{part_path}.image_url.url"))?));
                    }
                    Some(other) => {
                        return Err(ApiError::invalid(
                            &format!("{part_path}.type"),
                            format!("content part type {other:?} is not supported (text and image_url are)"),
                        ))
                    }
                    None => return Err(ApiError::invalid(&format!("{part_path}.type"), "is required")),
                }
            }
            Ok((out, false))
        }
        Some(_) => Err(ApiError::invalid(path, "must be a string, an array of parts or null")),
    }
}

/// A data URI (`data:<type>;base64,<data>`) or an http(s) URL.
fn parse_image_url(url: &str, path: &str) -> Result<Image, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(ApiError::invalid(path, "a data URI needs a comma before its data"));
        };
        let Some(media_type) = meta.strip_suffix(";base64") else {
            return Err(ApiError::invalid(path, "only base64 data URIs are supported"));
        };
        return Ok(Image::Data { media_type: media_type.to_ascii_lowercase(), data: data.to_string() });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Image::Url(url.to_string()));
    }
    Err(ApiError::invalid(path, "must be an http(s) URL or a base64 data URI"))
}

fn parse_tool_call(call: &Value, path: &str) -> Result<ToolCall, ApiError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(&format!("{path}.id"), "is required"))?;
    if let Some(kind) = call.get("type").and_then(Value::as_str) {
        if kind != "function" {
            return Err(ApiError::invalid(&format!("{path}.type"), "only \"function\" tool calls are supported"));
        }
    }
    let function = call.get("function").ok_or_else(|| ApiError::invalid(&format!("{path}.function"), "is required"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(&format!("{path}.function.name"), "is required"))?;
    let arguments = match function.get("arguments") {
        Some(Value::String(arguments)) => arguments.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(_) => {
            return Err(ApiError::invalid(&format!("{path}.function.arguments"), "must be a JSON text (a string)"))
        }
    };
    Ok(ToolCall { id: id.to_string(), name: name.to_string(), arguments })
}

fn parse_tool(tool: Value, path: &str) -> Result<Tool, ApiError> {
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                &format!("{path}.type"),
                format!("tool type {other:?} is not supported (function is)"),
            ))
        }
        None => return Err(ApiError::invalid(&format!("{path}.type"), "is required")),
    }
    let Some(function) = tool.get("function") else {
        return Err(ApiError::invalid(&format!("{path}.function"), "is required"));
    };
    let name = match function.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(ApiError::invalid(&format!("{path}.function.name"), "must be a non-empty string")),
    };
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(ApiError::invalid(&format!("{path}.function.parameters"), "must be a JSON schema object"))
        }
    };
    Ok(Tool {
        name,
        description: function.get("description").and_then(Value::as_str).map(str::to_string),
        parameters,
        strict: function.get("strict").and_then(Value::as_bool),
    })
}

fn parse_tool_choice(choice: &Value) -> Result<ToolChoice, ApiError> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(ApiError::invalid("tool_choice", format!("{other:?} is not one of auto, none, required"))),
        },
        Value::Object(_) => match choice.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Ok(ToolChoice::Function(name.to_string())),
            None => Err(ApiError::invalid("tool_choice.function.name", "is required")),
        },
        _ => {
            Err(ApiError::invalid("tool_choice", "must be a string or {\"type\":\"function\",\"function\":{\"name\"}}"))
        }
    }
}

fn parse_response_format(format: &Value) -> Result<ResponseFormat, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let Some(spec) = format.get("json_schema") else {
                return Err(ApiError::invalid("response_format.json_schema", "is required"));
            };
            let Some(schema @ Value::Object(_)) = spec.get("schema") else {
                return Err(ApiError::invalid("response_format.json_schema.schema", "must be a JSON schema object"));
            };
            Ok(ResponseFormat::JsonSchema {
                name: spec.get("name").and_then(Value::as_str).unwrap_or("response").to_string(),
                schema: schema.clone(),
                strict: spec.get("strict").and_then(Value::as_bool),
            })
        }
        _ => Err(ApiError::invalid("response_format.type", "must be text, json_object or json_schema")),
    }
}

/// Writes the request back as OpenAI JSON (for OpenAI-family providers): known fields from the
/// representation, then the fields it does not model, as the client sent them.
pub fn write_request(request: &Request) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("model".into(), json!(request.model));
    let mut messages: Vec<Value> = request.system.iter().map(|s| json!({"role": "system", "content": s})).collect();
    for message in &request.messages {
        messages.push(write_message(message));
    }
    out.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|t| {
            let mut function = json!({"name": t.name, "parameters": t.parameters});
            if let Some(d) = &t.description {
                function["description"] = json!(d);
            }
            if let Some(s) = t.strict {
                function["strict"] = json!(s);
            }
            json!({"type": "function", "function": function})
        });
        out.insert("tools".into(), Value::Array(tools.collect()));
    }
    if let Some(choice) = &request.tool_choice {
        out.insert(
            "tool_choice".into(),
            match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
            },
        );
    }
    put(&mut out, "parallel_tool_calls", request.parallel_tool_calls.map(Value::from));
    if let Some(format) = &request.response_format {
        out.insert(
            "response_format".into(),
            match format {
                ResponseFormat::Text => json!({"type": "text"}),
                ResponseFormat::JsonObject => json!({"type": "json_object"}),
                ResponseFormat::JsonSchema { name, schema, strict } => {
                    let mut spec = json!({"name": name, "schema": schema});
                    if let Some(s) = strict {
                        spec["strict"] = json!(s);
                    }
                    json!({"type": "json_schema", "json_schema": spec})
                }
            },
        );
    }
    put(&mut out, "temperature", request.temperature.map(Value::from));
    put(&mut out, "top_p", request.top_p.map(Value::from));
    put(&mut out, "max_completion_tokens", request.max_tokens.map(Value::from));
    if !request.stop.is_empty() {
        out.insert("stop".into(), json!(request.stop));
    }
    put(&mut out, "seed", request.seed.map(Value::from));
    put(&mut out, "presence_penalty", request.presence_penalty.map(Value::from));
    put(&mut out, "frequency_penalty", request.frequency_penalty.map(Value::from));
    put(&mut out, "n", request.n.map(Value::from));
    put(&mut out, "user", request.user.clone().map(Value::from));
    if request.stream {
        out.insert("stream".into(), json!(true));
        if request.include_usage {
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    for (key, value) in &request.extra {
        out.insert(key.clone(), value.clone());
    }
    out
}

fn put(out: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        out.insert(key.into(), value);
    }
}

fn write_message(message: &Message) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let content = if message.content.is_empty() {
        Value::Null
    } else if message.plain {
        json!(message.text())
    } else {
        Value::Array(
            message
                .content
                .iter()
                .map(|part| match part {
                    Part::Text(text) => json!({"type": "text", "text": text}),
                    Part::Image(Image::Url(url)) => json!({"type": "image_url", "image_url": {"url": url}}),
                    Part::Image(Image::Data { media_type, data }) => {
                        json!({"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}})
                    }
                })
                .collect(),
        )
    };
    let mut out = json!({"role": role, "content": content});
    if !message.tool_calls.is_empty() {
        out["tool_calls"] = message
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    if let Some(id) = &message.tool_call_id {
        out["tool_call_id"] = json!(id);
    }
    if let Some(name) = &message.name {
        out["name"] = json!(name);
    }
    out
}

/// OpenAI's usage object.
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    })
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect()
}

/// A `chat.completion` answer.
pub fn write_response(response: &Response) -> Value {
    let choices: Vec<Value> = response.choices.iter().map(choice_json).collect();
    let mut out = json!({
        "id": response.id,
        "object": "chat.completion",
        "created": response.created,
        "model": response.model,
        "choices": choices,
    });
    if let Some(usage) = &response.usage {
        out["usage"] = usage_json(usage);
    }
    out
}

fn choice_json(choice: &Choice) -> Value {
    let mut message = json!({"role": "assistant", "content": choice.content});
    if let Some(reasoning) = &choice.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if !choice.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls_json(&choice.tool_calls);
    }
    json!({
        "index": choice.index,
        "message": message,
        "logprobs": null,
        "finish_reason": choice.finish_reason.map(FinishReason::as_str),
    })
}
