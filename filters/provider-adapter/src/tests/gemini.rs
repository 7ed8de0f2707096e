//! Gemini: request, answer and stream golden translations.

use serde_json::json;

use super::{chat_request, chunk, encode, response, sse, stream, tool_args, tool_start, usage_chunk, weather_schema};

fn config() -> serde_json::Value {
    json!({"provider": "gemini", "api_keys": ["k"], "model_mapping": {"gpt-4o": "gemini-2.5-flash"}})
}

#[test]
fn the_request_has_contents_parts_function_responses_by_name_and_generation_config() {
    let (path, body) = encode(config(), chat_request());
    assert_eq!(path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(
        body,
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "Weather in Paris and Rome?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
                ]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
                    {"text": "Thanks"}
                ]}
            ],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city", "parameters": weather_schema()}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "generationConfig": {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 256, "stopSequences": ["END"]}
        })
    );
}

#[test]
fn the_request_maps_json_schema_named_tools_and_streams_with_sse() {
    let request = json!({
        "model": "gpt-4o", "stream": true, "seed": 7, "n": 1, "presence_penalty": 0.5,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/cat.JPG?s=1"}}]}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "additionalProperties": false}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    });
    let (path, body) = encode(config(), request);
    assert_eq!(path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_eq!(
        body,
        json!({
            "contents": [{"role": "user", "parts": [{"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.JPG?s=1"}}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
            "generationConfig": {
                "candidateCount": 1, "seed": 7, "presencePenalty": 0.5,
                "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}
            }
        })
    );
}

#[test]
fn the_answer_mints_tool_call_ids_and_maps_usage_with_thoughts() {
    let answer = json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Thinking...", "thought": true},
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            "finishReason": "STOP", "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 2,
            "cachedContentTokenCount": 3, "totalTokenCount": 17}
    });
    assert_eq!(
        response(config(), answer),
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": "Checking.", "reasoning_content": "Thinking...",
                    "tool_calls": [
                        {"id": "call_chatcmpltest_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_chatcmpltest_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
                    ]
                },
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}
            }
        })
    );
    let table =
        [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"), ("OTHER", "stop")];
    for (reason, finish) in table {
        let answer = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        assert_eq!(response(config(), answer)["choices"][0]["finish_reason"], finish, "{reason}");
    }
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
    assert_eq!(response(config(), blocked)["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn the_stream_emits_whole_function_calls_and_remembers_them_for_the_finish() {
    let mut body = sse(&[
        ("", json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking"}]}, "index": 0}]})),
        (
            "",
            json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
        ]}, "index": 0}]}),
        ),
    ]);
    // The last frame: STOP without content, usage, CRLF separators.
    body.extend_from_slice(
        b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\"}],\
          \"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":5,\"totalTokenCount\":15}}\r\n\r\n",
    );
    let id = "chatcmpl-test";
    assert_eq!(
        stream(config(), &body, true),
        vec![
            chunk(id, json!({"role": "assistant", "content": "Checking"}), json!(null)),
            chunk(id, tool_start(0, "call_chatcmpltest_0", "get_weather"), json!(null)),
            chunk(id, tool_args(0, "{\"city\":\"Paris\"}"), json!(null)),
            chunk(id, tool_start(1, "call_chatcmpltest_1", "get_weather"), json!(null)),
            chunk(id, tool_args(1, "{\"city\":\"Rome\"}"), json!(null)),
            chunk(id, json!({}), json!("tool_calls")),
            usage_chunk(id, 10, 5, 0, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn an_error_frame_mid_stream_ends_it() {
    let body = sse(&[
        ("", json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})),
        ("", json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})),
    ]);
    assert_eq!(
        stream(config(), &body, true),
        vec![
            chunk("chatcmpl-test", json!({"role": "assistant", "content": "Hel"}), json!(null)),
            json!({"error": {"message": "The model is overloaded.", "type": "UNAVAILABLE", "param": null, "code": null}}),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn thought_parts_stream_as_reasoning_content_and_safety_is_a_content_filter() {
    let body = sse(&[
        ("", json!({"candidates": [{"content": {"parts": [{"text": "Considering.", "thought": true}]}}]})),
        ("", json!({"candidates": [{"content": {"parts": [{"text": "No."}]}, "finishReason": "SAFETY"}]})),
    ]);
    let id = "chatcmpl-test";
    assert_eq!(
        stream(config(), &body, false),
        vec![
            chunk(id, json!({"role": "assistant", "reasoning_content": "Considering."}), json!(null)),
            chunk(id, json!({"content": "No."}), json!(null)),
            chunk(id, json!({}), json!("content_filter")),
            json!("[DONE]"),
        ]
    );
}
