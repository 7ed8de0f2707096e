//! The API-key pool: keys from the configuration and from an environment variable (comma-separated), used
//! in turn.

use std::cell::Cell;

/// Keys used round robin (per VM: each worker turns its own pool).
#[derive(Debug, Default)]
pub struct KeyPool {
    keys: Vec<String>,
    next: Cell<usize>,
}

impl KeyPool {
    /// A pool of `keys` plus those in environment variable `env` (read through `lookup`, which is
    /// `std::env::var` in the filter). An `env` that is unset or empty is an error naming it.
    pub fn new(keys: &[String], env: Option<&str>, lookup: impl Fn(&str) -> Option<String>) -> Result<KeyPool, String> {
        let mut all: Vec<String> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if key.trim().is_empty() {
                return Err(format!("$.api_keys[{i}]: a key is empty"));
            }
            all.push(key.trim().to_string());
        }
        if let Some(name) = env {
            let value = lookup(name).unwrap_or_default();
            let from_env: Vec<String> =
                value.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_string).collect();
            if from_env.is_empty() {
                return Err(format!(
                    "$.api_key_env: environment variable {name:?} is unset or empty in the filter's VM \
                     (pass it with the attachment's \"environment_variables\": {{\"host_env_keys\": [{name:?}]}})"
                ));
            }
            all.extend(from_env);
        }
        Ok(KeyPool { keys: all, next: Cell::new(0) })
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The next key in turn.
    pub fn next(&self) -> Option<&str> {
        if self.keys.is_empty() {
            return None;
        }
        let i = self.next.get() % self.keys.len();
        self.next.set(i + 1);
        Some(&self.keys[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_config_and_env_are_used_in_turn() {
        let pool =
            KeyPool::new(&["a".into()], Some("KEYS"), |name| (name == "KEYS").then(|| "b, c,".to_string())).unwrap();
        let order: Vec<&str> = (0..5).map(|_| pool.next().unwrap()).collect();
        assert_eq!(order, ["a", "b", "c", "a", "b"]);
        assert!(KeyPool::new(&[], None, |_| None).unwrap().next().is_none());
    }

    #[test]
    fn missing_or_empty_keys_are_refused_with_the_path() {
        let table: &[(&[&str], Option<&str>, &str)] = &[
            (&[" "], None, "$.api_keys[0]: a key is empty"),
            (&[], Some("NOPE"), "$.api_key_env: environment variable \"NOPE\" is unset"),
        ];
        for (keys, env, expected) in table {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let error = KeyPool::new(&keys, *env, |_| None).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
    }
}
