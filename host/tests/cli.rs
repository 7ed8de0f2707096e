//! The `weir` binary as a user runs it: `config check`, `config default`, `serve` with and without a
//! configuration, JSON access logs, SIGTERM with a graceful drain, and start-up errors; `filter new` (the crate
//! it writes builds to wasm and passes its tests), and `examples/hello/README.md` run as written.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use weir_tests::client::get;
use weir_tests::filters;
use weir_tests::upstream::Upstream;

mod common;

use common::{fenced_blocks, text, weir, write_config, Served};

/// A configuration for `weir serve` on ephemeral ports with JSON logs, plus `fields`.
fn served(fields: serde_json::Value) -> serde_json::Value {
    let mut config = serde_json::json!({
        "listeners": [{"name": "main", "address": "127.0.0.1:0"}],
        "admin": {"address": "127.0.0.1:0"},
        "logging": {"format": "json"}
    });
    if let (Some(config), Some(fields)) = (config.as_object_mut(), fields.as_object()) {
        config.extend(fields.clone());
    }
    config
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = weir(&["--version"], dir.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("weir {}\n", env!("CARGO_PKG_VERSION")));
    let out = weir(&["--help"], dir.path());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("serve") && help.contains("config"), "{help}");
}

#[test]
fn config_check_reports_every_error_with_file_and_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = write_config(
        dir.path(),
        serde_json::json!({
            "listeners": [{"name": "main", "address": "127.0.0.1:99999"}],
            "routes": [{"name": "r", "cluster": "missing"}],
            "clusters": [{"name": "c", "endpoints": ["127.0.0.1:3000"], "lb_policy": "fastest"}]
        }),
    );
    let out = weir(&["config", "check", &file], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {file}: 3 errors in the configuration\n\
             \x20 {file}: $.listeners[0].address: \"127.0.0.1:99999\" is not an IP address and port; write it like \"127.0.0.1:8080\" or \"[::1]:8080\"\n\
             \x20 {file}: $.clusters[0].lb_policy: unknown lb_policy \"fastest\"; use \"round_robin\", \"least_request\" or \"consistent_hash\"\n\
             \x20 {file}: $.routes[0].cluster: unknown cluster \"missing\"; defined clusters: none (add one under $.clusters)\n"
        )
    );

    std::fs::write(&file, "{\n  \"listeners\": [,]\n}").expect("write");
    let out = weir(&["config", "check", &file], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("error: {file}:2:17: not valid JSON: expected value\n"));

    let out = weir(&["config", "check", "does-not-exist.json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: does-not-exist.json: cannot read the file: No such file or directory (os error 2)\n"
    );
}

#[test]
fn config_default_prints_a_valid_configuration() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = weir(&["config", "default"], dir.path());
    assert!(out.status.success());
    std::fs::write(dir.path().join("default.json"), &out.stdout).expect("write");
    let out = weir(&["config", "check", "default.json"], dir.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "default.json: ok (1 listener, 1 route, 0 clusters)\n");
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_without_flags_answers_the_demo_route_on_8080() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut served = Served::start(&["serve"], dir.path(), &[]);
    // A fresh data dir: the five shipped filters are compiled before the gateway listens.
    served.wait_for_within("admin listening", Duration::from_secs(120));
    let reply = get("127.0.0.1:8080".parse()?, "/").await?;
    assert_eq!(reply.status, 200);
    let readme = std::fs::read_to_string(workspace().join("README.md"))?;
    let shown = format!("$ curl -s http://127.0.0.1:8080/\n{}", reply.body);
    assert!(readme.contains(&shown), "the README shows the welcome answer as it is: {}", reply.body);
    let ready = get("127.0.0.1:9901".parse()?, "/readyz").await?;
    assert!(ready.status == 200 || ready.status == 503);
    let token = dir.path().join("weir-data").join("admin-token");
    assert!(token.is_file(), "the data directory ./weir-data holds the generated admin token");
    served.signal("-INT");
    assert!(served.wait_exit(Duration::from_secs(15)).success());
    served.wait_for("SIGINT received");
    Ok(())
}

/// `WEIR_WASM_PERF_MAP=1` (docs/writing-filters.md, "Profiling a filter"): `/tmp/perf-<pid>.map` names the
/// compiled guest functions by the module's name section, for `perf report`; without it there is no map.
#[tokio::test(flavor = "multi_thread")]
async fn the_perf_map_names_the_filters_functions_when_asked() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let dir = tempfile::tempdir()?;
    let file = write_config(
        dir.path(),
        served(serde_json::json!({
            "routes": [{"name": "all", "cluster": "svc",
                        "filters": [{"name": "tag", "module": filters::ADD_HEADER_WASM, "configuration": {"name": "t"}}]}],
            "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
        })),
    );
    for (value, wanted) in [("1", true), ("0", false)] {
        let mut served = Served::start(&["serve", "--config", &file], dir.path(), &[("WEIR_WASM_PERF_MAP", value)]);
        let addr = served.listening("main");
        assert_eq!(get(addr, "/").await?.status, 200);
        let map = PathBuf::from(format!("/tmp/perf-{}.map", served.pid()));
        let text = std::fs::read_to_string(&map).unwrap_or_default();
        served.kill_hard();
        let _ = std::fs::remove_file(&map);
        let named = text.lines().any(|line| line.ends_with(" proxy_on_request_headers"));
        assert_eq!(named, wanted, "WEIR_WASM_PERF_MAP={value}: {} lines in {}", text.lines().count(), map.display());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_then_exits_0() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let dir = tempfile::tempdir()?;
    let file = write_config(
        dir.path(),
        served(serde_json::json!({
            "routes": [{"name": "all", "cluster": "svc"}],
            "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
        })),
    );
    let mut served = Served::start(&["serve", "--config", &file, "--workers", "2"], dir.path(), &[]);
    let addr = served.listening("main");
    let admin_line = served.wait_for("admin listening");
    let admin: SocketAddr =
        serde_json::from_str::<serde_json::Value>(&admin_line)?["address"].as_str().unwrap_or_default().parse()?;
    let in_flight = tokio::spawn(async move { get(addr, "/slow/1000").await });
    while up.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.signal("-TERM");
    // While the request drains, readiness reports it.
    let mut ready = get(admin, "/readyz").await?;
    for _ in 0..100 {
        if ready.status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        ready = get(admin, "/readyz").await?;
    }
    assert_eq!((ready.status.as_u16(), ready.body.as_str()), (503, "{\"status\":\"draining\"}\n"));
    let reply = in_flight.await??;
    assert_eq!(reply.status, 200, "the in-flight request completes during the drain");
    assert_eq!(reply.body, "slow\n");
    let status = tokio::task::spawn_blocking(move || {
        let status = served.wait_exit(Duration::from_secs(15));
        served.wait_for("SIGTERM received");
        let access = served.wait_for("\"path\":\"/slow/1000\"");
        (status, access)
    })
    .await?;
    assert!(status.0.success(), "exit status {:?}", status.0);
    let access: serde_json::Value = serde_json::from_str(&status.1)?;
    for (field, want) in
        [("method", "GET"), ("route", "all"), ("upstream", up.endpoint().as_str()), ("result", "complete")]
    {
        assert_eq!(access[field], want, "{field} in {access}");
    }
    assert_eq!(access["status"], 200);
    assert_eq!(access["bytes"], 5);
    assert_eq!(access["request_id"].as_str().map(str::len), Some(36));
    assert!(access["duration_ms"].as_f64().is_some_and(|d| d >= 1000.0), "{access}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after exit");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_is_bounded() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let dir = tempfile::tempdir()?;
    let file = write_config(
        dir.path(),
        served(serde_json::json!({
            "routes": [{"name": "all", "cluster": "svc"}],
            "clusters": [{"name": "svc", "endpoints": [up.endpoint()], "request_timeout_ms": 60000}],
            "shutdown": {"drain_timeout_ms": 300}
        })),
    );
    let mut served = Served::start(&["serve", "--config", &file], dir.path(), &[]);
    let addr = served.listening("main");
    let stuck = tokio::spawn(async move { get(addr, "/slow/30000").await });
    while up.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || {
        let s = served.wait_exit(Duration::from_secs(10));
        served.wait_for("drain timeout reached");
        s
    })
    .await?;
    assert!(status.success());
    assert!(stuck.await?.is_err(), "the request still in flight after the drain bound is cut off");
    Ok(())
}

#[test]
fn start_errors_are_clear_and_exit_1() {
    let dir = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
    for (config, want) in [
        (
            serde_json::json!({"listeners": [{"name": "main", "address": format!("127.0.0.1:{port}")}], "admin": {"address": "127.0.0.1:0"}}),
            format!("error: listener main: cannot bind 127.0.0.1:{port}: Address already in use (os error 98)\n"),
        ),
        (
            serde_json::json!({"listeners": [{"name": "main", "address": "127.0.0.1:0", "tls": {"certificates": [{"cert": "cert.pem", "key": "key.pem"}]}}], "admin": {"address": "127.0.0.1:0"}}),
            format!(
                "error: listener main: {}: holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)\n",
                dir.path().join("cert.pem").display()
            ),
        ),
    ] {
        let file = write_config(dir.path(), config);
        let out = weir(&["serve", "--config", &file], dir.path());
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.ends_with(&want), "got:\n{stderr}\nwant suffix:\n{want}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_token_from_the_environment() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = write_config(
        dir.path(),
        served(serde_json::json!({
            "routes": [{"name": "hi", "direct_response": {"status": 200, "body": "hi"}}]
        })),
    );
    let mut served =
        Served::start(&["serve", "--config", &file], dir.path(), &[("WEIR_ADMIN_TOKEN", "env-token-0123456789")]);
    let line = served.wait_for("admin listening");
    let admin: SocketAddr =
        serde_json::from_str::<serde_json::Value>(&line)?["address"].as_str().unwrap_or("").parse()?;
    let ok = weir_tests::client::get_with(
        admin,
        "localhost",
        "/api/v1/config",
        &[("authorization", "Bearer env-token-0123456789")],
    )
    .await?;
    assert_eq!(ok.status, 200);
    assert!(!dir.path().join("weir-data").join("admin-token").exists(), "no token file when the environment gives one");
    Ok(())
}

/// The workspace's root folder.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the workspace").to_path_buf()
}

/// The target directory this test was built in (`<target>/debug/deps/cli-*`).
fn target_dir() -> PathBuf {
    std::env::current_exe().expect("test path").ancestors().nth(3).expect("<target>/debug/deps/cli-*").to_path_buf()
}

/// `weir filter new demo`, then, in the crate, the README's build command and `cargo test` (the fake-host tests
/// and the harness tests on the built .wasm), with this workspace's target directory so that Weir's compiled
/// dependencies are reused.
#[test]
fn filter_new_writes_a_crate_that_builds_to_wasm_and_passes_its_tests() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = weir(&["filter", "new", "demo", "--dir", &dir.path().display().to_string()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = dir.path().join("demo");
    assert!(
        text(&out.stdout).starts_with(&format!(
            "created filter crate demo in {}: Cargo.toml, src/lib.rs, src/tests.rs, tests/wasm.rs, README.md, \
             weir.json, .gitignore\n",
            root.display()
        )),
        "{}",
        text(&out.stdout)
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let sdk = workspace().join("sdk").canonicalize().expect("sdk/");
    let host = workspace().join("host").canonicalize().expect("host/");
    for line in [
        "name = \"demo\"".to_string(),
        "crate-type = [\"cdylib\"]".to_string(),
        format!("weir-sdk = {{ path = \"{}\" }}", sdk.display()),
        format!("weir = {{ path = \"{}\" }}", host.display()),
        "lto = true".to_string(),
        "opt-level = 3".to_string(),
        "panic = \"abort\"".to_string(),
        "strip = true".to_string(),
    ] {
        assert!(manifest.lines().any(|l| l == line), "no line {line:?} in Cargo.toml:\n{manifest}");
    }
    assert!(root.join("Cargo.lock").is_file(), "the checkout's Cargo.lock is copied");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(readme.contains("\ncargo build --release --target wasm32-wasip1\n"), "{readme}");

    let target = target_dir();
    let cargo = |args: &[&str]| {
        let started = Instant::now();
        let out = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run cargo");
        eprintln!("cargo {}: {:.1} s", args.join(" "), started.elapsed().as_secs_f64());
        assert!(out.status.success(), "cargo {args:?} failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    cargo(&["build", "--release", "--target", "wasm32-wasip1"]);
    let wasm = std::fs::read(target.join("wasm32-wasip1/release/demo.wasm")).expect("the .wasm was built");
    assert_eq!(&wasm[..4], b"\0asm");
    let tests = cargo(&["test"]);
    for test in [
        "tests::answers_its_path_with_json",
        "tests::adds_the_configured_header_to_other_requests",
        "tests::refuses_a_bad_configuration_and_says_why",
        "answers_its_path_in_weir",
        "adds_its_header_on_the_way_upstream",
        "a_refused_configuration_stops_the_start_with_the_filters_words",
    ] {
        assert!(tests.contains(&format!("test {test} ... ok\n")), "{test} did not pass:\n{tests}");
    }
}

#[test]
fn filter_new_says_what_is_wrong_and_exits_1() {
    let dir = tempfile::tempdir().expect("tmp");
    let tmp = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    std::fs::write(dir.path().join("file"), "").expect("write");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["9lives".into()],
            "error: \"9lives\" is not a valid crate name: it starts with '9'; use letters, digits, '-' and '_', \
             starting with a letter (e.g. my-filter)\n"
                .into(),
        ),
        (
            vec!["my filter".into()],
            "error: \"my filter\" is not a valid crate name: ' ' is not allowed; use letters, digits, '-' and '_', \
             starting with a letter (e.g. my-filter)\n"
                .into(),
        ),
        (
            vec!["fn".into()],
            "error: \"fn\" is not a valid crate name: it is a Rust keyword; use letters, digits, '-' and '_', \
             starting with a letter (e.g. my-filter)\n"
                .into(),
        ),
        (
            vec!["taken".into(), "--dir".into(), tmp.clone()],
            format!("error: {tmp}/taken already exists; choose another NAME or --dir, or remove it\n"),
        ),
        (
            vec!["demo".into(), "--dir".into(), format!("{tmp}/file")],
            format!("error: --dir {tmp}/file is a file, not a folder; give a folder (it is created if missing)\n"),
        ),
        (
            vec!["demo".into(), "--dir".into(), format!("{tmp}/file/sub")],
            format!(
                "error: cannot create {tmp}/file/sub/demo: Not a directory (os error 20); --dir must name a folder \
                 you can write to\n"
            ),
        ),
        (
            vec!["demo".into(), "--dir".into(), tmp.clone(), "--sdk-path".into(), format!("{tmp}/nowhere")],
            format!("error: --sdk-path {tmp}/nowhere: no Cargo.toml there; give the sdk/ folder of a Weir checkout\n"),
        ),
    ];
    for (args, want) in cases {
        let mut argv = vec!["filter", "new"];
        argv.extend(args.iter().map(String::as_str));
        let out = weir(&argv, dir.path());
        assert_eq!((out.status.code(), text(&out.stderr)), (Some(1), want), "weir {argv:?}");
        assert!(out.stdout.is_empty());
    }
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    left.sort();
    assert_eq!(left, ["file", "taken"], "nothing was created");

    // A folder nobody may create entries in, root included (sysfs refuses mkdir): the message carries the
    // system's own reason, whatever user runs the test.
    let refused = std::fs::create_dir("/sys/demo").expect_err("sysfs refuses mkdir");
    let out = weir(&["filter", "new", "demo", "--dir", "/sys"], dir.path());
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), format!("error: cannot create /sys/demo: {refused}; --dir must name a folder you can write to\n"))
    );
}

/// `examples/hello/README.md` as written: its ```sh blocks in order from the workspace root (the build, then
/// `cargo run -- serve ...` as this weir binary, in the background), then its ```console blocks (each `$ ` command
/// through `sh`, its output compared with the lines under it, trailing whitespace aside); its ```json weir.json
/// block is the file. Then the hello .wasm's size against the 150 KB budget.
#[test]
fn readme_of_examples_hello_runs_as_written() {
    let root = workspace();
    let readme = std::fs::read_to_string(root.join("examples/hello/README.md")).expect("README");
    let blocks = fenced_blocks(&readme);
    let config: Vec<&String> = blocks.iter().filter(|(info, _)| info == "json weir.json").map(|(_, b)| b).collect();
    let file = std::fs::read_to_string(root.join("examples/hello/weir.json")).expect("weir.json");
    assert_eq!(config, [&file], "the README shows examples/hello/weir.json as it is");

    let mut served = None;
    for line in blocks.iter().filter(|(info, _)| info == "sh").flat_map(|(_, body)| body.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(args) = line.strip_prefix("cargo run -- ") {
            let args: Vec<&str> = args.split_whitespace().collect();
            let mut weir = Served::start(&args, &root, &[]);
            weir.wait_for("listening listener=main");
            weir.wait_for("admin listening");
            served = Some(weir);
            continue;
        }
        let started = Instant::now();
        let out = Command::new("sh")
            .args(["-c", line])
            .current_dir(&root)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("run sh");
        eprintln!("{line}: {:.1} s", started.elapsed().as_secs_f64());
        assert!(out.status.success(), "{line} failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    }
    assert!(served.is_some(), "the README runs `cargo run -- serve ...`");

    let mut checked = 0;
    for (_, body) in blocks.iter().filter(|(info, _)| info == "console") {
        let mut steps: Vec<(&str, String)> = Vec::new();
        for line in body.lines() {
            match (line.strip_prefix("$ "), steps.last_mut()) {
                (Some(command), _) => steps.push((command, String::new())),
                (None, Some((_, output))) => {
                    output.push_str(line);
                    output.push('\n');
                }
                (None, None) => panic!("console block output before any command: {line:?}"),
            }
        }
        for (command, want) in steps {
            let out = Command::new("sh").args(["-c", command]).current_dir(&root).output().expect("run sh");
            assert!(out.status.success(), "{command} failed: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout).trim_end(), want.trim_end(), "the output of {command}");
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "three curl commands");

    let wasm = root.join("target/wasm32-wasip1/filter/hello.wasm");
    let size = std::fs::metadata(&wasm).expect("hello.wasm").len();
    eprintln!("hello.wasm: {size} bytes");
    assert!(size <= 150 * 1024, "hello.wasm is {size} bytes, over the 150 KB budget");
}
