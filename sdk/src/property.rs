//! Properties (Envoy attributes): what the host knows about the request, the connection and the plugin.
//!
//! [`get`] reads any path into any [`PropertyValue`] with the ABI's encodings ([`crate::abi`]); the named
//! functions read the common ones. All return `None` when the host has no value there (yet).
//!
//! ```no_run
//! use weir_sdk::property;
//!
//! let path = property::request_path().unwrap_or_default();
//! let client = property::source_address().map(|addr| addr.ip());
//! let size: Option<i64> = property::get(&["request", "size"]);
//! ```

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::abi::{decode_bool, decode_f64, decode_i64, decode_list, decode_pairs, decode_u64, Status};
use crate::abi::{encode_bool, encode_f64, encode_i64, encode_list, encode_map, encode_u64};
use crate::host::{found, raw};

/// A type a property value decodes to and encodes from (ABI §7 encodings).
///
/// | type | encoding |
/// | --- | --- |
/// | `String`, `Vec<u8>` | the bytes (a `String` must be UTF-8) |
/// | `i64`, `u64`, `f64` | 8 bytes little-endian |
/// | `bool` | 1 byte, 0 or 1 |
/// | `Duration`, `SystemTime` | `i64` nanoseconds (since the Unix epoch for a time) |
/// | `Vec<(String, String)>` | a map (pairs layout) |
/// | `Vec<String>` | a list (pairs layout, empty values) |
pub trait PropertyValue: Sized {
    /// Decodes the host's bytes; `None` when they are not a value of this type.
    fn decode(bytes: Vec<u8>) -> Option<Self>;
    /// Encodes for `proxy_set_property`.
    fn encode(&self) -> Vec<u8>;
}

impl PropertyValue for Vec<u8> {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        Some(bytes)
    }
    fn encode(&self) -> Vec<u8> {
        self.clone()
    }
}

impl PropertyValue for String {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        String::from_utf8(bytes).ok()
    }
    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl PropertyValue for i64 {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        decode_i64(&bytes)
    }
    fn encode(&self) -> Vec<u8> {
        encode_i64(*self).to_vec()
    }
}

impl PropertyValue for u64 {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        decode_u64(&bytes)
    }
    fn encode(&self) -> Vec<u8> {
        encode_u64(*self).to_vec()
    }
}

impl PropertyValue for f64 {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        decode_f64(&bytes)
    }
    fn encode(&self) -> Vec<u8> {
        encode_f64(*self).to_vec()
    }
}

impl PropertyValue for bool {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        decode_bool(&bytes)
    }
    fn encode(&self) -> Vec<u8> {
        encode_bool(*self).to_vec()
    }
}

impl PropertyValue for Duration {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        decode_i64(&bytes).and_then(|nanos| u64::try_from(nanos).ok()).map(Duration::from_nanos)
    }
    fn encode(&self) -> Vec<u8> {
        encode_i64(i64::try_from(self.as_nanos()).unwrap_or(i64::MAX)).to_vec()
    }
}

impl PropertyValue for SystemTime {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        let nanos = decode_i64(&bytes)?;
        let offset = Duration::from_nanos(nanos.unsigned_abs());
        if nanos >= 0 {
            UNIX_EPOCH.checked_add(offset)
        } else {
            UNIX_EPOCH.checked_sub(offset)
        }
    }
    fn encode(&self) -> Vec<u8> {
        let nanos = match self.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        };
        encode_i64(nanos).to_vec()
    }
}

impl PropertyValue for Vec<(String, String)> {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        let pairs = decode_pairs(&bytes).ok()?;
        pairs
            .into_iter()
            .map(|(k, v)| Some((std::str::from_utf8(k).ok()?.into(), std::str::from_utf8(v).ok()?.into())))
            .collect()
    }
    fn encode(&self) -> Vec<u8> {
        encode_map(self)
    }
}

impl PropertyValue for Vec<String> {
    fn decode(bytes: Vec<u8>) -> Option<Self> {
        decode_list(&bytes)?.into_iter().map(|item| String::from_utf8(item.to_vec()).ok()).collect()
    }
    fn encode(&self) -> Vec<u8> {
        encode_list(self)
    }
}

/// Joins path segments with NUL, as [`crate::abi::join_path`] does.
fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// The property at `path`, decoded as `T`; `None` when absent or not a `T`.
///
/// ```no_run
/// use std::time::SystemTime;
/// use weir_sdk::property;
///
/// let code: Option<i64> = property::get(&["response", "code"]);
/// let started: Option<SystemTime> = property::get(&["request", "time"]);
/// let agent: Option<String> = property::get(&["request", "headers", "user-agent"]);
/// ```
pub fn get<T: PropertyValue>(path: &[&str]) -> Option<T> {
    get_bytes(path).and_then(T::decode)
}

/// The raw bytes of the property at `path`.
pub fn get_bytes(path: &[&str]) -> Option<Vec<u8>> {
    found(raw::get_property(&encode_path(path))).ok().flatten()
}

/// Sets the property at `path` for this stream (Weir and Envoy keep it as filter state, readable back with
/// [`get`] by later filters). `Err(NotFound)` outside a stream.
///
/// ```no_run
/// weir_sdk::property::set(&["tenant"], &"acme".to_string()).ok();
/// ```
pub fn set<T: PropertyValue>(path: &[&str], value: &T) -> Result<(), Status> {
    raw::set_property(&encode_path(path), &value.encode())
}

/// [`set`] with the value's bytes as they are (a `&str` as `.as_bytes()`), without building a [`PropertyValue`].
pub fn set_bytes(path: &[&str], value: &[u8]) -> Result<(), Status> {
    raw::set_property(&encode_path(path), value)
}

/// `request.path`: `:path` with the query.
pub fn request_path() -> Option<String> {
    get(&["request", "path"])
}

/// `request.url_path`: the path without the query.
pub fn request_url_path() -> Option<String> {
    get(&["request", "url_path"])
}

/// `request.query`: the query without `?`.
pub fn request_query() -> Option<String> {
    get(&["request", "query"])
}

/// `request.method`.
pub fn request_method() -> Option<String> {
    get(&["request", "method"])
}

/// `request.host`: `:authority`.
pub fn request_host() -> Option<String> {
    get(&["request", "host"])
}

/// `request.scheme`.
pub fn request_scheme() -> Option<String> {
    get(&["request", "scheme"])
}

/// `request.id`: the `x-request-id` Weir sets on every request.
pub fn request_id() -> Option<String> {
    get(&["request", "id"])
}

/// `request.protocol`: `HTTP/1.1`, `HTTP/2`, ...
pub fn request_protocol() -> Option<String> {
    get(&["request", "protocol"])
}

/// `request.time`: when the request's first byte arrived.
pub fn request_time() -> Option<SystemTime> {
    get(&["request", "time"])
}

/// `request.duration`: only in `on_log`.
pub fn request_duration() -> Option<Duration> {
    get(&["request", "duration"])
}

/// `response.code`: from the response headers callbacks on.
pub fn response_code() -> Option<u16> {
    get::<i64>(&["response", "code"]).and_then(|code| u16::try_from(code).ok())
}

/// `source.address`: the client's address and port.
pub fn source_address() -> Option<SocketAddr> {
    get::<String>(&["source", "address"])?.parse().ok()
}

/// `destination.address`: the listener's address and port the client connected to.
pub fn destination_address() -> Option<SocketAddr> {
    get::<String>(&["destination", "address"])?.parse().ok()
}

/// `connection.id`: the downstream connection.
pub fn connection_id() -> Option<u64> {
    get(&["connection", "id"])
}

/// `xds.route_name`: the route serving the request.
pub fn route_name() -> Option<String> {
    get(&["xds", "route_name"])
}

/// `xds.cluster_name`: the route's cluster.
pub fn cluster_name() -> Option<String> {
    get(&["xds", "cluster_name"])
}

/// `plugin_name`: the attachment's name.
pub fn plugin_name() -> Option<String> {
    get(&["plugin_name"])
}

/// `plugin_root_id`: the attachment's `root_id`.
pub fn plugin_root_id() -> Option<String> {
    get(&["plugin_root_id"])
}

/// `plugin_vm_id`: the attachment's `vm_id` (what shared data and queues are keyed by).
pub fn plugin_vm_id() -> Option<String> {
    get(&["plugin_vm_id"])
}
