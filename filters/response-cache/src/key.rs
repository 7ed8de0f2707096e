//! Keys: what makes two requests the same for the cache. The readable part (`GET api.test/items?a=1`) is what
//! purges match; the key itself is the SHA-256 of the readable part and everything else that separates entries
//! (stream or not, route, consumer, tenant, chosen headers, the normalized JSON body).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{QueryMode, Rules};

/// A cache key: the first 16 bytes of SHA-256 of its material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 16]);

impl Hash {
    /// The hash of `material`.
    pub fn of(material: &[u8]) -> Hash {
        let digest = Sha256::digest(material);
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Hash(out)
    }

    /// A number from the hash, for picking buckets.
    pub fn bucket(&self, buckets: usize) -> usize {
        let n = u64::from_le_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5], self.0[6], self.0[7],
        ]);
        (n % buckets.max(1) as u64) as usize
    }
}

/// What a request's key is made of, besides its readable part.
#[derive(Debug, Default, Clone)]
pub struct Parts {
    /// The client asked for a stream.
    pub stream: bool,
    /// The route, unless entries are shared.
    pub route: Option<String>,
    /// The consumer.
    pub consumer: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// The chosen headers, in configuration order (`None`: absent).
    pub headers: Vec<(String, Option<String>)>,
    /// The body's digest, for requests with a body.
    pub body: Option<String>,
}

/// The readable part: method, lower-cased host, path and normalized query.
pub fn readable(rules: &Rules, method: &str, host: &str, path: &str) -> String {
    let (path_only, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out = String::with_capacity(method.len() + host.len() + path.len() + 2);
    out.push_str(&method.to_ascii_uppercase());
    out.push(' ');
    out.push_str(&host.to_ascii_lowercase());
    out.push_str(path_only);
    if let Some(query) = query.map(|q| normalize_query(rules.query, q, &rules.ignore_query_params)) {
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query);
        }
    }
    out
}

/// The query as it goes into the key.
pub fn normalize_query(mode: QueryMode, query: &str, ignore: &[String]) -> String {
    match mode {
        QueryMode::Ignore => String::new(),
        QueryMode::Exact => query.to_owned(),
        QueryMode::Sorted => {
            let mut params: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = p.split_once('=').map_or(*p, |(n, _)| n);
                    !ignore.iter().any(|i| i == name)
                })
                .collect();
            params.sort_by(|a, b| {
                let split = |p: &'_ str| -> (String, String) {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    (n.to_owned(), v.to_owned())
                };
                split(a).cmp(&split(b))
            });
            params.join("&")
        }
    }
}

/// The key of `parts`, whose readable part is `readable`.
pub fn compose(readable: &str, parts: &Parts) -> Hash {
    let mut material = String::with_capacity(readable.len() + 64);
    material.push_str(readable);
    material.push_str(if parts.stream { "\nmode=stream" } else { "\nmode=plain" });
    let mut field = |name: &str, value: Option<&str>| {
        material.push('\n');
        material.push_str(name);
        match value {
            // The length first: no value can pass for another with a newline in it.
            Some(v) => {
                material.push('=');
                material.push_str(&v.len().to_string());
                material.push(':');
                material.push_str(v);
            }
            None => material.push('!'),
        }
    };
    field("route", parts.route.as_deref());
    field("consumer", parts.consumer.as_deref());
    field("tenant", parts.tenant.as_deref());
    for (name, value) in &parts.headers {
        field(&format!("h:{name}"), value.as_deref());
    }
    field("body", parts.body.as_deref());
    Hash::of(material.as_bytes())
}

/// The digest of a request body: of its normalized JSON (keys sorted at every depth, `ignore` fields of the top
/// level left out) when it is JSON, of its bytes otherwise; and whether it asks for a stream (`"stream": true`).
pub fn body_digest(body: &[u8], ignore: &[String]) -> (String, bool) {
    let hex = |bytes: &[u8]| Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            let stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
            for field in ignore {
                map.remove(field);
            }
            let mut out = String::with_capacity(body.len());
            canonical(&Value::Object(map), &mut out);
            (format!("json:{}", hex(out.as_bytes())), stream)
        }
        Ok(other) => {
            let mut out = String::new();
            canonical(&other, &mut out);
            (format!("json:{}", hex(out.as_bytes())), false)
        }
        Err(_) => (format!("raw:{}", hex(body)), false),
    }
}

/// JSON with object keys sorted at every depth and no whitespace (whatever map serde_json was built with).
pub fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*key) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `%XX` and `+` decoded (a query parameter's value); invalid escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
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

/// The value of query parameter `name` in `path`, decoded.
pub fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| percent_decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_normalize_by_mode() {
        let ignore = vec!["utm_source".to_string()];
        let table: &[(QueryMode, &str, &str)] = &[
            (QueryMode::Sorted, "b=2&a=1", "a=1&b=2"),
            (QueryMode::Sorted, "a=2&&a=1&utm_source=x", "a=1&a=2"),
            (QueryMode::Sorted, "", ""),
            (QueryMode::Exact, "b=2&a=1", "b=2&a=1"),
            (QueryMode::Ignore, "b=2&a=1", ""),
        ];
        for (mode, query, want) in table {
            assert_eq!(normalize_query(*mode, query, &ignore), *want, "{mode:?} {query}");
        }
    }

    #[test]
    fn bodies_hash_the_same_whatever_the_key_order_and_ignored_fields() {
        let ignore = vec!["user".to_string(), "stream".to_string()];
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "ada"});
        let b = r#"{"messages":[{"content":"hi","role":"user"}],  "model":"m", "user":"bob", "stream": true}"#;
        let (da, sa) = body_digest(a.to_string().as_bytes(), &ignore);
        let (db, sb) = body_digest(b.as_bytes(), &ignore);
        assert_eq!(da, db);
        assert!(!sa && sb, "stream is read before it is ignored");
        let (dc, _) = body_digest(br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#, &ignore);
        assert_ne!(da, dc);
        let (raw, _) = body_digest(b"not json", &ignore);
        assert!(raw.starts_with("raw:"));
    }

    #[test]
    fn every_part_separates_keys() {
        let base = Parts::default();
        let variants: Vec<Parts> = vec![
            Parts { stream: true, ..base.clone() },
            Parts { route: Some("r".into()), ..base.clone() },
            Parts { consumer: Some("ada".into()), ..base.clone() },
            Parts { tenant: Some("ada".into()), ..base.clone() },
            Parts { headers: vec![("accept".into(), Some("x".into()))], ..base.clone() },
            Parts { headers: vec![("accept".into(), None)], ..base.clone() },
            Parts { body: Some("json:1".into()), ..base.clone() },
        ];
        let mut seen = vec![compose("GET a/", &base)];
        for v in &variants {
            let hash = compose("GET a/", v);
            assert!(!seen.contains(&hash), "{v:?}");
            seen.push(hash);
        }
        assert_ne!(compose("GET a/x", &base), compose("GET a/", &base));
    }

    #[test]
    fn percent_decoding_and_params() {
        assert_eq!(percent_decode("GET%20a.test%2Fx+y%zz%4"), "GET a.test/x y%zz%4");
        assert_eq!(query_param("/p?key=GET%20a&x=1", "key").as_deref(), Some("GET a"));
        assert_eq!(query_param("/p?x=1", "key"), None);
    }
}
