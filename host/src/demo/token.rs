//! The demo's JWT issuer: an ed25519 key pair in the data dir, whose public half the demo routes' jwt-auth
//! attachments trust, and `weir token`, which signs tokens with the private half (EdDSA, RFC 8037).
//!
//! The key is written the first time `weir serve` runs the embedded demo in a data dir, so every install has
//! its own: a token minted for one demo is refused by another. The crypto is `ed25519-dalek`'s; this file only
//! assembles the compact JWS.

use crate::artifact::sign;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The `iss` of demo tokens (the demo routes allow only it).
pub const ISSUER: &str = "weir-demo";
/// The `aud` of demo tokens (the demo routes require it).
pub const AUDIENCE: &str = "weir-demo";
/// The `kid` of the demo key.
pub const KEY_ID: &str = "weir-demo-1";

/// Why the demo key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No key in the data dir yet.
    #[error(
        "no demo signing key at {0}: run `weir serve` (with no --config) once from this folder, which writes it, \
         or pass --data-dir to the data dir that demo uses"
    )]
    NoKey(PathBuf),
    /// The key file exists but cannot be used, or cannot be written.
    #[error("{0}")]
    Key(String),
    /// A `--claim` that is not `NAME=VALUE`, or names a claim `weir token` sets itself.
    #[error("--claim {0:?}: {1}")]
    Claim(String, String),
}

/// Where the demo's private key lives: `<data_dir>/demo/jwt.key` (PKCS#8 PEM, mode 0600), beside `jwt.pub`.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo").join("jwt.key")
}

/// The demo key of `data_dir`, written first when there is none.
pub fn ensure_key(data_dir: &Path) -> Result<SigningKey, TokenError> {
    let path = key_path(data_dir);
    if path.exists() {
        return read_key(data_dir);
    }
    let dir = path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| TokenError::Key(format!("creating {}: {e}", dir.display())))?;
    let (key, _) = sign::generate();
    sign::write_key_pair(&dir.join("jwt"), &key).map_err(|e| TokenError::Key(e.to_string()))?;
    Ok(key)
}

/// The demo key of `data_dir`, which must exist.
pub fn read_key(data_dir: &Path) -> Result<SigningKey, TokenError> {
    let path = key_path(data_dir);
    if !path.exists() {
        return Err(TokenError::NoKey(path));
    }
    sign::read_signing_key(&path).map_err(|e| TokenError::Key(e.to_string()))
}

/// The JWK Set holding `key` (an OKP Ed25519 key, pinned to EdDSA), as jwt-auth's `jwks` takes it.
pub fn jwks(key: &VerifyingKey) -> Value {
    json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
        "kid": KEY_ID, "alg": "EdDSA", "use": "sig"
    }] })
}

/// What `weir token` puts in a token.
#[derive(Debug, Clone)]
pub struct Claims {
    /// `sub`: the consumer the demo's quota and cache count and scope by.
    pub subject: String,
    /// Seconds from `iat` to `exp`.
    pub ttl_seconds: u64,
    /// More claims (`--claim NAME=VALUE`; a value that parses as JSON is taken as JSON, else as a string).
    pub extra: Map<String, Value>,
}

/// Parses `--claim NAME=VALUE` into `claims`: the value as JSON when it parses (`scope="a b"` needs the quotes
/// only for the shell), else as a string. `iss`, `aud`, `sub`, `iat` and `exp` are `weir token`'s own.
pub fn add_claim(claims: &mut Map<String, Value>, arg: &str) -> Result<(), TokenError> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(TokenError::Claim(arg.into(), "expected NAME=VALUE, like --claim scope=\"chat:write\"".into()));
    };
    if name.is_empty() {
        return Err(TokenError::Claim(arg.into(), "the claim name is empty".into()));
    }
    if matches!(name, "iss" | "aud" | "sub" | "iat" | "exp") {
        return Err(TokenError::Claim(arg.into(), format!("{name} is set by weir token (use --sub or --ttl)")));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
    claims.insert(name.into(), value);
    Ok(())
}

/// A compact JWS (`header.payload.signature`, base64url) over `claims`, issued at `now` (Unix seconds).
pub fn mint(key: &SigningKey, claims: &Claims, now: u64) -> String {
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": KEY_ID });
    let mut payload = claims.extra.clone();
    payload.insert("iss".into(), ISSUER.into());
    payload.insert("aud".into(), AUDIENCE.into());
    payload.insert("sub".into(), claims.subject.clone().into());
    payload.insert("iat".into(), now.into());
    payload.insert("exp".into(), now.saturating_add(claims.ttl_seconds).into());
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(payload).to_string())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier as _;

    #[test]
    fn a_minted_token_verifies_with_the_jwks_key_and_carries_the_claims() {
        let dir = tempfile::tempdir().unwrap();
        let key = ensure_key(dir.path()).unwrap();
        assert_eq!(read_key(dir.path()).unwrap().to_bytes(), key.to_bytes(), "written once, read back");
        let mut extra = Map::new();
        add_claim(&mut extra, "scope=chat").unwrap();
        add_claim(&mut extra, "tier=2").unwrap();
        let token = mint(&key, &Claims { subject: "alice".into(), ttl_seconds: 60, extra }, 1_000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": KEY_ID}));
        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": 1000, "exp": 1060, "scope": "chat", "tier": 2})
        );
        let jwk = &jwks(&key.verifying_key())["keys"][0];
        let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
        let public = VerifyingKey::from_bytes(&x).unwrap();
        let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(parts[2]).unwrap().try_into().unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        public.verify(input.as_bytes(), &ed25519_dalek::Signature::from_bytes(&signature)).unwrap();
    }

    #[test]
    fn bad_claims_and_a_missing_key_are_explained() {
        let mut extra = Map::new();
        for (arg, why) in [("scope", "NAME=VALUE"), ("=x", "empty"), ("sub=bob", "--sub"), ("exp=1", "--ttl")] {
            let e = add_claim(&mut extra, arg).unwrap_err().to_string();
            assert!(e.contains(why), "{arg}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let e = read_key(dir.path()).unwrap_err().to_string();
        assert!(e.contains("demo/jwt.key") && e.contains("weir serve"), "{e}");
    }
}
