//! The configuration (the attachment's `"configuration"`), parsed by serde, then checked and compiled by
//! [`Config::compile`] into [`Rules`]. `filters/response-cache/README.md` documents every field.

use serde::Deserialize;

/// The most entries one namespace may hold (the index of 10 000 entries is about 470 KB of shared data).
pub const MAX_ENTRIES: usize = 10_000;
/// The largest body one entry may hold.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// The shared-data keys the entries' parts may use (the host allows 100 000 per `vm_id`, shared with other
/// filters).
pub const MAX_PART_KEYS: usize = 60_000;
/// One part of an entry in shared data (the host's value limit is 1 MiB).
pub const PART_BYTES: usize = 512 << 10;

/// The filter's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds an entry lives when the response does not say (`s-maxage`, `max-age`).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// The most seconds any entry lives, whatever the response says.
    #[serde(default = "default_max_ttl")]
    pub max_ttl_seconds: u64,
    /// The most entries kept (least recently used evicted first).
    #[serde(default = "default_entries")]
    pub max_entries: usize,
    /// The most bytes kept (stored headers and bodies).
    #[serde(default = "default_bytes")]
    pub max_bytes: u64,
    /// The largest response body stored.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// The largest request body hashed into a key (larger: bypassed).
    #[serde(default = "default_body")]
    pub max_request_body_bytes: usize,
    /// Methods whose responses are cached.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Statuses that are cached.
    #[serde(default = "default_statuses")]
    pub statuses: Vec<u16>,
    /// What goes into the key.
    #[serde(default)]
    pub key: KeyConfig,
    /// Whether `Cache-Control` (and `Pragma`) on requests are honoured.
    #[serde(default = "yes")]
    pub request_cache_control: bool,
    /// Whether `Cache-Control` on responses is honoured.
    #[serde(default = "yes")]
    pub response_cache_control: bool,
    /// Whether responses with `Set-Cookie` are stored.
    #[serde(default)]
    pub cache_set_cookie: bool,
    /// A request with this header (any value but `0`/`false`/`off`) skips the cache.
    #[serde(default = "default_bypass_header")]
    pub bypass_header: String,
    /// The response header telling HIT, MISS, BYPASS or EXPIRED (empty: none).
    #[serde(default = "default_status_header")]
    pub status_header: String,
    /// Request collapsing.
    #[serde(default)]
    pub collapse: CollapseConfig,
    /// The purge and stats API (off when absent).
    pub purge: Option<PurgeConfig>,
    /// Shared-data namespace: attachments with the same `vm_id` and namespace share one store and its bounds.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Milliseconds between two writes of a hit's recency to the shared index by one worker (0: every hit).
    #[serde(default = "default_touch")]
    pub touch_interval_ms: u64,
    /// CAS retries before a store operation counts as failed.
    #[serde(default = "default_retries")]
    pub store_retries: u32,
    /// On Weir, a hit of a request without a body is declared to the gateway (`weir.memoize_response`), which
    /// then answers the same requests by itself, without entering the filter, while the entry is unchanged and
    /// fresh, handing one back to the filter every `memoize_revalidate_ms`.
    #[serde(default = "yes")]
    pub memoize: bool,
    /// How often the gateway hands a memoized request back to the filter, in milliseconds (1 to 60000).
    #[serde(default = "default_memoize_revalidate")]
    pub memoize_revalidate_ms: u64,
}

/// What the key is made of, besides method, host, path and query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Request headers whose values go into the key.
    #[serde(default)]
    pub headers: Vec<String>,
    /// How the query goes in: `sorted` (parameters sorted), `exact`, or `ignore`.
    #[serde(default)]
    pub query: QueryMode,
    /// Query parameters left out of the key.
    #[serde(default)]
    pub ignore_query_params: Vec<String>,
    /// Top-level fields of a JSON request body left out of its hash.
    #[serde(default = "default_ignore_fields")]
    pub ignore_body_fields: Vec<String>,
    /// Entries are shared by every route with this namespace (otherwise the route's name is in the key).
    #[serde(default)]
    pub shared: bool,
    /// The consumer (the `weir.consumer` property jwt-auth sets) is in the key.
    #[serde(default = "yes")]
    pub consumer: bool,
    /// A header naming the consumer when the property is absent (only a header a trusted filter sets).
    pub consumer_header: Option<String>,
    /// A header naming the tenant (only a header a trusted filter sets).
    pub tenant_header: Option<String>,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            headers: Vec::new(),
            query: QueryMode::default(),
            ignore_query_params: Vec::new(),
            ignore_body_fields: default_ignore_fields(),
            shared: false,
            consumer: true,
            consumer_header: None,
            tenant_header: None,
        }
    }
}

/// How the query goes into the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// Parameters sorted by name then value, empty ones dropped.
    #[default]
    Sorted,
    /// As sent.
    Exact,
    /// Left out.
    Ignore,
}

/// Request collapsing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollapseConfig {
    /// Concurrent misses on one key send one request upstream (requests without a body only).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How long a request waits for the one in flight before going upstream itself.
    #[serde(default = "default_collapse_timeout")]
    pub timeout_ms: u64,
    /// How often waiting requests look for the answer.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
}

impl Default for CollapseConfig {
    fn default() -> Self {
        CollapseConfig { enabled: true, timeout_ms: default_collapse_timeout(), poll_ms: default_poll() }
    }
}

/// The purge and stats API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeConfig {
    /// The path it answers on (exact, without the query).
    pub path: String,
    /// The bearer token it requires (at least 16 characters).
    pub token: String,
}

fn yes() -> bool {
    true
}
fn default_ttl() -> u64 {
    300
}
fn default_max_ttl() -> u64 {
    86_400
}
fn default_entries() -> usize {
    1000
}
fn default_bytes() -> u64 {
    64 << 20
}
fn default_body() -> usize {
    1 << 20
}
fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}
fn default_statuses() -> Vec<u16> {
    vec![200, 301, 404]
}
fn default_bypass_header() -> String {
    "x-cache-bypass".into()
}
fn default_status_header() -> String {
    "x-cache-status".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_touch() -> u64 {
    1000
}
fn default_retries() -> u32 {
    64
}
fn default_ignore_fields() -> Vec<String> {
    vec!["user".into(), "stream".into()]
}
fn default_memoize_revalidate() -> u64 {
    1000
}

fn default_collapse_timeout() -> u64 {
    5000
}
fn default_poll() -> u64 {
    10
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Rules {
    /// Default TTL in milliseconds.
    pub ttl_ms: u64,
    /// Largest TTL in milliseconds.
    pub max_ttl_ms: u64,
    /// Entry bound.
    pub max_entries: usize,
    /// Byte bound.
    pub max_bytes: u64,
    /// Largest body stored.
    pub max_body_bytes: usize,
    /// Largest request body hashed.
    pub max_request_body_bytes: usize,
    /// Cached methods, upper-case.
    pub methods: Vec<String>,
    /// Cached statuses.
    pub statuses: Vec<u16>,
    /// Key headers, lower-case.
    pub key_headers: Vec<String>,
    /// Query handling.
    pub query: QueryMode,
    /// Query parameters left out.
    pub ignore_query_params: Vec<String>,
    /// Body fields left out.
    pub ignore_body_fields: Vec<String>,
    /// Shared across routes.
    pub shared: bool,
    /// Consumer in the key.
    pub consumer: bool,
    /// Consumer header, lower-case.
    pub consumer_header: Option<String>,
    /// Tenant header, lower-case.
    pub tenant_header: Option<String>,
    /// Honour request `Cache-Control`.
    pub request_cache_control: bool,
    /// Honour response `Cache-Control`.
    pub response_cache_control: bool,
    /// Store `Set-Cookie` responses.
    pub cache_set_cookie: bool,
    /// Bypass header, lower-case.
    pub bypass_header: String,
    /// Status header, lower-case (empty: none).
    pub status_header: String,
    /// Collapsing on.
    pub collapse: bool,
    /// Collapse wait in milliseconds.
    pub collapse_timeout_ms: u64,
    /// Poll period in milliseconds.
    pub poll_ms: u64,
    /// Purge path and token.
    pub purge: Option<(String, String)>,
    /// Shared-data key prefix (`rc:v1:<namespace>:`).
    pub prefix: String,
    /// Recency write interval in milliseconds.
    pub touch_interval_ms: u64,
    /// CAS retries.
    pub store_retries: u32,
    /// Hits declared to the gateway, and how often it hands one back (`None`: off).
    pub memoize_revalidate_ms: Option<u64>,
}

impl Rules {
    /// The most parts one entry may have.
    pub fn max_parts(&self) -> usize {
        // Headers ride in part 0 beside the body: room for 64 KiB of them.
        (self.max_body_bytes + (64 << 10)).div_ceil(PART_BYTES).max(1)
    }
}

impl Config {
    /// Checks what serde cannot and compiles the rules; the error names the field.
    pub fn compile(self) -> Result<Rules, String> {
        if self.ttl_seconds == 0 || self.ttl_seconds > self.max_ttl_seconds {
            return Err(format!("`ttl_seconds` must be 1 to `max_ttl_seconds` ({})", self.max_ttl_seconds));
        }
        if self.max_ttl_seconds > 366 * 86_400 {
            return Err("`max_ttl_seconds` is at most 31622400 (a year)".into());
        }
        if self.max_entries == 0 || self.max_entries > MAX_ENTRIES {
            return Err(format!("`max_entries` must be 1 to {MAX_ENTRIES}"));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_BYTES {
            return Err(format!("`max_body_bytes` must be 1 to {MAX_BODY_BYTES}"));
        }
        if self.max_request_body_bytes > 16 << 20 {
            return Err("`max_request_body_bytes` is at most 16777216 (what the gateway lets a filter hold)".into());
        }
        if self.max_bytes < self.max_body_bytes as u64 {
            return Err("`max_bytes` must be at least `max_body_bytes`".into());
        }
        let mut methods = Vec::new();
        for (i, method) in self.methods.iter().enumerate() {
            let upper = method.to_ascii_uppercase();
            if !["GET", "HEAD", "POST"].contains(&upper.as_str()) {
                return Err(format!("`methods[{i}]` {method:?} is not one of GET, HEAD, POST"));
            }
            methods.push(upper);
        }
        if methods.is_empty() {
            return Err("`methods` needs at least one of GET, HEAD, POST".into());
        }
        if self.statuses.is_empty() {
            return Err("`statuses` needs at least one status".into());
        }
        for (i, status) in self.statuses.iter().enumerate() {
            if !(200..600).contains(status) {
                return Err(format!("`statuses[{i}]` {status} is not a final status (200 to 599)"));
            }
        }
        let mut key_headers = Vec::new();
        for (i, name) in self.key.headers.iter().enumerate() {
            key_headers.push(header_name(name, &format!("key.headers[{i}]"))?);
        }
        let optional = |value: &Option<String>, field: &str| -> Result<Option<String>, String> {
            value.as_deref().map(|name| header_name(name, field)).transpose()
        };
        let consumer_header = optional(&self.key.consumer_header, "key.consumer_header")?;
        let tenant_header = optional(&self.key.tenant_header, "key.tenant_header")?;
        let bypass_header = header_name(&self.bypass_header, "bypass_header")?;
        let status_header = if self.status_header.is_empty() {
            String::new()
        } else {
            header_name(&self.status_header, "status_header")?
        };
        if self.memoize_revalidate_ms == 0 || self.memoize_revalidate_ms > 60_000 {
            return Err("`memoize_revalidate_ms` must be 1 to 60000".into());
        }
        let collapse = &self.collapse;
        if collapse.timeout_ms == 0 || collapse.timeout_ms > 25_000 {
            return Err("`collapse.timeout_ms` must be 1 to 25000 (the gateway answers a request paused 30 s)".into());
        }
        if collapse.poll_ms == 0 || collapse.poll_ms > collapse.timeout_ms {
            return Err("`collapse.poll_ms` must be 1 to `collapse.timeout_ms`".into());
        }
        let purge = match self.purge {
            None => None,
            Some(p) => {
                if !p.path.starts_with('/') || p.path.contains('?') {
                    return Err(format!("`purge.path` {:?} must start with / and have no query", p.path));
                }
                if p.token.len() < 16 {
                    return Err("`purge.token` must be at least 16 characters".into());
                }
                Some((p.path, p.token))
            }
        };
        let name_ok = !self.namespace.is_empty()
            && self.namespace.len() <= 64
            && self.namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(format!("`namespace` {:?} must be 1 to 64 of A-Z a-z 0-9 - _ .", self.namespace));
        }
        if self.store_retries > 10_000 {
            return Err("`store_retries` is at most 10000".into());
        }
        let rules = Rules {
            ttl_ms: self.ttl_seconds * 1000,
            max_ttl_ms: self.max_ttl_seconds * 1000,
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            max_body_bytes: self.max_body_bytes,
            max_request_body_bytes: self.max_request_body_bytes,
            methods,
            statuses: self.statuses,
            key_headers,
            query: self.key.query,
            ignore_query_params: self.key.ignore_query_params,
            ignore_body_fields: self.key.ignore_body_fields,
            shared: self.key.shared,
            consumer: self.key.consumer,
            consumer_header,
            tenant_header,
            request_cache_control: self.request_cache_control,
            response_cache_control: self.response_cache_control,
            cache_set_cookie: self.cache_set_cookie,
            bypass_header,
            status_header,
            collapse: collapse.enabled,
            collapse_timeout_ms: collapse.timeout_ms,
            poll_ms: collapse.poll_ms,
            purge,
            prefix: format!("rc:v1:{}:", self.namespace),
            touch_interval_ms: self.touch_interval_ms,
            store_retries: self.store_retries,
            memoize_revalidate_ms: self.memoize.then_some(self.memoize_revalidate_ms),
        };
        if rules.max_entries * (rules.max_parts() + 1) > MAX_PART_KEYS {
            return Err(format!(
                "`max_entries` x parts per entry ({} with `max_body_bytes` {}) exceeds {MAX_PART_KEYS} shared-data keys: \
                 lower one of them",
                rules.max_parts() + 1,
                rules.max_body_bytes
            ));
        }
        Ok(rules)
    }
}

/// `name` lower-cased, if it is a valid header name and not a pseudo-header.
pub fn header_name(name: &str, field: &str) -> Result<String, String> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(format!("`{field}` {name:?} is not a header name"));
    }
    Ok(name.to_ascii_lowercase())
}
