//! One HS256 key for the tests that put jwt-auth in front of another filter (quota, response cache): its inline
//! JWK Set for the filter's configuration, and tokens signed with it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

/// The shared secret.
const SECRET: [u8; 32] = [5u8; 32];

/// The JWK Set holding the key (`kid` `k`, HS256), for jwt-auth's `jwks`.
pub fn hs256_jwks() -> Value {
    json!({"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(SECRET)}]})
}

/// An HS256 token with subject `sub`, valid for five minutes.
pub fn hs256_token(sub: &str) -> String {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = json!({"alg": "HS256", "kid": "k"}).to_string();
    let claims = json!({"sub": sub, "exp": now + 300}).to_string();
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&SECRET).expect("a 32-byte key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}
