//! What the client gets: the upstream's OpenAI Chat Completions answer shaped per output mode, and every error
//! as `{"error": {"code", "message", ...}}` with its status.

use serde_json::{json, Value};

use crate::config::{Mode, Prompt};
use crate::schema;

/// An answer the filter gives instead of the upstream's.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// The stable code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// Extra fields of the error object (`details`, `upstream_status`, ...).
    pub extra: Vec<(&'static str, Value)>,
}

impl Failure {
    /// A failure without extra fields.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
        Failure { status, code, message: message.into(), extra: Vec::new() }
    }

    /// Adds a field to the error object.
    pub fn with(mut self, key: &'static str, value: Value) -> Failure {
        self.extra.push((key, value));
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut error = json!({"code": self.code, "message": self.message});
        for (key, value) in &self.extra {
            error[*key] = value.clone();
        }
        json!({ "error": error }).to_string().into_bytes()
    }
}

/// The 400 listing every missing or invalid variable.
pub fn invalid_variables(problems: Vec<Value>) -> Failure {
    let n = problems.len();
    let what = if n == 1 { "1 variable is" } else { "variables are" };
    let message = if n == 1 { format!("{what} missing or invalid") } else { format!("{n} {what} missing or invalid") };
    Failure::new(400, "invalid_variables", message).with("details", Value::Array(problems))
}

/// The provider's own words from an error body (OpenAI `error.message`, Anthropic `error.message`, a string
/// `error`, `message`, or the text itself, cut to 1000 bytes).
pub fn provider_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let found = value["error"]["message"]
            .as_str()
            .or_else(|| value["error"].as_str())
            .or_else(|| value["message"].as_str());
        if let Some(text) = found {
            return text.to_owned();
        }
    }
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(1000);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end == 0 {
        "the provider answered without a message".into()
    } else {
        text[..end].trim().to_owned()
    }
}

/// The 502 of an upstream that answered `status`.
pub fn upstream_error(status: u16, body: &[u8]) -> Failure {
    Failure::new(502, "upstream_error", provider_message(body)).with("upstream_status", json!(status))
}

/// The text of the first choice of an OpenAI chat completion, and the whole answer parsed.
pub fn completion_text(body: &[u8]) -> Result<(String, Value), Failure> {
    let bad = |why: &str| Failure::new(502, "bad_upstream_response", format!("the upstream's answer {why}"));
    let answer: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    if answer.get("error").is_some_and(|e| !e.is_null()) {
        return Err(Failure::new(502, "upstream_error", provider_message(body)).with("upstream_status", json!(200)));
    }
    let message = &answer["choices"][0]["message"];
    if !message.is_object() {
        return Err(bad("is not a chat completion (no choices[0].message)"));
    }
    if let Some(refusal) = message["refusal"].as_str() {
        return Err(Failure::new(502, "model_refused", refusal.to_owned()));
    }
    let text = message["content"].as_str().unwrap_or_default().to_owned();
    Ok((text, answer))
}

/// The model's text as JSON: the whole text, or the inside of one Markdown code fence around it.
fn parse_model_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str(trimmed) {
        return Some(value);
    }
    let inner = trimmed.strip_prefix("```")?.strip_suffix("```")?;
    let inner = inner.strip_prefix("json").unwrap_or(inner);
    serde_json::from_str(inner.trim()).ok()
}

/// The body the client gets for a successful upstream answer `body`.
pub fn shape(prompt: &Prompt, body: &[u8]) -> Result<Vec<u8>, Failure> {
    if prompt.mode == Mode::Raw {
        return Ok(body.to_vec());
    }
    let (text, _) = completion_text(body)?;
    let value = match prompt.mode {
        Mode::Json => {
            let Some(parsed) = parse_model_json(&text) else {
                return Err(Failure::new(502, "invalid_model_output", "the model's answer is not JSON")
                    .with("output", Value::String(text)));
            };
            if let Some(schema) = &prompt.schema {
                let problems = schema::validate(&parsed, schema);
                if !problems.is_empty() {
                    return Err(Failure::new(
                        502,
                        "invalid_model_output",
                        "the model's JSON answer does not meet the output schema",
                    )
                    .with("details", json!(problems))
                    .with("output", parsed));
                }
            }
            parsed
        }
        _ => Value::String(text),
    };
    Ok(match &prompt.field {
        Some(field) => json!({ field.as_str(): value }),
        None => value,
    }
    .to_string()
    .into_bytes())
}
