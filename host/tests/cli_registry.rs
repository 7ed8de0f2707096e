//! The management CLI against a real `weir serve`: filters, clusters, routes and attachments changed
//! while it serves, kept across a restart, and every acknowledged change surviving `kill -9`.

mod common;
mod oci_registry;

use common::{cli, text, write_config, Served, WEIR};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::upstream::Upstream;

/// Stdout of a command that must succeed.
fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Stderr of a command that must fail with exit 1.
fn fails(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    text(&out.stderr)
}

fn serve(dir: &Path) -> (Served, std::net::SocketAddr, String) {
    let config = dir.join("weir.json");
    let mut served = Served::start(&["serve", "--config", &config.display().to_string(), "--workers", "2"], dir, &[]);
    let addr = served.listening("public");
    let admin = served.admin_url();
    (served, addr, admin)
}

/// A configuration on free ports, data in `weir-data`, JSON logs (for the listening lines), with `extra`
/// fields merged in.
fn with_base(extra: Value) -> Value {
    let mut config = json!({
        "listeners": [{"name": "public", "address": "127.0.0.1:0"}],
        "admin": {"address": "127.0.0.1:0"},
        "data_dir": "weir-data",
        "logging": {"format": "json"}
    });
    if let (Some(c), Value::Object(extra)) = (config.as_object_mut(), extra) {
        c.extend(extra);
    }
    config
}

fn config(dir: &Path) {
    write_config(
        dir,
        with_base(json!({
            "routes": [{"name": "health", "match": {"path": {"exact": "/healthz"}}, "direct_response": {"status": 200, "body": "ok"}}]
        })),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_changes_a_running_gateway_and_the_changes_survive_a_restart() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    config(dir);
    let (served, addr, admin) = serve(dir);
    let wasm = filters::ADD_HEADER_WASM;
    let size = std::fs::metadata(wasm)?.len();

    let pushed = ok(cli(
        dir,
        &admin,
        &["filter", "push", wasm, "--name", "tagger", "--version", "1.0.0", "--description", "adds x-add-header"],
    ));
    assert!(
        pushed.starts_with("pushed tagger@1.0.0 (sha256:") && pushed.ends_with(&format!(", {size} bytes)\n")),
        "{pushed}"
    );
    let digest = pushed.trim_start_matches("pushed tagger@1.0.0 (").split(',').next().unwrap_or_default().to_string();
    assert_eq!(
        ok(cli(dir, &admin, &["filter", "push", wasm, "--name", "tagger", "--version", "1.0.0"])),
        format!("tagger@1.0.0 is already published with the same bytes ({digest}); nothing changed\n")
    );
    let set = ok(cli(dir, &admin, &["cluster", "set", "svc", "--endpoint", &up.endpoint()]));
    assert!(set.starts_with("cluster svc set (generation 3, serving on every worker after "), "{set}");
    let set = ok(cli(dir, &admin, &["route", "set", "api", "--path-prefix", "/api", "--cluster", "svc"]));
    assert!(set.starts_with("route api set (generation 4, "), "{set}");
    let attached = ok(cli(dir, &admin, &["route", "attach", "api", "tagger@^1", "--config", r#"{"name": "cli"}"#]));
    assert!(attached.starts_with("attached tagger@1.0.0 to route api (generation 5, "), "{attached}");

    let reply = get_with(addr, "shop.test", "/api/items", &[]).await?;
    assert_eq!(reply.json()["headers"]["x-add-header"], "cli", "the attachment serves without a restart");

    assert_eq!(
        ok(cli(dir, &admin, &["route", "list"])),
        "ID      SOURCE    MATCH           TARGET           FILTERS\n\
         health  file      exact /healthz  direct response  -\n\
         api     registry  prefix /api     cluster svc      tagger=tagger@1.0.0\n"
    );
    assert_eq!(
        ok(cli(dir, &admin, &["route", "show", "api"])),
        "route api (registry)\n  match:   prefix /api\n  target:  cluster svc\n  filters (in request order):\n    0. tagger  tagger@1.0.0  fail_closed\n"
    );
    let listed: Value = serde_json::from_str(&ok(cli(dir, &admin, &["filter", "list", "-o", "json"])))?;
    // The five shipped filters, published at start (generation 1), and tagger.
    let f = listed["filters"].as_array().and_then(|f| f.iter().find(|f| f["name"] == "tagger")).expect("tagger listed");
    assert_eq!(
        (&f["name"], &f["version"], &f["size"], &f["description"]),
        (&json!("tagger"), &json!("1.0.0"), &json!(size), &json!("adds x-add-header"))
    );
    let shown = ok(cli(dir, &admin, &["filter", "show", "tagger@1.0.0"]));
    assert!(
        shown.contains("  attached to:  api\n") && shown.starts_with("tagger@1.0.0\n  digest:       sha256:"),
        "{shown}"
    );

    // Errors: exit 1, one clear line, nothing changed.
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["filter", "rm", "tagger@1.0.0"], "error: tagger@1.0.0 is attached to route api; detach it first (weir route detach ROUTE NAME)\n".into()),
        (vec!["filter", "rm", "tagger"], "error: tagger: give NAME@VERSION; published versions are removed one at a time\n".into()),
        (vec!["route", "attach", "api", "tagger@^2"], "error: no published version of \"tagger\" matches \"^2\"; published: 1.0.0\n".into()),
        (vec!["route", "attach", "nope", "tagger"], "error: no route \"nope\" in the registry; `weir route list` shows them\n".into()),
        (vec!["route", "rm", "health"], format!("error: route \"health\" is defined in {}; change it there (the registry holds the routes made through the admin API and `weir apply`)\n", dir.join("weir.json").display())),
        (vec!["cluster", "rm", "svc"], "error: cluster \"svc\" is used by route api; remove or re-point them first\n".into()),
        (vec!["route", "attach", "api", "tagger", "--config", "missing.json"], "error: --config missing.json: neither JSON text nor a readable file (No such file or directory (os error 2)); give e.g. '{\"key\": \"value\"}' or config.json\n".into()),
        (vec!["filter", "push", wasm], format!("error: {wasm} is a .wasm module: give --name NAME and --version VERSION (or pack it into an artifact with `weir filter pack`)\n")),
    ];
    for (args, want) in &cases {
        assert_eq!(fails(cli(dir, &admin, args)), *want, "weir {args:?}");
    }
    let refused = fails(cli(dir, &admin, &["route", "attach", "api", "tagger", "--config", r#"{"name": 7}"#]));
    assert!(
        refused.starts_with("error: route api: filter tagger: module tagger: the filter rejected its configuration"),
        "{refused}"
    );
    assert!(refused.contains("\nthe filter logged:\n  ") && refused.contains("rejecting configuration"), "{refused}");
    let unreachable =
        Command::new(WEIR).args(["route", "list", "--admin-url", "http://127.0.0.1:9"]).current_dir(dir).output()?;
    assert!(fails(unreachable).starts_with("error: cannot reach the admin API at http://127.0.0.1:9: "));
    let wrong_token = Command::new(WEIR)
        .args(["route", "list", "--token", "nope"])
        .env("WEIR_ADMIN_URL", &admin)
        .current_dir(dir)
        .output()?;
    assert_eq!(
        fails(wrong_token),
        format!("error: the admin API at {admin} refused the token (401); pass --token or set WEIR_ADMIN_TOKEN (weir serve writes it to <data_dir>/admin-token)\n")
    );

    // Restart: the registry is in the data dir; the filter serves from the first request.
    served.signal("-TERM");
    let mut served = served;
    assert!(served.wait_exit(Duration::from_secs(15)).success());
    drop(served);
    let (_served, addr, admin) = serve(dir);
    let reply = get_with(addr, "shop.test", "/api/after-restart", &[]).await?;
    assert_eq!(reply.json()["headers"]["x-add-header"], "cli", "kept across the restart");
    assert!(ok(cli(dir, &admin, &["route", "list"]))
        .contains("api     registry  prefix /api     cluster svc      tagger=tagger@1.0.0\n"));

    // apply -f, then tear down with detach / rm.
    let doc = dir.join("apply.json");
    std::fs::write(
        &doc,
        serde_json::to_vec(
            &json!({"routes": [{"name": "more", "match": {"path": {"prefix": "/more"}}, "cluster": "svc", "filters": [{"filter": "tagger@1", "configuration": {"name": "applied"}}]}]}),
        )?,
    )?;
    let applied = ok(cli(dir, &admin, &["apply", "-f", &doc.display().to_string()]));
    assert!(applied.starts_with("routes created: more\napplied "), "{applied}");
    assert_eq!(get_with(addr, "shop.test", "/more", &[]).await?.json()["headers"]["x-add-header"], "applied");
    std::fs::write(dir.join("tagger.json"), r#"{"name": "from-file"}"#)?;
    ok(cli(dir, &admin, &["route", "attach", "api", "tagger", "--config", "tagger.json"]));
    let reply = get_with(addr, "shop.test", "/api/file", &[]).await?;
    assert_eq!(reply.json()["headers"]["x-add-header"], "from-file", "--config reads a JSON file");
    assert!(ok(cli(dir, &admin, &["route", "detach", "api", "tagger"]))
        .starts_with("detached tagger from route api (generation "));
    assert!(ok(cli(dir, &admin, &["route", "rm", "more"])).starts_with("route more removed (generation "));
    assert!(ok(cli(dir, &admin, &["filter", "rm", "tagger@1.0.0"])).starts_with("removed tagger@1.0.0 (generation "));
    let names: Vec<String> = ok(cli(dir, &admin, &["filter", "list"]))
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join("@"))
        .collect();
    assert_eq!(
        names,
        ["jwt-auth@0.1.0", "prompt-template@0.1.0", "provider-adapter@0.1.0", "quota@0.1.0", "response-cache@0.1.0"],
        "tagger removed; the shipped filters stay"
    );
    Ok(())
}

/// Cluster changes as fast as the API takes them, `kill -9` at an arbitrary moment, a restart: every change
/// the API acknowledged is there and the store opens clean.
#[test]
fn every_acknowledged_change_survives_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    config(dir);
    for round in 0..2 {
        let (mut served, _, admin) = serve(dir);
        let token = std::fs::read_to_string(dir.join("weir-data/admin-token")).expect("token").trim().to_string();
        let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let acks = acknowledged.clone();
        let writer = std::thread::spawn(move || {
            let addr = admin.trim_start_matches("http://").to_string();
            for i in 0.. {
                let name = format!("r{round}c{i}");
                let body = format!(r#"{{"endpoints": [{{"address": "127.0.0.1:{}"}}]}}"#, 1000 + i);
                match put(&addr, &token, &format!("/api/v1/clusters/{name}"), &body) {
                    Some(200) => acks.lock().expect("acks").push(name),
                    Some(other) => panic!("unexpected status {other} for {name}"),
                    None => return, // the gateway is gone
                }
            }
        });
        // Let a stream of changes run, then kill without warning, mid-stream.
        let start = Instant::now();
        while acknowledged.lock().expect("acks").len() < 20 + 13 * round && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        served.kill_hard();
        writer.join().expect("writer");
        let acked = acknowledged.lock().expect("acks").clone();
        assert!(acked.len() >= 20, "the API acknowledged changes before the kill: {}", acked.len());

        let (_served, _, admin) = serve(dir);
        let listed: Value =
            serde_json::from_str(&ok(cli(dir, &admin, &["cluster", "list", "-o", "json"]))).expect("json");
        let stored: Vec<&str> =
            listed["clusters"].as_array().expect("clusters").iter().filter_map(|c| c["name"].as_str()).collect();
        for name in &acked {
            assert!(stored.contains(&name.as_str()), "acknowledged {name} is lost after kill -9 (round {round})");
        }
    }
}

/// A PUT on a fresh connection: the status, or `None` once the gateway is unreachable.
fn put(addr: &str, token: &str, path: &str, body: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split(' ').nth(1)?.parse().ok()
}

/// `registry.require_signed`: raw modules and unsigned artifacts are refused, signed ones accepted from a
/// file or from an OCI registry, and an attachment's configuration is checked against the artifact's schema.
#[test]
fn only_signed_artifacts_when_required_and_configurations_checked_against_their_schema() {
    let oci = oci_registry::Registry::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::copy(filters::ADD_HEADER_WASM, dir.join("tagger.wasm")).expect("copy");
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false});
    std::fs::write(dir.join("schema.json"), schema.to_string()).expect("schema");
    let run = |args: &[&str]| Command::new(WEIR).args(args).current_dir(dir).output().expect("weir");
    ok(run(&["filter", "keygen", "--out", "release"]));
    let key_id = |pub_file: &str| {
        let key = weir::artifact::sign::read_verifying_key(&dir.join(pub_file)).expect("public key");
        weir::artifact::KeyId::of(&key).to_string()
    };
    let id = key_id("release.pub");
    for (version, signed) in [("1.0.0", true), ("1.1.0", false), ("1.2.0", true)] {
        let mut args =
            vec!["filter", "pack", "tagger.wasm", "--name", "tagger", "--version", version, "--schema", "schema.json"];
        if signed {
            args.extend(["--sign-key", "release.key"]);
        }
        ok(run(&args));
    }
    let tag = format!("oci://{}/filters/tagger:1.2.0", oci.addr);
    ok(run(&["filter", "push", "tagger-1.2.0.tar", &tag]));

    write_config(dir, with_base(json!({"registry": {"trusted_keys": ["release.pub"], "require_signed": true}})));
    let (_served, _addr, admin) = serve(dir);
    assert_eq!(
        fails(cli(dir, &admin, &["filter", "push", "tagger.wasm", "--name", "tagger", "--version", "0.1.0"])),
        "error: this gateway accepts only signed artifacts (registry.require_signed); pack the module with `weir filter pack --sign-key KEY` and push the artifact\n"
    );
    assert_eq!(
        fails(cli(dir, &admin, &["filter", "push", "tagger-1.1.0.tar"])),
        "error: tagger@1.1.0 is not signed and this gateway accepts only artifacts signed by a trusted key (registry.require_signed); sign it with `weir filter pack --sign-key KEY`\n"
    );
    let pushed = ok(cli(dir, &admin, &["filter", "push", "tagger-1.0.0.tar"]));
    assert!(
        pushed.starts_with("pushed tagger@1.0.0 (sha256:") && pushed.ends_with(&format!(" bytes, signed by {id})\n")),
        "{pushed}"
    );
    let pulled = ok(cli(dir, &admin, &["filter", "push", &tag]));
    assert!(
        pulled.starts_with("pushed tagger@1.2.0 (sha256:") && pulled.ends_with(&format!(" bytes, signed by {id})\n")),
        "{pulled}"
    );

    // Another key's signature is refused while signatures are required.
    ok(run(&["filter", "keygen", "--out", "other"]));
    ok(run(&[
        "filter",
        "pack",
        "tagger.wasm",
        "--name",
        "tagger",
        "--version",
        "2.0.0",
        "--sign-key",
        "other.key",
        "-o",
        "other.tar",
    ]));
    let refused = fails(cli(dir, &admin, &["filter", "push", "other.tar"]));
    assert_eq!(
        refused,
        format!(
            "error: tagger@2.0.0: the artifact is signed by key {}, which is not a trusted key; add that key's .pub file to the trusted keys if you trust it\n",
            key_id("other.pub")
        )
    );

    ok(cli(dir, &admin, &["cluster", "set", "svc", "--endpoint", "127.0.0.1:9"]));
    ok(cli(dir, &admin, &["route", "set", "api", "--path-prefix", "/", "--cluster", "svc"]));
    let bad = fails(cli(
        dir,
        &admin,
        &["route", "attach", "api", "tagger@1.0.0", "--config", r#"{"name": 7, "extra": true}"#],
    ));
    assert!(
        bad.starts_with(
            "error: route \"api\", filter \"tagger\": the configuration does not match the schema of tagger@1.0.0: "
        ),
        "{bad}"
    );
    assert!(bad.contains("/name: ") && bad.contains("extra"), "each issue with its JSON Pointer: {bad}");
    let missing = fails(cli(dir, &admin, &["route", "attach", "api", "tagger@1.0.0"]));
    assert!(missing.contains("\"name\" is a required property"), "no configuration is checked as {{}}: {missing}");
    assert!(ok(cli(dir, &admin, &["route", "attach", "api", "tagger@1.0.0", "--config", r#"{"name": "signed"}"#]))
        .starts_with("attached tagger@1.0.0 to route api"));
    let shown = ok(cli(dir, &admin, &["filter", "show", "tagger@1.0.0"]));
    assert!(shown.contains(&format!("  signed by:    {id}\n  config schema: yes\n  attached to:  api")), "{shown}");
}

/// One process per data dir; and a file that no longer fits the registry stops the start with the record named.
#[test]
fn a_second_gateway_on_the_data_dir_and_a_file_that_no_longer_fits_the_registry_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let with_cluster = with_base(json!({"clusters": [{"name": "svc", "endpoints": [{"address": "127.0.0.1:9"}]}]}));
    let file = write_config(dir, with_cluster.clone());
    let (mut served, _, admin) = serve(dir);
    ok(cli(dir, &admin, &["route", "set", "api", "--path-prefix", "/", "--cluster", "svc"]));

    let second = Command::new(WEIR).args(["serve", "--config", &file]).current_dir(dir).output().expect("second weir");
    let stderr = fails(second);
    assert!(
        stderr
            .starts_with(&format!("error: cannot open the registry in {}: ", dir.join("weir-data/registry").display()))
            && stderr.ends_with("is another weir using this data dir? (\"data_dir\" in the configuration)\n"),
        "{stderr}"
    );

    served.signal("-TERM");
    assert!(served.wait_exit(Duration::from_secs(15)).success());
    let mut without = with_cluster;
    without.as_object_mut().expect("object").remove("clusters");
    write_config(dir, without);
    let out = Command::new(WEIR).args(["serve", "--config", &file]).current_dir(dir).output().expect("weir");
    assert_eq!(
        fails(out),
        format!(
            "error: {file}: 1 error in the configuration\n  {file}: registry.routes[\"api\"].cluster: unknown cluster \"svc\"; defined clusters: none (add one under $.clusters)\n\
             (paths starting with \"registry.\" name records in the data dir's registry: put back in the file what they need, or start with the previous file and change or remove them, e.g. weir route rm ID)\n"
        )
    );
}
