//! The shipped jwt-auth filter (`filters/jwt-auth`) in the real gateway: valid tokens for every algorithm, the
//! usual attacks on JWT verifiers, token sources, headers upstream, and a JWKS endpoint that rotates, is down,
//! slow, or answers garbage.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Sha256, Sha384, Sha512};
use weir_tests::client::{get_with, Reply};
use weir_tests::upstream::{closed_port, Upstream};
use weir_tests::{filters, TestGateway};

const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "payments";

/// The test's signing keys, made once per run.
struct Keys {
    rsa: RsaPrivateKey,
    p256: p256::ecdsa::SigningKey,
    p384: p384::ecdsa::SigningKey,
    ed: ed25519_dalek::SigningKey,
    hs: [Vec<u8>; 3],
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand_core::OsRng;
        Keys {
            rsa: RsaPrivateKey::new(&mut rng, 2048).expect("RSA key"),
            p256: p256::ecdsa::SigningKey::random(&mut rng),
            p384: p384::ecdsa::SigningKey::random(&mut rng),
            ed: ed25519_dalek::SigningKey::generate(&mut rng),
            hs: [vec![7u8; 32], vec![8u8; 48], vec![9u8; 64]],
        }
    })
}

const ALGS: [&str; 12] =
    ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWK of the test key for `alg`, with `kid`.
fn jwk(alg: &str, kid: &str) -> Value {
    let k = keys();
    match alg {
        "HS256" | "HS384" | "HS512" => {
            let secret = &k.hs[["HS256", "HS384", "HS512"].iter().position(|a| *a == alg).unwrap_or(0)];
            json!({"kty": "oct", "kid": kid, "alg": alg, "k": b64(secret)})
        }
        "ES256" => {
            let point = k.p256.verifying_key().to_encoded_point(false);
            json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": alg, "use": "sig",
                   "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))})
        }
        "ES384" => {
            let point = k.p384.verifying_key().to_encoded_point(false);
            json!({"kty": "EC", "crv": "P-384", "kid": kid, "alg": alg,
                   "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))})
        }
        "EdDSA" => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": alg,
                          "x": b64(k.ed.verifying_key().as_bytes())}),
        _ => {
            let public = k.rsa.to_public_key();
            json!({"kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
                   "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())})
        }
    }
}

/// A JWKS with every algorithm's key, each `kid` the algorithm's name in lower case.
fn jwks_all() -> Value {
    json!({"keys": ALGS.iter().map(|alg| jwk(alg, &alg.to_ascii_lowercase())).collect::<Vec<_>>()})
}

fn signature(alg: &str, input: &[u8]) -> Vec<u8> {
    let k = keys();
    match alg {
        "HS256" => hmac_sign::<Hmac<Sha256>>(&k.hs[0], input),
        "HS384" => hmac_sign::<Hmac<Sha384>>(&k.hs[1], input),
        "HS512" => hmac_sign::<Hmac<Sha512>>(&k.hs[2], input),
        "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(k.rsa.clone()).sign(input).to_vec(),
        "RS384" => rsa::pkcs1v15::SigningKey::<Sha384>::new(k.rsa.clone()).sign(input).to_vec(),
        "RS512" => rsa::pkcs1v15::SigningKey::<Sha512>::new(k.rsa.clone()).sign(input).to_vec(),
        "PS256" => {
            rsa::pss::SigningKey::<Sha256>::new(k.rsa.clone()).sign_with_rng(&mut rand_core::OsRng, input).to_vec()
        }
        "PS384" => {
            rsa::pss::SigningKey::<Sha384>::new(k.rsa.clone()).sign_with_rng(&mut rand_core::OsRng, input).to_vec()
        }
        "PS512" => {
            rsa::pss::SigningKey::<Sha512>::new(k.rsa.clone()).sign_with_rng(&mut rand_core::OsRng, input).to_vec()
        }
        "ES256" => {
            let sig: p256::ecdsa::Signature = k.p256.sign(input);
            sig.to_bytes().to_vec()
        }
        "ES384" => {
            let sig: p384::ecdsa::Signature = k.p384.sign(input);
            sig.to_bytes().to_vec()
        }
        "EdDSA" => ed25519_dalek::Signer::sign(&k.ed, input).to_bytes().to_vec(),
        other => panic!("no signer for {other}"),
    }
}

fn hmac_sign<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC key");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// A token with this header and payload text, signed with the test key for `sign_alg`.
fn token_raw(header: &str, payload: &str, sign_alg: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = signature(sign_alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The claims of a good token, with `changes` merged in (a null removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "client_id": "acme",
                            "scope": "payments:read payments:write", "iat": now(), "exp": now() + 300,
                            "realm_access": {"roles": ["payments-admin", "viewer"]}});
    if let (Some(map), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    claims
}

/// A good token for `alg` (kid: the algorithm in lower case) with `changes` to its claims.
fn token(alg: &str, changes: Value) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": alg.to_ascii_lowercase()});
    token_raw(&header.to_string(), &claims(changes).to_string(), alg)
}

/// A mock JWKS endpoint: each path answers as its [`Mode`] says; requests are counted per path.
#[derive(Clone)]
enum Mode {
    Json(String),
    Garbage,
    Status(u16),
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Jwks {
    modes: Arc<Mutex<HashMap<String, Mode>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Jwks {
    async fn start() -> (Jwks, SocketAddr) {
        let jwks = Jwks::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = jwks.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(req.uri().path()).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (jwks, addr)
    }

    fn set(&self, path: &str, mode: Mode) {
        self.modes.lock().expect("lock").insert(path.to_owned(), mode);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().expect("lock").get(path).copied().unwrap_or(0)
    }

    async fn answer(&self, path: &str) -> http::Response<Full<Bytes>> {
        *self.hits.lock().expect("lock").entry(path.to_owned()).or_default() += 1;
        let mode = self.modes.lock().expect("lock").get(path).cloned().unwrap_or(Mode::Status(404));
        let (status, body) = match mode {
            Mode::Json(body) => (200, body),
            Mode::Garbage => (200, "<html>not {a jwks".to_owned()),
            Mode::Status(code) => (code, String::new()),
            Mode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                (200, jwks_all().to_string())
            }
        };
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("response")
    }
}

/// The configuration of `filters/jwt-auth/README.md`'s example (its first ```json block).
fn readme_example() -> Value {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../filters/jwt-auth/README.md"))
        .expect("filters/jwt-auth/README.md");
    let start = readme.find("```json\n").expect("a json block in the README") + "```json\n".len();
    let end = start + readme[start..].find("```").expect("end of the json block");
    serde_json::from_str(&readme[start..end]).expect("the README example is JSON")
}

fn attach(configuration: Value) -> Value {
    json!([{"name": "jwt", "module": filters::JWT_AUTH_WASM, "configuration": configuration}])
}

/// The configuration of the inline-JWKS routes: every algorithm, the README's claim rules and outputs.
fn inline_config(extra: Value) -> Value {
    let mut config = readme_example();
    let map = config.as_object_mut().expect("object");
    map.remove("remote_jwks");
    map.insert("jwks".into(), jwks_all());
    for (key, value) in extra.as_object().expect("object") {
        map.insert(key.clone(), value.clone());
    }
    config
}

async fn call(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    get_with(gw.main(), "api.test", path, headers).await.expect("request")
}

async fn bearer(gw: &TestGateway, path: &str, token: &str) -> Reply {
    call(gw, path, &[("authorization", &format!("Bearer {token}"))]).await
}

/// Asserts a refusal: status, challenge and JSON code.
fn refused(reply: &Reply, status: u16, code: &str, case: &str) {
    assert_eq!(reply.status.as_u16(), status, "{case}: {}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"]["code"], code, "{case}: {}", reply.body);
    let challenge = reply.header("www-authenticate");
    match status {
        401 if code == "token_missing" => assert_eq!(challenge, r#"Bearer realm="api""#, "{case}"),
        401 => assert!(
            challenge.starts_with(r#"Bearer realm="api", error="invalid_token", error_description=""#),
            "{case}: {challenge}"
        ),
        403 => assert!(challenge.contains(r#"error="insufficient_scope""#), "{case}: {challenge}"),
        _ => assert_eq!(challenge, "", "{case}"),
    }
    assert!(!reply.body.contains("BEGIN") && !reply.body.contains("\"k\""), "{case}: no key material");
}

async fn gateway(svc: &Upstream, idp: SocketAddr) -> TestGateway {
    let pem = keys().rsa.to_public_key().to_public_key_pem(LineEnding::LF).expect("PEM");
    let remote = |path: &str, ttl: u64, cooldown: u64, timeout_ms: u64| {
        let mut config = readme_example();
        config["remote_jwks"] = json!({"cluster": "idp", "path": path, "cache_duration_seconds": ttl,
                                        "refetch_cooldown_seconds": cooldown, "fetch_timeout_ms": timeout_ms});
        config
    };
    let dead = {
        let mut config = readme_example();
        config["remote_jwks"]["cluster"] = json!("dead");
        config
    };
    let route = |prefix: &str, configuration: Value| {
        json!({"name": prefix.trim_matches('/'), "match": {"path": {"prefix": prefix}}, "cluster": "svc",
               "filters": attach(configuration)})
    };
    TestGateway::start(json!({
        "routes": [
            route("/inline", inline_config(json!({}))),
            route("/sources", inline_config(json!({"from": [
                {"header": {"name": "authorization", "prefix": "Bearer "}},
                {"header": {"name": "x-api-token", "prefix": "Token "}},
                {"query": "access_token"}, {"cookie": "jwt"}]}))),
            route("/scoped", inline_config(json!({"required_scopes": ["payments:admin"], "required_claims": ["client_id", "tenant"]}))),
            route("/pem", inline_config(json!({"jwks": null, "keys": [{"alg": "RS256", "pem": pem}]}))),
            route("/lifetime", inline_config(json!({"max_lifetime_seconds": 600}))),
            route("/remote", readme_example()),
            route("/rotating", remote("/rotating.json", 600, 30, 2000)),
            route("/flaky", remote("/flaky.json", 1, 1, 2000)),
            route("/slow", remote("/slow.json", 600, 30, 300)),
            route("/garbage", remote("/garbage.json", 600, 30, 2000)),
            route("/down", dead),
        ],
        "clusters": [
            {"name": "svc", "endpoints": [svc.endpoint()]},
            {"name": "idp", "endpoints": [idp.to_string()]},
            {"name": "dead", "endpoints": [closed_port()]}
        ]
    }))
    .expect("gateway starts")
}

#[tokio::test]
async fn jwt_valid_tokens_of_every_algorithm_pass_with_claims_upstream() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let (_jwks, idp) = Jwks::start().await;
    let gw = gateway(&svc, idp).await;
    for alg in ALGS {
        let token = token(alg, json!({}));
        // A forged consumer and claim header from the client never reach the upstream.
        let reply = call(
            &gw,
            "/inline/pay",
            &[("authorization", &format!("Bearer {token}")), ("x-weir-consumer", "admin"), ("x-jwt-sub", "root")],
        )
        .await;
        assert_eq!(reply.status, 200, "{alg}: {}", reply.body);
        let echo = reply.json();
        let headers = &echo["headers"];
        assert_eq!(headers["x-weir-consumer"], "acme", "{alg}: {headers}");
        assert_eq!(headers["x-jwt-sub"], "user-1", "{alg}");
        assert_eq!(headers["x-jwt-scope"], "payments:read payments:write", "{alg}");
        assert_eq!(headers["x-jwt-roles"], "payments-admin,viewer", "{alg}: a nested claim");
        assert!(headers.get("authorization").is_none(), "{alg}: the token is removed: {headers}");
    }
    // aud as an array, exp within the clock skew, a PEM key.
    let reply = bearer(&gw, "/inline", &token("ES256", json!({"aud": ["other", AUDIENCE]}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = bearer(&gw, "/inline", &token("EdDSA", json!({"exp": now() - 20}))).await;
    assert_eq!(reply.status, 200, "within the skew: {}", reply.body);
    let pem_token = token_raw(r#"{"alg":"RS256"}"#, &claims(json!({})).to_string(), "RS256");
    let reply = bearer(&gw, "/pem", &pem_token).await;
    assert_eq!(reply.status, 200, "PEM key: {}", reply.body);
    Ok(())
}

#[tokio::test]
async fn jwt_attacks_and_bad_tokens_are_refused_with_their_code() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let (_jwks, idp) = Jwks::start().await;
    let gw = gateway(&svc, idp).await;
    let good = claims(json!({})).to_string();
    let p = |text: &str| b64(text.as_bytes());
    let rs = token("RS256", json!({}));
    let (rs_input, _) = rs.rsplit_once('.').expect("three parts");
    let other_sig = token("RS256", json!({"sub": "user-2"})).rsplit_once('.').expect("parts").1.to_owned();
    let public_pem = keys().rsa.to_public_key().to_public_key_pem(LineEnding::LF)?;
    let confused = {
        let input = format!("{}.{}", p(r#"{"alg":"HS256","kid":"rs256"}"#), p(&good));
        format!("{input}.{}", b64(&hmac_sign::<Hmac<Sha256>>(public_pem.as_bytes(), input.as_bytes())))
    };
    let confused_pem = {
        let input = format!("{}.{}", p(r#"{"alg":"HS256"}"#), p(&good));
        format!("{input}.{}", b64(&hmac_sign::<Hmac<Sha256>>(public_pem.as_bytes(), input.as_bytes())))
    };
    let mut cases: Vec<(&str, String, &str, u16, &str)> = Vec::new();
    for none in ["none", "None", "NONE", "nOnE", "none "] {
        let header = format!(r#"{{"alg":"{none}","kid":"rs256"}}"#);
        cases.push((
            "/inline",
            format!("{}.{}.", p(&header), p(&good)),
            "alg none, no signature",
            401,
            "alg_not_allowed",
        ));
        cases.push((
            "/inline",
            format!("{}.{}.{}", p(&header), p(&good), other_sig),
            "alg none, a signature",
            401,
            "alg_not_allowed",
        ));
    }
    let long_kid = "k".repeat(300);
    let kid = |kid: &str| token_raw(&json!({"alg": "RS256", "kid": kid}).to_string(), &good, "RS256");
    cases.extend([
        (
            "/inline",
            format!("{}.{}.", p(r#"{"alg":"RS256"}"#), p(&good)),
            "no kid among several keys",
            401,
            "kid_unknown",
        ),
        ("/inline", confused, "HS256 signed with the RSA public key (kid of the RSA key)", 401, "alg_not_allowed"),
        ("/pem", confused_pem, "HS256 signed with the RSA public key (the only key)", 401, "alg_not_allowed"),
        (
            "/inline",
            token_raw(r#"{"alg":"RS256","kid":"es256"}"#, &good, "RS256"),
            "alg of another key",
            401,
            "alg_not_allowed",
        ),
        ("/inline", kid("../../../../etc/passwd"), "kid path traversal", 401, "kid_unknown"),
        ("/inline", kid("x' OR '1'='1"), "kid SQL injection", 401, "kid_unknown"),
        ("/inline", kid("/dev/null"), "kid file", 401, "kid_unknown"),
        ("/inline", kid("a\nb"), "kid with a newline", 401, "kid_invalid"),
        ("/inline", kid(&long_kid), "kid too long", 401, "kid_invalid"),
        ("/inline", kid("nope"), "unknown kid", 401, "kid_unknown"),
        ("/inline", token("RS256", json!({"exp": now() - 120})), "expired", 401, "token_expired"),
        ("/inline", token("ES384", json!({"exp": null})), "no exp", 401, "exp_missing"),
        ("/inline", token("PS256", json!({"nbf": now() + 300})), "not yet valid", 401, "token_not_yet_valid"),
        ("/inline", token("PS256", json!({"iat": now() + 300})), "issued in the future", 401, "token_not_yet_valid"),
        ("/inline", token("HS256", json!({"iss": "https://evil.example.com"})), "wrong iss", 401, "issuer_not_allowed"),
        ("/inline", token("HS256", json!({"iss": null})), "no iss", 401, "issuer_not_allowed"),
        ("/inline", token("EdDSA", json!({"aud": "other"})), "wrong aud", 401, "audience_not_allowed"),
        ("/inline", token("EdDSA", json!({"aud": ["a", "b"]})), "wrong aud list", 401, "audience_not_allowed"),
        ("/inline", format!("{rs_input}.{other_sig}"), "signature of another token", 401, "signature_invalid"),
        (
            "/inline",
            format!("{}.{}", rs_input, &rs.rsplit_once('.').expect("parts").1[..40]),
            "truncated signature",
            401,
            "signature_invalid",
        ),
        ("/inline", rs_input.to_owned(), "two parts", 401, "token_malformed"),
        // Cut inside the payload: two parts left, whatever the claims' length.
        ("/inline", rs[..rs_input.len() / 2].to_owned(), "cut in the middle", 401, "token_malformed"),
        ("/inline", format!("{rs}.x.y"), "five parts", 401, "token_malformed"),
        ("/inline", "not!base64.eyJ9.c2ln".to_owned(), "not base64url", 401, "token_malformed"),
        (
            "/inline",
            format!("{}==.{}.{}", p(r#"{"alg":"RS256","kid":"rs256"}"#), p(&good), other_sig),
            "padded base64",
            401,
            "token_malformed",
        ),
        ("/inline", format!("{}.{}.{}", p("not json"), p(&good), other_sig), "header not JSON", 401, "token_malformed"),
        ("/inline", token("RS256", json!({"pad": "x".repeat(9000)})), "over 8 KB", 401, "token_too_large"),
        (
            "/inline",
            token_raw(r#"{"alg":"RS256","kid":"rs256","alg":"none"}"#, &good, "RS256"),
            "duplicate header key",
            401,
            "token_malformed",
        ),
        (
            "/inline",
            token_raw(
                r#"{"alg":"RS256","kid":"rs256"}"#,
                &format!(
                    r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"a","client_id":"c","exp":{},"exp":{}}}"#,
                    now() - 1000,
                    now() + 300
                ),
                "RS256",
            ),
            "duplicate claim",
            401,
            "token_malformed",
        ),
        (
            "/inline",
            token_raw(r#"{"alg":"RS256","kid":"rs256","crit":["exp"]}"#, &good, "RS256"),
            "crit header",
            401,
            "token_malformed",
        ),
        ("/inline", token("RS256", json!({"exp": "tomorrow"})), "exp not a number", 401, "token_malformed"),
        (
            "/lifetime",
            token("RS256", json!({"exp": now() + 3600})),
            "lifetime over the maximum",
            401,
            "lifetime_exceeded",
        ),
        ("/scoped", token("RS256", json!({"tenant": "t1"})), "missing scope", 403, "scope_insufficient"),
        ("/scoped", token("RS256", json!({"scope": "payments:admin"})), "missing claim", 403, "claim_missing"),
    ]);
    for (path, token, case, status, code) in &cases {
        let reply = bearer(&gw, path, token).await;
        refused(&reply, *status, code, case);
    }
    refused(&call(&gw, "/inline", &[]).await, 401, "token_missing", "no token");
    refused(&call(&gw, "/inline", &[("authorization", "Basic YTpi")]).await, 401, "token_missing", "basic auth");
    let twice =
        call(&gw, "/inline", &[("authorization", &format!("Bearer {rs}")), ("authorization", "Bearer x.y.z")]).await;
    refused(&twice, 401, "token_malformed", "two bearer tokens");
    let reply = bearer(&gw, "/scoped", &token("RS256", json!({"tenant": "t1", "scope": "payments:admin"}))).await;
    assert_eq!(reply.status, 200, "scoped route with everything: {}", reply.body);
    assert_eq!(svc.requests(), 1, "no refused request reached the upstream");
    Ok(())
}

#[tokio::test]
async fn jwt_token_sources_in_order_and_removed_before_the_upstream() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let (_jwks, idp) = Jwks::start().await;
    let gw = gateway(&svc, idp).await;
    let t = token("ES256", json!({}));
    // (path, headers, the path the upstream sees)
    type Case<'a> = (String, Vec<(&'a str, String)>, &'a str);
    let table: Vec<Case> = vec![
        (format!("/sources/a?access_token={t}&x=1"), vec![], "/sources/a?x=1"),
        ("/sources/b".into(), vec![("cookie", format!("a=1; jwt={t}; b=2"))], "/sources/b"),
        ("/sources/c".into(), vec![("x-api-token", format!("Token {t}"))], "/sources/c"),
        (
            "/sources/d?access_token=bad".to_owned(),
            vec![("authorization", format!("Bearer {t}"))],
            "/sources/d?access_token=bad",
        ),
    ];
    for (path, headers, upstream_path) in &table {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = call(&gw, path, &headers).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let echo = reply.json();
        assert_eq!(echo["uri"], *upstream_path, "{path}");
        let seen = echo["headers"].to_string();
        assert!(!seen.contains(&t), "{path}: the token went upstream: {seen}");
        assert_eq!(echo["headers"]["x-weir-consumer"], "acme", "{path}");
    }
    let cookie = call(&gw, "/sources/b", &[("cookie", format!("a=1; jwt={t}; b=2").as_str())]).await.json();
    assert_eq!(cookie["headers"]["cookie"], "a=1; b=2");
    Ok(())
}

#[tokio::test]
async fn jwt_remote_jwks_is_fetched_rotated_and_kept_when_the_issuer_fails() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let (jwks, idp) = Jwks::start().await;
    let only = |algs: &[&str]| {
        json!({"keys": algs.iter().map(|a| jwk(a, &a.to_ascii_lowercase())).collect::<Vec<_>>()}).to_string()
    };
    jwks.set("/.well-known/jwks.json", Mode::Json(jwks_all().to_string()));
    jwks.set("/rotating.json", Mode::Json(only(&["RS256"])));
    jwks.set("/flaky.json", Mode::Json(only(&["ES256"])));
    jwks.set("/slow.json", Mode::Slow(Duration::from_secs(3)));
    jwks.set("/garbage.json", Mode::Garbage);
    let gw = gateway(&svc, idp).await;

    // The README's configuration, keys from the remote set.
    for alg in ["RS256", "ES256", "EdDSA", "PS512"] {
        let reply = bearer(&gw, "/remote", &token(alg, json!({}))).await;
        assert_eq!(reply.status, 200, "{alg}: {}", reply.body);
    }

    // Rotation: an unknown kid fetches again (once), and the request waits for the answer.
    let reply = bearer(&gw, "/rotating", &token("RS256", json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    jwks.set("/rotating.json", Mode::Json(only(&["RS256", "ES384"])));
    let before = jwks.hits("/rotating.json");
    let reply = bearer(&gw, "/rotating", &token("ES384", json!({}))).await;
    assert_eq!(reply.status, 200, "the rotated key: {}", reply.body);
    let after = jwks.hits("/rotating.json");
    assert!(after > before, "a refetch happened");
    // Within the cooldown an unknown kid is refused. Four refusals would be four fetches without it; with it, at most
    // one per worker, plus a first load: the worker that fetched for ES384 is in its cooldown; the other may fetch once
    // for the unknown kid (its cooldown starts there) and, if it never served /rotating, load the set first (its
    // timer's first-use fetch, which on a loaded machine can fall between these requests).
    let ghost =
        token_raw(&json!({"alg": "RS256", "kid": "ghost"}).to_string(), &claims(json!({})).to_string(), "RS256");
    for _ in 0..4 {
        refused(&bearer(&gw, "/rotating", &ghost).await, 401, "kid_unknown", "unknown kid in the cooldown");
    }
    assert!(jwks.hits("/rotating.json") <= after + 2, "the cooldown limits refetches");

    // The issuer fails (5xx, then garbage) after the cache expired: the last good set is kept.
    let es = token("ES256", json!({}));
    assert_eq!(bearer(&gw, "/flaky", &es).await.status, 200);
    let fetched = jwks.hits("/flaky.json");
    for mode in [Mode::Status(500), Mode::Garbage] {
        jwks.set("/flaky.json", mode);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let reply = bearer(&gw, "/flaky", &es).await;
        assert_eq!(reply.status, 200, "last good set kept: {}", reply.body);
    }
    assert!(jwks.hits("/flaky.json") > fetched, "refreshed in the background");
    // The issuer drops the key: the token it verified (and that is cached as verified) stops passing once the
    // new set is fetched (ttl 1 s, a tick per second: at most about 2 s late).
    jwks.set("/flaky.json", Mode::Json(only(&["EdDSA"])));
    tokio::time::sleep(Duration::from_millis(3000)).await;
    refused(&bearer(&gw, "/flaky", &es).await, 401, "kid_unknown", "a key removed from the JWKS");

    // No key set ever: down, slow (past the fetch timeout) or garbage: 503, quickly.
    for path in ["/down", "/slow", "/garbage"] {
        let started = std::time::Instant::now();
        let reply = bearer(&gw, path, &token("RS256", json!({}))).await;
        refused(&reply, 503, "jwks_unavailable", path);
        assert!(started.elapsed() < Duration::from_secs(3), "{path} answered in {:?}", started.elapsed());
    }
    Ok(())
}

#[tokio::test]
async fn jwt_failures_are_counted_by_cause_and_verified_tokens_are_cached() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let (_jwks, idp) = Jwks::start().await;
    let gw = gateway(&svc, idp).await;
    refused(
        &bearer(&gw, "/inline", &token("RS256", json!({"exp": now() - 600}))).await,
        401,
        "token_expired",
        "expired",
    );
    assert_eq!(bearer(&gw, "/inline", &token("RS256", json!({}))).await.status, 200);
    // A token is verified once per worker, then found in the cache; its claims are still checked on each use:
    // valid for two more seconds (exp + 60 s of skew), then refused although cached.
    let brief = token("ES256", json!({"iat": now() - 120, "exp": now() - 58}));
    for _ in 0..4 {
        assert_eq!(bearer(&gw, "/inline", &brief).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    refused(&bearer(&gw, "/inline", &brief).await, 401, "token_expired", "expired while cached");
    let mut text = String::new();
    for _ in 0..50 {
        text = get_with(gw.admin(), "localhost", "/metrics", &[]).await?.body;
        let hits = text
            .lines()
            .find(|l| l.contains("jwt_auth_token_cache_hits"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        // 4 uses on at most 2 workers: at least 2 hits.
        if text.contains("jwt_auth_failure_token_expired\"} 2") && text.contains("jwt_auth_success\"}") && hits >= 2 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("metrics missing: {}", text.lines().filter(|l| l.contains("jwt_auth")).collect::<Vec<_>>().join("\n"))
}
