//! Misbehaving guests (tests/fixtures/wat): infinite loops in each callback kind, unbounded memory growth,
//! traps, stack overflow, out-of-range pointers to every hostcall. Each fails at most its own stream;
//! the gateway survives and keeps serving other routes.

use serde_json::json;
use weir_tests::client::{call, get_with, request, Proto};
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/wat/{name}.wat", env!("CARGO_MANIFEST_DIR"))
}

/// What the request on the misbehaving route must get.
enum Expect {
    /// 503 filter_failed (fail closed).
    Failed,
    /// The status line arrives, the body does not complete.
    BrokenBody,
    /// A normal answer.
    Ok,
}

#[tokio::test]
async fn each_misbehaving_filter_fails_only_its_own_streams() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let cases = [
        ("loop_request_headers", Expect::Failed),
        ("loop_response_headers", Expect::Failed),
        ("loop_request_body", Expect::Failed),
        ("loop_response_body", Expect::BrokenBody),
        ("loop_log", Expect::Ok),
        ("grow_memory", Expect::Failed),
        ("trap", Expect::Failed),
        ("stack_overflow", Expect::Failed),
        ("bad_pointers", Expect::Ok),
    ];
    for (name, expect) in cases {
        let gw = TestGateway::start(json!({
            "workers": 1,
            "routes": [
                {"name": "bad", "match": {"path": {"prefix": "/bad"}}, "cluster": "svc",
                 "filters": [{"name": name, "module": fixture(name)}]},
                {"name": "good", "cluster": "svc"}
            ],
            "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
        }))?;
        let proto = Proto::H1;
        let result = call(gw.main(), &proto, request("POST", "localhost", "/bad", &[], "some body", &proto)).await;
        match expect {
            Expect::Failed => {
                let reply = result?;
                assert_eq!(reply.status, 503, "{name}: {}", reply.body);
                assert_eq!(reply.json()["error"]["code"], "filter_failed", "{name}");
            }
            Expect::BrokenBody => assert!(result.is_err(), "{name}: the body should not complete: {result:?}"),
            Expect::Ok => assert_eq!(result?.status, 200, "{name}"),
        }
        // The gateway is alive and other routes never notice.
        for _ in 0..3 {
            let reply = get_with(gw.main(), "localhost", "/good", &[]).await?;
            assert_eq!(reply.status, 200, "{name}: the good route failed: {}", reply.body);
        }
        gw.shutdown().await;
    }
    Ok(())
}

#[tokio::test]
async fn a_filter_looping_in_its_tick_does_not_stall_the_worker() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "workers": 1,
        "routes": [
            {"name": "bad", "match": {"path": {"prefix": "/bad"}}, "cluster": "svc",
             "filters": [{"name": "tick", "module": fixture("loop_tick"), "failure_policy": "fail_open"}]},
            {"name": "good", "cluster": "svc"}
        ],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    for _ in 0..10 {
        assert_eq!(get_with(gw.main(), "localhost", "/good", &[]).await?.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_module_without_an_allocator_stops_the_start_with_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let text = std::fs::read_to_string(fixture("trap"))?.replace("(export \"proxy_on_memory_allocate\")", "");
    let path = dir.path().join("no_alloc.wat");
    std::fs::write(&path, text)?;
    let err = TestGateway::start(json!({
        "routes": [{"name": "r", "direct_response": {"status": 200}, "filters": [{"name": "na", "module": path}]}]
    }))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert_eq!(
        err,
        "route r: filter na: module na: missing export proxy_on_memory_allocate: the host allocates the values it returns in guest memory (malloc would do too)"
    );
    Ok(())
}
