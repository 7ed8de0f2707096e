//! A compact JWS (RFC 7515) taken apart and verified: size first, then the header, the key it selects, the
//! signature, and only then the claims. Every step refuses rather than guesses.

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::b64;
use crate::failure::Failure;
use crate::json;
use crate::keys;
use crate::keyset::{self, KeySet, Selected};

/// The longest header part decoded (a JOSE header is a few dozen bytes).
const MAX_HEADER_BYTES: usize = 2048;

/// What the JOSE header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The algorithm, one this filter knows.
    pub alg: Algorithm,
    /// The key id.
    pub kid: Option<String>,
}

/// The three parts of a compact JWS.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// `header.payload`, what the signature covers.
    pub signing_input: &'a str,
    /// The header part.
    pub header: &'a str,
    /// The payload part.
    pub payload: &'a str,
    /// The signature part.
    pub signature: &'a str,
}

/// Splits `token` into its three parts after checking its size. An empty signature (`alg: none` style) is
/// let through here: the header check refuses its algorithm, and no key verifies it.
pub fn split(token: &str, max_bytes: usize) -> Result<Parts<'_>, Failure> {
    if token.len() > max_bytes {
        return Err(Failure::TokenTooLarge);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(Failure::TokenMalformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(Failure::TokenMalformed)?;
    if header.is_empty() || payload.contains('.') || header.len() > MAX_HEADER_BYTES {
        return Err(Failure::TokenMalformed);
    }
    Ok(Parts { signing_input, header, payload, signature })
}

/// Parses the JOSE header: `alg` must name a supported algorithm (so `none` in any spelling is refused), `kid`
/// is optional, `crit` (extensions this filter does not understand) is refused.
pub fn header(part: &str) -> Result<Header, Failure> {
    let bytes = b64::decode(part).map_err(|_| Failure::TokenMalformed)?;
    let header = json::object(&bytes).map_err(|_| Failure::TokenMalformed)?;
    if header.contains_key("crit") {
        return Err(Failure::TokenMalformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Algorithm::parse(name).ok_or(Failure::AlgNotAllowed)?,
        Some(_) => return Err(Failure::TokenMalformed),
        None => return Err(Failure::AlgNotAllowed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if keys::valid_kid(kid) => Some(kid.clone()),
        Some(_) => return Err(Failure::KidInvalid),
    };
    Ok(Header { alg, kid })
}

/// A token whose signature verified: its claims, and the length of their JSON.
#[derive(Debug)]
pub struct Signed {
    /// The claims, not yet checked.
    pub claims: Map<String, Value>,
    /// The decoded payload's length.
    pub payload_bytes: usize,
}

/// Verifies the signature of `token` with the keys of `sets` and parses its claims (not checked yet: see
/// [`Rules::prepare`](crate::claims::Rules::prepare)).
pub fn verify_signature(token: &str, max_bytes: usize, sets: &[&KeySet]) -> Result<Signed, Failure> {
    let parts = split(token, max_bytes)?;
    let header = header(parts.header)?;
    let key = match keyset::select(sets, header.alg, header.kid.as_deref()) {
        Selected::Key(key) => key,
        Selected::WrongAlg => return Err(Failure::AlgNotAllowed),
        Selected::Unknown => return Err(Failure::KidUnknown),
    };
    let signature = b64::decode(parts.signature).map_err(|_| Failure::TokenMalformed)?;
    if !key.verify(parts.signing_input.as_bytes(), &signature) {
        return Err(Failure::SignatureInvalid);
    }
    let payload = b64::decode(parts.payload).map_err(|_| Failure::TokenMalformed)?;
    let claims = json::object(&payload).map_err(|_| Failure::TokenMalformed)?;
    Ok(Signed { claims, payload_bytes: payload.len() })
}
