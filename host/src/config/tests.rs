//! Malformed configurations and the exact errors they must produce.

use super::*;

fn errors(json: &str) -> Vec<String> {
    match Config::from_json(json, "gw.json", Path::new("/nonexistent-base")) {
        Ok(_) => vec![],
        Err(ConfigError::Invalid { issues, .. }) => issues.iter().map(|i| i.to_string()).collect(),
        Err(other) => vec![other.to_string()],
    }
}

const L: &str = r#""listeners": [{"name": "main", "address": "127.0.0.1:8080"}]"#;

#[test]
fn malformed_configurations_give_exact_errors() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("{".into(), vec!["gw.json:1:1: not valid JSON: EOF while parsing an object"]),
        ("[]".into(), vec!["$: expected an object, found an array"]),
        ("{}".into(), vec![r#"$: missing required field "listeners"; add at least one, like {"name": "main", "address": "127.0.0.1:8080"}"#]),
        (
            r#"{"listeners": [{"name": "main", "address": "localhost:80"}]}"#.into(),
            vec![r#"$.listeners[0].address: "localhost:80" is not an IP address and port; write it like "127.0.0.1:8080" or "[::1]:8080""#],
        ),
        (
            format!(r#"{{{L}, "routes": [{{"name": "r", "cluster": "nope"}}], "clusters": [{{"name": "api", "endpoints": ["127.0.0.1:3000"]}}]}}"#),
            vec![r#"$.routes[0].cluster: unknown cluster "nope"; defined clusters: api"#],
        ),
        (
            format!(r#"{{{L}, "routes": [{{"name": "r", "match": {{"path": {{"regex": "/a(b"}}}}, "direct_response": {{"status": 200}}}}]}}"#),
            vec![r#"$.routes[0].match.path.regex: invalid regular expression "/a(b": error: unclosed group"#],
        ),
        (
            format!(r#"{{{L}, "routes": [{{"name": "r"}}]}}"#),
            vec![r#"$.routes[0]: a route needs exactly one of "cluster" (proxy upstream) or "direct_response" (answer directly)"#],
        ),
        (
            format!(r#"{{{L}, "clusters": [{{"name": "c", "endpoints": [], "lb_policy": "random"}}]}}"#),
            vec![
                r#"$.clusters[0].endpoints: no endpoints; list at least one, like [{"address": "127.0.0.1:3000"}]"#,
                r#"$.clusters[0].lb_policy: unknown lb_policy "random"; use "round_robin", "least_request" or "consistent_hash""#,
            ],
        ),
        (
            format!(r#"{{{L}, "clusters": [{{"name": "c", "endpoints": [{{"address": "127.0.0.1", "weight": 0}}], "connect_timeout_ms": "5s"}}]}}"#),
            vec![
                "$.clusters[0].endpoints[0].weight: 0 is out of range; use a whole number from 1 to 1000",
                r#"$.clusters[0].endpoints[0].address: "127.0.0.1" is not "host:port"; write it like "127.0.0.1:3000" or "api.internal:443""#,
                "$.clusters[0].connect_timeout_ms: expected a whole number from 1 to 86400000, found a string",
            ],
        ),
        (
            format!(r#"{{{L}, "routes": [{{"name": "a", "direct_response": {{"status": 200}}}}, {{"name": "a", "direct_response": {{"status": 99}}}}]}}"#),
            vec![
                r#"$.routes[1].name: duplicate route name "a"; names must be unique"#,
                "$.routes[1].direct_response.status: 99 is out of range; use a whole number from 200 to 599",
            ],
        ),
        (
            format!(r#"{{{L}, "rotues": []}}"#),
            vec![r#"$.rotues: unknown field "rotues"; did you mean "routes"?"#],
        ),
        (
            format!(r#"{{{L}, "routes": [{{"name": "r", "match": {{"path": {{"exact": "/a"}}}}, "prefix_rewrite": "/b", "request_headers_to_add": {{"bad header": "x"}}, "direct_response": {{"status": 200}}}}]}}"#),
            vec![
                r#"$.routes[0].prefix_rewrite: prefix_rewrite needs a prefix path match ({"path": {"prefix": "/api"}})"#,
                r#"$.routes[0].request_headers_to_add.bad header: "bad header" is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"#,
            ],
        ),
        (
            r#"{"listeners": [{"name": "a", "address": "127.0.0.1:8080", "tls": {"certificates": [{"cert": "missing.pem", "key": "missing.key"}]}}, {"name": "b", "address": "127.0.0.1:8080"}], "admin": {"address": "127.0.0.1:8080", "token": "short"}}"#.into(),
            vec![
                "$.listeners[0].tls.certificates[0].cert: file /nonexistent-base/missing.pem does not exist or is not a regular file",
                "$.listeners[0].tls.certificates[0].key: file /nonexistent-base/missing.key does not exist or is not a regular file",
                "$.listeners[1].address: 127.0.0.1:8080 is used by another listener; each listener needs its own address",
                "$.admin.token: the admin token must be at least 16 characters with no spaces; or leave it out and Weir generates one in the data directory",
                r#"$.admin.address: 127.0.0.1:8080 is also the address of listener "a"; give the admin API its own port"#,
            ],
        ),
        (
            format!(r#"{{{L}, "routes": [{{"name": "r", "match": {{"host": "https://x.com", "methods": ["GE T"], "headers": [{{"name": "x", "value": "1", "present": true}}]}}, "direct_response": {{"status": 200}}}}]}}"#),
            vec![
                r#"$.routes[0].match.host: "https://x.com" is not a host name or a "*.example.com" wildcard (no port, no scheme)"#,
                r#"$.routes[0].match.methods[0]: "GE T" is not an HTTP method"#,
                r#"$.routes[0].match.headers[0]: give either "value" or "present", not both"#,
            ],
        ),
        (
            format!(r#"{{{L}, "workers": 0, "logging": {{"format": "xml"}}, "clusters": [{{"name": "c", "endpoints": ["a:1"], "hash_on": "client_ip"}}]}}"#),
            vec![
                "$.workers: 0 is out of range; use a whole number from 1 to 256",
                r#"$.clusters[0].hash_on: hash_on only applies to "lb_policy": "consistent_hash""#,
                r#"$.logging.format: unknown log format "xml"; use "human" or "json""#,
            ],
        ),
    ];
    assert!(cases.len() >= 10);
    for (json, want) in cases {
        assert_eq!(errors(&json), want, "config: {json}");
    }
}

#[test]
fn rendered_error_names_the_file_and_counts() {
    let err = Config::from_json(r#"{"listeners": [], "x": 1}"#, "gw.json", Path::new("")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gw.json: 2 errors in the configuration\n  gw.json: $.listeners: no listeners; add at least one, like {\"name\": \"main\", \"address\": \"127.0.0.1:8080\"}\n  gw.json: $.x: unknown field \"x\"; known fields: workers, data_dir, listeners, admin, clusters, routes, shutdown, logging, registry"
    );
}

#[test]
fn defaults_are_applied() {
    let c = Config::from_json(
        r#"{"listeners": [{"name": "m", "address": "127.0.0.1:0"}], "clusters": [{"name": "c", "endpoints": ["h:1"]}]}"#,
        "gw.json",
        Path::new("/base"),
    )
    .unwrap();
    assert_eq!(c.admin.address.to_string(), "127.0.0.1:9901");
    assert_eq!(c.data_dir, PathBuf::from("weir-data"));
    assert_eq!(c.drain_timeout, Duration::from_secs(10));
    assert_eq!(c.logging.format, LogFormat::Human);
    assert!(c.logging.access_log);
    let k = &c.clusters[0];
    assert_eq!(k.lb_policy, LbPolicy::RoundRobin);
    assert_eq!(
        (k.connect_timeout, k.request_timeout, k.idle_timeout),
        (Duration::from_secs(5), Duration::from_secs(15), Duration::from_secs(60))
    );
    assert_eq!(k.endpoints[0].weight, 1);
    assert_eq!(c.listeners[0].idle_timeout, Duration::from_secs(60));
}

#[test]
fn the_embedded_default_is_valid() {
    let c = Config::embedded_default();
    assert_eq!(c.listeners[0].address.to_string(), "127.0.0.1:8080");
    assert_eq!(c.admin.address.to_string(), "127.0.0.1:9901");
    assert_eq!(c.data_dir, PathBuf::from("./weir-data"));
    assert!(matches!(c.routes[0].action, RouteAction::Direct(_)));
}
