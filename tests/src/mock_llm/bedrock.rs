//! AWS Bedrock Converse (`POST /model/{modelId}/converse`, `/converse-stream`): SigV4 verified against the
//! configured secret (403 with `x-amzn-ErrorType` and `{"message"}` on mismatch) or a Bedrock API key as
//! bearer, the request checked as Bedrock does (a conversation starts with a user turn and alternates; no
//! empty content; no `toolUse` history without `toolConfig`), answers as Converse JSON or as binary
//! event-stream messages (`messageStart`, `contentBlockStart/Delta/Stop`, `messageStop`, `metadata`, and
//! exception frames), each event payload padded with Bedrock's `p` field.

use serde_json::{json, Value};

use super::eventstream::{event, exception};
use super::sigv4::verify;
use super::{Answer, Behavior, Ctx, Finish, Reply};

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Answers one request.
pub fn respond(ctx: &Ctx) -> Reply {
    let req = ctx.req;
    let path = req.path_only();
    let route = path.strip_prefix("/model/").and_then(|rest| {
        rest.strip_suffix("/converse-stream")
            .map(|m| (m, true))
            .or_else(|| rest.strip_suffix("/converse").map(|m| (m, false)))
    });
    let Some((_model, stream)) = route else {
        return error(404, "UnknownOperationException", "Unknown operation");
    };
    let bearer = req.header("authorization").and_then(|v| v.strip_prefix("Bearer "));
    let refusal = match (bearer, ctx.aws) {
        (Some(key), _) if !ctx.keys.is_empty() => (!ctx.key_ok(Some(key))).then(|| {
            ("AccessDeniedException", "Invalid API Key format: Must start with pre-defined prefix".to_string())
        }),
        (_, Some(creds)) => verify(req, creds, "bedrock").err().map(|r| (r.kind, r.message)),
        _ => None,
    };
    if let Some((kind, message)) = refusal {
        return error(403, kind, &message);
    }
    if req.method != "POST" {
        return error(405, "UnknownOperationException", "Method not allowed");
    }
    if let Some(problem) = invalid(&req.body) {
        return error(400, "ValidationException", &problem);
    }
    match ctx.behavior {
        Behavior::Answer(answer) if stream => {
            Reply::stream(EVENT_STREAM, events(answer)).with_header("x-amzn-requestid", "mock-request-id")
        }
        Behavior::Answer(answer) => {
            Reply::json(200, &converse(answer)).with_header("x-amzn-requestid", "mock-request-id")
        }
        Behavior::Error { status, message, .. } => error(*status, error_type(*status), message),
        Behavior::MidStreamError { answer, message } => {
            let mut events = events(answer);
            events.truncate(2);
            events.push(exception("modelStreamErrorException", message));
            Reply::stream(EVENT_STREAM, events)
        }
        Behavior::Malformed | Behavior::NotJson => {
            let mut reply = Reply::json(200, &Value::Null);
            reply.events = vec![br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hel"#.to_vec()];
            reply
        }
    }
}

fn invalid(body: &Value) -> Option<String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Some("1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null".into());
    };
    let mut previous = "";
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Some(format!("1 validation error detected: Value '{role}' at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", i + 1));
        }
        if i == 0 && role != "user" {
            return Some("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        }
        if role == previous {
            return Some("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        previous = role;
        let Some(content) = m.get("content").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
            return Some(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."));
        };
        let uses_tools = content.iter().any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());
        if uses_tools && body.get("toolConfig").is_none() {
            return Some(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks.".into(),
            );
        }
    }
    None
}

fn error_type(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

fn error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"message": message}))
        .with_header("x-amzn-errortype", &format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
        .with_header("x-amzn-requestid", "mock-request-id")
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "content_filtered",
    }
}

fn usage(answer: &Answer) -> Value {
    let u = answer.usage;
    let mut out = json!({"inputTokens": u.prompt - u.cached, "outputTokens": u.completion, "totalTokens": u.prompt + u.completion});
    if u.cached > 0 {
        out["cacheReadInputTokens"] = u.cached.into();
        out["cacheWriteInputTokens"] = 0.into();
    }
    out
}

/// A Converse answer.
pub fn converse(answer: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some(reasoning) = &answer.reasoning {
        content.push(json!({"reasoningContent": {"reasoningText": {"text": reasoning, "signature": "c2lnbmF0dXJl"}}}));
    }
    if !answer.text.is_empty() {
        content.push(json!({"text": answer.text}));
    }
    for call in &answer.tool_calls {
        content.push(json!({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}}));
    }
    json!({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop_reason(answer.finish),
           "usage": usage(answer), "metrics": {"latencyMs": 321}})
}

/// Bedrock pads each event payload with a `p` field of varying length.
fn padded(mut payload: Value, n: usize) -> Value {
    payload["p"] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"[..(n * 7) % 53 + 1].into();
    payload
}

/// The event-stream messages of a streamed answer.
pub fn events(answer: &Answer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut push = |out: &mut Vec<Vec<u8>>, kind: &str, payload: Value| {
        n += 1;
        out.push(event(kind, &padded(payload, n)));
    };
    push(&mut out, "messageStart", json!({"role": "assistant"}));
    let mut index = 0;
    if let Some(reasoning) = &answer.reasoning {
        for piece in super::script::split_words(reasoning) {
            push(
                &mut out,
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}}),
            );
        }
        push(
            &mut out,
            "contentBlockDelta",
            json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": "c2lnbmF0dXJl"}}}),
        );
        push(&mut out, "contentBlockStop", json!({"contentBlockIndex": index}));
        index += 1;
    }
    if !answer.text.is_empty() {
        for piece in answer.text_pieces() {
            push(&mut out, "contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"text": piece}}));
        }
        push(&mut out, "contentBlockStop", json!({"contentBlockIndex": index}));
        index += 1;
    }
    for call in &answer.tool_calls {
        push(
            &mut out,
            "contentBlockStart",
            json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": call.id, "name": call.name}}}),
        );
        for piece in call.argument_pieces() {
            push(
                &mut out,
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}),
            );
        }
        push(&mut out, "contentBlockStop", json!({"contentBlockIndex": index}));
        index += 1;
    }
    push(&mut out, "messageStop", json!({"stopReason": stop_reason(answer.finish)}));
    push(&mut out, "metadata", json!({"usage": usage(answer), "metrics": {"latencyMs": 321}}));
    out
}
