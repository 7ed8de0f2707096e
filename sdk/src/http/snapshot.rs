//! [`HeaderSnapshot`]: every entry of a header map, read with one hostcall and looked at without allocating.

use std::fmt;
use std::ops::Range;

use crate::abi::decode_pairs;

/// Every entry of a header map at the time it was read, in order, as the host's bytes.
///
/// [`Headers::all`](super::Headers::all) makes two `String`s per entry; a snapshot keeps the host's one buffer
/// and hands out `&str` views into it, so a filter that scans the headers on every request (for a token, a key,
/// a cookie) does not allocate per entry. Entries that are not UTF-8 are converted lossily once, when read.
/// Later changes to the map do not show in a snapshot taken before them.
///
/// ```no_run
/// use weir_sdk::http;
///
/// let headers = http::request_headers().snapshot();
/// let api_key = headers.get("x-api-key");
/// for cookie in headers.get_all("cookie") {
///     log::debug!("cookie: {cookie}");
/// }
/// ```
#[derive(Clone, Default)]
pub struct HeaderSnapshot {
    /// The entries' text: the host's pairs buffer when it is UTF-8, lossily converted entries after it.
    text: String,
    entries: Vec<(Range<usize>, Range<usize>)>,
}

impl HeaderSnapshot {
    /// The snapshot of an encoded pairs buffer (the host's answer to `proxy_get_header_map_pairs`); a buffer
    /// that does not decode is an empty snapshot.
    pub(crate) fn from_encoded(bytes: Vec<u8>) -> HeaderSnapshot {
        let Ok(pairs) = decode_pairs(&bytes) else { return HeaderSnapshot::default() };
        let base = bytes.as_ptr() as usize;
        let span = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        };
        let mut entries: Vec<(Range<usize>, Range<usize>)> =
            pairs.iter().map(|(name, value)| (span(name), span(value))).collect();
        let count = entries.len();
        drop(pairs);
        // The buffer is the count, the lengths, then `name NUL value NUL` per entry. With the count and lengths
        // zeroed, the buffer is UTF-8 exactly when every entry is (NUL is ASCII and splits no character): one
        // validation pass over the whole buffer in the usual case, a pass per entry only when one is not.
        let mut bytes = bytes;
        let lengths_end = (4 + 8 * count).min(bytes.len());
        bytes[..lengths_end].fill(0);
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                let mut bytes = error.into_bytes();
                let mut lossy = Vec::new();
                for (index, (name, value)) in entries.iter().enumerate() {
                    let valid = |part: &Range<usize>| std::str::from_utf8(&bytes[part.clone()]).is_ok();
                    if !valid(name) || !valid(value) {
                        let text = |part: &Range<usize>| String::from_utf8_lossy(&bytes[part.clone()]).into_owned();
                        lossy.push((index, text(name), text(value)));
                    }
                }
                for (index, _, _) in &lossy {
                    let (name, value) = entries[*index].clone();
                    bytes[name].fill(0);
                    bytes[value].fill(0);
                }
                let mut text = String::from_utf8(bytes).unwrap_or_default();
                for (index, name, value) in lossy {
                    let start = text.len();
                    text.push_str(&name);
                    let middle = text.len();
                    text.push_str(&value);
                    entries[index] = (start..middle, middle..text.len());
                }
                text
            }
        };
        HeaderSnapshot { text, entries }
    }

    /// A snapshot of `pairs` (for tests of code that takes a snapshot).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> HeaderSnapshot {
        let mut text = String::new();
        let mut entries = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let start = text.len();
            text.push_str(name);
            let middle = text.len();
            text.push_str(value);
            entries.push((start..middle, middle..text.len()));
        }
        HeaderSnapshot { text, entries }
    }

    /// Every entry in order, repeated names repeated.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(name, value)| (&self.text[name.clone()], &self.text[value.clone()]))
    }

    /// The first value of `name` (matched case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    }

    /// Every value of `name` (matched case-insensitively), in order.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.iter().filter(move |(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for HeaderSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::encode_pairs;

    #[test]
    fn views_the_host_buffer_and_converts_non_utf8_entries_once() {
        let encoded = encode_pairs(&[
            (&b":path"[..], &b"/a?b=c"[..]),
            (b"Cookie", b"a=1"),
            (b"x-bin", b"caf\xe9"),
            (b"cookie", b"b=2"),
            (b"x-empty", b""),
        ]);
        let snapshot = HeaderSnapshot::from_encoded(encoded);
        let all: Vec<(&str, &str)> = snapshot.iter().collect();
        assert_eq!(
            all,
            [(":path", "/a?b=c"), ("Cookie", "a=1"), ("x-bin", "caf\u{fffd}"), ("cookie", "b=2"), ("x-empty", "")]
        );
        assert_eq!(snapshot.get("COOKIE"), Some("a=1"));
        assert_eq!(snapshot.get_all("cookie").collect::<Vec<_>>(), ["a=1", "b=2"]);
        assert!(snapshot.contains("x-empty") && !snapshot.contains("x-none"));
        assert_eq!(snapshot.len(), 5);
    }

    #[test]
    fn a_buffer_that_does_not_decode_is_empty_and_from_pairs_matches() {
        assert!(HeaderSnapshot::from_encoded(vec![9, 0, 0, 0, 1]).is_empty());
        assert!(HeaderSnapshot::from_encoded(Vec::new()).is_empty());
        let pairs = [("a", "1"), ("b", "")];
        let made = HeaderSnapshot::from_pairs(&pairs);
        let encoded = HeaderSnapshot::from_encoded(encode_pairs(&pairs));
        assert_eq!(made.iter().collect::<Vec<_>>(), encoded.iter().collect::<Vec<_>>());
    }
}
