//! The configuration (the attachment's `"configuration"`), parsed by serde, then checked and compiled by
//! [`Config::compile`] into a [`Prompt`]. `filters/prompt-template/README.md` documents every field.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::schema;
use crate::template::{self, Message};
use crate::vars::{self, Variable};

/// The most variables one template may declare.
pub const MAX_VARIABLES: usize = 64;
/// The most messages a template (or a decorator list) may have.
pub const MAX_MESSAGES: usize = 32;

/// The filter's configuration, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The template's version, reported in `x-prompt-template-version` and the OpenAPI document.
    #[serde(default = "default_version")]
    pub version: String,
    /// The template's messages (`role` and `content` with `{{name}}` placeholders); none: decorators only.
    #[serde(default)]
    pub messages: Vec<MessageConfig>,
    /// The variables, by name.
    #[serde(default)]
    pub variables: BTreeMap<String, vars::VariableConfig>,
    /// The model the chat request names.
    pub model: Option<String>,
    /// Sampling parameters copied into the chat request (`temperature`, `max_tokens`, ...).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// What the client gets back.
    #[serde(default)]
    pub output: OutputConfig,
    /// Where inputs are read from, in order of precedence.
    #[serde(default = "default_inputs")]
    pub inputs: Vec<InputSource>,
    /// Input fields that are not declared variables: `reject` (400) or `ignore`.
    #[serde(default)]
    pub unknown_inputs: Unknown,
    /// Whether a client may ask for a stream (`accept: text/event-stream`).
    #[serde(default = "yes")]
    pub streaming: bool,
    /// The upstream path of chat completions.
    #[serde(default = "default_chat_path")]
    pub chat_path: String,
    /// The largest request body read.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The largest upstream answer buffered.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// Hold the response headers until the answer is read, so a broken promise is a 502 (attach with
    /// `allow_on_headers_stop_iteration: true`, or the response waits for nothing).
    #[serde(default)]
    pub hold_response_headers: bool,
    /// How the chat request reaches the model.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// The generated OpenAPI document.
    pub openapi: Option<OpenApiConfig>,
    /// Messages added to ordinary chat requests on the route.
    pub decorators: Option<DecoratorsConfig>,
}

fn default_version() -> String {
    "1".into()
}
fn default_inputs() -> Vec<InputSource> {
    vec![InputSource::Json, InputSource::Form, InputSource::Query]
}
fn yes() -> bool {
    true
}
fn default_chat_path() -> String {
    "/v1/chat/completions".into()
}
fn default_max_body() -> usize {
    64 << 10
}
fn default_max_response() -> usize {
    4 << 20
}

/// One message as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// `system`, `user`, `assistant` or `developer`.
    pub role: String,
    /// The text, with `{{name}}` placeholders in templates.
    pub content: String,
}

/// Where an input may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSource {
    /// A JSON object body (`content-type: application/json`).
    Json,
    /// A form body (`application/x-www-form-urlencoded`).
    Form,
    /// The query string.
    Query,
}

/// What to do with inputs that are not variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// 400 `invalid_variables`, code `unknown_variable`.
    #[default]
    Reject,
    /// Leave them out.
    Ignore,
}

/// The output mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The provider's answer as it is.
    Raw,
    /// The answer's text under a field.
    #[default]
    Text,
    /// The answer parsed as JSON.
    Json,
}

/// What the client gets back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// `raw`, `text` (default) or `json`.
    #[serde(default)]
    pub mode: Mode,
    /// The field holding the answer: `text` mode (default `"text"`); `json` mode (default: none, the parsed
    /// value is the body).
    pub field: Option<String>,
    /// `json` mode: the JSON Schema the answer must meet, given to the model as `response_format`.
    pub schema: Option<Value>,
    /// `json` mode: the schema's name in `response_format.json_schema.name`.
    #[serde(default = "default_schema_name")]
    pub schema_name: String,
    /// `json` mode: `response_format.json_schema.strict`.
    #[serde(default)]
    pub strict: bool,
}

fn default_schema_name() -> String {
    "output".into()
}

/// How the chat request reaches the model.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `route` (default): the rewritten request goes on through the chain and the route's cluster.
    /// `callout`: a call without a body (inputs in the query) is answered from an HTTP callout to `cluster`,
    /// so every status is exact; calls with a body still go through the route.
    #[serde(default)]
    pub mode: UpstreamMode,
    /// `callout` mode: the cluster.
    pub cluster: Option<String>,
    /// `callout` mode: the `:authority` (default: the cluster name).
    pub authority: Option<String>,
    /// `callout` mode: the timeout.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// `callout` mode: headers sent with the callout (e.g. `authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout() -> u64 {
    60_000
}

/// See [`UpstreamConfig::mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamMode {
    /// Through the route.
    #[default]
    Route,
    /// Through a callout.
    Callout,
}

/// The generated OpenAPI document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiConfig {
    /// Where `GET` serves the document.
    pub path: String,
    /// The API's public path, as clients call it.
    pub api_path: String,
    /// `info.title`.
    #[serde(default = "default_title")]
    pub title: String,
    /// `info.description`.
    #[serde(default)]
    pub description: String,
}

fn default_title() -> String {
    "Prompt API".into()
}

/// Messages added to ordinary chat requests.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoratorsConfig {
    /// Put before the request's messages.
    #[serde(default)]
    pub prepend: Vec<MessageConfig>,
    /// Put after them.
    #[serde(default)]
    pub append: Vec<MessageConfig>,
}

/// The compiled template (absent for a decorators-only attachment).
#[derive(Debug)]
pub struct Template {
    /// Its messages, split at placeholders.
    pub messages: Vec<Message>,
    /// Its variables, in name order.
    pub variables: Vec<Variable>,
    /// The model.
    pub model: String,
    /// The sampling parameters.
    pub parameters: Map<String, Value>,
}

/// The callout target (`upstream.mode: callout`).
#[derive(Debug, Clone)]
pub struct Callout {
    /// The cluster.
    pub cluster: String,
    /// The authority.
    pub authority: String,
    /// The timeout.
    pub timeout_ms: u64,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// Everything the filter needs, checked.
#[derive(Debug)]
pub struct Prompt {
    /// The template, if any.
    pub template: Option<Template>,
    /// The version.
    pub version: String,
    /// The first 16 hex digits of the SHA-256 of the template (messages, variables, model, parameters, output).
    pub digest: String,
    /// The output mode.
    pub mode: Mode,
    /// The answer's field (`None` in `json` mode without one, and in `raw` mode).
    pub field: Option<String>,
    /// `json` mode: the schema.
    pub schema: Option<Value>,
    /// `json` mode: the `response_format` sent.
    pub response_format: Option<Value>,
    /// The input sources, by precedence.
    pub inputs: Vec<InputSource>,
    /// What to do with unknown inputs.
    pub unknown: Unknown,
    /// Whether streams may be asked for.
    pub streaming: bool,
    /// The chat path.
    pub chat_path: String,
    /// The body limit.
    pub max_body_bytes: usize,
    /// The answer limit.
    pub max_response_bytes: usize,
    /// Hold the response headers until the answer is read.
    pub hold_response_headers: bool,
    /// The callout, in callout mode.
    pub callout: Option<Callout>,
    /// The OpenAPI settings and the document, generated once.
    pub openapi: Option<(String, Value)>,
    /// Messages to prepend to chat requests.
    pub prepend: Vec<Value>,
    /// Messages to append to chat requests.
    pub append: Vec<Value>,
}

/// Parameters the filter sets itself.
const RESERVED_PARAMETERS: [&str; 6] = ["model", "messages", "stream", "stream_options", "response_format", "n"];
const ROLES: [&str; 4] = ["system", "developer", "user", "assistant"];

fn check_role(role: &str, at: &str) -> Result<(), String> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(format!("`{at}.role` {role:?} is not one of system, developer, user, assistant"))
    }
}

fn check_path(path: &str, at: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.contains(['?', '#', ' ']) {
        Ok(())
    } else {
        Err(format!("`{at}` {path:?} must be a path starting with `/`, without a query"))
    }
}

fn static_messages(list: &[MessageConfig], at: &str) -> Result<Vec<Value>, String> {
    if list.len() > MAX_MESSAGES {
        return Err(format!("`{at}` has more than {MAX_MESSAGES} messages"));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            check_role(&m.role, &format!("{at}[{i}]"))?;
            Ok(serde_json::json!({"role": m.role, "content": m.content}))
        })
        .collect()
}

impl Config {
    /// Checks every field and compiles the template; the error names the JSON path and what to write instead.
    pub fn compile(self) -> Result<Prompt, String> {
        if self.version.is_empty() || self.version.len() > 64 || self.version.chars().any(|c| c.is_control()) {
            return Err("`version` must be 1 to 64 printable characters".into());
        }
        check_path(&self.chat_path, "chat_path")?;
        if self.max_body_bytes == 0 || self.max_body_bytes > 16 << 20 {
            return Err("`max_body_bytes` must be 1 to 16777216".into());
        }
        if self.max_response_bytes == 0 || self.max_response_bytes > 16 << 20 {
            return Err("`max_response_bytes` must be 1 to 16777216".into());
        }
        if self.inputs.is_empty() {
            return Err("`inputs` needs at least one of \"json\", \"form\", \"query\"".into());
        }
        for (i, source) in self.inputs.iter().enumerate() {
            if self.inputs[..i].contains(source) {
                return Err(format!("`inputs[{i}]` {source:?} is listed twice"));
            }
        }
        let (prepend, append) = match &self.decorators {
            Some(d) => {
                (static_messages(&d.prepend, "decorators.prepend")?, static_messages(&d.append, "decorators.append")?)
            }
            None => (Vec::new(), Vec::new()),
        };
        if self.messages.is_empty() && prepend.is_empty() && append.is_empty() {
            return Err("`messages` is empty: give the template's messages, or `decorators` (or both)".into());
        }
        let template = if self.messages.is_empty() { None } else { Some(self.template()?) };
        let output = &self.output;
        if let Some(field) = &output.field {
            if field.is_empty() || field.len() > 64 {
                return Err("`output.field` must be 1 to 64 characters".into());
            }
            if output.mode == Mode::Raw {
                return Err("`output.field` does not apply to mode \"raw\" (the answer is sent as it is)".into());
            }
        }
        if output.schema.is_some() && output.mode != Mode::Json {
            return Err("`output.schema` applies to mode \"json\" only".into());
        }
        if let Some(s) = &output.schema {
            schema::check_schema(s, "output.schema")?;
        }
        let field = match output.mode {
            Mode::Text => Some(output.field.clone().unwrap_or_else(|| "text".into())),
            Mode::Json => output.field.clone(),
            Mode::Raw => None,
        };
        let response_format = (output.mode == Mode::Json).then(|| match &output.schema {
            Some(s) => serde_json::json!({"type": "json_schema", "json_schema": {
                "name": output.schema_name, "schema": s, "strict": output.strict}}),
            None => serde_json::json!({"type": "json_object"}),
        });
        let callout = match self.upstream.mode {
            UpstreamMode::Route => {
                if self.upstream.cluster.is_some() || self.upstream.authority.is_some() {
                    return Err("`upstream.cluster` and `upstream.authority` apply to mode \"callout\" only".into());
                }
                None
            }
            UpstreamMode::Callout => {
                let Some(cluster) = self.upstream.cluster.clone().filter(|c| !c.is_empty()) else {
                    return Err("`upstream.cluster` is required with mode \"callout\": name the LLM cluster".into());
                };
                if self.upstream.timeout_ms == 0 || self.upstream.timeout_ms > 600_000 {
                    return Err("`upstream.timeout_ms` must be 1 to 600000".into());
                }
                Some(Callout {
                    authority: self.upstream.authority.clone().unwrap_or_else(|| cluster.clone()),
                    cluster,
                    timeout_ms: self.upstream.timeout_ms,
                    headers: self.upstream.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
                })
            }
        };
        let digest = digest(&self);
        let mut prompt = Prompt {
            template,
            version: self.version,
            digest,
            mode: output.mode,
            field,
            schema: output.schema.clone(),
            response_format,
            inputs: self.inputs,
            unknown: self.unknown_inputs,
            streaming: self.streaming,
            chat_path: self.chat_path,
            max_body_bytes: self.max_body_bytes,
            max_response_bytes: self.max_response_bytes,
            hold_response_headers: self.hold_response_headers,
            callout,
            openapi: None,
            prepend,
            append,
        };
        if let Some(openapi) = self.openapi {
            check_path(&openapi.path, "openapi.path")?;
            check_path(&openapi.api_path, "openapi.api_path")?;
            if prompt.template.is_none() {
                return Err("`openapi` needs a template (`messages`)".into());
            }
            let document = crate::openapi::document(&prompt, &openapi);
            prompt.openapi = Some((openapi.path, document));
        }
        Ok(prompt)
    }

    fn template(&self) -> Result<Template, String> {
        if self.messages.len() > MAX_MESSAGES {
            return Err(format!("`messages` has more than {MAX_MESSAGES} messages"));
        }
        if self.variables.len() > MAX_VARIABLES {
            return Err(format!("`variables` has more than {MAX_VARIABLES} variables"));
        }
        let Some(model) = self.model.clone().filter(|m| !m.is_empty()) else {
            return Err("`model` is required with `messages`: name the model (e.g. \"gpt-4o-mini\")".into());
        };
        for key in self.parameters.keys() {
            if RESERVED_PARAMETERS.contains(&key.as_str()) {
                return Err(format!("`parameters.{key}` is set by the filter; remove it"));
            }
        }
        let mut variables = Vec::with_capacity(self.variables.len());
        for (name, config) in &self.variables {
            variables.push(Variable::compile(name, config)?);
        }
        let names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            let at = format!("messages[{i}]");
            check_role(&m.role, &at)?;
            messages.push(template::parse(&m.role, &m.content, &names, &format!("{at}.content"))?);
        }
        Ok(Template { messages, variables, model, parameters: self.parameters.clone() })
    }
}

/// The template's digest: what ran, whatever the version says.
fn digest(config: &Config) -> String {
    use sha2::{Digest, Sha256};
    let messages: Vec<(&str, &str)> = config.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    let canonical = serde_json::json!({
        "messages": messages, "model": config.model, "parameters": config.parameters,
        "variables": format!("{:?}", config.variables), "mode": format!("{:?}", config.output.mode),
        "schema": config.output.schema,
    });
    let hash = Sha256::digest(canonical.to_string().as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
