//! Versioned filter artifacts: a proxy-wasm `.wasm` plus Weir's manifest ([`ArtifactMeta`]), optionally signed
//! with ed25519, stored as an OCI image layout tar file or in any OCI distribution registry.
//!
//! - [`pack`] builds an [`Artifact`] from a module (checking its name, its proxy-wasm ABI export and its
//!   configuration schema) and signs it if given a key.
//! - [`Artifact::to_layout_tar`] / [`Artifact::from_layout_tar`] write and read the OCI image layout tar
//!   ([`layout`]); [`oci::push`] / [`oci::pull`] talk to a registry. Both readers check every digest, size and
//!   media type through one function, [`Artifact::from_manifest_parts`].
//! - [`Artifact::verify`] and [`require_trusted`] check the signature ([`sign`]).
//! - [`schema::validate`] checks a filter configuration against the artifact's JSON Schema.
//!
//! The format, the media types (those Istio and Higress read) and what is signed: `docs/artifacts.md`.

mod abi;
mod auth;
mod distribution;
mod error;
pub mod layout;
mod manifest;
pub mod oci;
pub mod schema;
pub mod sign;

pub use abi::{detect as detect_abi, ABI_EXPORTS};
pub use error::ArtifactError;
pub use manifest::{
    Descriptor, Manifest, ANNOTATION_DESCRIPTION, ANNOTATION_KEY_ID, ANNOTATION_SIGNATURE, ANNOTATION_TITLE,
    ANNOTATION_VERSION, MAX_BLOB_SIZE, MEDIA_TYPE_MANIFEST, MEDIA_TYPE_WASM_CONFIG, MEDIA_TYPE_WASM_LAYER,
};
pub use sign::{require_trusted, KeyId, Signature};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The longest artifact name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Weir's manifest: what an artifact is. Stored as the OCI config blob
/// (`application/vnd.module.wasm.config.v1+json`), serialized as compact JSON with the fields in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// The filter's name: letters, digits, '-' and '_', starting with a letter (a crate name).
    pub name: String,
    /// Its version (semver, serialized as a string).
    #[serde(with = "version_string")]
    pub version: semver::Version,
    /// The proxy-wasm ABI the module declares: "0.2.1", "0.2.0" or "0.1.0".
    pub abi: String,
    /// What the filter does.
    #[serde(default)]
    pub description: String,
    /// A JSON Schema for the filter's configuration, if the author shipped one.
    #[serde(default)]
    pub config_schema: Option<Value>,
    /// `sha256:<64 hex>` of the `.wasm` (the same as the wasm layer's digest).
    pub wasm_digest: String,
    /// The `.wasm`'s size in bytes.
    pub wasm_size: u64,
}

/// A filter artifact: Weir's manifest, the module, and the signature if it is signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// Weir's manifest.
    pub meta: ArtifactMeta,
    /// The `.wasm` module.
    pub wasm: Vec<u8>,
    /// The ed25519 signature over the config and layer digests ([`sign`]), if signed.
    pub signature: Option<Signature>,
}

/// `sha256:<64 lowercase hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Builds an artifact from a `.wasm` module: checks `name`, that `schema` (if any) is a JSON Schema, and that
/// the module declares a proxy-wasm ABI; signs it with `signing_key` if one is given.
pub fn pack(
    wasm: Vec<u8>,
    name: &str,
    version: semver::Version,
    description: &str,
    schema: Option<Value>,
    signing_key: Option<&SigningKey>,
) -> Result<Artifact, ArtifactError> {
    check_name(name)?;
    if let Some(schema) = &schema {
        schema::check_schema(schema).map_err(|reason| ArtifactError::InvalidSchema { reason })?;
    }
    let abi = abi::detect(&wasm)?;
    let meta = ArtifactMeta {
        name: name.to_string(),
        version,
        abi: abi.to_string(),
        description: description.to_string(),
        config_schema: schema,
        wasm_digest: sha256_digest(&wasm),
        wasm_size: wasm.len() as u64,
    };
    let mut artifact = Artifact { meta, wasm, signature: None };
    if let Some(key) = signing_key {
        artifact.signature = Some(sign::sign(&artifact, key));
    }
    Ok(artifact)
}

/// Checks an artifact name: letters, digits, '-' and '_', starting with a letter, at most [`MAX_NAME_LEN`].
pub fn check_name(name: &str) -> Result<(), ArtifactError> {
    let invalid = |reason: String| Err(ArtifactError::InvalidName { name: name.to_string(), reason });
    let Some(first) = name.chars().next() else {
        return invalid("it is empty".into());
    };
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return invalid(format!("{c:?} is not allowed"));
    }
    if !first.is_ascii_alphabetic() {
        return invalid(format!("it starts with {first:?}"));
    }
    if name.len() > MAX_NAME_LEN {
        return invalid(format!("it is {} characters long", name.len()));
    }
    Ok(())
}

// === impl Artifact ===

impl Artifact {
    /// The config blob: [`ArtifactMeta`] as compact JSON. Deterministic, so its digest is stable.
    pub fn config_bytes(&self) -> Vec<u8> {
        config_bytes(&self.meta)
    }

    /// `sha256:<hex>` of [`Artifact::config_bytes`].
    pub fn config_digest(&self) -> String {
        sha256_digest(&self.config_bytes())
    }

    /// `sha256:<hex>` of the `.wasm` (the wasm layer's digest).
    pub fn wasm_digest(&self) -> String {
        sha256_digest(&self.wasm)
    }

    /// `NAME@VERSION`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.meta.name, self.meta.version)
    }
}

pub(crate) fn config_bytes(meta: &ArtifactMeta) -> Vec<u8> {
    // Serializing a struct of strings, numbers and a `Value` cannot fail.
    serde_json::to_vec(meta).unwrap_or_default()
}

/// `semver::Version` as a JSON string.
mod version_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &semver::Version, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<semver::Version, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e| serde::de::Error::custom(format!("version {s:?} is not semver: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: &[(&str, bool)] = &[
            ("auth", true),
            ("my-filter_2", true),
            ("A", true),
            ("", false),
            ("2fa", false),
            ("-x", false),
            ("a b", false),
            ("a/b", false),
            ("é", false),
        ];
        for (name, ok) in cases {
            assert_eq!(check_name(name).is_ok(), *ok, "{name:?}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn digest_format() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
