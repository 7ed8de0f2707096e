//! Filter artifacts (`weir::artifact`): packing, the OCI image layout tar and every way it can be tampered
//! with, ed25519 signatures and key files, JSON Schema checks of configurations, and push/pull against a real
//! registry (Debian's `docker-registry`, installed with apt-get when missing).

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::io::Read as _;
use std::net::TcpListener;
use weir::artifact::layout::blob_path;
use weir::artifact::oci::{self, OciRef, OciTarget};
use weir::artifact::schema::{self, SchemaIssue};
use weir::artifact::{self, pack, sha256_digest, sign, Artifact, ArtifactError, KeyId};
use weir_tests::filters;

fn real_wasm() -> Vec<u8> {
    std::fs::read(filters::HEADERS_WASM).expect("the headers test filter is built")
}

/// A minimal proxy-wasm guest exporting `exports` (function names).
fn wat_module(exports: &[&str]) -> Vec<u8> {
    let funcs: String = exports.iter().map(|e| format!("(func (export \"{e}\"))\n")).collect();
    wat::parse_str(format!(
        "(module (memory (export \"memory\") 1)
           (func (export \"proxy_on_memory_allocate\") (param i32) (result i32) i32.const 1024)
           {funcs})"
    ))
    .expect("valid wat")
}

fn schema_fixture() -> Value {
    json!({
        "type": "object",
        "required": ["issuer"],
        "additionalProperties": false,
        "properties": {
            "issuer": {"type": "string", "minLength": 8},
            "audiences": {"type": "array", "items": {"type": "string"}},
            "limits": {"type": "object", "properties": {"max": {"type": "integer", "minimum": 1}}}
        }
    })
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn packed(signing: Option<&SigningKey>) -> Artifact {
    pack(real_wasm(), "auth", "1.2.0".parse().unwrap(), "checks tokens", Some(schema_fixture()), signing)
        .expect("packs")
}

// === pack ===

#[test]
fn pack_round_trips_through_the_layout_tar() {
    let k = key(1);
    let cases: Vec<(&str, Option<Value>, Option<&SigningKey>)> = vec![
        ("plain", None, None),
        ("with schema", Some(schema_fixture()), None),
        ("signed", None, Some(&k)),
        ("signed with schema", Some(schema_fixture()), Some(&k)),
    ];
    for (case, schema, signing) in cases {
        let a = pack(real_wasm(), "auth", "1.2.0-rc.1".parse().unwrap(), "d", schema.clone(), signing).unwrap();
        assert_eq!(a.meta.abi, "0.2.1", "{case}");
        assert_eq!(a.meta.wasm_digest, sha256_digest(&a.wasm), "{case}");
        assert_eq!(a.meta.wasm_size, a.wasm.len() as u64, "{case}");
        assert_eq!(a.meta.config_schema, schema, "{case}");
        assert_eq!(a.signature.is_some(), signing.is_some(), "{case}");
        let tar = a.to_layout_tar();
        assert_eq!(tar, a.to_layout_tar(), "{case}: the tar is deterministic");
        let back = Artifact::from_layout_tar(&tar).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(back, a, "{case}");
    }
}

#[test]
fn the_layout_has_the_media_types_istio_reads() {
    let a = packed(Some(&key(1)));
    let files = untar(&a.to_layout_tar());
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let manifest_digest = sha256_digest(&a.manifest_bytes());
    assert_eq!(
        names,
        [
            "oci-layout",
            "index.json",
            &blob_path(&manifest_digest),
            &blob_path(&a.config_digest()),
            &blob_path(&a.wasm_digest())
        ]
    );
    let m: Value = serde_json::from_slice(&a.manifest_bytes()).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["config"]["mediaType"], "application/vnd.module.wasm.config.v1+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.module.wasm.content.layer.v1+wasm");
    assert_eq!(m["layers"][1]["mediaType"], "application/vnd.module.wasm.config.v1+json");
    assert_eq!(m["layers"][1]["digest"], m["config"]["digest"]);
    assert_eq!(m["annotations"]["org.opencontainers.image.title"], "auth");
    assert_eq!(m["annotations"]["org.opencontainers.image.version"], "1.2.0");
    assert_eq!(m["annotations"]["org.opencontainers.image.description"], "checks tokens");
    assert_eq!(m["annotations"]["dev.weir.key-id"], KeyId::of(&key(1).verifying_key()).as_str());
    let config: Value = serde_json::from_slice(&a.config_bytes()).unwrap();
    let fields: Vec<&str> = config.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec!["abi", "config_schema", "description", "name", "version", "wasm_digest", "wasm_size"];
    let mut got = fields.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn pack_detects_each_abi_and_refuses_bad_input() {
    for (export, abi) in [
        ("proxy_abi_version_0_2_1", "0.2.1"),
        ("proxy_abi_version_0_2_0", "0.2.0"),
        ("proxy_abi_version_0_1_0", "0.1.0"),
    ] {
        let a = pack(wat_module(&[export]), "f", "0.1.0".parse().unwrap(), "", None, None).unwrap();
        assert_eq!(a.meta.abi, abi);
    }
    let v = || "1.0.0".parse().unwrap();
    /// (case, module, name, schema, the error's start)
    type Case = (&'static str, Vec<u8>, &'static str, Option<Value>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "bad name",
            real_wasm(),
            "2fa",
            None,
            "artifact name \"2fa\" is invalid: it starts with '2'; use letters, digits, '-' and '_', starting with a \
             letter (at most 64 characters)",
        ),
        ("slash in name", real_wasm(), "a/b", None, "artifact name \"a/b\" is invalid: '/' is not allowed;"),
        ("not wasm", b"hello".to_vec(), "f", None, "the filter is not a WebAssembly module: "),
        (
            "no abi",
            wat_module(&[]),
            "f",
            None,
            "the module declares no proxy-wasm ABI: it exports none of proxy_abi_version_0_2_1, \
             proxy_abi_version_0_2_0, proxy_abi_version_0_1_0; build it with a proxy-wasm SDK",
        ),
        (
            "two abis",
            wat_module(&["proxy_abi_version_0_2_1", "proxy_abi_version_0_1_0"]),
            "f",
            None,
            "the module declares more than one proxy-wasm ABI (proxy_abi_version_0_2_1, proxy_abi_version_0_1_0)",
        ),
        (
            "bad schema",
            real_wasm(),
            "f",
            Some(json!({"type": "objekt"})),
            "the configuration schema is not a valid JSON Schema: ",
        ),
    ];
    for (case, wasm, name, schema, want) in cases {
        let err = pack(wasm, name, v(), "", schema, None).expect_err(case).to_string();
        assert!(err.starts_with(want), "{case}: {err}");
    }
}

// === tampering ===

fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        out.push((name, content));
    }
    out
}

fn retar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        // Written raw (not with set_path) so that hostile names like "../evil" can be built too.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, content.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tampered copy of the layout: `edit` changes the files; then, if `rewrite_manifest` is given, the manifest
/// is edited as JSON, stored under its new digest and index.json updated, as a careful attacker would.
struct Tamper {
    files: Vec<(String, Vec<u8>)>,
}

impl Tamper {
    fn new(a: &Artifact) -> Tamper {
        Tamper { files: untar(&a.to_layout_tar()) }
    }

    fn file(&mut self, path: &str) -> &mut Vec<u8> {
        &mut self.files.iter_mut().find(|(n, _)| n == path).unwrap_or_else(|| panic!("no {path}")).1
    }

    fn manifest_path(&self) -> String {
        let index: Value = serde_json::from_slice(&self.files[1].1).unwrap();
        blob_path(index["manifests"][0]["digest"].as_str().unwrap())
    }

    fn manifest(&mut self, edit: impl FnOnce(&mut Value)) -> &mut Tamper {
        let path = self.manifest_path();
        let mut m: Value = serde_json::from_slice(self.file(&path)).unwrap();
        edit(&mut m);
        let bytes = serde_json::to_vec(&m).unwrap();
        let digest = sha256_digest(&bytes);
        self.files.retain(|(n, _)| *n != path);
        self.files.push((blob_path(&digest), bytes.clone()));
        let mut index: Value = serde_json::from_slice(self.file("index.json")).unwrap();
        index["manifests"][0]["digest"] = json!(digest);
        index["manifests"][0]["size"] = json!(bytes.len());
        *self.file("index.json") = serde_json::to_vec(&index).unwrap();
        self
    }

    fn add(&mut self, path: &str, bytes: Vec<u8>) -> &mut Tamper {
        self.files.push((path.to_string(), bytes));
        self
    }

    fn read(&self) -> Result<Artifact, ArtifactError> {
        Artifact::from_layout_tar(&retar(&self.files))
    }
}

#[test]
fn every_tampering_is_refused_with_its_own_error() {
    let a = packed(None);
    let wasm_path = blob_path(&a.wasm_digest());
    let config_path = blob_path(&a.config_digest());
    let wasm_hex = a.wasm_digest()["sha256:".len()..].to_string();
    let other_wasm = wat_module(&["proxy_abi_version_0_2_1"]);
    let other_digest = sha256_digest(&other_wasm);

    type Case = (&'static str, Box<dyn Fn(&mut Tamper)>, String);
    let cases: Vec<Case> = vec![
        (
            "flipped byte in the layer",
            Box::new({
                let p = wasm_path.clone();
                move |t| t.file(&p)[100] ^= 1
            }),
            "wasm layer named by the manifest: digest mismatch: expected sha256:".into(),
        ),
        (
            "changed config blob",
            Box::new({
                let p = config_path.clone();
                move |t| {
                    let c = t.file(&p);
                    let text = String::from_utf8(c.clone()).unwrap().replace("checks tokens", "checks nothing");
                    *c = text.into_bytes();
                }
            }),
            "config blob named by the manifest: the descriptor says".into(),
        ),
        (
            "manifest edited without updating index.json",
            Box::new(|t| {
                let p = t.manifest_path();
                let m = t.file(&p);
                let text = String::from_utf8(m.clone()).unwrap().replace("\"auth\"", "\"evil\"");
                *m = text.into_bytes();
            }),
            "manifest named by index.json: digest mismatch: expected sha256:".into(),
        ),
        (
            "wrong layer digest in the manifest (a swapped wasm)",
            Box::new({
                let (w, d) = (other_wasm.clone(), other_digest.clone());
                move |t| {
                    t.add(&blob_path(&d), w.clone()).manifest(|m| {
                        m["layers"][0]["digest"] = json!(d);
                        m["layers"][0]["size"] = json!(w.len());
                    });
                }
            }),
            format!("wasm layer named by the config blob's wasm_digest: digest mismatch: expected sha256:{wasm_hex}"),
        ),
        (
            "manifest names a digest whose blob is missing",
            Box::new({
                let d = other_digest.clone();
                move |t| {
                    t.manifest(|m| m["layers"][0]["digest"] = json!(d));
                }
            }),
            format!("{}: missing from the artifact (the wasm layer named by the manifest)", blob_path(&other_digest)),
        ),
        (
            "missing wasm blob",
            Box::new({
                let p = wasm_path.clone();
                move |t| t.files.retain(|(n, _)| *n != p)
            }),
            format!("{wasm_path}: missing from the artifact (the wasm layer named by the manifest)"),
        ),
        (
            "missing index.json",
            Box::new(|t| t.files.retain(|(n, _)| n != "index.json")),
            "index.json: missing from the artifact (every OCI image layout has it)".into(),
        ),
        (
            "wrong layer media type",
            Box::new(|t| {
                t.manifest(|m| m["layers"][0]["mediaType"] = json!("application/octet-stream"));
            }),
            "layer 0 (wasm): media type is \"application/octet-stream\", expected \
             \"application/vnd.module.wasm.content.layer.v1+wasm\""
                .into(),
        ),
        (
            "wrong config media type",
            Box::new(|t| {
                t.manifest(|m| m["config"]["mediaType"] = json!("application/vnd.oci.image.config.v1+json"));
            }),
            "config blob: media type is \"application/vnd.oci.image.config.v1+json\", expected \
             \"application/vnd.module.wasm.config.v1+json\""
                .into(),
        ),
        (
            "one layer only",
            Box::new(|t| {
                t.manifest(|m| {
                    m["layers"].as_array_mut().unwrap().pop();
                });
            }),
            "manifest: has 1 layers, a Weir artifact has 2 (the wasm layer, then the config layer)".into(),
        ),
        (
            "blob size that lies",
            Box::new(|t| {
                t.manifest(|m| {
                    let size = m["layers"][0]["size"].as_u64().unwrap();
                    m["layers"][0]["size"] = json!(size + 1);
                });
            }),
            format!(
                "wasm layer named by the manifest: the descriptor says {} bytes, the blob has {}",
                a.wasm.len() + 1,
                a.wasm.len()
            ),
        ),
        (
            "huge declared blob size",
            Box::new(|t| {
                t.manifest(|m| m["layers"][0]["size"] = json!(1u64 << 40));
            }),
            "layer 0 (wasm) is 1099511627776 bytes, over the 67108864-byte limit (a filter artifact is a .wasm plus a few KiB)".into(),
        ),
        (
            "malformed digest",
            Box::new(|t| {
                t.manifest(|m| m["layers"][0]["digest"] = json!("sha256:../../etc/passwd"));
            }),
            "layer 0 (wasm): digest \"sha256:../../etc/passwd\" is not sha256:<64 lowercase hex digits>".into(),
        ),
        (
            "half a signature",
            Box::new(|t| {
                t.manifest(|m| m["annotations"]["dev.weir.signature"] = json!("AAAA"));
            }),
            "manifest: has only one of the dev.weir.signature and dev.weir.key-id annotations".into(),
        ),
        (
            "path escaping the layout",
            Box::new(|t| {
                t.add("../evil", vec![1]);
            }),
            "the artifact is not a valid OCI image layout tar file: \"../evil\": paths must be relative".into(),
        ),
    ];
    for (case, tamper, want) in cases {
        let mut t = Tamper::new(&a);
        tamper(&mut t);
        let err = t.read().expect_err(case).to_string();
        assert!(err.starts_with(&want), "{case}:\n got: {err}\nwant: {want}");
    }
}

#[test]
fn broken_tar_files_are_refused() {
    let a = packed(None);
    let tar = a.to_layout_tar();
    let cut = &tar[..tar.len() - 1024 - a.wasm.len() / 2];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "oversize",
            vec![0u8; 64 * 1024 * 1024 + 1],
            "the artifact file is 67108865 bytes, over the 67108864-byte limit",
        ),
        ("truncated", cut.to_vec(), "the artifact is not a valid OCI image layout tar file: blobs/sha256/"),
        ("empty", Vec::new(), "oci-layout: missing from the artifact"),
        (
            "not a tar",
            b"{\"hello\": 1}".repeat(100),
            "the artifact is not a valid OCI image layout tar file: the file is not a tar archive (its first 512-byte \
             block is not a tar header)",
        ),
    ];
    for (case, bytes, want) in cases {
        let err = Artifact::from_layout_tar(&bytes).expect_err(case).to_string();
        assert!(err.starts_with(want), "{case}: {err}");
    }

    // A symlink entry.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "index.json", "/etc/passwd").unwrap();
    let err = Artifact::from_layout_tar(&b.into_inner().unwrap()).unwrap_err().to_string();
    assert_eq!(
        err,
        "the artifact is not a valid OCI image layout tar file: index.json: entries of type Symlink are not allowed, only files"
    );
}

// === signatures ===

#[test]
fn signatures_are_checked_against_trusted_keys() {
    let (alice, bob) = (key(1), key(2));
    let alice_id = KeyId::of(&alice.verifying_key()).to_string();
    let signed = packed(Some(&alice));
    let mut tampered = signed.clone();
    tampered.meta.description = "changed after signing".into();
    let mut swapped_wasm = signed.clone();
    swapped_wasm.wasm = wat_module(&["proxy_abi_version_0_2_1"]);
    swapped_wasm.meta.wasm_digest = sha256_digest(&swapped_wasm.wasm);
    swapped_wasm.meta.wasm_size = swapped_wasm.wasm.len() as u64;
    // Signed by bob, but claiming alice's key id.
    let mut forged = packed(Some(&bob));
    if let Some(sig) = forged.signature.as_mut() {
        sig.key_id = KeyId::of(&alice.verifying_key());
    }

    let unsigned = Artifact { signature: None, ..signed.clone() };
    /// (case, artifact, trusted keys, the key id it verifies under or the error's start)
    type Case<'a> = (&'static str, &'a Artifact, Vec<ed25519_dalek::VerifyingKey>, Result<Option<String>, String>);
    let cases: Vec<Case> = vec![
        ("trusted key", &signed, vec![bob.verifying_key(), alice.verifying_key()], Ok(Some(alice_id.clone()))),
        (
            "key not trusted",
            &signed,
            vec![bob.verifying_key()],
            Err(format!(
                "the artifact is signed by key {alice_id}, which is not a trusted key; add that key's .pub file to the \
                 trusted keys if you trust it"
            )),
        ),
        ("no trusted keys", &signed, vec![], Err(format!("the artifact is signed by key {alice_id}, which is not"))),
        (
            "config changed after signing",
            &tampered,
            vec![alice.verifying_key()],
            Err(format!("the signature does not verify under key {alice_id}: the artifact")),
        ),
        (
            "wasm swapped after signing",
            &swapped_wasm,
            vec![alice.verifying_key()],
            Err(format!("the signature does not verify under key {alice_id}")),
        ),
        (
            "forged key id",
            &forged,
            vec![alice.verifying_key()],
            Err(format!("the signature does not verify under key {alice_id}")),
        ),
        ("unsigned", &unsigned, vec![alice.verifying_key()], Ok(None)),
    ];
    for (case, a, trusted, want) in cases {
        match (a.verify(&trusted), want) {
            (Ok(got), Ok(want)) => assert_eq!(got.map(|k| k.to_string()), want, "{case}"),
            (Err(e), Err(want)) => assert!(e.to_string().starts_with(&want), "{case}: {e}"),
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }

    assert_eq!(artifact::require_trusted(&signed, &[alice.verifying_key()]).unwrap().to_string(), alice_id);
    assert_eq!(
        artifact::require_trusted(&unsigned, &[alice.verifying_key()]).unwrap_err().to_string(),
        "the artifact is not signed and only artifacts signed by a trusted key are accepted; pack it with --sign-key"
    );

    // The signature survives the tar, and a tar-level rewrite of the config (consistent digests) breaks it.
    let back = Artifact::from_layout_tar(&signed.to_layout_tar()).unwrap();
    assert_eq!(back.verify(&[alice.verifying_key()]).unwrap().map(|k| k.to_string()), Some(alice_id.clone()));
    let mut t = Tamper::new(&signed);
    let new_config = tampered.config_bytes();
    let new_digest = sha256_digest(&new_config);
    t.add(&blob_path(&new_digest), new_config.clone()).manifest(|m| {
        for d in ["/config", "/layers/1"] {
            let d = m.pointer_mut(d).unwrap();
            d["digest"] = json!(new_digest);
            d["size"] = json!(new_config.len());
        }
    });
    let rewritten = t.read().expect("consistent digests read fine");
    assert!(rewritten
        .verify(&[alice.verifying_key()])
        .unwrap_err()
        .to_string()
        .starts_with("the signature does not verify"));
}

#[test]
fn key_files() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("release");
    let (k, public) = sign::generate();
    let (private_path, public_path) = sign::write_key_pair(&prefix, &k).unwrap();
    assert_eq!(
        (private_path.clone(), public_path.clone()),
        (dir.path().join("release.key"), dir.path().join("release.pub"))
    );
    assert_eq!(sign::read_signing_key(&private_path).unwrap().to_bytes(), k.to_bytes());
    assert_eq!(sign::read_verifying_key(&public_path).unwrap(), public);
    let private_text = std::fs::read_to_string(&private_path).unwrap();
    assert!(private_text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{private_text}");
    assert!(std::fs::read_to_string(&public_path).unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&private_path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let overwrite = sign::write_key_pair(&prefix, &k).unwrap_err().to_string();
    assert_eq!(
        overwrite,
        format!(
            "{}: already exists; refusing to overwrite a key (choose another --out prefix)",
            private_path.display()
        )
    );
    // A PEM private key block whose content is not a key; a public key of another algorithm (RSA).
    std::fs::write(dir.path().join("corrupt.key"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    std::fs::write(dir.path().join("rsa.pub"), RSA_PUB).unwrap();
    let cases = [
        (public_path.clone(), true, "not an ed25519 PEM private key: it is a public key (pass the .key file"),
        (private_path.clone(), false, "not an ed25519 PEM public key: it is a private key (pass the .pub file"),
        (dir.path().join("missing.key"), true, "cannot read: No such file or directory"),
        (dir.path().join("corrupt.key"), true, "not an ed25519 PEM private key: "),
        (dir.path().join("rsa.pub"), false, "not an ed25519 PEM public key: "),
    ];
    for (path, private, want) in cases {
        let err = if private {
            sign::read_signing_key(&path).map(|_| ()).unwrap_err()
        } else {
            sign::read_verifying_key(&path).map(|_| ()).unwrap_err()
        };
        assert!(err.to_string().starts_with(&format!("{}: {want}", path.display())), "{err}");
    }
}

const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMBdT3qXgGKnKrFzF2gVTB12b1YQ7hCM
Ul0SnQ7gUYmhTaW4I1P9u6N1rkS8c0HHtO3zY0MskRtXc33vFiA+tNsCAwEAAQ==
-----END PUBLIC KEY-----
";

// === schema ===

#[test]
fn configurations_are_checked_against_the_schema() {
    let s = schema_fixture();
    let issue = |path: &str, message: &str| SchemaIssue { path: path.into(), message: message.into() };
    type Case = (&'static str, Value, Result<(), Vec<SchemaIssue>>);
    let cases: Vec<Case> = vec![
        ("valid", json!({"issuer": "https://id.example.com", "audiences": ["a"], "limits": {"max": 3}}), Ok(())),
        ("missing field", json!({}), Err(vec![issue("", "\"issuer\" is a required property")])),
        ("wrong type", json!({"issuer": 7}), Err(vec![issue("/issuer", "7 is not of type \"string\"")])),
        ("too short", json!({"issuer": "x"}), Err(vec![issue("/issuer", "\"x\" is shorter than 8 characters")])),
        (
            "array item",
            json!({"issuer": "https://id", "audiences": ["a", 2]}),
            Err(vec![issue("/audiences/1", "2 is not of type \"string\"")]),
        ),
        (
            "nested and several",
            json!({"issuer": 1, "limits": {"max": 0}}),
            Err(vec![
                issue("/issuer", "1 is not of type \"string\""),
                issue("/limits/max", "0 is less than the minimum of 1"),
            ]),
        ),
        (
            "unknown field",
            json!({"issuer": "https://id", "isuer": 1}),
            Err(vec![issue("", "Additional properties are not allowed ('isuer' was unexpected)")]),
        ),
    ];
    for (case, config, want) in cases {
        let mut got = schema::validate(&s, &config);
        if let Err(issues) = got.as_mut() {
            issues.sort_by(|a, b| a.path.cmp(&b.path));
        }
        assert_eq!(got, want, "{case}");
    }
    assert_eq!(issue("", "m").to_string(), "(root): m");
    assert_eq!(issue("/a/0", "m").to_string(), "/a/0: m");
}

// === registry ===

mod oci_registry;
use oci_registry::Registry;

fn reference(registry: &Registry, repo_tag: &str) -> OciRef {
    OciRef::parse(&format!("oci://{}/{repo_tag}", registry.addr)).unwrap()
}

#[test]
fn push_and_pull_against_a_real_registry() {
    let registry = Registry::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let alice = key(1);
    let cases = [
        ("unsigned", packed(None), "filters/auth:1.2.0"),
        ("signed", packed(Some(&alice)), "filters/auth:1.2.0-signed"),
    ];
    for (case, a, repo_tag) in cases {
        let by_tag = reference(&registry, repo_tag);
        let digest = rt.block_on(oci::push(&a, &by_tag, false)).unwrap_or_else(|e| panic!("{case}: push: {e}"));
        assert_eq!(digest, sha256_digest(&a.manifest_bytes()), "{case}");

        let (pulled, pulled_digest) = rt.block_on(oci::pull(&by_tag, false)).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!((&pulled, &pulled_digest), (&a, &digest), "{case}: pulled by tag");
        let by_digest = by_tag.with_target(OciTarget::Digest(digest.clone()));
        let (pulled, _) = rt.block_on(oci::pull(&by_digest, false)).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(pulled, a, "{case}: pulled by digest");
        assert_eq!(pulled.to_layout_tar(), a.to_layout_tar(), "{case}");
        if a.signature.is_some() {
            assert!(pulled.verify(&[alice.verifying_key()]).unwrap().is_some(), "{case}");
        }
    }

    // Pushing to a digest that is not the artifact's is refused before any request.
    let a = packed(None);
    let wrong = reference(&registry, &format!("filters/auth@sha256:{}", "0".repeat(64)));
    let err = rt.block_on(oci::push(&a, &wrong, false)).unwrap_err().to_string();
    assert!(err.contains("the artifact's manifest digest is sha256:"), "{err}");

    // Unknown tag, unknown digest.
    for missing in ["filters/auth:9.9.9".to_string(), format!("filters/auth@sha256:{}", "1".repeat(64))] {
        let r = reference(&registry, &missing);
        let err = rt.block_on(oci::pull(&r, false)).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{r}: pull manifest failed: ")), "{err}");
    }
}

#[test]
fn unreachable_registry() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = OciRef::parse(&format!("oci://127.0.0.1:{port}/filters/auth:1.2.0")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(oci::pull(&r, false)).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{r}: pull manifest failed: ")), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    let err = rt.block_on(oci::push(&packed(None), &r, false)).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{r}: push config blob failed: ")), "{err}");
}

// === mock registry: token flow, redirects, tampering ===

#[path = "oci_registry/mock.rs"]
mod mock;

fn mock_reference(mock: &mock::Mock, target: &str) -> OciRef {
    OciRef::parse(&format!("oci://{}/filters/auth{target}", mock.addr)).unwrap()
}

#[test]
fn token_flow_and_blob_redirects_against_a_mock_registry() {
    let m = mock::Mock::start(mock::Options { bearer: true, redirect_blobs: true, ..Default::default() });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let a = packed(Some(&key(1)));
    let by_tag = mock_reference(&m, ":1.2.0");

    // Push: HEAD (401, token, 404), POST an upload, PUT its Location with &digest= (it has a query already).
    let digest = rt.block_on(oci::push(&a, &by_tag, false)).unwrap_or_else(|e| panic!("push: {e}"));
    assert_eq!(digest, sha256_digest(&a.manifest_bytes()));
    let log = m.log();
    let token_requests: Vec<_> = log.iter().filter(|l| l.starts_with("side GET /token?")).collect();
    assert!(!token_requests.is_empty(), "{log:#?}");
    assert!(
        log.iter().any(|l| l.starts_with("registry PUT /v2/filters/auth/blobs/uploads/u1?_state=s1&digest=sha256:")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("registry PUT /v2/filters/auth/manifests/1.2.0 auth=Bearer ")),
        "{log:#?}"
    );
    // Pushing again uploads nothing: HEAD finds both blobs.
    m.clear_log();
    rt.block_on(oci::push(&a, &by_tag, false)).unwrap_or_else(|e| panic!("push again: {e}"));
    assert!(!m.log().iter().any(|l| l.contains("/blobs/uploads/")), "{:#?}", m.log());

    // Pull by tag and by digest: one token per pull (cached for the manifest and both blobs); the blobs come
    // from the other port, without the registry's Authorization (the side server answers 403 to it).
    for r in [by_tag.clone(), by_tag.with_target(OciTarget::Digest(digest.clone()))] {
        m.clear_log();
        let (pulled, pulled_digest) = rt.block_on(oci::pull(&r, false)).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert_eq!((&pulled, &pulled_digest), (&a, &digest), "{r}");
        let log = m.log();
        assert_eq!(log.iter().filter(|l| l.starts_with("side GET /token?")).count(), 1, "{r}: {log:#?}");
        let from_storage: Vec<_> = log.iter().filter(|l| l.starts_with("side GET /blobs/")).collect();
        assert_eq!(from_storage.len(), 2, "{r}: {log:#?}");
        assert!(from_storage.iter().all(|l| l.ends_with("auth=-")), "{r}: {log:#?}");
    }

    // A token the registry does not accept: one retry, then the registry's refusal, not a loop.
    let wrong = mock::Mock::start(mock::Options { bearer: true, wrong_token: true, ..Default::default() });
    let r = mock_reference(&wrong, ":1.2.0");
    let err = rt.block_on(oci::pull(&r, false)).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{r}: pull manifest failed: http://{}/v2/filters/auth/manifests/1.2.0 answered 401 Unauthorized: UNAUTHORIZED: authentication required", wrong.addr)), "{err}");
    assert_eq!(wrong.log().iter().filter(|l| l.starts_with("side GET /token?")).count(), 1, "{:#?}", wrong.log());
}

#[test]
fn a_registry_serving_other_bytes_is_refused() {
    let a = packed(None);
    let manifest = a.manifest_bytes();
    let manifest_digest = sha256_digest(&manifest);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cases = [
        ("wasm layer", a.wasm_digest(), false),
        ("wasm layer from blob storage", a.wasm_digest(), true),
        ("config blob", a.config_digest(), false),
        ("manifest", manifest_digest.clone(), false),
    ];
    for (case, tampered, redirect) in cases {
        let m = mock::Mock::start(mock::Options {
            redirect_blobs: redirect,
            tamper: vec![tampered.clone()],
            ..Default::default()
        });
        m.store("1.2.0", &manifest, &[&a.config_bytes(), &a.wasm]);
        for target in [":1.2.0".to_string(), format!("@{manifest_digest}")] {
            let r = mock_reference(&m, &target);
            let err = rt.block_on(oci::pull(&r, false)).expect_err(case);
            assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{case}: {err}");
            let err = err.to_string();
            assert!(
                err.contains(&format!("digest mismatch: expected {tampered}, the bytes hash to sha256:")),
                "{case}: {err}"
            );
            let names = if case == "manifest" { r.to_string() } else { format!("{tampered} served by http://") };
            assert!(err.contains(&names), "{case}: {err}");
        }
    }
}

#[test]
fn oversized_and_wrong_answers_are_refused() {
    let a = packed(None);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let m = mock::Mock::start(mock::Options::default());
    // A manifest over the 4 MiB limit is refused from its Content-Length, before it is read.
    let mut huge = a.manifest_bytes();
    huge.resize(4 * 1024 * 1024 + 1, b' ');
    m.store("huge", &huge, &[]);
    let err = rt.block_on(oci::pull(&mock_reference(&m, ":huge"), false)).unwrap_err().to_string();
    assert!(
        err.contains("the manifest of oci://") && err.contains("is 4194305 bytes, over the 4194304-byte limit"),
        "{err}"
    );
    // A blob bigger than its descriptor says.
    let mut manifest: Value = serde_json::from_slice(&a.manifest_bytes()).unwrap();
    manifest["layers"][0]["size"] = json!(a.wasm.len() - 1);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    m.store("short", &manifest, &[&a.config_bytes(), &a.wasm]);
    let err = rt.block_on(oci::pull(&mock_reference(&m, ":short"), false)).unwrap_err().to_string();
    assert!(err.contains("pull wasm layer failed: the registry sent more"), "{err}");
    // A missing blob: the registry's error JSON is quoted.
    let m = mock::Mock::start(mock::Options::default());
    m.store("1.2.0", &a.manifest_bytes(), &[&a.config_bytes()]);
    let err = rt.block_on(oci::pull(&mock_reference(&m, ":1.2.0"), false)).unwrap_err().to_string();
    assert!(
        err.contains("pull wasm layer failed: ")
            && err.contains("answered 404 Not Found: BLOB_UNKNOWN: blob unknown to registry"),
        "{err}"
    );
}
