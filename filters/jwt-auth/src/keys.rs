//! Verification keys: each is parsed once (from a JWK or a PEM public key), pinned to one algorithm, and
//! verifies with the RustCrypto crates. Nothing here prints key material: `Debug` shows the `kid` and `alg` only.

use std::fmt;

use ed25519_dalek::pkcs8::DecodePublicKey as _;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::alg::Algorithm;
use crate::b64;

/// The smallest RSA modulus accepted, in bits (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// The longest `kid` kept; a longer one makes the key (or the token) unusable.
pub const MAX_KID_BYTES: usize = 256;

/// A public key (or HMAC secret) with its pinned algorithm.
pub struct Key {
    /// The key id, if it has one.
    pub kid: Option<String>,
    /// The only algorithm this key verifies.
    pub alg: Algorithm,
    material: Material,
}

enum Material {
    Hmac(Vec<u8>),
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// Why a key could not be used. The messages name fields, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// A required member is missing or has the wrong type.
    Missing(&'static str),
    /// A member is not valid base64url.
    Base64(&'static str),
    /// The key type or curve is not supported.
    Unsupported(String),
    /// The key's `alg` does not fit its type, or is not supported.
    Algorithm(String),
    /// The key is not for signatures (`use`, `key_ops`).
    NotForSignatures,
    /// The key is malformed or too weak.
    Invalid(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Missing(field) => write!(f, "member `{field}` is missing or not a string"),
            KeyError::Base64(field) => write!(f, "member `{field}` is not base64url"),
            KeyError::Unsupported(what) => write!(f, "unsupported key: {what}"),
            KeyError::Algorithm(what) => write!(f, "algorithm: {what}"),
            KeyError::NotForSignatures => f.write_str("the key is not for signature verification (`use`/`key_ops`)"),
            KeyError::Invalid(what) => write!(f, "invalid key: {what}"),
        }
    }
}

impl Key {
    /// Whether `signature` is this key's signature of `signing_input` (the `header.payload` text).
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (Material::Hmac(secret), Algorithm::HS256) => hmac_verify::<Hmac<Sha256>>(secret, signing_input, signature),
            (Material::Hmac(secret), Algorithm::HS384) => hmac_verify::<Hmac<Sha384>>(secret, signing_input, signature),
            (Material::Hmac(secret), Algorithm::HS512) => hmac_verify::<Hmac<Sha512>>(secret, signing_input, signature),
            (Material::Rsa(key), alg) => rsa_verify(key, alg, signing_input, signature),
            (Material::P256(key), Algorithm::ES256) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(signing_input, &signature).is_ok()),
            (Material::P384(key), Algorithm::ES384) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(signing_input, &signature).is_ok()),
            (Material::Ed25519(key), Algorithm::EdDSA) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_strict(signing_input, &signature).is_ok()),
            _ => false,
        }
    }

    /// A key from a JWK (RFC 7517): `RSA` (n, e), `EC` (P-256, P-384), `OKP` (Ed25519) or `oct` (k). Its `alg`
    /// pins the algorithm; without one, EC and OKP keys get the curve's algorithm and RSA keys RS256, and an
    /// `oct` key is refused (a secret must say which HMAC it is for).
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Key, KeyError> {
        if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return Err(KeyError::NotForSignatures);
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verify = ops.as_array().is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
            if !verify {
                return Err(KeyError::NotForSignatures);
            }
        }
        let kid = match jwk.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) if valid_kid(kid) => Some(kid.clone()),
            Some(_) => {
                return Err(KeyError::Invalid(format!("`kid` must be printable ASCII, 1 to {MAX_KID_BYTES} bytes")))
            }
        };
        let alg = match jwk.get("alg") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => match Algorithm::parse(name) {
                Some(alg) => Some(alg),
                None => return Err(KeyError::Algorithm(format!("`{}` is not supported", printable(name)))),
            },
            Some(_) => return Err(KeyError::Missing("alg")),
        };
        let kty = string(jwk, "kty")?;
        let (alg, material) = match kty {
            "RSA" => {
                let alg = pin(alg.unwrap_or(Algorithm::RS256), Algorithm::is_rsa, "an RSA key")?;
                let n = BigUint::from_bytes_be(&bytes(jwk, "n")?);
                let e = BigUint::from_bytes_be(&bytes(jwk, "e")?);
                (alg, Material::Rsa(rsa_key(n, e)?))
            }
            "EC" => match string(jwk, "crv")? {
                "P-256" => {
                    let alg = pin(alg.unwrap_or(Algorithm::ES256), |a| a == Algorithm::ES256, "a P-256 key")?;
                    let (x, y) = (coordinate(jwk, "x", 32)?, coordinate(jwk, "y", 32)?);
                    let point = p256::EncodedPoint::from_affine_coordinates(
                        p256::FieldBytes::from_slice(&x),
                        p256::FieldBytes::from_slice(&y),
                        false,
                    );
                    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                        .map_err(|_| KeyError::Invalid("the point is not on P-256".into()))?;
                    (alg, Material::P256(key))
                }
                "P-384" => {
                    let alg = pin(alg.unwrap_or(Algorithm::ES384), |a| a == Algorithm::ES384, "a P-384 key")?;
                    let (x, y) = (coordinate(jwk, "x", 48)?, coordinate(jwk, "y", 48)?);
                    let point = p384::EncodedPoint::from_affine_coordinates(
                        p384::FieldBytes::from_slice(&x),
                        p384::FieldBytes::from_slice(&y),
                        false,
                    );
                    let key = p384::ecdsa::VerifyingKey::from_encoded_point(&point)
                        .map_err(|_| KeyError::Invalid("the point is not on P-384".into()))?;
                    (alg, Material::P384(key))
                }
                other => return Err(KeyError::Unsupported(format!("EC curve `{}`", printable(other)))),
            },
            "OKP" => match string(jwk, "crv")? {
                "Ed25519" => {
                    let alg = pin(alg.unwrap_or(Algorithm::EdDSA), |a| a == Algorithm::EdDSA, "an Ed25519 key")?;
                    let x: [u8; 32] = coordinate(jwk, "x", 32)?
                        .try_into()
                        .map_err(|_| KeyError::Invalid("`x` must be 32 bytes".into()))?;
                    let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                        .map_err(|_| KeyError::Invalid("not an Ed25519 public key".into()))?;
                    (alg, Material::Ed25519(key))
                }
                other => return Err(KeyError::Unsupported(format!("OKP curve `{}`", printable(other)))),
            },
            "oct" => {
                let Some(alg) = alg else {
                    return Err(KeyError::Algorithm("an `oct` key needs `alg` (HS256, HS384 or HS512)".into()));
                };
                let alg = pin(alg, Algorithm::is_hmac, "an `oct` key")?;
                (alg, Material::Hmac(hmac_secret(alg, bytes(jwk, "k")?)?))
            }
            other => return Err(KeyError::Unsupported(format!("kty `{}`", printable(other)))),
        };
        Ok(Key { kid, alg, material })
    }

    /// A key from a PEM public key (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY` for RSA), for `alg`.
    pub fn from_pem(kid: Option<String>, alg: Algorithm, pem: &str) -> Result<Key, KeyError> {
        if kid.as_deref().is_some_and(|kid| !valid_kid(kid)) {
            return Err(KeyError::Invalid(format!("`kid` must be printable ASCII, 1 to {MAX_KID_BYTES} bytes")));
        }
        let bad = |what: &str| KeyError::Invalid(format!("the PEM is not {what} public key"));
        let material = match alg {
            _ if alg.is_rsa() => {
                let key = RsaPublicKey::from_public_key_pem(pem)
                    .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
                    .map_err(|_| bad("an RSA"))?;
                Material::Rsa(strong_rsa(key)?)
            }
            Algorithm::ES256 => {
                Material::P256(p256::ecdsa::VerifyingKey::from_public_key_pem(pem).map_err(|_| bad("a P-256"))?)
            }
            Algorithm::ES384 => {
                Material::P384(p384::ecdsa::VerifyingKey::from_public_key_pem(pem).map_err(|_| bad("a P-384"))?)
            }
            Algorithm::EdDSA => {
                Material::Ed25519(ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|_| bad("an Ed25519"))?)
            }
            _ => return Err(KeyError::Algorithm(format!("{alg} takes a secret (an `oct` JWK), not a PEM key"))),
        };
        Ok(Key { kid, alg, material })
    }
}

fn rsa_key(n: BigUint, e: BigUint) -> Result<RsaPublicKey, KeyError> {
    strong_rsa(RsaPublicKey::new(n, e).map_err(|e| KeyError::Invalid(format!("RSA: {e}")))?)
}

fn strong_rsa(key: RsaPublicKey) -> Result<RsaPublicKey, KeyError> {
    if key.n().bits() < MIN_RSA_BITS {
        return Err(KeyError::Invalid(format!("an RSA modulus under {MIN_RSA_BITS} bits")));
    }
    Ok(key)
}

fn rsa_verify(key: &RsaPublicKey, alg: Algorithm, input: &[u8], signature: &[u8]) -> bool {
    if signature.len() != key.size() {
        return false;
    }
    let result = match alg {
        Algorithm::RS256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input), signature),
        Algorithm::RS384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input), signature),
        Algorithm::RS512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input), signature),
        Algorithm::PS256 => key.verify(Pss::new::<Sha256>(), &Sha256::digest(input), signature),
        Algorithm::PS384 => key.verify(Pss::new::<Sha384>(), &Sha384::digest(input), signature),
        Algorithm::PS512 => key.verify(Pss::new::<Sha512>(), &Sha512::digest(input), signature),
        _ => return false,
    };
    result.is_ok()
}

/// HMAC check in constant time (`verify_slice`).
fn hmac_verify<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8], signature: &[u8]) -> bool {
    match <M as hmac::digest::KeyInit>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(input);
            mac.verify_slice(signature).is_ok()
        }
        Err(_) => false,
    }
}

/// RFC 7518 3.2: the secret is at least as long as the hash.
fn hmac_secret(alg: Algorithm, secret: Vec<u8>) -> Result<Vec<u8>, KeyError> {
    let min = match alg {
        Algorithm::HS256 => 32,
        Algorithm::HS384 => 48,
        _ => 64,
    };
    if secret.len() < min {
        return Err(KeyError::Invalid(format!("an {alg} secret needs at least {min} bytes")));
    }
    Ok(secret)
}

fn pin(alg: Algorithm, fits: impl Fn(Algorithm) -> bool, what: &str) -> Result<Algorithm, KeyError> {
    if fits(alg) {
        Ok(alg)
    } else {
        Err(KeyError::Algorithm(format!("{alg} cannot be used with {what}")))
    }
}

fn string<'a>(jwk: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, KeyError> {
    jwk.get(field).and_then(Value::as_str).ok_or(KeyError::Missing(field))
}

fn bytes(jwk: &Map<String, Value>, field: &'static str) -> Result<Vec<u8>, KeyError> {
    let bytes = b64::decode(string(jwk, field)?).map_err(|_| KeyError::Base64(field))?;
    if bytes.is_empty() {
        return Err(KeyError::Missing(field));
    }
    Ok(bytes)
}

fn coordinate(jwk: &Map<String, Value>, field: &'static str, len: usize) -> Result<Vec<u8>, KeyError> {
    let bytes = bytes(jwk, field)?;
    if bytes.len() != len {
        return Err(KeyError::Invalid(format!("`{field}` must be {len} bytes")));
    }
    Ok(bytes)
}

/// A `kid` this filter keeps: printable ASCII, 1 to [`MAX_KID_BYTES`] bytes.
pub fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_BYTES && kid.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `text` cut short and stripped of control characters, for error messages about names (never secrets).
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(32).collect()
}
