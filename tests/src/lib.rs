//! Test kit for Weir's integration tests: a gateway on 127.0.0.1 from a JSON config, mock upstream
//! servers with scriptable behaviour, and an HTTP client for HTTP/1.1, h2c and TLS (with SNI).

pub mod certs;
pub mod client;
pub mod flaky;
pub mod jwt;
pub mod mock_llm;
pub mod raw;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use weir::config::Config;
use weir::{Gateway, StartOptions};

/// A gateway running for one test; shut down (waiting for its threads) when dropped.
pub struct TestGateway {
    gateway: Option<Arc<Gateway>>,
    /// Holds the data directory and any files the config refers to.
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    /// Starts a gateway with 2 workers from `config` (JSON). Listener and admin addresses default to
    /// 127.0.0.1:0, the data directory to a fresh temporary directory.
    pub fn start(config: serde_json::Value) -> anyhow::Result<TestGateway> {
        let dir = tempfile::tempdir()?;
        Self::start_in(config, dir)
    }

    /// Like [`TestGateway::start`], with files (certificates) already placed in `dir`.
    pub fn start_in(mut config: serde_json::Value, dir: tempfile::TempDir) -> anyhow::Result<TestGateway> {
        let obj = config.as_object_mut().ok_or_else(|| anyhow::anyhow!("config must be an object"))?;
        obj.entry("data_dir").or_insert_with(|| dir.path().join("data").display().to_string().into());
        obj.entry("admin").or_insert_with(|| serde_json::json!({"address": "127.0.0.1:0"}));
        obj.entry("workers").or_insert(2.into());
        obj.entry("listeners").or_insert_with(|| serde_json::json!([{"name": "main", "address": "127.0.0.1:0"}]));
        let text = serde_json::to_string_pretty(&config)?;
        let parsed = Config::from_json(&text, "test.json", dir.path())?;
        let gateway = Gateway::start(parsed, StartOptions::default())?;
        Ok(TestGateway { gateway: Some(Arc::new(gateway)), dir })
    }

    /// The gateway.
    pub fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("running")
    }

    /// The bound address of listener `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.gateway().listener_addr(name).unwrap_or_else(|| panic!("no listener named {name}"))
    }

    /// The address of the listener named "main".
    pub fn main(&self) -> SocketAddr {
        self.addr("main")
    }

    /// The admin address.
    pub fn admin(&self) -> SocketAddr {
        self.gateway().admin_addr()
    }

    /// The sum of filter counter `name` (`weir_filter_counter_total{..,name="<name>"}`) on the admin `/metrics`,
    /// read until `done` accepts it (filters count in callbacks that may run after the client has its answer), at
    /// most 50 times 50 ms apart; the last value seen.
    pub async fn filter_counter(&self, name: &str, done: impl Fn(u64) -> bool) -> u64 {
        let needle = format!("name=\"{name}\"}}");
        let mut value = 0;
        for _ in 0..50 {
            let text = client::get_with(self.admin(), "localhost", "/metrics", &[]).await.expect("metrics").body;
            value = text
                .lines()
                .filter(|l| l.starts_with("weir_filter_counter_total") && l.contains(&needle))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            if done(value) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        value
    }

    /// The sum of the samples of metric `name` (a full sample name such as `weir_filter_memo_answers_total`) whose
    /// labels contain `label` (`route="r"`; empty: all), on the admin `/metrics`, read once.
    pub async fn metric(&self, name: &str, label: &str) -> u64 {
        let text = client::get_with(self.admin(), "localhost", "/metrics", &[]).await.expect("metrics").body;
        text.lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    /// One admin API request with the gateway's bearer token: the status and the JSON answer (`Null` when
    /// the body is not JSON).
    pub async fn admin_call(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        use http_body_util::BodyExt;
        let stream = tokio::net::TcpStream::connect(self.admin()).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "admin")
            .header("authorization", format!("Bearer {}", self.gateway().admin_token()))
            .header("content-type", content_type)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
    }

    /// Shuts down, waiting for the drain, off the async runtime.
    pub async fn shutdown(mut self) {
        if let Some(g) = self.gateway.take() {
            tokio::task::spawn_blocking(move || g.shutdown()).await.expect("shutdown thread");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(g) = self.gateway.take() {
            // Do not block a runtime thread: finish the shutdown on a plain thread.
            std::thread::spawn(move || g.shutdown());
        }
    }
}

/// Paths of the proxy-wasm test filters in `tests/filters`, built to `wasm32-wasip1` by `build.rs`.
pub mod filters {
    include!(concat!(env!("OUT_DIR"), "/filters.rs"));

    /// `wasm` with one custom section more (`weir-test` = `1.1.0`): the same filter as another build, with
    /// another digest, to publish as a new version.
    pub fn another_build(wasm: &[u8]) -> Vec<u8> {
        let (name, payload) = (b"weir-test", b"1.1.0");
        let mut out = wasm.to_vec();
        out.extend([0, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
        out.extend(name);
        out.extend(payload);
        out
    }
}
