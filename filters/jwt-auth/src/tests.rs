//! The filter on the SDK's fake host: configuration checks, a request through each outcome, metrics, and the
//! remote JWKS fetch with a request waiting for it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use weir_sdk::testing::FakeHost;
use weir_sdk::Action;

use super::{b64, JwtAuth};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn jwks() -> serde_json::Value {
    json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": b64::encode(SECRET)}]})
}

fn hs256(header: serde_json::Value, claims: serde_json::Value) -> String {
    let input =
        format!("{}.{}", b64::encode(header.to_string().as_bytes()), b64::encode(claims.to_string().as_bytes()));
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(SECRET).expect("key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64::encode(&mac.finalize().into_bytes()))
}

fn good(exp_offset: i64) -> String {
    hs256(json!({"alg": "HS256", "kid": "k1"}), json!({"sub": "ada", "iss": "me", "exp": now() + exp_offset}))
}

#[test]
fn refuses_bad_configurations_with_a_reason() {
    let table: &[(serde_json::Value, &str)] = &[
        (json!({}), "no keys"),
        (json!({"jwks": jwks(), "issuer": "x"}), "unknown field `issuer`"),
        (json!({"jwks": jwks(), "realm": "a\"b"}), "`realm`"),
        (json!({"jwks": {"keys": [{"kty": "oct", "k": b64::encode(SECRET)}]}}), "needs `alg`"),
        (json!({"jwks": {"keys": [{"kty": "oct", "alg": "HS512", "k": b64::encode(SECRET)}]}}), "at least 64 bytes"),
        (json!({"jwks": {"keys": [{"kty": "oct", "alg": "none", "k": b64::encode(SECRET)}]}}), "not supported"),
        (json!({"jwks": jwks(), "consumer": {"header": "authorization"}}), "also a token source"),
        (json!({"jwks": jwks(), "max_token_bytes": 0}), "`max_token_bytes`"),
        (json!({"keys": [{"alg": "HS256", "pem": "x"}]}), "takes a secret"),
        (
            json!({"keys": [{"alg": "RS256", "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}),
            "not an RSA",
        ),
        (json!({"jwks": jwks(), "from": []}), "at least one token source"),
    ];
    for (config, reason) in table {
        let mut host = FakeHost::<JwtAuth>::new();
        assert!(!host.configure(&config.to_string()), "{config}");
        assert!(host.logged(reason), "{config}: {:?}", host.logs());
    }
}

#[test]
fn verifies_answers_and_counts() {
    let mut host = FakeHost::<JwtAuth>::new();
    host.set_time(SystemTime::now());
    let config = json!({"jwks": jwks(), "realm": "api", "issuers": ["me"], "consumer": {"claim": "sub"}});
    assert!(host.configure(&config.to_string()), "{:?}", host.logs());

    let mut ok = host.stream();
    let auth = format!("Bearer {}", good(300));
    let action =
        ok.send_request_headers(&[(":path", "/"), ("authorization", &auth), ("x-weir-consumer", "root")], true);
    assert_eq!(action, Action::Continue);
    assert_eq!(ok.request_header("x-weir-consumer").as_deref(), Some("ada"));
    assert_eq!(ok.request_header("authorization").as_deref(), Some(auth.as_str()), "forward_token defaults to true");

    let mut expired = host.stream();
    let auth = format!("Bearer {}", good(-600));
    assert_eq!(expired.send_request_headers(&[(":path", "/"), ("authorization", &auth)], true), Action::Pause);
    let answer = expired.local_response().expect("refused");
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#)
    );
    assert!(answer.text().contains(r#""code":"token_expired""#), "{}", answer.text());

    assert_eq!(host.metric("jwt_auth_failure_token_expired"), Some(1));
    assert_eq!(host.metric("jwt_auth_success"), Some(1));
    assert!(!host.logs().iter().any(|entry| format!("{entry:?}").contains(&good(300)[..20])), "no token in logs");
}

#[test]
fn a_request_waits_for_the_jwks_fetch() {
    let mut host = FakeHost::<JwtAuth>::new();
    host.set_time(SystemTime::now());
    let config = json!({"remote_jwks": {"cluster": "idp", "path": "/keys", "refetch_cooldown_seconds": 30}});
    assert!(host.configure(&config.to_string()), "{:?}", host.logs());
    assert_eq!(host.tick_period(), Some(Duration::from_secs(10)));
    let fetch = host.callouts().pop().expect("fetched at configuration");
    assert_eq!((fetch.cluster.as_str(), fetch.header(":path")), ("idp", Some("/keys")));

    let mut waiting = host.stream();
    let auth = format!("Bearer {}", good(300));
    assert_eq!(waiting.send_request_headers(&[(":path", "/"), ("authorization", &auth)], true), Action::Pause);
    let id = waiting.id();

    host.respond(fetch.token, 200, &[], jwks().to_string().as_bytes());
    let waiting = host.stream_by_id(id).expect("the stream");
    assert!(waiting.request_resumed(), "{:?}", waiting.local_response());

    assert_eq!(host.metric("jwt_auth_jwks_fetch_ok"), Some(1));

    // The cache expires and the issuer answers garbage: the keys stay.
    host.set_time(SystemTime::now() + Duration::from_secs(700));
    assert!(host.tick());
    let refresh = host.callouts().pop().expect("refreshed by the timer");
    host.respond(refresh.token, 200, &[], b"<html>");
    assert_eq!(host.metric("jwt_auth_jwks_fetch_failed"), Some(1));
    host.set_time(SystemTime::now());
    let mut again = host.stream();
    assert_eq!(again.send_request_headers(&[(":path", "/"), ("authorization", &auth)], true), Action::Continue);
}
