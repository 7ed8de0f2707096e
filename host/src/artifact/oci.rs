//! Pushing and pulling artifacts to and from an OCI distribution registry (Docker's `registry`, Harbor, GHCR,
//! ECR, ...), with Weir's own distribution API client (`host/src/artifact/distribution.rs`).
//!
//! References: `oci://HOST[:PORT]/REPO:TAG` or `oci://HOST[:PORT]/REPO@sha256:<64 hex>` ([`OciRef::parse`]).
//! Loopback hosts (`127.0.0.1`, `localhost`, `[::1]`) are spoken to in plain HTTP, every other host in HTTPS
//! (with the system's roots), unless the caller asks for plain HTTP. Access is anonymous, with the Docker token
//! flow when the registry asks for a Bearer token (`auth.rs`).
//!
//! A pull checks everything through [`Artifact::from_manifest_parts`], the same function as the tar reader, and
//! checks the manifest's digest against the `@sha256:` of the reference when there is one.

use super::auth::Access;
use super::distribution::{Client, Failure, MAX_ERROR_BODY, MAX_MANIFEST_SIZE};
use super::manifest::{check_blob, check_digest_syntax, parse_manifest};
use super::{sha256_digest, Artifact, ArtifactError, MEDIA_TYPE_MANIFEST};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::fmt;

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

    /// The tag or the digest, as it appears in `/v2/<repo>/manifests/<target>`.
    fn target_str(&self) -> &str {
        match &self.target {
            OciTarget::Tag(t) => t,
            OciTarget::Digest(d) => d,
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
///
/// Each blob is skipped when the registry already has it (HEAD), else uploaded in one request (POST an upload,
/// PUT its `Location` with `digest=`); then the manifest is PUT under the tag or digest.
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
    let mut client = client(reference, plain_http, Access::Push)?;
    let config = artifact.config_bytes();
    let config_digest = sha256_digest(&config);
    push_blob(&mut client, Bytes::from(config), &config_digest)
        .await
        .map_err(|f| registry_error(reference, "push config blob", f))?;
    push_blob(&mut client, Bytes::from(artifact.wasm.clone()), &artifact.wasm_digest())
        .await
        .map_err(|f| registry_error(reference, "push wasm layer", f))?;

    let fail = |f| registry_error(reference, "push manifest", f);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE_MANIFEST));
    let url = client.url(&format!("manifests/{}", reference.target_str()));
    let reply = client.request(Method::PUT, url, headers, Bytes::from(manifest), MAX_ERROR_BODY).await.map_err(fail)?;
    if !reply.status.is_success() {
        return Err(fail(reply.refusal("the registry refused the manifest")));
    }
    if let Some(stored) = reply.header("docker-content-digest").filter(|d| d.starts_with("sha256:")) {
        if stored != manifest_digest {
            return Err(fail(Failure::Reason(format!(
                "the registry stored the manifest as {stored}, but its bytes hash to {manifest_digest}"
            ))));
        }
    }
    Ok(manifest_digest)
}

async fn push_blob(client: &mut Client, bytes: Bytes, digest: &str) -> Result<(), Failure> {
    let blob = client.url(&format!("blobs/{digest}"));
    let head = client.request(Method::HEAD, blob, HeaderMap::new(), Bytes::new(), 0).await?;
    match head.status {
        StatusCode::OK => return Ok(()),
        StatusCode::NOT_FOUND => {}
        _ => return Err(head.refusal("checking whether the registry has the blob")),
    }
    let uploads = client.url("blobs/uploads/");
    let started = client.request(Method::POST, uploads, HeaderMap::new(), Bytes::new(), MAX_ERROR_BODY).await?;
    if started.status != StatusCode::ACCEPTED {
        return Err(started.refusal("the registry refused to start an upload"));
    }
    let location = started.header("location").ok_or_else(|| {
        Failure::Reason(format!("{} answered {} without the upload's Location", started.url, started.status))
    })?;
    let target = started.url.join(location)?.with_query("digest", digest);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    let done = client.request(Method::PUT, target, headers, bytes, MAX_ERROR_BODY).await?;
    if !done.status.is_success() {
        return Err(done.refusal("the registry refused the upload"));
    }
    Ok(())
}

/// Pulls the artifact at `reference` and checks it; returns it with its manifest digest.
///
/// The manifest must be served as [`MEDIA_TYPE_MANIFEST`] and hash to the reference's `@sha256:` (when it has
/// one) and to the registry's `Docker-Content-Digest` (when it sends one); each blob is read up to its
/// descriptor's size and checked against its digest before anything is returned.
pub async fn pull(reference: &OciRef, plain_http: bool) -> Result<(Artifact, String), ArtifactError> {
    let mut client = client(reference, plain_http, Access::Pull)?;
    let fail = |action: &str, f| registry_error(reference, action, f);
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE_MANIFEST));
    let url = client.url(&format!("manifests/{}", reference.target_str()));
    let reply = match client.request(Method::GET, url, headers, Bytes::new(), MAX_MANIFEST_SIZE).await {
        Ok(reply) => reply,
        Err(Failure::TooLarge { declared: Some(size), limit }) => {
            return Err(ArtifactError::TooLarge { what: format!("the manifest of {reference}"), size, limit })
        }
        Err(f) => return Err(fail("pull manifest", f)),
    };
    if !reply.status.is_success() {
        let hint = match reply.status {
            StatusCode::NOT_FOUND => "check the repository and the tag or digest (push it with `weir filter push`)",
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "the registry refuses anonymous pulls of it",
            _ => "",
        };
        return Err(fail("pull manifest", reply.refusal(hint)));
    }
    let content_type = reply.header("content-type").map(|t| t.split(';').next().unwrap_or("").trim().to_string());
    if let Some(found) = content_type.filter(|t| t != MEDIA_TYPE_MANIFEST) {
        return Err(ArtifactError::MediaType {
            what: format!(
                "the manifest served for {reference} (not a Weir artifact: an image index or a Docker image?)"
            ),
            expected: MEDIA_TYPE_MANIFEST.into(),
            found,
        });
    }
    let manifest = reply.body.clone();
    let manifest_digest = sha256_digest(&manifest);
    let expected = match &reference.target {
        OciTarget::Digest(d) => Some((d.clone(), format!("manifest named by {reference}"))),
        OciTarget::Tag(_) => reply
            .header("docker-content-digest")
            .filter(|d| d.starts_with("sha256:"))
            .map(|d| (d.to_string(), format!("manifest of {reference} (the registry's Docker-Content-Digest)"))),
    };
    if let Some((expected, what)) = expected {
        if expected != manifest_digest {
            return Err(ArtifactError::DigestMismatch { what, expected, actual: manifest_digest });
        }
    }
    let m = parse_manifest(&manifest)?;
    let mut blobs = Vec::new();
    for (action, what, desc) in
        [("pull config blob", "config blob", &m.config), ("pull wasm layer", "wasm layer", &m.layers[0])]
    {
        let url = client.url(&format!("blobs/{}", desc.digest));
        let reply = match client.request(Method::GET, url, HeaderMap::new(), Bytes::new(), desc.size).await {
            Ok(reply) => reply,
            Err(Failure::TooLarge { declared, limit }) => {
                let declared = declared.map(|d| format!(" ({d} bytes)")).unwrap_or_default();
                return Err(fail(
                    action,
                    Failure::Reason(format!(
                        "the registry sent more{declared} than the {limit} bytes the manifest gives for {}",
                        desc.digest
                    )),
                ));
            }
            Err(f) => return Err(fail(action, f)),
        };
        if !reply.status.is_success() {
            return Err(fail(action, reply.refusal("the registry lacks a blob its manifest names")));
        }
        check_blob(&format!("{what} {} served by {} for {reference}", desc.digest, reply.url), desc, &reply.body)?;
        blobs.push(reply.body);
    }
    let artifact = Artifact::from_manifest_parts(&manifest, &blobs[0], &blobs[1])?;
    Ok((artifact, manifest_digest))
}

fn client(reference: &OciRef, plain_http: bool, access: Access) -> Result<Client, ArtifactError> {
    let https = !(plain_http || reference.is_loopback());
    // Docker Hub's registry API is not at its name's host (what Docker and the former oci-client do too).
    let registry = match reference.registry.as_str() {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        registry => registry,
    };
    Client::new(registry, &reference.repository, https, access)
        .map_err(|f| registry_error(reference, "set up the client", f))
}

fn registry_error(reference: &OciRef, action: &str, failure: Failure) -> ArtifactError {
    ArtifactError::Registry { reference: reference.to_string(), action: action.into(), reason: failure.to_string() }
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
    fn registry_urls() {
        let url = |s: &str, plain_http| {
            let r = OciRef::parse(s).unwrap();
            client(&r, plain_http, Access::Pull).unwrap().url(&format!("manifests/{}", r.target_str())).to_string()
        };
        assert_eq!(url("oci://127.0.0.1:5000/f/a:1", false), "http://127.0.0.1:5000/v2/f/a/manifests/1");
        assert_eq!(url("oci://ghcr.io/org/a:1", false), "https://ghcr.io/v2/org/a/manifests/1");
        assert_eq!(url("oci://reg.example:8443/a:1", true), "http://reg.example:8443/v2/a/manifests/1");
        assert_eq!(url("oci://docker.io/org/a:1", false), "https://registry-1.docker.io/v2/org/a/manifests/1");
        let hex = "b".repeat(64);
        assert_eq!(
            url(&format!("oci://[::1]:5000/a@sha256:{hex}"), false),
            format!("http://[::1]:5000/v2/a/manifests/sha256:{hex}")
        );
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
