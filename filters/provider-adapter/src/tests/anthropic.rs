//! Anthropic Messages: request, answer and stream golden translations.

use serde_json::json;

use super::{chat_request, chunk, encode, response, sse, stream, tool_args, tool_start, usage_chunk, weather_schema};

fn config() -> serde_json::Value {
    json!({"provider": "anthropic", "api_keys": ["k"], "model_mapping": {"gpt-4o": "claude-sonnet-4-5"}})
}

#[test]
fn the_request_lifts_system_batches_tool_results_and_merges_turns() {
    let (path, body) = encode(config(), chat_request());
    assert_eq!(path, "/v1/messages");
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris and Rome?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "{\"temp\":21}"},
                    {"type": "tool_result", "tool_use_id": "call_b", "content": "sunny"},
                    {"type": "text", "text": "Thanks"}
                ]}
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "tools": [{"name": "get_weather", "description": "Weather for a city", "input_schema": weather_schema()}],
            "tool_choice": {"type": "any"}
        })
    );
}

#[test]
fn the_request_fills_max_tokens_and_maps_the_other_options() {
    let request = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "One."}, {"role": "system", "content": "Two."},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}},
        "user": "u-1",
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    let (_, body) = encode(config(), request);
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "system": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
            "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]}],
            "stream": true,
            "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "metadata": {"user_id": "u-1"}
        })
    );
}

#[test]
fn the_answer_maps_text_tool_use_stop_reason_and_cached_usage() {
    let answer = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2, "output_tokens": 30}
    });
    assert_eq!(
        response(config(), answer),
        json!({
            "id": "msg_01", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": "Checking both.", "reasoning_content": "Two cities.",
                    "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
                    ]
                },
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 16, "completion_tokens": 30, "total_tokens": 46,
                "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}
            }
        })
    );
    for (reason, finish) in
        [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("refusal", "content_filter")]
    {
        let answer = json!({"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": reason});
        assert_eq!(response(config(), answer)["choices"][0]["finish_reason"], finish, "{reason}");
    }
}

fn start() -> (&'static str, serde_json::Value) {
    (
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [], "stop_reason": null,
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
    )
}

#[test]
fn the_stream_maps_block_indexes_to_tool_indexes_and_sets_usage() {
    let body = sse(&[
        start(),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":\"Rome\"}"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 2})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    assert_eq!(
        stream(config(), &body, true),
        vec![
            chunk("msg_1", json!({"role": "assistant", "content": "Checking"}), json!(null)),
            chunk("msg_1", tool_start(0, "toolu_1", "get_weather"), json!(null)),
            chunk("msg_1", tool_args(0, "{\"city\":"), json!(null)),
            chunk("msg_1", tool_args(0, "\"Paris\"}"), json!(null)),
            chunk("msg_1", tool_start(1, "toolu_2", "get_weather"), json!(null)),
            chunk("msg_1", tool_args(1, "{\"city\":\"Rome\"}"), json!(null)),
            chunk("msg_1", json!({}), json!("tool_calls")),
            usage_chunk("msg_1", 14, 42, 4, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn an_error_event_mid_stream_ends_it_with_an_error_frame() {
    let body = sse(&[
        start(),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        ),
        ("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
    ]);
    assert_eq!(
        stream(config(), &body, false),
        vec![
            chunk("msg_1", json!({"role": "assistant", "content": "Hel"}), json!(null)),
            json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null, "code": null}}),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn thinking_deltas_stream_as_reasoning_content_apart_from_text() {
    let body = sse(&[
        start(),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Yes."}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    assert_eq!(
        stream(config(), &body, false),
        vec![
            chunk("msg_1", json!({"role": "assistant", "reasoning_content": "Hmm."}), json!(null)),
            chunk("msg_1", json!({"content": "Yes."}), json!(null)),
            chunk("msg_1", json!({}), json!("length")),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn a_tool_result_that_reports_an_error_is_flagged() {
    let request = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"error\": \"city not found\"}"}
    ]});
    let (_, body) = encode(config(), request.clone());
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "{\"error\": \"city not found\"}", "is_error": true}
        ]})
    );
    let bedrock = json!({"provider": "bedrock", "bedrock": {"region": "us-east-1", "access_key_id": "a", "secret_access_key": "s"}});
    let (_, body) = encode(bedrock, request);
    assert_eq!(
        body["messages"][2]["content"][0],
        json!({"toolResult": {"toolUseId": "c1", "content": [{"json": {"error": "city not found"}}], "status": "error"}})
    );
}
