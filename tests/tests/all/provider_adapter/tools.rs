//! Tool calling through every provider: declarations and `tool_choice` translated, parallel calls back as
//! OpenAI `tool_calls` (JSON and streamed with per-call indexes and ids), and a history holding the
//! assistant's calls and the tool results translated into each provider's turns.

use serde_json::{json, Value};
use weir_tests::mock_llm::{Answer, Behavior, Provider};

use super::{cases, chat_body, chunks, each, finish_reasons, with_rigs, Case};

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
    ])
}

/// Tool-call ids as each provider mints them (`None`: the provider has no ids and the adapter mints its own).
fn ids(provider: Provider) -> [Option<&'static str>; 2] {
    match provider {
        Provider::Anthropic => [Some("toolu_01Weather"), Some("toolu_02Time")],
        Provider::Bedrock => [Some("tooluse_weather1"), Some("tooluse_time2")],
        Provider::Mistral => [Some("abc123XYZ"), Some("def456UVW")],
        Provider::Gemini | Provider::Ollama => [None, None],
        _ => [Some("call_weather1"), Some("call_time2")],
    }
}

/// An answer with text and two parallel calls.
fn parallel_answer(provider: Provider) -> Answer {
    let [a, b] = ids(provider);
    Answer::text("Let me check.")
        .with_tool_call(a.unwrap_or("unused"), "get_weather", json!({"city": "Paris"}))
        .with_tool_call(b.unwrap_or("unused"), "get_time", json!({"tz": "Europe/Paris"}))
}

/// The tool declarations and `tool_choice: "auto"` as the provider must receive them.
fn assert_declarations(case: &Case, body: &Value) {
    let name = case.name;
    match case.provider {
        Provider::Anthropic => {
            let got = body["tools"].as_array().expect("tools");
            assert_eq!(got.len(), 2, "{name}: {body}");
            assert_eq!(got[0]["name"], "get_weather", "{name}");
            assert_eq!(got[0]["description"], "Weather for a city", "{name}");
            assert_eq!(got[0]["input_schema"], tools()[0]["function"]["parameters"], "{name}");
            assert_eq!(body["tool_choice"]["type"], "auto", "{name}: {body}");
        }
        Provider::Gemini => {
            let decls = body["tools"][0]["functionDeclarations"].as_array().expect("functionDeclarations");
            assert_eq!(decls.len(), 2, "{name}: {body}");
            assert_eq!(decls[0]["name"], "get_weather", "{name}");
            assert_eq!(decls[1]["description"], "Time in a zone", "{name}");
            let schema = decls[0].get("parameters").or_else(|| decls[0].get("parametersJsonSchema")).expect("schema");
            assert!(schema["properties"]["city"].is_object(), "{name}: {schema}");
            assert_eq!(body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO", "{name}: {body}");
        }
        Provider::Bedrock => {
            let specs = body["toolConfig"]["tools"].as_array().expect("toolConfig.tools");
            assert_eq!(specs.len(), 2, "{name}: {body}");
            assert_eq!(
                specs[0]["toolSpec"],
                json!({"name": "get_weather", "description": "Weather for a city",
                       "inputSchema": {"json": tools()[0]["function"]["parameters"]}}),
                "{name}"
            );
            assert_eq!(body["toolConfig"]["toolChoice"], json!({"auto": {}}), "{name}: {body}");
        }
        Provider::Ollama => {
            // `/api/chat` takes OpenAI's tool declarations and has no `tool_choice` ("auto" is its behaviour).
            assert_eq!(body["tools"], tools(), "{name}");
        }
        _ => {
            assert_eq!(body["tools"], tools(), "{name}");
            assert_eq!(body["tool_choice"], "auto", "{name}");
        }
    }
}

#[tokio::test]
async fn parallel_tool_calls_through_every_provider() {
    each(
        with_rigs(cases(), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            rig.mock.script(vec![Behavior::Answer(parallel_answer(case.provider))]);
            let reply = rig.chat(&chat_body(json!({"tools": tools(), "tool_choice": "auto"}))).await;
            assert_declarations(&case, &rig.last().body);

            assert_eq!(reply.status, 200, "{}: {}", case.name, reply.body);
            let body = reply.json();
            let choice = &body["choices"][0];
            assert_eq!(choice["finish_reason"], "tool_calls", "{}: {body}", case.name);
            assert_eq!(choice["message"]["content"], "Let me check.", "{}: {body}", case.name);
            let calls = choice["message"]["tool_calls"].as_array().unwrap_or_else(|| panic!("{}: {body}", case.name));
            assert_eq!(calls.len(), 2, "{}: {body}", case.name);
            let want = [("get_weather", json!({"city": "Paris"})), ("get_time", json!({"tz": "Europe/Paris"}))];
            for (i, (call, (fname, args))) in calls.iter().zip(want).enumerate() {
                assert_eq!(call["type"], "function", "{}: {call}", case.name);
                assert_eq!(call["function"]["name"], fname, "{}: {call}", case.name);
                let text = call["function"]["arguments"].as_str().expect("arguments are a JSON string");
                assert_eq!(serde_json::from_str::<Value>(text).expect("arguments parse"), args, "{}", case.name);
                let id = call["id"].as_str().unwrap_or_default();
                match ids(case.provider)[i] {
                    Some(want) => assert_eq!(id, want, "{}: the provider's id is kept", case.name),
                    None => assert!(!id.is_empty(), "{}: an id is minted: {call}", case.name),
                }
            }
            assert_ne!(calls[0]["id"], calls[1]["id"], "{}: distinct ids", case.name);
        },
    )
    .await;
}

#[tokio::test]
async fn streamed_parallel_tool_calls_through_every_provider() {
    each(
        with_rigs(cases(), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            rig.mock.script(vec![Behavior::Answer(parallel_answer(case.provider))]);
            let reply = rig.chat(&chat_body(json!({"tools": tools(), "stream": true}))).await;
            let chunks = chunks(case.name, &reply);
            assert_eq!(finish_reasons(&chunks), ["tool_calls"], "{}: {}", case.name, reply.body);

            // index -> (id, name, arguments), from the deltas in order; the first delta of a call carries its id,
            // type and name.
            let mut calls: Vec<(String, String, String)> = Vec::new();
            for delta in chunks
                .iter()
                .filter_map(|c| c.pointer("/choices/0/delta/tool_calls"))
                .flat_map(|t| t.as_array().cloned().unwrap_or_default())
            {
                let index =
                    delta["index"].as_u64().unwrap_or_else(|| panic!("{}: no index in {delta}", case.name)) as usize;
                if index == calls.len() {
                    assert_eq!(delta["type"], "function", "{}: first delta of call {index}: {delta}", case.name);
                    let id = delta["id"].as_str().unwrap_or_default();
                    assert!(!id.is_empty(), "{}: first delta of call {index} has an id: {delta}", case.name);
                    let name = delta["function"]["name"].as_str().unwrap_or_default();
                    calls.push((id.into(), name.into(), String::new()));
                }
                assert!(index < calls.len(), "{}: indexes count calls from 0: {delta}", case.name);
                calls[index].2.push_str(delta["function"]["arguments"].as_str().unwrap_or_default());
            }
            assert_eq!(calls.len(), 2, "{}: {}", case.name, reply.body);
            let want = [("get_weather", json!({"city": "Paris"})), ("get_time", json!({"tz": "Europe/Paris"}))];
            for (i, ((id, name, args), (fname, fargs))) in calls.iter().zip(want).enumerate() {
                assert_eq!(name, fname, "{}", case.name);
                let parsed: Value =
                    serde_json::from_str(args).unwrap_or_else(|e| panic!("{}: {args:?}: {e}", case.name));
                assert_eq!(parsed, fargs, "{}", case.name);
                if let Some(want) = ids(case.provider)[i] {
                    assert_eq!(id, want, "{}", case.name);
                }
            }
            assert_ne!(calls[0].0, calls[1].0, "{}: distinct ids", case.name);
        },
    )
    .await;
}

/// The conversation after the client ran both tools.
fn history() -> Value {
    json!([
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_t2", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"Europe/Paris\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_w1", "content": "{\"temp_c\":21}"},
        {"role": "tool", "tool_call_id": "call_t2", "content": "14:05"}
    ])
}

/// The history as the provider must receive it.
fn assert_history(case: &Case, body: &Value) {
    let name = case.name;
    match case.provider {
        Provider::Anthropic => {
            let m = body["messages"].as_array().expect("messages");
            assert_eq!(m.len(), 3, "{name}: consecutive tool results are one user turn: {body}");
            let uses = m[1]["content"].as_array().expect("assistant blocks");
            let uses: Vec<&Value> = uses.iter().filter(|b| b["type"] == "tool_use").collect();
            assert_eq!(uses.len(), 2, "{name}: {body}");
            assert_eq!(
                (&uses[0]["id"], &uses[0]["name"], &uses[0]["input"]),
                (&json!("call_w1"), &json!("get_weather"), &json!({"city": "Paris"})),
                "{name}"
            );
            assert_eq!(m[2]["role"], "user", "{name}");
            let results = m[2]["content"].as_array().expect("tool results");
            assert_eq!(results.len(), 2, "{name}: {body}");
            assert_eq!(results[0]["type"], "tool_result", "{name}");
            assert_eq!(results[0]["tool_use_id"], "call_w1", "{name}");
            assert_eq!(results[1]["tool_use_id"], "call_t2", "{name}");
            assert_eq!(super::text_of(&results[1]["content"]), "14:05", "{name}");
        }
        Provider::Gemini => {
            let c = body["contents"].as_array().expect("contents");
            assert_eq!(c.len(), 3, "{name}: {body}");
            assert_eq!(c[1]["role"], "model", "{name}");
            assert_eq!(
                c[1]["parts"][0]["functionCall"],
                json!({"name": "get_weather", "args": {"city": "Paris"}}),
                "{name}: {body}"
            );
            assert_eq!(c[1]["parts"][1]["functionCall"]["name"], "get_time", "{name}");
            assert_eq!(c[2]["role"], "user", "{name}");
            let parts = c[2]["parts"].as_array().expect("parts");
            assert_eq!(parts.len(), 2, "{name}: {body}");
            assert_eq!(parts[0]["functionResponse"]["name"], "get_weather", "{name}: the name is found by call id");
            assert_eq!(parts[1]["functionResponse"]["name"], "get_time", "{name}");
            assert!(parts[1]["functionResponse"]["response"].is_object(), "{name}: {body}");
        }
        Provider::Bedrock => {
            let m = body["messages"].as_array().expect("messages");
            assert_eq!(m.len(), 3, "{name}: {body}");
            assert_eq!(
                m[1]["content"][0]["toolUse"],
                json!({"toolUseId": "call_w1", "name": "get_weather", "input": {"city": "Paris"}}),
                "{name}: {body}"
            );
            assert_eq!(m[2]["role"], "user", "{name}");
            assert_eq!(m[2]["content"][0]["toolResult"]["toolUseId"], "call_w1", "{name}: {body}");
            assert_eq!(m[2]["content"][1]["toolResult"]["toolUseId"], "call_t2", "{name}");
        }
        Provider::Mistral => {
            let m = body["messages"].as_array().expect("messages");
            for (call, result) in [(0, 2), (1, 3)] {
                let id = m[1]["tool_calls"][call]["id"].as_str().unwrap_or_default();
                assert!(id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()), "{name}: id {id:?} rewritten");
                assert_eq!(m[result]["tool_call_id"], id, "{name}: call and result keep matching: {body}");
            }
            assert_ne!(m[1]["tool_calls"][0]["id"], m[1]["tool_calls"][1]["id"], "{name}");
        }
        Provider::Ollama => {
            let m = body["messages"].as_array().expect("messages");
            assert_eq!(
                m[1]["tool_calls"][0]["function"]["arguments"],
                json!({"city": "Paris"}),
                "{name}: objects: {body}"
            );
            assert_eq!(m[2]["role"], "tool", "{name}");
            assert_eq!(m[3]["content"], "14:05", "{name}");
        }
        _ => assert_eq!(body["messages"], history(), "{name}"),
    }
}

#[tokio::test]
async fn tool_results_in_the_history_reach_every_provider() {
    each(
        with_rigs(cases(), Case::clone).await,
        |(c, _)| c.name.to_string(),
        |(case, rig)| async move {
            rig.mock.script(vec![Behavior::Answer(Answer::text("It is 21 °C and 14:05."))]);
            let reply = rig.chat(&json!({"model": "gpt-4o", "messages": history(), "tools": tools()})).await;
            // Each mock refuses what its provider refuses (Bedrock: roles must alternate, toolConfig needed; Mistral:
            // 9-character ids; Ollama: object arguments), so 200 means the provider would have accepted it.
            assert_eq!(reply.status, 200, "{}: {}", case.name, reply.body);
            assert_eq!(reply.json()["choices"][0]["message"]["content"], "It is 21 °C and 14:05.", "{}", case.name);
            assert_history(&case, &rig.last().body);
        },
    )
    .await;
}
