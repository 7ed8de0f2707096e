use super::*;
use serde_json::json;

fn version(name: &str, v: &str, digest: &str) -> FilterVersion {
    FilterVersion {
        name: name.into(),
        version: v.into(),
        digest: format!("sha256:{digest}"),
        size: 3,
        abi: "0.2.1".into(),
        description: String::new(),
        config_schema: None,
        signed_by: None,
        published_at: 1,
    }
}

#[test]
fn a_committed_change_is_there_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let reg = Registry::open(dir.path()).expect("open");
        assert_eq!(reg.state().expect("state").generation, 0);
        let change = Change {
            put_blobs: vec![("aa".into(), b"abc".to_vec())],
            put_filters: vec![version("auth", "1.0.0", "aa"), version("auth", "0.9.0", "aa")],
            put_clusters: vec![("api".into(), json!({"name": "api", "endpoints": [{"address": "127.0.0.1:1"}]}))],
            put_routes: vec![
                ("b".into(), json!({"name": "b", "cluster": "api"})),
                ("a".into(), json!({"name": "a", "cluster": "api"})),
            ],
            route_order: Some(vec!["b".into(), "a".into()]),
            ..Change::default()
        };
        assert_eq!(reg.commit(&change).expect("commit"), 1);
    }
    let reg = Registry::open(dir.path()).expect("reopen");
    let state = reg.state().expect("state");
    assert_eq!(state.generation, 1);
    let versions: Vec<String> = state.filters.iter().map(FilterVersion::key).collect();
    assert_eq!(versions, ["auth@0.9.0", "auth@1.0.0"], "sorted by semver");
    let routes: Vec<&str> = state.routes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(routes, ["b", "a"], "declared order, not key order");
    assert_eq!(state.routes_to_cluster("api"), ["b", "a"]);
    assert_eq!(reg.blob("aa").expect("blob"), Some(b"abc".to_vec()));
    assert!(state.digest_shared("sha256:aa", ("auth", "1.0.0")));

    let removal = Change {
        remove_filters: vec![("auth".into(), "0.9.0".into())],
        remove_routes: vec!["b".into()],
        route_order: Some(vec!["a".into()]),
        ..Change::default()
    };
    assert_eq!(reg.commit(&removal).expect("commit"), 2);
    let state = reg.state().expect("state");
    assert_eq!(state.filters.len(), 1);
    assert_eq!(state.routes.len(), 1);
}

#[test]
fn a_route_order_naming_a_missing_route_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::open(dir.path()).expect("open");
    reg.commit(&Change { route_order: Some(vec!["ghost".into()]), ..Change::default() }).expect("commit");
    let err = reg.state().expect_err("corrupt");
    assert_eq!(
        err.to_string(),
        "registry record meta/route_order is not valid: names route \"ghost\", which is not stored"
    );
}
