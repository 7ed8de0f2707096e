//! The demo LLM over a real socket: raw HTTP/1.1 requests to a server on 127.0.0.1, port 0.

use super::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Got {
    /// The status code.
    status: u16,
    /// Header names (lowercase) and values.
    headers: Vec<(String, String)>,
    /// The body, de-chunked.
    body: String,
    /// How many chunks of the chunked encoding carried it (0 when it was not chunked).
    chunks: usize,
}

impl Got {
    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A fresh server.
fn server() -> DemoLlm {
    DemoLlm::start("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Sends `method path` with `headers` and `body` (`Content-Length` added) and reads the whole response.
fn call(llm: &DemoLlm, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Got {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n");
    head += &format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    send_raw(llm, &format!("{head}\r\n{body}"))
}

/// Writes `raw` and parses what comes back until the server closes.
fn send_raw(llm: &DemoLlm, raw: &str) -> Got {
    let mut stream = TcpStream::connect(llm.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    parse(&String::from_utf8(bytes).unwrap())
}

/// Parses a complete response.
fn parse(text: &str) -> Got {
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').unwrap())
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked");
    if !chunked {
        return Got { status, headers, body: rest.to_owned(), chunks: 0 };
    }
    let (mut body, mut chunks, mut rest) = (String::new(), 0, rest);
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            return Got { status, headers, body, chunks };
        }
        body += &after[..size];
        chunks += 1;
        rest = &after[size + 2..];
    }
}

/// The events of an SSE body: (`event:` name, `data:` payload).
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
            (field("event: "), field("data: ").unwrap())
        })
        .collect()
}

/// A Chat Completions body asking `prompt`, with `extra` fields.
fn chat(prompt: &str, extra: Value) -> String {
    let mut req = json!({"model": "demo-gpt", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": prompt},
    ]});
    req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    req.to_string()
}

/// A Messages body asking `prompt`, with `extra` fields.
fn messages(prompt: &str, extra: Value) -> String {
    let mut req = json!({"model": "demo-claude", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": prompt}]});
    req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    req.to_string()
}

const PROMPT: &str = "Tell me about gateways";

#[test]
fn reply_to_is_deterministic_quoted_and_bounded() {
    assert_eq!(reply_to("hi"), reply_to("hi"));
    assert_eq!(reply_to("  Hello\n  world "), "Demo answer to: \"Hello world\". Weir routed this through its filters.");
    assert_eq!(reply_to(""), EMPTY_REPLY);
    assert_eq!(reply_to(" \n\t"), EMPTY_REPLY);
    let long = reply_to(&"é".repeat(100));
    assert_eq!(long, format!("Demo answer to: \"{}…\". Weir routed this through its filters.", "é".repeat(60)));
    let cut_at_space = reply_to(&format!("{} tail", "a".repeat(59)));
    assert!(cut_at_space.contains(&format!("\"{}…\"", "a".repeat(59))), "{cut_at_space}");
    assert!(!reply_to("a  b").contains("  "));
}

#[test]
fn openai_json_answer_has_every_field() {
    let llm = server();
    let got = call(&llm, "POST", "/v1/chat/completions", &[], &chat(PROMPT, json!({"tools": []})));
    assert_eq!((got.status, got.header("content-type")), (200, Some("application/json")));
    let doc = got.json();
    let id = doc["id"].as_str().unwrap();
    let hash = id.strip_prefix("chatcmpl-demo-").unwrap();
    assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(doc["object"], "chat.completion");
    assert_eq!(doc["created"], CREATED);
    assert_eq!(doc["model"], "demo-gpt");
    assert_eq!(doc["choices"][0]["index"], 0);
    assert_eq!(doc["choices"][0]["message"]["role"], "assistant");
    assert_eq!(doc["choices"][0]["message"]["content"], reply_to(PROMPT));
    assert_eq!(doc["choices"][0]["finish_reason"], "stop");
    let completion = words(&reply_to(PROMPT));
    let prompt = 2 + words(PROMPT);
    assert_eq!(
        doc["usage"],
        json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
    );
}

#[test]
fn anthropic_json_answer_has_every_field() {
    let llm = server();
    let got = call(&llm, "POST", "/v1/messages", &[], &messages(PROMPT, json!({})));
    assert_eq!((got.status, got.header("content-type")), (200, Some("application/json")));
    let doc = got.json();
    let hash = doc["id"].as_str().unwrap().strip_prefix("msg_demo_").unwrap().to_owned();
    assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()));
    let usage = json!({"input_tokens": 2 + words(PROMPT), "output_tokens": words(&reply_to(PROMPT))});
    let expected = json!({"id": doc["id"], "type": "message", "role": "assistant", "model": "demo-claude",
        "content": [{"type": "text", "text": reply_to(PROMPT)}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": usage});
    assert_eq!(doc, expected);
}

#[test]
fn json_answers_are_deterministic_and_read_the_last_user_message() {
    let llm = server();
    let parts = json!([{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}, {"type": "text", "text": "part"}]}]);
    let no_user = json!([{"role": "assistant", "content": "alone"}]);
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": parts}).to_string(),
            "/choices/0/message/content",
            "second part",
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 99, "messages": parts}).to_string(),
            "/content/0/text",
            "second part",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": no_user}).to_string(),
            "/choices/0/message/content",
            "",
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 99, "messages": no_user}).to_string(),
            "/content/0/text",
            "",
        ),
    ];
    for (path, body, pointer, prompt) in cases {
        let (a, b) = (call(&llm, "POST", path, &[], &body), call(&llm, "POST", path, &[], &body));
        assert_eq!((a.status, &a.body), (200, &b.body), "{path} {body}");
        assert_eq!(a.json().pointer(pointer).unwrap(), &json!(reply_to(prompt)), "{path} {body}");
        let other = call(&llm, "POST", path, &[], &body.replacen("\"m\"", "\"n\"", 1));
        assert_ne!(other.json()["id"], a.json()["id"]);
    }
}

#[test]
fn openai_stream_sends_role_words_finish_usage_and_done() {
    let llm = server();
    for include_usage in [false, true] {
        let extra = json!({"stream": true, "stream_options": {"include_usage": include_usage}});
        let got = call(&llm, "POST", "/v1/chat/completions", &[], &chat(PROMPT, extra));
        assert_eq!(got.status, 200);
        assert!(got.header("content-type").unwrap().starts_with("text/event-stream"));
        let events = sse(&got.body);
        assert!(events.iter().all(|(name, _)| name.is_none()));
        assert_eq!(events.last().unwrap().1, "[DONE]");
        let chunks: Vec<Value> =
            events[..events.len() - 1].iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
        let words = reply_to(PROMPT).split(' ').count();
        assert_eq!(chunks.len(), 1 + words + 1 + usize::from(include_usage));
        for chunk in &chunks {
            assert_eq!(
                (&chunk["object"], &chunk["created"], &chunk["model"]),
                (&json!("chat.completion.chunk"), &json!(CREATED), &json!("demo-gpt"))
            );
            assert_eq!(chunk["id"], chunks[0]["id"]);
            assert_eq!(chunk.get("usage").is_some(), include_usage);
        }
        assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        let text: String =
            chunks[1..=words].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
        assert_eq!(text, reply_to(PROMPT));
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Demo ");
        assert_eq!(
            chunks[words + 1]["choices"][0],
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"})
        );
        if include_usage {
            let last = chunks.last().unwrap();
            assert_eq!(last["choices"], json!([]));
            assert_eq!(last["usage"]["completion_tokens"], words);
            assert_eq!(last["usage"]["prompt_tokens"], 2 + super::words(PROMPT));
        }
    }
}

#[test]
fn anthropic_stream_sends_the_event_sequence() {
    let llm = server();
    let got = call(&llm, "POST", "/v1/messages", &[], &messages(PROMPT, json!({"stream": true})));
    assert_eq!(got.status, 200);
    assert!(got.header("content-type").unwrap().starts_with("text/event-stream"));
    let events = sse(&got.body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    let words = reply_to(PROMPT).split(' ').count();
    let mut expected = vec!["message_start", "ping", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", words));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let data: Vec<Value> = events.iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    for (name, doc) in names.iter().zip(&data) {
        assert_eq!(doc["type"], *name);
    }
    let start = &data[0]["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_demo_"));
    assert_eq!(
        (&start["model"], &start["content"], &start["stop_reason"]),
        (&json!("demo-claude"), &json!([]), &Value::Null)
    );
    assert_eq!(start["usage"], json!({"input_tokens": 2 + super::words(PROMPT), "output_tokens": 1}));
    assert_eq!(data[2]["content_block"], json!({"type": "text", "text": ""}));
    let text: String = data[3..3 + words].iter().map(|d| d["delta"]["text"].as_str().unwrap()).collect();
    assert_eq!(text, reply_to(PROMPT));
    assert_eq!(data[3]["delta"], json!({"type": "text_delta", "text": "Demo "}));
    let delta = &data[data.len() - 2];
    assert_eq!(delta["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
    assert_eq!(delta["usage"], json!({"output_tokens": words}));
}

#[test]
fn max_tokens_truncates_the_words() {
    let llm = server();
    let short = "Demo answer to:".to_owned();
    let cases = [
        ("/v1/chat/completions", chat(PROMPT, json!({"max_tokens": 3})), 3, "length"),
        ("/v1/chat/completions", chat(PROMPT, json!({"max_completion_tokens": 3, "max_tokens": 50})), 3, "length"),
        ("/v1/chat/completions", chat(PROMPT, json!({"max_tokens": 500})), 0, "stop"),
        ("/v1/messages", messages(PROMPT, json!({"max_tokens": 3})), 3, "max_tokens"),
        ("/v1/messages", messages(PROMPT, json!({"max_tokens": 500})), 0, "end_turn"),
    ];
    for (path, body, cut, reason) in cases {
        let want = if cut > 0 { short.clone() } else { reply_to(PROMPT) };
        let doc = call(&llm, "POST", path, &[], &body).json();
        let (text, got_reason, tokens) = if path == "/v1/messages" {
            (&doc["content"][0]["text"], &doc["stop_reason"], &doc["usage"]["output_tokens"])
        } else {
            (
                &doc["choices"][0]["message"]["content"],
                &doc["choices"][0]["finish_reason"],
                &doc["usage"]["completion_tokens"],
            )
        };
        assert_eq!((text, got_reason, tokens), (&json!(want), &json!(reason), &json!(words(&want))), "{body}");
        let stream = body.replacen('{', "{\"stream\":true,", 1);
        let events = call(&llm, "POST", path, &[], &stream).body;
        let deltas = sse(&events).iter().filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok()).fold(
            String::new(),
            |acc, d| {
                let piece = d.pointer("/choices/0/delta/content").or_else(|| d.pointer("/delta/text"));
                acc + piece.and_then(Value::as_str).unwrap_or("")
            },
        );
        assert_eq!(deltas, want, "{stream}");
        assert!(events.contains(&format!("\"{reason}\"")), "{events}");
    }
}

/// An error case: method, path, body, headers, expected status and error type.
type ErrorCase = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)], u16, &'static str);

#[test]
fn errors_take_each_protocol_shape() {
    let llm = server();
    let big = (MAX_BODY + 1).to_string();
    let cases: [ErrorCase; 15] = [
        ("POST", "/v1/chat/completions", "{not json", &[], 400, "invalid_request_error"),
        ("POST", "/v1/chat/completions", r#"{"model":"m"}"#, &[], 400, "invalid_request_error"),
        ("POST", "/v1/chat/completions", r#"{"model":"m","messages":[]}"#, &[], 400, "invalid_request_error"),
        ("POST", "/v1/chat/completions", r#"{"model":"m","messages":[1]}"#, &[], 400, "invalid_request_error"),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user"}],"max_tokens":-1}"#,
            &[],
            400,
            "invalid_request_error",
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            &[],
            400,
            "invalid_request_error",
        ),
        ("POST", "/v1/messages", "[]", &[], 400, "invalid_request_error"),
        (
            "POST",
            "/v1/messages",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
            &[],
            400,
            "invalid_request_error",
        ),
        (
            "POST",
            "/v1/messages",
            r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#,
            &[],
            400,
            "invalid_request_error",
        ),
        ("POST", "/v1/messages", r#"{"model":"m","max_tokens":5,"messages":"hi"}"#, &[], 400, "invalid_request_error"),
        ("POST", "/v1/nope", "{}", &[], 404, "invalid_request_error"),
        ("POST", "/v1/messages/count_tokens", "{}", &[], 404, "not_found_error"),
        ("GET", "/v1/chat/completions", "", &[], 405, "invalid_request_error"),
        ("GET", "/v1/messages", "", &[], 405, "invalid_request_error"),
        ("POST", "/v1/messages", "", &[("x-demo-fail", "418")], 400, "invalid_request_error"),
    ];
    for (method, path, body, headers, status, kind) in cases {
        let got = call(&llm, method, path, headers, body);
        assert_eq!(
            (got.status, got.header("content-type")),
            (status, Some("application/json")),
            "{method} {path} {body}"
        );
        assert_error_shape(path, &got.json(), kind);
        if status == 405 {
            assert_eq!(got.header("allow"), Some("POST"));
        }
    }
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let got = send_raw(
            &llm,
            &format!("POST {path} HTTP/1.1\r\nhost: d\r\nconnection: close\r\ncontent-length: {big}\r\n\r\n"),
        );
        assert_eq!(got.status, 413);
        assert_error_shape(
            path,
            &got.json(),
            if path == "/v1/messages" { "request_too_large" } else { "invalid_request_error" },
        );
    }
}

/// Asserts `doc` is the error shape of the protocol serving `path`, of type `kind`.
fn assert_error_shape(path: &str, doc: &Value, kind: &str) {
    if path.starts_with("/v1/messages") {
        assert_eq!((&doc["type"], &doc["error"]["type"]), (&json!("error"), &json!(kind)), "{doc}");
        assert!(doc["error"]["message"].is_string());
        assert_eq!(doc["error"].as_object().unwrap().len(), 2);
    } else {
        let error = &doc["error"];
        assert_eq!((&error["type"], &error["param"]), (&json!(kind), &Value::Null), "{doc}");
        assert!(error["message"].is_string() && error.get("code").is_some());
    }
}

#[test]
fn a_body_over_the_limit_without_content_length_is_413() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body = Full::new(Bytes::from(vec![b' '; MAX_BODY + 1]));
    let req = Request::post("/v1/chat/completions").body(body).unwrap();
    assert_eq!(rt.block_on(handle(req)).status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = Full::new(Bytes::from(vec![b' '; MAX_BODY]));
    let req = Request::post("/v1/chat/completions").body(body).unwrap();
    assert_eq!(rt.block_on(handle(req)).status(), StatusCode::BAD_REQUEST);
}

#[test]
fn x_demo_fail_answers_the_asked_status() {
    let llm = server();
    let cases = [
        ("/v1/chat/completions", "429", 429, "requests"),
        ("/v1/chat/completions", "500", 500, "server_error"),
        ("/v1/chat/completions", "503", 503, "server_error"),
        ("/v1/models", "503", 503, "server_error"),
        ("/v1/messages", "429", 429, "rate_limit_error"),
        ("/v1/messages", "500", 500, "api_error"),
        ("/v1/messages", " 503 ", 503, "overloaded_error"),
    ];
    for (path, fail, status, kind) in cases {
        let method = if path == "/v1/models" { "GET" } else { "POST" };
        let got = call(&llm, method, path, &[("x-demo-fail", fail)], &messages(PROMPT, json!({})));
        assert_eq!(got.status, status, "{path} {fail}");
        assert_error_shape(path, &got.json(), kind);
        assert_eq!(got.header("retry-after"), (status == 429).then_some("1"));
    }
    let got = call(&llm, "POST", "/v1/chat/completions", &[("x-demo-fail", "429")], "");
    assert_eq!(got.json()["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn models_lists_the_demo_models() {
    let llm = server();
    let got = call(&llm, "GET", "/v1/models", &[], "");
    assert_eq!(got.status, 200);
    let doc = got.json();
    assert_eq!(doc["object"], "list");
    let ids: Vec<&str> = doc["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, MODELS);
    assert_eq!(
        doc["data"][0],
        json!({"id": "demo-gpt", "object": "model", "created": CREATED, "owned_by": "weir-demo"})
    );
    assert_eq!(call(&llm, "POST", "/v1/models", &[], "{}").status, 405);
}

#[test]
fn a_stream_arrives_in_several_chunks() {
    let llm = server();
    for (path, body) in [
        ("/v1/chat/completions", chat(PROMPT, json!({"stream": true}))),
        ("/v1/messages", messages(PROMPT, json!({"stream": true}))),
    ] {
        let got = call(&llm, "POST", path, &[], &body);
        assert_eq!(got.header("transfer-encoding"), Some("chunked"));
        assert_eq!(got.chunks, sse(&got.body).len(), "{path}: one chunk per event");
        let started = std::time::Instant::now();
        let got = call(&llm, "POST", path, &[], &body);
        let gaps = u32::try_from(sse(&got.body).len() - 1).unwrap();
        assert!(started.elapsed() >= EVENT_GAP * gaps, "{path}: the events were not paced");
    }
}

#[test]
fn odd_inputs_never_break_the_server() {
    let llm = server();
    let bodies = ["", "null", "1", "\"x\"", "{\"model\":1,\"messages\":{}}", "{\"model\":\"m\",\"max_tokens\":1e99,\"messages\":[{\"role\":\"user\",\"content\":{\"a\":1}}]}",
        "{\"model\":\"m\",\"max_tokens\":18446744073709551615,\"messages\":[{\"role\":\"user\",\"content\":[1,null,{\"type\":\"text\",\"text\":7}]}]}", "\u{0}\u{ffff}"];
    for body in bodies {
        for path in ["/v1/chat/completions", "/v1/messages"] {
            let got = call(&llm, "POST", path, &[], body);
            assert!(got.status == 200 || got.status == 400, "{path} {body}: {}", got.status);
        }
    }
    assert_eq!(call(&llm, "GET", "/v1/models", &[], "").status, 200);
}

#[test]
fn stop_closes_the_listener() {
    let llm = server();
    let addr = llm.addr();
    assert_eq!(call(&llm, "GET", "/v1/models", &[], "").status, 200);
    llm.stop();
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn documents_keep_the_providers_key_order() {
    let llm = server();
    let stream = json!({"stream": true, "stream_options": {"include_usage": true}});
    let cases = [
        (
            "POST",
            "/v1/chat/completions",
            chat(PROMPT, json!({})),
            "{\"id\":\"chatcmpl-demo-",
            "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\"",
        ),
        (
            "POST",
            "/v1/chat/completions",
            chat(PROMPT, stream),
            "data: {\"id\":\"chatcmpl-demo-",
            "{\"role\":\"assistant\",\"content\":\"\"}",
        ),
        (
            "POST",
            "/v1/messages",
            messages(PROMPT, json!({})),
            "{\"id\":\"msg_demo_",
            "\"type\":\"message\",\"role\":\"assistant\",\"model\"",
        ),
        (
            "POST",
            "/v1/messages",
            messages(PROMPT, json!({"stream": true})),
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":",
        ),
        (
            "POST",
            "/v1/chat/completions",
            "{".to_owned(),
            "{\"error\":{\"message\":",
            "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}",
        ),
        (
            "POST",
            "/v1/messages",
            "{".to_owned(),
            "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":",
            "",
        ),
        (
            "GET",
            "/v1/models",
            String::new(),
            "{\"object\":\"list\",\"data\":[{\"id\":\"demo-gpt\",\"object\":\"model\",\"created\":",
            "",
        ),
    ];
    for (method, path, body, start, inside) in cases {
        let got = call(&llm, method, path, &[], &body).body;
        assert!(got.starts_with(start) && got.contains(inside), "{path} {body}: {got}");
    }
}
