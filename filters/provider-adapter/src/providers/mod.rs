//! The providers: each encodes a [`Request`] into its API, decodes its answers, streams and errors. This
//! module picks the provider and holds what they share.

use serde_json::Value;

use crate::config::{Provider, Settings};
use crate::errors::ApiError;
use crate::ir::{Request, Response, StreamEvent};

/// A stream decoder over server-sent events: the framing (complete events out of body chunks, bounded) is shared;
/// each provider turns one event's data into stream events.
pub trait SseStream {
    /// The stream's SSE parser.
    fn parser(&mut self) -> &mut crate::sse::Parser;

    /// One complete event's data.
    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), String>;

    /// Feeds a chunk.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let mut events = Vec::new();
        self.parser().feed(chunk, |e| events.push(e)).map_err(|e| e.to_string())?;
        events.iter().try_for_each(|event| self.event(&event.data, out))
    }

    /// The body ended: what it completes, then the end of the stream.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        let mut events = Vec::new();
        self.parser().finish(|e| events.push(e));
        events.iter().try_for_each(|event| self.event(&event.data, out))?;
        out.push(StreamEvent::Done);
        Ok(())
    }
}

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod ollama;
pub mod openai_compat;

/// The request as it goes to the provider (credentials are added by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// `:path`, query included.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
}

/// What a decoded answer carries whatever the provider says: the stream's id when the provider gives none,
/// the time, and the model name the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The id to use when the provider gives none (`chatcmpl-...`).
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The client's model name.
    pub model: String,
}

/// Encodes `request` for the configured provider.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    if request.stream && request.n.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid("n", "n > 1 cannot be streamed through the adapter"));
    }
    match settings.provider {
        Provider::Openai | Provider::OpenaiCompatible | Provider::Mistral => openai_compat::encode(settings, request),
        Provider::Azure => azure::encode(settings, request),
        Provider::Anthropic => anthropic::encode(settings, request),
        Provider::Gemini => gemini::encode(settings, request),
        Provider::Bedrock => bedrock::encode(settings, request),
        Provider::Ollama => ollama::encode(settings, request),
    }
}

/// The model every request goes to, when the mapping sends every name to one (`{"*": "<model>"}` alone).
pub fn fixed_model(settings: &Settings) -> Option<&str> {
    settings.models.fixed()
}

/// The provider path when it does not depend on the request body, so the request goes upstream directly
/// (headers are writable only in the request-headers callback); `None`: the filter sends it by callout.
/// Gemini and Bedrock always use their streaming endpoint directly (a non-stream client gets the folded
/// answer), and Bedrock signed with SigV4 always goes by callout (the signature covers the body).
pub fn direct_path(settings: &Settings) -> Option<String> {
    let prefix = &settings.prefix;
    match settings.provider {
        Provider::Openai | Provider::OpenaiCompatible | Provider::Mistral => Some(format!("{prefix}/chat/completions")),
        Provider::Anthropic => Some(format!("{prefix}/v1/messages")),
        Provider::Ollama => Some(format!("{prefix}/api/chat")),
        Provider::Azure => {
            let deployment = settings.azure.deployment.as_deref().or_else(|| fixed_model(settings))?;
            Some(azure::path(settings, deployment))
        }
        Provider::Gemini => {
            let model = encode_segment(fixed_model(settings)?);
            Some(format!("{prefix}/models/{model}:streamGenerateContent?alt=sse"))
        }
        Provider::Bedrock => {
            if settings.aws.is_some() {
                return None;
            }
            Some(format!("{prefix}/model/{}/converse-stream", encode_segment(fixed_model(settings)?)))
        }
    }
}

/// Headers every request to the provider carries besides credentials.
pub fn static_headers(settings: &Settings) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if settings.provider == Provider::Anthropic {
        headers.push(("anthropic-version".into(), settings.anthropic.version.clone()));
        if let Some(beta) = &settings.anthropic.beta {
            headers.push(("anthropic-beta".into(), beta.clone()));
        }
    }
    headers
}

/// The credential header for `key` (`None` for Bedrock with SigV4, signed separately).
pub fn key_header(provider: Provider, key: &str) -> (String, String) {
    match provider {
        Provider::Azure => ("api-key".into(), key.into()),
        Provider::Anthropic => ("x-api-key".into(), key.into()),
        Provider::Gemini => ("x-goog-api-key".into(), key.into()),
        _ => ("authorization".into(), format!("Bearer {key}")),
    }
}

/// Decodes a non-stream 2xx answer.
pub fn decode_response(provider: Provider, body: &[u8], answer: &Answer) -> Result<Response, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_gateway(provider.name(), format!("not JSON ({e})")))?;
    let decoded = match provider {
        Provider::Openai | Provider::OpenaiCompatible | Provider::Mistral | Provider::Azure => {
            openai_compat::decode_response(&value, answer)
        }
        Provider::Anthropic => anthropic::decode_response(&value, answer),
        Provider::Gemini => gemini::decode_response(&value, answer),
        Provider::Bedrock => bedrock::decode_response(&value, answer),
        Provider::Ollama => ollama::decode_response(&value, answer),
    };
    decoded.map_err(|why| ApiError::bad_gateway(provider.name(), why))
}

/// Maps a provider's error answer (`status` not 2xx) to OpenAI's error JSON and the client's status.
/// `error_type` is Bedrock's `x-amzn-errortype` header.
pub fn decode_error(provider: Provider, status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let mapped = value.as_ref().and_then(|value| match provider {
        Provider::Anthropic => anthropic::decode_error(status, value),
        Provider::Gemini => gemini::decode_error(status, value),
        Provider::Bedrock => bedrock::decode_error(status, error_type, value),
        Provider::Ollama => ollama::decode_error(status, value),
        _ => openai_compat::decode_error(status, value),
    });
    mapped.unwrap_or_else(|| {
        if provider == Provider::Bedrock {
            if let Some(kind) = error_type {
                return bedrock::error_from_type(status, kind, &String::from_utf8_lossy(body));
            }
        }
        crate::errors::generic(status, body)
    })
}

/// A provider's stream, decoded incrementally into [`StreamEvent`]s.
#[derive(Debug)]
pub enum StreamDecoder {
    /// OpenAI-family SSE.
    OpenAi(openai_compat::Stream),
    /// Anthropic's named SSE events.
    Anthropic(anthropic::Stream),
    /// Gemini's SSE of whole responses.
    Gemini(gemini::Stream),
    /// Bedrock's event stream.
    Bedrock(bedrock::Stream),
    /// Ollama's NDJSON.
    Ollama(ollama::Stream),
}

impl StreamDecoder {
    /// The decoder for `settings`' provider; `answer` gives ids to providers that have none.
    pub fn new(settings: &Settings, answer: &Answer) -> StreamDecoder {
        let max = settings.max_event_bytes;
        match settings.provider {
            Provider::Openai | Provider::OpenaiCompatible | Provider::Mistral | Provider::Azure => {
                StreamDecoder::OpenAi(openai_compat::Stream::new(max))
            }
            Provider::Anthropic => StreamDecoder::Anthropic(anthropic::Stream::new(max)),
            Provider::Gemini => StreamDecoder::Gemini(gemini::Stream::new(max, answer.id.clone())),
            Provider::Bedrock => StreamDecoder::Bedrock(bedrock::Stream::new(max)),
            Provider::Ollama => StreamDecoder::Ollama(ollama::Stream::new(max, answer.id.clone())),
        }
    }

    /// Feeds a body chunk; the events it completes go to `out`. An error ends the stream (the caller writes
    /// it as an error event).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), String> {
        match self {
            StreamDecoder::OpenAi(s) => s.feed(chunk, out),
            StreamDecoder::Anthropic(s) => s.feed(chunk, out),
            StreamDecoder::Gemini(s) => s.feed(chunk, out),
            StreamDecoder::Bedrock(s) => s.feed(chunk, out),
            StreamDecoder::Ollama(s) => s.feed(chunk, out),
        }
    }

    /// The body ended: whatever is left, then [`StreamEvent::Done`].
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), String> {
        match self {
            StreamDecoder::OpenAi(s) => s.finish(out),
            StreamDecoder::Anthropic(s) => s.finish(out),
            StreamDecoder::Gemini(s) => s.finish(out),
            StreamDecoder::Bedrock(s) => s.finish(out),
            StreamDecoder::Ollama(s) => s.finish(out),
        }
    }
}

/// A field the provider cannot honour: dropped, or a 400 in strict mode.
pub fn unsupported(settings: &Settings, present: bool, path: &str) -> Result<(), ApiError> {
    if present && settings.strict {
        return Err(ApiError::invalid(
            path,
            format!("is not supported by provider {:?} (strict mode)", settings.provider.name()),
        ));
    }
    Ok(())
}

/// Refuses the extra OpenAI fields the representation does not model (non-OpenAI providers), in strict mode.
pub fn refuse_extra(settings: &Settings, request: &Request) -> Result<(), ApiError> {
    if let Some(key) = request.extra.keys().next() {
        unsupported(settings, true, key)?;
    }
    Ok(())
}

/// Parses a tool call's `arguments` (a JSON text) into a JSON object, or a 400 naming the call.
pub fn parse_arguments(arguments: &str, path: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::invalid(path, "must be a JSON object text")),
        Err(e) => Err(ApiError::invalid(path, format!("is not valid JSON ({e})"))),
    }
}

/// A field as a u64 (0 when absent).
pub fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Percent-encodes a path segment (a model id with `:` or `/`).
pub fn encode_segment(segment: &str) -> String {
    crate::sigv4::uri_encode(segment, false)
}

/// A deterministic tool-call id for providers that give none: `call_<stem>_<n>`.
pub fn minted_call_id(stem: &str, n: u32) -> String {
    let stem: String =
        stem.chars().rev().filter(char::is_ascii_alphanumeric).take(12).collect::<Vec<_>>().into_iter().rev().collect();
    format!("call_{stem}_{n}")
}

/// Whether a tool result reports a failure: JSON text of an object with an `error` key (as Envoy AI Gateway
/// reads it), sent as Anthropic's `is_error` and Bedrock's `status: "error"`.
pub fn is_tool_error(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("error").is_some_and(|e| !e.is_null()))
}
