//! The Envoy attributes Weir answers (ABI §7), resolved from plain data so they are testable without a VM.
//!
//! [`ATTRIBUTES`] is the whole table: a path and how to read it. To add an attribute, add a row. A path may
//! go one segment past a map attribute to select a key (`["request", "headers", "x-id"]`). Encodings:
//! strings as raw bytes, `int` and timestamps as i64 LE, `uint` as u64 LE, `bool` as one byte, maps in the
//! pairs layout with repeated keys joined by `,`.

use crate::abi::state::PluginInfo;
use crate::abi::stream::{Headers, Phase, RequestInfo, StreamData};
use std::time::{SystemTime, UNIX_EPOCH};
use weir_sdk::abi::{encode_bool, encode_i64, encode_map, encode_u64, Status};

/// What properties are answered from.
pub struct PropertySource<'a> {
    /// The acting HTTP stream (absent in a root context or a tick).
    pub stream: Option<&'a StreamData>,
    /// What the acting root context serves (absent for the VM context).
    pub plugin: Option<&'a PluginInfo>,
    /// The VM's `vm_id`.
    pub vm_id: &'a str,
}

/// A property value before encoding.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// A string or bytes.
    Bytes(Vec<u8>),
    /// An `int`, a timestamp or a duration (nanoseconds).
    Int(i64),
    /// A `uint`.
    Uint(u64),
    /// A `bool`.
    Bool(bool),
    /// A map, keys unique.
    Map(Vec<(Vec<u8>, Vec<u8>)>),
}

impl Value {
    fn encode(self) -> Vec<u8> {
        match self {
            Value::Bytes(b) => b,
            Value::Int(i) => encode_i64(i).to_vec(),
            Value::Uint(u) => encode_u64(u).to_vec(),
            Value::Bool(b) => encode_bool(b).to_vec(),
            Value::Map(m) => encode_map(&m),
        }
    }

    /// The value a path continuing past this attribute selects: one map key, compared case-insensitively
    /// (header names are lower-case); nothing below a scalar.
    fn select(self, rest: &[&[u8]]) -> Option<Value> {
        match (self, rest) {
            (v, []) => Some(v),
            (Value::Map(m), [key]) => {
                m.into_iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| Value::Bytes(v))
            }
            _ => None,
        }
    }
}

/// Reads one attribute; `None` when it has no value here.
type Getter = fn(&PropertySource<'_>) -> Option<Value>;

/// Every attribute: its path segments, and how to read it.
const ATTRIBUTES: &[(&[&str], Getter)] = &[
    (&["request", "path"], |s| request_header(s, b":path")),
    (&["request", "url_path"], |s| Some(bytes(split_query(request_path(s)?).0))),
    (&["request", "query"], |s| Some(bytes(split_query(request_path(s)?).1))),
    (&["request", "host"], |s| request_header(s, b":authority")),
    (&["request", "scheme"], |s| request_header(s, b":scheme")),
    (&["request", "method"], |s| request_header(s, b":method")),
    (&["request", "headers"], |s| Some(Value::Map(joined(&s.stream?.request_headers)))),
    (&["request", "referer"], |s| request_header(s, b"referer")),
    (&["request", "useragent"], |s| request_header(s, b"user-agent")),
    (&["request", "id"], |s| request_header(s, b"x-request-id")),
    (&["request", "protocol"], |s| Some(bytes(info(s)?.protocol.as_bytes()))),
    (&["request", "time"], |s| Some(Value::Int(unix_nanos(info(s)?.time)))),
    (&["request", "headers_bytes"], |s| Some(Value::Int(header_bytes(&s.stream?.request_headers)))),
    (&["request", "size"], |s| {
        let declared = s
            .stream?
            .request_headers
            .get(b"content-length")
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<i64>().ok());
        declared.or_else(|| Some(count(info(s)?.live.request_body_bytes()))).map(Value::Int)
    }),
    (&["request", "total_size"], |s| {
        let received = count(info(s)?.live.request_body_bytes());
        Some(Value::Int(received.saturating_add(header_bytes(&s.stream?.request_headers))))
    }),
    (&["request", "duration"], |s| {
        let info = info(s).filter(|_| s.stream.is_some_and(|st| st.phase == Phase::Log))?;
        let duration = info.live.duration().unwrap_or_else(|| info.started.elapsed());
        Some(Value::Int(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)))
    }),
    (&["response", "code"], |s| {
        let status = response_headers(s)?.get(b":status")?;
        std::str::from_utf8(status).ok()?.parse().ok().map(Value::Int)
    }),
    (&["response", "headers"], |s| Some(Value::Map(joined(response_headers(s)?)))),
    (&["response", "trailers"], |s| Some(Value::Map(joined(s.stream?.response_trailers.as_ref()?)))),
    (&["response", "headers_bytes"], |s| Some(Value::Int(header_bytes(response_headers(s)?)))),
    (&["response", "size"], |s| {
        response_headers(s)?;
        Some(Value::Int(count(info(s)?.live.response_body_bytes())))
    }),
    (&["response", "total_size"], |s| {
        // Body, headers and trailers, as Envoy counts it.
        let body = count(info(s)?.live.response_body_bytes());
        let trailers = s.stream?.response_trailers.as_ref().map_or(0, header_bytes);
        Some(Value::Int(body.saturating_add(header_bytes(response_headers(s)?)).saturating_add(trailers)))
    }),
    (&["response", "code_details"], |s| Some(Value::Bytes(info(s)?.live.code_details()?.into_bytes()))),
    // Weir sets none of Envoy's response flags (they describe Envoy's own failure modes).
    (&["response", "flags"], |s| info(s).map(|_| Value::Int(0))),
    (&["upstream", "address"], |s| Some(bytes(info(s)?.live.upstream()?.as_bytes()))),
    (&["upstream", "port"], |s| {
        let (_, port) = info(s)?.live.upstream()?.rsplit_once(':')?;
        port.parse::<u16>().ok().map(|p| Value::Int(p.into()))
    }),
    (&["source", "address"], |s| Some(bytes(info(s)?.source.to_string().as_bytes()))),
    (&["source", "port"], |s| Some(Value::Int(info(s)?.source.port().into()))),
    (&["destination", "address"], |s| Some(bytes(info(s)?.destination.to_string().as_bytes()))),
    (&["destination", "port"], |s| Some(Value::Int(info(s)?.destination.port().into()))),
    (&["connection", "id"], |s| Some(Value::Uint(info(s)?.connection_id))),
    (&["connection_id"], |s| Some(Value::Uint(info(s)?.connection_id))),
    // Weir asks downstream clients for no certificate, so no connection is mutual TLS.
    (&["connection", "mtls"], |s| info(s).map(|_| Value::Bool(false))),
    (&["connection", "requested_server_name"], |s| Some(bytes(info(s)?.server_name.as_deref()?.as_bytes()))),
    (&["connection", "tls_version"], |s| Some(bytes(info(s)?.tls_version?.as_bytes()))),
    (&["xds", "route_name"], |s| Some(bytes(route_and_cluster(s)?.0.as_bytes()))),
    (&["route_name"], |s| Some(bytes(route_and_cluster(s)?.0.as_bytes()))),
    (&["xds", "cluster_name"], |s| Some(bytes(route_and_cluster(s)?.1?.as_bytes()))),
    (&["cluster_name"], |s| Some(bytes(route_and_cluster(s)?.1?.as_bytes()))),
    (&["plugin_name"], |s| Some(bytes(s.plugin?.name.as_bytes()))),
    (&["plugin_root_id"], |s| Some(bytes(s.plugin?.root_id.as_bytes()))),
    (&["plugin_vm_id"], |s| Some(bytes(s.plugin.map_or(s.vm_id, |p| &p.vm_id).as_bytes()))),
];

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn info<'a>(s: &PropertySource<'a>) -> Option<&'a RequestInfo> {
    s.stream?.info.as_deref()
}

/// The route serving the request and its cluster: the one chosen again after `clear_route_cache`, if it was.
fn route_and_cluster<'a>(s: &PropertySource<'a>) -> Option<(&'a str, Option<&'a str>)> {
    let info = info(s)?;
    Some(info.live.rerouted().unwrap_or((&info.route, info.cluster.as_deref())))
}

/// A header map's size as Envoy counts it: every name and value, pseudo-headers included.
fn header_bytes(map: &Headers) -> i64 {
    count(map.byte_size() as u64)
}

/// A byte count as an `int`.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn request_header(s: &PropertySource<'_>, name: &[u8]) -> Option<Value> {
    s.stream?.request_headers.get(name).map(bytes)
}

fn request_path<'a>(s: &PropertySource<'a>) -> Option<&'a [u8]> {
    s.stream?.request_headers.get(b":path")
}

/// Response headers, once the response-headers phase has begun.
fn response_headers<'a>(s: &PropertySource<'a>) -> Option<&'a Headers> {
    s.stream.filter(|st| st.phase >= Phase::ResponseHeaders).map(|st| &st.response_headers)
}

/// `(path, query)`: the query without its `?`, empty when there is none.
fn split_query(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().position(|b| *b == b'?') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, &[]),
    }
}

fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A header map with each name once, repeated values joined by `,` (as Envoy's attribute maps).
fn joined(map: &Headers) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(map.len());
    for (k, v) in map.iter() {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some((_, value)) => {
                value.push(b',');
                value.extend_from_slice(v);
            }
            None => out.push((k.to_vec(), v.to_vec())),
        }
    }
    out
}

/// Whether a one-segment property name reads an attribute ([`resolve`] steps 1 and 3) rather than a value set by
/// a filter.
pub fn is_attribute_name(name: &[u8]) -> bool {
    names_an_attribute(name) || names_an_attribute(name.splitn(2, |b| *b == b'.').next().unwrap_or_default())
}

fn names_an_attribute(first: &[u8]) -> bool {
    ATTRIBUTES.iter().any(|(name, _)| name[0].as_bytes() == first)
}

/// The attribute `path` names, with any key below it.
fn attribute(path: &[&[u8]], s: &PropertySource<'_>) -> Option<Value> {
    let (name, getter) = ATTRIBUTES
        .iter()
        .find(|(name, _)| path.len() >= name.len() && name.iter().zip(path).all(|(n, p)| n.as_bytes() == *p))?;
    getter(s)?.select(&path[name.len()..])
}

/// The encoded value at `path`, or `NOT_FOUND`:
///
/// 1. a path whose first segment names an attribute is that attribute (or nothing);
/// 2. else a value set for this request with `proxy_set_property` (by any filter of the chain) whose whole raw path equals this path's
///    first segment: Envoy stores under the raw path but looks up only the first segment, so only
///    single-segment names round-trip, and Weir does the same;
/// 3. else a single dotted segment (`request.path`) is split on its first two dots and tried as an
///    attribute, a fallback for plugins written for hosts that accept dotted names (ABI §2.2).
pub fn resolve(path: &[&[u8]], s: &PropertySource<'_>) -> Result<Vec<u8>, Status> {
    let first = path.first().ok_or(Status::NotFound)?;
    if names_an_attribute(first) {
        return attribute(path, s).map(Value::encode).ok_or(Status::NotFound);
    }
    if let Some(value) = s.stream.and_then(|st| st.property(first)) {
        return Ok(value);
    }
    if let [single] = path {
        let dotted: Vec<&[u8]> = single.splitn(3, |b| *b == b'.').collect();
        if dotted.len() > 1 && names_an_attribute(dotted[0]) {
            return attribute(&dotted, s).map(Value::encode).ok_or(Status::NotFound);
        }
    }
    Err(Status::NotFound)
}

#[cfg(test)]
mod tests;
