//! The JSON Schema check of a model's JSON answer: a deliberate subset (no JSON Schema crate in the wasm
//! module). Checked keywords: `type` (a name or a list of names), `enum`, `const`, `required`, `properties`
//! (recursively), `additionalProperties: false`, `items` (one schema, recursively), `minItems`, `maxItems`.
//! Every other keyword is sent to the model in `response_format` but not checked here.

use serde_json::Value;

/// The deepest nesting checked (deeper parts of the answer are accepted as they are).
const MAX_DEPTH: usize = 32;

const TYPES: [&str; 7] = ["object", "array", "string", "number", "integer", "boolean", "null"];

/// Checks that `schema` (at JSON path `at`) is an object whose checked keywords are well formed.
pub fn check_schema(schema: &Value, at: &str) -> Result<(), String> {
    check_schema_at(schema, at, 0)
}

fn check_schema_at(schema: &Value, at: &str, depth: usize) -> Result<(), String> {
    let Some(object) = schema.as_object() else {
        return Err(format!("`{at}` must be a JSON Schema object"));
    };
    if depth > MAX_DEPTH {
        return Err(format!("`{at}` is nested deeper than {MAX_DEPTH} levels"));
    }
    match object.get("type") {
        None => {}
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {}
        Some(Value::Array(list)) if list.iter().all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))) => {}
        Some(other) => return Err(format!("`{at}.type` {other} is not a JSON Schema type (or a list of them)")),
    }
    if let Some(required) = object.get("required") {
        if !required.as_array().is_some_and(|r| r.iter().all(Value::is_string)) {
            return Err(format!("`{at}.required` must be a list of property names"));
        }
    }
    if object.get("enum").is_some_and(|e| !e.is_array()) {
        return Err(format!("`{at}.enum` must be a list"));
    }
    if let Some(properties) = object.get("properties") {
        let Some(properties) = properties.as_object() else {
            return Err(format!("`{at}.properties` must be an object of schemas"));
        };
        for (name, sub) in properties {
            check_schema_at(sub, &format!("{at}.properties.{name}"), depth + 1)?;
        }
    }
    if let Some(items) = object.get("items") {
        check_schema_at(items, &format!("{at}.items"), depth + 1)?;
    }
    Ok(())
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// Every way `value` breaks `schema`, each as `"<JSON pointer>: <why>"` (empty: it meets the schema).
pub fn validate(value: &Value, schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(value, schema, "", 0, &mut problems);
    problems
}

fn walk(value: &Value, schema: &Value, pointer: &str, depth: usize, problems: &mut Vec<String>) {
    if depth > MAX_DEPTH || problems.len() >= 20 {
        return;
    }
    let here = if pointer.is_empty() { "/" } else { pointer };
    let Some(schema) = schema.as_object() else { return };
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(t, value) => {
            problems.push(format!("{here}: expected {t}, got {}", kind(value)));
            return;
        }
        Some(Value::Array(list)) if !list.iter().any(|t| t.as_str().is_some_and(|t| type_matches(t, value))) => {
            problems.push(format!("{here}: expected one of {}, got {}", Value::Array(list.clone()), kind(value)));
            return;
        }
        _ => {}
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            problems.push(format!("{here}: {value} is not one of {}", Value::Array(allowed.clone())));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            problems.push(format!("{here}: must be {constant}"));
        }
    }
    if let Some(object) = value.as_object() {
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    problems.push(format!("{here}: property {name:?} is required"));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, item) in object {
            let child = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => walk(item, sub, &child, depth + 1, problems),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{child}: property {name:?} is not allowed"));
                }
                None => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| count < min) {
            problems.push(format!("{here}: has {count} items; fewer than minItems"));
        }
        if schema.get("maxItems").and_then(Value::as_u64).is_some_and(|max| count > max) {
            problems.push(format!("{here}: has {count} items; more than maxItems"));
        }
        if let Some(sub) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                walk(item, sub, &format!("{pointer}/{i}"), depth + 1, problems);
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{check_schema, validate};

    #[test]
    fn checks_the_documented_keywords() {
        let schema = json!({"type": "object", "required": ["label", "score"], "additionalProperties": false,
            "properties": {"label": {"type": "string", "enum": ["positive", "negative"]},
                           "score": {"type": "number"},
                           "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}});
        assert!(check_schema(&schema, "output.schema").is_ok());
        let table = [
            (json!({"label": "positive", "score": 0.9}), vec![]),
            (json!({"label": "meh", "score": 1}), vec!["/label: \"meh\" is not one of"]),
            (json!({"label": "positive"}), vec!["/: property \"score\" is required"]),
            (json!({"label": "positive", "score": "high"}), vec!["/score: expected number, got string"]),
            (json!({"label": "positive", "score": 1, "x": 1}), vec!["/x: property \"x\" is not allowed"]),
            (
                json!({"label": "positive", "score": 1, "tags": ["a", 2, "c"]}),
                vec!["/tags: has 3 items", "/tags/1: expected string"],
            ),
            (json!(["not", "an", "object"]), vec!["/: expected object, got array"]),
        ];
        for (value, expected) in table {
            let problems = validate(&value, &schema);
            assert_eq!(problems.len(), expected.len(), "{value}: {problems:?}");
            for (problem, start) in problems.iter().zip(expected) {
                assert!(problem.starts_with(start), "{value}: {problem} does not start with {start}");
            }
        }
        for (bad, why) in [
            (json!("object"), "must be a JSON Schema object"),
            (json!({"type": "text"}), "`s.type` \"text\""),
            (json!({"required": "a"}), "`s.required`"),
            (json!({"properties": {"a": {"type": 1}}}), "`s.properties.a.type`"),
        ] {
            let error = check_schema(&bad, "s").unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
