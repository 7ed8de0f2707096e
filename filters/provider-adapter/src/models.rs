//! Model aliases per route (exact, prefix `*`, fallback `*`) and the `GET /v1/models` answer.

use serde_json::{json, Value};

/// The compiled `model_mapping`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMap {
    exact: Vec<(String, String)>,
    /// Prefixes, longest first.
    prefixes: Vec<(String, String)>,
    fallback: Option<String>,
    /// The names `GET /v1/models` lists.
    pub listed: Vec<String>,
}

impl ModelMap {
    /// Compiles `mapping` (client name → provider model) and the list of models to show (`None`: the exact
    /// keys of the mapping).
    pub fn new(mapping: &[(String, String)], listed: Option<Vec<String>>) -> Result<ModelMap, String> {
        let mut map = ModelMap::default();
        for (from, to) in mapping {
            if from == "*" {
                map.fallback = Some(to.clone());
            } else if let Some(prefix) = from.strip_suffix('*') {
                if prefix.contains('*') {
                    return Err(format!("$.model_mapping.{from:?}: `*` may only end a name (a prefix) or stand alone"));
                }
                map.prefixes.push((prefix.to_string(), to.clone()));
            } else if from.contains('*') {
                return Err(format!("$.model_mapping.{from:?}: `*` may only end a name (a prefix) or stand alone"));
            } else {
                map.exact.push((from.clone(), to.clone()));
            }
        }
        map.prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        map.listed = listed.unwrap_or_else(|| map.exact.iter().map(|(from, _)| from.clone()).collect());
        Ok(map)
    }

    /// The one model every name maps to: a non-empty `*` entry and nothing else.
    pub fn fixed(&self) -> Option<&str> {
        if !self.exact.is_empty() || !self.prefixes.is_empty() {
            return None;
        }
        self.fallback.as_deref().filter(|m| !m.is_empty())
    }

    /// The provider model for the client's `model`.
    pub fn map(&self, model: &str) -> String {
        let target = self
            .exact
            .iter()
            .find(|(from, _)| from == model)
            .or_else(|| self.prefixes.iter().find(|(prefix, _)| model.starts_with(prefix.as_str())))
            .map(|(_, to)| to.as_str())
            .or(self.fallback.as_deref());
        match target {
            Some(to) if !to.is_empty() => to.to_string(),
            _ => model.to_string(),
        }
    }

    /// The `GET /v1/models` body (`created` is the configuration time).
    pub fn list(&self, owner: &str, created: u64) -> Value {
        let data: Vec<Value> = self
            .listed
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": owner}))
            .collect();
        json!({"object": "list", "data": data})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_the_longest_prefix_beats_the_fallback() {
        let mapping: Vec<(String, String)> = [
            ("gpt-4o", "claude-sonnet"),
            ("gpt-4*", "claude-opus"),
            ("gpt-4o-mini*", "claude-haiku"),
            ("keep*", ""),
            ("*", "claude-default"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let map = ModelMap::new(&mapping, None).unwrap();
        let table = [
            ("gpt-4o", "claude-sonnet"),
            ("gpt-4o-mini-2024", "claude-haiku"),
            ("gpt-4-turbo", "claude-opus"),
            ("keep-me", "keep-me"),
            ("other", "claude-default"),
        ];
        for (from, to) in table {
            assert_eq!(map.map(from), to, "{from}");
        }
        assert_eq!(map.listed, ["gpt-4o"]);
        assert_eq!(ModelMap::new(&[], None).unwrap().map("as-is"), "as-is");
    }

    #[test]
    fn a_star_inside_a_name_is_refused() {
        let error = ModelMap::new(&[("gpt*4".into(), "x".into())], None).unwrap_err();
        assert!(error.contains("$.model_mapping.\"gpt*4\""), "{error}");
    }

    #[test]
    fn the_model_list_is_openai_shaped() {
        let map = ModelMap::new(&[], Some(vec!["a".into(), "b".into()])).unwrap();
        assert_eq!(
            map.list("weir", 7),
            json!({"object": "list", "data": [
                {"id": "a", "object": "model", "created": 7, "owned_by": "weir"},
                {"id": "b", "object": "model", "created": 7, "owned_by": "weir"},
            ]})
        );
    }
}
