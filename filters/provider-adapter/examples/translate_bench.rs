//! Translation overhead, natively: CPU time per request for a ~4 KB chat request translated to each provider,
//! and for a 200-event stream translated to OpenAI chunks (fed in 1 KB body chunks, as a host would).
//!
//! `cargo run --release -p weir-filter-provider-adapter --example translate_bench [iterations]`
//!
//! Prints one line per case: microseconds per request (median of 5 rounds). Not a test: nothing is asserted.

use std::time::Instant;

use provider_adapter::chunks::ChunkWriter;
use provider_adapter::ir::StreamEvent;
use provider_adapter::openai::parse_request;
use provider_adapter::providers::{encode, Answer, StreamDecoder};
use serde_json::json;

fn settings(config: serde_json::Value) -> provider_adapter::config::Settings {
    provider_adapter::config::parse(&config).and_then(|c| c.compile(|_| None)).expect("a valid configuration")
}

/// A chat request of about 4 KB: a system prompt, 8 turns, a tool call and its result, two tools.
fn request_4k() -> Vec<u8> {
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(7);
    let mut messages = vec![json!({"role": "system", "content": "You are a helpful assistant. Be brief."})];
    for i in 0..8 {
        messages.push(json!({"role": "user", "content": format!("Question {i}: {filler}")}));
        messages.push(json!({"role": "assistant", "content": format!("Answer {i}.")}));
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}));
    messages.push(json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"}));
    let tool = |name: &str| {
        json!({"type": "function", "function": {"name": name, "description": "A tool",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
    };
    json!({"model": "gpt-4o", "messages": messages, "tools": [tool("get_weather"), tool("get_time")],
        "temperature": 0.3, "max_tokens": 512, "stream": true})
    .to_string()
    .into_bytes()
}

/// An Anthropic stream of 200 events: start, 196 text deltas, delta, stop.
fn anthropic_stream_200() -> Vec<u8> {
    let mut out = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":900,\"output_tokens\":1}}}\n\n");
    out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for i in 0..196 {
        out.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token {i} \"}}}}\n\n"));
    }
    out.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":196}}\n\n");
    out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out.into_bytes()
}

fn median(mut rounds: Vec<f64>) -> f64 {
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn time(iterations: u32, mut f: impl FnMut()) -> f64 {
    let rounds = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
        })
        .collect();
    median(rounds)
}

fn main() {
    let iterations: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let body = request_4k();
    println!("request: {} bytes, {iterations} iterations x 5 rounds (median)", body.len());
    for provider in ["openai", "anthropic", "gemini", "ollama"] {
        let settings = settings(json!({"provider": provider, "api_keys": ["k"], "base_url": "http://127.0.0.1:1"}));
        let us = time(iterations, || {
            let mut request = parse_request(&body).expect("parses");
            request.model = settings.models.map(&request.client_model);
            std::hint::black_box(encode(&settings, &request).expect("encodes"));
        });
        println!("request -> {provider:<10} {us:>8.2} us/request");
    }
    let stream = anthropic_stream_200();
    let settings = settings(json!({"provider": "anthropic", "api_keys": ["k"]}));
    let answer = Answer { id: "chatcmpl-bench".into(), created: 0, model: "gpt-4o".into() };
    let us = time(iterations / 4 + 1, || {
        let mut decoder = StreamDecoder::new(&settings, &answer);
        let mut writer = ChunkWriter::new(answer.id.clone(), 0, answer.model.clone(), true);
        let mut out = Vec::new();
        let mut events: Vec<StreamEvent> = Vec::new();
        for piece in stream.chunks(1024) {
            decoder.feed(piece, &mut events).expect("decodes");
            for event in events.drain(..) {
                writer.write(event, &mut out);
            }
        }
        decoder.finish(&mut events).expect("ends");
        for event in events.drain(..) {
            writer.write(event, &mut out);
        }
        std::hint::black_box(out);
    });
    println!("stream: {} bytes, 200 events (anthropic -> openai chunks) {us:>8.2} us/stream", stream.len());
}
