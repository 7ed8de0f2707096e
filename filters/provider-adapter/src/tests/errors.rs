//! Error mapping per provider, request validation (400 naming the JSON path), strict mode, and
//! configuration errors (naming the configuration path).

use serde_json::{json, Value};

use super::{settings, settings_with};
use crate::config::{parse, Provider};
use crate::openai::parse_request;
use crate::providers::{decode_error, decode_response, encode};

#[test]
fn provider_errors_map_to_openai_errors_with_the_right_status() {
    type Row<'a> = (Provider, u16, Option<&'a str>, Value, u16, &'a str, &'a str);
    let table: Vec<Row<'_>> = vec![
        (
            Provider::Anthropic,
            400,
            None,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
            400,
            "invalid_request_error",
            "bad",
        ),
        (
            Provider::Anthropic,
            401,
            None,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "key"}}),
            401,
            "authentication_error",
            "key",
        ),
        (
            Provider::Anthropic,
            403,
            None,
            json!({"type": "error", "error": {"type": "permission_error", "message": "no"}}),
            403,
            "permission_error",
            "no",
        ),
        (
            Provider::Anthropic,
            404,
            None,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "model"}}),
            404,
            "not_found_error",
            "model",
        ),
        (
            Provider::Anthropic,
            429,
            None,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
            429,
            "rate_limit_error",
            "slow",
        ),
        (
            Provider::Anthropic,
            529,
            None,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            503,
            "overloaded_error",
            "Overloaded",
        ),
        (
            Provider::Gemini,
            400,
            None,
            json!({"error": {"code": 400, "message": "bad arg", "status": "INVALID_ARGUMENT"}}),
            400,
            "INVALID_ARGUMENT",
            "bad arg",
        ),
        (
            Provider::Gemini,
            429,
            None,
            json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}),
            429,
            "RESOURCE_EXHAUSTED",
            "quota",
        ),
        (
            Provider::Gemini,
            503,
            None,
            json!({"error": {"code": 503, "message": "down", "status": "UNAVAILABLE"}}),
            503,
            "UNAVAILABLE",
            "down",
        ),
        (
            Provider::Bedrock,
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            json!({"message": "invalid"}),
            400,
            "ValidationException",
            "invalid",
        ),
        (
            Provider::Bedrock,
            403,
            Some("AccessDeniedException"),
            json!({"Message": "denied"}),
            403,
            "AccessDeniedException",
            "denied",
        ),
        (
            Provider::Bedrock,
            429,
            Some("ThrottlingException"),
            json!({"message": "slow down"}),
            429,
            "ThrottlingException",
            "slow down",
        ),
        (
            Provider::Openai,
            401,
            None,
            json!({"error": {"message": "Incorrect API key", "type": "invalid_request_error", "code": "invalid_api_key"}}),
            401,
            "invalid_request_error",
            "Incorrect API key",
        ),
        (
            Provider::Mistral,
            422,
            None,
            json!({"object": "error", "message": "Tool call id was x", "type": "invalid_request_message_error"}),
            422,
            "invalid_request_message_error",
            "Tool call id was x",
        ),
        (
            Provider::Ollama,
            404,
            None,
            json!({"error": "model \"x\" not found, try pulling it first"}),
            404,
            "invalid_request_error",
            "model \"x\" not found, try pulling it first",
        ),
        (Provider::Openai, 500, None, json!("not an object"), 500, "api_error", "\"not an object\""),
    ];
    for (provider, status, error_type, body, want_status, want_type, want_message) in table {
        let error = decode_error(provider, status, error_type, body.to_string().as_bytes());
        assert_eq!(
            (error.status, error.kind.as_str(), error.message.as_str()),
            (want_status, want_type, want_message),
            "{provider:?} {status}"
        );
        let json = error.body();
        assert_eq!(json["error"]["message"], want_message);
        assert!(json["error"].get("param").is_some() && json["error"].get("code").is_some(), "{json}");
    }
    let html = decode_error(Provider::Anthropic, 502, None, b"<html>Bad Gateway</html>");
    assert_eq!((html.status, html.message.as_str()), (502, "<html>Bad Gateway</html>"));
    let typed = decode_error(Provider::Bedrock, 503, Some("ServiceUnavailableException"), b"");
    assert_eq!((typed.status, typed.kind.as_str()), (503, "ServiceUnavailableException"));
}

#[test]
fn malformed_answers_are_502_with_a_clear_message() {
    let answer = super::answer();
    let table: &[(Provider, &[u8], &str)] = &[
        (Provider::Openai, b"{not json", "malformed answer from openai: not JSON"),
        (Provider::Openai, b"{\"id\":\"x\"}", "malformed answer from openai: no `choices` array"),
        (Provider::Anthropic, b"{\"id\":\"x\"}", "malformed answer from anthropic: no `content` array"),
        (Provider::Gemini, b"{}", "malformed answer from gemini: no `candidates` array"),
        (Provider::Bedrock, b"{\"output\":{}}", "malformed answer from bedrock: no `output.message.content` array"),
        (Provider::Ollama, b"{\"done\":true}", "malformed answer from ollama: no `message`"),
        (
            Provider::Anthropic,
            b"{\"content\":[{\"type\":\"tool_use\",\"input\":{}}]}",
            "content[0] (tool_use) lacks an id or a name",
        ),
    ];
    for (provider, body, message) in table {
        let error = decode_response(*provider, body, &answer).expect_err("malformed");
        assert_eq!(error.status, 502);
        assert!(error.message.contains(message), "{provider:?}: {}", error.message);
    }
}

#[test]
fn bad_requests_get_400_naming_the_json_path() {
    let user = json!({"role": "user", "content": "hi"});
    let table: Vec<(Value, &str)> = vec![
        (json!([]), "the request body must be a JSON object"),
        (json!({"messages": [user]}), "model: is required"),
        (json!({"model": "m"}), "messages: is required"),
        (json!({"model": "m", "messages": []}), "messages: must be a non-empty array"),
        (json!({"model": "m", "messages": [{"content": "x"}]}), "messages[0].role: is required"),
        (
            json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role: unknown role \"wizard\"",
        ),
        (
            json!({"model": "m", "messages": [user, {"role": "tool", "content": "x"}]}),
            "messages[1].tool_call_id: is required",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
            "messages[0].content[0].type: content part type \"audio\"",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}),
            "messages[0].content[0].image_url.url: must be an http(s) URL",
        ),
        (
            json!({"model": "m", "messages": [user], "tools": [{"type": "retrieval"}]}),
            "tools[0].type: tool type \"retrieval\" is not supported",
        ),
        (
            json!({"model": "m", "messages": [user], "tool_choice": "sometimes"}),
            "tool_choice: \"sometimes\" is not one of",
        ),
        (json!({"model": "m", "messages": [user], "temperature": "hot"}), "temperature: must be a number"),
        (json!({"model": "m", "messages": [user], "max_tokens": -1}), "max_tokens: must be a non-negative integer"),
        (json!({"model": "m", "messages": [user], "stop": [1]}), "stop[0]: must be a string"),
        (
            json!({"model": "m", "messages": [user], "response_format": {"type": "yaml"}}),
            "response_format.type: must be text, json_object or json_schema",
        ),
        (
            json!({"model": "m", "messages": [user], "stream_options": {"include_usage": 1}}),
            "stream_options.include_usage: must be a boolean",
        ),
    ];
    for (body, message) in table {
        let error = parse_request(body.to_string().as_bytes()).expect_err("refused");
        assert_eq!(error.status, 400, "{body}");
        assert!(error.message.starts_with(message), "{body}: {}", error.message);
    }
}

#[test]
fn provider_limits_and_strict_mode_give_400() {
    let user = json!({"role": "user", "content": "hi"});
    let call = json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]});
    let anthropic = json!({"provider": "anthropic", "api_keys": ["k"]});
    let strict_gemini = json!({"provider": "gemini", "api_keys": ["k"], "strict": true});
    let table: Vec<(Value, Value, &str)> = vec![
        (
            anthropic.clone(),
            json!({"model": "m", "messages": [user], "temperature": 1.5}),
            "temperature: Anthropic accepts 0 to 1",
        ),
        (anthropic.clone(), json!({"model": "m", "messages": [user], "n": 2}), "n: Anthropic returns one choice"),
        (
            anthropic.clone(),
            json!({"model": "m", "messages": [user, call]}),
            "messages[1].tool_calls[0].function.arguments: is not valid JSON",
        ),
        (
            anthropic.clone(),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA=="}}]}]}),
            "messages[0].content[0].image_url.url: media type \"image/bmp\" is not supported by Anthropic",
        ),
        (
            json!({"provider": "bedrock", "bedrock": {"region": "us-east-1", "access_key_id": "a", "secret_access_key": "s"}}),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]}),
            "messages[0].content[0].image_url.url: Bedrock takes image bytes only",
        ),
        (
            json!({"provider": "gemini", "api_keys": ["k"]}),
            json!({"model": "m", "messages": [user, {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
            "messages[1].tool_call_id: \"nope\" answers no earlier assistant tool call",
        ),
        (
            strict_gemini.clone(),
            json!({"model": "m", "messages": [user], "logit_bias": {}}),
            "logit_bias: is not supported by provider \"gemini\" (strict mode)",
        ),
        (
            strict_gemini,
            json!({"model": "m", "messages": [user], "user": "u"}),
            "user: is not supported by provider \"gemini\"",
        ),
        (
            json!({"provider": "openai", "api_keys": ["k"]}),
            json!({"model": "m", "messages": [user], "n": 2, "stream": true}),
            "n: n > 1 cannot be streamed",
        ),
    ];
    for (config, body, message) in table {
        let settings = settings(config);
        let mut request = parse_request(body.to_string().as_bytes()).expect("parses");
        request.model = request.client_model.clone();
        let error = encode(&settings, &request).expect_err("refused");
        assert_eq!(error.status, 400, "{body}");
        assert!(error.message.starts_with(message), "{body}: {}", error.message);
    }
    // Without strict mode the same fields are dropped.
    let settings = settings(json!({"provider": "gemini", "api_keys": ["k"]}));
    let request =
        parse_request(json!({"model": "m", "messages": [user], "logit_bias": {}, "user": "u"}).to_string().as_bytes())
            .expect("parses");
    assert!(encode(&settings, &request).is_ok());
}

#[test]
fn bad_configurations_are_refused_naming_the_path() {
    let table: Vec<(Value, &str)> = vec![
        (json!({"provider": "azure", "api_keys": ["k"]}), "$.base_url: required for provider \"azure\""),
        (json!({"provider": "openai_compatible"}), "$.base_url: required for provider \"openai_compatible\""),
        (
            json!({"provider": "openai", "base_url": "api.openai.com"}),
            "$.base_url: \"api.openai.com\" must start with http:// or https://",
        ),
        (json!({"provider": "openai", "base_url": "https://"}), "$.base_url: \"https://\" needs a host"),
        (json!({"provider": "bedrock"}), "$.bedrock: required for provider \"bedrock\""),
        (json!({"provider": "bedrock", "bedrock": {}}), "$.bedrock.region: required"),
        (
            json!({"provider": "bedrock", "bedrock": {"region": "us east"}}),
            "$.bedrock.region: \"us east\" is not a region",
        ),
        (
            json!({"provider": "bedrock", "bedrock": {"region": "us-east-1"}}),
            "$.bedrock: needs access_key_id and secret_access_key",
        ),
        (
            json!({"provider": "bedrock", "bedrock": {"region": "us-east-1", "access_key_id": "a", "access_key_id_env": "A"}}),
            "$.bedrock.access_key_id: give access_key_id or access_key_id_env, not both",
        ),
        (
            json!({"provider": "bedrock", "bedrock": {"region": "us-east-1", "access_key_id_env": "MISSING", "secret_access_key": "s"}}),
            "$.bedrock.access_key_id_env: environment variable \"MISSING\"",
        ),
        (json!({"provider": "openai", "bedrock": {"region": "us-east-1"}}), "$.bedrock: only for provider \"bedrock\""),
        (
            json!({"provider": "openai", "api_key_env": "MISSING"}),
            "$.api_key_env: environment variable \"MISSING\" is unset",
        ),
        (json!({"provider": "openai", "api_keys": [""]}), "$.api_keys[0]: a key is empty"),
        (json!({"provider": "openai", "model_mapping": {"a*b": "x"}}), "$.model_mapping.\"a*b\""),
        (json!({"provider": "openai", "max_request_bytes": 0}), "$.max_request_bytes: 0 is out of range"),
        (json!({"provider": "openai", "timeout_ms": 0}), "$.timeout_ms: 0 is out of range"),
        (json!({"provider": "openai", "chat_path": "v1/chat"}), "$.chat_path: \"v1/chat\" must start with `/`"),
        (json!({"provider": "openai", "cluster": ""}), "$.cluster: must not be empty"),
        (
            json!({"provider": "openai", "anthropic": {"default_max_tokens": 0}}),
            "$.anthropic.default_max_tokens: must be at least 1",
        ),
    ];
    for (config, message) in table {
        let error = parse(&config).and_then(|parsed| parsed.compile(|_| None)).expect_err("refused");
        assert!(error.starts_with(message), "{config}: {error}");
    }
    let parse_table: Vec<(Value, &str)> = vec![
        (json!([]), "$: the configuration must be a JSON object"),
        (json!({}), "$.provider: required (one of openai, azure,"),
        (json!({"provider": "cohere"}), "$.provider: \"cohere\" is not a provider (one of openai,"),
        (json!({"provider": "openai", "api_key": "k"}), "$.api_key: unknown field (the fields are provider,"),
        (json!({"provider": "openai", "api_keys": "k"}), "$.api_keys: invalid type: string \"k\", expected a sequence"),
        (json!({"provider": "openai", "strict": "yes"}), "$.strict: invalid type: string \"yes\", expected a boolean"),
        (json!({"provider": "openai", "anthropic": {"versio": "x"}}), "$.anthropic: unknown field `versio`"),
    ];
    for (config, message) in parse_table {
        let error = parse(&config).expect_err("refused");
        assert!(error.starts_with(message), "{config}: {error}");
    }
    let env = settings_with(json!({"provider": "openai", "api_key_env": "KEYS"}), &[("KEYS", "a,b")]);
    assert_eq!((env.keys.next(), env.keys.next(), env.keys.next()), (Some("a"), Some("b"), Some("a")));
}
