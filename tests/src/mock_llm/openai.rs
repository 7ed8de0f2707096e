//! OpenAI Chat Completions, and the hosts that speak it with their own accents: Azure OpenAI (deployment
//! paths, `api-key`, a required `api-version`, content-filter fields, a first stream chunk with no choices),
//! Mistral (tool-call ids of 9 alphanumerics only, usage on the last chunk, its own error body) and any
//! OpenAI-compatible host.

use serde_json::{json, Value};

use super::{Answer, Behavior, Ctx, Finish, Provider, Reply};

const CREATED: u64 = 1_700_000_000;

/// Answers one request as `ctx.provider` (one of the OpenAI flavours).
pub fn respond(ctx: &Ctx) -> Reply {
    let req = ctx.req;
    let path = req.path_only();
    if req.method == "GET" && path == "/v1/models" {
        return Reply::json(200, &models());
    }
    let model = match ctx.provider {
        Provider::Azure => {
            let Some(deployment) =
                path.strip_prefix("/openai/deployments/").and_then(|rest| rest.strip_suffix("/chat/completions"))
            else {
                return azure_error(404, "Resource not found");
            };
            if req.query("api-version").is_none() {
                return azure_error(404, "Resource not found");
            }
            req.body.get("model").and_then(Value::as_str).unwrap_or(deployment).to_string()
        }
        Provider::OpenAiCompatible if path.ends_with("/chat/completions") => model_of(&req.body),
        _ if path == "/v1/chat/completions" => model_of(&req.body),
        _ => return error(ctx, 404, &format!("Invalid URL ({} {})", req.method, path), None),
    };
    if req.method != "POST" {
        return error(ctx, 405, "Method not allowed", None);
    }
    let key = match ctx.provider {
        Provider::Azure => req.header("api-key"),
        _ => req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")),
    };
    if !ctx.key_ok(key) {
        return error(ctx, 401, "Incorrect API key provided.", None);
    }
    if let Some(problem) = invalid(ctx) {
        return error(ctx, 400, &problem, None);
    }
    let stream = req.body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = req.body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    match ctx.behavior {
        Behavior::Answer(answer) if stream => Reply::stream(
            "text/event-stream; charset=utf-8",
            chunks(answer, &answer.model_for(&model), ctx.seq, include_usage, ctx.provider),
        ),
        Behavior::Answer(answer) => {
            Reply::json(200, &completion(answer, &answer.model_for(&model), ctx.seq, ctx.provider))
        }
        Behavior::Error { status, message, retry_after } => error(ctx, *status, message, *retry_after),
        Behavior::MidStreamError { answer, message } => {
            let mut events = chunks(answer, &answer.model_for(&model), ctx.seq, false, ctx.provider);
            events.truncate(2);
            let err = json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
            events.push(format!("data: {err}\n\n").into_bytes());
            Reply::stream("text/event-stream; charset=utf-8", events)
        }
        Behavior::Malformed | Behavior::NotJson => malformed(),
    }
}

fn model_of(body: &Value) -> String {
    body.get("model").and_then(Value::as_str).unwrap_or("").to_string()
}

/// What the real service would refuse with 400, or `None`.
fn invalid(ctx: &Ctx) -> Option<String> {
    let body = &ctx.req.body;
    if !body.is_object() {
        return Some("We could not parse the JSON body of your request.".into());
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Some("Missing required parameter: 'messages'.".into());
    };
    if ctx.provider != Provider::Azure && body.get("model").and_then(Value::as_str).is_none() {
        return Some("Missing required parameter: 'model'.".into());
    }
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    if matches!(ctx.provider, Provider::OpenAi | Provider::Azure) && body.get("stream_options").is_some() && !streaming
    {
        return Some("The 'stream_options' parameter is only allowed when 'stream' is enabled.".into());
    }
    if ctx.provider == Provider::Mistral {
        let ids = messages.iter().flat_map(|m| {
            let calls = m.get("tool_calls").and_then(Value::as_array).cloned().unwrap_or_default();
            calls
                .into_iter()
                .filter_map(|c| c.get("id").and_then(Value::as_str).map(String::from))
                .chain(m.get("tool_call_id").and_then(Value::as_str).map(String::from))
        });
        for id in ids {
            if id.len() != 9 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Some(format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9."));
            }
        }
    }
    None
}

/// The `finish_reason` for `finish`.
pub fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

/// The `usage` object for `answer`.
pub fn usage(answer: &Answer, provider: Provider) -> Value {
    let u = answer.usage;
    if provider == Provider::Mistral {
        return json!({"prompt_tokens": u.prompt, "completion_tokens": u.completion,
                      "total_tokens": u.prompt + u.completion});
    }
    json!({
        "prompt_tokens": u.prompt, "completion_tokens": u.completion, "total_tokens": u.prompt + u.completion,
        "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

/// A `chat.completion` object.
pub fn completion(answer: &Answer, model: &str, seq: u64, provider: Provider) -> Value {
    let mut message = json!({"role": "assistant", "content": if answer.text.is_empty() { Value::Null } else { answer.text.clone().into() }});
    if provider != Provider::Mistral {
        message["refusal"] = Value::Null;
        message["annotations"] = json!([]);
    }
    if !answer.tool_calls.is_empty() {
        message["tool_calls"] = answer
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments.to_string()}}))
            .collect();
    }
    let mut choice =
        json!({"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(answer.finish)});
    let mut out = json!({
        "id": format!("chatcmpl-mock{seq}"), "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [], "usage": usage(answer, provider),
    });
    match provider {
        Provider::Azure => {
            choice["content_filter_results"] = content_filter_results();
            out["prompt_filter_results"] =
                json!([{"prompt_index": 0, "content_filter_results": content_filter_results()}]);
            out["system_fingerprint"] = "fp_mock".into();
        }
        Provider::OpenAi => {
            out["service_tier"] = "default".into();
            out["system_fingerprint"] = "fp_mock".into();
        }
        _ => {}
    }
    out["choices"] = json!([choice]);
    out
}

fn content_filter_results() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

/// The SSE events of a streamed answer, `data: [DONE]` included.
pub fn chunks(answer: &Answer, model: &str, seq: u64, include_usage: bool, provider: Provider) -> Vec<Vec<u8>> {
    let id = format!("chatcmpl-mock{seq}");
    let usage_null = include_usage && provider != Provider::Mistral;
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if usage_null {
            c["usage"] = Value::Null;
        }
        if provider == Provider::OpenAi {
            c["system_fingerprint"] = "fp_mock".into();
        }
        c
    };
    let mut out = Vec::new();
    if provider == Provider::Azure {
        out.push(json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": content_filter_results()}]}));
    }
    out.push(chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null));
    for piece in answer.text_pieces() {
        out.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (k, call) in answer.tool_calls.iter().enumerate() {
        out.push(chunk(
            json!({"tool_calls": [{"index": k, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in call.argument_pieces() {
            out.push(chunk(json!({"tool_calls": [{"index": k, "function": {"arguments": piece}}]}), Value::Null));
        }
    }
    let mut last = chunk(json!({}), finish_reason(answer.finish).into());
    if provider == Provider::Mistral {
        last["usage"] = usage(answer, provider);
    }
    out.push(last);
    if include_usage && provider != Provider::Mistral {
        let mut u = json!({"id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [], "usage": usage(answer, provider)});
        if provider == Provider::OpenAi {
            u["system_fingerprint"] = "fp_mock".into();
        }
        out.push(u);
    }
    let mut events: Vec<Vec<u8>> = out.iter().map(|c| format!("data: {c}\n\n").into_bytes()).collect();
    events.push(b"data: [DONE]\n\n".to_vec());
    events
}

/// An error in the flavour's shape, with `retry-after` (and OpenAI's rate-limit headers) on 429.
pub fn error(ctx: &Ctx, status: u16, message: &str, retry_after: Option<u64>) -> Reply {
    let (kind, code) = match status {
        400 => ("invalid_request_error", Value::Null),
        401 => ("invalid_request_error", "invalid_api_key".into()),
        403 => ("invalid_request_error", "unsupported_country_region_territory".into()),
        404 => ("invalid_request_error", "model_not_found".into()),
        429 => ("requests", "rate_limit_exceeded".into()),
        _ => ("server_error", Value::Null),
    };
    let mut reply = match ctx.provider {
        Provider::Azure => azure_error(status, message),
        Provider::Mistral => Reply::json(
            status,
            &json!({"object": "error", "message": message, "type": kind, "param": null, "code": code}),
        ),
        _ => Reply::json(status, &json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    };
    if let Some(seconds) = retry_after {
        reply = reply.with_header("retry-after", &seconds.to_string());
        if ctx.provider == Provider::OpenAi {
            reply = reply.with_header("x-ratelimit-reset-requests", &format!("{seconds}s"));
        }
    }
    reply
}

fn azure_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error": {"code": status.to_string(), "message": message}}))
}

/// 200 with a cut-off `chat.completion` body.
pub fn malformed() -> Reply {
    let mut reply = Reply::json(200, &Value::Null);
    reply.events =
        vec![br#"{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":"#.to_vec()];
    reply
}

fn models() -> Value {
    json!({"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": CREATED, "owned_by": "system"},
        {"id": "gpt-4o", "object": "model", "created": CREATED, "owned_by": "system"}
    ]})
}
