//! OpenAI, OpenAI-compatible hosts, Mistral and Azure: request, answer and stream golden translations.

use serde_json::{json, Value};

use super::{chat_request, chunk, encode, response, sse, stream, tool_args, tool_start, usage_chunk};
use crate::providers::openai_compat::mistral_id;

fn openai() -> Value {
    json!({"provider": "openai", "api_keys": ["k"]})
}

#[test]
fn openai_gets_the_request_back_with_renamed_max_tokens_and_unknown_fields_kept() {
    let mut request = chat_request();
    request["logprobs"] = json!(true);
    request["metadata"] = json!({"a": "b"});
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let (path, body) = encode(openai(), request.clone());
    assert_eq!(path, "/v1/chat/completions");
    let mut expected = request;
    let object = expected.as_object_mut().expect("object");
    object.remove("max_tokens");
    object.insert("max_completion_tokens".into(), json!(256));
    assert_eq!(body, expected);
}

#[test]
fn an_openai_compatible_host_is_reached_by_base_url() {
    let config = json!({"provider": "openai_compatible", "base_url": "https://api.groq.com/openai/v1/", "model_mapping": {"*": "llama-3.3-70b"}});
    let (path, body) = encode(config, json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(path, "/openai/v1/chat/completions");
    assert_eq!(body, json!({"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "hi"}]}));
}

#[test]
fn mistral_gets_its_renamings_and_nine_character_tool_call_ids() {
    let mut request = chat_request();
    request["seed"] = json!(3);
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    request["messages"][0]["role"] = json!("developer");
    let config = json!({"provider": "mistral", "api_keys": ["k"], "mistral": {"safe_prompt": true}});
    let (path, body) = encode(config, request);
    assert_eq!(path, "/v1/chat/completions");
    let (a, b) = (mistral_id("call_a"), mistral_id("call_b"));
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(body["messages"][2]["tool_calls"][0]["id"], json!(a));
    assert_eq!(body["messages"][2]["tool_calls"][1]["id"], json!(b));
    assert_eq!(body["messages"][3]["tool_call_id"], json!(a), "the result keeps pointing at its call");
    assert_eq!(body["messages"][4]["tool_call_id"], json!(b));
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["random_seed"], 3);
    assert_eq!(body["tool_choice"], "any");
    assert_eq!(body["safe_prompt"], true);
    for absent in ["max_completion_tokens", "seed", "stream_options"] {
        assert!(body.get(absent).is_none(), "{absent}: {body}");
    }
    for id in [a.as_str(), b.as_str()] {
        assert!(id.len() == 9 && id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
    }
    assert_ne!(a, b);
    assert_eq!(mistral_id("abcDEF123"), "abcDEF123", "valid ids are kept");
}

#[test]
fn azure_names_the_deployment_and_api_version() {
    let config = json!({"provider": "azure", "base_url": "https://acme.openai.azure.com", "api_keys": ["k"],
        "model_mapping": {"gpt-4o": "prod-4o"}, "azure": {"api_version": "2024-10-21"}});
    let (path, body) = encode(config, json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(path, "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21");
    assert_eq!(body["model"], "prod-4o");
}

#[test]
fn the_answer_keeps_id_and_created_and_maps_usage_details() {
    let answer = json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1_699_999_999, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
        ]}, "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 4}}
    });
    assert_eq!(
        response(openai(), answer),
        json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "created": 1_699_999_999, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]}, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
                "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 4}}
        })
    );
    let mistral = json!({"provider": "mistral", "api_keys": ["k"]});
    let cut =
        json!({"id": "x", "choices": [{"index": 0, "message": {"content": "a"}, "finish_reason": "model_length"}]});
    assert_eq!(response(mistral, cut)["choices"][0]["finish_reason"], "length");
}

fn openai_chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn the_stream_keeps_tool_call_indexes_and_puts_usage_last() {
    let body = sse(&[
        ("", openai_chunk(json!({"role": "assistant", "content": ""}), json!(null))),
        (
            "",
            openai_chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                json!(null),
            ),
        ),
        (
            "",
            openai_chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":\"Paris\"}"}}]}),
                json!(null),
            ),
        ),
        (
            "",
            openai_chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":"}}]}),
                json!(null),
            ),
        ),
        ("", openai_chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"Rome\"}"}}]}), json!(null))),
        ("", openai_chunk(json!({}), json!("tool_calls"))),
        (
            "",
            json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}}),
        ),
        ("", json!("[DONE]")),
    ]);
    let body = String::from_utf8(body).expect("utf-8").replace("data: \"[DONE]\"", "data: [DONE]");
    let id = "chatcmpl-up";
    assert_eq!(
        stream(openai(), body.as_bytes(), true),
        vec![
            chunk(
                id,
                tool_start(0, "call_1", "get_weather")
                    .as_object()
                    .cloned()
                    .map(|mut d| {
                        d.insert("role".into(), json!("assistant"));
                        Value::Object(d)
                    })
                    .expect("object"),
                json!(null)
            ),
            chunk(id, tool_args(0, "{\"city\":\"Paris\"}"), json!(null)),
            chunk(id, tool_start(1, "call_2", "get_weather"), json!(null)),
            chunk(id, tool_args(1, "{\"city\":"), json!(null)),
            chunk(id, tool_args(1, "\"Rome\"}"), json!(null)),
            chunk(id, json!({}), json!("tool_calls")),
            usage_chunk(id, 20, 10, 0, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn an_error_mid_stream_ends_it_and_no_usage_chunk_unless_asked() {
    let body = sse(&[
        ("", openai_chunk(json!({"role": "assistant", "content": "Hel"}), json!(null))),
        ("", json!({"error": {"message": "upstream timeout", "type": "server_error"}})),
    ]);
    assert_eq!(
        stream(openai(), &body, false),
        vec![
            chunk("chatcmpl-up", json!({"role": "assistant", "content": "Hel"}), json!(null)),
            json!({"error": {"message": "upstream timeout", "type": "server_error", "param": null, "code": null}}),
            json!("[DONE]"),
        ]
    );
    let plain = sse(&[("", openai_chunk(json!({"content": "Hi"}), json!("stop")))]);
    assert_eq!(
        stream(openai(), &plain, false),
        vec![
            chunk("chatcmpl-up", json!({"role": "assistant", "content": "Hi"}), json!(null)),
            chunk("chatcmpl-up", json!({}), json!("stop")),
            json!("[DONE]"),
        ],
        "[DONE] is added when the upstream ends without it"
    );
}

#[test]
fn azure_content_filter_chunks_without_an_id_do_not_blank_the_stream_id() {
    let azure = json!({"provider": "azure", "base_url": "https://acme.openai.azure.com", "api_keys": ["k"]});
    let body = sse(&[
        (
            "",
            json!({"id": "", "object": "", "created": 0, "model": "", "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}),
        ),
        ("", openai_chunk(json!({"role": "assistant", "content": "Hi"}), json!(null))),
        ("", openai_chunk(json!({}), json!("content_filter"))),
    ]);
    assert_eq!(
        stream(azure, &body, false),
        vec![
            chunk("chatcmpl-up", json!({"role": "assistant", "content": "Hi"}), json!(null)),
            chunk("chatcmpl-up", json!({}), json!("content_filter")),
            json!("[DONE]"),
        ]
    );
}
