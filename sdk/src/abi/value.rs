//! Property value encodings, for values a host returns from `proxy_get_property`.
//!
//! Strings and bytes are their raw bytes, with no terminator. Timestamps are [`encode_i64`] of Unix nanoseconds and
//! durations [`encode_i64`] of nanoseconds. Protobuf messages are their serialized wire bytes.
//!
//! Each `encode_*` has a `decode_*` that accepts exactly what it produces (guests read properties with them).

use super::pairs;

/// An `int` property (also timestamps and durations, in nanoseconds): 8 bytes little-endian.
pub fn encode_i64(value: i64) -> [u8; 8] {
    value.to_le_bytes()
}

/// A `uint` property: 8 bytes little-endian.
pub fn encode_u64(value: u64) -> [u8; 8] {
    value.to_le_bytes()
}

/// A `bool` property: one byte, 0 or 1.
pub fn encode_bool(value: bool) -> [u8; 1] {
    [u8::from(value)]
}

/// A `double` property: the IEEE 754 bits, 8 bytes little-endian.
pub fn encode_f64(value: f64) -> [u8; 8] {
    value.to_le_bytes()
}

/// A `map` property: the pairs layout, values already encoded. An empty map is empty bytes, as in
/// [`encode_pairs`](super::encode_pairs).
pub fn encode_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(entries: &[(K, V)]) -> Vec<u8> {
    super::encode_pairs(entries)
}

/// A `list` property: the pairs layout with each element as a key and an empty value. An empty list is empty bytes.
pub fn encode_list<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    pairs::encode(items.iter().map(|item| (item.as_ref(), &[][..])))
}

/// Reads an `int` property (also timestamps and durations): exactly 8 bytes little-endian, else `None`.
pub fn decode_i64(bytes: &[u8]) -> Option<i64> {
    bytes.try_into().ok().map(i64::from_le_bytes)
}

/// Reads a `uint` property: exactly 8 bytes little-endian, else `None`.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_le_bytes)
}

/// Reads a `bool` property: exactly one byte, 0 or 1, else `None`.
pub fn decode_bool(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [0] => Some(false),
        [1] => Some(true),
        _ => None,
    }
}

/// Reads a `double` property: exactly 8 bytes, the IEEE 754 bits little-endian, else `None`.
pub fn decode_f64(bytes: &[u8]) -> Option<f64> {
    bytes.try_into().ok().map(f64::from_le_bytes)
}

/// Reads a `list` property: the elements, the keys of the pairs layout (values are ignored). `None` when the bytes
/// are not the pairs layout.
pub fn decode_list(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    pairs::decode_pairs(bytes).ok().map(|pairs| pairs.into_iter().map(|(item, _)| item).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_invert_the_encoders_byte_for_byte() {
        assert_eq!(decode_i64(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Some(-2));
        assert_eq!(decode_i64(&encode_i64(i64::MIN)), Some(i64::MIN));
        assert_eq!(decode_u64(&[200, 0, 0, 0, 0, 0, 0, 0]), Some(200));
        assert_eq!(decode_u64(&encode_u64(u64::MAX)), Some(u64::MAX));
        assert_eq!(decode_bool(&[0]), Some(false));
        assert_eq!(decode_bool(&[1]), Some(true));
        assert_eq!(decode_f64(&[0, 0, 0, 0, 0, 0, 0xe0, 0xbf]), Some(-0.5));
        assert_eq!(decode_list(&encode_list(&["a", "bc"])), Some(vec![&b"a"[..], b"bc"]));
        assert_eq!(decode_list(&[]), Some(vec![]));
    }

    #[test]
    fn decoders_reject_other_lengths_and_values() {
        for bytes in [&[][..], &[1, 2, 3, 4, 5, 6, 7], &[1, 2, 3, 4, 5, 6, 7, 8, 9]] {
            assert_eq!(decode_i64(bytes), None, "{bytes:?}");
            assert_eq!(decode_u64(bytes), None, "{bytes:?}");
            assert_eq!(decode_f64(bytes), None, "{bytes:?}");
        }
        for bytes in [&[][..], &[2], &[0, 0]] {
            assert_eq!(decode_bool(bytes), None, "{bytes:?}");
        }
        assert_eq!(decode_list(&[1, 0, 0, 0]), None);
    }

    #[test]
    fn scalars_are_little_endian() {
        assert_eq!(encode_i64(-2), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(encode_i64(0x0102_0304_0506_0708), [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(encode_u64(u64::MAX - 1), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(encode_u64(200), [200, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_bool(false), [0]);
        assert_eq!(encode_bool(true), [1]);
        assert_eq!(encode_f64(1.0), [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
        assert_eq!(encode_f64(-0.5), [0, 0, 0, 0, 0, 0, 0xe0, 0xbf]);
    }

    #[test]
    fn maps_use_the_pairs_layout() {
        let code = encode_i64(200);
        let map = encode_map(&[(&b"code"[..], &code[..])]);
        assert_eq!(super::super::decode_pairs(&map), Ok(vec![(&b"code"[..], &code[..])]));
        assert_eq!(encode_map::<&str, &str>(&[]), Vec::<u8>::new());
    }

    #[test]
    fn lists_are_pairs_with_empty_values() {
        let list = encode_list(&["a", "bc"]);
        #[rustfmt::skip]
        let expected = [
            2, 0, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0,
            2, 0, 0, 0, 0, 0, 0, 0,
            b'a', 0, 0,
            b'b', b'c', 0, 0,
        ];
        assert_eq!(list, expected);
        assert_eq!(list, encode_map(&[("a", ""), ("bc", "")]));
        assert_eq!(encode_list::<&str>(&[]), Vec::<u8>::new());
    }
}
