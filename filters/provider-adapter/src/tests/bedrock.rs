//! Bedrock Converse: request, answer and event-stream golden translations.

use serde_json::{json, Value};

use super::{chat_request, chunk, encode, response, stream, tool_args, tool_start, usage_chunk, weather_schema};
use crate::eventstream;

fn config() -> Value {
    json!({"provider": "bedrock", "bedrock": {"region": "us-east-1", "access_key_id": "AKID", "secret_access_key": "secret"},
        "model_mapping": {"gpt-4o": "anthropic.claude-3-5-sonnet-20240620-v1:0"}})
}

#[test]
fn the_request_has_content_blocks_tool_use_tool_results_and_inference_config() {
    let (path, body) = encode(config(), chat_request());
    assert_eq!(path, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    assert_eq!(
        body,
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "Weather in Paris and Rome?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_a", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "call_b", "name": "get_weather", "input": {"city": "Rome"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_a", "content": [{"json": {"temp": 21}}]}},
                    {"toolResult": {"toolUseId": "call_b", "content": [{"text": "sunny"}]}},
                    {"text": "Thanks"}
                ]}
            ],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 256, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city", "inputSchema": {"json": weather_schema()}}}],
                "toolChoice": {"any": {}}
            }
        })
    );
}

#[test]
fn the_answer_maps_tool_use_stop_reason_and_usage() {
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30, "cacheReadInputTokens": 2},
        "metrics": {"latencyMs": 100}
    });
    assert_eq!(
        response(config(), answer),
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32,
                "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 0}
            }
        })
    );
    let table = [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
    ];
    for (reason, finish) in table {
        let answer = json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": reason});
        assert_eq!(response(config(), answer)["choices"][0]["finish_reason"], finish, "{reason}");
    }
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    eventstream::encode(
        &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        payload.to_string().as_bytes(),
    )
}

#[test]
fn the_event_stream_becomes_chunks_with_parallel_tool_calls() {
    let body: Vec<u8> = [
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Checking"}})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":\"Paris\"}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather"}}}),
        ),
        event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"city\":"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"Rome\"}"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30}, "metrics": {"latencyMs": 5}}),
        ),
    ]
    .concat();
    let id = "chatcmpl-test";
    assert_eq!(
        stream(config(), &body, true),
        vec![
            chunk(id, json!({"role": "assistant", "content": "Checking"}), json!(null)),
            chunk(id, tool_start(0, "tooluse_1", "get_weather"), json!(null)),
            chunk(id, tool_args(0, "{\"city\":\"Paris\"}"), json!(null)),
            chunk(id, tool_start(1, "tooluse_2", "get_weather"), json!(null)),
            chunk(id, tool_args(1, "{\"city\":"), json!(null)),
            chunk(id, tool_args(1, "\"Rome\"}"), json!(null)),
            chunk(id, json!({}), json!("tool_calls")),
            usage_chunk(id, 10, 20, 0, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn an_exception_frame_mid_stream_ends_it() {
    let body: Vec<u8> = [
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}})),
        eventstream::encode(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        ),
    ]
    .concat();
    assert_eq!(
        stream(config(), &body, false),
        vec![
            chunk("chatcmpl-test", json!({"role": "assistant", "content": "Hel"}), json!(null)),
            json!({"error": {"message": "Too many requests, please wait before trying again.", "type": "throttlingException",
                "param": null, "code": null}}),
            json!("[DONE]"),
        ]
    );
}
