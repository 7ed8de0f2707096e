//! A mock OCI registry on 127.0.0.1, for what Debian's `docker-registry` cannot show: the Docker token flow
//! (401 with a Bearer challenge until the token from the token server is sent), blobs redirected to storage on
//! another port (which refuses requests carrying the registry's Authorization), and a registry serving other
//! bytes than the digest names. Runs on its own thread (so the `weir` binary can use it too), stopped on drop.
//!
//! Two listeners: the registry (`/v2/filters/auth/...`, the only repository) and a side server (`/token`, the
//! token realm, and `/blobs/<digest>`, the blob storage redirects point at).
#![allow(dead_code)]

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The token the token server hands out and the registry wants.
pub const TOKEN: &str = "mock-token-7f3a";
/// The `service` of the Bearer challenge.
pub const SERVICE: &str = "mock-registry";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// What the mock does.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Require `Authorization: Bearer TOKEN`, answering 401 with a Bearer challenge otherwise.
    pub bearer: bool,
    /// The token server hands out a token the registry does not accept.
    pub wrong_token: bool,
    /// GET of a blob answers 307 to the side server's `/blobs/<digest>`.
    pub redirect_blobs: bool,
    /// Digests (of blobs or manifests) whose content is served altered (same length for blobs).
    pub tamper: Vec<String>,
}

/// The running mock, stopped on drop.
pub struct Mock {
    /// The registry's address.
    pub addr: SocketAddr,
    /// The token server and blob storage's address.
    pub side: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct State {
    opts: Options,
    side: SocketAddr,
    manifests: Mutex<HashMap<String, Bytes>>,
    blobs: Mutex<HashMap<String, Bytes>>,
    log: Mutex<Vec<String>>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Mock {
    pub fn start(opts: Options) -> Mock {
        let registry = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let side = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (addr, side_addr) = (registry.local_addr().unwrap(), side.local_addr().unwrap());
        registry.set_nonblocking(true).unwrap();
        side.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            opts,
            side: side_addr,
            manifests: Mutex::default(),
            blobs: Mutex::default(),
            log: Mutex::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let registry = tokio::net::TcpListener::from_std(registry).unwrap();
                let side = tokio::net::TcpListener::from_std(side).unwrap();
                tokio::select! {
                    _ = serve(registry, st.clone(), false) => {}
                    _ = serve(side, st, true) => {}
                    _ = stopped => {}
                }
            });
        });
        Mock { addr, side: side_addr, state, stop: Some(stop), thread: Some(thread) }
    }

    /// The requests received so far: `registry|side METHOD PATH?QUERY auth=<Authorization or ->`.
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Stores an artifact's manifest (under `tag` and its digest) and blobs, as a push would.
    pub fn store(&self, tag: &str, manifest: &[u8], blobs: &[&[u8]]) {
        let digest = weir::artifact::sha256_digest(manifest);
        let mut manifests = self.state.manifests.lock().unwrap();
        manifests.insert(tag.to_string(), Bytes::copy_from_slice(manifest));
        manifests.insert(digest, Bytes::copy_from_slice(manifest));
        for blob in blobs {
            self.state.blobs.lock().unwrap().insert(weir::artifact::sha256_digest(blob), Bytes::copy_from_slice(blob));
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, side: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let response = if side { side_server(&state, req).await } else { registry(&state, req).await };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn respond(status: StatusCode, headers: &[(&str, String)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value.as_str());
    }
    response.body(Full::new(body.into())).unwrap()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string();
    respond(status, &[("content-type", "application/json".into())], body)
}

impl State {
    fn note(&self, server: &str, req: &Request<Incoming>) {
        let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("-");
        let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        self.log.lock().unwrap().push(format!("{server} {} {target} auth={auth}", req.method()));
    }

    /// The blob's bytes as served: altered (last byte flipped) when tampered with.
    fn served_blob(&self, digest: &str) -> Option<Bytes> {
        let bytes = self.blobs.lock().unwrap().get(digest).cloned()?;
        if !self.opts.tamper.iter().any(|t| t == digest) {
            return Some(bytes);
        }
        let mut altered = bytes.to_vec();
        if let Some(last) = altered.last_mut() {
            *last ^= 0xff;
        }
        Some(Bytes::from(altered))
    }
}

async fn registry(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    state.note("registry", &req);
    let method = req.method().clone();
    if state.opts.bearer {
        let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            let actions = if method == Method::GET || method == Method::HEAD { "pull" } else { "pull,push" };
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\",scope=\"repository:filters/auth:{actions}\"",
                state.side
            );
            let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required");
            response.headers_mut().insert("www-authenticate", challenge.parse().unwrap());
            return response;
        }
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let Some(rest) = path.strip_prefix("/v2/filters/auth/") else {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry");
    };
    if let Some(target) = rest.strip_prefix("manifests/") {
        if method == Method::PUT {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let digest = weir::artifact::sha256_digest(&body);
            let mut manifests = state.manifests.lock().unwrap();
            manifests.insert(target.to_string(), body.clone());
            manifests.insert(digest.clone(), body);
            return respond(StatusCode::CREATED, &[("docker-content-digest", digest)], "");
        }
        let Some(manifest) = state.manifests.lock().unwrap().get(target).cloned() else {
            return error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown");
        };
        let digest = weir::artifact::sha256_digest(&manifest);
        let served =
            if state.opts.tamper.contains(&digest) { Bytes::from([&manifest[..], b" "].concat()) } else { manifest };
        return respond(
            StatusCode::OK,
            &[("content-type", MANIFEST_TYPE.into()), ("docker-content-digest", digest)],
            served,
        );
    }
    if rest == "blobs/uploads/" && method == Method::POST {
        return respond(
            StatusCode::ACCEPTED,
            &[("location", "/v2/filters/auth/blobs/uploads/u1?_state=s1".into())],
            "",
        );
    }
    if rest == "blobs/uploads/u1" && method == Method::PUT {
        let digest = query.strip_prefix("_state=s1&digest=").map(str::to_string);
        let body = req.into_body().collect().await.unwrap().to_bytes();
        return match digest {
            Some(d) if d == weir::artifact::sha256_digest(&body) => {
                state.blobs.lock().unwrap().insert(d.clone(), body);
                respond(StatusCode::CREATED, &[("docker-content-digest", d)], "")
            }
            _ => error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", &format!("bad upload query {query:?}")),
        };
    }
    if let Some(digest) = rest.strip_prefix("blobs/") {
        let Some(bytes) = state.served_blob(digest) else {
            return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry");
        };
        if state.opts.redirect_blobs && method == Method::GET {
            let location = format!("http://{}/blobs/{digest}?sig=s3cr3t", state.side);
            return respond(StatusCode::TEMPORARY_REDIRECT, &[("location", location)], "");
        }
        return respond(StatusCode::OK, &[("content-type", "application/octet-stream".into())], bytes);
    }
    error(StatusCode::NOT_FOUND, "UNSUPPORTED", "not handled by the mock")
}

async fn side_server(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    state.note("side", &req);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if path == "/token" {
        let pull = format!("service={SERVICE}&scope=repository%3Afilters%2Fauth%3Apull");
        if query != pull && query != format!("{pull}%2Cpush") {
            return respond(StatusCode::BAD_REQUEST, &[], format!("unexpected token query {query:?}"));
        }
        let token = if state.opts.wrong_token { "not-the-token" } else { TOKEN };
        return respond(
            StatusCode::OK,
            &[("content-type", "application/json".into())],
            serde_json::json!({"token": token, "expires_in": 300}).to_string(),
        );
    }
    if let Some(digest) = path.strip_prefix("/blobs/") {
        if req.headers().contains_key("authorization") {
            return respond(StatusCode::FORBIDDEN, &[], "the registry's Authorization was forwarded to blob storage");
        }
        if query != "sig=s3cr3t" {
            return respond(StatusCode::FORBIDDEN, &[], "bad signature");
        }
        return match state.served_blob(digest) {
            Some(bytes) => respond(StatusCode::OK, &[], bytes),
            None => respond(StatusCode::NOT_FOUND, &[], "no such blob"),
        };
    }
    respond(StatusCode::NOT_FOUND, &[], "not found")
}
