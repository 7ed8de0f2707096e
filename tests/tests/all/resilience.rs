//! Upstream resilience through the real gateway (2 workers) against real failing servers on 127.0.0.1
//! (`weir_tests::flaky`): active health checks, outlier ejection, retries (connect failure, reset, statuses,
//! per-try timeout, idempotency, the budget, never after the response started), circuit breakers, and
//! fallbacks, each asserting what the client sees and what `/metrics` and the admin API say.

use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::client::{call, get, request, Proto, Reply};
use weir_tests::flaky::{Flaky, Mode};
use weir_tests::upstream::{closed_port, Upstream};
use weir_tests::TestGateway;

fn start(clusters: Value, routes: Value) -> TestGateway {
    TestGateway::start(json!({"clusters": clusters, "routes": routes}))
        .unwrap_or_else(|e| panic!("gateway starts: {e:#}"))
}

fn route(cluster: &str, extra: Value) -> Value {
    let mut r = json!({"name": "r", "match": {"path": {"prefix": "/"}}, "cluster": cluster});
    if let (Some(r), Value::Object(extra)) = (r.as_object_mut(), extra) {
        r.extend(extra);
    }
    r
}

async fn metrics(gw: &TestGateway) -> String {
    get(gw.admin(), "/metrics").await.expect("metrics").body
}

/// The value of the metric line starting with `prefix` (0 when absent).
async fn metric(gw: &TestGateway, prefix: &str) -> f64 {
    let text = metrics(gw).await;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The admin API's view of cluster `name`'s endpoints: address -> (available, health_check, ejections).
async fn endpoints(gw: &TestGateway, name: &str) -> Vec<Value> {
    let (status, body) =
        gw.admin_call("GET", &format!("/api/v1/clusters/{name}"), "", Vec::new()).await.expect("admin");
    assert_eq!(status, 200, "{body}");
    body["cluster"]["health"]["endpoints"].as_array().cloned().unwrap_or_else(|| panic!("no health in {body}"))
}

async fn available(gw: &TestGateway, cluster: &str, address: &str) -> bool {
    endpoints(gw, cluster).await.iter().any(|e| e["address"] == address && e["available"] == true)
}

/// Waits (up to 10 s) until `address` of `cluster` is (or is not) available.
async fn wait_available(gw: &TestGateway, cluster: &str, address: &str, want: bool) {
    for _ in 0..200 {
        if available(gw, cluster, address).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{address} never became {}: {:?}",
        if want { "available" } else { "unavailable" },
        endpoints(gw, cluster).await
    );
}

/// The `server` field of each answer to `n` sequential GETs.
async fn servers(gw: &TestGateway, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = get(gw.main(), "/").await.expect("request");
        assert_eq!(r.status, 200, "{}", r.body);
        out.push(r.json()["server"].as_str().unwrap_or("?").to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_an_endpoint_out_and_bring_it_back() {
    let (a, b) = (Flaky::start("a", Mode::Ok).await, Flaky::start("b", Mode::Ok).await);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let hc = json!({"path": "/healthz", "interval_ms": 50, "timeout_ms": 40, "unhealthy_threshold": 2, "healthy_threshold": 2});
    let gw = start(
        json!([{"name": "svc", "endpoints": [a_addr, b_addr], "health_check": hc}]),
        json!([route("svc", json!({}))]),
    );
    let both = servers(&gw, 8).await;
    assert!(both.contains(&"a".to_string()) && both.contains(&"b".to_string()), "both serve: {both:?}");

    a.set_health(503);
    wait_available(&gw, "svc", &a_addr, false).await;
    let before = a.requests();
    assert_eq!(servers(&gw, 10).await, vec!["b"; 10], "only b while a fails its checks");
    assert_eq!(a.requests(), before, "a got no request while out");
    let line = format!("weir_upstream_endpoint_available{{cluster=\"svc\",endpoint=\"{a_addr}\"}}");
    assert_eq!(metric(&gw, &line).await, 0.0, "{line}");
    let fails = format!("weir_upstream_health_checks_total{{cluster=\"svc\",endpoint=\"{a_addr}\",result=\"fail\"}}");
    assert!(metric(&gw, &fails).await >= 2.0, "{fails}");
    let view = endpoints(&gw, "svc").await;
    assert!(view.iter().any(|e| e["address"] == a_addr.as_str() && e["health_check"] == "unhealthy"), "{view:?}");

    a.set_health(200);
    wait_available(&gw, "svc", &a_addr, true).await;
    assert_eq!(metric(&gw, &line).await, 1.0, "{line}");
    assert!(servers(&gw, 8).await.contains(&"a".to_string()), "a is back");
    assert!(a.checks() > 4 && b.checks() > 4, "both endpoints are checked: {} {}", a.checks(), b.checks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_endpoint_answers_503_or_the_fallback_cluster() {
    let a = Flaky::start("a", Mode::Ok).await;
    let backup = Flaky::start("backup", Mode::Ok).await;
    a.set_health(500);
    let hc = json!({"path": "/healthz", "interval_ms": 50, "timeout_ms": 40, "unhealthy_threshold": 1});
    let clusters = json!([
        {"name": "svc", "endpoints": [a.addr.to_string()], "health_check": hc},
        {"name": "backup", "endpoints": [backup.addr.to_string()]},
    ]);
    let routes = json!([
        {"name": "plain", "match": {"path": {"prefix": "/plain"}}, "cluster": "svc"},
        {"name": "to-backup", "match": {"path": {"prefix": "/b"}}, "cluster": "svc", "fallback": {"cluster": "backup"}},
        {"name": "to-page", "match": {"path": {"prefix": "/p"}}, "cluster": "svc",
         "fallback": {"direct_response": {"status": 200, "headers": {"content-type": "text/plain"}, "body": "maintenance\n"}}},
    ]);
    let gw = start(clusters, routes);
    wait_available(&gw, "svc", &a.addr.to_string(), false).await;

    let r = get(gw.main(), "/plain").await.expect("request");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "no_healthy_upstream", "{}", r.body);
    let r = get(gw.main(), "/b").await.expect("request");
    assert_eq!((r.status.as_u16(), r.json()["server"].as_str()), (200, Some("backup")), "{}", r.body);
    assert_eq!(r.header("x-weir-fallback"), "no_healthy_endpoint");
    let r = get(gw.main(), "/p").await.expect("request");
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "maintenance\n"));
    assert_eq!(r.header("x-weir-fallback"), "no_healthy_endpoint");
    assert_eq!(a.requests(), 0, "the unhealthy endpoint got nothing");
    for route in ["to-backup", "to-page"] {
        let line = format!("weir_route_fallbacks_total{{route=\"{route}\",reason=\"no_healthy_endpoint\"}}");
        assert_eq!(metric(&gw, &line).await, 1.0, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_5xx_eject_an_endpoint_for_a_growing_time() {
    let (bad, good) = (Flaky::start("bad", Mode::Status(500)).await, Flaky::start("good", Mode::Ok).await);
    let bad_addr = bad.addr.to_string();
    let od = json!({"consecutive_5xx": 3, "base_ejection_time_ms": 400, "max_ejection_percent": 50});
    let gw = start(
        json!([{"name": "svc", "endpoints": [bad_addr, good.addr.to_string()], "outlier_detection": od}]),
        json!([route("svc", json!({}))]),
    );
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(get(gw.main(), "/").await.expect("request").status.as_u16());
    }
    assert_eq!(bad.requests(), 3, "ejected after its third 5xx in a row: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3, "{statuses:?}");
    let line = format!("weir_upstream_ejections_total{{cluster=\"svc\",endpoint=\"{bad_addr}\",reason=\"5xx\"}}");
    assert_eq!(metric(&gw, &line).await, 1.0, "{line}");
    let view = endpoints(&gw, "svc").await;
    let e = view.iter().find(|e| e["address"] == bad_addr.as_str()).expect("listed");
    assert_eq!((e["available"].as_bool(), e["ejections"].as_u64()), (Some(false), Some(1)), "{e}");

    // Back after 400 ms; three more 5xx eject it again, now for 800 ms.
    wait_available(&gw, "svc", &bad_addr, true).await;
    for _ in 0..20 {
        get(gw.main(), "/").await.expect("request");
    }
    assert_eq!(bad.requests(), 6, "three more, then out again");
    let view = endpoints(&gw, "svc").await;
    let e = view.iter().find(|e| e["address"] == bad_addr.as_str()).expect("listed");
    assert_eq!(e["ejections"], 2, "{e}");
    assert!(e["ejected_for_ms"].as_u64().is_some_and(|ms| ms > 400), "the second ejection is longer: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejection_is_capped_at_the_configured_share_of_endpoints() {
    let servers: Vec<Flaky> = futures_join(["a", "b", "c"].map(|n| Flaky::start(n, Mode::Reset))).await;
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let od = json!({"consecutive_connect_failures": 2, "consecutive_5xx": 0, "base_ejection_time_ms": 60000, "max_ejection_percent": 34});
    let gw =
        start(json!([{"name": "svc", "endpoints": addrs, "outlier_detection": od}]), json!([route("svc", json!({}))]));
    for _ in 0..30 {
        let r = get(gw.main(), "/").await.expect("request");
        assert_eq!(r.status, 502, "{}", r.body);
    }
    let out = endpoints(&gw, "svc").await.iter().filter(|e| e["available"] == false).count();
    assert_eq!(out, 1, "34% of 3 endpoints: one ejected at most");
}

async fn futures_join<const N: usize>(futures: [impl std::future::Future<Output = Flaky>; N]) -> Vec<Flaky> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_cover_connect_failures_resets_statuses_and_slow_tries() {
    // (what the first endpoint does, retry policy, what the client must get)
    let good = Flaky::start("good", Mode::Ok).await;
    let cases = [
        (None, json!({}), "connect-failure (default conditions)"),
        (Some(Mode::Reset), json!({}), "reset (default conditions)"),
        (Some(Mode::Status(503)), json!({"retry_on": ["5xx"]}), "5xx"),
        (Some(Mode::Status(502)), json!({"retry_on": ["gateway-error"]}), "gateway-error"),
        (
            Some(Mode::Status(429)),
            json!({"retry_on": ["retriable-status-codes"], "retriable_status_codes": [429]}),
            "429",
        ),
        (Some(Mode::Hang), json!({"retry_on": ["reset"], "per_try_timeout_ms": 150}), "per-try timeout"),
    ];
    for (mode, policy, what) in cases {
        let bad = match mode {
            Some(m) => Some(Flaky::start("bad", m).await),
            None => None,
        };
        let bad_addr = bad.as_ref().map_or_else(closed_port, |b| b.addr.to_string());
        let mut retry = json!({"num_retries": 2, "base_interval_ms": 1});
        retry.as_object_mut().expect("object").extend(policy.as_object().expect("object").clone());
        let gw = start(
            json!([{"name": "svc", "endpoints": [bad_addr, good.addr.to_string()]}]),
            json!([route("svc", json!({"retry_policy": retry}))]),
        );
        let got = servers(&gw, 6).await;
        assert_eq!(got, vec!["good"; 6], "{what}: every request ends on the good endpoint");
        if let Some(bad) = &bad {
            assert!(bad.requests() >= 1, "{what}: the bad endpoint was tried");
        }
        let retries: f64 = metrics(&gw)
            .await
            .lines()
            .filter(|l| l.starts_with("weir_upstream_retries_total{cluster=\"svc\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(retries >= 1.0, "{what}: retries counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idempotent_methods_are_retried_unless_allowed_and_the_body_is_sent_again() {
    let bad = Flaky::start("bad", Mode::Status(503)).await;
    let echo = Upstream::start("echo").await;
    let clusters = json!([{"name": "svc", "endpoints": [bad.addr.to_string(), echo.addr.to_string()]}]);
    let policy =
        |all: bool| json!({"retry_on": ["5xx"], "num_retries": 2, "base_interval_ms": 1, "retry_non_idempotent": all});
    let routes = json!([
        {"name": "strict", "match": {"path": {"prefix": "/strict"}}, "cluster": "svc", "retry_policy": policy(false)},
        {"name": "all", "match": {"path": {"prefix": "/all"}}, "cluster": "svc", "retry_policy": policy(true)},
    ]);
    let gw = start(clusters, routes);
    let post = |path: &'static str| {
        call(
            gw.main(),
            &Proto::H1,
            request("POST", "api.test", path, &[("content-type", "application/json")], "{\"n\":1}", &Proto::H1),
        )
    };
    let mut strict = Vec::new();
    for _ in 0..6 {
        strict.push(post("/strict").await.expect("post").status.as_u16());
    }
    assert!(strict.contains(&503), "a POST is not retried by default: {strict:?}");
    for _ in 0..6 {
        let r: Reply = post("/all").await.expect("post");
        assert_eq!(r.status, 200, "retried: {}", r.body);
        assert_eq!(r.json()["body"], "{\"n\":1}", "the body arrives whole on the retry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_started_is_never_retried() {
    let dying = Flaky::start("dying", Mode::DieMidStream).await;
    let gw = start(
        json!([{"name": "svc", "endpoints": [dying.addr.to_string()]}]),
        json!([route("svc", json!({"retry_policy": {"retry_on": ["5xx", "reset"], "num_retries": 3}}))]),
    );
    let result = call(gw.main(), &Proto::H1, request("GET", "api.test", "/", &[], "", &Proto::H1)).await;
    assert!(result.is_err(), "the client sees the broken body, not a second answer: {:?}", result.map(|r| r.body));
    assert_eq!(dying.requests(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_retry_budget_makes_no_retry() {
    let bad = Flaky::start("bad", Mode::Status(503)).await;
    let gw = start(
        json!([{"name": "svc", "endpoints": [bad.addr.to_string()]}]),
        json!([route(
            "svc",
            json!({"retry_policy": {"retry_on": ["5xx"], "num_retries": 3, "budget_percent": 0, "min_retry_concurrency": 0}})
        )]),
    );
    for _ in 0..3 {
        assert_eq!(get(gw.main(), "/").await.expect("request").status, 503);
    }
    assert_eq!(bad.requests(), 3, "one try each");
    assert_eq!(metric(&gw, "weir_upstream_overflows_total{cluster=\"svc\",limit=\"retry_budget\"}").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breakers_answer_503_at_once_with_the_limit_named() {
    let slow = Flaky::start("slow", Mode::Slow(600)).await;
    let clusters = json!([
        {"name": "few-requests", "endpoints": [slow.addr.to_string()], "circuit_breakers": {"max_requests": 2}},
        {"name": "one-connection", "endpoints": [slow.addr.to_string()],
         "circuit_breakers": {"max_connections": 1, "max_pending_requests": 1}},
    ]);
    let routes = json!([
        {"name": "req", "match": {"path": {"prefix": "/req"}}, "cluster": "few-requests"},
        {"name": "conn", "match": {"path": {"prefix": "/conn"}}, "cluster": "one-connection"},
        {"name": "fb", "match": {"path": {"prefix": "/fb"}}, "cluster": "few-requests",
         "fallback": {"direct_response": {"status": 200, "body": "busy, try later\n"}}},
    ]);
    let gw = start(clusters, routes);
    for (path, n, limit) in [("/req", 5, "max_requests"), ("/conn", 3, "max_pending_requests")] {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let addr = gw.main();
                tokio::spawn(async move {
                    // Staggered so the first requests hold their places when the last arrive.
                    tokio::time::sleep(Duration::from_millis(60 * i)).await;
                    get(addr, path).await.expect("request")
                })
            })
            .collect();
        let mut replies = Vec::new();
        for t in tasks {
            replies.push(t.await.expect("task"));
        }
        let ok = replies.iter().filter(|r| r.status == 200).count();
        let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
        assert_eq!(ok + refused.len(), n as usize, "{path}: only 200 and 503");
        assert_eq!(ok, n as usize - refused.len());
        assert_eq!(
            refused.len(),
            if path == "/req" { 3 } else { 1 },
            "{path}: {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        for r in refused {
            assert_eq!(r.header("x-weir-overloaded"), limit, "{path}");
            assert_eq!(r.json()["error"]["code"], "circuit_open");
        }
    }
    // With a fallback, the refused requests get the fallback response.
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let addr = gw.main();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(60 * i)).await;
                get(addr, "/fb").await.expect("request")
            })
        })
        .collect();
    let mut fallback = 0;
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!(r.status, 200);
        if r.header("x-weir-fallback") == "circuit_open" {
            assert_eq!(r.body, "busy, try later\n");
            fallback += 1;
        }
    }
    assert_eq!(fallback, 1, "two in flight, the third falls back");
    assert_eq!(
        metric(&gw, "weir_upstream_overflows_total{cluster=\"few-requests\",limit=\"max_requests\"}").await,
        4.0
    );
}

#[test]
fn resilience_configuration_errors_say_where_and_how_to_fix() {
    let cases = [
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"], "health_check": {"interval_ms": 100}}),
            None,
            "$.clusters[0].health_check: missing required field \"path\" (like \"/healthz\")",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"], "health_check": {"path": "/h", "interval_ms": 100, "timeout_ms": 500}}),
            None,
            "$.clusters[0].health_check.timeout_ms: 500 ms is longer than interval_ms; a check must end before the next",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"], "health_check": {"path": "/h", "expected_statuses": ["200-9"]}}),
            None,
            "$.clusters[0].health_check.expected_statuses[0]: expected a status like 200 or a range like \"200-399\" (100 to 599)",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"], "outlier_detection": {"base_ejection_time_ms": 5000, "max_ejection_time_ms": 1000}}),
            None,
            "$.clusters[0].outlier_detection.max_ejection_time_ms: shorter than base_ejection_time_ms; the cap must allow the first ejection",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"], "circuit_breakers": {"max_request": 5}}),
            None,
            "$.clusters[0].circuit_breakers.max_request: unknown field \"max_request\"; did you mean \"max_requests\"?",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"]}),
            Some(json!({"retry_on": ["5xx", "timeout"]})),
            "$.routes[0].retry_policy.retry_on[1]: unknown retry condition \"timeout\"; use one of connect-failure, reset, 5xx, gateway-error, retriable-status-codes",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"]}),
            Some(json!({"retry_on": ["retriable-status-codes"]})),
            "$.routes[0].retry_policy: retry_on includes \"retriable-status-codes\": list them in \"retriable_status_codes\"",
        ),
        (
            json!({"name": "c", "endpoints": ["127.0.0.1:1"]}),
            Some(json!({"num_retries": 0})),
            "$.routes[0].retry_policy.num_retries: ",
        ),
    ];
    for (cluster, retry, want) in cases {
        let mut route = json!({"name": "r", "cluster": "c"});
        if let Some(retry) = retry {
            route["retry_policy"] = retry;
        }
        let config = json!({"clusters": [cluster], "routes": [route]}).to_string();
        let err = weir::config::Config::from_json(&config, "test.json", std::path::Path::new("."))
            .err()
            .unwrap_or_else(|| panic!("accepted: {config}"));
        let text = format!("{err:#}");
        assert!(text.contains(want), "want {want}\ngot {text}");
    }
    let fallback = json!({"clusters": [{"name": "c", "endpoints": ["127.0.0.1:1"]}],
                          "routes": [{"name": "r", "cluster": "c", "fallback": {"cluster": "nope"}}]})
    .to_string();
    let Err(err) = weir::config::Config::from_json(&fallback, "test.json", std::path::Path::new(".")) else {
        panic!("an unknown fallback cluster is refused");
    };
    assert!(
        format!("{err:#}").contains("$.routes[0].fallback.cluster: unknown cluster \"nope\"; defined clusters: c"),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failing_at_a_rate_is_masked_by_retries_and_every_retry_is_counted() {
    // Every third request the server gets fails (retries count too), and each is retried once on the same, only,
    // endpoint, whose next request succeeds.
    let flaky = Flaky::start("flaky", Mode::FailEvery(3)).await;
    let gw = start(
        json!([{"name": "svc", "endpoints": [flaky.addr.to_string()]}]),
        json!([route("svc", json!({"retry_policy": {"retry_on": ["5xx"], "num_retries": 1, "base_interval_ms": 0}}))]),
    );
    assert_eq!(servers(&gw, 30).await, vec!["flaky"; 30], "every answer the client saw is a 200");
    let tries = flaky.requests();
    assert_eq!(tries / 3, tries - 30, "every third try failed and was retried: {tries} tries for 30 requests");
    let retries = metric(&gw, "weir_upstream_retries_total{cluster=\"svc\",reason=\"status\"}").await;
    assert_eq!(retries, (tries - 30) as f64, "each retry counted");
    let text = metrics(&gw).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("weir_requests_total{route=\"r\",status_class=\"5xx\"") && l.ends_with(" 0")),
        "no 5xx reached a client:\n{}",
        text.lines().filter(|l| l.starts_with("weir_requests_total")).collect::<Vec<_>>().join("\n")
    );
}

/// The examples of docs/configuration.md ("Upstream resilience") and the README are valid as written.
#[test]
fn the_documented_resilience_examples_are_valid_configuration() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let blocks = |file: &str, after: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(root.join(file)).expect("doc");
        let section = &text[text.find(after).unwrap_or_else(|| panic!("{file}: no {after}"))..];
        section
            .split("```json\n")
            .skip(1)
            .take(2)
            .map(|b| serde_json::from_str(&b[..b.find("```").expect("closed")]).expect("JSON"))
            .collect()
    };
    let doc = blocks("docs/configuration.md", "## Upstream resilience");
    let (cluster, route) = (doc[0].clone(), doc[1].clone());
    let readme_route = blocks("README.md", "### When a backend fails")[0].clone();
    let config = json!({
        "listeners": [{"name": "main", "address": "127.0.0.1:8080"}],
        "clusters": [cluster, {"name": "orders-standby", "endpoints": ["127.0.0.1:1"]}, {"name": "api", "endpoints": ["127.0.0.1:2"]}],
        "routes": [route, readme_route],
    });
    if let Err(e) = weir::config::Config::from_json(&config.to_string(), "docs", std::path::Path::new(".")) {
        panic!("the documented examples are refused: {e:#}");
    }
}

/// A filter that answers a request from its final request body callback, after the headers went upstream,
/// abandons that try: the gateway's doing, not the endpoint's, so outlier detection does not count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_a_filter_answers_from_its_body_does_not_count_against_the_endpoint() {
    let up = Flaky::start("svc", Mode::Slow(50)).await;
    let od = json!({"consecutive_connect_failures": 2, "consecutive_5xx": 2, "base_ejection_time_ms": 60000, "max_ejection_percent": 100});
    let filters = json!([{"name": "judge", "module": weir_tests::filters::PAUSE_RESUME_WASM}]);
    let gw = start(
        json!([{"name": "svc", "endpoints": [up.addr.to_string()], "outlier_detection": od}]),
        json!([route("svc", json!({"filters": filters}))]),
    );
    let headers = [("x-inspect-request", "body"), ("content-type", "text/plain")];
    for _ in 0..6 {
        let r = call(gw.main(), &Proto::H1, request("POST", "api.test", "/", &headers, "please reject me", &Proto::H1))
            .await
            .expect("request");
        assert_eq!((r.status.as_u16(), r.body.as_str()), (403, "rejected by its body"));
    }
    let e = &endpoints(&gw, "svc").await[0];
    assert_eq!((&e["available"], &e["ejections"]), (&json!(true), &json!(0)), "{e}");
    let r = call(gw.main(), &Proto::H1, request("POST", "api.test", "/", &headers, "fine", &Proto::H1))
        .await
        .expect("request");
    assert_eq!(r.status, 200, "the endpoint still serves: {}", r.body);
}
