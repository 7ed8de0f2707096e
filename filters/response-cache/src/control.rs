//! `Cache-Control` (RFC 9111 section 5.2): what a request lets the cache do, and whether and how long a
//! response may be kept.

/// The directives the cache acts on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Directives {
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache` (without field names; `Pragma: no-cache` on requests).
    pub no_cache: bool,
    /// `private` (without field names).
    pub private: bool,
    /// `max-age`, in seconds.
    pub max_age: Option<u64>,
    /// `s-maxage`, in seconds.
    pub s_maxage: Option<u64>,
}

/// Parses every `Cache-Control` value (directives are case-insensitive, separated by commas).
pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Directives {
    let mut d = Directives::default();
    for value in values {
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "no-store" => d.no_store = true,
                // `no-cache="field"` and `private="field"` only restrict those fields: not the whole response.
                "no-cache" if argument.is_none() => d.no_cache = true,
                "private" if argument.is_none() => d.private = true,
                // A repeated or unparsable age counts as 0 (RFC 9111 section 4.2.1: treat as stale).
                "max-age" => d.max_age = Some(if d.max_age.is_some() { 0 } else { seconds().unwrap_or(0) }),
                "s-maxage" => d.s_maxage = Some(if d.s_maxage.is_some() { 0 } else { seconds().unwrap_or(0) }),
                _ => {}
            }
        }
    }
    d
}

/// What a request's own directives make of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRule {
    /// Look up, and store on a miss.
    Normal {
        /// Entries older than this (milliseconds) count as expired for this request.
        max_age_ms: Option<u64>,
    },
    /// Do not look up; store the fresh answer (`no-cache`).
    Refresh,
    /// Neither look up nor store (`no-store`).
    Skip,
}

/// The rule for a request with these `Cache-Control` directives (and whether it had `Pragma: no-cache`).
pub fn request_rule(d: &Directives, pragma_no_cache: bool) -> RequestRule {
    if d.no_store {
        RequestRule::Skip
    } else if d.no_cache || (pragma_no_cache && d == &Directives::default()) || d.max_age == Some(0) {
        RequestRule::Refresh
    } else {
        RequestRule::Normal { max_age_ms: d.max_age.map(|s| s.saturating_mul(1000)) }
    }
}

/// How long a response may be kept (milliseconds), or `None` when it may not be stored: `no-store`, `private`
/// and `no-cache` refuse it; `s-maxage` wins over `max-age`; without either, `default_ms`; never beyond
/// `max_ms`.
pub fn response_ttl(d: &Directives, default_ms: u64, max_ms: u64) -> Option<u64> {
    if d.no_store || d.private || d.no_cache {
        return None;
    }
    let ttl = match d.s_maxage.or(d.max_age) {
        Some(seconds) => seconds.saturating_mul(1000),
        None => default_ms,
    };
    (ttl > 0).then_some(ttl.min(max_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_directives() {
        let table: &[(&[&str], bool, RequestRule)] = &[
            (&[], false, RequestRule::Normal { max_age_ms: None }),
            (&["no-store"], false, RequestRule::Skip),
            (&["No-Cache"], false, RequestRule::Refresh),
            (&[], true, RequestRule::Refresh),
            (&["max-age=5"], true, RequestRule::Normal { max_age_ms: Some(5000) }),
            (&["max-age=0"], false, RequestRule::Refresh),
            (&["max-age=10, no-store"], false, RequestRule::Skip),
            (&["max-age=x"], false, RequestRule::Refresh),
        ];
        for (values, pragma, want) in table {
            assert_eq!(request_rule(&parse(values.iter().copied()), *pragma), *want, "{values:?} {pragma}");
        }
    }

    #[test]
    fn response_directives() {
        let table: &[(&[&str], Option<u64>)] = &[
            (&[], Some(300_000)),
            (&["max-age=60"], Some(60_000)),
            (&["max-age=60, s-maxage=120"], Some(120_000)),
            (&["s-maxage=0, max-age=60"], None),
            (&["public, max-age=999999"], Some(3_600_000)),
            (&["no-store"], None),
            (&["private"], None),
            (&["private=\"x-user\", max-age=5"], Some(5000)),
            (&["no-cache"], None),
            (&["max-age=10", "max-age=20"], None),
        ];
        for (values, want) in table {
            assert_eq!(response_ttl(&parse(values.iter().copied()), 300_000, 3_600_000), *want, "{values:?}");
        }
    }
}
