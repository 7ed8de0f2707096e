//! A test client over real sockets: HTTP/1.1, h2c with prior knowledge, and TLS with a chosen SNI name
//! and ALPN, each on a fresh connection so the test controls the protocol exactly.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// Request body type.
pub type Body = BoxBody<Bytes, Infallible>;

/// How to talk to the server.
#[derive(Clone)]
pub enum Proto {
    /// HTTP/1.1 over TCP.
    H1,
    /// HTTP/2 with prior knowledge over TCP.
    H2c,
    /// TLS with this SNI name, trusting these roots, offering these ALPN protocols (h2 is used when
    /// the server picks it).
    Tls {
        /// SNI name.
        server_name: String,
        /// Trusted roots.
        roots: Vec<CertificateDer<'static>>,
        /// ALPN offers, e.g. `["h2", "http/1.1"]`.
        alpn: Vec<&'static str>,
    },
}

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
    /// HTTP version the connection used.
    pub version: http::Version,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Sends one request on a new connection and returns the streaming response (and the TLS ALPN
/// protocol, when TLS was used).
pub async fn send(addr: SocketAddr, proto: &Proto, req: Request<Body>) -> anyhow::Result<Response<Incoming>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    match proto {
        Proto::H1 => h1(TokioIo::new(tcp), req).await,
        Proto::H2c => h2(TokioIo::new(tcp), req).await,
        Proto::Tls { server_name, roots, alpn } => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store.add(r.clone())?;
            }
            let mut config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(store)
                    .with_no_client_auth();
            config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tls = connector.connect(ServerName::try_from(server_name.clone())?, tcp).await?;
            let negotiated_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            if negotiated_h2 {
                h2(TokioIo::new(tls), req).await
            } else {
                h1(TokioIo::new(tls), req).await
            }
        }
    }
}

async fn h1<I>(io: I, req: Request<Body>) -> anyhow::Result<Response<Incoming>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

async fn h2<I>(io: I, req: Request<Body>) -> anyhow::Result<Response<Incoming>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

/// A request with a body; `host` becomes the Host header (HTTP/1.1) or the authority (HTTP/2).
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    proto: &Proto,
) -> Request<Body> {
    let uri = match proto {
        Proto::H1 => path.to_string(),
        Proto::H2c => format!("http://{host}{path}"),
        Proto::Tls { alpn, .. } if alpn.first() == Some(&"h2") => format!("https://{host}{path}"),
        Proto::Tls { .. } => path.to_string(),
    };
    let mut b = Request::builder().method(method).uri(uri);
    if !matches!(proto, Proto::H2c) {
        b = b.header("host", host);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_string())).boxed()).expect("request")
}

/// Sends a request and reads the whole response.
pub async fn call(addr: SocketAddr, proto: &Proto, req: Request<Body>) -> anyhow::Result<Reply> {
    let resp = send(addr, proto, req).await?;
    let version = resp.version();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        version,
    })
}

/// `GET path` over HTTP/1.1 with `Host: localhost`.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Reply> {
    call(addr, &Proto::H1, request("GET", "localhost", path, &[], "", &Proto::H1)).await
}

/// `GET path` with extra headers over HTTP/1.1.
pub async fn get_with(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
    call(addr, &Proto::H1, request("GET", host, path, headers, "", &Proto::H1)).await
}

/// Writes `request` as it is on a new connection and reads until what arrived ends with `ends` (at most 5 s per
/// read): the exact bytes of an answer, for tests of what goes on the wire. The connection stays open.
pub async fn raw_exchange(
    addr: SocketAddr,
    request: &[u8],
    ends: &[u8],
) -> anyhow::Result<(tokio::net::TcpStream, Vec<u8>)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(request).await?;
    let mut got = Vec::new();
    while !got.ends_with(ends) {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut chunk)).await??;
        anyhow::ensure!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    Ok((conn, got))
}
