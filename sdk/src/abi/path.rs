//! Property paths: segments joined by one NUL byte.

/// Splits a property path into its segments.
///
/// Segments are joined by one `0x00` with no trailing NUL, so `request\0headers\0x-id` is
/// `["request", "headers", "x-id"]` and a path without a NUL is one segment. Dots are not separators:
/// `envoy.filters.http.lua` is one segment. An empty input is no segments; an empty segment (two NULs in a row, or
/// a leading or trailing NUL) is kept as an empty slice.
pub fn split_path(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&byte| byte == 0).collect()
}

/// Joins segments into a property path, the inverse of [`split_path`].
///
/// No segments gives an empty path. A segment that contains a NUL cannot round-trip, since the NUL would split it.
pub fn join_path(segments: &[&[u8]]) -> Vec<u8> {
    segments.join(&0)
}

#[cfg(test)]
mod tests {
    use super::{join_path, split_path};

    #[test]
    fn paths_round_trip() {
        let table: &[(&[u8], &[&[u8]])] = &[
            (b"", &[]),
            (b"request", &[b"request"]),
            (b"request\0headers\0x-id", &[b"request", b"headers", b"x-id"]),
            (
                b"metadata\0filter_metadata\0envoy.filters.http.lua\0key",
                &[b"metadata", b"filter_metadata", b"envoy.filters.http.lua", b"key"],
            ),
            (b"request.path", &[b"request.path"]),
            (b"a\0\0b", &[b"a", b"", b"b"]),
        ];
        for &(bytes, segments) in table {
            assert_eq!(split_path(bytes), segments, "split {bytes:?}");
            assert_eq!(join_path(segments), bytes, "join {segments:?}");
        }
    }

    #[test]
    fn the_reference_example_is_20_bytes() {
        assert_eq!(join_path(&[b"request", b"headers", b"x-id"]).len(), 20);
    }

    #[test]
    fn a_trailing_nul_leaves_an_empty_last_segment() {
        assert_eq!(split_path(b"request\0"), [&b"request"[..], b""]);
        assert_eq!(split_path(b"\0"), [&b""[..], b""]);
    }
}
