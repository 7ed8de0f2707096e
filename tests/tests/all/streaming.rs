//! Bodies stream in both directions without being buffered.

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use weir_tests::client::{send, Proto};
use weir_tests::upstream::{ReceiverStream, Upstream};
use weir_tests::TestGateway;

fn gateway(up: &Upstream) -> anyhow::Result<TestGateway> {
    TestGateway::start(json!({
        "routes": [{"name": "all", "cluster": "svc"}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))
}

#[tokio::test]
async fn server_sent_events_arrive_one_by_one() -> anyhow::Result<()> {
    let up = Upstream::start("llm").await;
    let gw = gateway(&up)?;
    for proto in [Proto::H1, Proto::H2c] {
        let req =
            weir_tests::client::request("GET", "localhost", "/sse", &[("accept", "text/event-stream")], "", &proto);
        up.release(); // the upstream may send its first event
        let resp = send(gw.main(), &proto, req).await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut body = resp.into_body();
        for i in 1..=3 {
            // Event i reaches the client before the upstream is allowed to write event i + 1:
            // nothing waits for the end of the body.
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .map_err(|_| anyhow::anyhow!("event {i} did not arrive: the gateway buffers"))?
                .expect("a frame")?;
            let data = frame.into_data().expect("data");
            assert_eq!(data, Bytes::from(format!("id: {i}\ndata: {{\"n\":{i}}}\n\n")));
            if i < 3 {
                up.release();
            }
        }
        // Then the end (HTTP/2 may close with an empty DATA frame carrying END_STREAM).
        while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), body.frame()).await? {
            let frame = frame?;
            assert!(frame.data_ref().is_none_or(|d| d.is_empty()), "nothing after the 3 events: {frame:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream() -> anyhow::Result<()> {
    let up = Upstream::start("sink").await;
    let gw = gateway(&up)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    let body = StreamBody::new(ReceiverStream(rx)).boxed();
    let req = http::Request::builder().method("POST").uri("/stream-in").header("host", "localhost").body(body)?;
    let addr = gw.main();
    let call = tokio::spawn(async move { send(addr, &Proto::H1, req).await });
    for i in 0..3 {
        tx.send(Ok(Frame::data(Bytes::from(format!("chunk-{i};"))))).await?;
        // The upstream reads chunk i while the client has not yet written chunk i + 1.
        tokio::time::timeout(Duration::from_secs(5), up.wait_chunks(i + 1))
            .await
            .map_err(|_| anyhow::anyhow!("chunk {i} did not reach the upstream: the gateway buffers"))?;
    }
    drop(tx);
    let resp = call.await??;
    assert_eq!(resp.status(), 200);
    let text = resp.into_body().collect().await?.to_bytes();
    assert_eq!(text, Bytes::from("3 chunks\n"));
    let all: Vec<u8> = up.chunks().concat();
    assert_eq!(all, b"chunk-0;chunk-1;chunk-2;");
    Ok(())
}

#[tokio::test]
async fn a_response_streams_back_while_the_request_body_still_streams_in() -> anyhow::Result<()> {
    let up = Upstream::start("duplex").await;
    let gw = gateway(&up)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    let body = StreamBody::new(ReceiverStream(rx)).boxed();
    let req = http::Request::builder().method("POST").uri("/duplex").header("host", "localhost").body(body)?;
    tx.send(Ok(Frame::data(Bytes::from("chunk-0;")))).await?;
    // The response's head comes while the request has sent one chunk of an unknown number.
    let resp = tokio::time::timeout(Duration::from_secs(5), send(gw.main(), &Proto::H1, req)).await??;
    assert_eq!(resp.status(), 200);
    let mut echoed = resp.into_body();
    for i in 0..3 {
        if i > 0 {
            tx.send(Ok(Frame::data(Bytes::from(format!("chunk-{i};"))))).await?;
        }
        // Chunk i comes back before chunk i + 1 is written: neither direction waits for the other's end.
        let frame = tokio::time::timeout(Duration::from_secs(5), echoed.frame())
            .await
            .map_err(|_| anyhow::anyhow!("chunk {i} was not echoed while the request went on"))?
            .expect("a frame")?;
        assert_eq!(frame.into_data().expect("data"), Bytes::from(format!("chunk-{i};")));
    }
    drop(tx);
    let rest = tokio::time::timeout(Duration::from_secs(5), echoed.collect()).await??.to_bytes();
    assert!(rest.is_empty(), "nothing after the last chunk: {rest:?}");
    Ok(())
}
