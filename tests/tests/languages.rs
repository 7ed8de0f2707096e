//! The example filter of docs/filters-in-other-languages.md, written five times (examples/lang/: Rust on the
//! crates.io `proxy-wasm` crate, Rust on `weir-sdk`, Go, C and AssemblyScript), runs through the real gateway and
//! behaves the same in every language: the same requests give the same status, headers, body, upstream request
//! and metric, and each language refuses the same bad configurations.
//!
//! Each module is built once per source change by its `build.sh` (which installs its toolchain from the package
//! registries when missing) into `<target>/tmp/lang-examples/<lang>-<source hash>.wasm`. A toolchain that cannot
//! be installed fails the test with the build script's message naming what to install.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use weir_tests::client::{call, get_with, request, Proto};
use weir_tests::upstream::{closed_port, Upstream};
use weir_tests::TestGateway;

/// The example's folders under examples/lang/, in the order the results are compared.
const LANGUAGES: &[&str] = &["rust-proxy-wasm", "rust-sdk", "go", "c", "assemblyscript"];

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Every file under `dir` (not `node_modules/`, `target/`, nor built `.wasm`), sorted, fed into `hash`.
fn hash_tree(hash: &mut Sha256, dir: &Path, base: &Path) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "node_modules" && name != "target" {
                hash_tree(hash, &path, base);
            }
        } else if !name.ends_with(".wasm") {
            hash.update(path.strip_prefix(base).expect("under base").to_string_lossy().as_bytes());
            hash.update(std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())));
        }
    }
}

/// Builds one language's module with its `build.sh`, unless a module of the same sources is already there.
fn build(lang: &str) -> Result<PathBuf, String> {
    let root = root();
    let dir = root.join("examples/lang").join(lang);
    let mut hash = Sha256::new();
    hash_tree(&mut hash, &dir, &root);
    if lang == "rust-sdk" {
        hash_tree(&mut hash, &root.join("sdk/src"), &root);
        for file in ["sdk/Cargo.toml", "Cargo.toml"] {
            hash.update(std::fs::read(root.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}")));
        }
    }
    let digest: String = hash.finalize().iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lang-examples");
    let wasm = out_dir.join(format!("{lang}-{digest}.wasm"));
    if wasm.is_file() {
        return Ok(wasm);
    }
    // Written under another name first, so that a build that fails half-way leaves no module to be reused.
    let partial = wasm.with_extension("wasm.partial");
    let output = Command::new("bash")
        .arg(dir.join("build.sh"))
        .arg(&partial)
        .env("WEIR_LANG_TARGET_DIR", out_dir.join("cargo"))
        .output()
        .map_err(|e| format!("{lang}: could not run bash {}/build.sh: {e}", dir.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{lang}: examples/lang/{lang}/build.sh failed ({}); it installs its toolchain when missing, see its \
             README.md for what to install by hand:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // Modules of older sources of this language go: one per language stays.
    for old in std::fs::read_dir(&out_dir).into_iter().flatten().flatten().map(|entry| entry.path()) {
        let name = old.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if old != wasm
            && name.strip_prefix(lang).and_then(|rest| rest.strip_prefix('-')).is_some_and(|rest| rest.len() == 21)
        {
            let _ = std::fs::remove_file(&old);
        }
    }
    let bytes = std::fs::read(&partial).map_err(|e| format!("{lang}: build.sh wrote no {}: {e}", partial.display()))?;
    if !bytes.starts_with(b"\0asm") {
        return Err(format!("{lang}: {} is not a WebAssembly module", partial.display()));
    }
    std::fs::rename(&partial, &wasm).map_err(|e| format!("{lang}: renaming {}: {e}", partial.display()))?;
    Ok(wasm)
}

/// Every language's module, built once per test process (the first caller builds them one after another).
fn modules() -> &'static [(&'static str, String)] {
    static MODULES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    MODULES.get_or_init(|| {
        let mut errors = Vec::new();
        let mut built = Vec::new();
        for lang in LANGUAGES {
            match build(lang) {
                Ok(path) => built.push((*lang, path.display().to_string())),
                Err(e) => errors.push(e),
            }
        }
        assert!(errors.is_empty(), "building the examples failed:\n{}", errors.join("\n\n"));
        // Five different modules: a build script that copied another language's output would compare it to itself.
        let bytes: Vec<Vec<u8>> = built.iter().map(|(_, path)| std::fs::read(path).expect("built")).collect();
        for (i, a) in bytes.iter().enumerate() {
            for (j, b) in bytes.iter().enumerate().skip(i + 1) {
                assert!(a != b, "{} and {} built the same module", built[i].0, built[j].0);
            }
        }
        built
    })
}

/// The configuration every language gets (docs/filters-in-other-languages.md), with `changes` merged in.
fn config(changes: Value) -> Value {
    let mut config = json!({
        "tag": "lang-test",
        "deny_path": "/admin",
        "callout_cluster": "auth",
        "callout_path": "/verdict",
        "callout_header": "x-upstream"
    });
    for (key, value) in changes.as_object().expect("an object") {
        config[key] = value.clone();
    }
    config
}

/// The main route's configuration as text (a JSON string is passed to the filter as its bytes): the same values
/// as [`config`], spelled with JSON escapes and spread over lines, so every parser has to decode them.
const ESCAPED_CONFIG: &str = "{\n  \"tag\": \"\\u006cang-test\",\n  \"deny_path\": \"\\/admin\",\n  \"callout_cluster\": \"auth\",\n  \"callout_path\": \"/verdict\",\t\"callout_header\": \"x-upstream\"\n}";

/// The gateway: `/nohdr` copies a header the callout answer lacks, `/down` calls out to a dead cluster; every
/// other path gets [`ESCAPED_CONFIG`]. The three are the same module attached three times.
fn gateway_config(module: &str, svc: &Upstream, auth: &Upstream) -> Value {
    let filter = |configuration: Value| json!({"name": "example", "module": module, "configuration": configuration});
    json!({
        "routes": [
            {"name": "nohdr", "match": {"path": {"prefix": "/nohdr"}}, "cluster": "svc",
             "filters": [filter(config(json!({"callout_header": "x-absent"})))]},
            {"name": "down", "match": {"path": {"prefix": "/down"}}, "cluster": "svc",
             "filters": [filter(config(json!({"callout_cluster": "dead"})))]},
            {"name": "main", "cluster": "svc", "filters": [filter(Value::String(ESCAPED_CONFIG.to_owned()))]}
        ],
        "clusters": [
            {"name": "svc", "endpoints": [svc.endpoint()]},
            {"name": "auth", "endpoints": [auth.endpoint()]},
            {"name": "dead", "endpoints": [closed_port()]}
        ]
    })
}

/// One request of the table: what is sent.
struct Case {
    method: &'static str,
    path: &'static str,
    body: &'static str,
}

const CASES: &[Case] = &[
    Case { method: "GET", path: "/hello", body: "" },
    Case { method: "POST", path: "/items?id=7", body: "{\"n\":1}" },
    Case { method: "GET", path: "/admin", body: "" },
    Case { method: "GET", path: "/admin?really=1", body: "" },
    Case { method: "GET", path: "/nohdr/x", body: "" },
    Case { method: "GET", path: "/down/x", body: "" },
];

/// One answer: the request (`METHOD path`), the status, the response headers sorted by name (repeated ones in the
/// order received; without `date` and `x-request-id`), and the body (JSON when it is, an upstream echo without the
/// gateway's per-request headers).
#[derive(Debug, PartialEq)]
struct Answer {
    request: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    /// Every value of response header `name`, in order.
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// What one language did: the answers, then the requests the upstream and the callout target got, and the metric.
#[derive(Debug, PartialEq)]
struct Run {
    answers: Vec<Answer>,
    upstream_requests: (usize, usize),
    metric: String,
}

/// Drops what differs from one request to the next: ids, trace context, the client's address and port.
fn normalize_body(body: &str) -> Value {
    let Ok(mut value) = serde_json::from_str::<Value>(body) else { return Value::String(body.to_owned()) };
    if let Some(headers) = value.get_mut("headers").and_then(Value::as_object_mut) {
        for random in ["x-request-id", "traceparent", "x-forwarded-for", "x-forwarded-port"] {
            headers.remove(random);
        }
    }
    value
}

/// The counter line of `example_requests` on the admin `/metrics`.
async fn metric_line(gw: &TestGateway) -> anyhow::Result<String> {
    let metrics = get_with(gw.admin(), "localhost", "/metrics", &[]).await?.body;
    Ok(metrics
        .lines()
        .find(|line| line.contains("name=\"example_requests\""))
        .unwrap_or("(no example_requests line)")
        .to_owned())
}

async fn run(module: &str) -> anyhow::Result<Run> {
    let svc = Upstream::start("svc").await;
    let auth = Upstream::start("auth").await;
    let gw = TestGateway::start(gateway_config(module, &svc, &auth))?;
    let mut answers = Vec::new();
    for case in CASES {
        let req = request(case.method, "lang.test", case.path, &[("x-client", "1")], case.body, &Proto::H1);
        let reply = call(gw.main(), &Proto::H1, req).await?;
        let mut headers: Vec<(String, String)> = reply
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        answers.push(Answer {
            request: format!("{} {}", case.method, case.path),
            status: reply.status.as_u16(),
            headers,
            body: normalize_body(&reply.body),
        });
    }
    let metric = metric_line(&gw).await?;
    let run = Run { answers, upstream_requests: (svc.requests(), auth.requests()), metric };
    gw.shutdown().await;
    Ok(run)
}

#[tokio::test]
async fn every_language_behaves_the_same() -> anyhow::Result<()> {
    let modules = tokio::task::spawn_blocking(modules).await?;
    let mut runs = Vec::new();
    for (lang, module) in modules {
        runs.push((*lang, run(module).await?));
    }

    // The reference: the crates.io proxy-wasm version, checked against the specification.
    let (_, reference) = &runs[0];
    let answer = |request: &str| {
        reference.answers.iter().find(|a| a.request == request).unwrap_or_else(|| panic!("no answer to {request}"))
    };
    let hello = answer("GET /hello");
    assert_eq!(hello.status, 200, "{}", hello.body);
    assert_eq!(hello.header("x-example-response"), ["lang-test"]);
    assert_eq!(hello.header("x-example-callout"), ["auth"], "the callout answer's x-upstream");
    assert_eq!(hello.header("x-upstream"), ["svc"]);
    assert_eq!(hello.body["headers"]["x-example-request"], "lang-test", "the request header reached the upstream");
    assert_eq!(hello.body["headers"]["x-client"], "1");

    let post = answer("POST /items?id=7");
    assert_eq!(
        (post.status, &post.body["method"], &post.body["uri"], &post.body["body"]),
        (200, &json!("POST"), &json!("/items?id=7"), &json!("{\"n\":1}"))
    );

    let refused = answer("GET /admin");
    assert_eq!((refused.status, &refused.body), (403, &json!({"error": "forbidden"})));
    assert_eq!(refused.header("content-type"), ["application/json"]);
    assert_eq!(
        refused.header("x-example-response"),
        ["lang-test"],
        "the filter's response callback ran for its own answer"
    );
    assert!(refused.header("x-example-callout").is_empty(), "no callout for a refused request");

    let query = answer("GET /admin?really=1");
    assert_eq!((query.status, &query.body["uri"]), (200, &json!("/admin?really=1")), "only the exact path is refused");

    let no_header = answer("GET /nohdr/x");
    assert_eq!(no_header.status, 200);
    assert!(no_header.header("x-example-callout").is_empty(), "the callout answer had no x-absent");

    // A callout cluster nothing listens on: answered 503 by the gateway, as Envoy's async client is (no
    // `x-absent` in it), so the filter goes on to the upstream.
    let down = answer("GET /down/x");
    assert_eq!((down.status, &down.body["uri"]), (200, &json!("/down/x")));
    assert!(down.header("x-example-callout").is_empty(), "the 503 answer had no x-absent");

    assert_eq!(reference.upstream_requests, (5, 4), "svc: all but /admin; auth: all but /admin and /down");
    assert!(reference.metric.ends_with(" 6"), "every request counted once: {}", reference.metric);

    // Every other language: exactly the same.
    for (lang, run) in &runs[1..] {
        for (expected, got) in reference.answers.iter().zip(&run.answers) {
            assert_eq!(got, expected, "{lang} differs from {} on {}", runs[0].0, expected.request);
        }
        assert_eq!(run, reference, "{lang} differs from {}", runs[0].0);
    }
    Ok(())
}

#[tokio::test]
async fn every_language_refuses_the_same_bad_configurations() -> anyhow::Result<()> {
    let modules = tokio::task::spawn_blocking(modules).await?;
    let svc = Upstream::start("svc").await;
    let mut missing = config(json!({}));
    missing.as_object_mut().expect("an object").remove("callout_path");
    // (what is wrong, the configuration, what the error says: the filter's own words come along in the gateway's)
    let bad = [
        ("a number for a string", config(json!({"tag": 7})), "string"),
        ("an unknown key", config(json!({"colour": "blue"})), "colour"),
        ("a missing key", missing, "callout_path"),
        ("not JSON", json!("tag"), "configuration"),
    ];
    for (lang, module) in modules {
        for (what, configuration, says) in &bad {
            let started = TestGateway::start(json!({
                "routes": [{"name": "main", "cluster": "svc",
                            "filters": [{"name": "example", "module": module, "configuration": configuration}]}],
                "clusters": [{"name": "svc", "endpoints": [svc.endpoint()]}, {"name": "auth", "endpoints": [svc.endpoint()]}]
            }));
            let error = match started {
                Ok(gw) => {
                    gw.shutdown().await;
                    panic!("{lang} accepted a configuration with {what}");
                }
                Err(e) => format!("{e:#}"),
            };
            assert!(error.contains("filter example"), "{lang}, {what}: the error names the filter: {error}");
            assert!(error.contains("rejected its configuration"), "{lang}, {what}: {error}");
            assert!(error.contains(says), "{lang}, {what}: the filter's reason ({says:?}) is in the error: {error}");
        }
    }
    Ok(())
}
