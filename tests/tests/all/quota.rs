//! The shipped quota filter (`filters/quota`) in the real gateway (2 workers): every key source, the three
//! algorithms at their window edges, LLM token accounting from OpenAI and Anthropic JSON and SSE responses (split
//! across chunks), reservations, exact counts under concurrency, counters that survive a hot swap, and a store
//! that really fails (a denied `proxy_set_shared_data`) failing open or closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use weir_tests::client::{call, get_with, request, Proto, Reply};
use weir_tests::upstream::{ReceiverStream, Upstream};
use weir_tests::{filters, TestGateway};

/// A quota attachment.
fn quota(configuration: Value) -> Value {
    json!({"name": "quota", "module": filters::QUOTA_WASM, "configuration": configuration})
}

/// A route on `prefix` to cluster `svc` with `filters`.
fn route(prefix: &str, filters: Value) -> Value {
    json!({"name": format!("r{}", prefix.replace('/', "-")), "match": {"path": {"prefix": prefix}},
           "cluster": "svc", "filters": filters})
}

/// One limit that never refills during a test (N per day, token bucket, no window edge to cross).
fn daily(name: &str, limit: u64, key: Value) -> Value {
    json!({"name": name, "algorithm": "token_bucket", "limit": limit, "window_seconds": 86400, "key": key})
}

fn config(limits: Value) -> Value {
    json!({"failure_mode": "closed", "limits": limits})
}

async fn gateway(svc: SocketAddr, routes: Vec<Value>) -> TestGateway {
    TestGateway::start(json!({"routes": routes, "clusters": [{"name": "svc", "endpoints": [svc.to_string()]}]}))
        .unwrap_or_else(|e| panic!("gateway starts: {e:#}"))
}

async fn get(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    get_with(gw.main(), "api.test", path, headers).await.expect("request")
}

/// The statuses of `n` requests in a row.
async fn statuses(gw: &TestGateway, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(gw, path, headers).await.status.as_u16());
    }
    out
}

/// The value of filter counter `name` once `done` accepts it (filters count after the response may have reached
/// the client), or the last value seen.
async fn counter(gw: &TestGateway, name: &str, done: impl Fn(u64) -> bool) -> u64 {
    gw.filter_counter(name, done).await
}

/// Sleeps until `offset_ms` after the next start of a window of `window_ms` (wall clock, as the filter sees it).
async fn align(window_ms: u128, offset_ms: u128) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let next = (now / window_ms + 1) * window_ms + offset_ms;
    tokio::time::sleep(Duration::from_millis(u64::try_from(next - now).unwrap_or(0))).await;
}

fn token(sub: &str) -> String {
    weir_tests::jwt::hs256_token(sub)
}

#[tokio::test]
async fn quota_keys_from_every_source() {
    let svc = Upstream::start("svc").await;
    let jwt_to = |header: &str| {
        json!({"name": "jwt", "module": filters::JWT_AUTH_WASM, "configuration": {
            "jwks": weir_tests::jwt::hs256_jwks(),
            "consumer": {"claim": "sub", "header": header}}})
    };
    let jwt = jwt_to("x-weir-consumer");
    let forwarded = json!({"header": "x-forwarded-for", "trusted_hops": 1});
    let gw = gateway(
        svc.addr,
        vec![
            route("/jwt", json!([jwt, quota(config(json!([daily("c", 1, json!(["consumer"]))])))])),
            route(
                "/custom",
                json!([
                    jwt_to("x-jwt-consumer"),
                    quota(json!({"failure_mode": "closed",
                    "consumer_header": "x-jwt-consumer", "limits": [daily("c3", 1, json!(["consumer"]))]}))
                ]),
            ),
            // jwt-auth writes the consumer to a header quota does not read: quota learns it from the
            // `weir.consumer` property only (set in jwt-auth's VM, read in quota's: one request's filter state).
            route(
                "/property",
                json!([jwt_to("x-jwt-elsewhere"), quota(config(json!([daily("cp", 1, json!(["consumer"]))])))]),
            ),
            route("/consumer", json!([quota(config(json!([daily("c2", 1, json!(["consumer"]))])))])),
            route("/apikey", json!([quota(config(json!([daily("k", 2, json!([{"api_key": "x-api-key"}]))])))])),
            route(
                "/header",
                json!([quota(config(json!([{"name": "h", "algorithm": "token_bucket", "limit": 1,
                    "window_seconds": 86400, "key": [{"header": "x-tenant"}],
                    "overrides": [{"match": "big", "limit": 3}]}])))]),
            ),
            route("/peer", json!([quota(config(json!([daily("peer", 2, json!(["client_ip"]))])))])),
            route(
                "/forwarded",
                json!([quota(json!({"failure_mode": "closed", "client_ip": forwarded,
                    "limits": [daily("fwd", 1, json!(["client_ip"]))]}))]),
            ),
            route("/route-a", json!([quota(config(json!([daily("r", 1, json!(["route"]))])))])),
            route("/route-b", json!([quota(config(json!([daily("r", 1, json!(["route"]))])))])),
            route("/group-a", json!([quota(config(json!([daily("g", 1, json!([]))])))])),
            route("/group-b", json!([quota(config(json!([daily("g", 1, json!([]))])))])),
            route(
                "/combo",
                json!([quota(config(json!([daily("cm", 1, json!(["consumer", {"header": "x-model"}]))])))]),
            ),
        ],
    )
    .await;

    // Consumer from jwt-auth: per token subject; a client's own x-weir-consumer is replaced by jwt-auth.
    let ada = format!("Bearer {}", token("ada"));
    let bob = format!("Bearer {}", token("bob"));
    assert_eq!(statuses(&gw, "/jwt", &[("authorization", &ada)], 2).await, [200, 429]);
    let spoof = [("authorization", bob.as_str()), ("x-weir-consumer", "ada")];
    assert_eq!(statuses(&gw, "/jwt", &spoof, 2).await, [200, 429], "bob has his own counter");
    // jwt-auth writing the consumer to a header of its choice, which quota reads.
    assert_eq!(statuses(&gw, "/custom", &[("authorization", &ada)], 2).await, [200, 429]);
    let forged = [("authorization", bob.as_str()), ("x-jwt-consumer", "ada")];
    assert_eq!(statuses(&gw, "/custom", &forged, 1).await, [200], "jwt-auth replaced the forged header");
    // The property set by jwt-auth, across VMs; a client's x-weir-consumer does not override it.
    assert_eq!(statuses(&gw, "/property", &[("authorization", &ada)], 2).await, [200, 429]);
    let claimed = [("authorization", bob.as_str()), ("x-weir-consumer", "ada")];
    assert_eq!(statuses(&gw, "/property", &claimed, 2).await, [200, 429], "bob by the property, not ada");
    // Consumer from the header alone (no jwt-auth in front).
    assert_eq!(statuses(&gw, "/consumer", &[("x-weir-consumer", "eve")], 2).await, [200, 429]);
    assert_eq!(statuses(&gw, "/consumer", &[], 3).await, [200; 3], "no consumer: the limit does not apply");

    // An API-key header.
    assert_eq!(statuses(&gw, "/apikey", &[("x-api-key", "sk-1")], 3).await, [200, 200, 429]);
    assert_eq!(statuses(&gw, "/apikey", &[("x-api-key", "sk-2")], 1).await, [200]);
    // Any header, with a per-key override.
    assert_eq!(statuses(&gw, "/header", &[("x-tenant", "small")], 2).await, [200, 429]);
    assert_eq!(statuses(&gw, "/header", &[("x-tenant", "big")], 4).await, [200, 200, 200, 429]);

    // The peer address: a forged X-Forwarded-For is ignored without a trusted proxy.
    assert_eq!(get(&gw, "/peer", &[("x-forwarded-for", "1.1.1.1")]).await.status, 200);
    assert_eq!(get(&gw, "/peer", &[("x-forwarded-for", "2.2.2.2")]).await.status, 200);
    assert_eq!(get(&gw, "/peer", &[("x-forwarded-for", "3.3.3.3")]).await.status, 429);
    // Behind one trusted hop: the right-most forwarded address is the client.
    assert_eq!(statuses(&gw, "/forwarded", &[("x-forwarded-for", "1.1.1.1")], 2).await, [200, 429]);
    assert_eq!(get(&gw, "/forwarded", &[("x-forwarded-for", "9.9.9.9, 1.1.1.1")]).await.status, 429);
    assert_eq!(get(&gw, "/forwarded", &[("x-forwarded-for", "1.1.1.1, 2.2.2.2")]).await.status, 200);

    // The route: one counter per route; without a key, one counter shared by the routes (a group).
    assert_eq!(statuses(&gw, "/route-a", &[], 2).await, [200, 429]);
    assert_eq!(statuses(&gw, "/route-b", &[], 2).await, [200, 429]);
    assert_eq!(get(&gw, "/group-a", &[]).await.status, 200);
    assert_eq!(get(&gw, "/group-b", &[]).await.status, 429, "same limit name, same vm_id: one counter");

    // A combination: consumer and model.
    let combo = |model: &'static str| [("x-weir-consumer", "ada"), ("x-model", model)];
    assert_eq!(statuses(&gw, "/combo", &combo("gpt"), 2).await, [200, 429]);
    assert_eq!(statuses(&gw, "/combo", &combo("claude"), 1).await, [200]);
}

#[tokio::test]
async fn quota_answers_429_with_retry_after_ratelimit_headers_and_an_openai_error() {
    let svc = Upstream::start("svc").await;
    let limits = json!([daily("burst", 2, json!([])), {"name": "daily", "limit": 1000, "window_seconds": 86400}]);
    let gw = gateway(svc.addr, vec![route("/", json!([quota(config(limits))]))]).await;
    let first = get(&gw, "/x", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-policy"), r#""burst";q=2;w=86400, "daily";q=1000;w=86400"#);
    assert!(first.header("ratelimit").starts_with(r#""burst";r=1;t="#), "{}", first.header("ratelimit"));
    assert!(first.header("ratelimit").contains(r#""daily";r=999;t="#), "{}", first.header("ratelimit"));
    assert_eq!((first.header("x-ratelimit-limit"), first.header("x-ratelimit-remaining")), ("2", "1"));
    assert!(first.header("x-ratelimit-reset").parse::<u64>().is_ok_and(|s| s <= 86400));
    assert_eq!(get(&gw, "/x", &[]).await.status, 200);
    let refused = get(&gw, "/x", &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), "application/json");
    // A token every 43200 s: the retry is the time to the next one.
    let retry: u64 = refused.header("retry-after").parse().expect("Retry-After in seconds");
    assert!((43_000..=43_200).contains(&retry), "{retry}");
    assert_eq!(refused.header("x-ratelimit-remaining"), "0");
    let error = &refused.json()["error"];
    assert_eq!((error["code"].as_str(), error["type"].as_str()), (Some("rate_limit_exceeded"), Some("requests")));
    assert!(error["message"].as_str().unwrap_or_default().contains("\"burst\""), "{error}");
    assert_eq!(svc.requests(), 2, "refused requests never reach the upstream");
}

#[tokio::test]
async fn quota_fixed_window_restarts_at_the_edge() {
    let svc = Upstream::start("svc").await;
    let limit = json!([{"name": "fixed", "limit": 3, "window_seconds": 1}]);
    let gw = gateway(svc.addr, vec![route("/", json!([quota(config(limit))]))]).await;
    align(1000, 100).await;
    assert_eq!(statuses(&gw, "/", &[], 4).await, [200, 200, 200, 429]);
    let refused = get(&gw, "/", &[]).await;
    assert_eq!((refused.header("retry-after"), refused.header("x-ratelimit-reset")), ("1", "1"));
    align(1000, 100).await;
    assert_eq!(statuses(&gw, "/", &[], 4).await, [200, 200, 200, 429], "a new window, a new count");
}

#[tokio::test]
async fn quota_sliding_window_weights_the_previous_window() {
    let svc = Upstream::start("svc").await;
    let limit = json!([{"name": "sliding", "algorithm": "sliding_window", "limit": 4, "window_seconds": 2}]);
    let gw = gateway(svc.addr, vec![route("/", json!([quota(config(limit))]))]).await;
    align(2000, 100).await;
    assert_eq!(statuses(&gw, "/", &[], 5).await, [200, 200, 200, 200, 429]);
    // 0.3 s into the next window the previous 4 still weigh 3.4: a fixed window would admit 4 here.
    align(2000, 300).await;
    let refused = get(&gw, "/", &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), "1", "room for one more 0.2 s later, rounded up");
    // 1.7 s in, they weigh 0.6: room for 3.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(statuses(&gw, "/", &[], 4).await, [200, 200, 200, 429]);
}

#[tokio::test]
async fn quota_token_bucket_bursts_then_refills_at_its_rate() {
    let svc = Upstream::start("svc").await;
    let limit = json!([{"name": "bucket", "algorithm": "token_bucket", "limit": 1, "window_seconds": 1, "burst": 4}]);
    let gw = gateway(svc.addr, vec![route("/", json!([quota(config(limit))]))]).await;
    assert_eq!(statuses(&gw, "/", &[], 4).await, [200; 4], "the burst");
    let refused = get(&gw, "/", &[]).await;
    assert_eq!((refused.status.as_u16(), refused.header("retry-after")), (429, "1"));
    assert_eq!(refused.header("ratelimit-policy"), r#""bucket";q=4;w=1"#);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(statuses(&gw, "/", &[], 2).await, [200, 429], "one token per second");
}

#[tokio::test]
async fn quota_counts_exactly_across_two_workers_and_concurrent_clients() {
    const N: usize = 40;
    let svc = Upstream::start("svc").await;
    let gw =
        gateway(svc.addr, vec![route("/", json!([quota(config(json!([daily("exact", N as u64, json!([]))])))]))]).await;
    let addr = gw.main();
    let clients: Vec<_> = (0..3 * N)
        .map(|_| tokio::spawn(async move { get_with(addr, "api.test", "/", &[]).await.map(|r| r.status.as_u16()) }))
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for client in clients {
        match client.await.expect("join").expect("answer") {
            200 => ok += 1,
            429 => refused += 1,
            other => panic!("status {other}"),
        }
    }
    assert_eq!((ok, refused), (N, 2 * N));
    assert_eq!(svc.requests(), N);
    assert_eq!(counter(&gw, "quota_allowed", |v| v >= N as u64).await, N as u64);
    assert_eq!(counter(&gw, "quota_refused", |v| v >= 2 * N as u64).await, 2 * N as u64);
}

#[tokio::test]
async fn quota_counters_survive_a_hot_swap_to_a_new_version() {
    let svc = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({"routes": [], "clusters": []})).expect("gateway");
    let api = |method: &'static str, path: String, body: Value| {
        let gw = &gw;
        async move { gw.admin_call(method, &path, "application/json", body.to_string().into_bytes()).await.expect("admin") }
    };
    assert_eq!(api("PUT", "/api/v1/clusters/svc".into(), json!({"endpoints": [svc.endpoint()]})).await.0, 200);
    let (status, body) =
        api("PUT", "/api/v1/routes/api".into(), json!({"match": {"path": {"prefix": "/"}}, "cluster": "svc"})).await;
    assert_eq!(status, 200, "{body}");
    let wasm = std::fs::read(filters::QUOTA_WASM).expect("quota.wasm");
    for (version, bytes) in [("1.0.0", wasm.clone()), ("1.1.0", filters::another_build(&wasm))] {
        let (status, body) = gw
            .admin_call("POST", &format!("/api/v1/filters?name=quota&version={version}"), "application/wasm", bytes)
            .await
            .expect("publish");
        assert_eq!(status, 201, "{body}");
    }
    let configuration = config(json!([daily("swap", 5, json!([]))]));
    let attach = |version: &str| json!({"filter": format!("quota@{version}"), "configuration": configuration});
    let (status, body) = api("POST", "/api/v1/routes/api/filters".into(), attach("1.0.0")).await;
    assert_eq!((status, body["attached"].as_str()), (200, Some("quota@1.0.0")), "{body}");
    assert_eq!(statuses(&gw, "/", &[], 3).await, [200; 3]);
    let (status, body) = api("POST", "/api/v1/routes/api/filters".into(), attach("1.1.0")).await;
    assert_eq!((status, body["attached"].as_str()), (200, Some("quota@1.1.0")), "{body}");
    assert_eq!(statuses(&gw, "/", &[], 3).await, [200, 200, 429], "the new version counts on from 3");
}

#[tokio::test]
async fn quota_store_failures_fail_open_or_closed_as_configured() {
    let svc = Upstream::start("svc").await;
    // The store really fails: the host answers INTERNAL_FAILURE to every write of shared data.
    let no_writes: Vec<&str> =
        weir::abi::hostcalls::capabilities::all().filter(|c| *c != "proxy_set_shared_data").collect();
    let attachment = |mode: &str| {
        let mut a = quota(json!({"failure_mode": mode, "limits": [daily("s", 1, json!([]))]}));
        a["capabilities"] = json!(no_writes);
        json!([a])
    };
    let gw = gateway(svc.addr, vec![route("/open", attachment("open")), route("/closed", attachment("closed"))]).await;
    assert_eq!(statuses(&gw, "/open", &[], 3).await, [200; 3], "open: let through, although the limit is 1");
    let closed = get(&gw, "/closed", &[]).await;
    assert_eq!(closed.status, 503);
    assert_eq!(closed.json()["error"]["code"], "quota_store_unavailable");
    assert_eq!(svc.requests(), 3);
    assert_eq!(counter(&gw, "quota_store_errors", |v| v >= 4).await, 4);
    assert_eq!(counter(&gw, "quota_failed_closed", |v| v >= 1).await, 1);
}

// ---- LLM token accounting against a protocol-faithful mock provider ----

type Body = BoxBody<Bytes, Infallible>;

/// What the mock answers: OpenAI `POST .../chat/completions` and Anthropic `POST /v1/messages`, JSON or SSE
/// (`"stream": true`), with the usage of request header `x-usage: <input>,<output>`; SSE is sent in 23-byte
/// pieces, so events and JSON split across chunks. `x-delay-ms` holds the last piece. OpenAI streams carry a
/// usage chunk only when the request asked with `stream_options.include_usage`; `x-saw-include-usage` says
/// whether it did.
async fn provider(req: http::Request<hyper::body::Incoming>) -> Result<http::Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (input, output) = header("x-usage")
        .split_once(',')
        .map_or((10, 20), |(i, o)| (i.trim().parse::<u64>().unwrap_or(0), o.trim().parse::<u64>().unwrap_or(0)));
    let delay = header("x-delay-ms").parse::<u64>().unwrap_or(0);
    let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let stream = request["stream"] == true;
    let include_usage = request["stream_options"]["include_usage"] == true;
    let anthropic = path.ends_with("/messages");
    let text = match (anthropic, stream) {
        (false, false) => json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})
        .to_string(),
        (true, false) => json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": input, "output_tokens": output}})
        .to_string(),
        (false, true) => {
            let chunk = |choices: Value, usage: Option<Value>| {
                let mut c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                                   "model": "gpt-x", "choices": choices});
                if let Some(u) = usage {
                    c["usage"] = u;
                }
                format!("data: {c}\n\n")
            };
            let mut s = chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
                None,
            );
            s += &chunk(json!([{"index": 0, "delta": {"content": "Hello"}, "finish_reason": null}]), None);
            s += &chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]), None);
            if include_usage {
                let usage =
                    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
                s += &chunk(json!([]), Some(usage));
            }
            s + "data: [DONE]\n\n"
        }
        (true, true) => {
            let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
            [
                event(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                    "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
                    "usage": {"input_tokens": input, "output_tokens": 1}}}),
                ),
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ),
                event("ping", json!({"type": "ping"})),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": "Hi"}}),
                ),
                event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                event(
                    "message_delta",
                    json!({"type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output}}),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ]
            .concat()
        }
    };
    let builder = http::Response::builder().header("x-saw-include-usage", include_usage.to_string());
    if !stream {
        let response = builder.header("content-type", "application/json").body(Full::new(Bytes::from(text)).boxed());
        return Ok(response.expect("response"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let pieces: Vec<Bytes> = text.as_bytes().chunks(23).map(Bytes::copy_from_slice).collect();
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            if i == last && delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if tx.send(Ok(Frame::data(piece))).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let response =
        builder.header("content-type", "text/event-stream").body(StreamBody::new(ReceiverStream(rx)).boxed());
    Ok(response.expect("response"))
}

async fn start_provider() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(provider);
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

async fn post(gw: &TestGateway, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let req = request("POST", "llm.test", path, &all, &body.to_string(), &Proto::H1);
    call(gw.main(), &Proto::H1, req).await.expect("request")
}

#[tokio::test]
async fn quota_charges_llm_tokens_from_json_and_streams_of_both_providers_once() {
    let provider = start_provider().await;
    let tokens = json!({"failure_mode": "closed", "limits": [{"name": "tokens", "kind": "tokens",
        "algorithm": "token_bucket", "limit": 100, "window_seconds": 86400, "key": ["consumer"],
        "error": "insufficient_quota"}]});
    let gw = gateway(provider, vec![route("/", json!([quota(tokens)]))]).await;
    let chat = json!({"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]});
    let stream = json!({"model": "gpt-x", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let messages = json!({"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]});
    let messages_stream = json!({"model": "claude-x", "max_tokens": 64, "stream": true, "messages": []});
    let ada = |usage: &'static str| [("x-weir-consumer", "ada"), ("x-usage", usage)];

    // Each answer shows what was left before it; each is charged its own usage, once.
    let steps: [(&str, Value, &str, &str); 5] = [
        ("/v1/chat/completions", chat.clone(), "10,20", "100"),
        ("/v1/chat/completions", stream, "5,15", "70"),
        ("/v1/messages", messages, "4,6", "50"),
        ("/v1/messages", messages_stream, "20,15", "40"),
        ("/v1/chat/completions", chat.clone(), "10,20", "5"),
    ];
    for (i, (path, body, usage, before)) in steps.into_iter().enumerate() {
        let reply = post(&gw, path, &ada(usage), body).await;
        assert_eq!(reply.status, 200, "step {i}: {}", reply.body);
        assert_eq!(reply.header("x-ratelimit-remaining-tokens"), before, "step {i}");
        assert_eq!(reply.header("x-ratelimit-limit-tokens"), "100", "step {i}");
        if i == 1 {
            assert_eq!(reply.header("x-saw-include-usage"), "true", "the filter asked the stream for its usage");
            assert!(reply.body.contains("\"usage\""), "{}", reply.body);
        }
    }
    // 5 - 30: the budget is spent (post-paid, the last answer overdrew it).
    let refused = post(&gw, "/v1/chat/completions", &ada("1,1"), chat.clone()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "insufficient_quota");
    assert_eq!(refused.header("x-ratelimit-remaining-tokens"), "0");
    // Another consumer is untouched.
    let bob = post(&gw, "/v1/chat/completions", &[("x-weir-consumer", "bob")], chat).await;
    assert_eq!((bob.status.as_u16(), bob.header("x-ratelimit-remaining-tokens")), (200, "100"));
    let total = 30 + 20 + 10 + 35 + 30 + 30;
    assert_eq!(counter(&gw, "quota_tokens_charged", |v| v >= total).await, total);
}

#[tokio::test]
async fn quota_reserves_tokens_before_a_stream_and_settles_after_it() {
    let provider = start_provider().await;
    let tokens = json!({"failure_mode": "closed", "limits": [{"name": "reserved", "kind": "tokens",
        "algorithm": "token_bucket", "limit": 100, "window_seconds": 86400, "key": ["consumer"], "reserve": 50}]});
    let gw = gateway(provider, vec![route("/", json!([quota(tokens)]))]).await;
    let stream = json!({"model": "claude-x", "max_tokens": 64, "stream": true, "messages": []});
    let slow = [("x-weir-consumer", "ada"), ("x-usage", "3,7"), ("x-delay-ms", "600")];
    let gw = std::sync::Arc::new(gw);
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (gw, stream) = (gw.clone(), stream.clone());
            tokio::spawn(async move { post(&gw, "/v1/messages", &slow, stream).await.status.as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let third = post(&gw, "/v1/messages", &[("x-weir-consumer", "ada")], stream.clone()).await;
    assert_eq!(third.status, 429, "two reservations of 50 hold the whole budget: {}", third.body);
    for r in running {
        assert_eq!(r.await.expect("join"), 200);
    }
    // Settled at 10 each: 80 left.
    let after = post(&gw, "/v1/messages", &[("x-weir-consumer", "ada"), ("x-usage", "1,1")], stream).await;
    assert_eq!((after.status.as_u16(), after.header("x-ratelimit-remaining-tokens")), (200, "30"), "80 - 50 reserved");
}
