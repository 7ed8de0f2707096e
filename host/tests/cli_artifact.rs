//! `weir filter pack | keygen | inspect | pull` as a user runs them: exact output and exit codes, success and
//! every error (missing file, bad version, bad name, bad schema, a key file that is not a key, overwriting keys,
//! tampered artifacts, unreachable registries). These are the commands `docs/artifacts.md` shows.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use weir::artifact::{sign, Artifact, KeyId};
use weir_tests::filters;

mod oci_registry;
use oci_registry::Registry;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// Runs weir in `cwd`; returns (exit code, stdout, stderr).
fn weir(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(WEIR).args(args).current_dir(cwd).output().expect("run weir");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: String) -> (i32, String, String) {
    (0, out, String::new())
}

fn err(message: &str) -> (i32, String, String) {
    (1, String::new(), format!("error: {message}\n"))
}

/// A folder with `auth.wasm` (a real filter), `schema.json`, good and bad configs, and junk files.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::copy(filters::HEADERS_WASM, p.join("auth.wasm")).unwrap();
    let schema = json!({
        "type": "object",
        "required": ["issuer"],
        "properties": {"issuer": {"type": "string"}, "ttl": {"type": "integer", "minimum": 1}}
    });
    std::fs::write(p.join("schema.json"), schema.to_string()).unwrap();
    std::fs::write(p.join("bad-schema.json"), r#"{"type": "objekt"}"#).unwrap();
    std::fs::write(p.join("not-json.json"), "{issuer:").unwrap();
    std::fs::write(p.join("config.json"), r#"{"issuer": "https://id.example.com", "ttl": 60}"#).unwrap();
    std::fs::write(p.join("bad-config.json"), r#"{"issuer": 7, "ttl": 0}"#).unwrap();
    std::fs::write(p.join("not-a-key.pem"), "hello\n").unwrap();
    std::fs::write(p.join("not.wasm"), "hello").unwrap();
    dir
}

fn wasm_size() -> u64 {
    std::fs::metadata(filters::HEADERS_WASM).unwrap().len()
}

fn key_id(pub_file: &Path) -> String {
    KeyId::of(&sign::read_verifying_key(pub_file).unwrap()).to_string()
}

fn load(path: &Path) -> Artifact {
    Artifact::from_layout_tar(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn pack_and_keygen() {
    let dir = workdir();
    let d = dir.path();
    let n = wasm_size();

    assert_eq!(
        weir(&["filter", "pack", "auth.wasm", "--name", "auth", "--version", "1.2.0"], d),
        ok(format!("packed auth@1.2.0 (proxy-wasm ABI 0.2.1, {n} bytes, unsigned) into auth-1.2.0.tar\n"))
    );
    assert_eq!(load(&d.join("auth-1.2.0.tar")).meta.version.to_string(), "1.2.0");

    // keygen, then pack signed with a schema, to a chosen file.
    let (code, out, stderr) = weir(&["filter", "keygen", "--out", "release"], d);
    let id = key_id(&d.join("release.pub"));
    assert_eq!(
        (code, out, stderr),
        ok(format!("wrote release.key (private key: keep it secret) and release.pub (public key, key id {id})\n"))
    );
    assert_eq!(
        weir(
            &[
                "filter",
                "pack",
                "auth.wasm",
                "--name",
                "auth",
                "--version",
                "1.3.0",
                "--description",
                "checks tokens",
                "--schema",
                "schema.json",
                "--sign-key",
                "release.key",
                "-o",
                "signed.tar",
            ],
            d
        ),
        ok(format!("packed auth@1.3.0 (proxy-wasm ABI 0.2.1, {n} bytes, signed by key {id}) into signed.tar\n"))
    );
    let signed = load(&d.join("signed.tar"));
    assert_eq!(signed.meta.description, "checks tokens");
    assert!(signed.meta.config_schema.is_some());
    assert_eq!(
        signed.verify(&[sign::read_verifying_key(&d.join("release.pub")).unwrap()]).unwrap().unwrap().to_string(),
        id
    );

    let pack = |extra: &[&str]| {
        let mut args = vec!["filter", "pack"];
        args.extend_from_slice(extra);
        weir(&args, d)
    };
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "missing file",
            vec!["missing.wasm", "--name", "auth", "--version", "1.0.0"],
            "missing.wasm: cannot read: No such file or directory (os error 2)".into(),
        ),
        (
            "bad version",
            vec!["auth.wasm", "--name", "auth", "--version", "1.x"],
            "--version \"1.x\" is not a semver version (MAJOR.MINOR.PATCH, e.g. 1.2.0): unexpected character 'x' \
             while parsing minor version number"
                .into(),
        ),
        (
            "bad name",
            vec!["auth.wasm", "--name", "my filter", "--version", "1.0.0"],
            "artifact name \"my filter\" is invalid: ' ' is not allowed; use letters, digits, '-' and '_', starting \
             with a letter (at most 64 characters)"
                .into(),
        ),
        (
            "bad schema",
            vec!["auth.wasm", "--name", "auth", "--version", "1.0.0", "--schema", "bad-schema.json"],
            "bad-schema.json: the configuration schema is not a valid JSON Schema: at /type: \"objekt\" is not valid \
             under any of the schemas listed in the 'anyOf' keyword"
                .into(),
        ),
        (
            "schema not JSON",
            vec!["auth.wasm", "--name", "auth", "--version", "1.0.0", "--schema", "not-json.json"],
            "not-json.json: not JSON: key must be a string at line 1 column 2".into(),
        ),
        (
            "key file that is not a key",
            vec!["auth.wasm", "--name", "auth", "--version", "1.0.0", "--sign-key", "not-a-key.pem"],
            "not-a-key.pem: not an ed25519 PEM private key: it has no -----BEGIN PRIVATE KEY----- block (write a key \
             pair with `weir filter keygen`)"
                .into(),
        ),
        (
            "public key as signing key",
            vec!["auth.wasm", "--name", "auth", "--version", "1.0.0", "--sign-key", "release.pub"],
            "release.pub: not an ed25519 PEM private key: it is a public key (pass the .key file `weir filter keygen` \
             wrote, not the .pub)"
                .into(),
        ),
        (
            "not wasm",
            vec!["not.wasm", "--name", "auth", "--version", "1.0.0"],
            "not.wasm: the filter is not a WebAssembly module: it does not start with the WebAssembly magic bytes \
             \\0asm; pass the .wasm file built for wasm32-wasip1"
                .into(),
        ),
    ];
    for (case, args, message) in cases {
        assert_eq!(pack(&args), err(&message), "{case}");
    }

    assert_eq!(
        weir(&["filter", "keygen", "--out", "release"], d),
        err("release.key: already exists; refusing to overwrite a key (choose another --out prefix)"),
        "overwrite refused"
    );
    assert_eq!(key_id(&d.join("release.pub")), id, "the old key is untouched");
}

#[test]
fn inspect() {
    let dir = workdir();
    let d = dir.path();
    let (code, _, stderr) = weir(&["filter", "keygen", "--out", "release"], d);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let (code, _, stderr) = weir(&["filter", "keygen", "--out", "other"], d);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let id = key_id(&d.join("release.pub"));
    let other_id = key_id(&d.join("other.pub"));
    let args = [
        "filter",
        "pack",
        "auth.wasm",
        "--name",
        "auth",
        "--version",
        "1.3.0",
        "--description",
        "checks tokens",
        "--schema",
        "schema.json",
        "--sign-key",
        "release.key",
    ];
    assert_eq!(weir(&args, d).0, 0);
    assert_eq!(weir(&["filter", "pack", "auth.wasm", "--name", "plain", "--version", "0.1.0"], d).0, 0);
    let a = load(&d.join("auth-1.3.0.tar"));
    let manifest = weir::artifact::sha256_digest(&a.manifest_bytes());
    let n = wasm_size();
    let wasm = &a.meta.wasm_digest;
    let text = |signature: &str| {
        format!(
            "name         auth\nversion      1.3.0\nabi          proxy-wasm 0.2.1\ndescription  checks tokens\n\
             wasm         {wasm} ({n} bytes)\nmanifest     {manifest}\nschema       yes (see -o json)\n\
             signature    {signature}\n"
        )
    };

    assert_eq!(
        weir(&["filter", "inspect", "auth-1.3.0.tar"], d),
        ok(text(&format!("signed by key {id} (not checked: no --trusted-key given)")))
    );
    assert_eq!(
        weir(&["filter", "inspect", "auth-1.3.0.tar", "--trusted-key", "release.pub"], d),
        ok(text(&format!("signed by trusted key {id}")))
    );
    assert_eq!(
        weir(&["filter", "inspect", "auth-1.3.0.tar", "--trusted-key", "release.pub", "--config", "config.json"], d),
        ok(text(&format!("signed by trusted key {id}")) + "config       config.json: valid\n")
    );

    let (code, out, stderr) = weir(&["filter", "inspect", "auth-1.3.0.tar", "-o", "json"], d);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({
            "meta": serde_json::to_value(&a.meta).unwrap(),
            "manifest_digest": manifest,
            "signature": {"key_id": id, "verified": false},
        })
    );
    assert_eq!(v["meta"]["config_schema"]["required"], json!(["issuer"]));

    let (code, out, _) = weir(&["filter", "inspect", "plain-0.1.0.tar"], d);
    assert_eq!(code, 0);
    assert!(
        out.contains("\ndescription  -\n")
            && out.contains("\nschema       none\n")
            && out.ends_with("signature    unsigned\n"),
        "{out}"
    );

    // Tamper with the wasm layer: flip a byte in the middle of the tar's last blob.
    let mut bytes = std::fs::read(d.join("auth-1.3.0.tar")).unwrap();
    let at = bytes.len() - 1024 - (n as usize) / 2;
    bytes[at] ^= 0xff;
    std::fs::write(d.join("tampered.tar"), bytes).unwrap();

    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "missing file",
            vec!["missing.tar"],
            "missing.tar: cannot read: No such file or directory (os error 2)".into(),
        ),
        (
            "not an artifact",
            vec!["auth.wasm"],
            "auth.wasm: the artifact is not a valid OCI image layout tar file: the file is not a tar archive (its \
             first 512-byte block is not a tar header)"
                .into(),
        ),
        (
            "tampered",
            vec!["tampered.tar"],
            "tampered.tar: wasm layer named by the manifest: digest mismatch: expected ".into(),
        ),
        (
            "untrusted key",
            vec!["auth-1.3.0.tar", "--trusted-key", "other.pub"],
            format!(
                "auth-1.3.0.tar: the artifact is signed by key {id}, which is not a trusted key; add that key's .pub \
                 file to the trusted keys if you trust it"
            ),
        ),
        (
            "unsigned in trust mode",
            vec!["plain-0.1.0.tar", "--trusted-key", "other.pub"],
            "plain-0.1.0.tar: the artifact is not signed and only artifacts signed by a trusted key are accepted; \
             pack it with --sign-key"
                .into(),
        ),
        (
            "trusted key file that is not a key",
            vec!["auth-1.3.0.tar", "--trusted-key", "release.key"],
            "release.key: not an ed25519 PEM public key: it is a private key (pass the .pub file `weir filter keygen` \
             wrote, not the .key)"
                .into(),
        ),
        (
            "config breaking the schema",
            vec!["auth-1.3.0.tar", "--config", "bad-config.json"],
            "bad-config.json: does not match auth@1.3.0's configuration schema (2 issues):\n  /issuer: 7 is not of \
             type \"string\"\n  /ttl: 0 is less than the minimum of 1"
                .into(),
        ),
        (
            "config without a schema",
            vec!["plain-0.1.0.tar", "--config", "config.json"],
            "plain@0.1.0 has no configuration schema to check config.json against".into(),
        ),
    ];
    for (case, extra, message) in cases {
        let mut args = vec!["filter", "inspect"];
        args.extend_from_slice(&extra);
        let (code, out, stderr) = weir(&args, d);
        assert_eq!((code, out.as_str()), (1, ""), "{case}: {stderr}");
        let want = format!("error: {message}");
        assert!(stderr.starts_with(&want) && stderr.ends_with('\n'), "{case}:\n got: {stderr}want: {want}");
    }
    let _ = other_id;
}

#[test]
fn pull_from_a_real_registry() {
    let registry = Registry::start();
    let dir = workdir();
    let d = dir.path();
    assert_eq!(weir(&["filter", "keygen", "--out", "release"], d).0, 0);
    let id = key_id(&d.join("release.pub"));
    let args = ["filter", "pack", "auth.wasm", "--name", "auth", "--version", "1.2.0", "--sign-key", "release.key"];
    assert_eq!(weir(&args, d).0, 0);
    let packed = load(&d.join("auth-1.2.0.tar"));
    let tag = format!("oci://{}/filters/auth:1.2.0", registry.addr);
    let manifest = weir::artifact::sha256_digest(&packed.manifest_bytes());
    let by_digest = format!("oci://{}/filters/auth@{manifest}", registry.addr);

    assert_eq!(
        weir(&["filter", "push", "auth-1.2.0.tar", &tag], d),
        ok(format!("pushed auth@1.2.0 to {tag} (manifest {manifest}; pull it by digest with {by_digest})\n"))
    );
    let not_an_artifact = weir(&["filter", "push", "schema.json", &tag], d);
    assert_eq!(
        (not_an_artifact.0, not_an_artifact.1.as_str()),
        (1, ""),
        "pushing a file that is not an artifact: {}",
        not_an_artifact.2
    );

    std::fs::create_dir(d.join("pulled")).unwrap();
    let p = &d.join("pulled");
    assert_eq!(
        weir(&["filter", "pull", &tag], p),
        ok(format!(
            "pulled auth@1.2.0 (manifest {manifest}, signed by key {id} (not checked: no --trusted-key given)) into \
             auth-1.2.0.tar\n"
        ))
    );
    assert_eq!(std::fs::read(p.join("auth-1.2.0.tar")).unwrap(), std::fs::read(d.join("auth-1.2.0.tar")).unwrap());
    assert_eq!(
        weir(&["filter", "pull", &by_digest, "-o", "by-digest.tar", "--trusted-key", "../release.pub"], p),
        ok(format!("pulled auth@1.2.0 (manifest {manifest}, signed by trusted key {id}) into by-digest.tar\n"))
    );
    assert_eq!(load(&p.join("by-digest.tar")), packed);

    assert_eq!(weir(&["filter", "keygen", "--out", "other"], d).0, 0);
    let other_id = key_id(&d.join("other.pub"));
    assert_ne!(other_id, id);
    let unreachable_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = format!("oci://127.0.0.1:{unreachable_port}/filters/auth:1.2.0");
    let missing_tag = format!("oci://{}/filters/auth:9.9.9", registry.addr);
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "untrusted signer",
            vec![&tag, "--trusted-key", "../other.pub"],
            format!("{tag}: the artifact is signed by key {id}, which is not a trusted key; add that key's .pub file to the trusted keys if you trust it"),
        ),
        (
            "bad reference",
            vec!["127.0.0.1:5000/filters/auth:1.2.0"],
            "\"127.0.0.1:5000/filters/auth:1.2.0\" is not an OCI reference: it does not start with oci://; write \
             oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:<64 hex>"
                .into(),
        ),
        (
            "no tag",
            vec!["oci://127.0.0.1:5000/filters/auth"],
            "\"oci://127.0.0.1:5000/filters/auth\" is not an OCI reference: it has no :TAG and no @sha256:DIGEST; \
             write oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:<64 hex>"
                .into(),
        ),
        (
            "unreachable registry",
            vec![&unreachable],
            format!(
                "{unreachable}: pull manifest failed: error sending request for url \
                 (http://127.0.0.1:{unreachable_port}/v2/filters/auth/manifests/1.2.0): client error (Connect): tcp \
                 connect error: Connection refused (os error 111)"
            ),
        ),
        ("unknown tag", vec![&missing_tag], format!("{missing_tag}: pull manifest failed: ")),
        (
            "other hosts are spoken to in HTTPS",
            vec!["oci://registry.invalid/filters/auth:1.2.0"],
            "oci://registry.invalid/filters/auth:1.2.0: pull manifest failed: error sending request for url \
             (https://registry.invalid/v2/filters/auth/manifests/1.2.0): client error (Connect): "
                .into(),
        ),
    ];
    for (case, extra, message) in cases {
        let mut args = vec!["filter", "pull"];
        args.extend_from_slice(&extra);
        let (code, out, stderr) = weir(&args, p);
        assert_eq!((code, out.as_str()), (1, ""), "{case}: {stderr}");
        let want = format!("error: {message}");
        assert!(stderr.starts_with(&want) && stderr.ends_with('\n'), "{case}:\n got: {stderr}want: {want}");
    }
}

#[path = "oci_registry/mock.rs"]
mod mock;

#[test]
fn pull_refuses_a_registry_serving_other_bytes_and_installs_nothing() {
    let dir = workdir();
    let d = dir.path();
    assert_eq!(weir(&["filter", "pack", "auth.wasm", "--name", "auth", "--version", "1.2.0"], d).0, 0);
    let packed = load(&d.join("auth-1.2.0.tar"));
    let m = mock::Mock::start(mock::Options {
        bearer: true,
        redirect_blobs: true,
        tamper: vec![packed.wasm_digest()],
        ..Default::default()
    });
    m.store("1.2.0", &packed.manifest_bytes(), &[&packed.config_bytes(), &packed.wasm]);
    let tag = format!("oci://{}/filters/auth:1.2.0", m.addr);
    std::fs::create_dir(d.join("pulled")).unwrap();
    let p = &d.join("pulled");
    let (code, out, stderr) = weir(&["filter", "pull", &tag], p);
    assert_eq!((code, out.as_str()), (1, ""), "{stderr}");
    let want = format!(
        "error: wasm layer {} served by http://{}/blobs/{} for {tag}: digest mismatch: expected {}, the \
         bytes hash to sha256:",
        packed.wasm_digest(),
        m.side,
        packed.wasm_digest(),
        packed.wasm_digest()
    );
    assert!(stderr.starts_with(&want), "got: {stderr}want: {want}");
    assert_eq!(std::fs::read_dir(p).unwrap().count(), 0, "nothing is written");
}
