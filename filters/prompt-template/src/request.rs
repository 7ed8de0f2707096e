//! One request: the OpenAPI document, a decorated chat request, or a call of the prompt API (inputs read and
//! checked, the chat request built and sent through the route or a callout, the answer shaped).

use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;
use weir_sdk::prelude::*;

use crate::answer::{self, Failure};
use crate::config::{InputSource, Mode, Prompt, Template, Unknown};
use crate::metrics::Metrics;
use crate::stream::TextStream;
use crate::template;
use crate::vars::{self, Input, Inputs};

/// What this request is to the filter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not its business: untouched.
    #[default]
    Pass,
    /// An ordinary chat request to decorate.
    Decorate,
    /// A call of the prompt API.
    Call,
}

/// The kind of request body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    #[default]
    None,
    Json,
    Form,
}

/// How the response is read.
#[derive(Debug, Default)]
enum Reading {
    /// Untouched.
    #[default]
    Off,
    /// A 2xx answer, held whole, then shaped.
    Answer,
    /// A failed answer (the upstream's status), held whole, then mapped to 502.
    Failed(u16),
    /// A stream, translated as it goes.
    Stream(TextStream),
}

/// One request.
#[derive(Default)]
pub struct PromptRequest {
    prompt: Option<Rc<Prompt>>,
    metrics: Rc<Metrics>,
    role: Role,
    body_kind: BodyKind,
    query: String,
    stream: bool,
    /// This filter answered (its own response callbacks then leave it alone).
    answered: bool,
    reading: Reading,
    /// The response headers are held until the answer is read (`hold_response_headers`).
    holding: bool,
}

impl PromptRequest {
    /// A request of the plugin with `prompt` (`None`: not configured, answered 503).
    pub(crate) fn new(prompt: Option<Rc<Prompt>>, metrics: Rc<Metrics>) -> PromptRequest {
        PromptRequest { prompt, metrics, ..PromptRequest::default() }
    }

    fn reply(&mut self, status: u16, content_type: &str, body: &[u8], details: &str) -> Action {
        self.answered = true;
        let version = self.prompt.as_ref().map(|p| p.version.clone()).unwrap_or_default();
        let headers = [("content-type", content_type), ("x-prompt-template-version", version.as_str())];
        http::send_response_with_details(status, &headers, body, details)
    }

    fn fail(&mut self, failure: &Failure) -> Action {
        self.metrics.failed(failure.status, failure.code);
        if failure.status == 405 {
            self.answered = true;
            let headers = [("content-type", "application/json"), ("allow", "POST")];
            return http::send_response_with_details(405, &headers, &failure.body(), failure.code);
        }
        self.reply(failure.status, "application/json", &failure.body(), failure.code)
    }

    /// The inputs of the request, in the configured precedence.
    fn inputs(&self, prompt: &Prompt, body: &[u8]) -> Result<Inputs, Failure> {
        let mut inputs = Inputs::default();
        for source in &prompt.inputs {
            match source {
                InputSource::Json if self.body_kind == BodyKind::Json && !body.iter().all(u8::is_ascii_whitespace) => {
                    let value: Value = serde_json::from_slice(body)
                        .map_err(|e| Failure::new(400, "invalid_body", format!("the body is not JSON: {e}")))?;
                    let Value::Object(object) = value else {
                        return Err(Failure::new(400, "invalid_body", "the body must be a JSON object of variables"));
                    };
                    inputs.pairs.extend(object.into_iter().map(|(k, v)| (k, Input::Json(v))));
                }
                InputSource::Form if self.body_kind == BodyKind::Form => {
                    let text = std::str::from_utf8(body)
                        .map_err(|_| Failure::new(400, "invalid_body", "the form body is not UTF-8"))?;
                    inputs.pairs.extend(vars::form_pairs(text).into_iter().map(|(k, v)| (k, Input::Text(v))));
                }
                InputSource::Query => {
                    inputs.pairs.extend(vars::form_pairs(&self.query).into_iter().map(|(k, v)| (k, Input::Text(v))));
                }
                _ => {}
            }
        }
        Ok(inputs)
    }

    /// The chat request for this call, or the 400.
    fn build(&self, prompt: &Prompt, template: &Template, body: &[u8]) -> Result<Vec<u8>, Failure> {
        let inputs = self.inputs(prompt, body)?;
        let values = vars::resolve(&template.variables, &inputs, prompt.unknown == Unknown::Reject)
            .map_err(answer::invalid_variables)?;
        Ok(template::chat_request(prompt, template, &values, self.stream))
    }

    /// Sends `chat` as a callout and answers from its answer.
    fn call_out(&mut self, prompt: &Prompt, chat: Vec<u8>) -> Action {
        let Some(target) = &prompt.callout else { return Action::Continue };
        let mut call = HttpCall::new(&target.cluster, "POST", &prompt.chat_path)
            .authority(&target.authority)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(chat)
            .timeout(Duration::from_millis(target.timeout_ms));
        for (name, value) in &target.headers {
            call = call.header(name, value);
        }
        match call.dispatch(|request: &mut PromptRequest, result: CallResult| request.answer_callout(result)) {
            Ok(_) => Action::Pause,
            Err(status) => {
                self.fail(&Failure::new(502, "upstream_error", format!("the callout could not start: {status:?}")))
            }
        }
    }

    fn answer_callout(&mut self, result: CallResult) {
        let Some(prompt) = self.prompt.clone() else { return };
        let shaped = match result {
            Err(failed) => {
                Err(Failure::new(502, "upstream_error", format!("no answer from the provider: {}", failed.message)))
            }
            Ok(response) if !(200..300).contains(&response.status) => {
                Err(answer::upstream_error(response.status, &response.body))
            }
            Ok(response) => answer::shape(&prompt, &response.body),
        };
        match shaped {
            Ok(body) => {
                self.metrics.answered();
                self.reply(200, "application/json", &body, "prompt_answer");
            }
            Err(failure) => {
                self.fail(&failure);
            }
        }
    }

    /// The request headers of a prompt API call.
    fn call_headers(&mut self, prompt: &Prompt, template: &Template, headers: &Headers, end_of_stream: bool) -> Action {
        self.metrics.call();
        if headers.method().as_deref() != Some("POST") {
            return self.fail(&Failure::new(405, "method_not_allowed", "call this API with POST"));
        }
        self.stream = prompt.streaming
            && headers.get("accept").is_some_and(|a| a.to_ascii_lowercase().contains("text/event-stream"));
        let content_type = headers.get("content-type").unwrap_or_default().to_ascii_lowercase();
        self.body_kind = if end_of_stream {
            BodyKind::None
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            BodyKind::Form
        } else if content_type.is_empty() || content_type.contains("json") {
            BodyKind::Json
        } else {
            return self.fail(&Failure::new(
                415,
                "unsupported_media_type",
                format!(
                    "send the inputs as application/json or application/x-www-form-urlencoded, not {content_type:?}"
                ),
            ));
        };
        let allowed = match self.body_kind {
            BodyKind::Json => prompt.inputs.contains(&InputSource::Json),
            BodyKind::Form => prompt.inputs.contains(&InputSource::Form),
            BodyKind::None => true,
        };
        if !allowed {
            return self.fail(&Failure::new(
                415,
                "unsupported_media_type",
                "this API does not read inputs from that body type",
            ));
        }
        if end_of_stream {
            // No body callback will come: the chat request can only go as a callout.
            if prompt.callout.is_some() && !self.stream {
                return match self.build(prompt, template, b"") {
                    Ok(chat) => self.call_out(prompt, chat),
                    Err(failure) => self.fail(&failure),
                };
            }
            return self.fail(&Failure::new(
                411,
                "body_required",
                "send a body (`{}` will do, with the inputs in the query): a request without one cannot carry the chat request upstream",
            ));
        }
        self.role = Role::Call;
        headers.set(":method", "POST");
        headers.set(":path", &prompt.chat_path);
        headers.set("content-type", "application/json");
        headers.set("accept", if self.stream { "text/event-stream" } else { "application/json" });
        headers.set("x-prompt-template-version", &prompt.version);
        headers.remove("content-length");
        // The answer is read: it must come uncompressed.
        headers.remove("accept-encoding");
        Action::Continue
    }
}

impl HttpFilter for PromptRequest {
    fn on_request_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        let Some(prompt) = self.prompt.clone() else {
            return http::send_response(503, &[], b"");
        };
        let full = headers.path().unwrap_or_default();
        let (path, query) = full.split_once('?').unwrap_or((full.as_str(), ""));
        let method = headers.method().unwrap_or_default();
        if let Some((doc_path, document)) = &prompt.openapi {
            if path == doc_path && (method == "GET" || method == "HEAD") {
                return self.reply(200, "application/json", document.to_string().as_bytes(), "prompt_openapi");
            }
        }
        let decorating = !(prompt.prepend.is_empty() && prompt.append.is_empty());
        if decorating && method == "POST" && path == prompt.chat_path {
            if !end_of_stream {
                self.role = Role::Decorate;
                headers.remove("content-length");
            }
            return Action::Continue;
        }
        let Some(template) = &prompt.template else { return Action::Continue };
        self.query = query.to_owned();
        self.call_headers(&prompt, template, &headers, end_of_stream)
    }

    fn on_request_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if self.role == Role::Pass || self.answered {
            return Action::Continue;
        }
        let Some(prompt) = self.prompt.clone() else { return Action::Continue };
        if body.len() > prompt.max_body_bytes {
            let why = format!("the request body is larger than {} bytes", prompt.max_body_bytes);
            return self.fail(&Failure::new(413, "body_too_large", why));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        if self.role == Role::Decorate {
            if let Some(decorated) = template::decorate(&prompt, &body.bytes()) {
                self.metrics.decorated();
                body.replace(&decorated);
            }
            return Action::Continue;
        }
        let Some(template) = &prompt.template else { return Action::Continue };
        let chat = match self.build(&prompt, template, &body.bytes()) {
            Ok(chat) => chat,
            Err(failure) => return self.fail(&failure),
        };
        // A callout cannot wait here: the host lets the body go on once its last callback returns, PAUSE or
        // not. Calls with a body therefore always go through the route.
        body.replace(&chat);
        Action::Continue
    }

    fn on_request_trailers(&mut self, _trailers: Headers) -> Action {
        // The body held for a call was never rewritten (its last callback had `end_of_stream = false`).
        if self.role == Role::Call && !self.answered {
            return self.fail(&Failure::new(400, "invalid_body", "send the inputs without request trailers"));
        }
        Action::Continue
    }

    fn on_response_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        if self.answered || self.role != Role::Call {
            return Action::Continue;
        }
        let Some(prompt) = self.prompt.clone() else { return Action::Continue };
        let status = headers.status().unwrap_or(0);
        let content_type = headers.get("content-type").unwrap_or_default().to_ascii_lowercase();
        if !(200..300).contains(&status) {
            if end_of_stream {
                return self.fail(&answer::upstream_error(status, b""));
            }
            headers.set(":status", "502");
            headers.set("content-type", "application/json");
            headers.remove("content-length");
            self.metrics.failed(502, "upstream_error");
            self.reading = Reading::Failed(status);
        } else if end_of_stream {
            return self.fail(&Failure::new(502, "bad_upstream_response", "the upstream's answer has no body"));
        } else if self.stream && content_type.starts_with("text/event-stream") {
            self.metrics.answered();
            if prompt.mode != Mode::Raw {
                headers.set("content-type", "text/event-stream");
                headers.remove("content-length");
                self.reading = Reading::Stream(TextStream::default());
            }
        } else {
            if prompt.mode != Mode::Raw {
                headers.set("content-type", "application/json");
            }
            headers.remove("content-length");
            self.reading = Reading::Answer;
        }
        headers.remove("content-encoding");
        headers.set("x-prompt-template-version", &prompt.version);
        if prompt.hold_response_headers && matches!(self.reading, Reading::Answer) {
            // The gateway runs the body callbacks while the headers wait (the attachment's
            // `allow_on_headers_stop_iteration`): an answer that breaks the promise becomes a 502, not a reset.
            self.holding = true;
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        if self.answered {
            return Action::Continue;
        }
        let Some(prompt) = self.prompt.clone() else { return Action::Continue };
        match &mut self.reading {
            Reading::Off => Action::Continue,
            Reading::Stream(stream) => {
                let mut out = stream.feed(&body.bytes());
                if end_of_stream {
                    out.extend(stream.finish());
                }
                body.replace(&out);
                Action::Continue
            }
            Reading::Answer if !end_of_stream && self.holding && body.len() > prompt.max_response_bytes => {
                let why = format!("the upstream's answer is larger than {} bytes", prompt.max_response_bytes);
                self.fail(&Failure::new(502, "bad_upstream_response", why))
            }
            Reading::Failed(_) | Reading::Answer if !end_of_stream => {
                if body.len() > prompt.max_response_bytes {
                    log::warn!(
                        "prompt-template: the upstream's answer is larger than {} bytes; stream reset",
                        prompt.max_response_bytes
                    );
                    http::close();
                    return Action::Continue;
                }
                Action::Pause
            }
            Reading::Failed(status) => {
                body.replace(&answer::upstream_error(*status, &body.bytes()).body());
                Action::Continue
            }
            Reading::Answer => match answer::shape(&prompt, &body.bytes()) {
                Ok(shaped) => {
                    self.metrics.answered();
                    body.replace(&shaped);
                    Action::Continue
                }
                // The headers are still held: the answer replaces the upstream's response, status included.
                Err(failure) if self.holding => self.fail(&failure),
                Err(failure) => {
                    // The 200 went out with the response headers: a reset is the only honest answer left
                    // (a call without a body in `upstream.mode: callout` gets a 502 instead).
                    self.metrics.failed(failure.status, failure.code);
                    log::warn!("prompt-template: {} ({}); stream reset", failure.code, failure.message);
                    http::close();
                    Action::Continue
                }
            },
        }
    }

    fn on_response_trailers(&mut self, _trailers: Headers) -> Action {
        // An answer held for shaping never saw its end (the last body callback had `end_of_stream = false`):
        // it must not reach the client unshaped.
        if !self.answered && matches!(self.reading, Reading::Answer | Reading::Failed(_)) {
            log::warn!("prompt-template: an upstream answer with trailers cannot be shaped; stream reset");
            http::close();
        }
        Action::Continue
    }
}
