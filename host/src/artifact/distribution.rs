//! A small client of the OCI distribution HTTP API (`/v2/...`), on hyper's HTTP/1.1 client connection and
//! rustls: one connection per request (a push or pull makes a handful), bounded bodies, timeouts, redirects
//! (blob storage on another host) and the Docker token flow ([`super::auth`]).
//!
//! [`Client::request`] sends a request to the registry (or to a URL it gave, like an upload `Location`) and
//! returns the whole answer, whatever its status; [`Reply::refusal`] turns an unexpected status into a reason that
//! quotes the registry's error JSON (`{"errors":[{"code","message"}]}`).

use super::auth::{self, Access, Credentials, TokenCache};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Bound on resolving the host, the TCP connect and the TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one whole request: connect, send, and read the answer's body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest manifest accepted.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// The most of an error answer (or a token server's answer) that is read.
pub const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Redirects followed for one GET or HEAD.
pub const MAX_REDIRECTS: usize = 5;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request could not be made or answered, or the answer is unusable: why.
    Reason(String),
    /// The answer's body is over `limit`; `declared` is its `Content-Length` when the server sent one.
    TooLarge {
        /// The `Content-Length`, if any.
        declared: Option<u64>,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Reason(r) => f.write_str(r),
            Failure::TooLarge { declared: Some(size), limit } => {
                write!(f, "the answer is {size} bytes, over the {limit}-byte limit")
            }
            Failure::TooLarge { declared: None, limit } => write!(f, "the answer is over the {limit}-byte limit"),
        }
    }
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::Reason(reason)
    }
}

// === URLs ===

/// An absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    https: bool,
    authority: Authority,
    path_and_query: String,
}

impl Url {
    /// `http(s)://AUTHORITY/PATH`.
    pub(crate) fn new(https: bool, authority: &str, path_and_query: &str) -> Result<Url, String> {
        let authority: Authority = authority.parse().map_err(|e| format!("{authority:?} is not a host[:port]: {e}"))?;
        Ok(Url { https, authority, path_and_query: path_and_query.to_string() })
    }

    /// Parses an absolute URL.
    pub(crate) fn parse(s: &str) -> Result<Url, String> {
        let uri: Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{s:?} is not an http:// or https:// URL")),
        };
        let authority = uri.authority().cloned().ok_or_else(|| format!("{s:?} has no host"))?;
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let path_and_query = if path_and_query.is_empty() { "/" } else { path_and_query };
        Ok(Url { https, authority, path_and_query: path_and_query.to_string() })
    }

    /// Resolves a `Location`: an absolute URL, or an absolute path on this URL's origin.
    pub(crate) fn join(&self, location: &str) -> Result<Url, String> {
        if location.starts_with('/') && !location.starts_with("//") {
            Ok(Url { path_and_query: location.to_string(), ..self.clone() })
        } else if let Some(rest) = location.strip_prefix("//") {
            Url::parse(&format!("{}://{rest}", self.scheme()))
        } else {
            Url::parse(location)
        }
    }

    /// This URL with `name=value` added to its query.
    pub(crate) fn with_query(&self, name: &str, value: &str) -> Url {
        let sep = if self.path_and_query.contains('?') { '&' } else { '?' };
        Url { path_and_query: format!("{}{sep}{name}={value}", self.path_and_query), ..self.clone() }
    }

    /// Same scheme, host and port.
    pub(crate) fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https
            && self.authority.host().eq_ignore_ascii_case(other.authority.host())
            && self.port() == other.port()
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    fn host(&self) -> &str {
        let host = self.authority.host();
        host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
    }

    fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(if self.https { 443 } else { 80 })
    }
}

/// Without the query: URLs appear in error messages, and a query may hold a signature (presigned blob storage
/// URLs) or an upload's state.
impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        write!(f, "{}://{}{path}", self.scheme(), self.authority)
    }
}

// === transport ===

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let roots = crate::upstream::tls::system_roots()
        .clone()
        .map_err(|e| format!("no system root certificates found ({e}); install the ca-certificates package"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn connect(url: &Url) -> Result<Box<dyn Io>, String> {
    let addrs: Vec<_> =
        tokio::net::lookup_host((url.host(), url.port())).await.map_err(|e| format!("dns error: {e}"))?.collect();
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(format!("tcp connect error: {e}")),
        (None, None) => return Err(format!("dns error: {} has no address", url.host())),
    };
    let _ = tcp.set_nodelay(true);
    if !url.https {
        return Ok(Box::new(tcp));
    }
    let name = ServerName::try_from(url.host().to_string())
        .map_err(|e| format!("{:?} is not a valid TLS server name: {e}", url.host()))?;
    let tls = tls_connector()?.connect(name, tcp).await.map_err(|e| format!("tls handshake error: {e}"))?;
    Ok(Box::new(tls))
}

/// An answer, body read.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (empty for redirects and HEAD).
    pub body: Bytes,
    /// The URL that gave this answer (after redirects).
    pub url: Url,
}

impl Reply {
    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Why the status is not the expected one: the status, the registry's error codes and messages, `hint`.
    pub(crate) fn refusal(&self, hint: &str) -> Failure {
        let mut reason = format!("{} answered {}", self.url, self.status);
        let errors = registry_errors(&self.body);
        if !errors.is_empty() {
            reason.push_str(": ");
            reason.push_str(&errors);
        } else if let Some(text) = short_text(&self.body) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        if !hint.is_empty() {
            reason.push_str("; ");
            reason.push_str(hint);
        }
        Failure::Reason(reason)
    }
}

/// `CODE: message (detail)` for each entry of `{"errors":[{"code","message","detail"}]}`, joined by "; ".
fn registry_errors(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return String::new() };
    let Some(errors) = v.get("errors").and_then(|e| e.as_array()) else { return String::new() };
    let entries: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("UNKNOWN");
            match e.get("message").and_then(|m| m.as_str()).filter(|m| !m.is_empty()) {
                Some(m) => format!("{code}: {m}"),
                None => code.to_string(),
            }
        })
        .collect();
    entries.join("; ")
}

/// The body as one line of text, shortened, if it is UTF-8 and not empty.
fn short_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    })
}

/// One request on a fresh connection, the whole answer read (at most `limit` bytes for a 2xx, at most
/// [`MAX_ERROR_BODY`] otherwise, nothing for a 3xx), within [`REQUEST_TIMEOUT`].
async fn exchange(method: &Method, url: &Url, headers: &HeaderMap, body: &Bytes, limit: u64) -> Result<Reply, Failure> {
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange_untimed(method, url, headers, body, limit)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Reason(format!(
            "no complete answer from {url} within {} s; the registry is too slow or stuck",
            REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

async fn exchange_untimed(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    body: &Bytes,
    limit: u64,
) -> Result<Reply, Failure> {
    let sending = |e: String| Failure::Reason(format!("error sending request for url ({url}): {e}"));
    let io = match tokio::time::timeout(CONNECT_TIMEOUT, connect(url)).await {
        Ok(io) => io.map_err(|e| sending(format!("client error (Connect): {e}")))?,
        Err(_) => {
            return Err(sending(format!(
                "client error (Connect): no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    let (mut sender, conn) =
        http1::handshake::<_, Full<Bytes>>(TokioIo::new(io)).await.map_err(|e| sending(e.to_string()))?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));

    let mut request = Request::builder().method(method.clone()).uri(url.path_and_query.as_str());
    let host = HeaderValue::from_str(url.authority.as_str()).map_err(|e| sending(e.to_string()))?;
    if let Some(h) = request.headers_mut() {
        h.insert(HOST, host);
        h.insert(USER_AGENT, HeaderValue::from_static(concat!("weir/", env!("CARGO_PKG_VERSION"))));
        h.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !body.is_empty() || *method == Method::PUT || *method == Method::POST {
            h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
    }
    let request = request.body(Full::new(body.clone())).map_err(|e| sending(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| sending(error_chain(&e)))?;
    let (parts, mut incoming) = response.into_parts();

    let body = if parts.status.is_redirection() || *method == Method::HEAD {
        Bytes::new()
    } else {
        let limit = if parts.status.is_success() { limit } else { limit.min(MAX_ERROR_BODY) };
        let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        if let Some(size) = declared.filter(|&size: &u64| size > limit) {
            if parts.status.is_success() {
                return Err(Failure::TooLarge { declared: Some(size), limit });
            }
        }
        let mut bytes = Vec::new();
        while let Some(frame) = incoming.frame().await {
            let frame =
                frame.map_err(|e| Failure::Reason(format!("reading the answer from {url}: {}", error_chain(&e))))?;
            if let Ok(data) = frame.into_data() {
                if (bytes.len() + data.len()) as u64 > limit {
                    if !parts.status.is_success() {
                        // An error body is only quoted: keep what fits.
                        let room = (limit as usize).saturating_sub(bytes.len());
                        bytes.extend_from_slice(&data[..room.min(data.len())]);
                        break;
                    }
                    return Err(Failure::TooLarge { declared, limit });
                }
                bytes.extend_from_slice(&data);
            }
        }
        Bytes::from(bytes)
    };
    drop(driver);
    Ok(Reply { status: parts.status, headers: parts.headers, body, url: url.clone() })
}

/// Aborts the connection task when the request is done (or dropped by the timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = s.source();
    }
    reason
}

/// Sends a request, following redirects for GET and HEAD; `authorization` goes only to `origin`.
async fn send_following(
    method: &Method,
    url: Url,
    headers: &HeaderMap,
    body: &Bytes,
    limit: u64,
    authorization: Option<(&Url, &HeaderValue)>,
) -> Result<Reply, Failure> {
    let follow = *method == Method::GET || *method == Method::HEAD;
    let mut url = url;
    let mut redirects = 0;
    loop {
        let mut headers = headers.clone();
        if let Some((origin, value)) = authorization {
            if origin.same_origin(&url) {
                headers.insert(AUTHORIZATION, value.clone());
            }
        }
        let reply = exchange(method, &url, &headers, body, limit).await?;
        let redirect = matches!(reply.status.as_u16(), 301 | 302 | 303 | 307 | 308);
        if !follow || !redirect {
            return Ok(reply);
        }
        let location = reply
            .header(LOCATION.as_str())
            .ok_or_else(|| Failure::Reason(format!("{url} answered {} without a Location header", reply.status)))?;
        if redirects == MAX_REDIRECTS {
            return Err(Failure::Reason(format!("more than {MAX_REDIRECTS} redirects, the last from {url}")));
        }
        redirects += 1;
        url = url.join(location).map_err(|e| Failure::Reason(format!("{url} redirected to {e}")))?;
    }
}

// === the registry client ===

/// A client of one repository on one registry, for one push or pull.
pub(crate) struct Client {
    /// `http(s)://HOST[:PORT]/`: the registry's origin.
    base: Url,
    repository: String,
    scope: String,
    credentials: Credentials,
    tokens: TokenCache,
}

impl Client {
    /// A client of `repository` at `registry` (`HOST[:PORT]`), over HTTPS unless `https` is false.
    pub(crate) fn new(registry: &str, repository: &str, https: bool, access: Access) -> Result<Client, Failure> {
        Ok(Client {
            base: Url::new(https, registry, "/")?,
            repository: repository.to_string(),
            scope: access.scope(repository),
            credentials: Credentials::default(),
            tokens: TokenCache::default(),
        })
    }

    /// The URL of `/v2/<repository>/<path>`.
    pub(crate) fn url(&self, path: &str) -> Url {
        Url { path_and_query: format!("/v2/{}/{path}", self.repository), ..self.base.clone() }
    }

    /// Sends a request to `url` (the registry, or a URL it gave), with the token when `url` is the registry's,
    /// getting a token when the registry asks for one; follows redirects for GET and HEAD. Returns the answer
    /// whatever its status (a 2xx body at most `limit` bytes).
    pub(crate) async fn request(
        &mut self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Bytes,
        limit: u64,
    ) -> Result<Reply, Failure> {
        let registry = self.base.authority.to_string();
        let mut fetched = false;
        loop {
            let token = self.tokens.get(&registry, &self.scope).map(|t| format!("Bearer {t}"));
            let token = token.map(|t| HeaderValue::from_str(&t)).transpose().map_err(|e| {
                Failure::Reason(format!("the token from the token server is not a valid header value: {e}"))
            })?;
            let authorization = token.as_ref().map(|t| (&self.base, t));
            let reply = send_following(&method, url.clone(), &headers, &body, limit, authorization).await?;
            if reply.status != StatusCode::UNAUTHORIZED || fetched || !self.base.same_origin(&reply.url) {
                return Ok(reply);
            }
            let challenge =
                auth::pick_challenge(reply.headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()));
            match challenge {
                Some(c) if c.scheme == "bearer" => {
                    let token = self.fetch_token(&c).await?;
                    self.tokens.insert(&registry, &self.scope, token);
                    fetched = true;
                }
                Some(c) => {
                    return Err(reply.refusal(&format!(
                        "the registry asks for {} credentials; Weir only supports anonymous access and the Bearer \
                         token flow",
                        c.scheme
                    )))
                }
                None => return Ok(reply),
            }
        }
    }

    /// The Docker token flow: GET `realm?service=...&scope=...`, read `token` or `access_token`.
    async fn fetch_token(&self, challenge: &auth::Challenge) -> Result<String, Failure> {
        let realm = challenge.param("realm").ok_or_else(|| {
            Failure::Reason("the registry answered 401 with a Bearer challenge that has no realm".into())
        })?;
        let scope = challenge.param("scope").unwrap_or(&self.scope);
        let url = Url::parse(&auth::token_url(realm, challenge.param("service"), Some(scope)))
            .map_err(|e| Failure::Reason(format!("the registry's token realm: {e}")))?;
        let mut headers = HeaderMap::new();
        let credentials = self.credentials.authorization().map(|a| HeaderValue::from_str(&a)).transpose();
        let credentials = credentials.map_err(|e| Failure::Reason(format!("credentials: {e}")))?;
        let authorization = credentials.as_ref().map(|c| (&url, c));
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
        let reply = send_following(&Method::GET, url.clone(), &headers, &Bytes::new(), MAX_ERROR_BODY, authorization)
            .await
            .map_err(|f| Failure::Reason(format!("getting a token from {url}: {f}")))?;
        if !reply.status.is_success() {
            let refusal = reply.refusal("the token server refused an anonymous token for this repository");
            return Err(Failure::Reason(format!("getting a token: {refusal}")));
        }
        auth::parse_token(&reply.body).map_err(|e| Failure::Reason(format!("getting a token from {url}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let base = Url::new(false, "127.0.0.1:5000", "/v2/a/blobs/uploads/").unwrap();
        assert_eq!(base.to_string(), "http://127.0.0.1:5000/v2/a/blobs/uploads/");
        let joined = base.join("/v2/a/blobs/uploads/u1?_state=x").unwrap();
        let with_digest = joined.with_query("digest", "sha256:ab");
        assert_eq!(with_digest.path_and_query, "/v2/a/blobs/uploads/u1?_state=x&digest=sha256:ab");
        assert_eq!(with_digest.to_string(), "http://127.0.0.1:5000/v2/a/blobs/uploads/u1", "no query in messages");
        assert_eq!(base.with_query("digest", "d").path_and_query, "/v2/a/blobs/uploads/?digest=d");
        let other = base.join("https://blobs.example/x?sig=1").unwrap();
        assert_eq!((other.https, other.path_and_query.as_str()), (true, "/x?sig=1"));
        assert_eq!(other.to_string(), "https://blobs.example/x");
        assert!(!other.same_origin(&base));
        assert!(!base.join("http://127.0.0.1:5001/x").unwrap().same_origin(&base));
        assert!(base.join("http://127.0.0.1:5000/x").unwrap().same_origin(&base));
        assert_eq!(base.join("//h:1/p").unwrap().to_string(), "http://h:1/p");
        assert!(Url::parse("ftp://h/x").is_err());
        let v6 = Url::new(true, "[::1]:443", "/").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 443));
        assert_eq!(Url::new(true, "ghcr.io", "/").unwrap().port(), 443);
    }

    #[test]
    fn refusals_quote_the_registry() {
        let reply = |status: u16, body: &str| Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            url: Url::new(false, "h:1", "/v2/a/manifests/1").unwrap(),
        };
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            reply(404, body).refusal("check the tag").to_string(),
            "http://h:1/v2/a/manifests/1 answered 404 Not Found: MANIFEST_UNKNOWN: manifest unknown; check the tag"
        );
        assert_eq!(
            reply(500, "<h1>oops</h1>\n").refusal("").to_string(),
            "http://h:1/v2/a/manifests/1 answered 500 Internal Server Error: <h1>oops</h1>"
        );
        assert_eq!(reply(502, "").refusal("").to_string(), "http://h:1/v2/a/manifests/1 answered 502 Bad Gateway");
    }

    #[test]
    fn https_speaks_tls_with_verification() {
        use tokio::io::AsyncReadExt as _;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Not a TLS server: reads the first byte of the ClientHello, then hangs up.
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut first = [0u8; 1];
                s.read_exact(&mut first).await.ok().map(|_| first[0])
            });
            let url = Url::new(true, &addr.to_string(), "/v2/").unwrap();
            let err = exchange(&Method::GET, &url, &HeaderMap::new(), &Bytes::new(), 10).await.unwrap_err().to_string();
            let want = format!("error sending request for url (https://{addr}/v2/): client error (Connect): ");
            assert!(err.starts_with(&want), "{err}");
            match server.await.unwrap() {
                Some(byte) => {
                    assert_eq!(byte, 0x16, "a TLS handshake record");
                    assert!(err.contains("tls handshake error"), "{err}");
                }
                None => assert!(err.contains("no system root certificates found"), "{err}"),
            }
        });
    }
}
