//! The OpenAPI 3.1 document of a prompt API, generated once from the configuration: the inputs (JSON body, form
//! body, query parameters, with each variable's type, enum, pattern, lengths, bounds and default), the output
//! of the configured mode, the stream, and every error.

use serde_json::{json, Map, Value};

use crate::config::{InputSource, Mode, OpenApiConfig, Prompt};
use crate::vars::{Kind, Variable};

/// The JSON Schema of one variable.
pub fn variable_schema(v: &Variable) -> Value {
    let mut s = Map::new();
    match v.kind {
        Kind::String => {
            s.insert("type".into(), json!("string"));
            s.insert("maxLength".into(), json!(v.max_length));
            if v.min_length > 0 {
                s.insert("minLength".into(), json!(v.min_length));
            }
            if let Some((pattern, _)) = &v.pattern {
                s.insert("pattern".into(), json!(pattern));
            }
        }
        Kind::Number | Kind::Integer => {
            s.insert("type".into(), json!(v.kind.name()));
            if let Some(lo) = v.minimum {
                s.insert("minimum".into(), json!(lo));
            }
            if let Some(hi) = v.maximum {
                s.insert("maximum".into(), json!(hi));
            }
        }
        Kind::Boolean => {
            s.insert("type".into(), json!("boolean"));
        }
        Kind::Enum => {
            s.insert("type".into(), json!("string"));
            s.insert("enum".into(), json!(v.values));
        }
    }
    if let Some(default) = &v.default {
        s.insert("default".into(), default.clone());
    }
    if !v.description.is_empty() {
        s.insert("description".into(), json!(v.description));
    }
    Value::Object(s)
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The document.
pub fn document(prompt: &Prompt, config: &OpenApiConfig) -> Value {
    let variables = prompt.template.as_ref().map_or(&[][..], |t| t.variables.as_slice());
    let properties: Map<String, Value> = variables.iter().map(|v| (v.name.clone(), variable_schema(v))).collect();
    let required: Vec<&str> = variables.iter().filter(|v| v.required).map(|v| v.name.as_str()).collect();
    let mut inputs = json!({"type": "object", "properties": properties, "required": required});
    if prompt.unknown == crate::config::Unknown::Reject {
        inputs["additionalProperties"] = json!(false);
    }
    let mut content = Map::new();
    if prompt.inputs.contains(&InputSource::Json) {
        content.insert("application/json".into(), json!({"schema": {"$ref": "#/components/schemas/Inputs"}}));
    }
    if prompt.inputs.contains(&InputSource::Form) {
        content.insert(
            "application/x-www-form-urlencoded".into(),
            json!({"schema": {"$ref": "#/components/schemas/Inputs"}}),
        );
    }
    let parameters: Vec<Value> = if prompt.inputs.contains(&InputSource::Query) {
        variables
            .iter()
            .map(|v| json!({"name": v.name, "in": "query", "required": false, "schema": variable_schema(v)}))
            .collect()
    } else {
        Vec::new()
    };
    let output = match (prompt.mode, &prompt.field, &prompt.schema) {
        (Mode::Raw, _, _) => json!({"type": "object", "description": "the provider's chat completion, as it is"}),
        (Mode::Text, Some(field), _) => {
            json!({"type": "object", "required": [field], "properties": {field.as_str(): {"type": "string"}}})
        }
        (Mode::Json, Some(field), schema) => json!({"type": "object", "required": [field],
            "properties": {field.as_str(): schema.clone().unwrap_or_else(|| json!({}))}}),
        (_, _, Some(schema)) => schema.clone(),
        _ => json!({}),
    };
    let mut ok = Map::new();
    ok.insert("application/json".into(), json!({"schema": {"$ref": "#/components/schemas/Output"}}));
    if prompt.streaming {
        ok.insert(
            "text/event-stream".into(),
            json!({"schema": {"type": "string",
                "description": "with `accept: text/event-stream`: `data: {\"text\": \"...\"}` events, then `event: done` with `data: {\"finish_reason\": \"...\"}`; `event: error` on a failure during the stream"}}),
        );
    }
    let mut request_body = json!({"required": false, "content": content});
    if content_is_empty(&request_body) {
        request_body = Value::Null;
    }
    let mut operation = json!({
        "operationId": "prompt",
        "summary": config.title,
        "parameters": parameters,
        "responses": {
            "200": {"description": "the model's answer", "content": ok},
            "400": error_response("invalid_variables (every missing or invalid variable in `details`), invalid_body"),
            "405": error_response("method_not_allowed"),
            "411": error_response("body_required"),
            "413": error_response("body_too_large"),
            "415": error_response("unsupported_media_type"),
            "502": error_response("upstream_error (the provider's message), bad_upstream_response, invalid_model_output, model_refused"),
        }
    });
    if !request_body.is_null() {
        operation["requestBody"] = request_body;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": config.title, "description": config.description, "version": prompt.version,
                 "x-template-digest": prompt.digest},
        "paths": { config.api_path.as_str(): { "post": operation } },
        "components": {"schemas": {
            "Inputs": inputs,
            "Output": output,
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "details": {"type": "array"}, "upstream_status": {"type": "integer"}}}}},
        }}
    })
}

fn content_is_empty(body: &Value) -> bool {
    body["content"].as_object().is_none_or(Map::is_empty)
}
