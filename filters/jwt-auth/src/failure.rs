//! Why a request is refused: one variant per cause, each with a stable machine code (the JSON body's
//! `error.code`, the metric `jwt_auth_failure_<code>`, the response details `jwt_auth.<code>`), a status and a
//! fixed description. Descriptions never quote the token, a claim value or key material.

/// A refusal cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No token in any configured source.
    TokenMissing,
    /// The token is longer than `max_token_bytes`.
    TokenTooLarge,
    /// Not a compact JWS: parts, base64url, JSON, duplicate keys, `crit`, claim types.
    TokenMalformed,
    /// `alg` is `none`, unknown, or not the algorithm of the key the `kid` names.
    AlgNotAllowed,
    /// The `kid` names no known key (after a refetch, if one was allowed), or is missing while several keys exist.
    KidUnknown,
    /// The `kid` is not printable ASCII of at most 256 bytes: refused without a refetch.
    KidInvalid,
    /// The signature does not verify.
    SignatureInvalid,
    /// `exp` (plus the clock skew) has passed.
    TokenExpired,
    /// `nbf` or `iat` (minus the clock skew) is in the future.
    TokenNotYetValid,
    /// `exp` is missing and the configuration requires it.
    ExpMissing,
    /// `exp - iat` is over `max_lifetime_seconds`, or `iat` is missing when it is set.
    LifetimeExceeded,
    /// `iss` is not in `issuers`.
    IssuerNotAllowed,
    /// No `aud` value is in `audiences`.
    AudienceNotAllowed,
    /// A required claim (or the consumer claim) is missing.
    ClaimMissing,
    /// A required scope is missing.
    ScopeInsufficient,
    /// No key set could be fetched yet, and no static key exists.
    JwksUnavailable,
}

/// Every cause, for metrics and tables.
pub const ALL: [Failure; 16] = [
    Failure::TokenMissing,
    Failure::TokenTooLarge,
    Failure::TokenMalformed,
    Failure::AlgNotAllowed,
    Failure::KidUnknown,
    Failure::KidInvalid,
    Failure::SignatureInvalid,
    Failure::TokenExpired,
    Failure::TokenNotYetValid,
    Failure::ExpMissing,
    Failure::LifetimeExceeded,
    Failure::IssuerNotAllowed,
    Failure::AudienceNotAllowed,
    Failure::ClaimMissing,
    Failure::ScopeInsufficient,
    Failure::JwksUnavailable,
];

impl Failure {
    /// The stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Failure::TokenMissing => "token_missing",
            Failure::TokenTooLarge => "token_too_large",
            Failure::TokenMalformed => "token_malformed",
            Failure::AlgNotAllowed => "alg_not_allowed",
            Failure::KidUnknown => "kid_unknown",
            Failure::KidInvalid => "kid_invalid",
            Failure::SignatureInvalid => "signature_invalid",
            Failure::TokenExpired => "token_expired",
            Failure::TokenNotYetValid => "token_not_yet_valid",
            Failure::ExpMissing => "exp_missing",
            Failure::LifetimeExceeded => "lifetime_exceeded",
            Failure::IssuerNotAllowed => "issuer_not_allowed",
            Failure::AudienceNotAllowed => "audience_not_allowed",
            Failure::ClaimMissing => "claim_missing",
            Failure::ScopeInsufficient => "scope_insufficient",
            Failure::JwksUnavailable => "jwks_unavailable",
        }
    }

    /// The HTTP status: 401 for a missing or invalid token, 403 for a valid one that lacks what the route
    /// requires, 503 when no key could be had.
    pub fn status(self) -> u16 {
        match self {
            Failure::ClaimMissing | Failure::ScopeInsufficient => 403,
            Failure::JwksUnavailable => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 `error` attribute: none when the request had no token (section 3.1).
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            Failure::TokenMissing | Failure::JwksUnavailable => None,
            Failure::ClaimMissing | Failure::ScopeInsufficient => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// A fixed, human-readable description (also the `error_description`).
    pub fn description(self) -> &'static str {
        match self {
            Failure::TokenMissing => "no bearer token in the request",
            Failure::TokenTooLarge => "the token is too large",
            Failure::TokenMalformed => "the token is not a well-formed JWS",
            Failure::AlgNotAllowed => "the token's algorithm is not allowed",
            Failure::KidUnknown => "the token's key is unknown",
            Failure::KidInvalid => "the token's key id is invalid",
            Failure::SignatureInvalid => "the token's signature is invalid",
            Failure::TokenExpired => "the token has expired",
            Failure::TokenNotYetValid => "the token is not valid yet",
            Failure::ExpMissing => "the token has no expiry",
            Failure::LifetimeExceeded => "the token's lifetime is too long",
            Failure::IssuerNotAllowed => "the token's issuer is not allowed",
            Failure::AudienceNotAllowed => "the token's audience is not allowed",
            Failure::ClaimMissing => "the token lacks a claim this route requires",
            Failure::ScopeInsufficient => "the token lacks a scope this route requires",
            Failure::JwksUnavailable => "the signing keys are not available",
        }
    }

    /// The `WWW-Authenticate` value (none for 503).
    pub fn www_authenticate(self, realm: &str, scopes: &str) -> Option<String> {
        if self == Failure::JwksUnavailable {
            return None;
        }
        let mut value = format!("Bearer realm=\"{realm}\"");
        if let Some(error) = self.bearer_error() {
            value.push_str(&format!(", error=\"{error}\", error_description=\"{}\"", self.description()));
        }
        if self == Failure::ScopeInsufficient && !scopes.is_empty() {
            value.push_str(&format!(", scope=\"{scopes}\""));
        }
        Some(value)
    }

    /// The JSON body.
    pub fn body(self) -> Vec<u8> {
        format!("{{\"error\":{{\"code\":\"{}\",\"message\":\"{}\"}}}}", self.code(), self.description()).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_bodies_are_json() {
        let mut codes: Vec<_> = ALL.iter().map(|f| f.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
        for failure in ALL {
            let body: serde_json::Value = serde_json::from_slice(&failure.body()).expect("JSON");
            assert_eq!(body["error"]["code"], failure.code());
            assert!(!failure.description().contains('"'));
        }
    }

    #[test]
    fn www_authenticate_follows_rfc6750() {
        let table: &[(Failure, Option<&str>)] = &[
            (Failure::TokenMissing, Some(r#"Bearer realm="api""#)),
            (
                Failure::TokenExpired,
                Some(r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#),
            ),
            (
                Failure::ScopeInsufficient,
                Some(
                    r#"Bearer realm="api", error="insufficient_scope", error_description="the token lacks a scope this route requires", scope="read write""#,
                ),
            ),
            (Failure::JwksUnavailable, None),
        ];
        for &(failure, want) in table {
            assert_eq!(failure.www_authenticate("api", "read write").as_deref(), want, "{failure:?}");
        }
    }
}
