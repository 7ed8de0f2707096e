//! JSON Schema checks: that an artifact's `config_schema` is a JSON Schema, and that a filter configuration
//! matches it.
//!
//! Paths in [`SchemaIssue`] are JSON Pointers (RFC 6901) into the configuration: `/issuer`,
//! `/routes/0/path`; the whole document is the empty pointer, shown as `(root)`.
//!
//! Schemas are self-contained: `$ref`s to other documents are not fetched (no network, no files), so a schema
//! that needs one is refused by [`check_schema`].

use serde_json::Value;
use std::fmt;

/// One way a configuration breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIssue {
    /// JSON Pointer to the offending value (`""` for the whole document).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(root): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Checks that `schema` is a valid JSON Schema (against its draft's meta-schema, draft 2020-12 when it names
/// none) and compiles without external references.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err("a schema is a JSON object (or true/false)".into());
    }
    jsonschema::meta::validate(schema).map_err(|e| describe(e.instance_path().as_str(), &e.to_string()))?;
    jsonschema::validator_for(schema).map(|_| ()).map_err(|e| e.to_string())
}

/// Checks `config` against `schema`; on failure, every issue found, each with its JSON Pointer.
/// A schema that does not compile is reported as one issue at `(root)`.
pub fn validate(schema: &Value, config: &Value) -> Result<(), Vec<SchemaIssue>> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        vec![SchemaIssue { path: String::new(), message: format!("the schema itself is invalid: {e}") }]
    })?;
    let issues: Vec<SchemaIssue> = validator
        .iter_errors(config)
        .map(|e| SchemaIssue { path: e.instance_path().as_str().to_string(), message: e.to_string() })
        .collect();
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

fn describe(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("at {path}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas() {
        let cases = [
            (json!({"type": "object"}), true),
            (json!(true), true),
            (json!({"type": "objekt"}), false),
            (json!({"properties": {"a": {"minLength": -1}}}), false),
            (json!([1]), false),
            (json!({"$ref": "https://example.com/other.json"}), false),
        ];
        for (schema, ok) in cases {
            assert_eq!(check_schema(&schema).is_ok(), ok, "{schema}: {:?}", check_schema(&schema));
        }
    }
}
