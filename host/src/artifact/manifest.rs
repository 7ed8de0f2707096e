//! The OCI image manifest of an artifact, and [`Artifact::from_manifest_parts`]: the one function that checks a
//! manifest and its blobs (digests, sizes, media types, Weir's manifest, the signature annotations), used by
//! both the layout tar reader and the registry pull.
//!
//! Shape (the *oci* variant of the Wasm image spec that Istio and Higress read: a manifest with exactly two
//! layers, one of them `application/vnd.module.wasm.content.layer.v1+wasm`):
//!
//! ```text
//! config:  application/vnd.module.wasm.config.v1+json        Weir's manifest (ArtifactMeta JSON)
//! layers:  application/vnd.module.wasm.content.layer.v1+wasm  the .wasm
//!          application/vnd.module.wasm.config.v1+json        the config blob again (same digest)
//! ```

use super::{abi, check_name, config_bytes, schema, sha256_digest, Artifact, ArtifactError, ArtifactMeta, Signature};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The OCI image manifest media type.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of the Wasm image spec (*oci* variant).
pub const MEDIA_TYPE_WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// The wasm layer media type of the Wasm image spec (*oci* variant), the one Istio's fetcher looks for.
pub const MEDIA_TYPE_WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Standard annotation: the artifact's name (on the manifest), a file name (on a layer).
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Standard annotation: the artifact's version.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Standard annotation: the artifact's description.
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
/// Weir's annotation: the base64 ed25519 signature.
pub const ANNOTATION_SIGNATURE: &str = "dev.weir.signature";
/// Weir's annotation: the id of the key that signed.
pub const ANNOTATION_KEY_ID: &str = "dev.weir.key-id";

/// The largest blob (or manifest) accepted, in bytes.
pub const MAX_BLOB_SIZE: u64 = 64 * 1024 * 1024;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (the fields Weir writes and reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MEDIA_TYPE_MANIFEST`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// The config blob (Weir's manifest).
    pub config: Descriptor,
    /// The wasm layer and the config layer.
    pub layers: Vec<Descriptor>,
    /// Title, version, description, and the signature.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

// === impl Artifact ===

impl Artifact {
    /// The OCI manifest for this artifact.
    pub fn manifest(&self) -> Manifest {
        let config = self.config_bytes();
        let config_digest = sha256_digest(&config);
        let config_desc = |title: &str| Descriptor {
            media_type: MEDIA_TYPE_WASM_CONFIG.into(),
            digest: config_digest.clone(),
            size: config.len() as u64,
            annotations: BTreeMap::from([(ANNOTATION_TITLE.into(), title.into())]),
        };
        let wasm_layer = Descriptor {
            media_type: MEDIA_TYPE_WASM_LAYER.into(),
            digest: self.wasm_digest(),
            size: self.wasm.len() as u64,
            annotations: BTreeMap::from([(ANNOTATION_TITLE.into(), format!("{}.wasm", self.meta.name))]),
        };
        let mut annotations = BTreeMap::from([
            (ANNOTATION_TITLE.to_string(), self.meta.name.clone()),
            (ANNOTATION_VERSION.to_string(), self.meta.version.to_string()),
        ]);
        if !self.meta.description.is_empty() {
            annotations.insert(ANNOTATION_DESCRIPTION.into(), self.meta.description.clone());
        }
        if let Some(sig) = &self.signature {
            annotations.insert(ANNOTATION_SIGNATURE.into(), sig.to_base64());
            annotations.insert(ANNOTATION_KEY_ID.into(), sig.key_id.to_string());
        }
        Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.into()),
            config: config_desc("weir-manifest.json"),
            layers: vec![wasm_layer, config_desc("weir-manifest.json")],
            annotations,
        }
    }

    /// The manifest as the bytes stored and pushed.
    pub fn manifest_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(&self.manifest()).unwrap_or_default()
    }

    /// Reads an artifact from its manifest, config blob and wasm layer, checking everything: the media types,
    /// that the config and layer hash to the digests and sizes the manifest gives, that the config blob is
    /// Weir's manifest in canonical form and agrees with the layer (digest, size, ABI), and the signature
    /// annotations' format. (The signature itself is checked by [`Artifact::verify`].)
    ///
    /// The manifest's own digest is the caller's to check (against `index.json`, or the registry reference).
    pub fn from_manifest_parts(manifest: &[u8], config: &[u8], layer: &[u8]) -> Result<Artifact, ArtifactError> {
        let m = parse_manifest(manifest)?;
        check_blob("config blob named by the manifest", &m.config, config)?;
        let wasm_layer = &m.layers[0];
        check_blob("wasm layer named by the manifest", wasm_layer, layer)?;

        let meta: ArtifactMeta = serde_json::from_slice(config)
            .map_err(|e| malformed("config blob", &format!("not Weir's manifest (ArtifactMeta JSON): {e}")))?;
        if config_bytes(&meta) != config {
            return Err(malformed(
                "config blob",
                "not in Weir's canonical form (compact JSON, fields in order); it was not written by Weir",
            ));
        }
        check_name(&meta.name)?;
        let wasm_digest = sha256_digest(layer);
        if meta.wasm_digest != wasm_digest {
            return Err(ArtifactError::DigestMismatch {
                what: "wasm layer named by the config blob's wasm_digest".into(),
                expected: meta.wasm_digest,
                actual: wasm_digest,
            });
        }
        if meta.wasm_size != layer.len() as u64 {
            return Err(ArtifactError::SizeMismatch {
                what: "wasm layer (the config blob's wasm_size)".into(),
                declared: meta.wasm_size,
                actual: layer.len() as u64,
            });
        }
        let abi = abi::detect(layer)?;
        if meta.abi != abi {
            return Err(malformed(
                "config blob",
                &format!("abi is {:?} but the module exports proxy_abi_version for {abi}", meta.abi),
            ));
        }
        if let Some(s) = &meta.config_schema {
            schema::check_schema(s).map_err(|reason| ArtifactError::InvalidSchema { reason })?;
        }
        let signature = match (m.annotations.get(ANNOTATION_SIGNATURE), m.annotations.get(ANNOTATION_KEY_ID)) {
            (None, None) => None,
            (Some(sig), Some(key_id)) => {
                Some(Signature::from_annotations(sig, key_id).map_err(|reason| malformed("manifest", &reason))?)
            }
            _ => {
                return Err(malformed(
                    "manifest",
                    &format!("has only one of the {ANNOTATION_SIGNATURE} and {ANNOTATION_KEY_ID} annotations"),
                ))
            }
        };
        Ok(Artifact { meta, wasm: layer.to_vec(), signature })
    }
}

/// Parses a manifest and checks its shape: schema version, media types, two layers (the wasm layer first,
/// then the config layer with the config's digest), sizes within [`MAX_BLOB_SIZE`].
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ArtifactError> {
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| malformed("manifest", &format!("not an OCI image manifest: {e}")))?;
    if m.schema_version != 2 {
        return Err(malformed("manifest", &format!("schemaVersion is {}, expected 2", m.schema_version)));
    }
    let media_type = m.media_type.as_deref().unwrap_or("");
    if media_type != MEDIA_TYPE_MANIFEST {
        return Err(media("manifest", MEDIA_TYPE_MANIFEST, media_type));
    }
    if m.config.media_type != MEDIA_TYPE_WASM_CONFIG {
        return Err(media("config blob", MEDIA_TYPE_WASM_CONFIG, &m.config.media_type));
    }
    if m.layers.len() != 2 {
        return Err(malformed(
            "manifest",
            &format!("has {} layers, a Weir artifact has 2 (the wasm layer, then the config layer)", m.layers.len()),
        ));
    }
    if m.layers[0].media_type != MEDIA_TYPE_WASM_LAYER {
        return Err(media("layer 0 (wasm)", MEDIA_TYPE_WASM_LAYER, &m.layers[0].media_type));
    }
    if m.layers[1].media_type != MEDIA_TYPE_WASM_CONFIG {
        return Err(media("layer 1 (config)", MEDIA_TYPE_WASM_CONFIG, &m.layers[1].media_type));
    }
    if m.layers[1].digest != m.config.digest || m.layers[1].size != m.config.size {
        return Err(malformed("manifest", "layer 1 (config) is not the config blob (its digest or size differs)"));
    }
    for (what, d) in [("config blob", &m.config), ("layer 0 (wasm)", &m.layers[0])] {
        check_digest_syntax(what, &d.digest)?;
        if d.size > MAX_BLOB_SIZE {
            return Err(ArtifactError::TooLarge { what: what.into(), size: d.size, limit: MAX_BLOB_SIZE });
        }
    }
    Ok(m)
}

/// Checks that `digest` is `sha256:<64 lowercase hex>`; returns the hex part.
pub fn check_digest_syntax<'a>(what: &str, digest: &'a str) -> Result<&'a str, ArtifactError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
            Ok(hex)
        }
        _ => Err(malformed(what, &format!("digest {digest:?} is not sha256:<64 lowercase hex digits>"))),
    }
}

/// Checks that `bytes` has the descriptor's digest and size.
pub fn check_blob(what: &str, d: &Descriptor, bytes: &[u8]) -> Result<(), ArtifactError> {
    if d.size != bytes.len() as u64 {
        return Err(ArtifactError::SizeMismatch { what: what.into(), declared: d.size, actual: bytes.len() as u64 });
    }
    let actual = sha256_digest(bytes);
    if actual != d.digest {
        return Err(ArtifactError::DigestMismatch { what: what.into(), expected: d.digest.clone(), actual });
    }
    Ok(())
}

pub(crate) fn malformed(file: &str, reason: &str) -> ArtifactError {
    ArtifactError::Malformed { file: file.into(), reason: reason.into() }
}

fn media(what: &str, expected: &str, found: &str) -> ArtifactError {
    ArtifactError::MediaType { what: what.into(), expected: expected.into(), found: found.into() }
}
