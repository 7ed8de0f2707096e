//! One request's phases: the chat request is held whole, translated and sent on (directly, or by callout
//! when its path or signature depends on the body); the answer is translated back as it arrives.
//!
//! Weir lets a filter change request headers only in the request-headers callback, so `:path`, `:authority`
//! and credentials are set there, before the body is seen: that works when the provider path does not name
//! the model or the body ([`providers::direct_path`]). Otherwise (Gemini, Azure or Bedrock with several
//! models, Bedrock signed with SigV4) the filter sends the translated request itself by callout to the
//! route's cluster and answers the client with the translated result (a stream then arrives in one piece:
//! the provider's stream endpoint is called and its whole stream translated).

use std::rc::Rc;

use weir_sdk::callout::CallResult;
use weir_sdk::prelude::*;

use crate::aggregate::{events, Aggregator};
use crate::chunks::ChunkWriter;
use crate::config::Provider;
use crate::errors::{client_status, ApiError};
use crate::ir::StreamEvent;
use crate::openai;
use crate::providers::{self, Answer, StreamDecoder};
use crate::Shared;

mod callout;

use callout::LocalAnswer;

/// Client headers that carry credentials: never sent to the provider.
const CLIENT_CREDENTIALS: [&str; 4] = ["authorization", "api-key", "x-api-key", "x-goog-api-key"];

/// One request.
pub struct AdapterRequest {
    shared: Option<Rc<Shared>>,
    exchange: Option<Exchange>,
    /// The filter answered locally: its own response callbacks leave that answer alone.
    local: bool,
    /// Callout mode: the translated answer, once the callout answered (sent when the response headers of
    /// the request the gateway forwarded meanwhile arrive).
    ready: Option<LocalAnswer>,
    /// Callout mode: the response headers are held, waiting for the callout's answer.
    waiting: bool,
    /// The response callbacks started (the request is no longer held).
    response_started: bool,
    /// `hold_headers`: the response headers wait for a JSON answer (or a folded stream), so a malformed one is a 502.
    holding_response: bool,
}

struct Exchange {
    direct: bool,
    /// The request headers are held (`hold_headers`): path and credentials are set from the body
    /// callback, then the request goes on directly.
    held: bool,
    client_stream: bool,
    include_usage: bool,
    answer: Answer,
    response: Mode,
}

/// What the response callbacks do.
enum Mode {
    /// Not decided yet (response headers not seen).
    Pending,
    /// Hold an error body, then map it.
    Error { status: u16, error_type: Option<String> },
    /// Hold a JSON answer, then translate it.
    Json,
    /// Translate a stream chunk by chunk.
    Stream { decoder: Box<StreamDecoder>, writer: ChunkWriter, seen: bool },
    /// Fold a stream into one JSON answer (`fed`: stream bytes so far, bounded by `max_response_bytes`).
    Fold { decoder: Box<StreamDecoder>, aggregator: Aggregator, fed: usize, seen: bool },
    /// A 2xx answer that is not what the provider speaks: a 502 error body.
    Refused(String),
    /// Drop what is left.
    Drain,
}

impl AdapterRequest {
    pub(crate) fn new(shared: Option<Rc<Shared>>) -> AdapterRequest {
        AdapterRequest {
            shared,
            exchange: None,
            local: false,
            ready: None,
            waiting: false,
            response_started: false,
            holding_response: false,
        }
    }

    fn reply(&mut self, error: &ApiError, retry_after: Option<&str>) -> Action {
        self.local = true;
        let mut headers = vec![("content-type", "application/json")];
        if let Some(r) = retry_after {
            headers.push(("retry-after", r));
        }
        http::send_response_with_details(error.status, &headers, &error.to_bytes(), "provider_adapter")
    }

    fn mint_id(shared: &Shared) -> String {
        match property::request_id().filter(|id| !id.is_empty() && id.len() <= 64) {
            Some(id) => format!("chatcmpl-{id}"),
            None => {
                let n = shared.counter.get();
                shared.counter.set(n.wrapping_add(1));
                format!("chatcmpl-{:x}{n:04x}", unix_nanos())
            }
        }
    }

    fn request_body(&mut self, shared: &Shared, body: &Body) -> Action {
        let settings = &shared.settings;
        let mut request = match openai::parse_request(&body.bytes()) {
            Ok(request) => request,
            Err(error) => return self.reply(&error, None),
        };
        request.model = settings.models.map(&request.client_model);
        let Some(exchange) = self.exchange.as_mut() else { return Action::Continue };
        exchange.client_stream = request.stream;
        exchange.include_usage = request.include_usage;
        exchange.answer = Answer {
            id: Self::mint_id(shared),
            created: unix_nanos() / 1_000_000_000,
            model: request.client_model.clone(),
        };
        let outgoing = match providers::encode(settings, &request) {
            Ok(outgoing) => outgoing,
            Err(error) => return self.reply(&error, None),
        };
        if exchange.held {
            // The headers waited for the body (the attachment's allow_on_headers_stop_iteration): they are
            // still writable here, and the request goes on directly with the provider's path and credentials.
            let headers = http::request_headers();
            headers.set(":path", &outgoing.path);
            // As in direct mode; SigV4 signs the host, so a signed request carries it.
            let authority = if settings.aws.is_some() { Some(&settings.host) } else { settings.authority.as_ref() };
            if let Some(authority) = authority {
                headers.set(":authority", authority);
            }
            for (name, value) in callout::upstream_headers(settings, &outgoing) {
                headers.set(&name, &value);
            }
            body.replace(&outgoing.body);
            return Action::Continue;
        }
        if exchange.direct {
            body.replace(&outgoing.body);
            return Action::Continue;
        }
        self.callout(shared, outgoing, body)
    }
}

/// Feeds `bytes` to `decoder` (ending it at the end of the body): the events, with an error event last when the
/// stream is malformed or ended without a single event (a body that is not the provider's stream format).
fn decode(
    decoder: &mut StreamDecoder,
    bytes: &[u8],
    end: bool,
    seen: &mut bool,
    provider: Provider,
) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    let mut result = decoder.feed(bytes, &mut events);
    if result.is_ok() && end {
        result = decoder.finish(&mut events);
    }
    *seen |= events.iter().any(|e| *e != StreamEvent::Done);
    if result.is_ok() && end && !*seen {
        result = Err("the stream ended without a single event".into());
    }
    if let Err(why) = result {
        events.retain(|e| *e != StreamEvent::Done);
        let message = format!("malformed stream from {}: {why}", provider.name());
        events.push(StreamEvent::Error { kind: "bad_gateway".into(), message });
    }
    events
}

/// Whether the response comes from the upstream (`response.code_details` is `via_upstream`; absent on hosts
/// that do not set it).
fn from_upstream() -> bool {
    property::get_bytes(&["response", "code_details"]).is_none_or(|details| details == b"via_upstream")
}

fn unix_nanos() -> u64 {
    weir_sdk::time::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl HttpFilter for AdapterRequest {
    fn on_request_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        let settings = &shared.settings;
        let full = headers.path().unwrap_or_default();
        let path = full.split('?').next().unwrap_or_default();
        let method = headers.method().unwrap_or_default();
        if settings.models_path.as_deref() == Some(path) && method == "GET" {
            self.local = true;
            return http::send_json(200, &settings.models.list(settings.provider.name(), shared.created));
        }
        if path != settings.chat_path {
            return Action::Continue;
        }
        if method != "POST" {
            self.local = true;
            let error = ApiError { status: 405, ..ApiError::bad_request(format!("{path} takes POST")) };
            return http::send_response(
                405,
                &[("content-type", "application/json"), ("allow", "POST")],
                &error.to_bytes(),
            );
        }
        if end_of_stream {
            return self
                .reply(&ApiError::bad_request("the request has no body (a JSON chat request is expected)"), None);
        }
        let length = headers.get("content-length").and_then(|v| v.trim().parse::<usize>().ok());
        if length.is_some_and(|n| n > settings.max_request_bytes) {
            return self.reply(&ApiError::too_large(settings.max_request_bytes), None);
        }
        let direct = providers::direct_path(settings);
        for name in CLIENT_CREDENTIALS.iter().chain(&["content-length", "accept-encoding"]) {
            headers.remove(name);
        }
        if let Some(provider_path) = &direct {
            headers.set(":path", provider_path);
            if let Some(authority) = &settings.authority {
                headers.set(":authority", authority);
            }
            for (name, value) in providers::static_headers(settings) {
                headers.set(&name, &value);
            }
            if let Some(key) = settings.keys.next() {
                let (name, value) = providers::key_header(settings.provider, key);
                headers.set(&name, &value);
            }
        }
        let held = direct.is_none() && settings.hold_headers;
        self.exchange = Some(Exchange {
            direct: direct.is_some() || held,
            held,
            client_stream: false,
            include_usage: false,
            answer: Answer { id: String::new(), created: 0, model: String::new() },
            response: Mode::Pending,
        });
        if held {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_request_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if self.local || self.exchange.is_none() {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if body.len() > shared.settings.max_request_bytes {
            return self.reply(&ApiError::too_large(shared.settings.max_request_bytes), None);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.request_body(&shared, &body)
    }

    fn on_response_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        self.response_started = true;
        if self.local {
            return Action::Continue;
        }
        let (Some(shared), Some(exchange)) = (self.shared.clone(), self.exchange.as_mut()) else {
            return Action::Continue;
        };
        if !from_upstream() {
            // A later filter (or the gateway) answered, not the provider: not ours to translate.
            return Action::Continue;
        }
        if !exchange.direct {
            // Possibly before the request body is done (the upstream may answer the empty forwarded request
            // early): hold it all the same, the callout's answer comes after the body.
            // The response to the request the gateway forwarded in callout mode: replaced by the callout's.
            return match self.ready.take() {
                Some(answer) => self.send(answer),
                None => {
                    self.waiting = true;
                    Action::Pause
                }
            };
        }
        let settings = &shared.settings;
        let status = headers.status().unwrap_or(0);
        headers.remove("content-length");
        if !(200..300).contains(&status) {
            headers.set(":status", &client_status(status).to_string());
            headers.set("content-type", "application/json");
            exchange.response = Mode::Error { status, error_type: headers.get("x-amzn-errortype") };
            return Action::Continue;
        }
        let content_type = headers.get("content-type").unwrap_or_default().to_ascii_lowercase();
        // Gemini and Bedrock are called on their stream endpoints in direct mode.
        let streaming = (content_type.is_empty() && matches!(settings.provider, Provider::Gemini | Provider::Bedrock))
            || content_type.contains("text/event-stream")
            || content_type.contains("ndjson")
            || content_type.contains("eventstream");
        if streaming {
            let decoder = Box::new(StreamDecoder::new(settings, &exchange.answer));
            if exchange.client_stream {
                let a = &exchange.answer;
                let writer = ChunkWriter::new(a.id.clone(), a.created, a.model.clone(), exchange.include_usage);
                exchange.response = Mode::Stream { decoder, writer, seen: false };
                headers.set("content-type", "text/event-stream");
                headers.set("cache-control", "no-cache");
            } else {
                exchange.response = Mode::Fold { decoder, aggregator: Aggregator::default(), fed: 0, seen: false };
                headers.set("content-type", "application/json");
            }
        } else if content_type.is_empty() || content_type.contains("json") {
            exchange.response = Mode::Json;
            headers.set("content-type", if exchange.client_stream { "text/event-stream" } else { "application/json" });
        } else {
            headers.set(":status", "502");
            headers.set("content-type", "application/json");
            exchange.response = Mode::Refused(format!("content-type {content_type:?} instead of JSON or a stream"));
        }
        // `hold_headers` (the attachment lets this filter hold headers while its body callbacks run): an answer read
        // whole keeps its headers until it is translated, so a malformed one is answered 502, not 200, whatever
        // the provider.
        if settings.hold_headers && matches!(exchange.response, Mode::Json | Mode::Fold { .. }) {
            self.holding_response = true;
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if self.local {
            return Action::Continue;
        }
        let (Some(shared), Some(exchange)) = (self.shared.clone(), self.exchange.as_mut()) else {
            return Action::Continue;
        };
        let settings = &shared.settings;
        let provider = settings.provider;
        let held = matches!(exchange.response, Mode::Error { .. } | Mode::Json | Mode::Refused(_));
        if held && !end_of_stream {
            if body.len() > settings.max_response_bytes {
                let error = ApiError::bad_gateway(
                    provider.name(),
                    format!("the answer is larger than {} bytes (max_response_bytes)", settings.max_response_bytes),
                );
                if self.holding_response {
                    return self.reply(&error, None);
                }
                body.replace(&error.to_bytes());
                exchange.response = Mode::Drain;
                return Action::Continue;
            }
            return Action::Pause;
        }
        let mut out = Vec::new();
        match &mut exchange.response {
            Mode::Pending => return Action::Continue,
            Mode::Drain => {}
            Mode::Error { status, error_type } => {
                let error = providers::decode_error(provider, *status, error_type.as_deref(), &body.bytes());
                out = error.to_bytes();
            }
            Mode::Refused(why) => out = ApiError::bad_gateway(provider.name(), why.as_str()).to_bytes(),
            Mode::Json => match providers::decode_response(provider, &body.bytes(), &exchange.answer) {
                Ok(decoded) if exchange.client_stream => {
                    let a = &exchange.answer;
                    let mut writer = ChunkWriter::new(a.id.clone(), a.created, a.model.clone(), exchange.include_usage);
                    for event in events(&decoded) {
                        writer.write(event, &mut out);
                    }
                }
                Ok(decoded) => out = openai::write_response(&decoded).to_string().into_bytes(),
                Err(error) if self.holding_response => return self.reply(&error, None),
                Err(error) => out = error.to_bytes(),
            },
            Mode::Stream { decoder, writer, seen } => {
                for event in decode(decoder, &body.bytes(), end_of_stream, seen, provider) {
                    writer.write(event, &mut out);
                }
                if end_of_stream {
                    writer.end(&mut out);
                }
            }
            Mode::Fold { decoder, aggregator, fed, seen } => {
                let bytes = body.bytes();
                *fed += bytes.len();
                if *fed > settings.max_response_bytes {
                    let message =
                        format!("the stream is larger than {} bytes (max_response_bytes)", settings.max_response_bytes);
                    aggregator.push(StreamEvent::Error { kind: "bad_gateway".into(), message });
                } else {
                    for event in decode(decoder, &bytes, end_of_stream, seen, provider) {
                        aggregator.push(event);
                    }
                }
                if end_of_stream || aggregator.error.is_some() {
                    let folded = std::mem::take(aggregator);
                    if let (Some((kind, message)), true) = (&folded.error, self.holding_response) {
                        return self.reply(&ApiError::upstream(502, kind.as_str(), message.as_str()), None);
                    }
                    out = match &folded.error {
                        Some((kind, message)) => ApiError::upstream(502, kind.as_str(), message.as_str()).to_bytes(),
                        None => {
                            let a = &exchange.answer;
                            openai::write_response(&folded.finish(&a.id, a.created, &a.model)).to_string().into_bytes()
                        }
                    };
                    exchange.response = Mode::Drain;
                }
            }
        }
        if held {
            exchange.response = Mode::Drain;
        }
        body.replace(&out);
        Action::Continue
    }

    fn on_http_call_response(&mut self, _token: weir_sdk::callout::Token, _response: CallResult) {}
}
