//! The claim checks: time (`exp`, `nbf`, `iat` with skew, maximum lifetime), `iss`, `aud`, required claims and
//! scopes.

use serde_json::{Map, Value};

use crate::config::Config;
use crate::failure::Failure;

/// The claim rules of one attachment.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Allowed issuers (empty: any).
    pub issuers: Vec<String>,
    /// Accepted audiences (empty: not checked).
    pub audiences: Vec<String>,
    /// Clock skew, seconds.
    pub skew: i64,
    /// Longest `exp - iat`, seconds.
    pub max_lifetime: Option<i64>,
    /// `exp` required.
    pub require_exp: bool,
    /// Claims that must be present.
    pub required_claims: Vec<String>,
    /// Scopes that must all be present.
    pub required_scopes: Vec<String>,
    /// Where the scopes are.
    pub scope_claim: String,
}

impl Rules {
    /// The rules of `config`.
    pub fn from_config(config: &Config) -> Rules {
        let seconds = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        Rules {
            issuers: config.issuers.clone(),
            audiences: config.audiences.clone(),
            skew: seconds(config.clock_skew_seconds),
            max_lifetime: config.max_lifetime_seconds.map(seconds),
            require_exp: config.require_exp,
            required_claims: config.required_claims.clone(),
            required_scopes: config.required_scopes.clone(),
            scope_claim: config.scope_claim.clone(),
        }
    }

    /// Everything about `claims` that does not depend on the time, worked out once: [`Prepared::at`] then
    /// checks them at a given time without looking at the claims again (a cached token is checked this way on
    /// every use).
    pub fn prepare(&self, claims: &Map<String, Value>) -> Prepared {
        let times =
            (|| Ok(Times { exp: time(claims, "exp")?, nbf: time(claims, "nbf")?, iat: time(claims, "iat")? }))();
        let rest = self.check_rest(claims, times.as_ref().ok());
        Prepared { times, skew: self.skew, require_exp: self.require_exp, rest }
    }

    /// The checks that do not depend on the time, in order (`times`: the parsed time claims, if they parse).
    fn check_rest(&self, claims: &Map<String, Value>, times: Option<&Times>) -> Result<(), Failure> {
        if let Some(max) = self.max_lifetime {
            match times.map(|t| (t.exp, t.iat)) {
                Some((Some(exp), Some(iat))) if exp.saturating_sub(iat) <= max => {}
                _ => return Err(Failure::LifetimeExceeded),
            }
        }
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|iss| self.issuers.iter().any(|allowed| allowed == iss)) {
                return Err(Failure::IssuerNotAllowed);
            }
        }
        if !self.audiences.is_empty() {
            let accepted = |aud: &str| self.audiences.iter().any(|allowed| allowed == aud);
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => accepted(aud),
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
                _ => false,
            };
            if !ok {
                return Err(Failure::AudienceNotAllowed);
            }
        }
        for claim in &self.required_claims {
            if lookup(claims, claim).is_none_or(Value::is_null) {
                return Err(Failure::ClaimMissing);
            }
        }
        if !self.required_scopes.is_empty() {
            let granted: Vec<&str> = match lookup(claims, &self.scope_claim) {
                Some(Value::String(scopes)) => scopes.split(' ').filter(|s| !s.is_empty()).collect(),
                Some(Value::Array(scopes)) => scopes.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !self.required_scopes.iter().all(|scope| granted.contains(&scope.as_str())) {
                return Err(Failure::ScopeInsufficient);
            }
        }
        Ok(())
    }
}

/// The time claims of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Times {
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
}

/// A token's claims judged by one configuration's [`Rules`], except for the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The time claims, or why they are malformed.
    times: Result<Times, Failure>,
    skew: i64,
    require_exp: bool,
    /// The outcome of the checks that do not depend on the time.
    rest: Result<(), Failure>,
}

impl Prepared {
    /// The outcome at `now` (Unix seconds): malformed time claims, then `exp`, `nbf` and `iat` with the skew,
    /// then the time-independent checks (lifetime, `iss`, `aud`, required claims, scopes).
    pub fn at(&self, now: i64) -> Result<(), Failure> {
        let Times { exp, nbf, iat } = self.times?;
        match exp {
            Some(exp) if now >= exp.saturating_add(self.skew) => return Err(Failure::TokenExpired),
            None if self.require_exp => return Err(Failure::ExpMissing),
            _ => {}
        }
        let future = |t: Option<i64>| t.is_some_and(|t| now.saturating_add(self.skew) < t);
        if future(nbf) || future(iat) {
            return Err(Failure::TokenNotYetValid);
        }
        self.rest
    }
}

/// The claim at `path`: the top-level claim of that exact name if there is one (names such as
/// `https://example.com/roles` contain dots), else the nested claim the dots walk to (`realm_access.roles`, as
/// Envoy's `claim_to_headers` reads it).
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let (first, rest) = path.split_once('.')?;
    rest.split('.').try_fold(claims.get(first)?, |value, key| value.as_object()?.get(key))
}

/// A NumericDate claim: absent, or a number (fractions cut); anything else makes the token malformed.
fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Failure> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(t), _) => Ok(Some(t)),
            (None, Some(t)) if t.is_finite() => Ok(Some(t.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64)),
            _ => Err(Failure::TokenMalformed),
        },
        Some(_) => Err(Failure::TokenMalformed),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn looks_up_top_level_names_first_then_nested_paths() {
        let claims = json!({"sub": "ada", "realm_access": {"roles": ["a", "b"], "deep": {"x": 1}},
                            "https://example.com/roles": ["admin"], "a.b": "flat", "a": {"b": "nested"}});
        let claims = claims.as_object().expect("object");
        let table = [
            ("sub", Some(json!("ada"))),
            ("realm_access.roles", Some(json!(["a", "b"]))),
            ("realm_access.deep.x", Some(json!(1))),
            ("https://example.com/roles", Some(json!(["admin"]))),
            ("a.b", Some(json!("flat"))),
            ("realm_access.missing", None),
            ("sub.x", None),
            ("realm_access.roles.0", None),
            ("", None),
        ];
        for (path, want) in table {
            assert_eq!(super::lookup(claims, path).cloned(), want, "{path}");
        }
    }
}
