//! The mocks refuse what their provider refuses, and answer in its shapes: checked over real sockets.

use serde_json::{json, Value};

use super::{eventstream, AwsCredentials, Behavior, MockLlm, Provider};
use http_body_util::BodyExt;

use crate::client::{call, request, send, Proto, Reply};

async fn post(mock: &MockLlm, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    let req = request("POST", "provider.test", path, headers, &body.to_string(), &Proto::H1);
    call(mock.addr, &Proto::H1, req).await.expect("mock answers")
}

/// Provider, path, headers, body, the status it answers, a fragment of its error body.
type Row = (Provider, &'static str, &'static [(&'static str, &'static str)], Value, u16, &'static str);

const ANTHROPIC: &[(&str, &str)] = &[("x-api-key", "k"), ("anthropic-version", "2023-06-01")];

#[tokio::test]
async fn refusals_match_the_providers() {
    let user = json!({"role": "user", "content": "Hi"});
    let table: Vec<Row> = vec![
        (Provider::Anthropic, "/v1/messages", &[("x-api-key", "k")], json!({}), 400, "anthropic-version"),
        (Provider::Anthropic, "/v1/messages", ANTHROPIC, json!({"model": "c", "messages": [user]}), 400, "max_tokens"),
        (
            Provider::Anthropic,
            "/v1/messages",
            ANTHROPIC,
            json!({"model": "c", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}, user]}),
            400,
            "messages.0.role",
        ),
        (Provider::Anthropic, "/v1/messages", &[], json!({}), 401, "authentication_error"),
        (
            Provider::Gemini,
            "/v1beta/models/g:generateContent",
            &[("x-goog-api-key", "k")],
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
            400,
            "valid role",
        ),
        (Provider::Gemini, "/v1beta/models/g:generateContent", &[], json!({}), 403, "PERMISSION_DENIED"),
        (
            Provider::Bedrock,
            "/model/m/converse",
            &[],
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}),
            400,
            "alternate",
        ),
        (
            Provider::Bedrock,
            "/model/m/converse",
            &[],
            json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": []}}]}]}),
            400,
            "toolConfig",
        ),
        (
            Provider::Mistral,
            "/v1/chat/completions",
            &[],
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "call_abc", "content": "x"}]}),
            400,
            "a-z, A-Z, 0-9",
        ),
        (
            Provider::Azure,
            "/openai/deployments/d/chat/completions",
            &[],
            json!({"messages": [user]}),
            404,
            "Resource not found",
        ),
        (
            Provider::Ollama,
            "/api/chat",
            &[],
            json!({"model": "m", "messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]}),
            400,
            "cannot unmarshal string",
        ),
    ];
    for (provider, path, headers, body, status, fragment) in table {
        let mock = MockLlm::start(provider).await;
        let reply = post(&mock, path, headers, body).await;
        assert_eq!(reply.status, status, "{provider:?} {path}: {}", reply.body);
        assert!(reply.body.contains(fragment), "{provider:?} {path}: {}", reply.body);
        assert_eq!(mock.received().len(), 1, "{provider:?}: recorded");
    }
}

#[tokio::test]
async fn answers_come_in_the_providers_shapes() {
    let mock = MockLlm::start(Provider::Anthropic).await;
    mock.script(vec![Behavior::Error { status: 529, message: "busy".into(), retry_after: Some(9) }]);
    let body = json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]});
    let reply = post(&mock, "/v1/messages", ANTHROPIC, body).await;
    assert_eq!(reply.status, 529);
    assert_eq!(reply.header("retry-after"), "9");
    assert_eq!(reply.json()["error"]["type"], "overloaded_error");

    let mock = MockLlm::start(Provider::Bedrock).await;
    let body = json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}).to_string();
    let req = request("POST", "provider.test", "/model/m/converse-stream", &[], &body, &Proto::H1);
    let resp = send(mock.addr, &Proto::H1, req).await.expect("mock answers");
    assert_eq!(resp.headers()["content-type"], "application/vnd.amazon.eventstream");
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let messages = eventstream::decode(&bytes).expect("valid frames");
    let kinds: Vec<&str> = messages.iter().map(|(h, _)| h[0].1.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"messageStart"));
    assert_eq!(&kinds[kinds.len() - 2..], ["messageStop", "metadata"]);

    let mock = MockLlm::start(Provider::Bedrock).await;
    mock.require_sigv4(AwsCredentials {
        access_key_id: "AK".into(),
        secret_access_key: "s".into(),
        region: "us-east-1".into(),
    });
    let reply = post(&mock, "/model/m/converse", &[], json!({})).await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.header("x-amzn-errortype").starts_with("MissingAuthenticationTokenException:"),
        "{:?}",
        reply.headers
    );

    let mock = MockLlm::start(Provider::Gemini).await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]});
    let reply = post(&mock, "/v1beta/models/g:streamGenerateContent?alt=sse", &[("x-goog-api-key", "k")], body).await;
    assert!(reply.body.ends_with("\r\n\r\n") && !reply.body.contains("[DONE]"), "{}", reply.body);
}
