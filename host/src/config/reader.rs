//! A JSON reader that tracks the JSON path and collects every problem instead of stopping at the first.
//!
//! serde stops at the first error and reports it without a path a user can act on; a gateway config
//! with three mistakes should be fixed in one edit, not three restarts. Each accessor records what is
//! wrong at `$.a.b[2].c` and returns `None`, so parsing continues and all errors are reported at once.

use serde_json::{Map, Value};
use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// JSON path of the offending value, `$` for the document root.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects the issues found while reading one document.
#[derive(Debug, Default)]
pub struct Issues(Vec<ConfigIssue>);

impl Issues {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigIssue { path: path.to_string(), message: message.into() });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded issues, in document order.
    pub fn into_vec(self) -> Vec<ConfigIssue> {
        self.0
    }
}

/// Names a JSON value's type the way a user reads it in an error.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read, with its path; reports unknown keys when finished.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    seen: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object, recording an issue if it is not one.
    pub fn new(value: &'a Value, path: &str, issues: &mut Issues) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Obj { map, path: path.to_string(), seen: Vec::new() }),
            other => {
                issues.push(path, format!("expected an object, found {}", type_name(other)));
                None
            }
        }
    }

    /// The path of this object.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of a key inside this object.
    pub fn child(&self, key: &str) -> String {
        format!("{}.{}", self.path, key)
    }

    /// The raw value of an optional key.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The raw value of a required key, recording an issue when it is absent.
    pub fn req(&mut self, key: &'static str, issues: &mut Issues, hint: &str) -> Option<&'a Value> {
        let v = self.get(key);
        if v.is_none() {
            issues.push(&self.path, format!("missing required field \"{key}\"{hint}"));
        }
        v
    }

    /// An optional string.
    pub fn str(&mut self, key: &'static str, issues: &mut Issues) -> Option<&'a str> {
        let path = self.child(key);
        self.get(key).and_then(|v| as_str(v, &path, issues))
    }

    /// A required string.
    pub fn req_str(&mut self, key: &'static str, issues: &mut Issues, hint: &str) -> Option<&'a str> {
        let path = self.child(key);
        self.req(key, issues, hint).and_then(|v| as_str(v, &path, issues))
    }

    /// An optional boolean.
    pub fn bool(&mut self, key: &'static str, issues: &mut Issues) -> Option<bool> {
        let path = self.child(key);
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                issues.push(&path, format!("expected true or false, found {}", type_name(other)));
                None
            }
        }
    }

    /// An optional unsigned integer within `min..=max`.
    pub fn u64_in(&mut self, key: &'static str, min: u64, max: u64, issues: &mut Issues) -> Option<u64> {
        let path = self.child(key);
        let v = self.get(key)?;
        as_u64_in(v, &path, min, max, issues)
    }

    /// An optional array; each element is handed to `each` with its path.
    pub fn array(&mut self, key: &'static str, issues: &mut Issues) -> Option<Vec<(String, &'a Value)>> {
        let path = self.child(key);
        let v = self.get(key)?;
        as_array(v, &path, issues)
    }

    /// Records an issue for every key that no accessor asked for: a typo must not be silently ignored.
    pub fn finish(self, issues: &mut Issues) {
        for key in self.map.keys() {
            if !self.seen.iter().any(|k| k == key) {
                let known: Vec<&str> = self.seen.to_vec();
                let suggestion = closest(key, &known)
                    .map(|k| format!("; did you mean \"{k}\"?"))
                    .unwrap_or_else(|| format!("; known fields: {}", known.join(", ")));
                issues.push(&self.child(key), format!("unknown field \"{key}\"{suggestion}"));
            }
        }
    }
}

/// Reads a string value.
pub fn as_str<'a>(v: &'a Value, path: &str, issues: &mut Issues) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s.as_str()),
        other => {
            issues.push(path, format!("expected a string, found {}", type_name(other)));
            None
        }
    }
}

/// Reads an array value into (path, element) pairs.
pub fn as_array<'a>(v: &'a Value, path: &str, issues: &mut Issues) -> Option<Vec<(String, &'a Value)>> {
    match v {
        Value::Array(items) => Some(items.iter().enumerate().map(|(i, item)| (format!("{path}[{i}]"), item)).collect()),
        other => {
            issues.push(path, format!("expected an array, found {}", type_name(other)));
            None
        }
    }
}

/// Reads an unsigned integer within `min..=max`.
pub fn as_u64_in(v: &Value, path: &str, min: u64, max: u64, issues: &mut Issues) -> Option<u64> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            issues.push(path, format!("{n} is out of range; use a whole number from {min} to {max}"));
            None
        }
        None => {
            issues.push(path, format!("expected a whole number from {min} to {max}, found {}", describe(v)));
            None
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        other => type_name(other).to_string(),
    }
}

/// The known name closest to `word`, if it is a plausible typo.
pub(super) fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_issue_with_its_path() {
        let doc = json!({"a": "x", "n": 70000, "nmae": 1, "list": [1, "s"]});
        let mut issues = Issues::default();
        let mut o = Obj::new(&doc, "$", &mut issues).unwrap();
        assert_eq!(o.u64_in("a", 0, 10, &mut issues), None);
        assert_eq!(o.u64_in("n", 1, 65535, &mut issues), None);
        for (p, v) in o.array("list", &mut issues).unwrap() {
            as_str(v, &p, &mut issues);
        }
        o.req_str("name", &mut issues, "");
        o.finish(&mut issues);
        let got: Vec<String> = issues.into_vec().iter().map(|i| i.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "$.a: expected a whole number from 0 to 10, found a string",
                "$.n: 70000 is out of range; use a whole number from 1 to 65535",
                "$.list[0]: expected a string, found a number",
                "$: missing required field \"name\"",
                "$.nmae: unknown field \"nmae\"; did you mean \"name\"?",
            ]
        );
    }

    #[test]
    fn edit_distance_table() {
        for (a, b, d) in [("", "", 0), ("abc", "abc", 0), ("adress", "address", 1), ("kitten", "sitting", 3)] {
            assert_eq!(edit_distance(a, b), d, "{a} -> {b}");
        }
    }
}
