//! Keys: the values a limit's counter is picked by (the consumer, an API key, the client address, the route,
//! any header, or several of them), and the client address behind trusted proxies.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use weir_sdk::http::HeaderSnapshot;
use weir_sdk::property;

use crate::config::{header_name, SourceConfig};

/// A key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The consumer: the `weir.consumer` property (set by jwt-auth), else the consumer header.
    Consumer,
    /// The client address ([`client_ip`]).
    ClientIp,
    /// The route's name (`xds.route_name`).
    Route,
    /// A request header's value.
    Header(String),
    /// A request header holding a secret: its SHA-256 (hex, first 32 digits) stands for it in store keys.
    ApiKey(String),
}

/// The key sources, for error messages.
const SOURCES: &str = "consumer, client_ip, route, {\"header\": ..}, {\"api_key\": ..}";

impl Source {
    /// The source a configuration entry names.
    pub fn from_config(config: &SourceConfig) -> Result<Source, String> {
        match config {
            SourceConfig::Named(name) => match name.as_str() {
                "consumer" => Ok(Source::Consumer),
                "client_ip" => Ok(Source::ClientIp),
                "route" => Ok(Source::Route),
                other => Err(format!("{other:?} is not a key source ({SOURCES})")),
            },
            SourceConfig::Header { header: Some(name), api_key: None } => {
                Ok(Source::Header(header_name(name, "header")?))
            }
            SourceConfig::Header { header: None, api_key: Some(name) } => {
                Ok(Source::ApiKey(header_name(name, "api_key")?))
            }
            SourceConfig::Header { .. } => Err("give exactly one of `header` and `api_key`".into()),
        }
    }
}

/// What the key sources read, gathered once per request.
pub struct Request<'a> {
    /// The request headers.
    pub headers: &'a HeaderSnapshot,
    /// The consumer, if a limit needs it ([`consumer`]).
    pub consumer: Option<String>,
    /// The client address, if a limit needs it.
    pub client_ip: Option<String>,
    /// The route, if a limit needs it.
    pub route: Option<String>,
}

/// The consumer of this request: the `weir.consumer` property, else the consumer header.
pub fn consumer(headers: &HeaderSnapshot, consumer_header: &str) -> Option<String> {
    if let Some(name) = property::get::<String>(&["weir.consumer"]).filter(|n| !n.is_empty()) {
        return Some(name);
    }
    headers.get(consumer_header).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// The value of `source` for this request, as it goes into the store key and override matching; `None` when
/// the request has none.
pub fn value(source: &Source, request: &Request<'_>) -> Option<String> {
    match source {
        Source::Consumer => request.consumer.clone(),
        Source::ClientIp => request.client_ip.clone(),
        Source::Route => request.route.clone(),
        Source::Header(name) => request.headers.get(name).map(str::to_owned),
        Source::ApiKey(name) => request.headers.get(name).filter(|v| !v.is_empty()).map(str::to_owned),
    }
}

/// The first 32 hex digits of SHA-256.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// A store key part: the value itself, or its digest when it is a secret, long, or could be confused with the
/// separator.
pub fn store_part(source: &Source, value: &str) -> String {
    if matches!(source, Source::ApiKey(_)) || value.len() > 96 || value.bytes().any(|b| b == b'|' || b < 0x20) {
        format!("#{}", digest(value.as_bytes()))
    } else {
        value.to_owned()
    }
}

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `::1`, `192.168.1.7` (a single address).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { network, bits })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V4(n), IpAddr::V6(a)) => {
                a.to_ipv4_mapped().is_some_and(|a| prefix_eq(&n.octets(), &a.octets(), self.bits))
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

/// The client address: the peer, or (with a forwarded header) the right-most address of
/// `forwarded entries..., peer` (the peer not repeated when the header already ends with it) left after skipping
/// `trusted_hops` addresses from the right and then every address in `trusted`. An entry that is not an address
/// stops the walk: the address to its right is used.
pub fn client_ip(peer: Option<IpAddr>, forwarded: &[&str], trusted_hops: usize, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    let mut chain: Vec<Option<IpAddr>> =
        forwarded.iter().flat_map(|v| v.split(',')).map(|e| parse_entry(e.trim())).collect();
    // Weir (like Envoy with `use_remote_address`) appends the peer to `X-Forwarded-For` before filters run: the
    // peer is counted once.
    if chain.last() != Some(&Some(peer)) {
        chain.push(Some(peer));
    }
    let mut chosen = peer;
    for (skipped, entry) in chain.iter().rev().enumerate() {
        let Some(address) = *entry else { return Some(chosen) };
        chosen = address;
        let trusted_here = skipped < trusted_hops || trusted.iter().any(|c| c.contains(address));
        if !trusted_here {
            return Some(address);
        }
    }
    Some(chosen)
}

/// An `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarded_addresses_behind_trusted_proxies() {
        let lb = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        let table: &[(&[&str], usize, &[Cidr], &str)] = &[
            (&[], 0, &[], "10.1.1.1"),
            (&["1.1.1.1, 2.2.2.2"], 0, &[], "10.1.1.1"),
            (&["1.1.1.1, 2.2.2.2"], 1, &[], "2.2.2.2"),
            (&["1.1.1.1, 2.2.2.2"], 2, &[], "1.1.1.1"),
            (&["1.1.1.1, 2.2.2.2"], 9, &[], "1.1.1.1"),
            (&["1.1.1.1", "2.2.2.2, 10.0.0.7"], 0, &lb, "2.2.2.2"),
            (&["spoofed, 2.2.2.2"], 3, &[], "2.2.2.2"),
            (&["[::1]:80"], 1, &[], "::1"),
            (&["1.1.1.1, 10.1.1.1"], 1, &[], "1.1.1.1"),
            (&["1.1.1.1, 10.1.1.1"], 0, &[], "10.1.1.1"),
        ];
        for (forwarded, hops, trusted, want) in table {
            assert_eq!(
                client_ip(Some(ip("10.1.1.1")), forwarded, *hops, trusted),
                Some(ip(want)),
                "{forwarded:?} {hops}"
            );
        }
    }

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("192.168.0.0/23").expect("cidr");
        assert!(c.contains(ip("192.168.1.200")) && !c.contains(ip("192.168.2.1")));
        assert!(c.contains(ip("::ffff:192.168.0.9")));
        assert!(Cidr::parse("fd00::/8").expect("cidr").contains(ip("fd12::1")));
        assert_eq!(Cidr::parse("1.2.3.4/33"), None);
        assert_eq!(Cidr::parse("nope"), None);
    }
}
