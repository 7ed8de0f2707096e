//! Pushing and pulling artifacts to and from an OCI distribution registry (Docker's `registry`, Harbor, GHCR,
//! ECR, ...), with the `oci-client` crate.
//!
//! References: `oci://HOST[:PORT]/REPO:TAG` or `oci://HOST[:PORT]/REPO@sha256:<64 hex>` ([`OciRef::parse`]).
//! Loopback hosts (`127.0.0.1`, `localhost`, `[::1]`) are spoken to in plain HTTP, every other host in HTTPS
//! (with the system's roots), unless the caller asks for plain HTTP. Access is anonymous.
//!
//! A pull checks everything through [`Artifact::from_manifest_parts`], the same function as the tar reader, and
//! checks the manifest's digest against the `@sha256:` of the reference when there is one.

use super::manifest::{check_digest_syntax, parse_manifest, MAX_BLOB_SIZE};
use super::{sha256_digest, Artifact, ArtifactError, MEDIA_TYPE_MANIFEST};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciTarget {
    /// A tag (`:1.2.0`).
    Tag(String),
    /// A manifest digest (`@sha256:<hex>`).
    Digest(String),
}

/// A parsed `oci://HOST[:PORT]/REPO:TAG` or `oci://HOST[:PORT]/REPO@sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    /// `HOST` or `HOST:PORT`.
    pub registry: String,
    /// `REPO`: lowercase path components separated by '/'.
    pub repository: String,
    /// The tag or digest.
    pub target: OciTarget,
}

impl OciRef {
    /// Parses a reference; the error says what is wrong and what the syntax is.
    pub fn parse(s: &str) -> Result<OciRef, ArtifactError> {
        let err = |reason: &str| ArtifactError::Reference { reference: s.to_string(), reason: reason.to_string() };
        let rest = s.strip_prefix("oci://").ok_or_else(|| err("it does not start with oci://"))?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| err("there is no /REPO after the host"))?;
        check_registry(registry).map_err(|r| err(&r))?;
        let (repository, target) = if let Some((repo, digest)) = path.split_once('@') {
            check_digest_syntax("digest", digest)
                .map_err(|_| err(&format!("digest {digest:?} is not sha256:<64 lowercase hex digits>")))?;
            (repo, OciTarget::Digest(digest.to_string()))
        } else {
            // The tag follows the last ':' after the last '/'.
            let last = path.rsplit('/').next().unwrap_or(path);
            let Some((_, tag)) = last.split_once(':') else {
                return Err(err("it has no :TAG and no @sha256:DIGEST"));
            };
            check_tag(tag).map_err(|r| err(&r))?;
            (&path[..path.len() - tag.len() - 1], OciTarget::Tag(tag.to_string()))
        };
        check_repository(repository).map_err(|r| err(&r))?;
        Ok(OciRef { registry: registry.to_string(), repository: repository.to_string(), target })
    }

    /// Whether the registry is a loopback host (spoken to in plain HTTP).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => self.registry.as_str(),
        };
        matches!(host, "localhost" | "[::1]") || host.starts_with("127.")
    }

    /// The same repository at another target.
    pub fn with_target(&self, target: OciTarget) -> OciRef {
        OciRef { target, ..self.clone() }
    }

    fn reference(&self) -> Reference {
        match &self.target {
            OciTarget::Tag(t) => Reference::with_tag(self.registry.clone(), self.repository.clone(), t.clone()),
            OciTarget::Digest(d) => Reference::with_digest(self.registry.clone(), self.repository.clone(), d.clone()),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            OciTarget::Tag(t) => write!(f, "oci://{}/{}:{t}", self.registry, self.repository),
            OciTarget::Digest(d) => write!(f, "oci://{}/{}@{d}", self.registry, self.repository),
        }
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("the host is empty".into());
    }
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if !registry.ends_with(']') => {
            port.parse::<u16>().map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
            h
        }
        _ => registry,
    };
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':');
    if host.is_empty() || !host.chars().all(ok) {
        return Err(format!("host {host:?} is not a host name or IP address"));
    }
    Ok(())
}

fn check_repository(repo: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if repo.is_empty() || !repo.split('/').all(component_ok) {
        return Err(format!(
            "repository {repo:?} is not valid: path components of lowercase letters, digits, '.', '_' and '-', \
             separated by '/'"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let first_ok = tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > 128
        || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "tag {tag:?} is not valid: up to 128 letters, digits, '.', '_' and '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

// === push and pull ===

/// Pushes `artifact` (config blob, wasm layer, manifest) to `reference`; returns the manifest digest.
/// Pushing to `@sha256:...` requires that digest to be the artifact's manifest digest.
pub async fn push(artifact: &Artifact, reference: &OciRef, plain_http: bool) -> Result<String, ArtifactError> {
    let manifest = artifact.manifest_bytes();
    let manifest_digest = sha256_digest(&manifest);
    if let OciTarget::Digest(d) = &reference.target {
        if *d != manifest_digest {
            return Err(ArtifactError::Reference {
                reference: reference.to_string(),
                reason: format!("the artifact's manifest digest is {manifest_digest}, not {d}"),
            });
        }
    }
    let client = client(reference, plain_http)?;
    let image = reference.reference();
    let fail = |action: &str, e: &dyn std::error::Error| registry_error(reference, action, e);
    client.store_auth_if_needed(image.resolve_registry(), &RegistryAuth::Anonymous).await;
    let config = artifact.config_bytes();
    client
        .push_blob(&image, config.clone(), &sha256_digest(&config))
        .await
        .map_err(|e| fail("push config blob", &e))?;
    client
        .push_blob(&image, artifact.wasm.clone(), &artifact.wasm_digest())
        .await
        .map_err(|e| fail("push wasm layer", &e))?;
    let content_type = http::HeaderValue::from_static(MEDIA_TYPE_MANIFEST);
    client.push_manifest_raw(&image, manifest, content_type).await.map_err(|e| fail("push manifest", &e))?;
    Ok(manifest_digest)
}

/// Pulls the artifact at `reference` and checks it; returns it with its manifest digest.
pub async fn pull(reference: &OciRef, plain_http: bool) -> Result<(Artifact, String), ArtifactError> {
    let client = client(reference, plain_http)?;
    let image = reference.reference();
    let fail = |action: &str, e: &dyn std::error::Error| registry_error(reference, action, e);
    let auth = RegistryAuth::Anonymous;
    let (manifest, _) =
        client.pull_manifest_raw(&image, &auth, &[MEDIA_TYPE_MANIFEST]).await.map_err(|e| fail("pull manifest", &e))?;
    if manifest.len() as u64 > MAX_BLOB_SIZE {
        return Err(ArtifactError::TooLarge {
            what: format!("the manifest of {reference}"),
            size: manifest.len() as u64,
            limit: MAX_BLOB_SIZE,
        });
    }
    let manifest_digest = sha256_digest(&manifest);
    if let OciTarget::Digest(d) = &reference.target {
        if *d != manifest_digest {
            return Err(ArtifactError::DigestMismatch {
                what: format!("manifest named by {reference}"),
                expected: d.clone(),
                actual: manifest_digest,
            });
        }
    }
    let m = parse_manifest(&manifest)?;
    let mut blobs = Vec::new();
    for (what, desc) in [("pull config blob", &m.config), ("pull wasm layer", &m.layers[0])] {
        let mut out = Bounded { bytes: Vec::new(), limit: desc.size };
        client.pull_blob(&image, desc.digest.as_str(), &mut out).await.map_err(|e| fail(what, &e))?;
        blobs.push(out.bytes);
    }
    let artifact = Artifact::from_manifest_parts(&manifest, &blobs[0], &blobs[1])?;
    Ok((artifact, manifest_digest))
}

fn client(reference: &OciRef, plain_http: bool) -> Result<Client, ArtifactError> {
    // reqwest is built without a rustls provider (so no aws-lc); use ring, as the rest of Weir does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if plain_http || reference.is_loopback() { ClientProtocol::Http } else { ClientProtocol::Https };
    let config = ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        // Distribution accepts chunked uploads, but one PUT per blob is simpler and enough for a filter.
        use_monolithic_push: true,
        ..Default::default()
    };
    Client::try_from(config).map_err(|e| registry_error(reference, "set up the client", &e))
}

fn registry_error(reference: &OciRef, action: &str, e: &dyn std::error::Error) -> ArtifactError {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = s.source();
    }
    ArtifactError::Registry { reference: reference.to_string(), action: action.into(), reason }
}

/// A byte sink that refuses more than `limit` bytes (a blob bigger than its descriptor says).
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if (this.bytes.len() + buf.len()) as u64 > this.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the {} bytes the manifest gives",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let hex = "a".repeat(64);
        let ok = [
            (
                "oci://127.0.0.1:5000/filters/auth:1.2.0",
                "127.0.0.1:5000",
                "filters/auth",
                OciTarget::Tag("1.2.0".into()),
            ),
            ("oci://localhost/auth:latest", "localhost", "auth", OciTarget::Tag("latest".into())),
            (
                &format!("oci://ghcr.io/org/auth@sha256:{hex}"),
                "ghcr.io",
                "org/auth",
                OciTarget::Digest(format!("sha256:{hex}")),
            ),
        ];
        for (s, registry, repo, target) in ok {
            let r = OciRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((r.registry.as_str(), r.repository.as_str(), &r.target), (registry, repo, &target), "{s}");
            assert_eq!(r.to_string(), s);
        }
        let bad = [
            ("127.0.0.1:5000/auth:1", "it does not start with oci://"),
            ("oci://127.0.0.1:5000", "there is no /REPO after the host"),
            ("oci://127.0.0.1:5000/auth", "it has no :TAG and no @sha256:DIGEST"),
            ("oci://127.0.0.1:99999/auth:1", "port \"99999\" is not a number from 0 to 65535"),
            ("oci://h/Auth:1", "repository \"Auth\" is not valid"),
            ("oci://h/auth:1.0.0+build", "tag \"1.0.0+build\" is not valid"),
            ("oci://h/auth@sha256:abc", "digest \"sha256:abc\" is not sha256:<64 lowercase hex digits>"),
        ];
        for (s, want) in bad {
            let e = OciRef::parse(s).expect_err(s).to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn loopback() {
        for (s, want) in
            [("oci://127.0.0.1:5000/a:1", true), ("oci://localhost/a:1", true), ("oci://ghcr.io/a:1", false)]
        {
            assert_eq!(OciRef::parse(s).map(|r| r.is_loopback()).ok(), Some(want), "{s}");
        }
    }
}
