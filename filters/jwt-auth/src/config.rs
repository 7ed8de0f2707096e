//! The configuration (the attachment's `"configuration"`), parsed by the SDK with serde, then checked by
//! [`Config::check`]. `filters/jwt-auth/README.md` documents every field.

use serde::Deserialize;
use serde_json::Value;

use crate::alg::Algorithm;

/// The largest `max_token_bytes` accepted.
pub const MAX_TOKEN_BYTES_LIMIT: usize = 65_536;

/// The largest `token_cache.max_entries` accepted.
pub const MAX_CACHE_ENTRIES: usize = 100_000;

/// The largest `token_cache.max_bytes` accepted (64 MiB).
pub const MAX_CACHE_BYTES: usize = 64 << 20;

/// The filter's configuration.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The `realm` of `WWW-Authenticate`.
    pub realm: String,
    /// An inline JWK Set: `{"keys": [...]}`, or that object as a JSON string.
    pub jwks: Option<Value>,
    /// PEM public keys, each pinned to an algorithm.
    pub keys: Vec<PemKey>,
    /// A JWK Set fetched from a cluster, cached and refreshed.
    pub remote_jwks: Option<RemoteJwks>,
    /// Allowed `iss` values (empty: any).
    pub issuers: Vec<String>,
    /// Allowed `aud` values, any of which must be in the token (empty: not checked).
    pub audiences: Vec<String>,
    /// Tolerance on `exp`, `nbf` and `iat`.
    pub clock_skew_seconds: u64,
    /// The longest `exp - iat` accepted (and then both are required).
    pub max_lifetime_seconds: Option<u64>,
    /// Refuse tokens without `exp`.
    pub require_exp: bool,
    /// Claims that must be present (and not null): 403 otherwise.
    pub required_claims: Vec<String>,
    /// Scopes that must all be in `scope_claim`: 403 otherwise.
    pub required_scopes: Vec<String>,
    /// The claim holding scopes: a space-delimited string or an array of strings.
    pub scope_claim: String,
    /// Where the token is looked for, in order; the first source present is used.
    pub from: Vec<TokenSource>,
    /// Keep the token in the request sent upstream (`false`: remove it from its source).
    pub forward_token: bool,
    /// Claims copied to request headers.
    pub claims_to_headers: Vec<ClaimHeader>,
    /// The consumer identity: a claim copied to a header later filters read.
    pub consumer: Option<Consumer>,
    /// The longest token accepted, checked before any decoding.
    pub max_token_bytes: usize,
    /// Tokens whose signature verified, kept so that the next use skips the public-key operation.
    pub token_cache: TokenCacheConfig,
}

/// The verified-token cache's bounds (per worker and attachment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenCacheConfig {
    /// The most tokens kept; 0 turns the cache off.
    pub max_entries: usize,
    /// The most bytes kept (tokens and their claims).
    pub max_bytes: usize,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        TokenCacheConfig { max_entries: 1000, max_bytes: 4 << 20 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            realm: "weir".into(),
            jwks: None,
            keys: Vec::new(),
            remote_jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            clock_skew_seconds: 60,
            max_lifetime_seconds: None,
            require_exp: true,
            required_claims: Vec::new(),
            required_scopes: Vec::new(),
            scope_claim: "scope".into(),
            from: vec![TokenSource::Header(HeaderSource { name: "authorization".into(), prefix: "Bearer ".into() })],
            forward_token: true,
            claims_to_headers: Vec::new(),
            consumer: None,
            max_token_bytes: 8192,
            token_cache: TokenCacheConfig::default(),
        }
    }
}

/// A PEM public key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKey {
    /// Its key id (required when there are several keys).
    #[serde(default)]
    pub kid: Option<String>,
    /// The one algorithm it verifies.
    pub alg: String,
    /// `-----BEGIN PUBLIC KEY-----...` (or `RSA PUBLIC KEY`).
    pub pem: String,
}

/// Where the remote JWK Set comes from and how long it is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    /// The cluster (of the gateway's configuration) to call.
    pub cluster: String,
    /// The request path.
    #[serde(default = "default_jwks_path")]
    pub path: String,
    /// The `:authority` (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// How long a fetched set is used before it is refreshed in the background.
    #[serde(default = "default_cache_duration")]
    pub cache_duration_seconds: u64,
    /// The fetch timeout.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_ms: u64,
    /// The least time between two fetches caused by unknown `kid`s or failures.
    #[serde(default = "default_cooldown")]
    pub refetch_cooldown_seconds: u64,
    /// The largest JWKS body accepted.
    #[serde(default = "default_max_jwks_bytes")]
    pub max_jwks_bytes: usize,
}

fn default_jwks_path() -> String {
    "/.well-known/jwks.json".into()
}
fn default_cache_duration() -> u64 {
    600
}
fn default_fetch_timeout() -> u64 {
    2000
}
fn default_cooldown() -> u64 {
    30
}
fn default_max_jwks_bytes() -> usize {
    262_144
}

/// A token source.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenSource {
    /// A header, with a prefix (`Bearer `, matched case-insensitively).
    Header(HeaderSource),
    /// A query parameter.
    Query(String),
    /// A cookie.
    Cookie(String),
}

/// A header source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSource {
    /// The header name.
    pub name: String,
    /// The prefix before the token (may be empty).
    #[serde(default)]
    pub prefix: String,
}

/// A claim copied to a request header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimHeader {
    /// The claim name (top level).
    pub claim: String,
    /// The header name.
    pub header: String,
}

/// The consumer identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// The claim naming the consumer.
    #[serde(default = "default_consumer_claim")]
    pub claim: String,
    /// The header carrying it upstream.
    #[serde(default = "default_consumer_header")]
    pub header: String,
}

fn default_consumer_claim() -> String {
    "sub".into()
}
fn default_consumer_header() -> String {
    "x-weir-consumer".into()
}

impl Config {
    /// The checks serde cannot make; the error says which field is wrong.
    pub fn check(&mut self) -> Result<(), String> {
        if self.jwks.is_none() && self.keys.is_empty() && self.remote_jwks.is_none() {
            return Err("no keys: set `jwks`, `keys` or `remote_jwks`".into());
        }
        if self.realm.is_empty() || !self.realm.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
            return Err("`realm` must be printable ASCII without quotes or backslashes".into());
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return Err(format!("`max_token_bytes` must be 1 to {MAX_TOKEN_BYTES_LIMIT}"));
        }
        if self.token_cache.max_entries > MAX_CACHE_ENTRIES || self.token_cache.max_bytes > MAX_CACHE_BYTES {
            return Err(format!(
                "`token_cache` holds at most {MAX_CACHE_ENTRIES} entries and {MAX_CACHE_BYTES} bytes (`max_entries`, `max_bytes`)"
            ));
        }
        if self.from.is_empty() {
            return Err("`from` needs at least one token source".into());
        }
        for key in &self.keys {
            if Algorithm::parse(&key.alg).is_none() {
                return Err(format!("`keys[].alg` {:?} is not a supported algorithm", key.alg));
            }
        }
        if let Some(remote) = &self.remote_jwks {
            if remote.cluster.is_empty() || !remote.path.starts_with('/') {
                return Err("`remote_jwks` needs a `cluster` and a `path` starting with `/`".into());
            }
            if remote.cache_duration_seconds == 0 || remote.fetch_timeout_ms == 0 {
                return Err("`remote_jwks.cache_duration_seconds` and `fetch_timeout_ms` must be positive".into());
            }
        }
        let mut source_headers = Vec::new();
        for source in &mut self.from {
            match source {
                TokenSource::Header(header) => {
                    header.name = header_name(&header.name, "from[].header.name")?;
                    source_headers.push(header.name.clone());
                }
                TokenSource::Query(name) | TokenSource::Cookie(name) if name.is_empty() => {
                    return Err("`from[].query` and `from[].cookie` need a name".into());
                }
                TokenSource::Cookie(_) => source_headers.push("cookie".into()),
                TokenSource::Query(_) => {}
            }
        }
        for output in &mut self.claims_to_headers {
            output.header = header_name(&output.header, "claims_to_headers[].header")?;
            if output.claim.is_empty() {
                return Err("`claims_to_headers[].claim` is empty".into());
            }
        }
        if let Some(consumer) = &mut self.consumer {
            consumer.header = header_name(&consumer.header, "consumer.header")?;
        }
        for header in self.output_headers() {
            if source_headers.iter().any(|source| source == header) {
                return Err(format!("output header `{header}` is also a token source"));
            }
        }
        Ok(())
    }

    /// Every header this filter writes (and so removes from the client's request first).
    pub fn output_headers(&self) -> impl Iterator<Item = &str> {
        self.claims_to_headers
            .iter()
            .map(|c| c.header.as_str())
            .chain(self.consumer.as_ref().map(|c| c.header.as_str()))
    }
}

/// `name` lower-cased, if it is a valid header name and not a pseudo-header or a hop-by-hop one.
fn header_name(name: &str, field: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "host" | "connection" | "te" | "transfer-encoding" | "content-length"
        );
    if !valid {
        return Err(format!("`{field}` {name:?} is not a header name this filter may use"));
    }
    Ok(name.to_ascii_lowercase())
}
