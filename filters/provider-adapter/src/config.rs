//! The configuration (the attachment's `"configuration"`), parsed by serde, then checked and compiled by
//! [`Config::compile`] into [`Settings`]. `filters/provider-adapter/README.md` documents every field.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::keys::KeyPool;
use crate::models::ModelMap;
use crate::sigv4::Credentials;

/// The provider behind the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI.
    Openai,
    /// Azure OpenAI.
    Azure,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini.
    Gemini,
    /// AWS Bedrock Converse.
    Bedrock,
    /// Mistral (OpenAI-compatible with traps).
    Mistral,
    /// Ollama's native `/api/chat`.
    Ollama,
    /// Any OpenAI-compatible host.
    OpenaiCompatible,
}

impl Provider {
    /// The provider's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Azure => "azure",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Bedrock => "bedrock",
            Provider::Mistral => "mistral",
            Provider::Ollama => "ollama",
            Provider::OpenaiCompatible => "openai_compatible",
        }
    }
}

/// The filter's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The provider.
    pub provider: Provider,
    /// Scheme, host, port and path prefix of the provider.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Set `:authority` from `base_url`.
    #[serde(default = "yes")]
    pub set_authority: bool,
    /// Keys, used in turn.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// An environment variable holding keys.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Client model → provider model.
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    /// The models `GET /v1/models` lists.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// The client path translated.
    #[serde(default = "default_chat_path")]
    pub chat_path: String,
    /// The client path answered with the model list.
    #[serde(default = "default_models_path")]
    pub models_path: Option<String>,
    /// The largest request body.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    /// The largest non-stream answer.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// The largest stream event held.
    #[serde(default = "default_max_event")]
    pub max_event_bytes: usize,
    /// Refuse fields the provider cannot honour.
    #[serde(default)]
    pub strict: bool,
    /// The cluster callouts go to (default: the route's cluster).
    #[serde(default)]
    pub cluster: Option<String>,
    /// The callout timeout.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Hold headers while bodies are read (needs the attachment's `allow_on_headers_stop_iteration`): request
    /// headers where the provider path depends on the body (instead of a callout), and response headers of
    /// answers read whole (so a malformed one is a 502).
    #[serde(default)]
    pub hold_headers: bool,
    /// Anthropic options.
    #[serde(default)]
    pub anthropic: AnthropicConfig,
    /// Azure options.
    #[serde(default)]
    pub azure: AzureConfig,
    /// Gemini options.
    #[serde(default)]
    pub gemini: GeminiConfig,
    /// Bedrock options.
    #[serde(default)]
    pub bedrock: Option<BedrockConfig>,
    /// Mistral options.
    #[serde(default)]
    pub mistral: MistralConfig,
}

fn yes() -> bool {
    true
}
fn default_chat_path() -> String {
    "/v1/chat/completions".into()
}
fn default_models_path() -> Option<String> {
    Some("/v1/models".into())
}
/// Below Weir's 30 s pause deadline: the response headers wait for the callout (callout mode).
fn default_timeout() -> u64 {
    28_000
}
fn default_max_request() -> usize {
    4 << 20
}
fn default_max_response() -> usize {
    8 << 20
}
fn default_max_event() -> usize {
    1 << 20
}

/// Anthropic options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnthropicConfig {
    /// `anthropic-version`.
    pub version: String,
    /// `anthropic-beta`.
    pub beta: Option<String>,
    /// `max_tokens` when the client gives none.
    pub default_max_tokens: u64,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        AnthropicConfig { version: "2023-06-01".into(), beta: None, default_max_tokens: 4096 }
    }
}

/// Azure options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    /// `api-version`.
    pub api_version: String,
    /// A fixed deployment (default: the mapped model).
    pub deployment: Option<String>,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig { api_version: "2024-10-21".into(), deployment: None }
    }
}

/// Gemini options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeminiConfig {
    /// The API version path segment.
    pub api_version: String,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig { api_version: "v1beta".into() }
    }
}

/// Bedrock options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockConfig {
    /// The region.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret key.
    pub secret_access_key: Option<String>,
    /// A session token.
    pub session_token: Option<String>,
    /// Environment variable holding the access key id.
    pub access_key_id_env: Option<String>,
    /// Environment variable holding the secret key.
    pub secret_access_key_env: Option<String>,
    /// Environment variable holding the session token.
    pub session_token_env: Option<String>,
}

/// Mistral options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MistralConfig {
    /// `safe_prompt`.
    pub safe_prompt: Option<bool>,
}

/// Every top-level field.
const FIELDS: [&str; 21] = [
    "provider",
    "base_url",
    "set_authority",
    "api_keys",
    "api_key_env",
    "model_mapping",
    "models",
    "chat_path",
    "models_path",
    "max_request_bytes",
    "max_response_bytes",
    "max_event_bytes",
    "strict",
    "cluster",
    "timeout_ms",
    "hold_headers",
    "anthropic",
    "azure",
    "gemini",
    "bedrock",
    "mistral",
];

/// Every provider name.
const PROVIDERS: [&str; 8] =
    ["openai", "azure", "anthropic", "gemini", "bedrock", "mistral", "ollama", "openai_compatible"];

/// Parses the configuration JSON; the error names the JSON path (`$.field`) and what is expected there.
pub fn parse(value: &serde_json::Value) -> Result<Config, String> {
    let Some(map) = value.as_object() else {
        return Err("$: the configuration must be a JSON object (at least {\"provider\": \"openai\"})".into());
    };
    if let Some(key) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("$.{key}: unknown field (the fields are {})", FIELDS.join(", ")));
    }
    let provider = match map.get("provider") {
        Some(serde_json::Value::String(p)) if PROVIDERS.contains(&p.as_str()) => p,
        Some(other) => return Err(format!("$.provider: {other} is not a provider (one of {})", PROVIDERS.join(", "))),
        None => return Err(format!("$.provider: required (one of {})", PROVIDERS.join(", "))),
    };
    serde_json::from_value::<Config>(value.clone()).map_err(|whole| {
        // serde_json names no path: try each field alone to find the one at fault.
        for (key, field) in map.iter().filter(|(k, _)| *k != "provider") {
            let probe = serde_json::json!({"provider": provider, key.as_str(): field});
            if let Err(error) = serde_json::from_value::<Config>(probe) {
                return format!("$.{key}: {error}");
            }
        }
        format!("$: {whole}")
    })
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Settings {
    /// The provider.
    pub provider: Provider,
    /// `:authority` to set, if any.
    pub authority: Option<String>,
    /// The path prefix of every provider path (no trailing `/`).
    pub prefix: String,
    /// The key pool.
    pub keys: KeyPool,
    /// The model aliases.
    pub models: ModelMap,
    /// The client chat path.
    pub chat_path: String,
    /// The client models path.
    pub models_path: Option<String>,
    /// Limits.
    pub max_request_bytes: usize,
    /// Limits.
    pub max_response_bytes: usize,
    /// Limits.
    pub max_event_bytes: usize,
    /// Strict mode.
    pub strict: bool,
    /// The callout cluster (`None`: the route's).
    pub cluster: Option<String>,
    /// The callout timeout in milliseconds.
    pub timeout_ms: u64,
    /// Hold the request headers instead of a callout where the path depends on the body.
    pub hold_headers: bool,
    /// The authority of `base_url` (callouts and SigV4 use it even when `set_authority` is off).
    pub host: String,
    /// Anthropic options.
    pub anthropic: AnthropicConfig,
    /// Azure options.
    pub azure: AzureConfig,
    /// Gemini options.
    pub gemini: GeminiConfig,
    /// Bedrock region (set for `bedrock`).
    pub region: String,
    /// Bedrock SigV4 credentials (none: a bearer key is used).
    pub aws: Option<Credentials>,
    /// Mistral options.
    pub mistral: MistralConfig,
}

const MAX_LIMIT: usize = 64 << 20;

impl Config {
    /// Checks and compiles the configuration, reading environment variables through `env`; the error names
    /// the JSON path and how to fix it.
    pub fn compile(self, env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        for (path, value) in [
            ("max_request_bytes", self.max_request_bytes),
            ("max_response_bytes", self.max_response_bytes),
            ("max_event_bytes", self.max_event_bytes),
        ] {
            if value == 0 || value > MAX_LIMIT {
                return Err(format!("$.{path}: {value} is out of range (1 to {MAX_LIMIT})"));
            }
        }
        for (path, value) in [("chat_path", Some(&self.chat_path)), ("models_path", self.models_path.as_ref())] {
            if let Some(value) = value {
                if !value.starts_with('/') {
                    return Err(format!("$.{path}: {value:?} must start with `/`"));
                }
            }
        }
        let region = match (&self.bedrock, self.provider) {
            (Some(b), Provider::Bedrock) => match &b.region {
                Some(r) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') => r.clone(),
                Some(r) => return Err(format!("$.bedrock.region: {r:?} is not a region (e.g. \"us-east-1\")")),
                None => return Err("$.bedrock.region: required for provider \"bedrock\" (e.g. \"us-east-1\")".into()),
            },
            (None, Provider::Bedrock) => {
                return Err("$.bedrock: required for provider \"bedrock\" (at least {\"region\": \"us-east-1\"})".into())
            }
            (Some(_), other) => {
                return Err(format!("$.bedrock: only for provider \"bedrock\", not {:?}", other.name()))
            }
            (None, _) => String::new(),
        };
        let default_base = match self.provider {
            Provider::Openai => Some("https://api.openai.com/v1".to_string()),
            Provider::Mistral => Some("https://api.mistral.ai/v1".to_string()),
            Provider::Anthropic => Some("https://api.anthropic.com".to_string()),
            Provider::Gemini => Some("https://generativelanguage.googleapis.com".to_string()),
            Provider::Bedrock => Some(format!("https://bedrock-runtime.{region}.amazonaws.com")),
            Provider::Ollama => Some("http://localhost:11434".to_string()),
            Provider::Azure | Provider::OpenaiCompatible => None,
        };
        let base = match (self.base_url, default_base) {
            (Some(base), _) => base,
            (None, Some(base)) => base,
            (None, None) => {
                return Err(format!(
                    "$.base_url: required for provider {:?} (e.g. \"https://acme.openai.azure.com\" or \"https://api.groq.com/openai/v1\")",
                    self.provider.name()
                ))
            }
        };
        let (authority, mut prefix) = split_base_url(&base)?;
        if self.provider == Provider::Gemini && prefix.is_empty() {
            prefix = format!("/{}", self.gemini.api_version);
        }
        let keys = KeyPool::new(&self.api_keys, self.api_key_env.as_deref(), &env)?;
        let aws = match (&self.bedrock, keys.is_empty()) {
            (Some(b), true) => Some(aws_credentials(b, &env)?),
            _ => None,
        };
        let mapping: Vec<(String, String)> = self.model_mapping.into_iter().collect();
        let models = ModelMap::new(&mapping, self.models)?;
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            return Err(format!("$.timeout_ms: {} is out of range (1 to 300000)", self.timeout_ms));
        }
        if self.cluster.as_deref() == Some("") {
            return Err("$.cluster: must not be empty (leave it out to use the route's cluster)".into());
        }
        if self.anthropic.default_max_tokens == 0 {
            return Err("$.anthropic.default_max_tokens: must be at least 1".into());
        }
        Ok(Settings {
            provider: self.provider,
            authority: self.set_authority.then(|| authority.clone()),
            host: authority,
            cluster: self.cluster,
            timeout_ms: self.timeout_ms,
            hold_headers: self.hold_headers,
            prefix,
            keys,
            models,
            chat_path: self.chat_path,
            models_path: self.models_path,
            max_request_bytes: self.max_request_bytes,
            max_response_bytes: self.max_response_bytes,
            max_event_bytes: self.max_event_bytes,
            strict: self.strict,
            anthropic: self.anthropic,
            azure: self.azure,
            gemini: self.gemini,
            region,
            aws,
            mistral: self.mistral,
        })
    }
}

fn aws_credentials(b: &BedrockConfig, env: &impl Fn(&str) -> Option<String>) -> Result<Credentials, String> {
    let pick = |value: &Option<String>, env_name: &Option<String>, field: &str| -> Result<Option<String>, String> {
        match (value, env_name) {
            (Some(_), Some(_)) => Err(format!("$.bedrock.{field}: give {field} or {field}_env, not both")),
            (Some(v), None) => Ok(Some(v.clone())),
            (None, Some(name)) => match env(name).filter(|v| !v.is_empty()) {
                Some(v) => Ok(Some(v)),
                None => Err(format!(
                    "$.bedrock.{field}_env: environment variable {name:?} is unset or empty in the filter's VM \
                     (pass it with the attachment's \"environment_variables\")"
                )),
            },
            (None, None) => Ok(None),
        }
    };
    let id = pick(&b.access_key_id, &b.access_key_id_env, "access_key_id")?;
    let secret = pick(&b.secret_access_key, &b.secret_access_key_env, "secret_access_key")?;
    let token = pick(&b.session_token, &b.session_token_env, "session_token")?;
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(Credentials { access_key_id, secret_access_key, session_token: token })
        }
        _ => Err("$.bedrock: needs access_key_id and secret_access_key (or their _env names), or a Bedrock API key \
                  in api_keys / api_key_env"
            .into()),
    }
}

/// `http(s)://host[:port][/path]` → (authority, path prefix without a trailing `/`).
pub fn split_base_url(base: &str) -> Result<(String, String), String> {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .ok_or_else(|| format!("$.base_url: {base:?} must start with http:// or https://"))?;
    if rest.contains(['?', '#', ' ']) {
        return Err(format!("$.base_url: {base:?} must not have a query, fragment or space"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("$.base_url: {base:?} needs a host (and no user info)"));
    }
    Ok((authority.to_string(), path.trim_end_matches('/').to_string()))
}
