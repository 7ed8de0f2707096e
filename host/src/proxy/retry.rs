//! Which tries a route's retry policy repeats, and which requests may be tried more than once.

use crate::config::RetryPolicy;

/// How one try ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TryEnd {
    /// Response headers with this status.
    Answered(u16),
    /// No connection (refused, unreachable, connect timeout, TLS failure).
    ConnectFailure,
    /// The connection broke before response headers.
    Reset,
    /// No response headers within the try's timeout.
    Timeout,
}

/// Why `end` is tried again under `policy` (the `reason` label of `weir_upstream_retries_total`), or `None`.
pub(super) fn reason(policy: &RetryPolicy, end: TryEnd) -> Option<&'static str> {
    match end {
        TryEnd::Answered(status) if policy.retries_status(status) => Some("status"),
        TryEnd::Answered(_) => None,
        TryEnd::ConnectFailure if policy.on_connect_failure => Some("connect_failure"),
        TryEnd::Reset if policy.on_reset => Some("reset"),
        // A try that timed out is retried by the conditions that cover a 504 the gateway would answer.
        TryEnd::Timeout if policy.on_reset || policy.retries_status(504) => Some("per_try_timeout"),
        _ => None,
    }
}

/// Whether `method` may be sent twice without asking (RFC 9110 section 9.2.2).
pub(super) fn idempotent(method: &http::Method) -> bool {
    use http::Method;
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE, Method::PUT, Method::DELETE].contains(method)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(conditions: &[&str], statuses: &[u16]) -> RetryPolicy {
        RetryPolicy {
            on_connect_failure: conditions.contains(&"connect-failure"),
            on_reset: conditions.contains(&"reset"),
            on_5xx: conditions.contains(&"5xx"),
            statuses: statuses.to_vec(),
            ..RetryPolicy::default()
        }
    }

    /// (retry_on, retriable statuses, how the try ended, the retry reason)
    type Case = (&'static [&'static str], &'static [u16], TryEnd, Option<&'static str>);

    #[test]
    fn conditions_table() {
        use TryEnd::*;
        let cases: &[Case] = &[
            (&["connect-failure"], &[], ConnectFailure, Some("connect_failure")),
            (&["connect-failure"], &[], Reset, None),
            (&["connect-failure"], &[], Answered(503), None),
            (&["reset"], &[], Reset, Some("reset")),
            (&["reset"], &[], Timeout, Some("per_try_timeout")),
            (&["5xx"], &[], Answered(500), Some("status")),
            (&["5xx"], &[], Answered(404), None),
            (&["5xx"], &[], Timeout, Some("per_try_timeout")),
            (&[], &[429], Answered(429), Some("status")),
            (&[], &[429], Answered(503), None),
            (&[], &[502, 503, 504], Timeout, Some("per_try_timeout")),
            (&[], &[502, 503, 504], ConnectFailure, None),
        ];
        for (conditions, statuses, end, want) in cases {
            assert_eq!(reason(&policy(conditions, statuses), *end), *want, "{conditions:?} {statuses:?} {end:?}");
        }
    }

    #[test]
    fn only_idempotent_methods_by_default() {
        for (method, want) in [("GET", true), ("PUT", true), ("DELETE", true), ("POST", false), ("PATCH", false)] {
            assert_eq!(idempotent(&method.parse().unwrap()), want, "{method}");
        }
    }
}
