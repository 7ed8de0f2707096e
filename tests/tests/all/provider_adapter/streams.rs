//! Streams through every provider, cut by the mock at awkward byte offsets: chunk by chunk OpenAI SSE ending
//! with `data: [DONE]`, usage in the final chunk when `stream_options.include_usage` asks (and only then), token
//! counts that are set rather than added, and a provider error in the middle of a stream becoming the final
//! error event.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{json, Value};
use weir_tests::client::{request, send, Proto};
use weir_tests::mock_llm::{Answer, Behavior, Provider, Usage};

use super::{
    assert_usage, cases, chat_body, chunks, each, finish_reasons, one, pick, sse_data, streamed_text, timeout,
    with_rigs, Case,
};

const TEXT: &str = "Héllo wörld, a streamed answer in 世界 pieces.";

/// What the provider must have been asked for a stream.
fn assert_stream_request(case: &Case, body: &Value) {
    let name = case.name;
    match case.provider {
        Provider::OpenAi | Provider::Azure | Provider::OpenAiCompatible => {
            assert_eq!(body["stream"], true, "{name}: {body}");
            assert_eq!(body["stream_options"]["include_usage"], true, "{name}: {body}");
        }
        Provider::Mistral | Provider::Anthropic => assert_eq!(body["stream"], true, "{name}: {body}"),
        Provider::Ollama => assert_ne!(body["stream"], false, "{name}: {body}"),
        Provider::Gemini | Provider::Bedrock => {}
    }
}

#[tokio::test]
async fn streamed_answer_through_every_provider() {
    each(
        with_rigs(cases(), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            rig.mock.script(vec![Behavior::Answer(Answer::text(TEXT))]);
            let body = chat_body(json!({"stream": true, "stream_options": {"include_usage": true}}));
            let reply = rig.chat(&body).await;

            let got = rig.last();
            assert_eq!(got.path, case.stream_path, "{}", case.name);
            assert_stream_request(&case, &got.body);

            let all = chunks(case.name, &reply);
            // Azure's first chunk carries only its prompt filter results (no id, no choices): the real service
            // sends it, and an OpenAI client skips it.
            let chunks: Vec<Value> = all.into_iter().filter(|c| c.get("prompt_filter_results").is_none()).collect();
            let id = chunks[0]["id"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{}: {}", case.name, reply.body);
            for c in &chunks {
                assert_eq!(c["object"], "chat.completion.chunk", "{}: {c}", case.name);
                assert_eq!(c["id"], id.as_str(), "{}: one id for the whole stream", case.name);
            }
            let first =
                chunks.iter().find(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty())).expect("a choice");
            assert_eq!(first["choices"][0]["delta"]["role"], "assistant", "{}: {first}", case.name);
            assert_eq!(streamed_text(&chunks), TEXT, "{}", case.name);
            assert_eq!(finish_reasons(&chunks), ["stop"], "{}", case.name);
            let finish_at =
                chunks.iter().position(|c| c.pointer("/choices/0/finish_reason").is_some_and(Value::is_string));
            let last_text_at =
                chunks.iter().rposition(|c| c.pointer("/choices/0/delta/content").is_some_and(|t| t != ""));
            assert!(finish_at > last_text_at, "{}: finish_reason comes after the text", case.name);

            let last = chunks.last().expect("chunks");
            assert_eq!(last["usage"]["prompt_tokens"], 11, "{}: usage in the final chunk: {last}", case.name);
            assert_eq!(last["usage"]["completion_tokens"], 7, "{}: {last}", case.name);
            assert_eq!(last["usage"]["total_tokens"], 18, "{}: {last}", case.name);
            if case.provider != Provider::Mistral {
                assert_eq!(last["choices"], json!([]), "{}: the usage chunk has no choices: {last}", case.name);
            }
        },
    )
    .await;
}

/// Without `stream_options.include_usage` the client gets no usage-only chunk, even from providers that
/// always stream usage.
#[tokio::test]
async fn no_usage_chunk_unless_asked() {
    each(
        with_rigs(pick(&["anthropic", "gemini", "bedrock", "ollama"]), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            let reply = rig.chat(&chat_body(json!({"stream": true}))).await;
            let chunks = chunks(case.name, &reply);
            assert_eq!(streamed_text(&chunks), "Hello from the mock.", "{}", case.name);
            for c in &chunks {
                assert_ne!(c["choices"], json!([]), "{}: unrequested usage chunk {c}", case.name);
            }
        },
    )
    .await;
}

/// Anthropic's `output_tokens` is cumulative (1 in `message_start`, the total in `message_delta`) and Gemini
/// repeats `promptTokenCount` on every frame: the final usage is the last value, not a sum.
#[tokio::test]
async fn streamed_usage_is_set_not_added() {
    let usage = Usage { prompt: 100, cached: 40, completion: 30, reasoning: 12 };
    // (case, cached reported, reasoning reported)
    let table = [("anthropic", true, false), ("gemini", true, true), ("bedrock", true, false)];
    each(
        with_rigs(table, |r| one(r.0)).await,
        |(r, _)| r.0.to_string(),
        move |((name, cached, reasoning), rig)| async move {
            rig.mock.script(vec![Behavior::Answer(Answer::text("one two three four").with_usage(usage))]);
            let reply = rig.chat(&chat_body(json!({"stream": true, "stream_options": {"include_usage": true}}))).await;
            let chunks = chunks(name, &reply);
            let u = &chunks.last().expect("chunks")["usage"];
            assert_usage(name, u, cached, reasoning);
        },
    )
    .await;
}

/// A provider error after the stream started cannot change the status (200 is sent): the client gets the
/// text so far, then one `data: {"error": ...}` event, and the stream ends.
#[tokio::test]
async fn mid_stream_error_becomes_the_final_error_event() {
    each(
        with_rigs(cases(), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            let answer = Answer::text("partial answer that never finishes");
            rig.mock.script(vec![Behavior::MidStreamError { answer, message: "upstream exploded".into() }]);
            let reply = rig.chat(&chat_body(json!({"stream": true}))).await;
            assert_eq!(reply.status, 200, "{}: {}", case.name, reply.body);

            let mut data = sse_data(&reply.body);
            if data.last().map(String::as_str) == Some("[DONE]") {
                data.pop();
            }
            let events: Vec<Value> = data
                .iter()
                .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {d}", case.name)))
                .collect();
            let last = events.last().unwrap_or_else(|| panic!("{}: no events: {}", case.name, reply.body));
            let message = last.pointer("/error/message").and_then(Value::as_str).unwrap_or_default();
            assert!(
                message.contains("upstream exploded"),
                "{}: the last event is the error: {}",
                case.name,
                reply.body
            );
            let text = streamed_text(&events);
            assert!("partial answer that never finishes".starts_with(&text), "{}: {text:?}", case.name);
            assert!(!finish_reasons(&events).contains(&"stop".to_string()), "{}: {}", case.name, reply.body);
        },
    )
    .await;
}

/// In direct mode a stream is translated as it arrives: the client reads the first text while the provider
/// still holds the second half of its stream, and gets the rest once it is released.
#[tokio::test]
async fn direct_mode_streams_reach_the_client_before_the_provider_finishes() {
    let direct = pick(&[
        "openai",
        "anthropic",
        "gemini_direct",
        "bedrock_direct",
        "gemini_held",
        "bedrock_held",
        "mistral",
        "ollama",
    ]);
    each(
        with_rigs(direct, Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            rig.mock.hold_streams();
            rig.mock.script(vec![Behavior::Answer(Answer::text("one two three four five six seven eight"))]);
            let body = chat_body(json!({"stream": true})).to_string();
            let req = request(
                "POST",
                &rig.host,
                "/v1/chat/completions",
                &[("content-type", "application/json")],
                &body,
                &Proto::H1,
            );
            let resp = timeout(send(rig.gw.main(), &Proto::H1, req)).await;
            assert_eq!(resp.status(), 200, "{}", case.name);
            let mut body = resp.into_body();
            let mut seen = String::new();
            let complete = |seen: &str| -> Vec<Value> {
                sse_data(seen).iter().filter_map(|d| serde_json::from_str(d).ok()).collect()
            };
            // A hang guard, not a timing assertion: the first text must come while the provider holds the rest.
            let early = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.expect("frame").into_data() {
                        seen.push_str(&String::from_utf8_lossy(&data));
                    }
                    if !streamed_text(&complete(&seen)).is_empty() {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(early, Ok(true), "{}: no text before the provider finished: {seen}", case.name);
            assert!(!seen.contains("[DONE]"), "{}", case.name);
            rig.mock.release();
            while let Some(frame) = timeout(async { Ok(body.frame().await) }).await {
                if let Ok(data) = frame.expect("frame").into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
            assert_eq!(streamed_text(&complete(&seen)), "one two three four five six seven eight", "{}", case.name);
            assert_eq!(sse_data(&seen).last().map(String::as_str), Some("[DONE]"), "{}: {seen}", case.name);
        },
    )
    .await;
}
