//! The embedded demo and the shipped filters `weir serve` publishes at start (`weir::demo`), through the real
//! binary: what is seeded and when, that it is seeded once, `weir token`, and `--listen`/`--admin`.
//! `host/tests/quickstart.rs` runs the whole demo as docs/quickstart.md shows it.

mod common;

use common::{cli as run, text, write_config, Served};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const SHIPPED: [&str; 5] =
    ["jwt-auth@0.1.0", "prompt-template@0.1.0", "provider-adapter@0.1.0", "quota@0.1.0", "response-cache@0.1.0"];

fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `NAME@VERSION` of every published filter.
fn published(dir: &Path, admin: &str) -> Vec<String> {
    let listed: Value = serde_json::from_str(&ok(run(dir, admin, &["filter", "list", "-o", "json"]))).expect("json");
    listed["filters"]
        .as_array()
        .expect("filters")
        .iter()
        .map(|f| format!("{}@{}", f["name"].as_str().unwrap_or_default(), f["version"].as_str().unwrap_or_default()))
        .collect()
}

fn route_ids(dir: &Path, admin: &str) -> Vec<String> {
    ok(run(dir, admin, &["route", "list"]))
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// The embedded demo on free ports, in `dir`.
fn demo(dir: &Path) -> (Served, String, String) {
    let mut served = Served::start(
        &["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"],
        dir,
        &[],
    );
    let line = served.wait_for_within("\"listener\":\"default\"", Duration::from_secs(120));
    let line: Value = serde_json::from_str(&line).expect("a JSON log line");
    let listen = line["address"].as_str().expect("the address").to_string();
    let admin = served.admin_url();
    (served, listen, admin)
}

fn curl_status(listen: &str, path: &str, token: &str, body: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "content-type: application/json"])
        .args(["-H", &format!("authorization: Bearer {token}"), "-d", body])
        .arg(format!("http://{listen}{path}"))
        .output()
        .expect("run curl");
    text(&out.stdout)
}

#[test]
fn the_demo_seeds_its_routes_once_and_its_key_outlives_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let (mut served, listen, admin) = demo(dir);
    assert_eq!(published(dir, &admin), SHIPPED);
    assert_eq!(route_ids(dir, &admin), ["welcome", "summarize", "chat"]);
    let token = ok(run(dir, &admin, &["token", "--sub", "alice"])).trim().to_string();
    assert_eq!(curl_status(&listen, "/api/summarize", &token, r#"{"text": "hi"}"#), "200");

    ok(run(dir, &admin, &["route", "rm", "chat"]));
    served.signal("-TERM");
    assert!(served.wait_exit(Duration::from_secs(15)).success());

    let (_served, listen, admin) = demo(dir);
    assert_eq!(route_ids(dir, &admin), ["welcome", "summarize"], "a removed demo route stays removed");
    assert_eq!(published(dir, &admin), SHIPPED);
    assert_eq!(curl_status(&listen, "/api/summarize", &token, r#"{"text": "hi"}"#), "200", "the key is kept");
    assert_eq!(curl_status(&listen, "/v1/chat/completions", &token, "{}"), "404", "no chat route any more");

    // Another data dir has another key: this token is refused there.
    let other = tempfile::tempdir().expect("tmp");
    let (_other, other_listen, _) = demo(other.path());
    assert_eq!(curl_status(&other_listen, "/api/summarize", &token, r#"{"text": "hi"}"#), "401");
}

#[test]
fn a_configuration_gets_the_shipped_filters_unless_it_requires_signed_artifacts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let base = json!({
        "listeners": [{"name": "public", "address": "127.0.0.1:0"}],
        "admin": {"address": "127.0.0.1:0"},
        "data_dir": "weir-data",
        "logging": {"format": "json"}
    });
    let config = write_config(dir, base.clone());
    let mut served = Served::start(&["serve", "--config", &config], dir, &[]);
    served.listening("public");
    // Transparent huge pages are off for the process (src/main.rs): with them, mimalloc's arena made an idle
    // gateway 59 MiB resident instead of 18.
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.pid())).expect("proc status");
    assert!(status.lines().any(|l| l.split_whitespace().eq(["THP_enabled:", "0"])), "THP is on: {status}");
    let admin = served.admin_url();
    assert_eq!(published(dir, &admin), SHIPPED);
    assert_eq!(route_ids(dir, &admin), Vec::<String>::new(), "no demo routes outside the demo");
    drop(served);

    let signed = tempfile::tempdir().expect("tmp");
    let dir = signed.path();
    ok(run(dir, "", &["filter", "keygen", "--out", "release"]));
    let mut config = base;
    config["registry"] = json!({"trusted_keys": ["release.pub"], "require_signed": true});
    let config = write_config(dir, config);
    let mut served = Served::start(&["serve", "--config", &config], dir, &[]);
    served.listening("public");
    let admin = served.admin_url();
    assert_eq!(published(dir, &admin), Vec::<String>::new(), "the embedded modules are not signed");
}

#[test]
fn token_and_listen_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let out = run(dir, "", &["token"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: no demo signing key at ./weir-data/demo/jwt.key: run `weir serve` (with no --config) once from this folder, which writes it, or pass --data-dir to the data dir that demo uses\n"
    );
    weir::demo::token::ensure_key(&dir.join("weir-data")).expect("a demo key");
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["token", "--claim", "scope"],
            1,
            "error: --claim \"scope\": expected NAME=VALUE, like --claim scope=\"chat:write\"\n",
        ),
        (
            &["token", "--claim", "sub=bob"],
            1,
            "error: --claim \"sub=bob\": sub is set by weir token (use --sub or --ttl)\n",
        ),
        (&["token", "--ttl", "0"], 2, "error: invalid value '0' for '--ttl <SECONDS>'"),
    ];
    for (args, code, want) in cases {
        let out = run(dir, "", args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(text(&out.stderr).starts_with(want), "{args:?}: {}", text(&out.stderr));
    }
    let token = ok(run(dir, "", &["token", "--sub", "bob", "--claim", "tier=2"]));
    assert_eq!(token.trim().split('.').count(), 3, "{token}");

    let config = write_config(
        dir,
        json!({"listeners": [{"name": "a", "address": "127.0.0.1:0"}, {"name": "b", "address": "127.0.0.1:0"}]}),
    );
    let out = run(dir, "", &["serve", "--config", &config, "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {config}: 1 error in the configuration\n  {config}: $.listeners: --listen replaces the address of the only listener, and this configuration has 2: set their addresses in the file instead\n"
        )
    );
}

/// The seed is built and started with the rest before it is written: a start that fails writes nothing.
#[test]
fn a_start_that_fails_leaves_the_registry_as_it_was() {
    use weir::config::Config;
    use weir::demo::seed::Seed;
    use weir::registry::Registry;
    use weir::server::{Gateway, StartOptions};

    let tmp = tempfile::tempdir().expect("tmp");
    // A file route with the id of a demo route: the composed configuration is refused.
    let config = Config::from_json(
        r#"{"listeners": [{"name": "public", "address": "127.0.0.1:0"}], "admin": {"address": "127.0.0.1:0"},
            "data_dir": ".",
            "routes": [{"name": "chat", "match": {"path": {"prefix": "/"}}, "direct_response": {"status": 200}}],
            "clusters": [{"name": "demo-llm", "endpoints": ["127.0.0.1:9"]}]}"#,
        "weir.json",
        tmp.path(),
    )
    .expect("valid");
    let key = weir::demo::token::ensure_key(tmp.path()).expect("key");
    let seed = Seed { filters: true, demo_jwks: Some(weir::demo::token::jwks(&key.verifying_key())) };
    let registry_dir = tmp.path().join("registry");
    let options =
        StartOptions { registry_dir: Some(registry_dir.clone()), seed: Some(seed), ..StartOptions::default() };
    let refused = Gateway::start(config, options).err().expect("refused").to_string();
    assert!(refused.contains("chat"), "{refused}");
    let state = Registry::open(&registry_dir).expect("open").state().expect("state");
    assert!(state.filters.is_empty() && state.routes.is_empty(), "nothing written: {state:?}");
    assert_eq!(state.generation, 0);
}
