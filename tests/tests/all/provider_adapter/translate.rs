//! Plain answers through every provider: the request as the provider must receive it (path, credentials,
//! every translated field, Anthropic's default `max_tokens`), the answer as the OpenAI client must get it,
//! usage with cached and reasoning tokens, and finish reasons.

use serde_json::{json, Value};
use weir_tests::mock_llm::{Answer, Behavior, Finish, Provider, Usage};

use super::{assert_auth, assert_usage, cases, chat_body, each, one, text_of, with_rigs, Case};

/// The fields of a plain request (system prompt, user turn, max tokens, temperature, stop) as each provider
/// names them.
fn assert_plain_body(case: &Case, body: &Value) {
    let name = case.name;
    match case.provider {
        Provider::OpenAi | Provider::Azure | Provider::OpenAiCompatible | Provider::Mistral => {
            assert_eq!(
                body["messages"],
                json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]),
                "{name}"
            );
            if case.provider != Provider::Azure {
                assert_eq!(body["model"], case.model, "{name}");
            }
            let max = body.get("max_tokens").or_else(|| body.get("max_completion_tokens"));
            assert_eq!(max, Some(&json!(50)), "{name}: {body}");
            if case.provider == Provider::Mistral {
                assert_eq!(body["max_tokens"], 50, "{name}: Mistral takes max_tokens");
            }
            assert_eq!(body["temperature"], 0.5, "{name}");
            assert!(body["stop"] == json!(["END"]) || body["stop"] == "END", "{name}: {body}");
        }
        Provider::Anthropic => {
            assert_eq!(body["model"], case.model, "{name}");
            assert_eq!(text_of(&body["system"]), "Be brief.", "{name}: system lifted out: {body}");
            let messages = body["messages"].as_array().expect("messages");
            assert_eq!(messages.len(), 1, "{name}: {body}");
            assert_eq!(messages[0]["role"], "user", "{name}");
            assert_eq!(text_of(&messages[0]["content"]), "Hi", "{name}");
            assert_eq!(body["max_tokens"], 50, "{name}");
            assert_eq!(body["temperature"], 0.5, "{name}");
            assert_eq!(body["stop_sequences"], json!(["END"]), "{name}");
            assert!(body.get("stop").is_none(), "{name}: OpenAI's stop must not be sent: {body}");
        }
        Provider::Gemini => {
            let system = body.get("systemInstruction").or_else(|| body.get("system_instruction")).expect("system");
            assert_eq!(system["parts"], json!([{"text": "Be brief."}]), "{name}: {body}");
            assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "Hi"}]}]), "{name}");
            let config = body.get("generationConfig").or_else(|| body.get("generation_config")).expect("config");
            assert_eq!(config["maxOutputTokens"], 50, "{name}: {body}");
            assert_eq!(config["temperature"], 0.5, "{name}");
            assert_eq!(config["stopSequences"], json!(["END"]), "{name}");
        }
        Provider::Bedrock => {
            assert_eq!(body["system"], json!([{"text": "Be brief."}]), "{name}: {body}");
            assert_eq!(body["messages"], json!([{"role": "user", "content": [{"text": "Hi"}]}]), "{name}");
            assert_eq!(
                body["inferenceConfig"],
                json!({"maxTokens": 50, "temperature": 0.5, "stopSequences": ["END"]}),
                "{name}"
            );
        }
        Provider::Ollama => {
            assert_eq!(body["model"], case.model, "{name}");
            assert_eq!(
                body["messages"],
                json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]),
                "{name}"
            );
            assert_eq!(body["stream"], false, "{name}: Ollama streams unless told not to: {body}");
            assert_eq!(body["options"]["num_predict"], 50, "{name}: {body}");
            assert_eq!(body["options"]["temperature"], 0.5, "{name}");
            assert_eq!(body["options"]["stop"], json!(["END"]), "{name}");
        }
    }
}

#[tokio::test]
async fn plain_answer_through_every_provider() {
    each(
        with_rigs(cases(), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            rig.mock.script(vec![Behavior::Answer(Answer::text("Héllo from the mock, 世界."))]);
            let reply = rig.chat(&chat_body(json!({"max_tokens": 50, "temperature": 0.5, "stop": ["END"]}))).await;

            let got = rig.last();
            assert_eq!(got.method, "POST", "{}", case.name);
            assert_eq!(got.path, case.path, "{}", case.name);
            assert_auth(&case, &got);
            assert_plain_body(&case, &got.body);

            assert_eq!(reply.status, 200, "{}: {}", case.name, reply.body);
            assert!(reply.header("content-type").starts_with("application/json"), "{}: {:?}", case.name, reply.headers);
            let body = reply.json();
            assert_eq!(body["object"], "chat.completion", "{}: {body}", case.name);
            assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()), "{}: {body}", case.name);
            assert!(body["created"].is_u64(), "{}: {body}", case.name);
            assert!(body["model"].as_str().is_some_and(|m| !m.is_empty()), "{}: {body}", case.name);
            let choice = &body["choices"][0];
            assert_eq!(choice["index"], 0, "{}", case.name);
            assert_eq!(choice["message"]["role"], "assistant", "{}", case.name);
            assert_eq!(choice["message"]["content"], "Héllo from the mock, 世界.", "{}", case.name);
            assert_eq!(choice["finish_reason"], "stop", "{}", case.name);
            assert_eq!(body["usage"]["prompt_tokens"], 11, "{}: {body}", case.name);
            assert_eq!(body["usage"]["completion_tokens"], 7, "{}", case.name);
            assert_eq!(body["usage"]["total_tokens"], 18, "{}", case.name);
        },
    )
    .await;
}

/// Cached input counts inside `prompt_tokens` (OpenAI's convention; Anthropic and Bedrock report it apart) and
/// reasoning inside `completion_tokens` (Gemini reports thoughts apart).
#[tokio::test]
async fn usage_with_cached_and_reasoning_tokens() {
    let usage = Usage { prompt: 100, cached: 40, completion: 30, reasoning: 12 };
    // (case, cached reported, reasoning reported)
    let table = [
        ("openai", true, true),
        ("anthropic", true, false),
        ("gemini", true, true),
        ("bedrock", true, false),
        ("gemini_direct", true, true),
        ("bedrock_direct", true, false),
    ];
    each(
        with_rigs(table, |r| one(r.0)).await,
        |(r, _)| r.0.to_string(),
        move |((name, cached, reasoning), rig)| async move {
            rig.mock.script(vec![Behavior::Answer(Answer::text("ok").with_usage(usage))]);
            let reply = rig.chat(&chat_body(json!({}))).await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.body);
            let u = &reply.json()["usage"];
            assert_usage(name, u, cached, reasoning);
        },
    )
    .await;
}

#[tokio::test]
async fn finish_reasons_map_to_openai() {
    // (case, scripted finish, OpenAI finish_reason): max_tokens / MAX_TOKENS / length, refusal / SAFETY /
    // content_filtered.
    let table = [
        ("anthropic", Finish::Length, "length"),
        ("anthropic", Finish::ContentFilter, "content_filter"),
        ("gemini", Finish::Length, "length"),
        ("gemini", Finish::ContentFilter, "content_filter"),
        ("bedrock", Finish::Length, "length"),
        ("bedrock", Finish::ContentFilter, "content_filter"),
        ("gemini_direct", Finish::Length, "length"),
        ("bedrock_direct", Finish::ContentFilter, "content_filter"),
        ("ollama", Finish::Length, "length"),
        ("mistral", Finish::Length, "length"),
    ];
    each(
        with_rigs(table, |r| one(r.0)).await,
        |(r, _)| format!("{} {:?}", r.0, r.1),
        |((name, finish, want), rig)| async move {
            rig.mock.script(vec![Behavior::Answer(Answer::text("cut").with_finish(finish))]);
            let reply = rig.chat(&chat_body(json!({}))).await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.body);
            assert_eq!(reply.json()["choices"][0]["finish_reason"], want, "{name} {finish:?}: {}", reply.body);
        },
    )
    .await;
}

/// Anthropic requires `max_tokens`: a request without one gets `anthropic.default_max_tokens` (4096 unless set).
#[tokio::test]
async fn anthropic_gets_a_default_max_tokens() {
    let base = one("anthropic");
    let mut custom = base.clone();
    custom.config["anthropic"] = json!({"default_max_tokens": 8192});
    each(
        with_rigs([(base, 4096), (custom, 8192)], |r| r.0.clone()).await,
        |((_, want), _)| format!("default {want}"),
        |((_, want), rig)| async move {
            let reply = rig.chat(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(rig.last().body["max_tokens"], want);
        },
    )
    .await;
}
