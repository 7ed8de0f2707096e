//! [`ArtifactError`]: everything that can go wrong packing, reading, signing, pushing or pulling an artifact.
//!
//! Each message names what is at fault (the file, the blob, the field) and says how to fix it.

use std::path::PathBuf;

/// Why an artifact could not be packed, read, verified, pushed or pulled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The artifact name breaks the crate-name rules.
    #[error(
        "artifact name {name:?} is invalid: {reason}; use letters, digits, '-' and '_', starting with a letter \
         (at most 64 characters)"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bytes are not a WebAssembly module.
    #[error("the filter is not a WebAssembly module: {reason}; pass the .wasm file built for wasm32-wasip1")]
    NotWasm {
        /// What the parser said.
        reason: String,
    },
    /// The module exports no `proxy_abi_version_*` function.
    #[error(
        "the module declares no proxy-wasm ABI: it exports none of proxy_abi_version_0_2_1, \
         proxy_abi_version_0_2_0, proxy_abi_version_0_1_0; build it with a proxy-wasm SDK (Weir's, or the \
         Rust/Go/C++ proxy-wasm SDK)"
    )]
    NoAbi,
    /// The module exports more than one ABI marker.
    #[error("the module declares more than one proxy-wasm ABI ({found}); a filter must export exactly one")]
    ManyAbis {
        /// The markers found, comma-separated.
        found: String,
    },
    /// The configuration schema is not a valid JSON Schema.
    #[error("the configuration schema is not a valid JSON Schema: {reason}")]
    InvalidSchema {
        /// What the meta-schema check said.
        reason: String,
    },
    /// The artifact file, or a blob in it, is larger than Weir accepts.
    #[error("{what} is {size} bytes, over the {limit}-byte limit (a filter artifact is a .wasm plus a few KiB)")]
    TooLarge {
        /// What is too large (`the artifact file`, `layer 0 (wasm)`, `tar entry blobs/sha256/...`).
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not a readable tar archive, or holds something other than regular files and folders.
    #[error("the artifact is not a valid OCI image layout tar file: {reason}")]
    NotTar {
        /// What went wrong.
        reason: String,
    },
    /// A file of the layout (or a blob it references) is missing.
    #[error("{file}: missing from the artifact ({why}); the file was truncated or not written by `weir filter pack`")]
    Missing {
        /// The path inside the layout (`index.json`, `blobs/sha256/<hex>`), or the blob's role.
        file: String,
        /// Who references it.
        why: String,
    },
    /// A JSON file or blob does not parse, or lacks a field.
    #[error("{file}: {reason}")]
    Malformed {
        /// The file or blob (`index.json`, `manifest`, `config blob`).
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A descriptor has the wrong media type.
    #[error("{what}: media type is {found:?}, expected {expected:?}")]
    MediaType {
        /// The descriptor (`manifest`, `config blob`, `layer 0`).
        what: String,
        /// The expected media type.
        expected: String,
        /// The media type found.
        found: String,
    },
    /// Content does not hash to the digest that names it.
    #[error("{what}: digest mismatch: expected {expected}, the bytes hash to {actual}; the artifact was modified or corrupted")]
    DigestMismatch {
        /// The blob and who names it (`layer (wasm) named by the manifest`).
        what: String,
        /// The digest recorded.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// A descriptor's `size` is not the blob's size.
    #[error(
        "{what}: the descriptor says {declared} bytes, the blob has {actual}; the artifact was modified or corrupted"
    )]
    SizeMismatch {
        /// The blob.
        what: String,
        /// The size in the descriptor or meta.
        declared: u64,
        /// The real size.
        actual: u64,
    },
    /// The artifact is signed, but the signature does not verify.
    #[error(
        "the signature does not verify under key {key_id}: the artifact (its config or wasm layer) was changed \
         after signing, or the signature was forged"
    )]
    BadSignature {
        /// The key the signature claims.
        key_id: String,
    },
    /// The artifact is signed by a key that is not trusted.
    #[error("the artifact is signed by key {key_id}, which is not a trusted key; add that key's .pub file to the trusted keys if you trust it")]
    UntrustedKey {
        /// The signing key's id.
        key_id: String,
    },
    /// Trusted keys are required but the artifact is unsigned.
    #[error(
        "the artifact is not signed and only artifacts signed by a trusted key are accepted; pack it with --sign-key"
    )]
    Unsigned,
    /// A key file cannot be read or is not the right kind of key.
    #[error("{}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An OCI reference (`oci://HOST:PORT/REPO:TAG`) does not parse.
    #[error("{reference:?} is not an OCI reference: {reason}; write oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:<64 hex>")]
    Reference {
        /// The reference given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry could not be reached or refused the request.
    #[error("{reference}: {action} failed: {reason}")]
    Registry {
        /// The reference.
        reference: String,
        /// What was being done (`push`, `pull manifest`, `pull blob sha256:...`).
        action: String,
        /// What went wrong.
        reason: String,
    },
}
