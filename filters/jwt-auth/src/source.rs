//! Where the token is: a header (with a prefix), a query parameter or a cookie, tried in the configured order;
//! and taking it out of the request when it must not go upstream.

use weir_sdk::http::{HeaderSnapshot, Headers};

use crate::config::TokenSource;
use crate::failure::Failure;

/// A token and the index of the source it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    /// The token text, in the request's headers.
    pub token: &'a str,
    /// Index in the configured sources.
    pub source: usize,
}

/// The token of the first source present in `headers` (the request's headers, `:path` included). A source
/// that holds two tokens is ambiguous: refused.
pub fn find<'a>(sources: &[TokenSource], headers: &'a HeaderSnapshot) -> Result<Option<Found<'a>>, Failure> {
    for (index, source) in sources.iter().enumerate() {
        let mut tokens: Vec<&str> = match source {
            TokenSource::Header(header) => {
                headers.get_all(&header.name).filter_map(|value| strip_prefix(value, &header.prefix)).collect()
            }
            TokenSource::Query(name) => query_values(path(headers), name).collect(),
            TokenSource::Cookie(name) => {
                headers.get_all("cookie").flat_map(|value| cookie_values(value, name)).collect()
            }
        };
        tokens.retain(|token| !token.is_empty());
        match tokens.as_slice() {
            [] => continue,
            [token] => return Ok(Some(Found { token, source: index })),
            _ => return Err(Failure::TokenMalformed),
        }
    }
    Ok(None)
}

/// Removes the token of `source` from the request.
pub fn remove(source: &TokenSource, headers: Headers, current: &HeaderSnapshot) {
    match source {
        TokenSource::Header(header) => headers.remove(&header.name),
        TokenSource::Query(name) => {
            let path = path(current);
            let without = remove_query(path, name);
            if without != path {
                headers.set(":path", &without);
            }
        }
        TokenSource::Cookie(name) => {
            let kept: Vec<String> = current.get_all("cookie").filter_map(|value| remove_cookie(value, name)).collect();
            headers.remove("cookie");
            for value in kept {
                headers.add("cookie", &value);
            }
        }
    }
}

fn path(headers: &HeaderSnapshot) -> &str {
    headers.get(":path").unwrap_or("/")
}

fn strip_prefix<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| value[prefix.len()..].trim())
}

fn query_values<'a, 'n>(path: &'a str, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    let query = path.split_once('?').map_or("", |(_, query)| query);
    query.split('&').filter_map(move |pair| match pair.split_once('=') {
        Some((key, value)) if key == name => Some(value),
        _ => None,
    })
}

fn cookie_values<'a, 'n>(header: &'a str, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    header.split(';').filter_map(move |pair| match pair.trim().split_once('=') {
        Some((key, value)) if key.trim() == name => Some(value.trim().trim_matches('"')),
        _ => None,
    })
}

/// `path` without parameter `name` (and without `?` when nothing is left).
fn remove_query(path: &str, name: &str) -> String {
    let Some((base, query)) = path.split_once('?') else { return path.to_owned() };
    let kept: Vec<&str> =
        query.split('&').filter(|pair| pair.split_once('=').map_or(*pair, |(key, _)| key) != name).collect();
    if kept.iter().all(|pair| pair.is_empty()) {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// The cookie header without cookie `name`; `None` when nothing is left.
fn remove_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').map_or(*pair, |(key, _)| key.trim()) != name)
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeaderSource;

    fn sources() -> Vec<TokenSource> {
        vec![
            TokenSource::Header(HeaderSource { name: "authorization".into(), prefix: "Bearer ".into() }),
            TokenSource::Header(HeaderSource { name: "x-token".into(), prefix: "Token ".into() }),
            TokenSource::Query("access_token".into()),
            TokenSource::Cookie("jwt".into()),
        ]
    }

    #[test]
    fn finds_the_first_source_present() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<Option<(&'a str, usize)>, Failure>);
        let table: &[Case] = &[
            (&[(":path", "/")], Ok(None)),
            (&[(":path", "/"), ("authorization", "Bearer a.b.c")], Ok(Some(("a.b.c", 0)))),
            (&[(":path", "/"), ("authorization", "bearer  a.b.c ")], Ok(Some(("a.b.c", 0)))),
            (&[(":path", "/"), ("authorization", "Basic eHg6eHg=")], Ok(None)),
            (&[(":path", "/"), ("authorization", "Bearer ")], Ok(None)),
            (
                &[(":path", "/"), ("authorization", "Bearer x"), ("authorization", "Bearer y")],
                Err(Failure::TokenMalformed),
            ),
            (&[(":path", "/"), ("x-token", "Token t")], Ok(Some(("t", 1)))),
            (&[(":path", "/a?x=1&access_token=q&y=2")], Ok(Some(("q", 2)))),
            (&[(":path", "/a?access_token=q&access_token=r")], Err(Failure::TokenMalformed)),
            (&[(":path", "/a?xaccess_token=q")], Ok(None)),
            (&[(":path", "/"), ("cookie", "a=1; jwt=c; b=2")], Ok(Some(("c", 3)))),
            (&[(":path", "/?access_token=q"), ("authorization", "Bearer h")], Ok(Some(("h", 0)))),
        ];
        for (headers, want) in table {
            let headers = HeaderSnapshot::from_pairs(headers);
            let got = find(&sources(), &headers);
            let want = (*want).map(|found| found.map(|(token, source)| Found { token, source }));
            assert_eq!(got, want, "{headers:?}");
        }
    }

    #[test]
    fn removes_query_parameters_and_cookies() {
        let table = [
            ("/a?access_token=q", "/a"),
            ("/a?x=1&access_token=q&y=2", "/a?x=1&y=2"),
            ("/a?x=1", "/a?x=1"),
            ("/a", "/a"),
        ];
        for (path, want) in table {
            assert_eq!(remove_query(path, "access_token"), want);
        }
        assert_eq!(remove_cookie("a=1; jwt=c; b=2", "jwt").as_deref(), Some("a=1; b=2"));
        assert_eq!(remove_cookie("jwt=c", "jwt"), None);
    }
}
