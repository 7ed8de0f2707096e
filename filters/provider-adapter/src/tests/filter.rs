//! The filter's phases on the SDK's fake host: headers and credentials, body translation, answers and
//! streams translated chunk by chunk, errors, limits, the model list, and callout mode.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use weir_sdk::testing::FakeHost;
use weir_sdk::Action;

use super::sse;
use crate::eventstream;
use crate::sigv4::sha256_hex;
use crate::ProviderAdapter;

fn host(config: Value) -> FakeHost<ProviderAdapter> {
    let mut host = FakeHost::<ProviderAdapter>::new();
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    assert!(host.configure(&config.to_string()), "{:?}", host.logs());
    host
}

fn post() -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "gateway.local"),
        ("authorization", "Bearer client-secret"),
        ("content-type", "application/json"),
        ("content-length", "120"),
        ("accept-encoding", "gzip"),
    ]
}

fn hello(stream: bool) -> Vec<u8> {
    json!({"model": "gpt-4o", "stream": stream, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hello"}]})
    .to_string()
    .into_bytes()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

fn anthropic() -> Value {
    json!({"provider": "anthropic", "base_url": "http://127.0.0.1:9999", "api_keys": ["k1", "k2"],
        "model_mapping": {"gpt-4o": "claude-sonnet-4-5"}})
}

#[test]
fn direct_mode_sets_path_authority_and_the_next_key_and_hides_the_clients() {
    let mut host = host(anthropic());
    for key in ["k1", "k2", "k1"] {
        let mut stream = host.stream();
        assert_eq!(stream.send_request_headers(&post(), false), Action::Continue);
        assert_eq!(stream.request_header(":path").as_deref(), Some("/v1/messages"));
        assert_eq!(stream.request_header(":authority").as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(stream.request_header("x-api-key").as_deref(), Some(key));
        assert_eq!(stream.request_header("anthropic-version").as_deref(), Some("2023-06-01"));
        for gone in ["authorization", "content-length", "accept-encoding"] {
            assert_eq!(stream.request_header(gone), None, "{gone}");
        }
        let body = hello(false);
        assert_eq!(stream.send_request_body(&body[..10], false), Action::Pause, "held until the end");
        assert_eq!(stream.send_request_body(&body[10..], true), Action::Continue);
        assert_eq!(
            json_of(&stream.request_body()),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]})
        );
    }
}

#[test]
fn a_json_answer_is_held_whole_and_replaced() {
    let mut host = host(anthropic());
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    stream.send_request_body(&hello(false), true);
    stream.send_response_headers(
        &[(":status", "200"), ("content-type", "application/json"), ("content-length", "200")],
        false,
    );
    assert_eq!(stream.response_header("content-length"), None);
    let answer = json!({"id": "msg_1", "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 2}})
    .to_string();
    assert_eq!(stream.send_response_body(&answer.as_bytes()[..7], false), Action::Pause);
    assert_eq!(stream.send_response_body(&answer.as_bytes()[7..], true), Action::Continue);
    let out = json_of(&stream.response_body());
    assert_eq!(out["id"], "msg_1");
    assert_eq!(out["choices"][0]["message"]["content"], "Hi!");
    assert_eq!(out["usage"]["total_tokens"], 5);
    assert_eq!(out["created"], 1_700_000_000);
}

#[test]
fn a_stream_is_translated_chunk_by_chunk_without_waiting_for_the_end() {
    let mut host = host(anthropic());
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    stream.send_request_body(&hello(true), true);
    assert_eq!(json_of(&stream.request_body())["stream"], true);
    stream.send_response_headers(&[(":status", "200"), ("content-type", "text/event-stream; charset=utf-8")], false);
    assert_eq!(stream.response_header("content-type").as_deref(), Some("text/event-stream"));
    let body = sse(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_9", "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let text_at = body.iter().position(|&b| b == b'H').expect("the text");
    let text_end = text_at + body[text_at..].windows(2).position(|w| w == b"\n\n").expect("the event's end") + 2;
    // The first piece ends inside the text delta: only complete events come out (none here).
    assert_eq!(stream.send_response_body(&body[..text_at + 1], false), Action::Continue);
    assert_eq!(stream.response_body(), b"");
    // The rest of that event: its chunk comes out at once, nothing waits for the end.
    stream.send_response_body(&body[text_at + 1..text_end], false);
    let text = String::from_utf8(stream.response_body()).expect("utf-8");
    assert!(text.starts_with("data: {") && text.contains("\"content\":\"Hi\""), "{text}");
    assert!(!text.contains("finish_reason\":\"") && !text.contains("[DONE]"), "{text}");
    // message_stop ends the stream: the finish, the usage asked for, [DONE].
    stream.send_response_body(&body[text_end..], false);
    let end = String::from_utf8(stream.response_body()).expect("utf-8");
    assert!(end.contains("\"finish_reason\":\"stop\""), "{end}");
    assert!(end.contains("\"total_tokens\":5"), "{end}");
    assert!(end.ends_with("data: [DONE]\n\n"), "{end}");
    stream.send_response_body(b"", true);
    assert_eq!(stream.response_body(), b"", "[DONE] once");
}

#[test]
fn provider_errors_keep_their_status_retry_after_and_get_openai_bodies() {
    let mut host = host(anthropic());
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    stream.send_request_body(&hello(false), true);
    stream.send_response_headers(
        &[(":status", "529"), ("content-type", "application/json"), ("retry-after", "7")],
        false,
    );
    assert_eq!(stream.response_header(":status").as_deref(), Some("503"));
    assert_eq!(stream.response_header("retry-after").as_deref(), Some("7"));
    let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).to_string();
    assert_eq!(stream.send_response_body(error.as_bytes(), true), Action::Continue);
    assert_eq!(
        json_of(&stream.response_body()),
        json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null, "code": 529}})
    );
}

#[test]
fn a_two_hundred_that_is_not_json_becomes_502() {
    let mut host = host(anthropic());
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    stream.send_request_body(&hello(false), true);
    stream.send_response_headers(&[(":status", "200"), ("content-type", "text/html")], false);
    assert_eq!(stream.response_header(":status").as_deref(), Some("502"));
    stream.send_response_body(b"<html>", true);
    let error = json_of(&stream.response_body());
    assert_eq!(error["error"]["type"], "bad_gateway");
    assert!(error["error"]["message"].as_str().unwrap_or_default().contains("text/html"), "{error}");
}

#[test]
fn local_answers_models_limits_and_bad_requests() {
    let mut host = host(json!({"provider": "openai", "api_keys": ["k"], "max_request_bytes": 64,
        "model_mapping": {"gpt-4o": "gpt-4o-2024-08-06", "mini": "gpt-4o-mini"}}));
    let mut models = host.stream();
    models.send_request_headers(&[(":method", "GET"), (":path", "/v1/models")], true);
    let list = models.local_response().expect("answered");
    assert_eq!(list.status, 200);
    let ids: Vec<Value> =
        json_of(&list.body)["data"].as_array().expect("data").iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!("gpt-4o"), json!("mini")]);

    let mut big = host.stream();
    let mut headers = post();
    headers.retain(|(n, _)| *n != "content-length");
    headers.push(("content-length", "65"));
    big.send_request_headers(&headers, false);
    assert_eq!(big.local_response().expect("413").status, 413);

    let mut chunked = host.stream();
    chunked.send_request_headers(&post()[..3], false);
    chunked.send_request_body(&[b' '; 40], false);
    chunked.send_request_body(&[b' '; 40], false);
    assert_eq!(chunked.local_response().expect("413").status, 413);

    let mut bad = host.stream();
    bad.send_request_headers(&post()[..3], false);
    bad.send_request_body(br#"{"model":"m","messages":[{"role":"tool"}]}"#, true);
    let refused = bad.local_response().expect("400");
    assert_eq!(refused.status, 400);
    assert_eq!(json_of(&refused.body)["error"]["param"], "messages[0].tool_call_id");

    let mut other = host.stream();
    assert_eq!(
        other.send_request_headers(&[(":method", "POST"), (":path", "/v1/embeddings")], false),
        Action::Continue
    );
    assert_eq!(other.request_header(":path").as_deref(), Some("/v1/embeddings"), "other paths pass untouched");
}

#[test]
fn gemini_with_one_model_streams_directly_and_folds_for_non_stream_clients() {
    let config = json!({"provider": "gemini", "api_keys": ["g"], "model_mapping": {"*": "gemini-2.5-flash"}});
    let body = sse(&[
        ("", json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})),
        (
            "",
            json!({"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2}}),
        ),
    ]);
    let mut host = host(config);
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    assert_eq!(
        stream.request_header(":path").as_deref(),
        Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    assert_eq!(stream.request_header(":authority").as_deref(), Some("generativelanguage.googleapis.com"));
    assert_eq!(stream.request_header("x-goog-api-key").as_deref(), Some("g"));
    stream.send_request_body(&hello(false), true);
    stream.send_response_headers(&[(":status", "200"), ("content-type", "text/event-stream")], false);
    assert_eq!(stream.response_header("content-type").as_deref(), Some("application/json"));
    stream.send_response_body(&body[..20], false);
    assert_eq!(stream.response_body(), b"");
    stream.send_response_body(&body[20..], true);
    let folded = json_of(&stream.response_body());
    assert_eq!(folded["object"], "chat.completion");
    assert_eq!(folded["choices"][0]["message"]["content"], "Hello");
    assert_eq!(folded["choices"][0]["finish_reason"], "stop");
    assert_eq!(folded["usage"]["total_tokens"], 4);
}

#[test]
fn gemini_with_several_models_goes_by_callout() {
    let mut host = host(json!({"provider": "gemini", "api_keys": ["g"], "cluster": "google",
        "model_mapping": {"gpt-4o": "gemini-2.5-pro", "*": "gemini-2.5-flash"}}));
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    assert_eq!(stream.request_header(":path").as_deref(), Some("/v1/chat/completions"), "not direct");
    assert_eq!(stream.request_header("authorization"), None, "the client's key is gone anyway");
    assert_eq!(stream.send_request_body(&hello(true), true), Action::Pause, "held until the callout answers");
    assert_eq!(stream.request_body(), b"", "emptied, in case a host forwards it anyway");
    let id = stream.id();
    let callout = host.callouts().pop().expect("a callout");
    assert_eq!(callout.cluster, "google");
    assert_eq!(callout.header(":path"), Some("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"));
    assert_eq!(callout.header(":authority"), Some("generativelanguage.googleapis.com"));
    assert_eq!(callout.header("x-goog-api-key"), Some("g"));
    assert_eq!(json_of(&callout.body)["contents"][0]["parts"][0]["text"], "Hello");
    let answer = sse(&[
        ("", json!({"candidates": [{"content": {"parts": [{"text": "H"}]}}]})),
        (
            "",
            json!({"candidates": [{"content": {"parts": [{"text": "i"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1}}),
        ),
    ]);
    host.respond(callout.token, 200, &[("content-type", "text/event-stream")], &answer);
    let stream = host.stream_by_id(id).expect("the stream");
    let local = stream.local_response().expect("answered");
    assert_eq!((local.status, local.header("content-type")), (200, Some("text/event-stream")));
    let text = local.text();
    assert!(text.contains("\"content\":\"H\"") && text.contains("\"content\":\"i\""), "{text}");
    assert!(text.contains("\"total_tokens\":3"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[test]
fn a_non_stream_client_behind_a_callout_gets_the_json_answer() {
    let mut host = host(json!({"provider": "azure", "base_url": "https://acme.openai.azure.com", "api_keys": ["az"],
        "model_mapping": {"gpt-4o": "prod-4o"}}));
    let mut stream = host.stream();
    stream.set_property(&["xds", "cluster_name"], "azure-cluster");
    stream.send_request_headers(&post(), false);
    stream.send_request_body(&hello(false), true);
    let id = stream.id();
    let callout = host.callouts().pop().expect("a callout");
    assert_eq!(callout.cluster, "azure-cluster", "the route's cluster by default");
    assert_eq!(callout.header(":path"), Some("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"));
    assert_eq!(callout.header("api-key"), Some("az"));
    let answer = json!({"id": "chatcmpl-az", "created": 5, "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
        "finish_reason": "stop"}]});
    let mut stream = host.stream_by_id(id).expect("stream");
    // This time the forwarded request's response comes first: held until the callout answers.
    assert_eq!(stream.send_response_headers(&[(":status", "404")], false), Action::Pause);
    assert!(stream.local_response().is_none());
    host.respond(callout.token, 200, &[("content-type", "application/json")], answer.to_string().as_bytes());
    let local = host.stream_by_id(id).expect("stream").local_response().expect("answered");
    assert_eq!(local.status, 200);
    let body = json_of(&local.body);
    assert_eq!((body["id"].clone(), body["model"].clone()), (json!("chatcmpl-az"), json!("gpt-4o")));
    assert_eq!(body["choices"][0]["message"]["content"], "Hi");
}

#[test]
fn bedrock_with_sigv4_signs_the_translated_body() {
    let mut host = host(json!({"provider": "bedrock", "cluster": "aws",
        "bedrock": {"region": "eu-west-1", "access_key_id": "AKID", "secret_access_key": "s", "session_token": "tok"},
        "model_mapping": {"*": "anthropic.claude-3-haiku-20240307-v1:0"}}));
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    stream.send_request_body(&hello(false), true);
    let id = stream.id();
    let callout = host.callouts().pop().expect("a callout");
    assert_eq!(callout.header(":path"), Some("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"));
    assert_eq!(callout.header(":authority"), Some("bedrock-runtime.eu-west-1.amazonaws.com"));
    assert_eq!(callout.header("x-amz-date"), Some("20231114T221320Z"));
    assert_eq!(callout.header("x-amz-security-token"), Some("tok"));
    assert_eq!(callout.header("x-amz-content-sha256").map(str::to_string), Some(sha256_hex(&callout.body)));
    let authorization = callout.header("authorization").unwrap_or_default();
    assert!(
        authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKID/20231114/eu-west-1/bedrock/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
        ),
        "{authorization}"
    );
    host.respond(
        callout.token,
        429,
        &[("x-amzn-errortype", "ThrottlingException"), ("retry-after", "2")],
        br#"{"message":"slow"}"#,
    );
    let mut stream = host.stream_by_id(id).expect("stream");
    stream.send_response_headers(&[(":status", "404")], false);
    let local = stream.local_response().expect("answered");
    assert_eq!((local.status, local.header("retry-after")), (429, Some("2")));
    assert_eq!(json_of(&local.body)["error"]["type"], "ThrottlingException");
}

#[test]
fn bedrock_with_an_api_key_streams_the_event_stream_directly() {
    let mut host = host(json!({"provider": "bedrock", "api_keys": ["bedrock-key"], "base_url": "http://127.0.0.1:9",
        "bedrock": {"region": "us-east-1"}, "model_mapping": {"*": "amazon.nova-lite-v1:0"}}));
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    assert_eq!(stream.request_header(":path").as_deref(), Some("/model/amazon.nova-lite-v1%3A0/converse-stream"));
    assert_eq!(stream.request_header("authorization").as_deref(), Some("Bearer bedrock-key"));
    stream.send_request_body(&hello(true), true);
    stream.send_response_headers(&[(":status", "200"), ("content-type", "application/vnd.amazon.eventstream")], false);
    let frame = |kind: &str, payload: Value| {
        eventstream::encode(&[(":event-type", kind), (":message-type", "event")], payload.to_string().as_bytes())
    };
    let body = [
        frame("messageStart", json!({"role": "assistant"})),
        frame("contentBlockDelta", json!({"delta": {"text": "Hi"}})),
    ]
    .concat();
    stream.send_response_body(&body[..body.len() - 3], false);
    let first = String::from_utf8(stream.response_body()).expect("utf-8");
    assert!(first.is_empty(), "the second frame is incomplete: {first}");
    stream.send_response_body(&body[body.len() - 3..], false);
    assert!(String::from_utf8(stream.response_body()).expect("utf-8").contains("\"content\":\"Hi\""));
    // A corrupt frame ends the stream with an error event.
    stream.send_response_body(&[0, 0, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4], false);
    let error = String::from_utf8(stream.response_body()).expect("utf-8");
    assert!(error.contains("\"type\":\"bad_gateway\"") && error.ends_with("data: [DONE]\n\n"), "{error}");
    stream.send_response_body(b"more", true);
    assert_eq!(stream.response_body(), b"", "nothing after the end");
}

#[test]
fn a_response_to_a_request_that_never_reached_the_provider_is_left_alone() {
    let mut host = host(anthropic());
    let mut stream = host.stream();
    stream.send_request_headers(&post(), false);
    // A later filter answered before the body was translated (e.g. a quota refusal).
    stream.set_property(&["response", "code_details"], "quota_refused");
    stream.send_response_headers(
        &[(":status", "429"), ("content-type", "application/json"), ("content-length", "2")],
        false,
    );
    assert_eq!(stream.response_header(":status").as_deref(), Some("429"));
    assert_eq!(stream.response_header("content-length").as_deref(), Some("2"));
    stream.send_response_body(b"{}", true);
    assert_eq!(stream.response_body(), b"{}");
}

#[test]
fn a_direct_gemini_answer_is_read_by_its_content_type() {
    let config = json!({"provider": "gemini", "api_keys": ["g"], "model_mapping": {"*": "gemini-2.5-flash"}});
    let mut host = host(config);
    // JSON on the stream endpoint: read whole.
    let mut json_answer = host.stream();
    json_answer.send_request_headers(&post(), false);
    json_answer.send_request_body(&hello(false), true);
    json_answer
        .send_response_headers(&[(":status", "200"), ("content-type", "application/json; charset=UTF-8")], false);
    let answer = json!({"candidates": [{"content": {"parts": [{"text": "Whole"}]}, "finishReason": "STOP"}]});
    json_answer.send_response_body(answer.to_string().as_bytes(), true);
    assert_eq!(json_of(&json_answer.response_body())["choices"][0]["message"]["content"], "Whole");
    // Neither JSON nor a stream: 502 before the body.
    let mut html = host.stream();
    html.send_request_headers(&post(), false);
    html.send_request_body(&hello(true), true);
    html.send_response_headers(&[(":status", "200"), ("content-type", "text/html")], false);
    assert_eq!(html.response_header(":status").as_deref(), Some("502"));
    // A stream that carries no event at all ends with an error event, not an empty answer.
    let mut empty = host.stream();
    empty.send_request_headers(&post(), false);
    empty.send_request_body(&hello(true), true);
    empty.send_response_headers(&[(":status", "200"), ("content-type", "text/event-stream")], false);
    empty.send_response_body(b"{\"candidates\": [", true);
    let text = String::from_utf8(empty.response_body()).expect("utf-8");
    assert!(text.starts_with("data: {\"error\"") && text.contains("without a single event"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[test]
fn callout_mode_holds_an_early_answer_to_the_forwarded_request() {
    let mut host = host(json!({"provider": "gemini", "api_keys": ["g"], "cluster": "google",
        "model_mapping": {"gpt-4o": "gemini-2.5-pro"}}));
    let mut stream = host.stream();
    stream.set_property(&["response", "code_details"], "via_upstream");
    stream.send_request_headers(&post(), false);
    // The upstream answers the forwarded request before its body is even read.
    assert_eq!(
        stream.send_response_headers(&[(":status", "404"), ("content-type", "application/json")], false),
        Action::Pause
    );
    assert_eq!(stream.send_request_body(&hello(false), true), Action::Pause);
    let id = stream.id();
    let callout = host.callouts().pop().expect("a callout");
    assert_eq!(callout.header(":path"), Some("/v1beta/models/gemini-2.5-pro:generateContent"));
    let answer = json!({"candidates": [{"content": {"parts": [{"text": "Late but right"}]}, "finishReason": "STOP"}]});
    host.respond(callout.token, 200, &[("content-type", "application/json")], answer.to_string().as_bytes());
    let local = host.stream_by_id(id).expect("stream").local_response().expect("answered");
    assert_eq!(local.status, 200);
    assert_eq!(json_of(&local.body)["choices"][0]["message"]["content"], "Late but right");
}
