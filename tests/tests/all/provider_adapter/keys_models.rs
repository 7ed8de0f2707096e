//! Credentials and models: a key pool used in turn, keys from the VM's environment, model aliases (exact,
//! longest prefix, fallback, keep), and `GET /v1/models` answered from the configuration.

use std::collections::BTreeSet;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use weir_tests::filters;
use weir_tests::mock_llm::Provider;

use super::{chat_body, pick, Rig, CLIENT_SECRET};

/// Sends `n` chat requests one after the other on one HTTP/1.1 connection (so one worker, one VM), each
/// answered 200.
async fn on_one_connection(rig: &Rig, n: usize) {
    let stream = tokio::net::TcpStream::connect(rig.gw.main()).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    for i in 0..n {
        let req = http::Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .header("host", "gateway.test")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {CLIENT_SECRET}"))
            .body(Full::new(Bytes::from(chat_body(json!({})).to_string())))
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(status, 200, "request {i}: {}", String::from_utf8_lossy(&body));
    }
}

#[tokio::test]
async fn key_pool_is_used_in_turn() {
    let case = &pick(&["openai"])[0];
    let mut config = case.config.clone();
    config["api_keys"] = json!(["sk-a", "sk-b", "sk-c"]);
    let rig = Rig::with_config(case, config).await;
    on_one_connection(&rig, 6).await;
    let keys: Vec<String> =
        rig.received().iter().map(|r| r.header("authorization").unwrap_or_default().to_string()).collect();
    let distinct: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(distinct, BTreeSet::from(["Bearer sk-a", "Bearer sk-b", "Bearer sk-c"]), "{keys:?}");
    for i in 0..3 {
        assert_ne!(keys[i], keys[i + 1], "round robin: {keys:?}");
        assert_eq!(keys[i], keys[i + 3], "round robin: {keys:?}");
    }
}

#[tokio::test]
async fn keys_from_the_environment() {
    let case = &pick(&["anthropic"])[0];
    let attachment = json!({"name": "llm", "module": filters::PROVIDER_ADAPTER_WASM,
        "environment_variables": {"key_values": {"PA_TEST_KEYS": "env-key-1,env-key-2"}},
        "configuration": {"provider": "anthropic", "api_key_env": "PA_TEST_KEYS"}});
    let rig = Rig::with_attachment(Provider::Anthropic, attachment).await;
    rig.mock.require_keys(&["env-key-1", "env-key-2"]);
    on_one_connection(&rig, 2).await;
    let keys: BTreeSet<String> =
        rig.received().iter().map(|r| r.header("x-api-key").unwrap_or_default().to_string()).collect();
    assert_eq!(keys, BTreeSet::from(["env-key-1".to_string(), "env-key-2".to_string()]), "{}", case.name);
}

fn aliases() -> Value {
    json!({"gpt-4o": "claude-sonnet-4-5", "gpt-4o-mini*": "claude-haiku-4-5", "gpt-4*": "claude-opus-4-1",
           "*": "claude-fallback", "keep-me": ""})
}

#[tokio::test]
async fn model_aliases_exact_prefix_fallback_and_keep() {
    let case = &pick(&["anthropic"])[0];
    let mut config = case.config.clone();
    config["model_mapping"] = aliases();
    let rig = Rig::with_config(case, config).await;
    let table = [
        ("gpt-4o", "claude-sonnet-4-5"),
        ("gpt-4o-mini", "claude-haiku-4-5"),
        ("gpt-4o-mini-2024-07-18", "claude-haiku-4-5"),
        ("gpt-4-turbo", "claude-opus-4-1"),
        ("o3", "claude-fallback"),
        ("keep-me", "keep-me"),
    ];
    for (asked, sent) in table {
        let reply = rig.chat(&json!({"model": asked, "messages": [{"role": "user", "content": "Hi"}]})).await;
        assert_eq!(reply.status, 200, "{asked}: {}", reply.body);
        assert_eq!(rig.last().body["model"], sent, "{asked}");
    }

    // Gemini carries the model in the path; with a single `*` mapping the filter is in direct mode, which
    // always asks for the stream (README "Direct mode and callout mode").
    let case = &pick(&["gemini"])[0];
    let mut config = case.config.clone();
    config["model_mapping"] = json!({"*": "gemini-2.5-pro"});
    let rig = Rig::with_config(case, config).await;
    let reply = rig.chat(&json!({"model": "anything", "messages": [{"role": "user", "content": "Hi"}]})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(rig.last().path, "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
}

#[tokio::test]
async fn models_endpoint_answers_from_the_configuration() {
    let case = &pick(&["anthropic"])[0];
    // (configuration change, listed ids): the exact keys of model_mapping by default, else `models`.
    let table = [
        (json!({"model_mapping": aliases()}), vec!["gpt-4o", "keep-me"]),
        (json!({"model_mapping": aliases(), "models": ["team-fast", "team-smart"]}), vec!["team-fast", "team-smart"]),
    ];
    for (change, want) in table {
        let mut config = case.config.clone();
        for (k, v) in change.as_object().into_iter().flatten() {
            config[k] = v.clone();
        }
        let rig = Rig::with_config(case, config).await;
        let reply =
            super::timeout(weir_tests::client::get_with(rig.gw.main(), "gateway.test", "/v1/models", &[])).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["object"], "list", "{body}");
        let data = body["data"].as_array().expect("data");
        let ids: BTreeSet<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
        assert_eq!(ids, want.iter().copied().collect::<BTreeSet<_>>(), "{body}");
        assert!(data.iter().all(|m| m["object"] == "model"), "{body}");
        assert!(rig.received().is_empty(), "answered by the gateway, not the provider");
    }
}
