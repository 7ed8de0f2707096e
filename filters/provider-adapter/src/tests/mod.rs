//! Tests: golden translations per provider (request, answer, stream event by event at every split point,
//! parallel tool calls, a mid-stream error), the error mapping table, request validation, configuration
//! errors, and the filter's phases on the SDK's fake host.

use serde_json::{json, Value};

use crate::chunks::ChunkWriter;
use crate::config::Settings;
use crate::openai;
use crate::providers::{self, Answer, StreamDecoder};

mod anthropic;
mod bedrock;
mod errors;
mod filter;
mod gemini;
mod ollama;
mod openai_family;

/// Settings from a configuration, environment variables read from `env`.
pub(crate) fn settings_with(config: Value, env: &[(&str, &str)]) -> Settings {
    let config = crate::config::parse(&config).expect("the configuration parses");
    config.compile(|name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())).expect("compiles")
}

/// Settings from a configuration.
pub(crate) fn settings(config: Value) -> Settings {
    settings_with(config, &[])
}

/// The request every golden test translates: a system prompt, an image, parallel tool calls and their
/// results, tools, a forced tool choice, sampling, a stop sequence and max_tokens.
pub(crate) fn chat_request() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\":21}"},
            {"role": "tool", "tool_call_id": "call_b", "content": "sunny"},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}],
        "tool_choice": "required",
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 256,
        "stop": ["END"]
    })
}

/// The weather tool's schema.
pub(crate) fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

/// Translates `request` for `config`'s provider: the path and the body as JSON.
pub(crate) fn encode(config: Value, request: Value) -> (String, Value) {
    let settings = settings(config);
    let mut parsed = openai::parse_request(request.to_string().as_bytes()).expect("a valid request");
    parsed.model = settings.models.map(&parsed.client_model);
    let out = providers::encode(&settings, &parsed).expect("encodes");
    (out.path, serde_json::from_slice(&out.body).expect("the body is JSON"))
}

/// What answers carry when the provider gives no id.
pub(crate) fn answer() -> Answer {
    Answer { id: "chatcmpl-test".into(), created: 1_700_000_000, model: "gpt-4o".into() }
}

/// A provider's JSON answer, translated to OpenAI's.
pub(crate) fn response(config: Value, body: Value) -> Value {
    let settings = settings(config);
    let decoded =
        providers::decode_response(settings.provider, body.to_string().as_bytes(), &answer()).expect("decodes");
    openai::write_response(&decoded)
}

/// The frames a stream becomes, fed in two pieces split at `split`.
fn frames_split(settings: &Settings, bytes: &[u8], split: usize, include_usage: bool) -> Vec<Value> {
    let a = answer();
    let mut decoder = StreamDecoder::new(settings, &a);
    let mut writer = ChunkWriter::new(a.id.clone(), a.created, a.model.clone(), include_usage);
    let mut out = Vec::new();
    for piece in [&bytes[..split], &bytes[split..]] {
        let mut events = Vec::new();
        let result = decoder.feed(piece, &mut events);
        for event in events {
            writer.write(event, &mut out);
        }
        result.expect("the stream decodes");
    }
    let mut events = Vec::new();
    decoder.finish(&mut events).expect("the stream ends cleanly");
    for event in events {
        writer.write(event, &mut out);
    }
    writer.end(&mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.ends_with("\n\n"), "{text}");
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let data = f.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data frame: {f:?}"));
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
        })
        .collect()
}

/// The frames a stream becomes; the same whatever byte boundary splits it.
pub(crate) fn stream(config: Value, bytes: &[u8], include_usage: bool) -> Vec<Value> {
    let settings = settings(config);
    let whole = frames_split(&settings, bytes, bytes.len(), include_usage);
    for split in 0..bytes.len() {
        assert_eq!(frames_split(&settings, bytes, split, include_usage), whole, "split at byte {split}");
    }
    whole
}

/// An expected chunk of the test stream `id`.
pub(crate) fn chunk(id: &str, delta: Value, finish: Value) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    })
}

/// The expected usage-only chunk.
pub(crate) fn usage_chunk(id: &str, prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o", "choices": [],
        "usage": {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning}
        }
    })
}

/// An expected tool-call start delta.
pub(crate) fn tool_start(index: u32, id: &str, name: &str) -> Value {
    json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]})
}

/// An expected tool-call arguments delta.
pub(crate) fn tool_args(index: u32, arguments: &str) -> Value {
    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
}

/// An SSE body from `(event name, data)` pairs.
pub(crate) fn sse(events: &[(&str, Value)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, data) in events {
        if !name.is_empty() {
            out.push_str(&format!("event: {name}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
    }
    out.into_bytes()
}
