//! Anthropic Messages (`POST /v1/messages`): `x-api-key` and `anthropic-version` required, the request
//! checked as the API does (roles, `max_tokens`, no system messages in `messages`), answers as `message`
//! objects or named SSE events (`message_start`, `content_block_*`, `ping`, `message_delta`, `message_stop`,
//! `event: error`), errors as `{"type":"error","error":{...}}` with 529 for overload.

use serde_json::{json, Value};

use super::{Answer, Behavior, Ctx, Finish, Reply};

/// Answers one request.
pub fn respond(ctx: &Ctx) -> Reply {
    let req = ctx.req;
    if req.path_only() != "/v1/messages" {
        return error(404, "not_found_error", &format!("{} {} not found", req.method, req.path_only()), None);
    }
    if req.method != "POST" {
        return error(405, "invalid_request_error", "Method Not Allowed", None);
    }
    match req.header("x-api-key") {
        None => return error(401, "authentication_error", "x-api-key header is required", None),
        Some(key) if !ctx.key_ok(Some(key)) => return error(401, "authentication_error", "invalid x-api-key", None),
        Some(_) => {}
    }
    if req.header("anthropic-version").is_none() {
        return error(400, "invalid_request_error", "anthropic-version: header is required", None);
    }
    if let Some(problem) = invalid(&req.body) {
        return error(400, "invalid_request_error", &problem, None);
    }
    let model = req.body.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let stream = req.body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    match ctx.behavior {
        Behavior::Answer(answer) if stream => {
            Reply::stream("text/event-stream; charset=utf-8", events(answer, &answer.model_for(&model), ctx.seq))
        }
        Behavior::Answer(answer) => Reply::json(200, &message(answer, &answer.model_for(&model), ctx.seq)),
        Behavior::Error { status, message, retry_after } => error(*status, error_type(*status), message, *retry_after),
        Behavior::MidStreamError { answer, message } => {
            let mut events = events(answer, &answer.model_for(&model), ctx.seq);
            events.truncate(4);
            events.push(sse(
                "error",
                &json!({"type": "error", "error": {"type": "overloaded_error", "message": message}}),
            ));
            Reply::stream("text/event-stream; charset=utf-8", events)
        }
        Behavior::Malformed | Behavior::NotJson => {
            let mut reply = Reply::json(200, &Value::Null);
            reply.events =
                vec![br#"{"id":"msg_broken","type":"message","content":[{"type":"text","text":"Hel"#.to_vec()];
            reply
        }
    }
}

/// What the real API refuses with 400, or `None`.
fn invalid(body: &Value) -> Option<String> {
    if !body.is_object() {
        return Some("Request body is not valid JSON".into());
    }
    if body.get("model").and_then(Value::as_str).is_none() {
        return Some("model: Field required".into());
    }
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Some("max_tokens: Field required".into());
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Some("messages: Field required".into());
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Some(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        if !(m.get("content").is_some_and(|c| c.is_string() || c.is_array())) {
            return Some(format!("messages.{i}.content: Field required"));
        }
    }
    None
}

/// The error `type` the API uses for `status`.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn error(status: u16, kind: &str, message: &str, retry_after: Option<u64>) -> Reply {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"});
    let mut reply = Reply::json(status, &body).with_header("request-id", "req_mock");
    if let Some(seconds) = retry_after {
        reply = reply.with_header("retry-after", &seconds.to_string());
    }
    reply
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

fn usage(answer: &Answer) -> Value {
    let u = answer.usage;
    json!({"input_tokens": u.prompt - u.cached, "cache_creation_input_tokens": 0,
           "cache_read_input_tokens": u.cached, "output_tokens": u.completion})
}

/// A `message` object.
pub fn message(answer: &Answer, model: &str, seq: u64) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &answer.reasoning {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": "c2lnbmF0dXJl"}));
    }
    if !answer.text.is_empty() {
        content.push(json!({"type": "text", "text": answer.text}));
    }
    for call in &answer.tool_calls {
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}));
    }
    json!({"id": format!("msg_mock{seq}"), "type": "message", "role": "assistant", "model": model,
           "content": content, "stop_reason": stop_reason(answer.finish), "stop_sequence": null, "usage": usage(answer)})
}

fn sse(event: &str, data: &Value) -> Vec<u8> {
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

/// The named SSE events of a streamed answer.
pub fn events(answer: &Answer, model: &str, seq: u64) -> Vec<Vec<u8>> {
    let u = answer.usage;
    let mut start_usage = usage(answer);
    start_usage["output_tokens"] = 1.into();
    let mut out = vec![sse(
        "message_start",
        &json!({"type": "message_start", "message": {"id": format!("msg_mock{seq}"), "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": start_usage}}),
    )];
    let mut index = 0;
    let mut pinged = false;
    let mut block = |out: &mut Vec<Vec<u8>>, start: Value, deltas: Vec<Value>| {
        out.push(sse(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if !pinged {
            out.push(sse("ping", &json!({"type": "ping"})));
            pinged = true;
        }
        for delta in deltas {
            out.push(sse(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        out.push(sse("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
        index += 1;
    };
    if let Some(thinking) = &answer.reasoning {
        let mut deltas: Vec<Value> = super::script::split_words(thinking)
            .into_iter()
            .map(|t| json!({"type": "thinking_delta", "thinking": t}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": "c2lnbmF0dXJl"}));
        block(&mut out, json!({"type": "thinking", "thinking": "", "signature": ""}), deltas);
    }
    if !answer.text.is_empty() {
        let deltas = answer.text_pieces().into_iter().map(|t| json!({"type": "text_delta", "text": t})).collect();
        block(&mut out, json!({"type": "text", "text": ""}), deltas);
    }
    for call in &answer.tool_calls {
        let deltas = call
            .argument_pieces()
            .into_iter()
            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
            .collect();
        block(&mut out, json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}), deltas);
    }
    out.push(sse(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(answer.finish), "stop_sequence": null},
            "usage": {"input_tokens": u.prompt - u.cached, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": u.cached, "output_tokens": u.completion}}),
    ));
    out.push(sse("message_stop", &json!({"type": "message_stop"})));
    out
}
