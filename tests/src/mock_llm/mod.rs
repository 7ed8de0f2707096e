//! Protocol-faithful mock LLM providers: real HTTP servers on 127.0.0.1 that speak each provider's own
//! request and answer shapes (JSON, SSE, NDJSON, AWS event stream) closely enough that a translating gateway
//! cannot tell them from the real service.
//!
//! | provider | file | paths |
//! |---|---|---|
//! | OpenAI, Azure OpenAI, Mistral, OpenAI-compatible | [`openai`] | `/v1/chat/completions`, `GET /v1/models`; Azure `/openai/deployments/{d}/chat/completions?api-version=...` |
//! | Anthropic | [`anthropic`] | `/v1/messages` |
//! | Gemini | [`gemini`] | `/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` |
//! | Bedrock | [`bedrock`] | `/model/{modelId}/converse`, `/converse-stream` (SigV4 checked) |
//! | Ollama | [`ollama`] | `/api/chat` (NDJSON), `/v1/chat/completions` |
//!
//! Each test scripts what the next requests get ([`MockLlm::script`]: an [`Answer`] with text, tool calls and
//! usage; an error with the provider's status, body and retry header; a stream that fails half way; a
//! malformed answer) and reads back every request received ([`MockLlm::received`]). Streams are written in
//! small pieces cut at awkward byte offsets (inside `data:`, inside a UTF-8 character, inside a binary frame),
//! with a short pause between writes, so a client that parses per read fails.

pub mod anthropic;
pub mod bedrock;
pub mod crypto;
pub mod eventstream;
mod exchange;
pub mod gemini;
pub mod ollama;
pub mod openai;
mod script;
pub mod sigv4;

pub use exchange::{Ctx, Received, Reply};
pub use script::{Answer, Behavior, Finish, Pacing, ToolCall, Usage};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

use crate::upstream::ReceiverStream;

/// Which provider a mock plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI (`Authorization: Bearer`).
    OpenAi,
    /// Azure OpenAI (`api-key` header, deployment paths, `api-version` required).
    Azure,
    /// Mistral (bearer; tool-call ids must be 9 alphanumerics; usage on the last chunk).
    Mistral,
    /// Any OpenAI-compatible host (bearer, any path ending in `/chat/completions`).
    OpenAiCompatible,
    /// Anthropic Messages (`x-api-key`, `anthropic-version`).
    Anthropic,
    /// Google Gemini (`x-goog-api-key` or `?key=`).
    Gemini,
    /// AWS Bedrock Converse (SigV4 with service `bedrock`).
    Bedrock,
    /// Ollama (no auth).
    Ollama,
}

/// AWS credentials a Bedrock mock verifies SigV4 signatures against.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    /// Access key id expected in the `Credential=` scope.
    pub access_key_id: String,
    /// Secret the mock recomputes the signature with.
    pub secret_access_key: String,
    /// Region expected in the scope.
    pub region: String,
}

struct State {
    provider: Provider,
    script: Mutex<Vec<Behavior>>,
    received: Mutex<Vec<Received>>,
    keys: Mutex<Vec<String>>,
    aws: Mutex<Option<AwsCredentials>>,
    pacing: Mutex<Pacing>,
    seq: AtomicU64,
    served: AtomicU64,
    seen: tokio::sync::Notify,
    hold: AtomicBool,
    release: tokio::sync::Semaphore,
}

/// A running mock provider; stops when dropped.
pub struct MockLlm {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl MockLlm {
    /// Starts a mock of `provider` on 127.0.0.1 (HTTP/1.1 and h2c), answering [`Answer::default`] until scripted.
    pub async fn start(provider: Provider) -> MockLlm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock provider");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            provider,
            script: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            keys: Mutex::new(Vec::new()),
            aws: Mutex::new(None),
            pacing: Mutex::new(Pacing::default()),
            seq: AtomicU64::new(0),
            served: AtomicU64::new(0),
            seen: tokio::sync::Notify::new(),
            hold: AtomicBool::new(false),
            release: tokio::sync::Semaphore::new(0),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { handle(s, req).await }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        MockLlm { addr, state, task }
    }

    /// `host:port` for a cluster endpoint.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Scripts the next requests for the provider's own paths: the n-th such request from now gets
    /// `behaviors[n]`, and every request after the last gets the last one (a one-element script answers all).
    pub fn script(&self, behaviors: Vec<Behavior>) {
        let mut script = self.state.script.lock().expect("script");
        *script = behaviors;
        self.state.served.store(0, Ordering::SeqCst);
    }

    /// Accepts only these API keys (answering 401, or 403 for Bedrock, in the provider's shape otherwise).
    pub fn require_keys(&self, keys: &[&str]) {
        *self.state.keys.lock().expect("keys") = keys.iter().map(|k| k.to_string()).collect();
    }

    /// Verifies SigV4 signatures with these credentials (Bedrock).
    pub fn require_sigv4(&self, credentials: AwsCredentials) {
        *self.state.aws.lock().expect("aws") = Some(credentials);
    }

    /// Sets how streams are cut and paced.
    pub fn set_pacing(&self, pacing: Pacing) {
        *self.state.pacing.lock().expect("pacing") = pacing;
    }

    /// From now on, streams stop after half of their events until [`MockLlm::release`] (to show that a
    /// client gets the first events before the provider has finished).
    pub fn hold_streams(&self) {
        self.state.hold.store(true, Ordering::SeqCst);
    }

    /// Lets one held stream finish.
    pub fn release(&self) {
        self.state.release.add_permits(1);
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    /// The last request received (panics when there was none).
    pub fn last(&self) -> Received {
        self.received().pop().expect("the mock provider received no request")
    }

    /// Waits (up to 5 s) until `n` requests have arrived, then returns them all.
    pub async fn wait_received(&self, n: usize) -> Vec<Received> {
        let wait = async {
            loop {
                let seen = self.state.seen.notified();
                if self.received().len() >= n {
                    return;
                }
                seen.await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), wait).await;
        self.received()
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(s: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let raw = body.collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .chain(parts.uri.authority().map(|a| ("host".to_string(), a.to_string())))
            .collect(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    };
    s.received.lock().expect("received").push(received.clone());
    s.seen.notify_waiters();
    // Only requests for one of the provider's own paths take a scripted answer (a stray request, such as the
    // one a gateway forwards untranslated, gets the provider's 404 without shifting the script).
    let behavior = if serves(s.provider, received.path_only()) {
        let n = s.served.fetch_add(1, Ordering::SeqCst) as usize;
        let script = s.script.lock().expect("script");
        script.get(n).or(script.last()).cloned().unwrap_or_default()
    } else {
        Behavior::default()
    };
    let keys = s.keys.lock().expect("keys").clone();
    let aws = s.aws.lock().expect("aws").clone();
    let pacing = s.pacing.lock().expect("pacing").clone();
    let ctx = Ctx {
        req: &received,
        behavior: &behavior,
        keys: &keys,
        aws: aws.as_ref(),
        provider: s.provider,
        seq: s.seq.fetch_add(1, Ordering::SeqCst) + 1,
    };
    let reply = match s.provider {
        _ if matches!(behavior, Behavior::NotJson) => Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            events: vec![b"<html><body><h1>Welcome to nginx!</h1></body></html>".to_vec()],
            stream: false,
        },
        Provider::OpenAi | Provider::Azure | Provider::Mistral | Provider::OpenAiCompatible => openai::respond(&ctx),
        Provider::Anthropic => anthropic::respond(&ctx),
        Provider::Gemini => gemini::respond(&ctx),
        Provider::Bedrock => bedrock::respond(&ctx),
        Provider::Ollama => ollama::respond(&ctx),
    };
    let hold = s.hold.load(Ordering::SeqCst).then(|| s.clone());
    Ok(write(reply, pacing, hold))
}

/// Whether `path` is one of `provider`'s API paths.
fn serves(provider: Provider, path: &str) -> bool {
    match provider {
        Provider::OpenAi | Provider::Mistral => path.starts_with("/v1/"),
        Provider::Azure => path.starts_with("/openai/deployments/"),
        Provider::OpenAiCompatible => path.ends_with("/chat/completions") || path.ends_with("/models"),
        Provider::Anthropic => path == "/v1/messages",
        Provider::Gemini => path.starts_with("/v1beta/models/"),
        Provider::Bedrock => path.starts_with("/model/"),
        Provider::Ollama => path == "/api/chat" || path.starts_with("/v1/"),
    }
}

/// Writes `reply`: a plain body in two pieces (with `content-length`), a stream cut by `pacing`; a held stream
/// (`hold`) stops after half of its events until [`MockLlm::release`].
fn write(reply: Reply, pacing: Pacing, hold: Option<Arc<State>>) -> Response<Body> {
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    // Each part is written piece by piece; between the two parts a held stream waits.
    let parts: Vec<Vec<Vec<u8>>> = if reply.stream {
        let half = if hold.is_some() { reply.events.len() / 2 } else { reply.events.len() };
        vec![pacing.cut(&reply.events[..half].concat()), pacing.cut(&reply.events[half..].concat())]
    } else {
        let bytes: Vec<u8> = reply.events.concat();
        builder = builder.header("content-length", bytes.len());
        let half = bytes.len() / 2;
        vec![vec![bytes[..half].to_vec(), bytes[half..].to_vec()]]
    };
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let delay = pacing.delay;
    tokio::spawn(async move {
        for (p, pieces) in parts.into_iter().enumerate() {
            if p > 0 {
                if let Some(state) = &hold {
                    let Ok(permit) = state.release.acquire().await else { return };
                    permit.forget();
                }
            }
            for piece in pieces {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if !piece.is_empty() && tx.send(Ok(Frame::data(Bytes::from(piece)))).await.is_err() {
                    return;
                }
            }
        }
    });
    builder.body(StreamBody::new(ReceiverStream(rx)).boxed()).expect("mock response")
}

#[cfg(test)]
mod tests;
