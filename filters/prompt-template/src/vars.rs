//! Typed variables: their configuration, and the check of one request's inputs against them (every problem at
//! once).

use serde::Deserialize;
use serde_json::{json, Value};

/// The longest string a variable accepts when its `max_length` is not set.
pub const DEFAULT_MAX_LENGTH: usize = 8192;

/// A variable as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableConfig {
    /// `string` (default), `number`, `integer`, `boolean` or `enum`.
    #[serde(rename = "type", default)]
    pub kind: Kind,
    /// Whether the request must give it (default: true unless a `default` is set).
    pub required: Option<bool>,
    /// The value used when the request gives none.
    pub default: Option<Value>,
    /// `string`: the longest value, in characters.
    pub max_length: Option<usize>,
    /// `string`: the shortest value, in characters.
    pub min_length: Option<usize>,
    /// `string`: a regular expression the value must match (unanchored, as in JSON Schema).
    pub pattern: Option<String>,
    /// `number`, `integer`: the smallest value.
    pub minimum: Option<f64>,
    /// `number`, `integer`: the largest value.
    pub maximum: Option<f64>,
    /// `enum`: the allowed strings.
    #[serde(default)]
    pub values: Vec<String>,
    /// For the OpenAPI document.
    #[serde(default)]
    pub description: String,
}

/// A variable's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Text.
    #[default]
    String,
    /// Any JSON number.
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// One of `values`.
    Enum,
}

impl Kind {
    /// The name used in messages and the OpenAPI document.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::Enum => "enum",
        }
    }
}

/// A checked variable.
#[derive(Debug)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: Kind,
    /// Whether a request must give it.
    pub required: bool,
    /// Its default.
    pub default: Option<Value>,
    /// The length limits (strings).
    pub min_length: usize,
    /// The longest value (strings).
    pub max_length: usize,
    /// The pattern, as written and compiled.
    pub pattern: Option<(String, regex_lite::Regex)>,
    /// The bounds (numbers).
    pub minimum: Option<f64>,
    /// The bounds (numbers).
    pub maximum: Option<f64>,
    /// The allowed values (enums).
    pub values: Vec<String>,
    /// The description.
    pub description: String,
}

/// Whether `name` may be a variable name: `[A-Za-z_][A-Za-z0-9_]{0,63}`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

impl Variable {
    /// Checks `config` of variable `name`.
    pub fn compile(name: &str, config: &VariableConfig) -> Result<Variable, String> {
        let at = format!("variables.{name}");
        if !valid_name(name) {
            return Err(format!("`{at}`: {name:?} is not a name (letters, digits, `_`, not starting with a digit)"));
        }
        let kind = config.kind;
        let only = |set: bool, field: &str, kinds: &str| {
            if set {
                Err(format!("`{at}.{field}` applies to type {kinds} only"))
            } else {
                Ok(())
            }
        };
        only(config.max_length.is_some() && kind != Kind::String, "max_length", "string")?;
        only(config.min_length.is_some() && kind != Kind::String, "min_length", "string")?;
        only(config.pattern.is_some() && kind != Kind::String, "pattern", "string")?;
        let numeric = matches!(kind, Kind::Number | Kind::Integer);
        only(config.minimum.is_some() && !numeric, "minimum", "number or integer")?;
        only(config.maximum.is_some() && !numeric, "maximum", "number or integer")?;
        only(!config.values.is_empty() && kind != Kind::Enum, "values", "enum")?;
        if kind == Kind::Enum && config.values.is_empty() {
            return Err(format!("`{at}.values` must list the allowed strings of an enum"));
        }
        let max_length = config.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if max_length == 0 || max_length > 1 << 20 {
            return Err(format!("`{at}.max_length` must be 1 to 1048576"));
        }
        let min_length = config.min_length.unwrap_or(0);
        if min_length > max_length {
            return Err(format!("`{at}.min_length` is larger than `max_length`"));
        }
        if let (Some(lo), Some(hi)) = (config.minimum, config.maximum) {
            if lo > hi {
                return Err(format!("`{at}.minimum` is larger than `maximum`"));
            }
        }
        let pattern = match &config.pattern {
            Some(p) => {
                let re = regex_lite::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("`{at}.pattern` {p:?} is not a regular expression: {e}"))?;
                Some((p.clone(), re))
            }
            None => None,
        };
        if config.required == Some(true) && config.default.is_some() {
            return Err(format!("`{at}`: a variable with a `default` cannot be `required`; remove one"));
        }
        let mut variable = Variable {
            name: name.to_owned(),
            kind,
            required: config.required.unwrap_or(config.default.is_none()),
            default: None,
            min_length,
            max_length,
            pattern,
            minimum: config.minimum,
            maximum: config.maximum,
            values: config.values.clone(),
            description: config.description.clone(),
        };
        if let Some(default) = &config.default {
            match variable.check(default) {
                Ok(value) => variable.default = Some(value),
                Err((_, why)) => return Err(format!("`{at}.default` is not a valid value: {why}")),
            }
        }
        Ok(variable)
    }

    /// Checks a JSON value; the value to substitute, or the error code and message.
    pub fn check(&self, value: &Value) -> Result<Value, (&'static str, String)> {
        let wrong = || ("wrong_type", format!("must be of type {}", self.kind.name()));
        match self.kind {
            Kind::String => {
                let Value::String(s) = value else { return Err(wrong()) };
                let length = s.chars().count();
                if length > self.max_length {
                    return Err(("too_long", format!("is {length} characters long; at most {}", self.max_length)));
                }
                if length < self.min_length {
                    return Err(("too_short", format!("is {length} characters long; at least {}", self.min_length)));
                }
                if let Some((text, re)) = &self.pattern {
                    if !re.is_match(s) {
                        return Err(("pattern_mismatch", format!("does not match the pattern {text:?}")));
                    }
                }
                Ok(value.clone())
            }
            Kind::Number | Kind::Integer => {
                let Some(n) = value.as_f64() else { return Err(wrong()) };
                if self.kind == Kind::Integer && !(value.is_i64() || value.is_u64()) {
                    return Err(wrong());
                }
                if self.minimum.is_some_and(|lo| n < lo) || self.maximum.is_some_and(|hi| n > hi) {
                    let lo = self.minimum.map_or("-".into(), |v| v.to_string());
                    let hi = self.maximum.map_or("-".into(), |v| v.to_string());
                    return Err(("out_of_range", format!("must be between {lo} and {hi}")));
                }
                Ok(value.clone())
            }
            Kind::Boolean => value.is_boolean().then(|| value.clone()).ok_or_else(wrong),
            Kind::Enum => match value {
                Value::String(s) if self.values.contains(s) => Ok(value.clone()),
                _ => Err(("not_in_enum", format!("must be one of {}", self.values.join(", ")))),
            },
        }
    }

    /// Reads a text input (query or form) as this variable's type.
    pub fn from_text(&self, text: &str) -> Value {
        match self.kind {
            Kind::String | Kind::Enum => Value::String(text.to_owned()),
            Kind::Number | Kind::Integer => serde_json::from_str::<serde_json::Number>(text.trim())
                .map_or(Value::String(text.to_owned()), Value::Number),
            Kind::Boolean => match text {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => Value::String(text.to_owned()),
            },
        }
    }
}

/// The inputs of one request: (name, value) pairs from each source, the first source first.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Values by precedence: a name seen earlier wins.
    pub pairs: Vec<(String, Input)>,
}

/// One input value.
#[derive(Debug, Clone)]
pub enum Input {
    /// From a JSON body: typed.
    Json(Value),
    /// From a form or the query: text, read as the variable's type.
    Text(String),
}

/// One problem with one variable.
pub fn problem(variable: &str, code: &str, message: String) -> Value {
    json!({"variable": variable, "code": code, "message": message})
}

/// Checks `inputs` against `variables`: the values to substitute (in `variables` order), or every problem.
pub fn resolve(variables: &[Variable], inputs: &Inputs, reject_unknown: bool) -> Result<Vec<Value>, Vec<Value>> {
    let mut problems = Vec::new();
    let mut values = Vec::with_capacity(variables.len());
    for variable in variables {
        let given = inputs.pairs.iter().find(|(name, _)| *name == variable.name).map(|(_, v)| v);
        let value = match given {
            Some(Input::Json(Value::Null)) | None => match &variable.default {
                Some(default) => default.clone(),
                None if variable.required => {
                    problems.push(problem(&variable.name, "missing", format!("`{}` is required", variable.name)));
                    continue;
                }
                None => {
                    // An optional variable left out is substituted as empty text.
                    values.push(Value::String(String::new()));
                    continue;
                }
            },
            Some(Input::Json(v)) => v.clone(),
            Some(Input::Text(t)) => variable.from_text(t),
        };
        match variable.check(&value) {
            Ok(v) => values.push(v),
            Err((code, why)) => problems.push(problem(&variable.name, code, format!("`{}` {why}", variable.name))),
        }
    }
    if reject_unknown {
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in &inputs.pairs {
            if !variables.iter().any(|v| v.name == *name) && !seen.contains(&name.as_str()) {
                seen.push(name);
                problems.push(problem(name, "unknown_variable", format!("`{name}` is not a variable of this API")));
            }
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// Decodes `application/x-www-form-urlencoded` text (also the query string) into pairs.
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{form_pairs, resolve, Input, Inputs, Variable, VariableConfig};

    #[test]
    fn decodes_forms_and_queries() {
        let table: &[(&str, &[(&str, &str)])] = &[
            ("a=1&b=two+words", &[("a", "1"), ("b", "two words")]),
            ("t=%7B%7Bx%7D%7D&e=", &[("t", "{{x}}"), ("e", "")]),
            ("bad=%zz%4&flag", &[("bad", "%zz%4"), ("flag", "")]),
            ("u=%C3%A9t%C3%A9&&", &[("u", "été")]),
        ];
        for (text, pairs) in table {
            let expected: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(form_pairs(text), expected, "{text}");
        }
    }

    fn variable(config: Value) -> Variable {
        let config: VariableConfig = serde_json::from_value(config).expect("config");
        Variable::compile("v", &config).expect("valid")
    }

    #[test]
    fn reads_text_inputs_as_the_variables_type() {
        let table: &[(Value, &str, Result<Value, &str>)] = &[
            (json!({"type": "integer"}), "5", Ok(json!(5))),
            (json!({"type": "integer"}), "5.5", Err("wrong_type")),
            (json!({"type": "number", "maximum": 1}), "0.5", Ok(json!(0.5))),
            (json!({"type": "number"}), "five", Err("wrong_type")),
            (json!({"type": "boolean"}), "true", Ok(json!(true))),
            (json!({"type": "boolean"}), "0", Ok(json!(false))),
            (json!({"type": "boolean"}), "yes", Err("wrong_type")),
            (json!({"type": "enum", "values": ["a", "b"]}), "b", Ok(json!("b"))),
            (json!({"min_length": 2}), "x", Err("too_short")),
        ];
        for (config, text, expected) in table {
            let v = variable(config.clone());
            let inputs = Inputs { pairs: vec![("v".into(), Input::Text((*text).into()))] };
            let got = resolve(std::slice::from_ref(&v), &inputs, true);
            match expected {
                Ok(value) => assert_eq!(got, Ok(vec![value.clone()]), "{config} {text}"),
                Err(code) => assert_eq!(got.unwrap_err()[0]["code"], *code, "{config} {text}"),
            }
        }
    }

    #[test]
    fn ignores_unknown_inputs_when_told_and_uses_defaults() {
        let v = variable(json!({"default": "d"}));
        let inputs =
            Inputs { pairs: vec![("other".into(), Input::Text("x".into())), ("v".into(), Input::Json(Value::Null))] };
        assert_eq!(resolve(std::slice::from_ref(&v), &inputs, false), Ok(vec![json!("d")]));
        let problems = resolve(std::slice::from_ref(&v), &inputs, true).unwrap_err();
        assert_eq!(
            problems,
            vec![
                json!({"variable": "other", "code": "unknown_variable", "message": "`other` is not a variable of this API"})
            ]
        );
    }
}
