//! Messages with `{{name}}` placeholders: split once, at configuration time, into text and variable pieces, and
//! rendered in one pass. A value is never read as template text (a value holding `{{x}}` stays as it is), and the
//! chat request is built as a JSON value and serialized by serde_json, so quotes, newlines and role markers in a
//! value stay inside the one string they were put in.

use serde_json::{json, Map, Value};

use crate::config::{Prompt, Template};

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// The variable at this index (of the template's variables).
    Var(usize),
}

/// A message split at its placeholders.
#[derive(Debug, Clone)]
pub struct Message {
    /// The role.
    pub role: String,
    /// The pieces.
    pub pieces: Vec<Piece>,
}

/// Splits `content` at `{{name}}` placeholders (spaces inside the braces allowed); `names` are the declared
/// variables. A `{{` that does not open a placeholder of a declared variable is an error naming `at`.
pub fn parse(role: &str, content: &str, names: &[&str], at: &str) -> Result<Message, String> {
    let mut pieces = Vec::new();
    let mut rest = content;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!("`{at}`: `{{{{` at byte {} is not closed by `}}}}`", offset + open));
        };
        let name = after[..close].trim();
        if !crate::vars::valid_name(name) {
            return Err(format!(
                "`{at}`: `{{{{{}}}}}` at byte {} is not a placeholder `{{{{name}}}}`",
                &after[..close],
                offset + open
            ));
        }
        let Some(index) = names.iter().position(|n| *n == name) else {
            return Err(format!(
                "`{at}`: placeholder `{{{{{name}}}}}` names no variable; declare it under `variables`"
            ));
        };
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        pieces.push(Piece::Var(index));
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(Message { role: role.to_owned(), pieces })
}

/// The text a value is substituted as: a string as it is, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The messages with `values` (in the template's variable order) substituted.
pub fn render(template: &Template, values: &[Value]) -> Vec<Value> {
    template
        .messages
        .iter()
        .map(|m| {
            let mut content = String::new();
            for piece in &m.pieces {
                match piece {
                    Piece::Text(t) => content.push_str(t),
                    Piece::Var(i) => content.push_str(&values.get(*i).map(text_of).unwrap_or_default()),
                }
            }
            json!({"role": m.role, "content": content})
        })
        .collect()
}

/// The OpenAI Chat Completions request for `values`.
pub fn chat_request(prompt: &Prompt, template: &Template, values: &[Value], stream: bool) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(template.model.clone()));
    body.insert("messages".into(), Value::Array(render(template, values)));
    for (key, value) in &template.parameters {
        body.insert(key.clone(), value.clone());
    }
    if let Some(format) = &prompt.response_format {
        body.insert("response_format".into(), format.clone());
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Value::Object(body).to_string().into_bytes()
}

/// An ordinary chat request with the decorators' messages added; `None` when `body` is not a JSON object with
/// a `messages` array (it then goes on untouched).
pub fn decorate(prompt: &Prompt, body: &[u8]) -> Option<Vec<u8>> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let messages = request.get_mut("messages")?.as_array_mut()?;
    let mut all = prompt.prepend.clone();
    all.append(messages);
    all.extend(prompt.append.iter().cloned());
    *messages = all;
    Some(request.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::{parse, Piece};

    #[test]
    fn splits_placeholders_and_refuses_broken_ones() {
        let names = ["text", "lang"];
        let ok: &[(&str, Vec<Piece>)] = &[
            ("Hi {{text}}!", vec![Piece::Text("Hi ".into()), Piece::Var(0), Piece::Text("!".into())]),
            ("{{ lang }}{{text}}", vec![Piece::Var(1), Piece::Var(0)]),
            ("no placeholder", vec![Piece::Text("no placeholder".into())]),
            ("a } and { alone", vec![Piece::Text("a } and { alone".into())]),
        ];
        for (content, pieces) in ok {
            assert_eq!(&parse("user", content, &names, "m").expect(content).pieces, pieces, "{content}");
        }
        let bad: &[(&str, &str)] = &[
            ("Hi {{text", "is not closed"),
            ("Hi {{1x}}", "is not a placeholder"),
            ("Hi {{other}}", "names no variable"),
            ("{{}}", "is not a placeholder"),
        ];
        for (content, why) in bad {
            let error = parse("user", content, &names, "messages[0].content").unwrap_err();
            assert!(error.contains(why) && error.contains("messages[0].content"), "{content}: {error}");
        }
    }
}
