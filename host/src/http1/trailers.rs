//! Trailers on HTTP/1.1: sent only in chunked messages, and only the fields the message head declares in its
//! `trailer` field (hyper 1.8's rule, which Weir's client and server keep), never fields that may not trail.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Appends the fields of `trailers` that `declared` (the message's `trailer` values) names.
pub fn write_declared(trailers: &HeaderMap, declared: &[HeaderValue], out: &mut Vec<u8>) {
    if declared.is_empty() {
        return;
    }
    for (name, value) in trailers {
        if may_trail(name) && is_declared(name, declared) {
            super::fields::write_field(name.as_str(), value.as_bytes(), out);
        }
    }
}

/// The `trailer` values of a message's fields (none, and no allocation, when it has none).
pub fn declared(headers: &HeaderMap) -> Vec<HeaderValue> {
    headers.get_all(http::header::TRAILER).iter().cloned().collect()
}

/// Fields that never go in trailers (hyper 1.8's `is_valid_trailer_field`).
fn may_trail(name: &HeaderName) -> bool {
    use http::header::*;
    !matches!(
        *name,
        AUTHORIZATION
            | CACHE_CONTROL
            | CONTENT_ENCODING
            | CONTENT_LENGTH
            | CONTENT_RANGE
            | CONTENT_TYPE
            | HOST
            | MAX_FORWARDS
            | SET_COOKIE
            | TRAILER
            | TRANSFER_ENCODING
            | TE
    )
}

fn is_declared(name: &HeaderName, declared: &[HeaderValue]) -> bool {
    declared
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(name.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_fields_that_may_trail_are_written() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "7".parse().unwrap());
        trailers.insert("x-other", "1".parse().unwrap());
        trailers.insert("content-type", "text/plain".parse().unwrap());
        let mut out = Vec::new();
        write_declared(&trailers, &["X-Sum, content-type".parse().unwrap()], &mut out);
        assert_eq!(out, b"x-sum: 7\r\n");
        out.clear();
        write_declared(&trailers, &[], &mut out);
        assert!(out.is_empty());
    }
}
