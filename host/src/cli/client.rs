//! The admin API client the management commands use: one HTTP/1.1 request per call, bearer token,
//! JSON answers, and errors that say what to check.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::path::PathBuf;

/// Where the admin API is and how to authenticate (flattened into every management command).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The admin API's base URL.
    #[arg(long, env = "WEIR_ADMIN_URL", value_name = "URL", default_value = "http://127.0.0.1:9901")]
    pub admin_url: String,
    /// The bearer token (default: the contents of ./weir-data/admin-token, where `weir serve` writes it).
    #[arg(long, env = "WEIR_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// The default token file: the one `weir serve` writes in its default data dir.
const DEFAULT_TOKEN_FILE: &str = "weir-data/admin-token";

/// A connected-on-demand admin API client.
pub struct Client {
    authority: String,
    prefix: String,
    url: String,
    token: Option<String>,
}

impl Client {
    /// A client for `args`; a malformed URL is an error naming the flag.
    pub fn new(args: &AdminArgs) -> Result<Client, String> {
        let url = args.admin_url.trim_end_matches('/');
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!(
                "--admin-url {url}: only http:// URLs are supported (the admin API listens on plain HTTP, on 127.0.0.1 by default)"
            ));
        };
        let (authority, prefix) = match rest.split_once('/') {
            Some((a, p)) => (a.to_string(), format!("/{p}")),
            None => (rest.to_string(), String::new()),
        };
        if authority.is_empty() {
            return Err(format!("--admin-url {url}: no host; use e.g. http://127.0.0.1:9901"));
        }
        let token = match &args.token {
            Some(t) => Some(t.clone()),
            None => std::fs::read_to_string(PathBuf::from(DEFAULT_TOKEN_FILE)).ok().map(|t| t.trim().to_string()),
        };
        Ok(Client { authority, prefix, url: url.to_string(), token })
    }

    /// Sends one request; a 2xx answer's JSON, or the API's error message (with its issues and the
    /// filter's log lines) as the error.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Value), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the client runtime: {e}"))?;
        let (status, bytes) = rt.block_on(self.send(method, path, content_type, body))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, value));
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(format!(
                "the admin API at {} refused the token (401); pass --token or set WEIR_ADMIN_TOKEN (weir serve writes it to <data_dir>/admin-token)",
                self.url
            ));
        }
        let Some(err) = value.get("error") else {
            return Err(format!("{} answered {status} with no JSON error", self.url));
        };
        let mut msg = err.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_string();
        if let Some(issues) = err.get("issues").and_then(Value::as_array) {
            for i in issues {
                let path = i.get("path").and_then(Value::as_str).unwrap_or("");
                let m = i.get("message").and_then(Value::as_str).unwrap_or("");
                msg.push_str(&format!("\n  {path}: {m}"));
            }
        }
        if let Some(logs) = err.get("filter_logs").and_then(Value::as_array) {
            msg.push_str("\nthe filter logged:");
            for l in logs.iter().filter_map(Value::as_str) {
                msg.push_str(&format!("\n  {l}"));
            }
        }
        Err(msg)
    }

    /// A JSON request.
    pub fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
        self.call(method, path, "application/json", bytes).map(|(_, v)| v)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), String> {
        let unreachable = |e: &dyn std::fmt::Display| {
            format!(
                "cannot reach the admin API at {}: {e}; is `weir serve` running? (set --admin-url or WEIR_ADMIN_URL)",
                self.url
            )
        };
        let stream =
            tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::TcpStream::connect(&self.authority))
                .await
                .map_err(|_| unreachable(&"no answer within 10 s"))?
                .map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, content_type);
        if let Some(t) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("cannot build the request: {e}"))?;
        // Changes compile filters and start VMs on every worker; give them time.
        let resp = tokio::time::timeout(std::time::Duration::from_secs(120), sender.send_request(req))
            .await
            .map_err(|_| format!("the admin API at {} did not answer within 120 s", self.url))?
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(|e| unreachable(&e))?.to_bytes();
        Ok((status, bytes))
    }
}

/// Everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes a path segment or query value (every byte but the RFC 3986 unreserved characters).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}
