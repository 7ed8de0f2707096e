//! Host and path matchers.

use crate::config::PathMatch;
use regex::Regex;

/// Matches a request host: exact, or `*.suffix` for any subdomain of the suffix (not the suffix itself).
#[derive(Debug)]
pub enum HostMatcher {
    /// The host equals this (lower case).
    Exact(String),
    /// The host ends with this (lower case, leading dot kept) and has something before it.
    Suffix(String),
}

impl HostMatcher {
    /// Compiles a validated host pattern.
    pub fn new(pattern: &str) -> HostMatcher {
        match pattern.strip_prefix('*') {
            Some(suffix) => HostMatcher::Suffix(suffix.to_ascii_lowercase()),
            None => HostMatcher::Exact(pattern.to_ascii_lowercase()),
        }
    }

    /// Whether `host` (lower case, no port) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatcher::Exact(h) => host == h,
            HostMatcher::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// Matches a request path (without its query).
#[derive(Debug)]
pub enum PathMatcher {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Whole-path regular expression.
    Regex(Regex),
}

impl PathMatcher {
    /// Compiles a path condition; the regex is anchored at both ends.
    pub fn new(m: &PathMatch) -> Result<PathMatcher, regex::Error> {
        Ok(match m {
            PathMatch::Exact(p) => PathMatcher::Exact(p.clone()),
            PathMatch::Prefix(p) => PathMatcher::Prefix(p.clone()),
            PathMatch::Regex(r) => PathMatcher::Regex(Regex::new(&format!("^(?:{r})$"))?),
        })
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(p) => path == p,
            PathMatcher::Prefix(p) => path.starts_with(p.as_str()),
            PathMatcher::Regex(r) => r.is_match(path),
        }
    }
}
