//! The route table: from a request's host, path, method and headers to the first route that matches.
//!
//! Pure and synchronous: built once per configuration, shared read-only by every worker.

mod matcher;

use crate::config;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use matcher::{HostMatcher, PathMatcher};
use std::sync::Arc;
use std::time::Duration;

/// A compiled route.
#[derive(Debug)]
pub struct Route {
    /// Position in the declared order (used to index per-route metrics).
    pub index: usize,
    /// The route's name.
    pub name: Arc<str>,
    hosts: Vec<HostMatcher>,
    path: Option<PathMatcher>,
    methods: Vec<Method>,
    headers: Vec<(HeaderName, config::HeaderCondition)>,
    /// Where matching requests go.
    pub action: Action,
    /// Replacement for the matched prefix.
    pub prefix_rewrite: Option<String>,
    /// Host header sent upstream instead of the client's.
    pub host_rewrite: Option<HeaderValue>,
    /// Headers set before proxying.
    pub headers_to_add: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed before proxying.
    pub headers_to_remove: Vec<HeaderName>,
    /// Per-route request timeout.
    pub timeout: Option<Duration>,
    /// When to try again.
    pub retry_policy: Option<config::RetryPolicy>,
    /// Where requests go when the cluster cannot take them (another cluster, or a response).
    pub fallback: Option<Action>,
}

/// What a route does with a request, ready to use.
#[derive(Debug)]
pub enum Action {
    /// Proxy to the named cluster.
    Cluster(String),
    /// Answer with this response.
    Direct {
        /// Status.
        status: StatusCode,
        /// Headers.
        headers: HeaderMap,
        /// Body.
        body: Bytes,
    },
}

impl Action {
    fn new(action: &config::RouteAction) -> Action {
        match action {
            config::RouteAction::Cluster(c) => Action::Cluster(c.clone()),
            config::RouteAction::Direct(d) => Action::Direct {
                status: StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK),
                headers: d
                    .headers
                    .iter()
                    .filter_map(|(n, v)| {
                        Some((HeaderName::from_bytes(n.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?))
                    })
                    .collect(),
                body: Bytes::from(d.body.clone()),
            },
        }
    }
}

/// What the router looks at.
pub struct RequestView<'a> {
    /// Host without port, lower case.
    pub host: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Method.
    pub method: &'a Method,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// The route table.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Compiles validated route configurations.
    pub fn new(routes: &[config::Route]) -> Result<Router, regex::Error> {
        let routes = routes
            .iter()
            .enumerate()
            .map(|(index, r)| {
                Ok(Route {
                    index,
                    name: r.name.as_str().into(),
                    hosts: r.matcher.hosts.iter().map(|h| HostMatcher::new(h)).collect(),
                    path: r.matcher.path.as_ref().map(PathMatcher::new).transpose()?,
                    methods: r.matcher.methods.iter().filter_map(|m| Method::from_bytes(m.as_bytes()).ok()).collect(),
                    headers: r
                        .matcher
                        .headers
                        .iter()
                        .filter_map(|h| Some((HeaderName::from_bytes(h.name.as_bytes()).ok()?, h.condition.clone())))
                        .collect(),
                    action: Action::new(&r.action),
                    prefix_rewrite: r.prefix_rewrite.clone(),
                    host_rewrite: r.host_rewrite.as_deref().and_then(|h| HeaderValue::from_str(h).ok()),
                    headers_to_add: r
                        .request_headers_to_add
                        .iter()
                        .filter_map(|(n, v)| {
                            Some((HeaderName::from_bytes(n.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?))
                        })
                        .collect(),
                    headers_to_remove: r
                        .request_headers_to_remove
                        .iter()
                        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                        .collect(),
                    timeout: r.timeout,
                    retry_policy: r.retry_policy.clone(),
                    fallback: r.fallback.as_ref().map(|f| match f {
                        config::Fallback::Cluster(c) => Action::new(&config::RouteAction::Cluster(c.clone())),
                        config::Fallback::Response(d) => Action::new(&config::RouteAction::Direct(d.clone())),
                    }),
                })
            })
            .collect::<Result<_, regex::Error>>()?;
        Ok(Router { routes })
    }

    /// The routes in declared order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route whose every condition holds.
    pub fn find(&self, req: &RequestView<'_>) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(req))
    }
}

impl Route {
    fn matches(&self, req: &RequestView<'_>) -> bool {
        (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(req.host)))
            && self.path.as_ref().is_none_or(|p| p.matches(req.path))
            && (self.methods.is_empty() || self.methods.contains(req.method))
            && self.headers.iter().all(|(name, cond)| match cond {
                config::HeaderCondition::Present(want) => req.headers.contains_key(name) == *want,
                config::HeaderCondition::Exact(v) => {
                    req.headers.get_all(name).iter().any(|h| h.as_bytes() == v.as_bytes())
                }
            })
    }

    /// The path sent upstream: the matched prefix replaced when a rewrite is configured.
    pub fn rewrite_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        match (&self.prefix_rewrite, &self.path) {
            (Some(new), Some(PathMatcher::Prefix(prefix))) => {
                let rest = &path[prefix.len().min(path.len())..];
                if new.ends_with('/') && rest.starts_with('/') {
                    format!("{new}{}", &rest[1..]).into()
                } else if rest.is_empty() || rest.starts_with('/') || new.ends_with('/') {
                    format!("{new}{rest}").into()
                } else {
                    format!("{new}/{rest}").into()
                }
            }
            _ => path.into(),
        }
    }
}

#[cfg(test)]
mod tests;
