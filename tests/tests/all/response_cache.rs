//! The shipped response cache (`filters/response-cache`) in the real gateway (2 workers): key composition and
//! scopes (query order, chosen headers, tenant, consumer from jwt-auth, route or shared), HIT/MISS/BYPASS/EXPIRED
//! with `Age`, request and response `Cache-Control`, `Set-Cookie`, statuses and sizes, the bounds under concurrent
//! inserts from both workers, request collapsing with and without a body (one upstream request; the bound), LLM
//! streams from a mock OpenAI (complete, broken in-band, cut; replayed as SSE; kept apart from plain answers), and
//! purge.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use weir_tests::client::{call, get_with, request, send, Proto, Reply};
use weir_tests::mock_llm::{Answer, Behavior, MockLlm, Provider};
use weir_tests::upstream::ReceiverStream;
use weir_tests::{filters, TestGateway};

const TOKEN: &str = "purge-token-0123456789";

/// An origin that counts its requests and answers as the query asks: `status=N`, `ms=N` (a delay), `size=N` (a
/// body of N bytes), `rh-<name>=<value>` (a response header); `/sse` answers a complete SSE stream, `/cut` an SSE
/// stream whose connection breaks after the first event. Bodies say `n=<request number> <path>`. `count` counts
/// the requests whose headers arrived, `whole` those whose body arrived whole too (a request the gateway abandons
/// while it holds the body, answered from the cache, counts only in `count`).
struct Origin {
    addr: SocketAddr,
    count: Arc<AtomicUsize>,
    whole: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type OriginBody = BoxBody<Bytes, std::io::Error>;

impl Origin {
    async fn start() -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let count = Arc::new(AtomicUsize::new(0));
        let whole = Arc::new(AtomicUsize::new(0));
        let (c, w) = (count.clone(), whole.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (c, w) = (c.clone(), w.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                        let w = w.clone();
                        async move { Ok::<_, Infallible>(answer(n, req, &w).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Origin { addr, count, whole, task }
    }

    fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The requests whose body arrived whole.
    fn served(&self) -> usize {
        self.whole.load(Ordering::SeqCst)
    }
}

async fn answer(
    n: usize,
    req: http::Request<hyper::body::Incoming>,
    whole: &AtomicUsize,
) -> http::Response<OriginBody> {
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let params: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%3D", "=").replace("%2C", ",")))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if req.into_body().collect().await.is_ok() {
        whole.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(ms) = param("ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut builder = http::Response::builder().status(param("status").and_then(|s| s.parse().ok()).unwrap_or(200));
    for (name, value) in &params {
        if let Some(header) = name.strip_prefix("rh-") {
            builder = builder.header(header, value.as_str());
        }
    }
    if path == "/sse" || path == "/cut" {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let cut = path == "/cut";
        tokio::spawn(async move {
            let _ = tx.send(Ok(Frame::data(Bytes::from(format!("data: {{\"n\":{n}}}\n\n"))))).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let last =
                if cut { Err(std::io::Error::other("cut")) } else { Ok(Frame::data(Bytes::from("data: [DONE]\n\n"))) };
            let _ = tx.send(last).await;
        });
        return builder
            .header("content-type", "text/event-stream")
            .body(StreamBody::new(ReceiverStream(rx)).boxed())
            .expect("sse");
    }
    let mut body = format!("n={n} {path}");
    if let Some(size) = param("size").and_then(|v| v.parse::<usize>().ok()) {
        body = format!("{body:<size$}");
    }
    builder
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
        .expect("response")
}

/// Request headers, as the tables write them.
type Pairs = &'static [(&'static str, &'static str)];

/// A cache attachment.
fn cache(configuration: Value) -> Value {
    json!({"name": "cache", "module": filters::RESPONSE_CACHE_WASM, "configuration": configuration})
}

/// A route named `name` on `prefix` to cluster `svc` with `filters`.
fn route(name: &str, prefix: &str, filters: Value) -> Value {
    json!({"name": name, "match": {"path": {"prefix": prefix}}, "cluster": "svc", "filters": filters})
}

async fn gateway(svc: SocketAddr, routes: Vec<Value>) -> TestGateway {
    TestGateway::start(json!({"routes": routes, "clusters": [{"name": "svc", "endpoints": [svc.to_string()]}]}))
        .unwrap_or_else(|e| panic!("gateway starts: {e:#}"))
}

async fn get(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    get_with(gw.main(), "api.test", path, headers).await.expect("request")
}

/// `(X-Cache-Status, body)` of a GET.
async fn look(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    let reply = get(gw, path, headers).await;
    (reply.header("x-cache-status").to_string(), reply.body)
}

fn token(sub: &str) -> String {
    weir_tests::jwt::hs256_token(sub)
}

/// The value of filter counter `name` on the admin `/metrics` (read once).
async fn counter(gw: &TestGateway, name: &str) -> u64 {
    gw.filter_counter(name, |_| true).await
}

#[tokio::test]
async fn keys_scopes_and_cache_status_headers() {
    let origin = Origin::start().await;
    let jwt = json!({"name": "jwt", "module": filters::JWT_AUTH_WASM, "configuration": {
        "jwks": weir_tests::jwt::hs256_jwks(),
        "consumer": {"claim": "sub"}}});
    let keyed = json!({"key": {"headers": ["x-lang"], "tenant_header": "x-tenant"}});
    let gw = gateway(
        origin.addr,
        vec![
            route("keyed", "/k", json!([cache(keyed)])),
            route("jwt", "/j", json!([jwt, cache(json!({"namespace": "jwt"}))])),
        ],
    )
    .await;

    // (path, headers, X-Cache-Status, the origin request whose answer comes back)
    let table: &[(&str, Pairs, &str, usize)] = &[
        ("/k?b=2&a=1", &[], "MISS", 1),
        ("/k?a=1&b=2", &[], "HIT", 1),
        ("/k?a=1&b=2", &[("x-lang", "fr")], "MISS", 2),
        ("/k?b=2&a=1", &[("x-lang", "fr")], "HIT", 2),
        ("/k?a=1&b=2", &[("x-tenant", "acme")], "MISS", 3),
        ("/k?a=1&b=2", &[("x-tenant", "acme")], "HIT", 3),
        ("/k?a=1&b=2", &[("x-cache-bypass", "1")], "BYPASS", 4),
        ("/k?a=1&b=2", &[], "HIT", 1),
        ("/k?a=1&b=3", &[], "MISS", 5),
    ];
    for (path, headers, status, n) in table {
        let (cache, body) = look(&gw, path, headers).await;
        assert_eq!(
            (cache.as_str(), body.split(' ').next().unwrap_or("")),
            (*status, format!("n={n}").as_str()),
            "{path} {headers:?}"
        );
    }
    let hit = get(&gw, "/k?a=1&b=2", &[]).await;
    assert_eq!(hit.header("age").parse::<u64>().ok().map(|a| a < 60), Some(true), "Age on hits");
    assert!(hit.header("x-request-id").len() > 8, "the hit has its own request id");
    assert_eq!(get(&gw, "/k?a=1&b=3", &[("x-cache-bypass", "1")]).await.header("age"), "", "no Age on a bypass");

    // The consumer jwt-auth found scopes entries; a forged consumer header does not.
    let (ada, bob) = (format!("Bearer {}", token("ada")), format!("Bearer {}", token("bob")));
    let before = origin.requests();
    assert_eq!(look(&gw, "/j", &[("authorization", &ada)]).await.0, "MISS");
    assert_eq!(look(&gw, "/j", &[("authorization", &ada)]).await.0, "HIT");
    assert_eq!(look(&gw, "/j", &[("authorization", &bob), ("x-weir-consumer", "ada")]).await.0, "MISS");
    assert_eq!(look(&gw, "/j", &[("authorization", &bob)]).await.0, "HIT");
    assert_eq!(origin.requests(), before + 2);
    assert_eq!(counter(&gw, "response_cache_hits").await, 7);
}

#[tokio::test]
async fn routes_share_entries_only_when_told() {
    let origin = Origin::start().await;
    // Two routes on the same path, told apart by a header: the requests have the same method, host and path.
    let on = |name: &str, value: &str, config: Value| {
        json!({"name": name, "match": {"path": {"prefix": "/same"}, "headers": [{"name": "x-route", "value": value}]},
               "cluster": "svc", "filters": [cache(config)]})
    };
    let gw = gateway(
        origin.addr,
        vec![
            on("a", "a", json!({"namespace": "split"})),
            on("b", "b", json!({"namespace": "split"})),
            on("c", "c", json!({"namespace": "both", "key": {"shared": true}})),
            on("d", "d", json!({"namespace": "both", "key": {"shared": true}})),
        ],
    )
    .await;
    let table: &[(&str, &str)] = &[("a", "MISS"), ("a", "HIT"), ("b", "MISS"), ("c", "MISS"), ("d", "HIT")];
    for (which, want) in table {
        assert_eq!(look(&gw, "/same", &[("x-route", which)]).await.0, *want, "route {which}");
    }
}

#[tokio::test]
async fn cache_control_cookies_statuses_and_sizes() {
    let origin = Origin::start().await;
    let gw = gateway(
        origin.addr,
        vec![
            route(
                "override",
                "/o",
                json!([cache(json!({"namespace": "o", "response_cache_control": false,
                "request_cache_control": false, "cache_set_cookie": true}))]),
            ),
            route("small", "/small", json!([cache(json!({"namespace": "s", "max_body_bytes": 100}))])),
            route("all", "/", json!([cache(json!({}))])),
        ],
    )
    .await;
    // (path, request headers, stored: the second request is a HIT)
    let table: &[(&str, Pairs, bool)] = &[
        ("/c?rh-cache-control=no-store", &[], false),
        ("/c?rh-cache-control=private", &[], false),
        ("/c?rh-cache-control=no-cache", &[], false),
        ("/c?rh-cache-control=s-maxage%3D0%2C%20max-age%3D60", &[], false),
        ("/c?rh-cache-control=max-age%3D60", &[], true),
        ("/c?rh-set-cookie=session%3D1", &[], false),
        ("/c?status=500", &[], false),
        ("/c?status=404", &[], true),
        ("/c?status=201", &[], false),
        ("/c?plain", &[("cache-control", "no-store")], false),
        ("/o?rh-cache-control=no-store&rh-set-cookie=a%3D1", &[], true),
        ("/o?asked", &[("cache-control", "no-store")], true),
        ("/small?size=50", &[], true),
        ("/small?size=500", &[], false),
    ];
    for (path, headers, stored) in table {
        get(&gw, path, headers).await;
        let again = look(&gw, path, headers).await.0;
        assert_eq!(again == "HIT", *stored, "{path} {headers:?}: {again}");
    }
    // Request directives: no-cache refreshes (the new answer is stored), max-age bounds the entry's age.
    let next = |n: usize| format!("n={} /r", n + 1);
    let first = next(origin.requests());
    assert_eq!(look(&gw, "/r", &[]).await, ("MISS".into(), first));
    let refreshed = next(origin.requests());
    assert_eq!(look(&gw, "/r", &[("cache-control", "no-cache")]).await, ("BYPASS".into(), refreshed.clone()));
    assert_eq!(look(&gw, "/r", &[]).await, ("HIT".into(), refreshed));
    assert_eq!(look(&gw, "/r", &[("pragma", "no-cache")]).await.0, "BYPASS");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(look(&gw, "/r", &[("cache-control", "max-age=1")]).await.0, "EXPIRED");
    assert_eq!(look(&gw, "/r", &[("cache-control", "max-age=30")]).await.0, "HIT");
    // The response's own max-age ends the entry: EXPIRED, then stored again.
    assert_eq!(look(&gw, "/e?rh-cache-control=max-age%3D1", &[]).await.0, "MISS");
    assert_eq!(look(&gw, "/e?rh-cache-control=max-age%3D1", &[]).await.0, "HIT");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(look(&gw, "/e?rh-cache-control=max-age%3D1", &[]).await.0, "EXPIRED");
    assert_eq!(look(&gw, "/e?rh-cache-control=max-age%3D1", &[]).await.0, "HIT");
    // POST is not among the default methods: no cache status at all.
    let post =
        call(gw.main(), &Proto::H1, request("POST", "api.test", "/p", &[], "{}", &Proto::H1)).await.expect("post");
    assert_eq!(post.header("x-cache-status"), "");
}

#[tokio::test]
async fn bounds_hold_when_both_workers_insert_at_once() {
    let origin = Origin::start().await;
    let config = json!({"max_entries": 6, "max_bytes": 4000, "max_body_bytes": 1000,
        "purge": {"path": "/_cache", "token": TOKEN}});
    let gw = Arc::new(gateway(origin.addr, vec![route("all", "/", json!([cache(config)]))]).await);
    for round in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..48 {
            let gw = gw.clone();
            let size = 200 + 37 * (i % 9);
            tasks.push(tokio::spawn(
                async move { get(&gw, &format!("/item/{round}/{i}?size={size}"), &[]).await.status },
            ));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task"), 200);
        }
        let stats = get(&gw, "/_cache", &[("authorization", &format!("Bearer {TOKEN}"))]).await.json();
        let (entries, bytes) = (stats["entries"].as_u64().unwrap_or(99), stats["bytes"].as_u64().unwrap_or(u64::MAX));
        assert!((1..=6).contains(&entries), "round {round}: {stats}");
        assert!(bytes <= 4000, "round {round}: {stats}");
    }
    assert!(counter(&gw, "response_cache_evictions").await >= 90, "at least 96 - 6 entries were evicted");
    // The least recently used goes: after touching an entry, inserting one more keeps it.
    let lru = json!({"namespace": "lru", "max_entries": 3, "touch_interval_ms": 0});
    let gw = gateway(origin.addr, vec![route("all", "/", json!([cache(lru)]))]).await;
    for path in ["/a", "/b", "/c", "/a", "/d"] {
        get(&gw, path, &[]).await;
        // Uses are recorded in milliseconds: within one, an insertion and a use tie, and the tie goes to the
        // older record. On a fast machine the five requests can share a millisecond.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let table = [("/a", "HIT"), ("/d", "HIT"), ("/c", "HIT"), ("/b", "MISS")];
    for (path, want) in table {
        assert_eq!(look(&gw, path, &[]).await.0, want, "{path}");
    }
}

#[tokio::test]
async fn concurrent_misses_send_one_request_upstream() {
    let origin = Origin::start().await;
    let gw = Arc::new(
        gateway(
            origin.addr,
            vec![
                route("short", "/bounded", json!([cache(json!({"namespace": "b", "collapse": {"timeout_ms": 300}}))])),
                route("all", "/", json!([cache(json!({}))])),
            ],
        )
        .await,
    );
    let burst = |path: &'static str, n: usize| {
        let gw = gw.clone();
        async move {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let gw = gw.clone();
                    tokio::spawn(async move { look(&gw, path, &[]).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task"));
            }
            out
        }
    };
    let replies = burst("/slow?ms=800", 8).await;
    assert_eq!(origin.requests(), 1, "one request went upstream");
    assert!(replies.iter().all(|(_, body)| body == "n=1 /slow"), "{replies:?}");
    let misses = replies.iter().filter(|(s, _)| s == "MISS").count();
    assert_eq!((misses, replies.len() - misses), (1, 7), "{replies:?}");
    assert_eq!(counter(&gw, "response_cache_collapsed").await, 7);

    // Past the bound, waiting requests go upstream themselves.
    let replies = burst("/bounded?ms=1000", 4).await;
    assert_eq!(origin.requests(), 1 + 4, "{replies:?}");
    assert!(replies.iter().all(|(s, _)| s == "MISS"), "{replies:?}");
    assert_eq!(counter(&gw, "response_cache_collapse_timeouts").await, 3);
}

/// `(X-Cache-Status, body)` of a JSON POST to `path`.
async fn post_json(gw: &TestGateway, path: &str, body: &str) -> (String, String) {
    let req = request("POST", "api.test", path, &[("content-type", "application/json")], body, &Proto::H1);
    let reply = call(gw.main(), &Proto::H1, req).await.expect("post");
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    (reply.header("x-cache-status").to_string(), reply.body)
}

/// Filter counter `name` once it reaches `want` (or its value after a while).
async fn counter_at(gw: &TestGateway, name: &str, want: u64) -> u64 {
    gw.filter_counter(name, |v| v == want).await
}

#[tokio::test]
async fn concurrent_identical_posts_send_one_request_upstream() {
    let origin = Origin::start().await;
    let post_cache = |extra: Value| {
        let mut configuration = json!({"methods": ["POST"], "response_cache_control": false});
        if let (Some(c), Some(e)) = (configuration.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        cache(configuration)
    };
    let gw = Arc::new(
        gateway(
            origin.addr,
            vec![
                route(
                    "short",
                    "/bounded",
                    json!([post_cache(json!({"namespace": "b", "collapse": {"timeout_ms": 300}}))]),
                ),
                route("all", "/", json!([post_cache(json!({}))])),
            ],
        )
        .await,
    );
    // `n` POSTs to `path`, at once; the body of each is `body(i)`.
    let burst = |path: &'static str, n: usize, body: fn(usize) -> String| {
        let gw = gw.clone();
        async move {
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    let gw = gw.clone();
                    tokio::spawn(async move { post_json(&gw, path, &body(i)).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task"));
            }
            out
        }
    };
    // The same question (keys in another order, another user: one key).
    let same = |i: usize| {
        if i.is_multiple_of(2) {
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": format!("u{i}")}).to_string()
        } else {
            r#"{"messages":[{"content":"hi","role":"user"}],"model":"m"}"#.to_string()
        }
    };
    let replies = burst("/slow?ms=800", 8, same).await;
    assert_eq!(origin.served(), 1, "one request went upstream whole: {replies:?}");
    let first = replies[0].1.clone();
    assert!(first.starts_with("n=") && first.ends_with(" /slow"), "{replies:?}");
    assert!(replies.iter().all(|(_, body)| *body == first), "{replies:?}");
    let misses = replies.iter().filter(|(s, _)| s == "MISS").count();
    assert_eq!((misses, replies.len() - misses), (1, 7), "{replies:?}");
    assert_eq!(counter_at(&gw, "response_cache_collapsed", 7).await, 7);
    assert_eq!(post_json(&gw, "/slow?ms=800", &same(1)).await, ("HIT".to_string(), first), "stored");

    // Different questions on one path are different keys: each goes upstream.
    let different =
        |i: usize| json!({"model": "m", "messages": [{"role": "user", "content": format!("q{i}")}]}).to_string();
    let replies = burst("/slow?ms=300", 4, different).await;
    assert_eq!(origin.served(), 1 + 4, "{replies:?}");
    assert!(replies.iter().all(|(s, _)| s == "MISS"), "{replies:?}");
    let mut bodies: Vec<&str> = replies.iter().map(|(_, b)| b.as_str()).collect();
    bodies.sort_unstable();
    bodies.dedup();
    assert_eq!(bodies.len(), 4, "four answers: {replies:?}");
    assert_eq!(counter_at(&gw, "response_cache_collapsed", 7).await, 7, "none collapsed");

    // Past the bound, waiting POSTs go upstream themselves, their bodies held until then.
    let replies = burst("/bounded?ms=1000", 4, same).await;
    assert_eq!(origin.served(), 1 + 4 + 4, "{replies:?}");
    assert!(replies.iter().all(|(s, _)| s == "MISS"), "{replies:?}");
    assert_eq!(counter_at(&gw, "response_cache_collapse_timeouts", 3).await, 3);
    assert_eq!(counter_at(&gw, "response_cache_collapsed", 7).await, 7);
}

/// A chat completion request.
fn chat(stream: bool, user: &str) -> String {
    json!({"user": user, "stream": stream, "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

async fn post(gw: &TestGateway, body: &str) -> Reply {
    call(
        gw.main(),
        &Proto::H1,
        request("POST", "api.test", "/v1/chat/completions", &[("content-type", "application/json")], body, &Proto::H1),
    )
    .await
    .expect("post")
}

#[tokio::test]
async fn llm_streams_are_stored_when_complete_and_replayed_as_sse() {
    let llm = MockLlm::start(Provider::OpenAi).await;
    let origin = Origin::start().await;
    let llm_cache = json!({"methods": ["POST"], "response_cache_control": false});
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "llm", "match": {"path": {"prefix": "/v1"}}, "cluster": "llm", "filters": [cache(llm_cache)]},
            route("sse", "/", json!([cache(json!({"namespace": "sse"}))])),
        ],
        "clusters": [{"name": "llm", "endpoints": [llm.endpoint()]}, {"name": "svc", "endpoints": [origin.addr.to_string()]}]
    }))
    .expect("gateway");

    let first = post(&gw, &chat(true, "ada")).await;
    assert_eq!((first.status.as_u16(), first.header("x-cache-status")), (200, "MISS"));
    assert!(first.body.trim_end().ends_with("data: [DONE]"), "{}", first.body);
    // The same question (another user, fields in another order) is replayed: the same events, as SSE.
    let reordered = r#"{"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o-mini","stream":true,"user":"bob"}"#;
    let replay = post(&gw, reordered).await;
    assert_eq!(replay.header("x-cache-status"), "HIT");
    assert!(replay.header("content-type").starts_with("text/event-stream"));
    assert_eq!(replay.body, first.body);
    let events: Vec<&str> = replay.body.split("\n\n").filter(|e| !e.trim().is_empty()).collect();
    assert!(events.iter().all(|e| e.starts_with("data: ")), "{events:?}");
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e["data: ".len()..]).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hello from the mock.");
    // The plain answer is another entry.
    let plain = post(&gw, &chat(false, "ada")).await;
    assert_eq!(plain.header("x-cache-status"), "MISS");
    assert_eq!(plain.json()["choices"][0]["message"]["content"], "Hello from the mock.");
    assert_eq!(post(&gw, &chat(false, "eve")).await.header("x-cache-status"), "HIT");
    assert_eq!(llm.received().len(), 2, "hits were not sent upstream");

    // A stream that ends with an in-band error, before its terminal event, is not stored.
    let question = |n: u32| {
        json!({"stream": true, "model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("q{n}")}]})
            .to_string()
    };
    llm.script(vec![
        Behavior::MidStreamError { answer: Answer::text("half an answer"), message: "overloaded".into() },
        Behavior::Answer(Answer::text("whole")),
    ]);
    assert_eq!(post(&gw, &question(1)).await.header("x-cache-status"), "MISS");
    assert_eq!(post(&gw, &question(1)).await.header("x-cache-status"), "MISS", "the broken stream was not kept");
    assert_eq!(post(&gw, &question(1)).await.header("x-cache-status"), "HIT");

    // A stream whose connection breaks is not stored; a complete one is, and replays whole.
    if let Ok(cut) = get_with(gw.main(), "api.test", "/cut", &[("accept", "text/event-stream")]).await {
        assert!(!cut.body.contains("[DONE]"), "{}", cut.body);
    }
    // Its body breaks again: only the head is read.
    let again = send(
        gw.main(),
        &Proto::H1,
        request("GET", "api.test", "/cut", &[("accept", "text/event-stream")], "", &Proto::H1),
    )
    .await
    .expect("head");
    assert_eq!(again.headers().get("x-cache-status").map(|v| v.as_bytes()), Some(&b"MISS"[..]));
    drop(again);
    assert_eq!(look(&gw, "/sse", &[("accept", "text/event-stream")]).await.0, "MISS");
    let (status, body) = look(&gw, "/sse", &[("accept", "text/event-stream")]).await;
    assert_eq!((status.as_str(), body.as_str()), ("HIT", "data: {\"n\":3}\n\ndata: [DONE]\n\n"));
    assert_eq!(look(&gw, "/sse", &[]).await.0, "MISS", "a plain client gets its own entry");
}

#[tokio::test]
async fn purge_by_exact_key_and_prefix_with_the_token() {
    let origin = Origin::start().await;
    let config = json!({"purge": {"path": "/_cache/purge", "token": TOKEN}});
    let gw = gateway(origin.addr, vec![route("all", "/", json!([cache(config)]))]).await;
    for path in ["/docs/a?x=1", "/docs/b", "/img/c"] {
        assert_eq!(look(&gw, path, &[]).await.0, "MISS");
    }
    let auth = format!("Bearer {TOKEN}");
    let purge = |query: &str| format!("/_cache/purge?{query}");
    let post_to = |path: String, auth: Option<String>| {
        let headers: Vec<(&'static str, String)> = auth.into_iter().map(|a| ("authorization", a)).collect();
        let gw = &gw;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            call(gw.main(), &Proto::H1, request("POST", "api.test", &path, &headers, "", &Proto::H1))
                .await
                .expect("purge")
        }
    };
    let before = origin.requests();
    assert_eq!(post_to(purge("prefix=GET%20api.test%2F"), None).await.status, 401);
    assert_eq!(post_to(purge("prefix=GET%20api.test%2F"), Some("Bearer nope".into())).await.status, 401);
    let exact = post_to(purge("key=GET%20api.test%2Fdocs%2Fa%3Fx%3D1"), Some(auth.clone())).await;
    assert_eq!((exact.status.as_u16(), exact.json()["purged"].clone()), (200, json!(1)));
    assert_eq!(look(&gw, "/docs/b", &[]).await.0, "HIT");
    assert_eq!(look(&gw, "/docs/a?x=1", &[]).await.0, "MISS");
    let prefix = post_to(purge("prefix=GET%20api.test%2Fdocs%2F"), Some(auth.clone())).await;
    assert_eq!(prefix.json()["purged"], 2);
    let table = [("/docs/a?x=1", "MISS"), ("/docs/b", "MISS"), ("/img/c", "HIT")];
    for (path, want) in table {
        assert_eq!(look(&gw, path, &[]).await.0, want, "{path}");
    }
    assert_eq!(origin.requests(), before + 3, "purge requests never went upstream");
    assert_eq!(counter(&gw, "response_cache_purged").await, 3);
}

/// `weir_filter_memo_answers_total` of route `route`.
async fn memo_answers(gw: &TestGateway, route: &str) -> u64 {
    gw.metric("weir_filter_memo_answers_total", &format!("route=\"{route}\"")).await
}

/// Hits of requests without a body are memoized on Weir (`weir.memoize_response`): after the filter's first hit
/// on a worker, the gateway answers the same requests by itself, counting them in the filter's hit counter, with
/// HIT and a live `Age`; a request that differs in anything that decided the hit goes to the filter, and a
/// purge, a refresh or the entry's expiry ends the memo. `"memoize": false` turns it off.
#[tokio::test]
async fn hits_are_answered_by_the_gateway_until_what_decided_them_changes() {
    let origin = Origin::start().await;
    let memo = json!({"namespace": "memo", "memoize_revalidate_ms": 60000, "key": {"headers": ["x-lang"]},
                      "purge": {"path": "/_cache/purge", "token": TOKEN}});
    let gw = gateway(
        origin.addr,
        vec![
            route("off", "/off", json!([cache(json!({"namespace": "off", "memoize": false}))])),
            route("short", "/short", json!([cache(json!({"namespace": "short", "ttl_seconds": 1}))])),
            route("memo", "/", json!([cache(memo)])),
        ],
    )
    .await;
    assert_eq!(look(&gw, "/m", &[]).await.0, "MISS");
    for _ in 0..20 {
        assert_eq!(look(&gw, "/m", &[]).await, ("HIT".to_string(), "n=1 /m".to_string()));
    }
    // Two workers: the first hit on each goes through the filter, which memoizes it.
    let answered = memo_answers(&gw, "memo").await;
    assert!((18..=19).contains(&answered), "{answered} of 20 hits answered by the gateway");
    assert_eq!(gw.filter_counter("response_cache_hits", |n| n >= 20).await, 20, "every hit counted once");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = get(&gw, "/m", &[]).await;
    assert_eq!((later.header("x-cache-status"), later.header("age")), ("HIT", "1"), "the Age goes on");

    // What decided the hit: the key's header, Cache-Control, the bypass header, the method, the path.
    let before = (memo_answers(&gw, "memo").await, origin.requests());
    // (method, path, headers, X-Cache-Status)
    let table: &[(&str, &str, Pairs, &str)] = &[
        ("GET", "/m", &[("x-lang", "fr")], "MISS"),
        ("GET", "/m", &[("cache-control", "max-age=0")], "BYPASS"),
        ("GET", "/m", &[("x-cache-bypass", "1")], "BYPASS"),
        ("HEAD", "/m", &[], "MISS"),
        ("GET", "/m?other", &[], "MISS"),
    ];
    for (method, path, headers, want) in table {
        let reply = call(gw.main(), &Proto::H1, request(method, "api.test", path, headers, "", &Proto::H1))
            .await
            .expect("request");
        assert_eq!(reply.header("x-cache-status"), *want, "{method} {path} {headers:?}");
    }
    assert_eq!(memo_answers(&gw, "memo").await, before.0, "none of these was answered by the gateway");
    assert_eq!(origin.requests(), before.1 + 5, "each went upstream");

    // The refresh (the second row) replaced the entry: the memo went with it, and the next hits carry the new answer.
    let fresh = format!("n={} /m", before.1 + 2);
    for _ in 0..4 {
        assert_eq!(look(&gw, "/m", &[]).await, ("HIT".to_string(), fresh.clone()));
    }
    // `Connection: x-lang` has the gateway drop `x-lang` before the filter sees the request: the plain entry's
    // hit, answered by the gateway after the first on each worker (past the early check, which leaves such
    // requests to the chain).
    let dropped = [("connection", "x-lang"), ("x-lang", "fr")];
    let before_dropped = memo_answers(&gw, "memo").await;
    for _ in 0..10 {
        assert_eq!(look(&gw, "/m", &dropped).await, ("HIT".to_string(), fresh.clone()));
    }
    assert!(memo_answers(&gw, "memo").await >= before_dropped + 8);
    // A purge removes the entry (and its `x-lang: fr` variant, the same readable key): the memo goes too.
    let auth = format!("Bearer {TOKEN}");
    let headers = [("authorization", auth.as_str())];
    let purge = request("POST", "api.test", "/_cache/purge?key=GET%20api.test%2Fm", &headers, "", &Proto::H1);
    assert_eq!(call(gw.main(), &Proto::H1, purge).await.expect("purge").json()["purged"], 2);
    assert_eq!(look(&gw, "/m", &[]).await.0, "MISS");

    // Expiry ends the memo with the entry.
    assert_eq!(look(&gw, "/short", &[]).await.0, "MISS");
    for _ in 0..6 {
        assert_eq!(look(&gw, "/short", &[]).await.0, "HIT");
    }
    assert!(memo_answers(&gw, "short").await >= 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(look(&gw, "/short", &[]).await.0, "EXPIRED");

    // Off: every hit goes through the filter.
    assert_eq!(look(&gw, "/off", &[]).await.0, "MISS");
    for _ in 0..6 {
        assert_eq!(look(&gw, "/off", &[]).await.0, "HIT");
    }
    assert_eq!(memo_answers(&gw, "off").await, 0);
}

/// A hot swap to a new version of the filter (or a new configuration) starts without memos: the answers of the
/// version that was replaced are never sent again, while the entries in shared data stay (hits go on).
#[tokio::test]
async fn memos_end_with_the_filter_version_that_made_them() {
    let origin = Origin::start().await;
    let gw = TestGateway::start(json!({"routes": [], "clusters": []})).expect("gateway");
    let api = |method: &'static str, path: String, body: Value| {
        let gw = &gw;
        async move { gw.admin_call(method, &path, "application/json", body.to_string().into_bytes()).await.expect("admin") }
    };
    assert_eq!(api("PUT", "/api/v1/clusters/svc".into(), json!({"endpoints": [origin.addr.to_string()]})).await.0, 200);
    let (status, body) =
        api("PUT", "/api/v1/routes/api".into(), json!({"match": {"path": {"prefix": "/"}}, "cluster": "svc"})).await;
    assert_eq!(status, 200, "{body}");
    let wasm = std::fs::read(filters::RESPONSE_CACHE_WASM).expect("response_cache.wasm");
    for (version, bytes) in [("1.0.0", wasm.clone()), ("1.1.0", filters::another_build(&wasm))] {
        let path = format!("/api/v1/filters?name=response-cache&version={version}");
        let (status, body) = gw.admin_call("POST", &path, "application/wasm", bytes).await.expect("publish");
        assert_eq!(status, 201, "{body}");
    }
    let attach = |version: &str, header: &str| {
        json!({"filter": format!("response-cache@{version}"), "configuration": {"status_header": header,
               "memoize_revalidate_ms": 60000}})
    };
    let (status, body) = api("POST", "/api/v1/routes/api/filters".into(), attach("1.0.0", "x-v1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&gw, "/s", &[]).await.header("x-v1"), "MISS");
    for _ in 0..6 {
        assert_eq!(get(&gw, "/s", &[]).await.header("x-v1"), "HIT");
    }
    assert!(memo_answers(&gw, "api").await >= 4, "the gateway answered from memos");
    let (status, body) = api("POST", "/api/v1/routes/api/filters".into(), attach("1.1.0", "x-v2")).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..6 {
        let reply = get(&gw, "/s", &[]).await;
        assert_eq!((reply.header("x-v1"), reply.header("x-v2"), reply.body.as_str()), ("", "HIT", "n=1 /s"));
    }
    assert_eq!(origin.requests(), 1);
}
