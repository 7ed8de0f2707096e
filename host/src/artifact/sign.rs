//! ed25519 signatures over an artifact, and the key files (PKCS#8 / SPKI PEM) that hold the keys.
//!
//! What is signed: the ASCII bytes of [`signed_message`], that is
//!
//! ```text
//! weir-artifact-signature-v1\n
//! config sha256:<64 hex of the config blob>\n
//! layer sha256:<64 hex of the .wasm>\n
//! ```
//!
//! The config blob is Weir's manifest ([`super::ArtifactMeta`]: name, version, ABI, description, schema, and
//! the wasm digest again), so the signature covers everything but the OCI manifest's annotations.

use super::{Artifact, ArtifactError};
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A short fingerprint of a public key: the first 16 hex digits of SHA-256 over its 32 raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &VerifyingKey) -> KeyId {
        let hash = Sha256::digest(key.as_bytes());
        KeyId(hash.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }

    /// Wraps an id read from an annotation (not checked: it only names a key).
    pub fn from_annotation(id: &str) -> KeyId {
        KeyId(id.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An artifact's signature: which key made it, and the 64 signature bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The id of the key that signed (from the `dev.weir.key-id` annotation).
    pub key_id: KeyId,
    /// The ed25519 signature over [`signed_message`].
    pub signature: ed25519_dalek::Signature,
}

impl Signature {
    /// The signature as standard base64 (the `dev.weir.signature` annotation).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.signature.to_bytes())
    }

    /// Reads the two annotations back.
    pub fn from_annotations(signature_b64: &str, key_id: &str) -> Result<Signature, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|e| format!("the signature annotation is not base64: {e}"))?;
        let bytes: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
            format!("the signature annotation holds {} bytes, an ed25519 signature has 64", bytes.len())
        })?;
        Ok(Signature {
            key_id: KeyId::from_annotation(key_id),
            signature: ed25519_dalek::Signature::from_bytes(&bytes),
        })
    }
}

/// The bytes a signature covers: see the module docs.
pub fn signed_message(config_digest: &str, layer_digest: &str) -> Vec<u8> {
    format!("weir-artifact-signature-v1\nconfig {config_digest}\nlayer {layer_digest}\n").into_bytes()
}

/// A new random key pair.
pub fn generate() -> (SigningKey, VerifyingKey) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key();
    (key, public)
}

/// Signs `artifact` (its config blob and `.wasm` as they are now) with `key`.
pub fn sign(artifact: &Artifact, key: &SigningKey) -> Signature {
    let message = signed_message(&artifact.config_digest(), &artifact.wasm_digest());
    Signature { key_id: KeyId::of(&key.verifying_key()), signature: key.sign(&message) }
}

// === impl Artifact ===

impl Artifact {
    /// Checks the signature against `trusted` keys:
    ///
    /// - signed, and the signature verifies under a trusted key: `Ok(Some(key id))`;
    /// - unsigned: `Ok(None)` (the caller decides whether unsigned is acceptable; [`require_trusted`] does not
    ///   accept it);
    /// - signed by a key not in `trusted`: [`ArtifactError::UntrustedKey`] naming the key id;
    /// - the signature does not verify (the artifact changed after signing): [`ArtifactError::BadSignature`].
    pub fn verify(&self, trusted: &[VerifyingKey]) -> Result<Option<KeyId>, ArtifactError> {
        let Some(sig) = &self.signature else {
            return Ok(None);
        };
        let Some(key) = trusted.iter().find(|k| KeyId::of(k) == sig.key_id) else {
            return Err(ArtifactError::UntrustedKey { key_id: sig.key_id.to_string() });
        };
        let layer_digest = self.wasm_digest();
        if self.meta.wasm_digest != layer_digest {
            return Err(ArtifactError::BadSignature { key_id: sig.key_id.to_string() });
        }
        let message = signed_message(&self.config_digest(), &layer_digest);
        key.verify_strict(&message, &sig.signature)
            .map_err(|_| ArtifactError::BadSignature { key_id: sig.key_id.to_string() })?;
        Ok(Some(sig.key_id.clone()))
    }
}

/// The "only artifacts signed by a trusted key" mode: like [`Artifact::verify`], but an unsigned artifact is
/// refused ([`ArtifactError::Unsigned`]).
pub fn require_trusted(artifact: &Artifact, trusted: &[VerifyingKey]) -> Result<KeyId, ArtifactError> {
    artifact.verify(trusted)?.ok_or(ArtifactError::Unsigned)
}

// === key files ===

/// Writes `PREFIX.key` (the private key, PKCS#8 PEM, mode 0600) and `PREFIX.pub` (the public key, SPKI PEM).
/// Refuses to overwrite either file. Returns both paths.
pub fn write_key_pair(prefix: &Path, key: &SigningKey) -> Result<(PathBuf, PathBuf), ArtifactError> {
    let private = with_suffix(prefix, "key");
    let public = with_suffix(prefix, "pub");
    for path in [&private, &public] {
        if path.exists() {
            return Err(key_error(path, "already exists; refusing to overwrite a key (choose another --out prefix)"));
        }
    }
    let private_pem =
        key.to_pkcs8_pem(LineEnding::LF).map_err(|e| key_error(&private, &format!("cannot encode the key: {e}")))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| key_error(&public, &format!("cannot encode the key: {e}")))?;
    write_new(&private, private_pem.as_bytes(), 0o600)?;
    write_new(&public, public_pem.as_bytes(), 0o644)?;
    Ok((private, public))
}

const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----";
const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----";

/// Reads an ed25519 private key from a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, ArtifactError> {
    let text = read_text(path)?;
    let fail = |why: &str| key_error(path, &format!("not an ed25519 PEM private key: {why}"));
    if text.contains(PUBLIC_PEM) {
        return Err(fail("it is a public key (pass the .key file `weir filter keygen` wrote, not the .pub)"));
    }
    if !text.contains(PRIVATE_PEM) {
        return Err(fail(&format!("it has no {PRIVATE_PEM} block (write a key pair with `weir filter keygen`)")));
    }
    SigningKey::from_pkcs8_pem(&text).map_err(|e| fail(&format!("{e} (write a key pair with `weir filter keygen`)")))
}

/// Reads an ed25519 public key from an SPKI PEM file (`-----BEGIN PUBLIC KEY-----`).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, ArtifactError> {
    let text = read_text(path)?;
    let fail = |why: &str| key_error(path, &format!("not an ed25519 PEM public key: {why}"));
    if text.contains(PRIVATE_PEM) {
        return Err(fail("it is a private key (pass the .pub file `weir filter keygen` wrote, not the .key)"));
    }
    if !text.contains(PUBLIC_PEM) {
        return Err(fail(&format!("it has no {PUBLIC_PEM} block (use the .pub file `weir filter keygen` wrote)")));
    }
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| fail(&format!("{e} (use the .pub file `weir filter keygen` wrote)")))
}

fn read_text(path: &Path) -> Result<String, ArtifactError> {
    let bytes = fs::read(path).map_err(|e| key_error(path, &format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| key_error(path, "not a PEM file (it is not text)"))
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn key_error(path: &Path, reason: &str) -> ArtifactError {
    ArtifactError::KeyFile { path: path.to_path_buf(), reason: reason.to_string() }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ArtifactError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| key_error(path, &format!("cannot create: {e}")))?;
    file.write_all(bytes).map_err(|e| key_error(path, &format!("cannot write: {e}")))
}
