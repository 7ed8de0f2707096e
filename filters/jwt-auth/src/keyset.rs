//! A set of keys and how a token's header picks one: by `kid` when the token has one (a key with that `kid`
//! must exist), by being the only key otherwise, and always with the key's pinned algorithm.

use serde_json::Value;

use crate::alg::Algorithm;
use crate::json;
use crate::keys::{Key, KeyError};

/// Keys, parsed once.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

/// What [`select`] found.
#[derive(Debug)]
pub enum Selected<'a> {
    /// The key to verify with.
    Key(&'a Key),
    /// A key has that `kid` (or is the only one), but it is pinned to another algorithm.
    WrongAlg,
    /// No key has that `kid`, or the token has none and there are several keys.
    Unknown,
}

impl KeySet {
    /// A set of `keys`.
    pub fn new(keys: Vec<Key>) -> KeySet {
        KeySet { keys }
    }

    /// The keys of a JWK Set (`{"keys": [...]}`, duplicate members refused): keys that cannot be used
    /// (unsupported type, `use: enc`, too weak) are left out and reported, by index, in the second value.
    pub fn from_jwks(bytes: &[u8]) -> Result<(KeySet, Vec<(usize, KeyError)>), String> {
        let set = json::object(bytes).map_err(|e| format!("the JWKS is {e}"))?;
        let Some(Value::Array(entries)) = set.get("keys") else {
            return Err("the JWKS has no `keys` array".into());
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match entry.as_object().ok_or(KeyError::Missing("kty")).and_then(Key::from_jwk) {
                Ok(key) => keys.push(key),
                Err(e) => skipped.push((index, e)),
            }
        }
        Ok((KeySet { keys }, skipped))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }
}

/// Picks the key for a token with `alg` and `kid` among `sets` (static keys first, then the remote set).
pub fn select<'a>(sets: &[&'a KeySet], alg: Algorithm, kid: Option<&str>) -> Selected<'a> {
    let mut all = sets.iter().flat_map(|set| set.keys.iter());
    match kid {
        Some(kid) => {
            let mut named = false;
            for key in all.filter(|key| key.kid.as_deref() == Some(kid)) {
                if key.alg == alg {
                    return Selected::Key(key);
                }
                named = true;
            }
            if named {
                Selected::WrongAlg
            } else {
                Selected::Unknown
            }
        }
        None => {
            let (Some(only), None) = (all.next(), all.next()) else { return Selected::Unknown };
            if only.alg == alg {
                Selected::Key(only)
            } else {
                Selected::WrongAlg
            }
        }
    }
}

impl KeySet {
    /// The keys, taken out.
    pub fn into_keys(self) -> Vec<Key> {
        self.keys
    }
}
