//! Properties: the named helpers, the generic typed `property::get`, `set`, and the value codecs.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use weir_sdk::abi::{encode_bool, encode_f64, encode_i64, encode_list, encode_map, encode_u64};
use weir_sdk::prelude::*;
use weir_sdk::property::PropertyValue;

use super::{scripted, Phase};

#[test]
fn named_helpers_read_their_paths() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let out = seen.clone();
    let mut host = scripted(move |phase| {
        if let Phase::Log = phase {
            let mut seen = out.borrow_mut();
            seen.push(format!("{:?}", property::request_path()));
            seen.push(format!("{:?}", property::request_url_path()));
            seen.push(format!("{:?}", property::request_query()));
            seen.push(format!("{:?}", property::request_method()));
            seen.push(format!("{:?}", property::request_host()));
            seen.push(format!("{:?}", property::request_scheme()));
            seen.push(format!("{:?}", property::request_id()));
            seen.push(format!("{:?}", property::request_protocol()));
            seen.push(format!("{:?}", property::request_time()));
            seen.push(format!("{:?}", property::request_duration()));
            seen.push(format!("{:?}", property::response_code()));
            seen.push(format!("{:?}", property::source_address()));
            seen.push(format!("{:?}", property::destination_address()));
            seen.push(format!("{:?}", property::connection_id()));
            seen.push(format!("{:?}", property::route_name()));
            seen.push(format!("{:?}", property::cluster_name()));
            seen.push(format!("{:?}", property::plugin_name()));
            seen.push(format!("{:?}", property::plugin_root_id()));
            seen.push(format!("{:?}", property::plugin_vm_id()));
        }
        Action::Continue
    });
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    host.set_property(&["request", "protocol"], "HTTP/2");
    host.set_property(&["request", "time"], encode_i64(1_700_000_000_000_000_000));
    host.set_property(&["request", "duration"], encode_i64(1_500_000));
    host.set_property(&["source", "address"], "10.0.0.1:51234");
    host.set_property(&["destination", "address"], "[::1]:8080");
    host.set_property(&["connection", "id"], encode_u64(42));
    host.set_property(&["xds", "route_name"], "api");
    host.set_property(&["xds", "cluster_name"], "backend");
    host.set_property(&["plugin_name"], "auth");
    host.set_property(&["plugin_vm_id"], "");
    let mut stream = host.stream();
    stream.send_request_headers(
        &[
            (":method", "POST"),
            (":path", "/a/b?x=1"),
            (":authority", "example.com"),
            (":scheme", "http"),
            ("x-request-id", "r-1"),
        ],
        false,
    );
    stream.send_response_headers(&[(":status", "201")], true);
    stream.finish();
    let expected = [
        r#"Some("/a/b?x=1")"#.to_string(),
        r#"Some("/a/b")"#.into(),
        r#"Some("x=1")"#.into(),
        r#"Some("POST")"#.into(),
        r#"Some("example.com")"#.into(),
        r#"Some("http")"#.into(),
        r#"Some("r-1")"#.into(),
        r#"Some("HTTP/2")"#.into(),
        format!("{:?}", Some(start)),
        "Some(1.5ms)".into(),
        "Some(201)".into(),
        format!("{:?}", Some("10.0.0.1:51234".parse::<SocketAddr>().unwrap())),
        "Some([::1]:8080)".into(),
        "Some(42)".into(),
        r#"Some("api")"#.into(),
        r#"Some("backend")"#.into(),
        r#"Some("auth")"#.into(),
        "None".into(),
        r#"Some("")"#.into(),
    ];
    assert_eq!(*seen.borrow(), expected);
}

#[test]
fn values_decode_with_the_abi_encodings_and_reject_others() {
    let time = UNIX_EPOCH + Duration::from_nanos(1_234);
    let before = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(i64::decode(encode_i64(-7).to_vec()), Some(-7));
    assert_eq!(u64::decode(encode_u64(7).to_vec()), Some(7));
    assert_eq!(bool::decode(encode_bool(true).to_vec()), Some(true));
    assert_eq!(f64::decode(encode_f64(0.25).to_vec()), Some(0.25));
    assert_eq!(String::decode(b"abc".to_vec()), Some("abc".to_string()));
    assert_eq!(String::decode(vec![0xff]), None);
    assert_eq!(Vec::<u8>::decode(vec![0xff]), Some(vec![0xff]));
    assert_eq!(Duration::decode(encode_i64(5).to_vec()), Some(Duration::from_nanos(5)));
    assert_eq!(Duration::decode(encode_i64(-5).to_vec()), None);
    assert_eq!(SystemTime::decode(encode_i64(1_234).to_vec()), Some(time));
    assert_eq!(SystemTime::decode(encode_i64(-1_000_000_000).to_vec()), Some(before));
    let map = Vec::<(String, String)>::decode(encode_map(&[("a", "1"), ("b", "2")]));
    assert_eq!(map, Some(vec![("a".into(), "1".into()), ("b".into(), "2".into())]));
    assert_eq!(Vec::<String>::decode(encode_list(&["x", "y"])), Some(vec!["x".into(), "y".into()]));
    for bytes in [vec![], vec![1, 2, 3]] {
        assert_eq!(i64::decode(bytes.clone()), None);
        assert_eq!(u64::decode(bytes.clone()), None);
        assert_eq!(bool::decode(bytes.clone()), None);
        assert_eq!(f64::decode(bytes), None);
    }
    // And back, byte for byte.
    assert_eq!(time.encode(), encode_i64(1_234));
    assert_eq!(before.encode(), encode_i64(-1_000_000_000));
    assert_eq!(Duration::from_millis(2).encode(), encode_i64(2_000_000));
    assert_eq!(true.encode(), [1]);
    assert_eq!(vec![("k".to_string(), "v".to_string())].encode(), encode_map(&[("k", "v")]));
    assert_eq!(vec!["x".to_string()].encode(), encode_list(&["x"]));
}

#[test]
fn generic_get_reads_any_path_and_set_is_per_stream() {
    let mut host = scripted(|phase| {
        match phase {
            Phase::RequestHeaders(..) => {
                assert_eq!(property::get::<bool>(&["connection", "mtls"]), Some(false));
                assert_eq!(property::get::<i64>(&["request", "size"]), Some(12));
                assert_eq!(property::get_bytes(&["missing"]), None);
                assert_eq!(property::get::<String>(&["request", "headers", "user-agent"]).as_deref(), Some("curl"));
                property::set(&["tenant"], &"acme".to_string()).unwrap();
                assert_eq!(property::get::<String>(&["tenant"]).as_deref(), Some("acme"));
                time::set_tick_period(Duration::from_millis(10));
            }
            Phase::Tick => {
                assert_eq!(property::set(&["tenant"], &1i64), Err(Status::NotFound), "no stream");
            }
            _ => {}
        }
        Action::Continue
    });
    host.set_property(&["connection", "mtls"], encode_bool(false));
    host.set_property(&["request", "size"], encode_i64(12));
    let mut stream = host.stream();
    stream.send_request_headers(&[("user-agent", "curl")], true);
    assert_eq!(stream.property(&["tenant"]), Some(b"acme".to_vec()));
    let other = host.stream().id();
    assert_eq!(host.stream_by_id(other).unwrap().property(&["tenant"]), None);
    assert!(host.tick());
}
