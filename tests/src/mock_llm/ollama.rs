//! Ollama: the native `POST /api/chat` (streams newline-delimited JSON unless `"stream": false`; tool-call
//! arguments are objects, and a string there is refused as Ollama's Go decoder refuses it; counts in
//! `prompt_eval_count` and `eval_count`; errors as `{"error": "..."}`) and the OpenAI-compatible
//! `/v1/chat/completions` (served by [`super::openai`]).

use serde_json::{json, Value};

use super::{Answer, Behavior, Ctx, Finish, Reply};

const CREATED_AT: &str = "2026-11-23T17:00:00.000000Z";

/// Answers one request.
pub fn respond(ctx: &Ctx) -> Reply {
    let req = ctx.req;
    let path = req.path_only();
    if path.starts_with("/v1/") {
        return super::openai::respond(ctx);
    }
    if path != "/api/chat" {
        return Reply::json(404, &json!({"error": "404 page not found"}));
    }
    if req.method != "POST" {
        return Reply::json(405, &json!({"error": "method not allowed"}));
    }
    if let Some(problem) = invalid(&req.body) {
        return Reply::json(400, &json!({"error": problem}));
    }
    let model = req.body.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let stream = req.body.get("stream").and_then(Value::as_bool).unwrap_or(true);
    match ctx.behavior {
        Behavior::Answer(answer) if stream => {
            Reply::stream("application/x-ndjson", lines(answer, &answer.model_for(&model)))
        }
        Behavior::Answer(answer) => Reply::json(200, &done(answer, &answer.model_for(&model), &whole_message(answer))),
        Behavior::Error { status, message, .. } => Reply::json(*status, &json!({"error": message})),
        Behavior::MidStreamError { answer, message } => {
            let mut lines = lines(answer, &answer.model_for(&model));
            lines.truncate(2);
            lines.push(format!("{}\n", json!({"error": message})).into_bytes());
            Reply::stream("application/x-ndjson", lines)
        }
        Behavior::Malformed | Behavior::NotJson => {
            let mut reply = Reply::json(200, &Value::Null);
            reply.events = vec![br#"{"model":"m","message":{"role":"assistant","content":"Hel"#.to_vec()];
            reply
        }
    }
}

fn invalid(body: &Value) -> Option<String> {
    if !body.is_object() {
        return Some("invalid character looking for beginning of value".into());
    }
    if body.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some("model is required".into());
    }
    for m in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !["system", "user", "assistant", "tool"].contains(&role) {
            return Some(format!("invalid role: {role}"));
        }
        for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            if call.pointer("/function/arguments").is_some_and(|a| !a.is_object()) {
                return Some("json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments".into());
            }
        }
    }
    None
}

fn done_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Length => "length",
        _ => "stop",
    }
}

fn whole_message(answer: &Answer) -> Value {
    let mut message = json!({"role": "assistant", "content": answer.text});
    if let Some(thinking) = &answer.reasoning {
        message["thinking"] = thinking.clone().into();
    }
    if !answer.tool_calls.is_empty() {
        message["tool_calls"] =
            answer.tool_calls.iter().map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}})).collect();
    }
    message
}

/// The final object (`done: true`) carrying `message`, the reason and the counts.
fn done(answer: &Answer, model: &str, message: &Value) -> Value {
    json!({"model": model, "created_at": CREATED_AT, "message": message, "done_reason": done_reason(answer.finish),
           "done": true, "total_duration": 4_883_583_458u64, "load_duration": 1_334_875, "prompt_eval_count": answer.usage.prompt,
           "prompt_eval_duration": 342_546_000, "eval_count": answer.usage.completion, "eval_duration": 4_535_599_000u64})
}

/// The NDJSON lines of a streamed answer.
pub fn lines(answer: &Answer, model: &str) -> Vec<Vec<u8>> {
    let line = |message: Value| json!({"model": model, "created_at": CREATED_AT, "message": message, "done": false});
    let mut out = Vec::new();
    if let Some(thinking) = &answer.reasoning {
        out.push(line(json!({"role": "assistant", "content": "", "thinking": thinking})));
    }
    for piece in answer.text_pieces() {
        out.push(line(json!({"role": "assistant", "content": piece})));
    }
    if !answer.tool_calls.is_empty() {
        let calls: Vec<Value> =
            answer.tool_calls.iter().map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}})).collect();
        out.push(line(json!({"role": "assistant", "content": "", "tool_calls": calls})));
    }
    out.push(done(answer, model, &json!({"role": "assistant", "content": ""})));
    out.iter().map(|v| format!("{v}\n").into_bytes()).collect()
}
