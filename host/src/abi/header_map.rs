//! A header map as a stream carries it through the filter chain: the `http::HeaderMap` hyper parsed (its
//! values are cheap `Bytes` clones), the pseudo-headers (`:method`, `:path`, `:status`, ...) beside it, and
//! the few entries a guest may add that no `HeaderMap` can hold (a name or value that is not valid HTTP).
//!
//! The map is shared copy-on-write: a filter's context keeps the map as it left it (readable until the
//! stream ends) while the same map goes on to the next filter, and only a filter that changes it copies it.
//! The map remembers whether any filter changed it, so an untouched request or response is not rebuilt.
//!
//! Order, as `proxy_get_header_map_pairs` shows it: the pseudo-headers, then the headers in `HeaderMap`
//! order (first appearance of a name, all values of a name together), then the entries no `HeaderMap` can
//! hold. Keys are lower case.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::borrow::Cow;
use std::sync::Arc;

/// One header map of a stream (request or response headers, trailers, a callout's answer). The empty map
/// (`Default`) allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct Headers(Option<Arc<Inner>>);

/// What an empty map reads.
static EMPTY: std::sync::LazyLock<Inner> = std::sync::LazyLock::new(Inner::default);

#[derive(Debug, Clone, Default)]
struct Inner {
    /// Pseudo-headers, in order, keys lower case.
    pseudo: Vec<(Bytes, Bytes)>,
    /// Every entry whose name and value are valid HTTP.
    map: HeaderMap,
    /// Entries no `HeaderMap` can hold: seen by filters, never sent.
    odd: Vec<(Bytes, Bytes)>,
    /// A filter changed the map since it was built from the message.
    changed: bool,
}

/// A value looked up in a map, held without copying it.
#[derive(Debug, Clone)]
pub enum Value {
    /// A header's value.
    Header(HeaderValue),
    /// A pseudo-header's (or an unsendable entry's) value.
    Raw(Bytes),
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        match self {
            Value::Header(v) => v.as_bytes(),
            Value::Raw(b) => b,
        }
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.iter().eq(other.iter())
    }
}

fn lower(key: &[u8]) -> Cow<'_, [u8]> {
    if key.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(key.to_ascii_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

fn owned(key: Cow<'_, [u8]>) -> Bytes {
    match key {
        Cow::Borrowed(k) => Bytes::copy_from_slice(k),
        Cow::Owned(k) => Bytes::from(k),
    }
}

/// The most header names [`header_name`] keeps per thread.
const NAME_CACHE_SIZE: usize = 256;

/// `key` (lower case) as a header name. Names a filter writes (`x-ratelimit-limit`, `x-user`, ...) are not
/// among `http`'s standard ones, so each parse allocates; a filter writes the same few names on every request,
/// so the parsed names are kept per thread (at most [`NAME_CACHE_SIZE`]; later new names are parsed each time)
/// and a write costs a lookup and a reference count. The cache hashes with aHash (randomly keyed, as the
/// standard SipHash, at a fifth of its cost on short names: SipHash was a third of a header write).
fn header_name(key: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    type Names = std::collections::HashMap<Box<[u8]>, HeaderName, ahash::RandomState>;
    thread_local! {
        static NAMES: std::cell::RefCell<Names> = std::cell::RefCell::new(Names::default());
    }
    NAMES.with(|names| {
        if let Some(name) = names.borrow().get(key) {
            return Ok(name.clone());
        }
        let name = HeaderName::from_bytes(key)?;
        let mut names = names.borrow_mut();
        if names.len() >= NAME_CACHE_SIZE {
            return Ok(name);
        }
        // A cached name is kept for the thread's life, so it is made static: cloning it for every write, and
        // dropping the clone with the map, then copies a pointer instead of counting references atomically.
        // At most NAME_CACHE_SIZE names per thread are leaked this way. `from_static` takes only lower-case
        // valid names: `key` is one (it parsed, and callers lower-case).
        let name = match std::str::from_utf8(key) {
            Ok(text) if name.as_str() == text => HeaderName::from_static(Box::leak(Box::<str>::from(text))),
            _ => name,
        };
        names.insert(key.into(), name.clone());
        Ok(name)
    })
}

/// `key` as a header-name lookup key (`None` when it cannot name a header).
fn as_name(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()
}

/// Replaces every value of `key` with one, in place of the first (appended if absent).
fn replace_in(list: &mut Vec<(Bytes, Bytes)>, key: &[u8], value: &[u8]) {
    match list.iter().position(|(k, _)| k == key) {
        Some(first) => {
            list[first].1 = Bytes::copy_from_slice(value);
            let mut i = first + 1;
            while i < list.len() {
                if list[i].0 == key {
                    list.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        None => list.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value))),
    }
}

fn method_bytes(method: &Method) -> Bytes {
    let known: &'static [u8] = match method.as_str() {
        "GET" => b"GET",
        "POST" => b"POST",
        "PUT" => b"PUT",
        "DELETE" => b"DELETE",
        "HEAD" => b"HEAD",
        "OPTIONS" => b"OPTIONS",
        "PATCH" => b"PATCH",
        other => return Bytes::copy_from_slice(other.as_bytes()),
    };
    Bytes::from_static(known)
}

/// `:status` as bytes: the common codes from static text (no allocation per response), others copied.
fn status_bytes(status: StatusCode) -> Bytes {
    let text: &'static [u8] = match status.as_u16() {
        200 => b"200",
        201 => b"201",
        204 => b"204",
        301 => b"301",
        302 => b"302",
        304 => b"304",
        400 => b"400",
        401 => b"401",
        403 => b"403",
        404 => b"404",
        429 => b"429",
        500 => b"500",
        502 => b"502",
        503 => b"503",
        _ => return Bytes::copy_from_slice(status.as_str().as_bytes()),
    };
    Bytes::from_static(text)
}

impl Inner {
    fn push(&mut self, key: &[u8], value: &[u8]) {
        let key = lower(key);
        if key.first() == Some(&b':') {
            self.pseudo.push((owned(key), Bytes::copy_from_slice(value)));
            return;
        }
        if let (Ok(n), Ok(v)) = (header_name(&key), HeaderValue::from_bytes(value)) {
            if self.map.try_append(n, v).is_ok() {
                return;
            }
        }
        self.odd.push((owned(key), Bytes::copy_from_slice(value)));
    }
}

impl Headers {
    /// The request as filters see it: `:authority`, `:path`, `:method`, `:scheme`, then `headers`.
    pub fn request(authority: &[u8], path: &str, method: &Method, tls: bool, headers: HeaderMap) -> Headers {
        let scheme: &'static [u8] = if tls { b"https" } else { b"http" };
        let pseudo = vec![
            (Bytes::from_static(b":authority"), Bytes::copy_from_slice(authority)),
            (Bytes::from_static(b":path"), Bytes::copy_from_slice(path.as_bytes())),
            (Bytes::from_static(b":method"), method_bytes(method)),
            (Bytes::from_static(b":scheme"), Bytes::from_static(scheme)),
        ];
        Headers(Some(Arc::new(Inner { pseudo, map: headers, odd: Vec::new(), changed: false })))
    }

    /// A response as filters see it: `:status`, then `headers`.
    pub fn response(status: StatusCode, headers: HeaderMap) -> Headers {
        let pseudo = vec![(Bytes::from_static(b":status"), status_bytes(status))];
        Headers(Some(Arc::new(Inner { pseudo, map: headers, odd: Vec::new(), changed: false })))
    }

    /// Trailers (no pseudo-headers).
    pub fn from_map(map: HeaderMap) -> Headers {
        Headers(Some(Arc::new(Inner { map, ..Inner::default() })))
    }

    /// A map from pairs (keys lower-cased), in their order as far as the layout allows.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Headers {
        let mut inner = Inner::default();
        for (k, v) in pairs {
            inner.push(k, v);
        }
        Headers(Some(Arc::new(inner)))
    }

    fn inner(&self) -> &Inner {
        self.0.as_deref().unwrap_or(&EMPTY)
    }

    /// Whether a filter changed the map since it was built.
    pub fn changed(&self) -> bool {
        self.inner().changed
    }

    /// The entries that can be sent (pseudo-headers and unsendable entries left out).
    pub fn map(&self) -> &HeaderMap {
        &self.inner().map
    }

    /// The sendable entries, without a copy when no one else holds the map.
    pub fn into_map(self) -> HeaderMap {
        match self.0.map(Arc::try_unwrap) {
            Some(Ok(inner)) => inner.map,
            Some(Err(shared)) => shared.map.clone(),
            None => HeaderMap::new(),
        }
    }

    /// The value of a pseudo-header (`:path`, `:status`, ...), matched exactly.
    pub fn pseudo(&self, name: &[u8]) -> Option<&[u8]> {
        self.inner().pseudo.iter().find(|(k, _)| k == name).map(|(_, v)| &v[..])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.inner().pseudo.len() + self.inner().map.len() + self.inner().odd.len()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in the order filters see them.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let inner = self.inner();
        inner
            .pseudo
            .iter()
            .map(|(k, v)| (&k[..], &v[..]))
            .chain(inner.map.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())))
            .chain(inner.odd.iter().map(|(k, v)| (&k[..], &v[..])))
    }

    /// Names and values, summed (`proxy_get_header_map_size`).
    pub fn byte_size(&self) -> usize {
        self.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The first value of `key` (any case).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let key = lower(key);
        let find = |list: &'_ [(Bytes, Bytes)]| list.iter().position(|(k, _)| *k == *key);
        if key.first() == Some(&b':') {
            return find(&self.inner().pseudo).map(|i| &self.inner().pseudo[i].1[..]);
        }
        if let Some(v) = as_name(&key).and_then(|n| self.inner().map.get(n)) {
            return Some(v.as_bytes());
        }
        find(&self.inner().odd).map(|i| &self.inner().odd[i].1[..])
    }

    /// The first value of `key` (any case), held without a copy.
    pub fn get_value(&self, key: &[u8]) -> Option<Value> {
        let key = lower(key);
        let find =
            |list: &'_ [(Bytes, Bytes)]| list.iter().find(|(k, _)| *k == *key).map(|(_, v)| Value::Raw(v.clone()));
        if key.first() == Some(&b':') {
            return find(&self.inner().pseudo);
        }
        if let Some(v) = as_name(&key).and_then(|n| self.inner().map.get(n)) {
            return Some(Value::Header(v.clone()));
        }
        find(&self.inner().odd)
    }

    fn edit(&mut self) -> &mut Inner {
        let inner = Arc::make_mut(self.0.get_or_insert_with(Arc::default));
        inner.changed = true;
        inner
    }

    /// Adds a value (keeping the others of the same name).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.edit().push(key, value);
    }

    /// Replaces every value of `key` with one (added if absent).
    pub fn replace(&mut self, key: &[u8], value: &[u8]) {
        let key = lower(key);
        let inner = self.edit();
        if key.first() == Some(&b':') {
            return replace_in(&mut inner.pseudo, &key, value);
        }
        match (header_name(&key), HeaderValue::from_bytes(value)) {
            (Ok(n), Ok(v)) => {
                inner.odd.retain(|(k, _)| *k != *key);
                if inner.map.try_insert(n, v).is_err() {
                    inner.odd.push((owned(key), Bytes::copy_from_slice(value)));
                }
            }
            (name, _) => {
                if let Ok(n) = name {
                    inner.map.remove(n);
                }
                replace_in(&mut inner.odd, &key, value);
            }
        }
    }

    /// Removes every value of `key` (any case).
    pub fn remove(&mut self, key: &[u8]) {
        let key = lower(key);
        let inner = self.edit();
        if key.first() == Some(&b':') {
            inner.pseudo.retain(|(k, _)| *k != *key);
            return;
        }
        if let Some(n) = as_name(&key) {
            inner.map.remove(n);
        }
        inner.odd.retain(|(k, _)| *k != *key);
    }

    /// Replaces the whole map (`proxy_set_header_map_pairs`).
    pub fn set_pairs<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
        let mut fresh = Headers::from_pairs(pairs);
        fresh.edit();
        *self = fresh;
    }

    /// The size of the pairs layout `proxy_get_header_map_pairs` hands out (0 for an empty map).
    pub fn encoded_len(&self) -> usize {
        if self.is_empty() {
            return 0;
        }
        self.iter().fold(4usize, |size, (k, v)| size.saturating_add(10).saturating_add(k.len() + v.len()))
    }

    /// Writes the pairs layout into `out`, which must be exactly [`encoded_len`](Headers::encoded_len)
    /// long; `false` when it is not (`out` may then hold part of the layout). One pass over the map: the
    /// lengths go to their slots at the front while the names and values follow each other after them.
    pub fn encode_into(&self, out: &mut [u8]) -> bool {
        let count = self.len();
        if count == 0 || out.is_empty() {
            return out.is_empty() && count == 0;
        }
        let Some(mut data) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else { return false };
        let mut put = |at: usize, bytes: &[u8]| match out.get_mut(at..at + bytes.len()) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                true
            }
            None => false,
        };
        if !put(0, &(count as u32).to_le_bytes()) {
            return false;
        }
        for (index, (k, v)) in self.iter().enumerate() {
            let slot = 4 + 8 * index;
            let written = put(slot, &(k.len() as u32).to_le_bytes())
                && put(slot + 4, &(v.len() as u32).to_le_bytes())
                && put(data, k)
                && put(data + k.len(), &[0])
                && put(data + k.len() + 1, v)
                && put(data + k.len() + 1 + v.len(), &[0]);
            if !written {
                return false;
            }
            data += k.len() + v.len() + 2;
        }
        data == out.len()
    }

    /// The entries as owned pairs (tests, and the rare paths that need them).
    pub fn to_pairs(&self) -> super::stream::Pairs {
        self.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(items: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(items.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
    }

    fn pairs(m: &Headers) -> Vec<(String, String)> {
        m.iter().map(|(k, v)| (String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v).into())).collect()
    }

    fn owned(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn map_edits_table() {
        let mut m = h(&[(":path", "/"), ("a", "1"), ("b", "2"), ("a", "3")]);
        assert!(!m.changed());
        let before = m.clone();
        m.replace(b"A", b"x");
        assert!(m.changed() && !before.changed(), "copy on write");
        assert_eq!(pairs(&m), owned(&[(":path", "/"), ("a", "x"), ("b", "2")]));
        m.replace(b"c", b"new");
        assert_eq!(m.get(b"C"), Some(&b"new"[..]));
        m.remove(b"B");
        assert_eq!(pairs(&m), owned(&[(":path", "/"), ("a", "x"), ("c", "new")]));
        assert_eq!(m.get(b"missing"), None);
        assert_eq!(pairs(&before), owned(&[(":path", "/"), ("a", "1"), ("a", "3"), ("b", "2")]));
    }

    #[test]
    fn unsendable_entries_are_kept_last_and_not_sent() {
        let mut m = h(&[("x-a", "1")]);
        m.add(b"Bad Name", b"v");
        m.add(b"x-b", b"line\nbreak");
        m.add(b":custom", b"p");
        assert_eq!(pairs(&m), owned(&[(":custom", "p"), ("x-a", "1"), ("bad name", "v"), ("x-b", "line\nbreak")]));
        assert_eq!(m.get(b"x-b"), Some(&b"line\nbreak"[..]));
        m.replace(b"x-b", b"ok");
        assert_eq!(pairs(&m), owned(&[(":custom", "p"), ("x-a", "1"), ("x-b", "ok"), ("bad name", "v")]));
        assert_eq!(m.map().len(), 2);
        m.replace(b"x-a", b"\n");
        assert_eq!(m.map().len(), 1);
        assert_eq!(m.get_value(b"x-a").as_ref().map(AsRef::as_ref), Some(&b"\n"[..]));
    }

    #[test]
    fn encodes_as_the_sdk_does() {
        let maps = [
            h(&[(":status", "200"), ("a", "1"), ("b", "")]),
            h(&[("x", "1"), ("x", "2"), ("y", "3"), ("bad name", "v"), (":path", "/p")]),
            h(&[("only", "")]),
            h(&[("k", &"v".repeat(1000))]),
        ];
        for m in maps {
            let mut out = vec![0; m.encoded_len()];
            assert!(m.encode_into(&mut out));
            let expected = weir_sdk::abi::encode_pairs(&m.to_pairs());
            assert_eq!(out, expected);
            for wrong in [out.len() - 1, out.len() + 1, 3] {
                assert!(!m.encode_into(&mut vec![0; wrong]), "a buffer of {wrong} bytes is refused");
            }
        }
        let empty = Headers::default();
        assert_eq!(empty.encoded_len(), 0);
        assert!(empty.encode_into(&mut []));
    }

    #[test]
    fn status_text_for_every_code() {
        for code in 100..=599u16 {
            let status = StatusCode::from_u16(code).expect("valid");
            assert_eq!(&status_bytes(status)[..], code.to_string().as_bytes());
        }
    }
}
