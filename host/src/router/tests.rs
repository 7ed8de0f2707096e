//! Route matching and path rewriting, table-driven.

use super::*;
use crate::config::Config;
use std::path::Path;

fn router(routes: &str) -> Router {
    let json = format!(
        r#"{{"listeners": [{{"name": "m", "address": "127.0.0.1:0"}}], "clusters": [{{"name": "c", "endpoints": ["h:1"]}}], "routes": {routes}}}"#
    );
    let config = Config::from_json(&json, "t.json", Path::new("")).unwrap();
    Router::new(&config.routes).unwrap()
}

#[test]
fn rewrite_path_table() {
    for (prefix, rewrite, path, want) in [
        ("/api", "/", "/api/users", "/users"),
        ("/api/", "/", "/api/users", "/users"),
        ("/api", "/v2", "/api/users", "/v2/users"),
        ("/api", "/v2/", "/api/users", "/v2/users"),
        ("/api", "/v2", "/api", "/v2"),
        ("/api", "/", "/api", "/"),
        ("/api", "/v2", "/apiusers", "/v2/users"),
    ] {
        let r = router(&format!(
            r#"[{{"name": "r", "match": {{"path": {{"prefix": "{prefix}"}}}}, "prefix_rewrite": "{rewrite}", "cluster": "c"}}]"#
        ));
        assert_eq!(r.routes()[0].rewrite_path(path), want, "{prefix} -> {rewrite} on {path}");
    }
}

#[test]
fn host_matching_table() {
    let r = router(
        r#"[{"name": "exact", "match": {"host": ["a.test", "B.test"]}, "cluster": "c"},
                       {"name": "wild", "match": {"host": "*.test"}, "cluster": "c"}]"#,
    );
    let headers = HeaderMap::new();
    for (host, want) in [
        ("a.test", Some("exact")),
        ("b.test", Some("exact")),
        ("c.test", Some("wild")),
        ("x.y.test", Some("wild")),
        ("test", None),
        ("atest", None),
    ] {
        let found = r.find(&RequestView { host, path: "/", method: &Method::GET, headers: &headers });
        assert_eq!(found.map(|r| &*r.name), want, "{host}");
    }
}
