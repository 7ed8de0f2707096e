//! Google Gemini (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`):
//! the key in `x-goog-api-key` or `?key=`, `contents` checked (roles `user` and `model` only), answers as
//! `GenerateContentResponse` (function calls without ids, `usageMetadata` with thought and cached counts),
//! streams as unnamed `data:` frames separated by `\r\n\r\n` with no `[DONE]` (a JSON array without
//! `alt=sse`), errors as `{"error":{"code","message","status"}}`.

use serde_json::{json, Value};

use super::{Answer, Behavior, Ctx, Finish, Reply};

/// Answers one request.
pub fn respond(ctx: &Ctx) -> Reply {
    let req = ctx.req;
    let path = req.path_only();
    let Some((model, method)) = path.strip_prefix("/v1beta/models/").and_then(|rest| rest.rsplit_once(':')) else {
        return error(404, &format!("The requested URL {path} was not found on this server."), None);
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return error(404, &format!("Method {method} not found."), None),
    };
    if req.method != "POST" {
        return error(405, "Method not allowed", None);
    }
    let key = req.header("x-goog-api-key").or_else(|| req.query("key"));
    match key {
        None => {
            return error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                None,
            )
        }
        Some(k) if !ctx.key_ok(Some(k)) => return error(400, "API key not valid. Please pass a valid API key.", None),
        Some(_) => {}
    }
    if let Some(problem) = invalid(&req.body) {
        return error(400, &problem, None);
    }
    let sse = req.query("alt") == Some("sse");
    match ctx.behavior {
        Behavior::Answer(answer) if stream => stream_reply(frames(answer, &answer.model_for(model), ctx.seq), sse),
        Behavior::Answer(answer) => Reply::json(200, &response(answer, &answer.model_for(model), ctx.seq)),
        Behavior::Error { status, message, retry_after } => error(*status, message, *retry_after),
        Behavior::MidStreamError { answer, message } => {
            let mut frames = frames(answer, &answer.model_for(model), ctx.seq);
            frames.truncate(2);
            frames.push(json!({"error": {"code": 500, "message": message, "status": "INTERNAL"}}));
            stream_reply(frames, sse)
        }
        Behavior::Malformed | Behavior::NotJson => {
            let mut reply = Reply::json(200, &Value::Null);
            reply.events = vec![br#"{"candidates":[{"content":{"parts":[{"text":"Hel"#.to_vec()];
            reply
        }
    }
}

fn invalid(body: &Value) -> Option<String> {
    if !body.is_object() {
        return Some("Invalid JSON payload received.".into());
    }
    let Some(contents) = body.get("contents").and_then(Value::as_array) else {
        return Some("* GenerateContentRequest.contents: contents is not specified".into());
    };
    if contents.is_empty() {
        return Some("* GenerateContentRequest.contents: contents is not specified".into());
    }
    for (i, c) in contents.iter().enumerate() {
        match c.get("role").and_then(Value::as_str) {
            None | Some("user") | Some("model") => {}
            Some(_) => return Some("Please use a valid role: user, model.".into()),
        }
        if c.get("parts").and_then(Value::as_array).is_none_or(|p| p.is_empty()) {
            return Some(format!("* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."));
        }
    }
    None
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

fn error(status: u16, message: &str, retry_after: Option<u64>) -> Reply {
    let mut err = json!({"code": status, "message": message, "status": status_name(status)});
    if let Some(seconds) = retry_after {
        err["details"] =
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s")}]);
    }
    Reply::json(status, &json!({"error": err}))
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "STOP",
        Finish::Length => "MAX_TOKENS",
        Finish::ContentFilter => "SAFETY",
    }
}

/// `usageMetadata` for the whole answer.
fn usage(answer: &Answer) -> Value {
    let u = answer.usage;
    let mut m = json!({"promptTokenCount": u.prompt, "candidatesTokenCount": u.completion - u.reasoning,
        "totalTokenCount": u.prompt + u.completion,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.prompt}]});
    if u.cached > 0 {
        m["cachedContentTokenCount"] = u.cached.into();
    }
    if u.reasoning > 0 {
        m["thoughtsTokenCount"] = u.reasoning.into();
    }
    m
}

fn candidate(parts: Vec<Value>, finish: Option<&str>) -> Value {
    let mut c = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        c["finishReason"] = f.into();
    }
    c
}

/// A `GenerateContentResponse`.
pub fn response(answer: &Answer, model: &str, seq: u64) -> Value {
    let mut parts = Vec::new();
    if let Some(thought) = &answer.reasoning {
        parts.push(json!({"text": thought, "thought": true}));
    }
    if !answer.text.is_empty() {
        parts.push(json!({"text": answer.text}));
    }
    for call in &answer.tool_calls {
        parts.push(json!({"functionCall": {"name": call.name, "args": call.arguments}}));
    }
    json!({"candidates": [candidate(parts, Some(finish_reason(answer.finish)))], "usageMetadata": usage(answer),
           "modelVersion": model, "responseId": format!("mockresp{seq}")})
}

/// The streamed `GenerateContentResponse` frames: thought, text pieces, all function calls in one frame, then
/// a final frame with the finish reason and the full usage (earlier frames carry the prompt count only).
pub fn frames(answer: &Answer, model: &str, seq: u64) -> Vec<Value> {
    let p = answer.usage.prompt;
    let frame = |parts: Vec<Value>, finish: Option<&str>, usage: Value| {
        json!({"candidates": [candidate(parts, finish)], "usageMetadata": usage, "modelVersion": model,
               "responseId": format!("mockresp{seq}")})
    };
    let early = json!({"promptTokenCount": p, "totalTokenCount": p});
    let mut out = Vec::new();
    if let Some(thought) = &answer.reasoning {
        out.push(frame(vec![json!({"text": thought, "thought": true})], None, early.clone()));
    }
    for piece in answer.text_pieces() {
        out.push(frame(vec![json!({"text": piece})], None, early.clone()));
    }
    if !answer.tool_calls.is_empty() {
        let calls =
            answer.tool_calls.iter().map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}})).collect();
        out.push(frame(calls, None, early.clone()));
    }
    out.push(frame(vec![json!({"text": ""})], Some(finish_reason(answer.finish)), usage(answer)));
    out
}

fn stream_reply(frames: Vec<Value>, sse: bool) -> Reply {
    if sse {
        return Reply::stream(
            "text/event-stream",
            frames.iter().map(|f| format!("data: {f}\r\n\r\n").into_bytes()).collect(),
        );
    }
    let n = frames.len();
    let events = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!("{}{f}{}", if i == 0 { "[" } else { "\n" }, if i + 1 == n { "]" } else { "\n," }).into_bytes()
        })
        .collect();
    Reply::stream("application/json; charset=UTF-8", events)
}
