//! Shared data: bytes and JSON values, CAS, and the `update` retry loop under contention.

use weir_sdk::prelude::*;
use weir_sdk::shared::{Cas, SharedError};

use super::{scripted, Phase};

/// Runs `check` in a request headers callback; returns the host.
fn during_request(check: fn()) -> weir_sdk::testing::FakeHost<super::Scripted> {
    let mut host = scripted(move |phase| {
        if let Phase::RequestHeaders(..) = phase {
            check();
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[], true);
    host
}

#[test]
fn bytes_round_trip_and_cas_guards_writes() {
    let host = during_request(|| {
        assert_eq!(shared::get_bytes("k"), Ok(None));
        shared::set_bytes("k", b"v1", None).unwrap();
        let (value, cas) = shared::get_bytes("k").unwrap().unwrap();
        assert_eq!(value, b"v1");
        shared::set_bytes("k", b"v2", Some(cas)).unwrap();
        assert_eq!(shared::set_bytes("k", b"v3", Some(cas)), Err(Status::CasMismatch), "stale CAS");
        let (value, newer) = shared::get_bytes("k").unwrap().unwrap();
        assert_eq!(value, b"v2");
        assert_ne!(newer, cas);
        assert_ne!(newer, Cas(0));
        shared::set_bytes("k", b"", None).unwrap();
        assert_eq!(shared::get_bytes("k").unwrap().map(|(v, _)| v), Some(Vec::new()));
    });
    assert_eq!(host.shared_data("k"), Some(Vec::new()));
}

#[test]
fn typed_values_are_json() {
    let host = during_request(|| {
        shared::set("limits", &vec![10u32, 20], None).unwrap();
        let (limits, _) = shared::get::<Vec<u32>>("limits").unwrap().unwrap();
        assert_eq!(limits, [10, 20]);
        assert!(matches!(shared::get::<String>("limits"), Err(SharedError::Json(_))));
        shared::set_bytes("empty", b"", None).unwrap();
        assert!(shared::get::<u32>("empty").unwrap().is_none(), "an empty value reads as absent");
        assert!(shared::get::<u32>("never").unwrap().is_none());
    });
    assert_eq!(host.shared_data("limits"), Some(b"[10,20]".to_vec()));
}

#[test]
fn update_retries_when_another_writer_wins() {
    let host = during_request(|| {
        // First attempt: someone else writes between our read and our write.
        let mut attempts = 0;
        let hits = shared::update("hits", 3, |hits: Option<u64>| {
            attempts += 1;
            if attempts == 1 {
                shared::set("hits", &100u64, None).unwrap();
            }
            hits.unwrap_or(0) + 1
        })
        .unwrap();
        assert_eq!((hits, attempts), (101, 2));

        // Every attempt loses: Contended after retries + 1 tries.
        let mut tries = 0;
        let error = shared::update("hits", 2, |hits: Option<u64>| {
            tries += 1;
            shared::set("hits", &0u64, None).unwrap();
            hits.unwrap_or(0) + 1
        })
        .unwrap_err();
        assert!(matches!(error, SharedError::Contended { attempts: 3 }), "{error}");
        assert_eq!(tries, 3);

        let bytes = shared::update_bytes("flag", 1, |old| {
            assert_eq!(old, None);
            b"on".to_vec()
        })
        .unwrap();
        assert_eq!(bytes, b"on");
        let bytes = shared::update_bytes("flag", 1, |old| [old.unwrap(), b"!"].concat()).unwrap();
        assert_eq!(bytes, b"on!");
    });
    assert_eq!(host.shared_data("hits"), Some(b"0".to_vec()));
}

#[test]
fn writes_from_other_vms_are_seen() {
    let mut host = scripted(|phase| {
        if let Phase::RequestHeaders(..) = phase {
            let (value, _) = shared::get::<String>("banner").unwrap().unwrap();
            http::request_headers().set("x-banner", &value);
        }
        Action::Continue
    });
    host.set_shared_data("banner", b"\"hi\"");
    let mut stream = host.stream();
    stream.send_request_headers(&[], true);
    assert_eq!(stream.request_header("x-banner").as_deref(), Some("hi"));
}
