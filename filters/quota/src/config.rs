//! The configuration (the attachment's `"configuration"`), parsed by serde, then checked and compiled by
//! [`Config::compile`] into [`Rules`]. `filters/quota/README.md` documents every field.

use serde::Deserialize;

use crate::algorithm::{Algorithm, Policy};
use crate::key::{Cidr, Source};

/// The most limits one attachment may have.
pub const MAX_LIMITS: usize = 16;

/// The filter's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What happens when the counter store cannot answer: `open` (let the request through) or `closed` (503).
    pub failure_mode: FailureMode,
    /// The limits, all of which apply.
    pub limits: Vec<LimitConfig>,
    /// Rate-limit headers on every response (a 429 always has them all).
    #[serde(default)]
    pub headers: HeadersConfig,
    /// The header the jwt-auth filter writes the consumer to (read when the `weir.consumer` property is absent).
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    /// How the client address is found.
    #[serde(default)]
    pub client_ip: ClientIpConfig,
    /// Add `stream_options.include_usage: true` to streaming OpenAI chat/completions requests when a token
    /// limit applies, so the last event carries the usage.
    #[serde(default = "yes")]
    pub stream_usage: bool,
    /// The largest JSON response read for its usage.
    #[serde(default = "default_max_body")]
    pub max_response_bytes: usize,
    /// CAS retries before the store counts as failed.
    #[serde(default = "default_retries")]
    pub store_retries: u32,
}

fn yes() -> bool {
    true
}
fn default_consumer_header() -> String {
    "x-weir-consumer".into()
}
fn default_max_body() -> usize {
    8 << 20
}
fn default_retries() -> u32 {
    64
}

/// Which rate-limit headers admitted responses carry: `true` (all), `false` (none), `"ietf"`, `"legacy"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HeadersConfig {
    /// All or none.
    All(bool),
    /// One family.
    Only(HeaderFamily),
}

impl Default for HeadersConfig {
    fn default() -> Self {
        HeadersConfig::All(true)
    }
}

/// A family of rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderFamily {
    /// `RateLimit-Policy` and `RateLimit` (and the token headers).
    Ietf,
    /// `X-RateLimit-Limit|Remaining|Reset` (and the token headers).
    Legacy,
}

/// Which headers to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSet {
    /// The IETF fields.
    pub ietf: bool,
    /// The legacy trio.
    pub legacy: bool,
}

impl HeaderSet {
    /// Every header.
    pub const ALL: HeaderSet = HeaderSet { ietf: true, legacy: true };

    /// Whether any header is written.
    pub fn any(self) -> bool {
        self.ietf || self.legacy
    }
}

impl From<HeadersConfig> for HeaderSet {
    fn from(config: HeadersConfig) -> HeaderSet {
        match config {
            HeadersConfig::All(all) => HeaderSet { ietf: all, legacy: all },
            HeadersConfig::Only(HeaderFamily::Ietf) => HeaderSet { ietf: true, legacy: false },
            HeadersConfig::Only(HeaderFamily::Legacy) => HeaderSet { ietf: false, legacy: true },
        }
    }
}

/// What a store failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Let the request through uncounted.
    Open,
    /// Refuse it with 503.
    Closed,
}

/// The client address: the connection's peer, or the right-most untrusted address of a forwarded header.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIpConfig {
    /// The forwarded header (`x-forwarded-for`); none: the peer address only.
    pub header: Option<String>,
    /// How many proxies in front of the gateway append to the header (the peer is the first).
    #[serde(default)]
    pub trusted_hops: usize,
    /// Addresses or CIDR ranges of trusted proxies, skipped from the right.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Requests, counted when they arrive.
    #[default]
    Requests,
    /// LLM tokens, read from the response's usage.
    Tokens,
}

/// Which tokens count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenCount {
    /// Input plus output.
    #[default]
    Total,
    /// Input (prompt) tokens, cached ones included.
    Input,
    /// Output (completion) tokens.
    Output,
}

/// The error code of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `rate_limit_exceeded`: a rate.
    #[default]
    RateLimitExceeded,
    /// `insufficient_quota`: a budget that is spent.
    InsufficientQuota,
}

/// What to do with a request that lacks a key part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The limit does not apply to it.
    #[default]
    Skip,
    /// Such requests share one counter (the part's value is empty).
    Group,
}

/// A key source, as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SourceConfig {
    /// `"consumer"`, `"client_ip"`, `"route"`.
    Named(String),
    /// `{"header": "x-tenant"}`, `{"api_key": "x-api-key"}`.
    Header {
        /// A request header's value.
        header: Option<String>,
        /// A request header holding a secret: only its hash goes into the store key.
        api_key: Option<String>,
    },
}

/// A key-value override.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// The key's parts, in the order of `key` (a string for a one-part key).
    #[serde(rename = "match")]
    pub matches: StringOrList,
    /// The limit for that key.
    pub limit: u64,
    /// The burst for that key (token bucket).
    pub burst: Option<u64>,
}

/// A string, or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringOrList {
    /// One.
    One(String),
    /// Several.
    List(Vec<String>),
}

/// One limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Its name: in headers, errors, metrics and store keys.
    pub name: String,
    /// Requests or tokens.
    #[serde(default)]
    pub kind: Kind,
    /// The algorithm.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Units per window.
    pub limit: u64,
    /// The window.
    pub window_seconds: u64,
    /// The bucket capacity (token bucket; default `limit`).
    pub burst: Option<u64>,
    /// The key: the sources whose values, together, pick the counter (empty: one counter for all).
    #[serde(default)]
    pub key: Vec<SourceConfig>,
    /// Requests lacking a key part.
    #[serde(default)]
    pub missing: Missing,
    /// Per-key limits.
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
    /// Tokens: which ones count.
    #[serde(default)]
    pub count: TokenCount,
    /// Tokens: reserved when the request starts, settled when its usage is known.
    #[serde(default)]
    pub reserve: u64,
    /// The code of a refusal.
    #[serde(default)]
    pub error: ErrorCode,
}

fn default_algorithm() -> String {
    "fixed_window".into()
}

/// A checked limit.
#[derive(Debug)]
pub struct Limit {
    /// Its name (shared with each request's [`Seen`](crate::response::Seen)).
    pub name: std::rc::Rc<str>,
    /// Requests or tokens.
    pub kind: Kind,
    /// Its default numbers.
    pub policy: Policy,
    /// The key's sources.
    pub key: Vec<Source>,
    /// Requests lacking a key part.
    pub missing: Missing,
    /// Per-key numbers.
    pub overrides: Vec<(Vec<String>, Policy)>,
    /// Tokens: which ones count.
    pub count: TokenCount,
    /// Tokens reserved up front.
    pub reserve: u64,
    /// The refusal's code.
    pub error: ErrorCode,
    /// The store key's prefix: the limit's name, algorithm and window (a changed window starts afresh).
    pub prefix: String,
    /// What the response headers say of the default numbers, written once.
    pub texts: Texts,
}

/// The parts of the rate-limit headers that depend only on a limit's numbers, not on the count.
#[derive(Debug, Clone)]
pub struct Texts {
    /// The quota: the limit, or the burst of a token bucket.
    pub quota: u64,
    /// The window in whole seconds.
    pub window_s: u64,
    /// `quota` in decimal (`X-RateLimit-Limit`).
    pub quota_text: std::rc::Rc<str>,
    /// `"name";q=quota;w=window` (an item of `RateLimit-Policy`).
    pub policy_item: std::rc::Rc<str>,
}

impl Texts {
    /// The texts of limit `name` under `policy`.
    pub fn new(name: &str, policy: &Policy) -> Texts {
        let quota = if policy.algorithm == Algorithm::TokenBucket { policy.burst } else { policy.limit };
        let window_s = policy.window_ns / 1_000_000_000;
        let mut quota_text = String::new();
        crate::response::push_decimal(&mut quota_text, quota);
        let policy_item = format!("\"{name}\";q={quota};w={window_s}");
        Texts { quota, window_s, quota_text: quota_text.into(), policy_item: policy_item.into() }
    }
}

impl Limit {
    /// The header texts for `policy` (the default's are kept; an override's are written for the request).
    pub fn texts_for(&self, policy: &Policy) -> Texts {
        if *policy == self.policy {
            self.texts.clone()
        } else {
            Texts::new(&self.name, policy)
        }
    }

    /// The numbers for a key.
    pub fn policy_for(&self, parts: &[String]) -> Policy {
        self.overrides.iter().find(|(m, _)| m.as_slice() == parts).map_or(self.policy, |(_, p)| *p)
    }
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Rules {
    /// Store failures.
    pub failure_mode: FailureMode,
    /// The limits.
    pub limits: Vec<Limit>,
    /// Headers on admitted responses.
    pub headers: HeaderSet,
    /// The consumer header.
    pub consumer_header: String,
    /// The forwarded header, if any.
    pub forwarded_header: Option<String>,
    /// Trusted hops.
    pub trusted_hops: usize,
    /// Trusted proxies.
    pub trusted_proxies: Vec<Cidr>,
    /// Ask OpenAI streams for usage.
    pub stream_usage: bool,
    /// The largest JSON response read.
    pub max_response_bytes: usize,
    /// CAS retries.
    pub store_retries: u32,
}

impl Rules {
    /// Whether a limit counts tokens.
    pub fn has_tokens(&self) -> bool {
        self.limits.iter().any(|l| l.kind == Kind::Tokens)
    }
}

/// The largest window (a year).
const MAX_WINDOW_SECONDS: u64 = 366 * 86_400;

impl Config {
    /// Checks what serde cannot and compiles the rules; the error names the field.
    pub fn compile(self) -> Result<Rules, String> {
        if self.limits.is_empty() || self.limits.len() > MAX_LIMITS {
            return Err(format!("`limits` needs 1 to {MAX_LIMITS} limits"));
        }
        let consumer_header = header_name(&self.consumer_header, "consumer_header")?;
        let forwarded_header = match &self.client_ip.header {
            Some(h) => Some(header_name(h, "client_ip.header")?),
            None => None,
        };
        let mut trusted_proxies = Vec::new();
        for (i, text) in self.client_ip.trusted_proxies.iter().enumerate() {
            let cidr = Cidr::parse(text).ok_or_else(|| {
                format!("`client_ip.trusted_proxies[{i}]` {text:?} is not an address or a CIDR range")
            })?;
            trusted_proxies.push(cidr);
        }
        if self.store_retries > 10_000 {
            return Err("`store_retries` is at most 10000".into());
        }
        let mut limits: Vec<Limit> = Vec::new();
        for (i, limit) in self.limits.into_iter().enumerate() {
            let compiled = compile_limit(limit, i)?;
            if limits.iter().any(|l| l.name == compiled.name) {
                return Err(format!("`limits[{i}].name` {:?} is used twice", compiled.name));
            }
            limits.push(compiled);
        }
        Ok(Rules {
            failure_mode: self.failure_mode,
            limits,
            headers: self.headers.into(),
            consumer_header,
            forwarded_header,
            trusted_hops: self.client_ip.trusted_hops,
            trusted_proxies,
            stream_usage: self.stream_usage,
            max_response_bytes: self.max_response_bytes,
            store_retries: self.store_retries,
        })
    }
}

fn compile_limit(limit: LimitConfig, i: usize) -> Result<Limit, String> {
    let field = |name: &str| format!("limits[{i}].{name}");
    let name_ok = !limit.name.is_empty()
        && limit.name.len() <= 64
        && limit.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        return Err(format!("`{}` {:?} must be 1 to 64 of A-Z a-z 0-9 - _ .", field("name"), limit.name));
    }
    let algorithm = match limit.algorithm.as_str() {
        "fixed_window" => Algorithm::FixedWindow,
        "sliding_window" => Algorithm::SlidingWindow,
        "token_bucket" => Algorithm::TokenBucket,
        other => {
            return Err(format!(
                "`{}` {other:?} is not one of fixed_window, sliding_window, token_bucket",
                field("algorithm")
            ))
        }
    };
    if limit.window_seconds == 0 || limit.window_seconds > MAX_WINDOW_SECONDS {
        return Err(format!("`{}` must be 1 to {MAX_WINDOW_SECONDS}", field("window_seconds")));
    }
    if limit.limit == 0 || limit.limit > 1 << 48 {
        return Err(format!("`{}` must be 1 to 2^48", field("limit")));
    }
    if limit.burst.is_some() && algorithm != Algorithm::TokenBucket {
        return Err(format!("`{}` applies to token_bucket only", field("burst")));
    }
    if limit.kind == Kind::Requests && (limit.reserve > 0 || limit.count != TokenCount::Total) {
        return Err(format!("`{}` and `count` apply to kind tokens only", field("reserve")));
    }
    let policy_of = |limit_value: u64, burst: Option<u64>| -> Result<Policy, String> {
        let burst = burst.unwrap_or(limit_value);
        if burst == 0 || burst > 1 << 48 {
            return Err(format!("`{}` must be 1 to 2^48", field("burst")));
        }
        Ok(Policy { algorithm, limit: limit_value, window_ns: limit.window_seconds * 1_000_000_000, burst })
    };
    let policy = policy_of(limit.limit, limit.burst)?;
    let mut key = Vec::new();
    for (k, source) in limit.key.iter().enumerate() {
        key.push(Source::from_config(source).map_err(|why| format!("`{}`: {why}", field(&format!("key[{k}]"))))?);
    }
    let mut overrides = Vec::new();
    for (o, item) in limit.overrides.iter().enumerate() {
        let parts = match &item.matches {
            StringOrList::One(one) => vec![one.clone()],
            StringOrList::List(list) => list.clone(),
        };
        if parts.len() != key.len() {
            return Err(format!(
                "`{}` has {} parts; the key has {}",
                field(&format!("overrides[{o}].match")),
                parts.len(),
                key.len()
            ));
        }
        if item.limit == 0 || item.limit > 1 << 48 {
            return Err(format!("`{}` must be 1 to 2^48", field(&format!("overrides[{o}].limit"))));
        }
        if item.burst.is_some() && algorithm != Algorithm::TokenBucket {
            return Err(format!("`{}` applies to token_bucket only", field(&format!("overrides[{o}].burst"))));
        }
        overrides.push((parts, policy_of(item.limit, item.burst)?));
    }
    let prefix = format!("quota:v1:{}:{}:{}:", limit.name, algorithm.name(), limit.window_seconds);
    Ok(Limit {
        texts: Texts::new(&limit.name, &policy),
        name: limit.name.into(),
        kind: limit.kind,
        policy,
        key,
        missing: limit.missing,
        overrides,
        count: limit.count,
        reserve: limit.reserve,
        error: limit.error,
        prefix,
    })
}

/// `name` lower-cased, if it is a valid header name and not a pseudo-header.
pub fn header_name(name: &str, field: &str) -> Result<String, String> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(format!("`{field}` {name:?} is not a header name"));
    }
    Ok(name.to_ascii_lowercase())
}
