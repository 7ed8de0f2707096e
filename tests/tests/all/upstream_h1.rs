//! Weir's HTTP/1.1 client against an upstream that answers scripted bytes: every framing of a response body,
//! when a connection is reused, the errors an upstream's bad answers give, and how requests are framed.

use http_body_util::BodyExt as _;
use serde_json::json;
use weir_tests::client::{call, get, raw_exchange, request, send, Proto};
use weir_tests::raw::{Answer, Raw};
use weir_tests::TestGateway;

fn gateway(up: &Raw) -> anyhow::Result<TestGateway> {
    TestGateway::start(json!({
        "workers": 1,
        "routes": [{"name": "raw", "cluster": "raw"}],
        "clusters": [{"name": "raw", "endpoints": [up.endpoint()]}]
    }))
}

#[tokio::test]
async fn every_body_framing_arrives_whole_and_connections_are_reused_only_when_they_may_be() -> anyhow::Result<()> {
    // (what, the answer, status, body, upstream connections for two requests)
    let cases: Vec<(&str, Answer, u16, &str, usize)> = vec![
        ("content-length", Answer::whole("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"), 200, "hello", 1),
        (
            "chunked, in pieces that split sizes and data",
            Answer::pieces(
                &[
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
                    "lo\r\n6\r\n world\r\n0\r\n",
                    "\r\n",
                ],
                false,
            ),
            200,
            "hello world",
            1,
        ),
        (
            "chunked with trailers",
            Answer::whole("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n"),
            200,
            "hello",
            1,
        ),
        (
            "a body that runs to the close",
            Answer::pieces(&["HTTP/1.1 200 OK\r\n\r\npart one,", " part two"], true),
            200,
            "part one, part two",
            2,
        ),
        ("HTTP/1.0", Answer::pieces(&["HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"], true), 200, "ok", 2),
        (
            "HTTP/1.0 keep-alive",
            Answer::whole("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok"),
            200,
            "ok",
            1,
        ),
        (
            "connection: close",
            Answer::pieces(&["HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"], true),
            200,
            "ok",
            2,
        ),
        (
            "an interim 100 before the answer",
            Answer::whole("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\nx"),
            201,
            "x",
            1,
        ),
        ("204 has no body", Answer::whole("HTTP/1.1 204 No Content\r\n\r\n"), 204, "", 1),
        (
            "an idle connection the upstream closed is replaced",
            Answer::pieces(&["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"], true),
            200,
            "ok",
            2,
        ),
    ];
    for (what, answer, status, body, connections) in cases {
        let up = Raw::start(vec![answer]).await;
        let gw = gateway(&up)?;
        for n in 1..=2 {
            let reply = get(gw.main(), "/x").await?;
            assert_eq!((reply.status.as_u16(), reply.body.as_str()), (status, body), "{what}, request {n}");
            // The connection is back in the pool (or closed) once the answer ended; the upstream's close is seen.
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        assert_eq!(up.connections(), connections, "{what}: upstream connections for two requests");
    }
    Ok(())
}

#[tokio::test]
async fn bad_answers_give_502_saying_what_was_wrong() -> anyhow::Result<()> {
    let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "v".repeat(70 * 1024));
    let cases: Vec<(&str, String, &str)> = vec![
        ("not HTTP", "HTTX/1.1 200 OK\r\n\r\n".into(), "the response head is malformed: invalid HTTP version"),
        (
            "switching protocols",
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n".into(),
            "the upstream switched protocols (101), which Weir does not proxy",
        ),
        (
            "lengths that disagree",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok".into(),
            "the response has content-length fields that disagree",
        ),
        ("a head beyond 64 KiB", huge, "the response head is larger than 64 KiB"),
        (
            "a bad chunked HTTP/1.0",
            "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".into(),
            "the HTTP/1.0 response has a transfer-encoding",
        ),
    ];
    for (what, answer, detail) in cases {
        let up = Raw::start(vec![Answer { pieces: vec![answer.into_bytes()], close: true }]).await;
        let gw = gateway(&up)?;
        let reply = get(gw.main(), "/x").await?;
        assert_eq!(reply.status, 502, "{what}: {}", reply.body);
        let body = reply.json();
        assert_eq!(body["error"]["code"], "upstream_failed", "{what}");
        let want = format!("upstream raw ({}) failed: {detail}", up.endpoint());
        assert_eq!(body["error"]["message"], want.as_str(), "{what}");
    }
    Ok(())
}

#[tokio::test]
async fn a_body_cut_short_breaks_the_downstream_answer_instead_of_ending_it() -> anyhow::Result<()> {
    let up = Raw::start(vec![Answer::pieces(&["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"], true)]).await;
    let gw = gateway(&up)?;
    // The head may leave before the upstream's close is read, or not at all (both in one read): either way
    // the client sees a broken answer, never a complete one.
    match send(gw.main(), &Proto::H1, request("GET", "localhost", "/x", &[], "", &Proto::H1)).await {
        Ok(resp) => {
            assert_eq!(resp.status(), 200);
            assert!(resp.into_body().collect().await.is_err(), "a short body must not look complete");
        }
        Err(e) => assert!(e.to_string().contains("connection closed before message completed"), "{e}"),
    }
    Ok(())
}

#[tokio::test]
async fn requests_are_framed_as_their_bodies_need() -> anyhow::Result<()> {
    let up = Raw::start(vec![Answer::whole("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")]).await;
    let gw = gateway(&up)?;
    let get_req = request("GET", "localhost", "/g?q=1", &[], "", &Proto::H1);
    assert_eq!(call(gw.main(), &Proto::H1, get_req).await?.status, 200);
    let post = request("POST", "localhost", "/p", &[], "hello", &Proto::H1);
    assert_eq!(call(gw.main(), &Proto::H1, post).await?.status, 200);
    // A chunked body from the client goes on chunked (its length is not known ahead).
    let stream = http_body_util::StreamBody::new(futures_iter(vec!["ab", "cde"]));
    let chunked = http::Request::post("/c").header("host", "localhost").body(stream.boxed())?;
    assert_eq!(call(gw.main(), &Proto::H1, chunked).await?.status, 200);

    let seen = up.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].starts_with("GET /g?q=1 HTTP/1.1\r\n"), "{}", seen[0]);
    assert!(!seen[0].contains("content-length") && !seen[0].contains("transfer-encoding"), "{}", seen[0]);
    assert!(seen[1].starts_with("POST /p HTTP/1.1\r\n") && seen[1].contains("content-length: 5\r\n"), "{}", seen[1]);
    assert!(seen[1].ends_with("\r\n\r\nhello"), "{}", seen[1]);
    assert!(seen[2].contains("transfer-encoding: chunked\r\n"), "{}", seen[2]);
    assert!(seen[2].ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"), "{}", seen[2]);
    Ok(())
}

/// A stream of body frames, one per item, each ready at once.
fn futures_iter(parts: Vec<&'static str>) -> Frames {
    Frames(parts.into_iter())
}

struct Frames(std::vec::IntoIter<&'static str>);

impl futures_core::Stream for Frames {
    type Item = Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = self.get_mut().0.next();
        std::task::Poll::Ready(next.map(|p| Ok(hyper::body::Frame::data(bytes::Bytes::from_static(p.as_bytes())))))
    }
}

#[tokio::test]
async fn a_pooled_connection_closed_unanswered_is_retried_only_for_idempotent_requests() -> anyhow::Result<()> {
    let ok = Answer::whole("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    // The second request is read, then its connection closed without a byte of answer.
    let silent = Answer::pieces(&[], true);
    // (method, status of the second request, requests the upstream read)
    for (method, status, seen) in [("GET", 200, 3), ("POST", 502, 2)] {
        let up = Raw::start(vec![ok.clone(), silent.clone(), ok.clone()]).await;
        let gw = gateway(&up)?;
        let first = call(gw.main(), &Proto::H1, request(method, "localhost", "/a", &[], "", &Proto::H1)).await?;
        assert_eq!(first.status, 200, "{method}: {}", first.body);
        let second = call(gw.main(), &Proto::H1, request(method, "localhost", "/b", &[], "", &Proto::H1)).await?;
        assert_eq!(second.status, status, "{method}: {}", second.body);
        assert_eq!(up.requests().len(), seen, "{method}: a request sent whole is sent again only when idempotent");
    }
    Ok(())
}

/// The upstream's fields reach an HTTP/1.1 client (written from the lines kept of the head: names in lower case,
/// the hop-by-hop fields and the upstream's request id left out, its own date kept) and an HTTP/2 client (from
/// the map) alike; heads that need the map's rules (a `connection` naming a field, a length beside chunked) too.
#[tokio::test]
async fn response_fields_reach_every_client_without_the_hop_by_hop_ones() -> anyhow::Result<()> {
    let answer = "HTTP/1.1 200 OK\r\nServer: raw\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nX-Multi: a\r\n\
                  Keep-Alive: timeout=5\r\nConnection: keep-alive\r\nX-Request-Id: from-upstream\r\nx-multi: b\r\n\
                  Content-Length: 5\r\n\r\nhello";
    let up = Raw::start(vec![Answer::whole(answer)]).await;
    let gw = gateway(&up)?;
    let asked = b"GET /x HTTP/1.1\r\nhost: localhost\r\nx-request-id: rid-1\r\n\r\n";
    let (_conn, got) = raw_exchange(gw.main(), asked, b"\r\n\r\nhello").await?;
    assert_eq!(
        String::from_utf8(got)?,
        "HTTP/1.1 200 OK\r\nserver: raw\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\nx-multi: a\r\nx-multi: b\r\n\
         content-length: 5\r\nx-request-id: rid-1\r\n\r\nhello"
    );
    let reply = call(gw.main(), &Proto::H2c, request("GET", "localhost", "/x", &[], "", &Proto::H2c)).await?;
    let fields: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(name, _)| *name != "x-request-id")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_string()))
        .collect();
    let pairs = [("server", "raw"), ("date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("x-multi", "a"), ("x-multi", "b")];
    let mut want: Vec<(String, String)> = pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    want.push(("content-length".into(), "5".into()));
    assert_eq!((reply.status.as_u16(), reply.body.as_str(), fields), (200, "hello", want), "over HTTP/2");
    assert_ne!(reply.header("x-request-id"), "from-upstream");

    // (what, answer, fields present, fields absent, body)
    let cases = [
        (
            "a connection naming a field",
            "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nX-Kept: 2\r\nContent-Length: 2\r\n\r\nok",
            "x-kept",
            "x-hop",
            "ok",
        ),
        (
            "a length beside chunked: the chunked body whole, the length dropped",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX-Kept: 2\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "x-kept",
            "content-length",
            "hello",
        ),
    ];
    for (what, answer, present, absent, body) in cases {
        let up = Raw::start(vec![Answer::whole(answer)]).await;
        let gw = gateway(&up)?;
        for proto in [Proto::H1, Proto::H2c] {
            let reply = call(gw.main(), &proto, request("GET", "localhost", "/x", &[], "", &proto)).await?;
            assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, body), "{what} {:?}", reply.version);
            assert!(reply.headers.contains_key(present), "{what} {:?}: {:?}", reply.version, reply.headers);
            assert!(!reply.headers.contains_key(absent), "{what} {:?}: {:?}", reply.version, reply.headers);
        }
    }
    Ok(())
}
