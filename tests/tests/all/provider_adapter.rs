//! The shipped provider adapter (`filters/provider-adapter`) in the real gateway (2 workers), one route per
//! provider in front of a protocol-faithful mock of that provider (`weir_tests::mock_llm`). Every test checks
//! both sides: what the provider received (path, auth, translated body) and what the OpenAI client got (JSON,
//! chunk-by-chunk SSE, errors). Table tests run one gateway whose routes (one per row, chosen by `Host`) each
//! lead through the adapter to a mock of their own, and report every failing row at once.
//!
//! | file | what it covers |
//! |---|---|
//! | `translate.rs` | plain answers, every request field, usage with cached and reasoning tokens, finish reasons |
//! | `streams.rs` | SSE chunk by chunk, usage chunks, set-not-add counters, mid-stream errors, incremental delivery |
//! | `tools.rs` | tool declarations, parallel calls (JSON and streamed), tool results in the history |
//! | `errors.rs` | provider errors, malformed answers, SigV4 refusals, limits, bad configuration |
//! | `keys_models.rs` | key pool, keys from the environment, model aliases, `GET /v1/models` |
//! | `python.rs` | the official `openai` Python package as the client |

mod errors;
mod keys_models;
mod python;
mod streams;
mod tools;
mod translate;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::client::{call, request, Proto, Reply};
use weir_tests::mock_llm::{AwsCredentials, MockLlm, Provider, Received};
use weir_tests::{filters, TestGateway};

/// The key the client sends; it must never reach a provider.
const CLIENT_SECRET: &str = "client-secret-never-forwarded";
/// SigV4 credentials the Bedrock route signs with (AWS's documented example keys).
const AWS_KEY_ID: &str = "AKIDEXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// One provider route: the adapter configuration, the model the client's `gpt-4o` maps to, and the path the
/// provider must receive for a plain and a streamed request.
#[derive(Clone)]
struct Case {
    name: &'static str,
    provider: Provider,
    config: Value,
    model: &'static str,
    path: &'static str,
    stream_path: &'static str,
}

/// Every provider, configured as its README example says. Azure, Gemini and Bedrock appear twice: in callout
/// mode (the model decides the path, so the filter sends the request itself) and in direct mode (README "Direct
/// mode and callout mode": one fixed deployment or model; Gemini and Bedrock then always stream upstream).
fn cases() -> Vec<Case> {
    let mapping = |m: &str| json!({"gpt-4o": m});
    vec![
        Case {
            name: "openai",
            provider: Provider::OpenAi,
            config: json!({"provider": "openai", "api_keys": ["sk-openai"], "model_mapping": mapping("gpt-4o-2024-08-06")}),
            model: "gpt-4o-2024-08-06",
            path: "/v1/chat/completions",
            stream_path: "/v1/chat/completions",
        },
        Case {
            name: "azure",
            provider: Provider::Azure,
            config: json!({"provider": "azure", "base_url": "https://acme.openai.azure.com", "api_keys": ["azure-key"],
                           "azure": {"api_version": "2024-10-21"}, "model_mapping": mapping("gpt4o-deployment")}),
            model: "gpt4o-deployment",
            path: "/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21",
            stream_path: "/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21",
        },
        Case {
            name: "anthropic",
            provider: Provider::Anthropic,
            config: json!({"provider": "anthropic", "api_keys": ["sk-ant-test"], "model_mapping": mapping("claude-sonnet-4-5")}),
            model: "claude-sonnet-4-5",
            path: "/v1/messages",
            stream_path: "/v1/messages",
        },
        Case {
            name: "gemini",
            provider: Provider::Gemini,
            config: json!({"provider": "gemini", "api_keys": ["AIza-test"], "model_mapping": mapping("gemini-2.5-flash")}),
            model: "gemini-2.5-flash",
            path: "/v1beta/models/gemini-2.5-flash:generateContent",
            stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        },
        Case {
            name: "bedrock",
            provider: Provider::Bedrock,
            config: json!({"provider": "bedrock",
                           "bedrock": {"region": "us-east-1", "access_key_id": AWS_KEY_ID, "secret_access_key": AWS_SECRET},
                           "model_mapping": mapping("anthropic.claude-3-5-sonnet-20240620-v1:0")}),
            model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            stream_path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
        },
        Case {
            name: "azure_direct",
            provider: Provider::Azure,
            config: json!({"provider": "azure", "base_url": "https://acme.openai.azure.com", "api_keys": ["azure-key"],
                           "azure": {"api_version": "2024-10-21", "deployment": "gpt4o-deployment"}}),
            model: "gpt4o-deployment",
            path: "/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21",
            stream_path: "/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21",
        },
        Case {
            name: "gemini_direct",
            provider: Provider::Gemini,
            config: json!({"provider": "gemini", "api_keys": ["AIza-test"], "model_mapping": {"*": "gemini-2.5-flash"}}),
            model: "gemini-2.5-flash",
            path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        },
        Case {
            name: "bedrock_direct",
            provider: Provider::Bedrock,
            config: json!({"provider": "bedrock", "api_keys": ["bedrock-api-key"], "bedrock": {"region": "us-east-1"},
                           "model_mapping": {"*": "anthropic.claude-3-5-sonnet-20240620-v1:0"}}),
            model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
            stream_path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
        },
        // Held mode: the model decides the path, and the request headers wait for the body instead of a callout.
        Case {
            name: "gemini_held",
            provider: Provider::Gemini,
            config: json!({"provider": "gemini", "api_keys": ["AIza-test"], "model_mapping": mapping("gemini-2.5-flash"),
                           "hold_headers": true}),
            model: "gemini-2.5-flash",
            path: "/v1beta/models/gemini-2.5-flash:generateContent",
            stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        },
        Case {
            name: "bedrock_held",
            provider: Provider::Bedrock,
            config: json!({"provider": "bedrock",
                           "bedrock": {"region": "us-east-1", "access_key_id": AWS_KEY_ID, "secret_access_key": AWS_SECRET},
                           "model_mapping": mapping("anthropic.claude-3-5-sonnet-20240620-v1:0"), "hold_headers": true}),
            model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            stream_path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
        },
        Case {
            name: "anthropic_held",
            provider: Provider::Anthropic,
            config: json!({"provider": "anthropic", "api_keys": ["sk-ant-test"], "model_mapping": mapping("claude-sonnet-4-5"),
                           "hold_headers": true}),
            model: "claude-sonnet-4-5",
            path: "/v1/messages",
            stream_path: "/v1/messages",
        },
        Case {
            name: "mistral",
            provider: Provider::Mistral,
            config: json!({"provider": "mistral", "api_keys": ["mistral-key"], "model_mapping": mapping("mistral-large-latest")}),
            model: "mistral-large-latest",
            path: "/v1/chat/completions",
            stream_path: "/v1/chat/completions",
        },
        Case {
            name: "ollama",
            provider: Provider::Ollama,
            config: json!({"provider": "ollama", "base_url": "http://127.0.0.1:11434", "model_mapping": mapping("llama3.2")}),
            model: "llama3.2",
            path: "/api/chat",
            stream_path: "/api/chat",
        },
        Case {
            name: "openai_compatible",
            provider: Provider::OpenAiCompatible,
            config: json!({"provider": "openai_compatible", "base_url": "https://api.groq.com/openai/v1",
                           "api_keys": ["gsk-test"], "model_mapping": mapping("llama-3.3-70b-versatile")}),
            model: "llama-3.3-70b-versatile",
            path: "/openai/v1/chat/completions",
            stream_path: "/openai/v1/chat/completions",
        },
    ]
}

/// The cases whose names are listed, in that order.
fn pick(names: &[&str]) -> Vec<Case> {
    let all = cases();
    names.iter().map(|n| all.iter().find(|c| c.name == *n).unwrap_or_else(|| panic!("no case {n}")).clone()).collect()
}

/// A mock provider behind a route of a running gateway: the route sends `POST /v1/chat/completions` through the
/// adapter to the mock, which checks the credentials the README says the route sends.
struct Rig {
    mock: MockLlm,
    gw: Arc<TestGateway>,
    provider: Provider,
    /// The `Host` that selects this rig's route.
    host: String,
}

/// The adapter attachment with `config` (with `hold_headers`, attached with
/// `allow_on_headers_stop_iteration`, which that mode needs).
fn attachment(config: Value) -> Value {
    let hold = config["hold_headers"] == json!(true);
    json!({"name": "llm", "module": filters::PROVIDER_ADAPTER_WASM, "configuration": config,
           "allow_on_headers_stop_iteration": hold})
}

/// The case named `name`.
fn one(name: &str) -> Case {
    pick(&[name]).remove(0)
}

/// One gateway for all `rows`: a mock and a route (selected by `Host: r<i>.test`) for each row's case.
async fn with_rigs<T>(rows: impl IntoIterator<Item = T>, case_of: impl Fn(&T) -> Case) -> Vec<(T, Rig)> {
    let rows: Vec<T> = rows.into_iter().collect();
    let routes = rows.iter().map(|r| {
        let case = case_of(r);
        (case.provider, attachment(case.config))
    });
    let rigs = Rig::fleet(routes.collect()).await;
    rows.into_iter().zip(rigs).collect()
}

impl Rig {
    /// A gateway of its own for `case` (its one route takes any host).
    async fn start(case: &Case) -> Rig {
        Self::with_config(case, case.config.clone()).await
    }

    async fn with_config(case: &Case, config: Value) -> Rig {
        Self::with_attachment(case.provider, attachment(config)).await
    }

    async fn with_attachment(provider: Provider, attachment: Value) -> Rig {
        Self::fleet(vec![(provider, attachment)]).await.remove(0)
    }

    /// One gateway, one mock and one route per `(provider, attachment)`; with several, route `i` takes
    /// `Host: r<i>.test`.
    async fn fleet(routes: Vec<(Provider, Value)>) -> Vec<Rig> {
        let single = routes.len() == 1;
        let mut mocks = Vec::new();
        let (mut route_json, mut clusters) = (Vec::new(), Vec::new());
        for (i, (provider, attachment)) in routes.into_iter().enumerate() {
            let mock = MockLlm::start(provider).await;
            let keys: Vec<&str> = attachment["configuration"]["api_keys"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !keys.is_empty() {
                mock.require_keys(&keys);
            }
            if provider == Provider::Bedrock {
                mock.require_sigv4(AwsCredentials {
                    access_key_id: AWS_KEY_ID.into(),
                    secret_access_key: AWS_SECRET.into(),
                    region: "us-east-1".into(),
                });
            }
            let host = if single { "gateway.test".to_string() } else { format!("r{i}.test") };
            let matching = if single { json!({"path": {"prefix": "/"}}) } else { json!({"host": [host]}) };
            route_json.push(json!({"name": format!("r{i}"), "match": matching, "cluster": format!("p{i}"), "filters": [attachment]}));
            clusters.push(json!({"name": format!("p{i}"), "endpoints": [mock.endpoint()]}));
            mocks.push((mock, provider, host));
        }
        let gw = TestGateway::start(json!({"routes": route_json, "clusters": clusters}))
            .unwrap_or_else(|e| panic!("gateway starts: {e:#}"));
        let gw = Arc::new(gw);
        mocks.into_iter().map(|(mock, provider, host)| Rig { mock, gw: gw.clone(), provider, host }).collect()
    }

    /// The requests the provider received, without the one Weir forwards on its own in callout mode (README
    /// "Direct mode and callout mode": the client's path, an empty body, no credentials), which is checked to
    /// carry nothing of the client's.
    fn received(&self) -> Vec<Received> {
        let (forwarded, translated): (Vec<Received>, Vec<Received>) = self.mock.received().into_iter().partition(|r| {
            r.path_only() == "/v1/chat/completions"
                && r.raw.is_empty()
                && matches!(self.mock_provider(), Provider::Azure | Provider::Gemini | Provider::Bedrock)
        });
        for r in &forwarded {
            for (name, value) in &r.headers {
                assert!(!value.contains(CLIENT_SECRET), "the client's key reached the provider in {name}");
            }
            for name in ["authorization", "api-key", "x-api-key", "x-goog-api-key"] {
                assert_eq!(r.header(name), None, "the abandoned forwarded request carries no {name}");
            }
        }
        translated
    }

    /// The last translated request (panics when there was none).
    fn last(&self) -> Received {
        self.received().pop().expect("the provider received no translated request")
    }

    fn mock_provider(&self) -> Provider {
        self.provider
    }

    /// `POST /v1/chat/completions` with `body`, carrying the client's own credentials in every header a
    /// provider might read.
    async fn chat(&self, body: &Value) -> Reply {
        let text = body.to_string();
        let headers = [
            ("content-type", "application/json"),
            ("authorization", "Bearer client-secret-never-forwarded"),
            ("x-api-key", CLIENT_SECRET),
            ("api-key", CLIENT_SECRET),
            ("x-goog-api-key", CLIENT_SECRET),
        ];
        let req = request("POST", &self.host, "/v1/chat/completions", &headers, &text, &Proto::H1);
        timeout(call(self.gw.main(), &Proto::H1, req)).await
    }
}

/// Fails a test that would hang (a stalled stream) with a clear message instead.
async fn timeout<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the gateway answered within 20 s")
        .unwrap_or_else(|e| panic!("request failed: {e:#}"))
}

/// The client's request: a system prompt and a user turn, for model `gpt-4o`.
fn chat_body(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"}
    ]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    body
}

/// Asserts the provider got the route's credentials in the provider's own header, and nothing of the
/// client's.
fn assert_auth(case: &Case, got: &Received) {
    let key = case.config["api_keys"][0].as_str().unwrap_or("");
    match case.provider {
        Provider::OpenAi | Provider::Mistral | Provider::OpenAiCompatible => {
            assert_eq!(got.header("authorization"), Some(format!("Bearer {key}").as_str()), "{}", case.name)
        }
        Provider::Azure => {
            assert_eq!(got.header("api-key"), Some(key), "{}", case.name);
            assert_eq!(got.header("authorization"), None, "{}", case.name);
        }
        Provider::Anthropic => {
            assert_eq!(got.header("x-api-key"), Some(key), "{}", case.name);
            assert_eq!(got.header("anthropic-version"), Some("2023-06-01"), "{}", case.name);
        }
        Provider::Gemini => assert_eq!(got.header("x-goog-api-key"), Some(key), "{}", case.name),
        Provider::Bedrock if !key.is_empty() => {
            assert_eq!(got.header("authorization"), Some(format!("Bearer {key}").as_str()), "{}", case.name)
        }
        Provider::Bedrock => {
            let auth = got.header("authorization").unwrap_or("");
            assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{}: {auth}", case.name);
            assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{}: {auth}", case.name);
            assert!(got.header("x-amz-date").is_some(), "{}", case.name);
        }
        Provider::Ollama => assert_eq!(got.header("authorization"), None, "{}", case.name),
    }
    for (name, value) in &got.headers {
        assert!(!value.contains(CLIENT_SECRET), "{}: the client's key reached the provider in {name}", case.name);
    }
}

/// The `data:` payloads of an SSE body, in order (`[DONE]` included as a string).
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// The chunks of an OpenAI stream, asserting it is well formed: `text/event-stream`, every frame JSON, and
/// `data: [DONE]` last.
fn chunks(case: &str, reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{case}: {}", reply.body);
    assert!(reply.header("content-type").starts_with("text/event-stream"), "{case}: {:?}", reply.headers);
    let data = sse_data(&reply.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{case}: stream ends with [DONE]: {}", reply.body);
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{case}: chunk is not JSON ({e}): {d}")))
        .collect()
}

/// The usage the mocks script (100 prompt, 30 completion tokens; 40 cached and 12 reasoning where the provider
/// reports them) as OpenAI's `usage` object carries it.
fn assert_usage(name: &str, u: &Value, cached: bool, reasoning: bool) {
    assert_eq!(u["prompt_tokens"], 100, "{name}: {u}");
    assert_eq!(u["completion_tokens"], 30, "{name}: {u}");
    assert_eq!(u["total_tokens"], 130, "{name}: {u}");
    if cached {
        assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 40, "{name}: {u}");
    }
    if reasoning {
        assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 12, "{name}: {u}");
    }
}

/// The concatenated `delta.content` of `chunks`.
fn streamed_text(chunks: &[Value]) -> String {
    chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect()
}

/// The `finish_reason`s that are set, in order.
fn finish_reasons(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason").and_then(Value::as_str))
        .map(String::from)
        .collect()
}

/// An Anthropic `system` or content value (a string or text blocks) as plain text.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

/// Runs `check` for every row (each on its own task) and fails once at the end, listing every row that failed
/// with its panic message, so one run shows every provider's state.
async fn each<T, Fut>(rows: impl IntoIterator<Item = T>, label: impl Fn(&T) -> String, check: impl Fn(T) -> Fut)
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut failed = Vec::new();
    let mut total = 0;
    for row in rows {
        total += 1;
        let name = label(&row);
        if let Err(e) = tokio::spawn(check(row)).await {
            let why = match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            failed.push(format!("- {name}: {why}"));
        }
    }
    assert!(failed.is_empty(), "{} of {total} rows failed:\n{}", failed.len(), failed.join("\n"));
}
