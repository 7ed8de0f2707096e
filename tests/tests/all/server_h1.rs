//! Weir's HTTP/1.1 server against a client that writes raw bytes: pipelining, `Expect: 100-continue`, request
//! bodies read whole, partly or not at all, HTTP/1.0 keep-alive, HEAD, refused heads and the header timeout.

use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

/// Proxied routes to the test upstream (`/echo...` and its event stream `/sse`) and a direct answer (anything
/// else).
async fn gateway() -> anyhow::Result<(TestGateway, Upstream)> {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::start(json!({
        "workers": 1,
        "listeners": [{"name": "main", "address": "127.0.0.1:0", "header_timeout_ms": 300}],
        "routes": [
            {"name": "echo", "match": {"path": {"prefix": "/echo"}}, "cluster": "up"},
            {"name": "sse", "match": {"path": {"exact": "/sse"}}, "cluster": "up"},
            {"name": "hi", "direct_response": {"status": 200, "body": "hi"}}
        ],
        "clusters": [{"name": "up", "endpoints": [up.endpoint()]}]
    }))?;
    Ok((gw, up))
}

/// One response read off `conn`: its head (lowercase field names) and body (by `content-length`; none for HEAD
/// answers and 1xx).
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one answer; `buf` keeps what was read beyond it.
async fn read_answer(conn: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> anyhow::Result<Answer> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head.split(' ').nth(1).unwrap_or("0").parse()?;
            let mut answer = Answer { status, head, body: Vec::new() };
            let length: usize = if head_request || status < 200 {
                0
            } else {
                answer.field("content-length").map_or(Ok(0), str::parse)?
            };
            while buf.len() < end + 4 + length {
                let mut more = [0u8; 4096];
                let n = conn.read(&mut more).await?;
                anyhow::ensure!(n > 0, "closed inside a body");
                buf.extend_from_slice(&more[..n]);
            }
            answer.body = buf[end + 4..end + 4 + length].to_vec();
            buf.drain(..end + 4 + length);
            return Ok(answer);
        }
        let mut more = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut more)).await??;
        anyhow::ensure!(n > 0, "closed before an answer; read {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&more[..n]);
    }
}

/// Whether the server closes the connection (within 2 s) with nothing more to say.
async fn closes(conn: &mut TcpStream) -> bool {
    let mut rest = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(2), conn.read(&mut rest)).await, Ok(Ok(0)) | Ok(Err(_)))
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() -> anyhow::Result<()> {
    let (gw, up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    conn.write_all(
        b"GET /echo/1 HTTP/1.1\r\nhost: x\r\n\r\n\
          POST /echo/2 HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
          POST /echo/3 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n\
          GET /other HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await?;
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let a = read_answer(&mut conn, &mut buf, false).await?;
        seen.push((a.status, a.json()["uri"].as_str().unwrap_or("").to_string(), a.json()["body"].clone()));
    }
    let last = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!(
        seen,
        [
            (200, "/echo/1".to_string(), json!("")),
            (200, "/echo/2".into(), json!("hello")),
            (200, "/echo/3".into(), json!("abc"))
        ]
    );
    assert_eq!((last.status, &last.body[..]), (200, &b"hi"[..]));
    assert_eq!(up.connections(), 1, "one upstream connection served the three proxied requests");
    Ok(())
}

#[tokio::test]
async fn expect_continue_is_answered_when_the_body_is_first_read_and_never_when_it_is_not() -> anyhow::Result<()> {
    let (gw, _up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    conn.write_all(b"PUT /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n").await?;
    let mut buf = Vec::new();
    let interim = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!(interim.status, 100, "{}", interim.head);
    conn.write_all(b"hello").await?;
    let done = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((done.status, done.json()["body"].clone()), (200, json!("hello")));
    // The direct answer reads no body: no 100, and the connection closes after the answer (the client might
    // never send the body it announced).
    conn.write_all(b"PUT /direct HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n").await?;
    let direct = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((direct.status, direct.field("connection")), (200, Some("close")), "{}", direct.head);
    assert!(closes(&mut conn).await, "the connection closes");
    Ok(())
}

#[tokio::test]
async fn an_unread_body_is_drained_within_its_bound_and_past_it_the_connection_closes() -> anyhow::Result<()> {
    let (gw, _up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    let small = format!("POST /direct HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{}", "x".repeat(1000));
    conn.write_all(small.as_bytes()).await?;
    conn.write_all(b"GET /again HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let mut buf = Vec::new();
    let first = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((first.status, first.field("connection")), (200, None));
    let again = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((again.status, &again.body[..]), (200, &b"hi"[..]), "the next request was read after the body");
    // 1 MiB announced and not read: the answer says the connection closes, and it does.
    conn.write_all(b"POST /direct HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\nxxxx").await?;
    let big = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((big.status, big.field("connection")), (200, Some("close")));
    assert!(closes(&mut conn).await);
    Ok(())
}

#[tokio::test]
async fn http10_clients_keep_the_connection_only_when_they_ask() -> anyhow::Result<()> {
    let (gw, _up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    let mut buf = Vec::new();
    conn.write_all(b"GET /a HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").await?;
    let kept = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((kept.status, kept.field("connection")), (200, Some("keep-alive")), "{}", kept.head);
    assert!(kept.head.starts_with("HTTP/1.1 200 OK"));
    conn.write_all(b"GET /b HTTP/1.0\r\n\r\n").await?;
    let last = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((last.status, last.field("connection")), (200, None));
    assert!(closes(&mut conn).await, "an HTTP/1.0 request without keep-alive closes the connection");
    Ok(())
}

#[tokio::test]
async fn head_answers_carry_the_length_and_no_body() -> anyhow::Result<()> {
    let (gw, _up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    let mut buf = Vec::new();
    conn.write_all(b"HEAD /direct HTTP/1.1\r\nhost: x\r\n\r\nGET /direct HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let head = read_answer(&mut conn, &mut buf, true).await?;
    assert_eq!((head.status, head.field("content-length")), (200, Some("2")));
    assert!(head.field("date").is_some_and(|d| d.ends_with(" GMT")), "{}", head.head);
    let get = read_answer(&mut conn, &mut buf, false).await?;
    assert_eq!((get.status, &get.body[..]), (200, &b"hi"[..]), "no body bytes followed the HEAD answer");
    Ok(())
}

#[tokio::test]
async fn refused_heads_get_a_json_error_naming_the_problem_and_the_connection_closes() -> anyhow::Result<()> {
    let (gw, _up) = gateway().await?;
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(101));
    // (what, bytes, status, message)
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "bad field",
            "GET / HTTP/1.1\r\nno colon\r\n\r\n".into(),
            400,
            "the request head is malformed: invalid header name",
        ),
        ("too many fields", many, 431, "the request head has more than 100 fields"),
        (
            "lengths disagree",
            "POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n".into(),
            400,
            "the request has content-length fields that disagree",
        ),
        (
            "coding without chunked",
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n".into(),
            400,
            "the request's transfer-encoding does not end with chunked",
        ),
        (
            "HTTP/2.0 request line",
            "GET / HTTP/2.0\r\n\r\n".into(),
            505,
            "the request's HTTP version is not supported: send HTTP/1.1 (or HTTP/2)",
        ),
    ];
    for (what, bytes, status, message) in cases {
        let mut conn = TcpStream::connect(gw.main()).await?;
        conn.write_all(bytes.as_bytes()).await?;
        let mut buf = Vec::new();
        let answer = read_answer(&mut conn, &mut buf, false).await?;
        assert_eq!(answer.status, status, "{what}");
        assert_eq!(answer.json()["error"]["message"], message, "{what}");
        assert_eq!(answer.field("connection"), Some("close"), "{what}");
        assert!(closes(&mut conn).await, "{what}: closed after the answer");
    }
    // A head that does not finish within header_timeout_ms (300): 408, then closed.
    let mut slow = TcpStream::connect(gw.main()).await?;
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await?;
    let mut buf = Vec::new();
    let late = read_answer(&mut slow, &mut buf, false).await?;
    assert_eq!(late.status, 408);
    assert_eq!(
        late.json()["error"]["message"],
        "the request head did not arrive within 300 ms (the listener's header_timeout_ms)"
    );
    assert!(closes(&mut slow).await);
    Ok(())
}

#[tokio::test]
async fn a_chunked_request_body_and_its_trailers_reach_the_upstream() -> anyhow::Result<()> {
    let (gw, _up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    conn.write_all(
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n\
          5\r\nhello\r\n",
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.write_all(b"6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n").await?;
    let mut buf = Vec::new();
    let answer = read_answer(&mut conn, &mut buf, false).await?;
    let echo = answer.json();
    assert_eq!((answer.status, echo["body"].clone()), (200, json!("hello world")), "{echo}");
    assert_eq!(echo["trailers"]["x-sum"], json!("11"), "{echo}");
    Ok(())
}

#[tokio::test]
async fn a_client_leaving_a_quiet_stream_is_noticed_before_the_stream_goes_on() -> anyhow::Result<()> {
    let (gw, up) = gateway().await?;
    let mut conn = TcpStream::connect(gw.main()).await?;
    up.release(); // the first event only
    conn.write_all(b"GET /sse HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n").await?;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("data: {\"n\":1}") {
        let mut more = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut more)).await??;
        anyhow::ensure!(n > 0, "closed before the first event");
        seen.extend_from_slice(&more[..n]);
    }
    // The client leaves while the upstream has nothing to send: the request is over (counted) without waiting
    // for another event.
    drop(conn);
    let mut counted = 0;
    for _ in 0..40 {
        counted = gw.metric("weir_requests_total", "route=\"sse\"").await;
        if counted == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 1, "the stream ended when the client left");
    Ok(())
}
