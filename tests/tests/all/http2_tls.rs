//! HTTP/2 (h2c prior knowledge and ALPN over TLS), TLS termination with SNI, TLS to upstreams.

use serde_json::json;
use weir_tests::certs::Ca;
use weir_tests::client::{call, request, Proto};
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

#[tokio::test]
async fn h2c_downstream_and_http2_upstream() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "h2", "match": {"path": {"prefix": "/h2"}}, "cluster": "svc-h2"},
            {"name": "h1", "cluster": "svc"}
        ],
        "clusters": [
            {"name": "svc", "endpoints": [up.endpoint()]},
            {"name": "svc-h2", "endpoints": [up.endpoint()], "http2": true}
        ]
    }))?;
    let reply = call(gw.main(), &Proto::H2c, request("POST", "api.test", "/x?q=1", &[], "hello", &Proto::H2c)).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.version, http::Version::HTTP_2);
    let echo = reply.json();
    assert_eq!(echo["version"], "HTTP/1.1", "an HTTP/1.1 cluster gets HTTP/1.1");
    assert_eq!(echo["headers"]["host"], "api.test", "the :authority becomes the Host header");
    assert_eq!(echo["uri"], "/x?q=1");
    assert_eq!(echo["body"], "hello");

    let echo = call(gw.main(), &Proto::H1, request("GET", "api.test", "/h2/y", &[], "", &Proto::H1)).await?.json();
    assert_eq!(echo["version"], "HTTP/2.0", "an http2 cluster gets HTTP/2 with prior knowledge");
    assert_eq!(echo["uri"], format!("http://{}/h2/y", up.endpoint()));
    Ok(())
}

#[tokio::test]
async fn tls_termination_picks_the_certificate_by_sni_and_negotiates_alpn() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new();
    let a = ca.leaf(dir.path(), "a", &["a.example.com"]);
    let wild = ca.leaf(dir.path(), "wild", &["*.b.example.com"]);
    let default = ca.leaf(dir.path(), "default", &["default.test"]);
    let gw = TestGateway::start_in(
        json!({
            "listeners": [{"name": "tls", "address": "127.0.0.1:0", "tls": {"certificates": [
                {"cert": a.cert, "key": a.key, "server_names": ["a.example.com"]},
                {"cert": wild.cert, "key": wild.key, "server_names": ["*.b.example.com"]},
                {"cert": default.cert, "key": default.key}
            ]}}],
            "routes": [{"name": "who", "direct_response": {"status": 200, "body": "secure"}}]
        }),
        dir,
    )?;
    let addr = gw.addr("tls");
    // The client verifies the certificate against the SNI name: success means the right one was served.
    for (sni, alpn, version) in [
        ("a.example.com", vec!["h2", "http/1.1"], http::Version::HTTP_2),
        ("x.b.example.com", vec!["http/1.1"], http::Version::HTTP_11),
        ("default.test", vec!["h2"], http::Version::HTTP_2),
    ] {
        let proto = Proto::Tls { server_name: sni.into(), roots: vec![ca.der.clone()], alpn };
        let reply = call(addr, &proto, request("GET", sni, "/", &[], "", &proto)).await?;
        assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "secure"), "{sni}");
        assert_eq!(reply.version, version, "{sni}");
    }
    // A name no certificate covers gets the default certificate, which the client rejects.
    let proto =
        Proto::Tls { server_name: "unknown.example.org".into(), roots: vec![ca.der.clone()], alpn: vec!["http/1.1"] };
    let err = call(addr, &proto, request("GET", "unknown.example.org", "/", &[], "", &proto)).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("not valid for name \"unknown.example.org\"") && err.contains("default.test"), "{err}");
    Ok(())
}

#[tokio::test]
async fn tls_to_upstreams_with_a_ca_bundle() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new();
    let other_ca = Ca::new();
    let leaf = ca.leaf(dir.path(), "upstream", &["upstream.internal"]);
    let up = Upstream::start_tls("secure-upstream", leaf.server_config()).await;
    let ca_file = ca.write(dir.path(), "ca.pem");
    let wrong_ca = other_ca.write(dir.path(), "wrong-ca.pem");
    let gw = TestGateway::start_in(
        json!({
            "routes": [
                {"name": "bad", "match": {"path": {"prefix": "/bad"}}, "cluster": "untrusted"},
                {"name": "h2", "match": {"path": {"prefix": "/h2"}}, "cluster": "secure-h2"},
                {"name": "good", "cluster": "secure"}
            ],
            "clusters": [
                {"name": "secure", "endpoints": [up.endpoint()], "tls": {"ca_file": ca_file, "server_name": "upstream.internal"}},
                {"name": "secure-h2", "endpoints": [up.endpoint()], "http2": true, "tls": {"ca_file": ca_file, "server_name": "upstream.internal"}},
                {"name": "untrusted", "endpoints": [up.endpoint()], "tls": {"ca_file": wrong_ca, "server_name": "upstream.internal"}}
            ]
        }),
        dir,
    )?;
    let reply = call(gw.main(), &Proto::H1, request("GET", "localhost", "/hello", &[], "", &Proto::H1)).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["upstream"], "secure-upstream");
    assert_eq!(reply.json()["version"], "HTTP/1.1");
    let reply = call(gw.main(), &Proto::H1, request("GET", "localhost", "/h2", &[], "", &Proto::H1)).await?;
    assert_eq!(reply.json()["version"], "HTTP/2.0", "ALPN h2 to the upstream");
    let reply = call(gw.main(), &Proto::H1, request("GET", "localhost", "/bad", &[], "", &Proto::H1)).await?;
    assert_eq!(reply.status, 502, "{}", reply.body);
    let msg = reply.json()["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("invalid peer certificate"), "the error says why: {msg}");
    Ok(())
}
