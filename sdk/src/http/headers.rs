//! [`Headers`]: one header or trailer map of the stream.

use crate::abi::{decode_pairs, encode_pairs, MapType, Status};
use crate::host::{found, raw, report};

use super::HeaderSnapshot;

/// A handle to one header or trailer map of the current stream (a `Copy` map type, no data).
///
/// Names are matched case-insensitively by the host (Weir keeps them lower-case). Reads return `None` when the
/// header is absent (or the map does not exist in this phase); values that are not UTF-8 are converted lossily by
/// [`get`](Headers::get) and kept by [`get_bytes`](Headers::get_bytes). A change the host refuses (a map that is
/// read-only in this phase) is logged at warn.
///
/// ```no_run
/// use weir_sdk::http;
///
/// let headers = http::request_headers();
/// if headers.get("x-debug").is_some() {
///     headers.remove("x-debug");
/// }
/// headers.add("x-seen-by", "weir");
/// headers.set(":path", "/v2/users");
/// for (name, value) in headers.all() {
///     log::debug!("{name}: {value}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    map: MapType,
}

impl Headers {
    /// A handle to `map`.
    pub(crate) fn new(map: MapType) -> Headers {
        Headers { map }
    }

    /// The map this handle reads and writes.
    pub fn map_type(&self) -> MapType {
        self.map
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_bytes(name).map(|bytes| String::from_utf8(bytes).unwrap_or_else(|e| lossy(e.as_bytes())))
    }

    /// The first value of `name`, as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<Vec<u8>> {
        found(raw::get_header_map_value(self.map, name.as_bytes())).ok().flatten()
    }

    /// Every value of `name`, in order (the host's `get` returns only the first).
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.all().into_iter().filter(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value).collect()
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Every entry in order, repeated names repeated (values converted lossily to UTF-8). To look at the entries
    /// without a `String` per name and value, take a [`snapshot`](Headers::snapshot).
    pub fn all(&self) -> Vec<(String, String)> {
        let Ok(bytes) = raw::get_header_map_pairs(self.map) else { return Vec::new() };
        match decode_pairs(&bytes) {
            Ok(pairs) => pairs.into_iter().map(|(name, value)| (lossy(name), lossy(value))).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every entry as it is now, read with one hostcall into one buffer: [`HeaderSnapshot`] hands out `&str`
    /// views, no allocation per entry.
    pub fn snapshot(&self) -> HeaderSnapshot {
        raw::get_header_map_pairs(self.map).map(HeaderSnapshot::from_encoded).unwrap_or_default()
    }

    /// Every entry in order, as bytes.
    pub fn all_bytes(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Ok(bytes) = raw::get_header_map_pairs(self.map) else { return Vec::new() };
        match decode_pairs(&bytes) {
            Ok(pairs) => pairs.into_iter().map(|(name, value)| (name.to_vec(), value.to_vec())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Sets `name` to exactly one `value`, replacing every other entry of that name (or adding it).
    pub fn set(&self, name: &str, value: &str) {
        self.set_bytes(name, value.as_bytes());
    }

    /// [`set`](Headers::set) with a value in bytes.
    pub fn set_bytes(&self, name: &str, value: &[u8]) {
        self.done("set_header", raw::replace_header_map_value(self.map, name.as_bytes(), value));
    }

    /// Adds one more entry `name: value` (existing entries stay; values are not joined).
    pub fn add(&self, name: &str, value: &str) {
        self.done("add_header", raw::add_header_map_value(self.map, name.as_bytes(), value.as_bytes()));
    }

    /// Removes every entry of `name` (nothing happens if there is none).
    pub fn remove(&self, name: &str) {
        self.done("remove_header", raw::remove_header_map_value(self.map, name.as_bytes()));
    }

    /// Replaces the whole map with `pairs`, in order.
    pub fn set_all(&self, pairs: &[(&str, &str)]) {
        self.done("set_headers", raw::set_header_map_pairs(self.map, &encode_pairs(pairs)));
    }

    /// `:method` (request headers).
    pub fn method(&self) -> Option<String> {
        self.get(":method")
    }

    /// `:path`, with the query (request headers).
    pub fn path(&self) -> Option<String> {
        self.get(":path")
    }

    /// `:authority`, the host (request headers).
    pub fn authority(&self) -> Option<String> {
        self.get(":authority")
    }

    /// `:scheme` (request headers).
    pub fn scheme(&self) -> Option<String> {
        self.get(":scheme")
    }

    /// `:status`, parsed (response headers).
    pub fn status(&self) -> Option<u16> {
        self.get(":status")?.trim().parse().ok()
    }

    fn done(&self, what: &str, result: Result<(), Status>) {
        if let Err(status) = result {
            report(&format!("{what} on {:?}", self.map), status);
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
