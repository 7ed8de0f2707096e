use super::*;

/// `[(":path", "/"), ("x", "ab")]`, the worked example of the proxy-wasm reference (§2.1).
#[rustfmt::skip]
const GOLDEN: [u8; 33] = [
    0x02, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x3a, 0x70, 0x61, 0x74, 0x68, 0x00, 0x2f, 0x00,
    0x78, 0x00, 0x61, 0x62, 0x00,
];

const GOLDEN_PAIRS: [(&[u8], &[u8]); 2] = [(b":path", b"/"), (b"x", b"ab")];

#[test]
fn golden_example_encodes_to_exactly_its_bytes() {
    assert_eq!(encode_pairs(&[(":path", "/"), ("x", "ab")]), GOLDEN);
    assert_eq!(encode_pairs(&GOLDEN_PAIRS), GOLDEN);
}

#[test]
fn golden_example_decodes_back() {
    assert_eq!(decode_pairs(&GOLDEN), Ok(GOLDEN_PAIRS.to_vec()));
}

#[test]
fn round_trips() {
    let table: &[&[(&[u8], &[u8])]] = &[
        &[(b"", b"")],
        &[(b"content-type", b"text/plain")],
        &[(b"a", b"1"), (b"a", b"2"), (b"b", b"")],
        &[(b"bin", b"\0\xff\0"), (b"\0", b"x")],
    ];
    for &pairs in table {
        let bytes = encode_pairs(pairs);
        assert_eq!(bytes.len(), 4 + pairs.iter().map(|(k, v)| 10 + k.len() + v.len()).sum::<usize>(), "{pairs:?}");
        assert_eq!(decode_pairs(&bytes), Ok(pairs.to_vec()), "{pairs:?}");
    }
}

#[test]
fn empty_map_encodes_to_no_bytes() {
    let none: &[(&str, &str)] = &[];
    assert_eq!(encode_pairs(none), Vec::<u8>::new());
}

#[test]
fn empty_forms_decode_to_no_pairs() {
    let table: &[&[u8]] = &[b"", b"\0", b"\0\0\0\0"];
    for &bytes in table {
        assert_eq!(decode_pairs(bytes), Ok(Vec::new()), "{bytes:?}");
    }
}

#[test]
fn every_error_has_a_crafted_input() {
    let mut missing_key_nul = GOLDEN;
    missing_key_nul[25] = b'!';
    let mut missing_last_nul = GOLDEN;
    missing_last_nul[32] = b'!';
    let mut trailing = GOLDEN.to_vec();
    trailing.push(0);
    let table: &[(&str, &[u8], PairsError)] = &[
        ("over 1 MiB", &[0; MAX_PAIRS_BYTES + 1], PairsError::TooLarge),
        ("count 1025", &[0x01, 0x04, 0, 0], PairsError::TooManyPairs { count: 1025 }),
        ("count u32::MAX", &[0xff; 4], PairsError::TooManyPairs { count: u32::MAX }),
        ("one non-zero byte", &[1], PairsError::Truncated),
        ("three bytes", &[0, 0, 0], PairsError::Truncated),
        ("count without lengths", &[1, 0, 0, 0], PairsError::Truncated),
        ("half the lengths", &[1, 0, 0, 0, 1, 0, 0, 0], PairsError::Truncated),
        ("lengths without data", &GOLDEN[..20], PairsError::Truncated),
        ("last NUL cut off", &GOLDEN[..32], PairsError::Truncated),
        ("key length past the end", &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, b'k', 0], PairsError::Truncated),
        ("no NUL after the first key", &missing_key_nul, PairsError::MissingNul { index: 0 }),
        ("no NUL after the last value", &missing_last_nul, PairsError::MissingNul { index: 1 }),
        ("a byte after the last pair", &trailing, PairsError::TrailingBytes { extra: 1 }),
        ("zero count then data", &[0, 0, 0, 0, 7, 7], PairsError::TrailingBytes { extra: 2 }),
    ];
    for (name, bytes, error) in table {
        assert_eq!(decode_pairs(bytes), Err(*error), "{name}");
    }
}

#[test]
fn exactly_1_mib_is_accepted() {
    let value = vec![b'v'; MAX_PAIRS_BYTES - 4 - 8 - 2 - 1];
    let bytes = encode_pairs(&[(&b"k"[..], &value[..])]);
    assert_eq!(bytes.len(), MAX_PAIRS_BYTES);
    assert_eq!(decode_pairs(&bytes), Ok(vec![(&b"k"[..], &value[..])]));
}

#[test]
fn at_most_1024_pairs_are_accepted() {
    let pairs: Vec<(String, String)> = (0..=MAX_PAIRS).map(|i| (format!("k{i}"), i.to_string())).collect();
    let at_limit = encode_pairs(&pairs[..MAX_PAIRS]);
    assert_eq!(decode_pairs(&at_limit).map(|decoded| decoded.len()), Ok(MAX_PAIRS));
    let over_limit = encode_pairs(&pairs);
    assert_eq!(decode_pairs(&over_limit), Err(PairsError::TooManyPairs { count: 1025 }));
}

#[test]
fn errors_explain_themselves() {
    let table = [
        (PairsError::TooLarge, "serialized pairs exceed the limit of 1048576 bytes"),
        (PairsError::TooManyPairs { count: 1025 }, "1025 pairs exceed the limit of 1024"),
        (PairsError::Truncated, "serialized pairs end before the data their header announces"),
        (PairsError::MissingNul { index: 3 }, "the key or value of pair 3 is not followed by NUL"),
        (PairsError::TrailingBytes { extra: 2 }, "2 bytes follow the last pair"),
    ];
    for (error, message) in table {
        assert_eq!(error.to_string(), message);
    }
}
