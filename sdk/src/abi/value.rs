//! Property value encodings, for values a host returns from `proxy_get_property`.
//!
//! Strings and bytes are their raw bytes, with no terminator. Timestamps are [`encode_i64`] of Unix nanoseconds and
//! durations [`encode_i64`] of nanoseconds. Protobuf messages are their serialized wire bytes.

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

#[cfg(test)]
mod tests {
    use super::*;

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
