//! Ollama's native `/api/chat`: request, answer and NDJSON stream golden translations.

use serde_json::{json, Value};

use super::{chat_request, chunk, encode, response, stream, tool_args, tool_start, usage_chunk, weather_schema};

fn config() -> Value {
    json!({"provider": "ollama", "base_url": "http://127.0.0.1:11434", "model_mapping": {"*": "llama3.2"}})
}

#[test]
fn the_request_has_images_object_arguments_tool_names_and_options() {
    let (path, body) = encode(config(), chat_request());
    assert_eq!(path, "/api/chat");
    assert_eq!(
        body,
        json!({
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris and Rome?", "images": ["iVBORw0KGgo="]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}
                ]},
                {"role": "tool", "content": "{\"temp\":21}", "tool_name": "get_weather"},
                {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
                {"role": "user", "content": "Thanks"}
            ],
            "stream": false,
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": weather_schema()}}],
            "options": {"temperature": 0.5, "top_p": 0.9, "num_predict": 256, "stop": ["END"]}
        })
    );
}

#[test]
fn the_answer_maps_counts_and_object_arguments() {
    let answer = json!({
        "model": "llama3.2", "created_at": "2024-07-22T20:33:28.123Z",
        "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 12
    });
    assert_eq!(
        response(config(), answer),
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_chatcmpltest_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 26, "completion_tokens": 12, "total_tokens": 38,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}
            }
        })
    );
}

#[test]
fn the_ndjson_stream_becomes_chunks() {
    let lines = [
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": false}),
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": "lo"}, "done": false}),
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}
        ]}, "done": false}),
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
            "prompt_eval_count": 26, "eval_count": 12}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let id = "chatcmpl-test";
    assert_eq!(
        stream(config(), body.as_bytes(), true),
        vec![
            chunk(id, json!({"role": "assistant", "content": "Hel"}), json!(null)),
            chunk(id, json!({"content": "lo"}), json!(null)),
            chunk(id, tool_start(0, "call_chatcmpltest_0", "get_weather"), json!(null)),
            chunk(id, tool_args(0, "{\"city\":\"Paris\"}"), json!(null)),
            chunk(id, tool_start(1, "call_chatcmpltest_1", "get_weather"), json!(null)),
            chunk(id, tool_args(1, "{\"city\":\"Rome\"}"), json!(null)),
            chunk(id, json!({}), json!("tool_calls")),
            usage_chunk(id, 26, 12, 0, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn an_error_line_mid_stream_ends_it() {
    let body =
        "{\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n{\"error\":\"model crashed\"}\n";
    assert_eq!(
        stream(config(), body.as_bytes(), false),
        vec![
            chunk("chatcmpl-test", json!({"role": "assistant", "content": "Hel"}), json!(null)),
            json!({"error": {"message": "model crashed", "type": "api_error", "param": null, "code": null}}),
            json!("[DONE]"),
        ]
    );
}
