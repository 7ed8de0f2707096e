//! Registry authentication: the credentials Weir presents ([`Credentials`]), the `WWW-Authenticate` challenge
//! parser and the Docker token flow (the distribution "token authentication" specification).
//!
//! A registry that wants a token answers 401 with `WWW-Authenticate: Bearer realm="...",service="...",
//! scope="..."`; the client GETs `realm?service=...&scope=...`, reads `token` (or `access_token`) from the JSON
//! answer and retries with `Authorization: Bearer <token>`. Tokens are cached per (registry, scope) for one
//! push or pull ([`TokenCache`]).

use std::collections::HashMap;

/// The credentials presented to a registry and its token server.
///
/// Only anonymous access exists today. Credentials (a `Basic { username, password }` variant, sent to the token
/// realm, or to the registry itself when it challenges with `Basic`) go here: [`Credentials::authorization`] is
/// the one place that turns them into a header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// No credentials: anonymous tokens only.
    #[default]
    Anonymous,
}

impl Credentials {
    /// The `Authorization` header value for the token server, if any.
    pub(crate) fn authorization(&self) -> Option<String> {
        match self {
            Credentials::Anonymous => None,
        }
    }
}

/// What a push or pull needs from a repository: the token scope it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read (`repository:REPO:pull`).
    Pull,
    /// Read and write (`repository:REPO:pull,push`).
    Push,
}

impl Access {
    /// The scope string for `repository`.
    pub(crate) fn scope(self, repository: &str) -> String {
        match self {
            Access::Pull => format!("repository:{repository}:pull"),
            Access::Push => format!("repository:{repository}:pull,push"),
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, names lowercased.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// Parses one challenge: `Scheme k1="v1",k2=v2`. Quoted values may contain commas and `\"` escapes.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = match header.split_once(char::is_whitespace) {
            Some((s, r)) => (s, r.trim_start()),
            None => (header, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = HashMap::new();
        while !rest.is_empty() {
            let (name, after) = rest.split_once('=')?;
            let name = name.trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end?..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.insert(name, value);
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }

    /// The parameter `name`, if present and not empty.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Picks the Bearer challenge among the `WWW-Authenticate` values, else the first one that parses.
pub(crate) fn pick_challenge<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let parsed: Vec<Challenge> = values.filter_map(Challenge::parse).collect();
    let bearer = parsed.iter().position(|c| c.scheme == "bearer");
    match bearer {
        Some(i) => parsed.into_iter().nth(i),
        None => parsed.into_iter().next(),
    }
}

/// Everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`), as registries' token servers
/// expect query values.
const NOT_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The token request URL: `realm` with `service` and `scope` added to its query.
pub(crate) fn token_url(realm: &str, service: Option<&str>, scope: Option<&str>) -> String {
    let mut url = realm.to_string();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    for (name, value) in [("service", service), ("scope", scope)] {
        if let Some(value) = value {
            url.push(sep);
            url.push_str(name);
            url.push('=');
            url.extend(percent_encoding::utf8_percent_encode(value, NOT_UNRESERVED));
            sep = '&';
        }
    }
    url
}

/// Reads the token out of a token server's JSON answer: `token`, else `access_token`.
pub(crate) fn parse_token(body: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the token server's answer is not JSON: {e}"))?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
        .map(str::to_string)
        .ok_or_else(|| "the token server's answer has no \"token\" or \"access_token\" field".to_string())
}

/// Bearer tokens obtained during one push or pull, per (registry, scope).
#[derive(Debug, Default)]
pub(crate) struct TokenCache(HashMap<(String, String), String>);

impl TokenCache {
    /// The token for `registry` and `scope`, if one was obtained.
    pub(crate) fn get(&self, registry: &str, scope: &str) -> Option<&str> {
        self.0.get(&(registry.to_string(), scope.to_string())).map(String::as_str)
    }

    /// Remembers a token.
    pub(crate) fn insert(&mut self, registry: &str, scope: &str, token: String) {
        self.0.insert((registry.to_string(), scope.to_string()), token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));

        let c = Challenge::parse(r#"Basic realm="a \"quoted\" realm", charset=UTF-8"#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(c.param("charset"), Some("UTF-8"));

        assert_eq!(Challenge::parse("Bearer").map(|c| c.params.len()), Some(0));
        assert_eq!(Challenge::parse(r#"Bearer realm="unterminated"#), None);
        let picked = pick_challenge([r#"Basic realm="x""#, r#"Bearer realm="y""#].into_iter()).unwrap();
        assert_eq!((picked.scheme.as_str(), picked.param("realm")), ("bearer", Some("y")));
    }

    #[test]
    fn token_urls_and_answers() {
        assert_eq!(
            token_url("https://auth.example/token", Some("reg"), Some("repository:a/b:pull,push")),
            "https://auth.example/token?service=reg&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(token_url("http://h/t?x=1", None, Some("s")), "http://h/t?x=1&scope=s");
        assert_eq!(parse_token(br#"{"token":"abc","expires_in":300}"#), Ok("abc".into()));
        assert_eq!(parse_token(br#"{"access_token":"def"}"#), Ok("def".into()));
        assert!(parse_token(br#"{"token":""}"#).is_err());
        assert!(parse_token(b"<html>").is_err());
    }

    #[test]
    fn cache_is_per_registry_and_scope() {
        let mut cache = TokenCache::default();
        cache.insert("r:5000", "repository:a:pull", "t1".into());
        assert_eq!(cache.get("r:5000", "repository:a:pull"), Some("t1"));
        assert_eq!(cache.get("r:5000", "repository:a:pull,push"), None);
        assert_eq!(cache.get("r:5001", "repository:a:pull"), None);
        assert_eq!(Access::Push.scope("a/b"), "repository:a/b:pull,push");
        assert_eq!(Credentials::default().authorization(), None);
    }
}
