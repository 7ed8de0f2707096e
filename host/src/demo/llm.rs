//! The demo LLM upstream: what `weir serve` with no `--config` starts so the LLM routes answer with no API key.
//!
//! A small HTTP/1.1 server on 127.0.0.1 that speaks the provider protocols as the real providers do, JSON and
//! server-sent events alike, and answers deterministically:
//!
//! | endpoint | protocol |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI Chat Completions (`openai.rs`) |
//! | `POST /v1/messages` | Anthropic Messages (`anthropic.rs`) |
//! | `GET /v1/models` | OpenAI model list: `demo-gpt`, `demo-claude` |
//!
//! Rules, so docs and tests can predict every byte:
//!
//! - the reply is [`reply_to`] of the last `user` message's text (its string content, or its `text` parts
//!   joined by a space); other messages, `tools` and sampling parameters do not change it;
//! - tokens are whitespace-separated words: the prompt's are the words of every message's text (and of the
//!   Anthropic `system`), the completion's the words of the reply sent; a max-tokens limit below the reply's
//!   word count cuts the reply to that many words (`finish_reason: "length"`, `stop_reason: "max_tokens"`);
//! - ids are the protocol's prefix (`chatcmpl-demo-`, `msg_demo_`) and the FNV-1a hash of the request body in
//!   hex; `created` is always [`CREATED`];
//! - a stream sends one event per word, the word followed by a space but for the last one, 2 ms apart;
//! - `x-demo-fail: 429|500|503` answers that status in the protocol's error shape (429 with `retry-after: 1`);
//! - errors use each protocol's error shape: 400 for a body that is not JSON or lacks a required field, 404 for
//!   an unknown path, 405 for a wrong method, 413 for a body over [`MAX_BODY`].

mod anthropic;
mod openai;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The `created` timestamp of every answer (2026-01-01T00:00:00Z), fixed so answers are deterministic.
pub const CREATED: u64 = 1_767_225_600;

/// The largest request body accepted (1 MiB); larger ones get 413.
pub const MAX_BODY: usize = 1 << 20;

/// The models `GET /v1/models` lists.
pub const MODELS: [&str; 2] = ["demo-gpt", "demo-claude"];

/// How many characters of the prompt the reply quotes.
const SNIPPET_CHARS: usize = 60;

/// The pause between two events of a stream, so a client sees it arrive in pieces.
const EVENT_GAP: Duration = Duration::from_millis(2);

/// The reply to an empty prompt (no user message, or one with no text).
const EMPTY_REPLY: &str = "Demo answer: there was no user message to answer. Weir routed this through its filters.";

/// A running demo LLM server; stops when dropped (or with `stop`).
#[derive(Debug)]
pub struct DemoLlm {
    /// The bound address.
    addr: SocketAddr,
    /// Tells the server to stop accepting (dropping it does too).
    shutdown: Option<oneshot::Sender<()>>,
    /// The server thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DemoLlm {
    /// Binds `addr` (port 0: any free port) and serves on its own thread (a tokio current-thread runtime).
    pub fn start(addr: SocketAddr) -> std::io::Result<DemoLlm> {
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            let _entered = rt.enter();
            tokio::net::TcpListener::from_std(socket)?
        };
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("weir-demo-llm".into())
            .spawn(move || rt.block_on(serve(listener, stopped)))?;
        Ok(DemoLlm { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and joins the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Signals the thread and waits for it; open connections end with its runtime.
    fn halt(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DemoLlm {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The reply text the demo gives to `prompt` (the last user message's text), public so docs/tests can predict it.
///
/// The prompt's whitespace runs become single spaces; its first 60 characters are quoted (with `…` when it was
/// longer): `Demo answer to: "<prompt>". Weir routed this through its filters.` An empty prompt gets a fixed
/// sentence. Words in the reply are separated by exactly one space.
pub fn reply_to(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    if words.is_empty() {
        return EMPTY_REPLY.to_owned();
    }
    let joined = words.join(" ");
    let mut snippet: String = joined.chars().take(SNIPPET_CHARS).collect();
    if snippet.len() < joined.len() {
        snippet.truncate(snippet.trim_end().len());
        snippet.push('…');
    }
    format!("Demo answer to: \"{snippet}\". Weir routed this through its filters.")
}

/// The number of whitespace-separated words of `text`: the demo's token count.
fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The text of a message `content` (or Anthropic `system`): a string, or the `text` of its `{"type":"text"}`
/// parts joined by a space; anything else has none.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The text of the last message whose `role` is `user`, empty when there is none.
fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| text_of(m.get("content")))
        .unwrap_or_default()
}

/// Whether every message is an object with a string `role`.
fn well_formed(messages: &[Value]) -> bool {
    messages.iter().all(|m| m.get("role").is_some_and(Value::is_string))
}

/// A max-tokens field: absent or null is no limit, a positive integer a limit, anything else an error.
fn token_limit(value: Option<&Value>) -> Result<Option<u64>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().filter(|n| *n >= 1).map(Some).ok_or(()),
    }
}

/// What the demo answers, before a protocol shapes it.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    /// The stream's text deltas: one per word, each but the last followed by a space.
    deltas: Vec<String>,
    /// The text sent: the deltas concatenated.
    text: String,
    /// Words of the prompt.
    prompt_tokens: u64,
    /// Words of the text sent.
    completion_tokens: u64,
    /// Whether the limit cut the reply.
    truncated: bool,
}

/// The answer to `prompt`, cut to `limit` words.
fn answer(prompt: &str, prompt_tokens: u64, limit: Option<u64>) -> Answer {
    let reply = reply_to(prompt);
    let all: Vec<&str> = reply.split_whitespace().collect();
    let keep = limit.map_or(all.len(), |n| usize::try_from(n).unwrap_or(usize::MAX).min(all.len()));
    let kept = &all[..keep];
    let deltas: Vec<String> = kept
        .iter()
        .enumerate()
        .map(|(i, w)| if i + 1 < kept.len() { format!("{w} ") } else { (*w).to_owned() })
        .collect();
    Answer { text: deltas.concat(), prompt_tokens, completion_tokens: keep as u64, truncated: keep < all.len(), deltas }
}

/// The FNV-1a 64-bit hash of `bytes` in hex: the deterministic part of answer ids.
fn hash_hex(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// A protocol's successful answer.
#[derive(Debug)]
enum Reply {
    /// A JSON document, serialized.
    Json(String),
    /// Server-sent events, each complete with its blank line.
    Events(Vec<String>),
}

/// Which provider's shapes a response takes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    /// OpenAI's.
    OpenAi,
    /// Anthropic's.
    Anthropic,
}

impl Protocol {
    /// The protocol's error document for `status`.
    fn error(self, status: StatusCode, message: &str) -> Response<DemoBody> {
        let body = match self {
            Protocol::OpenAi => openai::error_body(status, message),
            Protocol::Anthropic => anthropic::error_body(status, message),
        };
        json_response(status, body)
    }
}

/// The endpoints served.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/messages`.
    Messages,
    /// `GET /v1/models`.
    Models,
}

impl Endpoint {
    /// The endpoint at `path`.
    fn at(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/chat/completions" => Some(Endpoint::Chat),
            "/v1/messages" => Some(Endpoint::Messages),
            "/v1/models" => Some(Endpoint::Models),
            _ => None,
        }
    }

    /// The one method it answers.
    fn method(self) -> &'static str {
        match self {
            Endpoint::Models => "GET",
            Endpoint::Chat | Endpoint::Messages => "POST",
        }
    }
}

/// The protocol whose shapes answer `path`: Anthropic's under `/v1/messages`, OpenAI's elsewhere.
fn protocol_of(path: &str) -> Protocol {
    if path.starts_with("/v1/messages") {
        Protocol::Anthropic
    } else {
        Protocol::OpenAi
    }
}

/// A response body: a whole document, or a stream of events.
type DemoBody = Either<Full<Bytes>, EventBody>;

/// A body fed by a channel, one frame per event, so each event is flushed as its own chunk.
#[derive(Debug)]
struct EventBody {
    /// The events, in order; the body ends when the sender does.
    rx: mpsc::Receiver<Bytes>,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// `doc` as JSON, its keys in the order its type declares them (a `Value`'s come sorted).
fn to_json(doc: &impl Serialize) -> String {
    serde_json::to_string(doc).unwrap_or_default()
}

/// A JSON response carrying `body`.
fn json_response(status: StatusCode, body: String) -> Response<DemoBody> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A `text/event-stream` response sending `events` one by one, [`EVENT_GAP`] apart, from a task of its own.
fn events_response(events: Vec<String>) -> Response<DemoBody> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for (i, event) in events.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(EVENT_GAP).await;
            }
            if tx.send(Bytes::from(event)).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(Either::Right(EventBody { rx }));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Accepts connections until `stopped` fires (or its sender is dropped).
async fn serve(listener: tokio::net::TcpListener, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req| async { Ok::<_, Infallible>(handle(req).await) });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = &mut stopped => return,
        }
    }
}

/// What the request log line reports beyond the path.
#[derive(Debug, Default)]
struct Seen {
    /// The request's `model`, once its body was read.
    model: Option<String>,
    /// Whether it asked for a stream.
    stream: bool,
}

/// Answers one request and logs it.
async fn handle<B>(req: Request<B>) -> Response<DemoBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_owned();
    let mut seen = Seen::default();
    let resp = route(req, &mut seen).await;
    tracing::debug!(
        path = %path,
        model = seen.model.as_deref().unwrap_or("-"),
        stream = seen.stream,
        status = resp.status().as_u16(),
        "demo llm request"
    );
    resp
}

/// Answers one request, noting in `seen` what the log line reports.
async fn route<B>(req: Request<B>, seen: &mut Seen) -> Response<DemoBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path();
    let protocol = protocol_of(path);
    let Some(endpoint) = Endpoint::at(path) else {
        let message = format!(
            "Invalid URL ({} {path}); the demo serves /v1/chat/completions, /v1/messages and /v1/models",
            req.method()
        );
        return protocol.error(StatusCode::NOT_FOUND, &message);
    };
    if req.method().as_str() != endpoint.method() {
        let message = format!("{path} accepts only {}", endpoint.method());
        let mut resp = protocol.error(StatusCode::METHOD_NOT_ALLOWED, &message);
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(endpoint.method()));
        return resp;
    }
    if let Some(resp) = demo_fail(req.headers(), protocol) {
        return resp;
    }
    if endpoint == Endpoint::Models {
        return json_response(StatusCode::OK, models());
    }
    let body = match read_body(req, protocol).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        let message = "We could not parse the JSON body of your request: the API expects a JSON payload.";
        return protocol.error(StatusCode::BAD_REQUEST, message);
    };
    seen.model = request.get("model").and_then(Value::as_str).map(str::to_owned);
    seen.stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let hash = hash_hex(&body);
    let reply = match endpoint {
        Endpoint::Chat => openai::respond(&request, &hash),
        _ => anthropic::respond(&request, &hash),
    };
    match reply {
        Ok(Reply::Json(doc)) => json_response(StatusCode::OK, doc),
        Ok(Reply::Events(events)) => events_response(events),
        Err(message) => protocol.error(StatusCode::BAD_REQUEST, &message),
    }
}

/// The failure `x-demo-fail` asks for: its status in the protocol's error shape, 400 for a value it does not
/// know; `None` without the header.
fn demo_fail(headers: &HeaderMap, protocol: Protocol) -> Option<Response<DemoBody>> {
    let value = headers.get("x-demo-fail")?;
    let status = match value.to_str().map(str::trim) {
        Ok("429") => StatusCode::TOO_MANY_REQUESTS,
        Ok("500") => StatusCode::INTERNAL_SERVER_ERROR,
        Ok("503") => StatusCode::SERVICE_UNAVAILABLE,
        _ => return Some(protocol.error(StatusCode::BAD_REQUEST, "x-demo-fail must be 429, 500 or 503")),
    };
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Rate limit reached (the demo was asked to fail with x-demo-fail: 429).",
        StatusCode::INTERNAL_SERVER_ERROR => {
            "Internal server error (the demo was asked to fail with x-demo-fail: 500)."
        }
        _ => "Overloaded (the demo was asked to fail with x-demo-fail: 503).",
    };
    let mut resp = protocol.error(status, message);
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Some(resp)
}

/// The whole request body, or the protocol's 413 when it is over [`MAX_BODY`] (400 when it cannot be read).
async fn read_body<B>(req: Request<B>, protocol: Protocol) -> Result<Bytes, Response<DemoBody>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || protocol.error(StatusCode::PAYLOAD_TOO_LARGE, "Request body exceeds the demo's 1 MiB limit.");
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(protocol.error(StatusCode::BAD_REQUEST, &format!("could not read the request body: {e}"))),
    }
}

/// `GET /v1/models`: an OpenAI model list.
#[derive(Debug, Serialize)]
struct ModelList {
    /// `list`.
    object: &'static str,
    /// The models.
    data: Vec<Model>,
}

/// One model of the list.
#[derive(Debug, Serialize)]
struct Model {
    /// Its name.
    id: &'static str,
    /// `model`.
    object: &'static str,
    /// [`CREATED`].
    created: u64,
    /// `weir-demo`.
    owned_by: &'static str,
}

/// The model list of [`MODELS`].
fn models() -> String {
    let data = MODELS.iter().map(|id| Model { id, object: "model", created: CREATED, owned_by: "weir-demo" }).collect();
    to_json(&ModelList { object: "list", data })
}
