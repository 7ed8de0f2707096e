//! An artifact on disk: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) in a plain tar
//! file, the format `skopeo`/`oras` call an OCI archive.
//!
//! The writer is deterministic (fixed order, mtime 0, uid/gid 0, mode 0644), so packing the same inputs gives
//! the same bytes. The reader bounds the file to [`MAX_TAR_SIZE`], accepts only regular files and folders with
//! relative paths, and checks every digest: the manifest against `index.json`, then the config and layer
//! through [`Artifact::from_manifest_parts`].

use super::manifest::{check_blob, check_digest_syntax, malformed, parse_manifest, Descriptor, MAX_BLOB_SIZE};
use super::{sha256_digest, Artifact, ArtifactError, MEDIA_TYPE_MANIFEST};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

/// The largest artifact tar file accepted, in bytes.
pub const MAX_TAR_SIZE: u64 = 64 * 1024 * 1024;
/// The OCI image index media type (`index.json`).
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The `oci-layout` file's content.
pub const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
/// The annotation `index.json` gives the manifest: the artifact's version.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    image_layout_version: String,
}

// === impl Artifact ===

impl Artifact {
    /// The artifact as an OCI image layout tar file.
    pub fn to_layout_tar(&self) -> Vec<u8> {
        let manifest = self.manifest_bytes();
        let manifest_digest = sha256_digest(&manifest);
        let index = Index {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_INDEX.into()),
            manifests: vec![Descriptor {
                media_type: MEDIA_TYPE_MANIFEST.into(),
                digest: manifest_digest.clone(),
                size: manifest.len() as u64,
                annotations: BTreeMap::from([(ANNOTATION_REF_NAME.into(), self.meta.version.to_string())]),
            }],
        };
        // A struct of strings and numbers always serializes.
        let index = serde_json::to_vec(&index).unwrap_or_default();
        let config = self.config_bytes();
        let config_path = blob_path(&sha256_digest(&config));
        let wasm_path = blob_path(&self.wasm_digest());

        let mut out = tar::Builder::new(Vec::new());
        let mut add = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            // Writing to a Vec fails only on a path the tar format cannot hold; ours are short and ASCII.
            let _ = out.append_data(&mut header, path, bytes);
        };
        add("oci-layout", OCI_LAYOUT.as_bytes());
        add("index.json", &index);
        add(&blob_path(&manifest_digest), &manifest);
        add(&config_path, &config);
        add(&wasm_path, &self.wasm);
        out.into_inner().unwrap_or_default()
    }

    /// Reads an artifact from an OCI image layout tar file, checking every digest, size and media type.
    pub fn from_layout_tar(bytes: &[u8]) -> Result<Artifact, ArtifactError> {
        if bytes.len() as u64 > MAX_TAR_SIZE {
            return Err(ArtifactError::TooLarge {
                what: "the artifact file".into(),
                size: bytes.len() as u64,
                limit: MAX_TAR_SIZE,
            });
        }
        let files = read_files(bytes)?;
        let get = |path: &str, why: &str| {
            files.get(path).ok_or_else(|| ArtifactError::Missing { file: path.into(), why: why.into() })
        };

        let layout: Layout = serde_json::from_slice(get("oci-layout", "every OCI image layout has it")?)
            .map_err(|e| malformed("oci-layout", &format!("not an OCI layout file: {e}")))?;
        if layout.image_layout_version != "1.0.0" {
            return Err(malformed(
                "oci-layout",
                &format!("imageLayoutVersion is {:?}, expected \"1.0.0\"", layout.image_layout_version),
            ));
        }
        let index: Index = serde_json::from_slice(get("index.json", "every OCI image layout has it")?)
            .map_err(|e| malformed("index.json", &format!("not an OCI image index: {e}")))?;
        let [desc] = index.manifests.as_slice() else {
            return Err(malformed(
                "index.json",
                &format!("lists {} manifests, a Weir artifact has exactly 1", index.manifests.len()),
            ));
        };
        if desc.media_type != MEDIA_TYPE_MANIFEST {
            return Err(ArtifactError::MediaType {
                what: "index.json's manifest".into(),
                expected: MEDIA_TYPE_MANIFEST.into(),
                found: desc.media_type.clone(),
            });
        }
        check_digest_syntax("index.json's manifest", &desc.digest)?;
        let manifest_path = blob_path(&desc.digest);
        let manifest = get(&manifest_path, "the manifest named by index.json")?;
        check_blob("manifest named by index.json", desc, manifest)?;

        let m = parse_manifest(manifest)?;
        let config = get(&blob_path(&m.config.digest), "the config blob named by the manifest")?;
        let layer = get(&blob_path(&m.layers[0].digest), "the wasm layer named by the manifest")?;
        Artifact::from_manifest_parts(manifest, config, layer)
    }
}

/// The first line of a tar error, at most 200 bytes (the tar crate quotes raw header bytes in some errors).
fn first_line(e: &std::io::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap_or(digest))
}

/// Every regular file of the tar, by normalized path.
fn read_files(bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>, ArtifactError> {
    let not_tar = |reason: String| ArtifactError::NotTar { reason };
    let mut archive = tar::Archive::new(bytes);
    let mut files = HashMap::new();
    let entries = archive.entries().map_err(|e| not_tar(first_line(&e)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            if files.is_empty() {
                not_tar("the file is not a tar archive (its first 512-byte block is not a tar header)".into())
            } else {
                not_tar(first_line(&e))
            }
        })?;
        let path = entry.path().map_err(|e| not_tar(first_line(&e)))?;
        let name = path.to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => return Err(not_tar(format!("{name}: entries of type {other:?} are not allowed, only files"))),
        }
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|part| part == "..") {
            return Err(not_tar(format!("{name:?}: paths must be relative and stay inside the layout")));
        }
        let size = entry.size();
        if size > MAX_BLOB_SIZE {
            return Err(ArtifactError::TooLarge { what: format!("tar entry {name}"), size, limit: MAX_BLOB_SIZE });
        }
        let mut content = Vec::with_capacity(size as usize);
        entry
            .by_ref()
            .take(size)
            .read_to_end(&mut content)
            .map_err(|e| not_tar(format!("{name}: cannot read: {e}")))?;
        if content.len() as u64 != size {
            return Err(not_tar(format!("{name}: the header says {size} bytes, the archive holds {}", content.len())));
        }
        if files.insert(name.clone(), content).is_some() {
            return Err(not_tar(format!("{name}: appears twice")));
        }
    }
    Ok(files)
}
