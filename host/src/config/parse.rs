//! From a JSON document to the typed [`Config`], collecting every issue along the way.

use super::reader::{as_array, as_str, as_u64_in, type_name, Issues, Obj};
use super::resilience;
use super::*;
use serde_json::Value;
use std::collections::HashSet;

const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

/// Routes and clusters from the registry, parsed after the file's own: (path label, JSON).
#[derive(Default)]
pub(super) struct Extra {
    pub clusters: Vec<(String, Value)>,
    pub routes: Vec<(String, Value)>,
}

pub(super) fn config(source: Arc<ConfigSource>, extra: &Extra) -> Result<Config, Vec<ConfigIssue>> {
    let mut issues = Issues::default();
    let (doc, base) = (&source.doc, source.base.as_path());
    let Some(mut root) = Obj::new(doc, "$", &mut issues) else {
        return Err(issues.into_vec());
    };
    let workers = root.u64_in("workers", 1, 256, &mut issues).map(|n| n as usize);
    let data_dir = root.str("data_dir", &mut issues).map(|s| resolve(base, s)).unwrap_or_else(|| "weir-data".into());
    let listeners = listeners(&mut root, base, &mut issues);
    let admin = admin(&mut root, &mut issues);
    let clusters = clusters(&mut root, &extra.clusters, base, &mut issues);
    let routes = routes(&mut root, &extra.routes, &clusters, base, &mut issues);
    let drain_timeout = match root.get("shutdown") {
        Some(v) => Obj::new(v, &root.child("shutdown"), &mut issues)
            .and_then(|mut o| {
                let d = o.u64_in("drain_timeout_ms", 0, 3_600_000, &mut issues);
                o.finish(&mut issues);
                d
            })
            .map(Duration::from_millis),
        None => None,
    }
    .unwrap_or(Duration::from_secs(10));
    let logging = logging(&mut root, &mut issues);
    let registry = registry(&mut root, base, &mut issues);
    root.finish(&mut issues);

    if let Some(listener) = listeners.iter().find(|l| l.address.port() != 0 && l.address == admin.address) {
        issues.push(
            "$.admin.address",
            format!(
                "{} is also the address of listener \"{}\"; give the admin API its own port",
                admin.address, listener.name
            ),
        );
    }
    if !issues.is_empty() {
        return Err(issues.into_vec());
    }
    Ok(Config { workers, data_dir, listeners, admin, routes, clusters, drain_timeout, logging, registry, source })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn millis(o: &mut Obj, key: &'static str, default_ms: u64, issues: &mut Issues) -> Duration {
    Duration::from_millis(o.u64_in(key, 1, 86_400_000, issues).unwrap_or(default_ms))
}

fn socket_addr(v: &str, path: &str, issues: &mut Issues) -> Option<SocketAddr> {
    match v.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            issues.push(
                path,
                format!("\"{v}\" is not an IP address and port; write it like \"127.0.0.1:8080\" or \"[::1]:8080\""),
            );
            None
        }
    }
}

fn name(o: &mut Obj, what: &str, seen: &mut HashSet<String>, issues: &mut Issues) -> Option<String> {
    let path = o.child("name");
    let n = o.req_str("name", issues, &format!("; every {what} needs a unique name"))?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        issues.push(&path, format!("\"{n}\" is not a valid {what} name; use letters, digits, '-', '_' and '.'"));
        return None;
    }
    if !seen.insert(n.to_string()) {
        issues.push(&path, format!("duplicate {what} name \"{n}\"; names must be unique"));
        return None;
    }
    Some(n.to_string())
}

// === listeners ===

fn listeners(root: &mut Obj, base: &Path, issues: &mut Issues) -> Vec<Listener> {
    let path = root.child("listeners");
    let Some(items) = root
        .req("listeners", issues, "; add at least one, like {\"name\": \"main\", \"address\": \"127.0.0.1:8080\"}")
        .and_then(|v| as_array(v, &path, issues))
    else {
        return Vec::new();
    };
    if items.is_empty() {
        issues
            .push(&path, "no listeners; add at least one, like {\"name\": \"main\", \"address\": \"127.0.0.1:8080\"}");
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut out = Vec::new();
    for (p, v) in items {
        let Some(mut o) = Obj::new(v, &p, issues) else { continue };
        let name = name(&mut o, "listener", &mut names, issues);
        let apath = o.child("address");
        let address =
            o.req_str("address", issues, " (like \"127.0.0.1:8080\")").and_then(|a| socket_addr(a, &apath, issues));
        if let Some(a) = address {
            if a.port() != 0 && !addrs.insert(a) {
                issues.push(&apath, format!("{a} is used by another listener; each listener needs its own address"));
            }
        }
        let tls = o.get("tls").and_then(|t| listener_tls(t, &o.child("tls"), base, issues));
        let idle_timeout = millis(&mut o, "idle_timeout_ms", 60_000, issues);
        let header_timeout = millis(&mut o, "header_timeout_ms", 10_000, issues);
        o.finish(issues);
        if let (Some(name), Some(address)) = (name, address) {
            out.push(Listener { name, address, tls, idle_timeout, header_timeout });
        }
    }
    out
}

fn existing_file(o: &mut Obj, key: &'static str, base: &Path, issues: &mut Issues) -> Option<PathBuf> {
    let path = o.child(key);
    let f = resolve(base, o.req_str(key, issues, " (a PEM file path)")?);
    if !f.is_file() {
        issues.push(&path, format!("file {} does not exist or is not a regular file", f.display()));
        return None;
    }
    Some(f)
}

fn listener_tls(v: &Value, path: &str, base: &Path, issues: &mut Issues) -> Option<ListenerTls> {
    let mut o = Obj::new(v, path, issues)?;
    let cpath = o.child("certificates");
    let items = o
        .req("certificates", issues, "; list {\"cert\": FILE, \"key\": FILE} objects")
        .and_then(|v| as_array(v, &cpath, issues));
    o.finish(issues);
    let items = items?;
    if items.is_empty() {
        issues.push(&cpath, "no certificates; TLS needs at least one {\"cert\": FILE, \"key\": FILE}");
        return None;
    }
    let mut certificates = Vec::new();
    for (p, v) in items {
        let Some(mut c) = Obj::new(v, &p, issues) else { continue };
        let cert_file = existing_file(&mut c, "cert", base, issues);
        let key_file = existing_file(&mut c, "key", base, issues);
        let mut server_names = Vec::new();
        if let Some(names) = c.array("server_names", issues) {
            for (np, nv) in names {
                if let Some(n) = as_str(nv, &np, issues) {
                    if valid_host_pattern(n) {
                        server_names.push(n.to_ascii_lowercase());
                    } else {
                        issues.push(&np, format!("\"{n}\" is not a host name or a \"*.example.com\" wildcard"));
                    }
                }
            }
        }
        c.finish(issues);
        if let (Some(cert_file), Some(key_file)) = (cert_file, key_file) {
            certificates.push(Certificate { cert_file, key_file, server_names });
        }
    }
    Some(ListenerTls { certificates })
}

fn valid_host_pattern(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty() && h.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

// === admin and logging ===

fn admin(root: &mut Obj, issues: &mut Issues) -> Admin {
    let default = Admin { address: DEFAULT_ADMIN.parse().expect("valid default"), token: None };
    let Some(v) = root.get("admin") else { return default };
    let Some(mut o) = Obj::new(v, &root.child("admin"), issues) else { return default };
    let apath = o.child("address");
    let address = o.str("address", issues).and_then(|a| socket_addr(a, &apath, issues)).unwrap_or(default.address);
    let tpath = o.child("token");
    let token = o.str("token", issues).and_then(|t| {
        if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            issues.push(&tpath, "the admin token must be at least 16 characters with no spaces; or leave it out and Weir generates one in the data directory");
            None
        } else {
            Some(t.to_string())
        }
    });
    o.finish(issues);
    Admin { address, token }
}

fn registry(root: &mut Obj, base: &Path, issues: &mut Issues) -> RegistrySettings {
    let Some(v) = root.get("registry") else { return RegistrySettings::default() };
    let Some(mut o) = Obj::new(v, &root.child("registry"), issues) else { return RegistrySettings::default() };
    let mut trusted_keys = Vec::new();
    if let Some(items) = o.array("trusted_keys", issues) {
        for (p, v) in items {
            let Some(file) = as_str(v, &p, issues) else { continue };
            match crate::artifact::sign::read_verifying_key(&resolve(base, file)) {
                Ok(k) => trusted_keys.push(k),
                Err(e) => issues.push(&p, e.to_string()),
            }
        }
    }
    let spath = o.child("require_signed");
    let require_signed = o.bool("require_signed", issues).unwrap_or(false);
    if require_signed && trusted_keys.is_empty() {
        issues.push(&spath, "true with no trusted_keys would refuse every filter; list the public key files you trust");
    }
    o.finish(issues);
    RegistrySettings { trusted_keys, require_signed }
}

fn logging(root: &mut Obj, issues: &mut Issues) -> Logging {
    let mut logging = Logging { format: LogFormat::Human, access_log: true };
    let Some(v) = root.get("logging") else { return logging };
    let Some(mut o) = Obj::new(v, &root.child("logging"), issues) else { return logging };
    let fpath = o.child("format");
    match o.str("format", issues) {
        Some("human") | None => {}
        Some("json") => logging.format = LogFormat::Json,
        Some(other) => issues.push(&fpath, format!("unknown log format \"{other}\"; use \"human\" or \"json\"")),
    }
    if let Some(b) = o.bool("access_log", issues) {
        logging.access_log = b;
    }
    o.finish(issues);
    logging
}

// === routes ===

fn routes(
    root: &mut Obj,
    extra: &[(String, Value)],
    clusters: &[Cluster],
    base: &Path,
    issues: &mut Issues,
) -> Vec<Route> {
    let mut items = root.array("routes", issues).unwrap_or_default();
    items.extend(extra.iter().map(|(p, v)| (p.clone(), v)));
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (p, v) in items {
        let Some(mut o) = Obj::new(v, &p, issues) else { continue };
        let name = name(&mut o, "route", &mut names, issues);
        let matcher = match o.get("match") {
            Some(m) => route_match(m, &o.child("match"), issues),
            None => Some(RouteMatch::default()),
        };
        let cpath = o.child("cluster");
        let cluster = o.str("cluster", issues).and_then(|c| {
            if clusters.iter().any(|k| k.name == c) {
                Some(c.to_string())
            } else {
                let known: Vec<&str> = clusters.iter().map(|k| k.name.as_str()).collect();
                issues.push(
                    &cpath,
                    format!(
                        "unknown cluster \"{c}\"; defined clusters: {}",
                        if known.is_empty() { "none (add one under $.clusters)".to_string() } else { known.join(", ") }
                    ),
                );
                None
            }
        });
        let direct = o.get("direct_response").and_then(|d| direct_response(d, &o.child("direct_response"), issues));
        let has_cluster = o.get("cluster").is_some();
        let has_direct = o.get("direct_response").is_some();
        let action = match (cluster, direct) {
            (Some(c), None) if !has_direct => Some(RouteAction::Cluster(c)),
            (None, Some(d)) if !has_cluster => Some(RouteAction::Direct(d)),
            _ => {
                if has_cluster == has_direct {
                    issues.push(o.path(), "a route needs exactly one of \"cluster\" (proxy upstream) or \"direct_response\" (answer directly)");
                }
                None
            }
        };
        let rpath = o.child("prefix_rewrite");
        let prefix_rewrite = o.str("prefix_rewrite", issues).map(str::to_string);
        if prefix_rewrite.is_some()
            && !matches!(matcher.as_ref().and_then(|m| m.path.as_ref()), Some(PathMatch::Prefix(_)))
        {
            issues.push(&rpath, "prefix_rewrite needs a prefix path match ({\"path\": {\"prefix\": \"/api\"}})");
        }
        if let Some(r) = &prefix_rewrite {
            if !r.starts_with('/') {
                issues.push(&rpath, format!("\"{r}\" must start with '/'"));
            }
        }
        let hpath = o.child("host_rewrite");
        let host_rewrite =
            o.str("host_rewrite", issues).and_then(|h| header_value(h, &hpath, issues).map(|_| h.to_string()));
        let request_headers_to_add = o
            .get("request_headers_to_add")
            .map(|v| header_map(v, &o.child("request_headers_to_add"), issues))
            .unwrap_or_default();
        let mut request_headers_to_remove = Vec::new();
        if let Some(items) = o.array("request_headers_to_remove", issues) {
            for (hp, hv) in items {
                if let Some(h) = as_str(hv, &hp, issues).and_then(|h| header_name(h, &hp, issues)) {
                    request_headers_to_remove.push(h);
                }
            }
        }
        let timeout = o.u64_in("timeout_ms", 1, 86_400_000, issues).map(Duration::from_millis);
        let filters = o.array("filters", issues).map(|items| filters(items, base, issues)).unwrap_or_default();
        let retry_policy =
            o.get("retry_policy").and_then(|v| resilience::retry_policy(v, &o.child("retry_policy"), issues));
        let known: Vec<&str> = clusters.iter().map(|k| k.name.as_str()).collect();
        let fallback = o
            .get("fallback")
            .and_then(|v| resilience::fallback(v, &o.child("fallback"), &known, direct_response, issues));
        if (retry_policy.is_some() || fallback.is_some()) && matches!(action, Some(RouteAction::Direct(_))) {
            issues.push(
                o.path(),
                "retry_policy and fallback apply to routes with a \"cluster\", not to a direct_response",
            );
        }
        o.finish(issues);
        if let (Some(name), Some(matcher), Some(action)) = (name, matcher, action) {
            out.push(Route {
                name,
                matcher,
                action,
                prefix_rewrite,
                host_rewrite,
                request_headers_to_add,
                request_headers_to_remove,
                timeout,
                filters,
                retry_policy,
                fallback,
            });
        }
    }
    out
}

fn header_name(h: &str, path: &str, issues: &mut Issues) -> Option<String> {
    match http::HeaderName::from_bytes(h.as_bytes()) {
        Ok(n) => Some(n.as_str().to_string()),
        Err(_) => {
            issues.push(
                path,
                format!("\"{h}\" is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            );
            None
        }
    }
}

fn header_value(v: &str, path: &str, issues: &mut Issues) -> Option<()> {
    match http::HeaderValue::from_str(v) {
        Ok(_) => Some(()),
        Err(_) => {
            issues.push(path, "not a valid HTTP header value (no control characters or line breaks)");
            None
        }
    }
}

/// `{"name": "value", ...}` with every name and value checked.
fn header_map(v: &Value, path: &str, issues: &mut Issues) -> Vec<(String, String)> {
    let Value::Object(map) = v else {
        issues.push(
            path,
            format!(
                "expected an object of header names to values, like {{\"x-team\": \"payments\"}}; found {}",
                type_name(v)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, val) in map {
        let p = format!("{path}.{k}");
        let name = header_name(k, &p, issues);
        let value = as_str(val, &p, issues).and_then(|s| header_value(s, &p, issues).map(|_| s.to_string()));
        if let (Some(n), Some(v)) = (name, value) {
            out.push((n, v));
        }
    }
    out
}

fn route_match(v: &Value, path: &str, issues: &mut Issues) -> Option<RouteMatch> {
    let mut o = Obj::new(v, path, issues)?;
    let mut m = RouteMatch::default();
    let hpath = o.child("host");
    if let Some(h) = o.get("host") {
        let list: Vec<(String, &Value)> = match h {
            Value::Array(_) => as_array(h, &hpath, issues).unwrap_or_default(),
            other => vec![(hpath.clone(), other)],
        };
        for (p, v) in list {
            if let Some(s) = as_str(v, &p, issues) {
                if valid_host_pattern(s) {
                    m.hosts.push(s.to_ascii_lowercase());
                } else {
                    issues.push(
                        &p,
                        format!("\"{s}\" is not a host name or a \"*.example.com\" wildcard (no port, no scheme)"),
                    );
                }
            }
        }
    }
    if let Some(p) = o.get("path") {
        m.path = path_match(p, &o.child("path"), issues);
    }
    if let Some(items) = o.array("methods", issues) {
        for (p, v) in items {
            if let Some(s) = as_str(v, &p, issues) {
                match http::Method::from_bytes(s.as_bytes()) {
                    Ok(_) if !s.is_empty() => m.methods.push(s.to_ascii_uppercase()),
                    _ => issues.push(&p, format!("\"{s}\" is not an HTTP method")),
                }
            }
        }
    }
    if let Some(items) = o.array("headers", issues) {
        for (p, v) in items {
            let Some(mut h) = Obj::new(v, &p, issues) else { continue };
            let npath = h.child("name");
            let name = h.req_str("name", issues, "").and_then(|n| header_name(n, &npath, issues));
            let vpath = h.child("value");
            let value = h.str("value", issues).and_then(|s| header_value(s, &vpath, issues).map(|_| s.to_string()));
            let present = h.bool("present", issues);
            let condition = match (value, present) {
                (Some(v), None) => Some(HeaderCondition::Exact(v)),
                (None, Some(p)) => Some(HeaderCondition::Present(p)),
                (None, None) if h.get("value").is_none() => Some(HeaderCondition::Present(true)),
                (Some(_), Some(_)) => {
                    issues.push(&p, "give either \"value\" or \"present\", not both");
                    None
                }
                _ => None,
            };
            h.finish(issues);
            if let (Some(name), Some(condition)) = (name, condition) {
                m.headers.push(HeaderMatch { name, condition });
            }
        }
    }
    o.finish(issues);
    Some(m)
}

fn path_match(v: &Value, path: &str, issues: &mut Issues) -> Option<PathMatch> {
    let mut o = Obj::new(v, path, issues)?;
    let exact = o.str("exact", issues);
    let prefix = o.str("prefix", issues);
    let epath = o.child("regex");
    let regex = o.str("regex", issues);
    o.finish(issues);
    let out = match (exact, prefix, regex) {
        (Some(e), None, None) => PathMatch::Exact(e.to_string()),
        (None, Some(p), None) => PathMatch::Prefix(p.to_string()),
        (None, None, Some(r)) => {
            if let Err(e) = regex::Regex::new(&format!("^(?:{r})$")) {
                let detail = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                issues.push(&epath, format!("invalid regular expression \"{r}\": {detail}"));
                return None;
            }
            PathMatch::Regex(r.to_string())
        }
        _ => {
            issues.push(path, "give exactly one of \"exact\", \"prefix\" or \"regex\"");
            return None;
        }
    };
    match &out {
        PathMatch::Exact(p) | PathMatch::Prefix(p) if !p.starts_with('/') => {
            issues.push(path, format!("path \"{p}\" must start with '/'"));
            None
        }
        _ => Some(out),
    }
}

fn direct_response(v: &Value, path: &str, issues: &mut Issues) -> Option<DirectResponse> {
    let mut o = Obj::new(v, path, issues)?;
    let spath = o.child("status");
    let status =
        o.req("status", issues, " (an HTTP status code like 200)").and_then(|s| as_u64_in(s, &spath, 200, 599, issues));
    let headers = o.get("headers").map(|h| header_map(h, &o.child("headers"), issues)).unwrap_or_default();
    let body = o.str("body", issues).unwrap_or_default().to_string();
    o.finish(issues);
    Some(DirectResponse { status: status? as u16, headers, body })
}

// === clusters ===

fn clusters(root: &mut Obj, extra: &[(String, Value)], base: &Path, issues: &mut Issues) -> Vec<Cluster> {
    let mut items = root.array("clusters", issues).unwrap_or_default();
    items.extend(extra.iter().map(|(p, v)| (p.clone(), v)));
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (p, v) in items {
        let Some(mut o) = Obj::new(v, &p, issues) else { continue };
        let name = name(&mut o, "cluster", &mut names, issues);
        let epath = o.child("endpoints");
        let endpoints = o
            .req("endpoints", issues, "; list at least one, like [{\"address\": \"127.0.0.1:3000\"}]")
            .and_then(|v| as_array(v, &epath, issues))
            .map(|items| {
                if items.is_empty() {
                    issues.push(&epath, "no endpoints; list at least one, like [{\"address\": \"127.0.0.1:3000\"}]");
                }
                items.into_iter().filter_map(|(p, v)| endpoint(v, &p, issues)).collect::<Vec<_>>()
            });
        let lb_policy = lb_policy(&mut o, issues);
        let connect_timeout = millis(&mut o, "connect_timeout_ms", 5_000, issues);
        let request_timeout = millis(&mut o, "request_timeout_ms", 15_000, issues);
        let idle_timeout = millis(&mut o, "idle_timeout_ms", 60_000, issues);
        let max_idle_per_endpoint = o.u64_in("max_idle_per_endpoint", 0, 100_000, issues).unwrap_or(256) as usize;
        let http2 = o.bool("http2", issues).unwrap_or(false);
        let tls = o.get("tls").and_then(|t| upstream_tls(t, &o.child("tls"), base, issues));
        let health_check =
            o.get("health_check").and_then(|v| resilience::health_check(v, &o.child("health_check"), issues));
        let outlier_detection = o
            .get("outlier_detection")
            .and_then(|v| resilience::outlier_detection(v, &o.child("outlier_detection"), issues));
        let circuit_breakers =
            resilience::circuit_breakers(o.get("circuit_breakers"), &o.child("circuit_breakers"), issues);
        o.finish(issues);
        if let (Some(name), Some(endpoints), Some(lb_policy)) = (name, endpoints, lb_policy) {
            out.push(Cluster {
                name,
                endpoints,
                lb_policy,
                connect_timeout,
                request_timeout,
                idle_timeout,
                max_idle_per_endpoint,
                http2,
                tls,
                health_check,
                outlier_detection,
                circuit_breakers,
            });
        }
    }
    out
}

fn endpoint(v: &Value, path: &str, issues: &mut Issues) -> Option<Endpoint> {
    let (address, weight, apath) = match v {
        Value::String(s) => (s.as_str(), 1, path.to_string()),
        _ => {
            let mut o = Obj::new(v, path, issues)?;
            let apath = o.child("address");
            let address = o.req_str("address", issues, " (\"host:port\")");
            let weight = o.u64_in("weight", 1, 1000, issues).unwrap_or(1) as u32;
            o.finish(issues);
            (address?, weight, apath)
        }
    };
    let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) && !host.contains('/')
    });
    if !valid {
        issues.push(
            &apath,
            format!("\"{address}\" is not \"host:port\"; write it like \"127.0.0.1:3000\" or \"api.internal:443\""),
        );
        return None;
    }
    Some(Endpoint { address: address.to_string(), weight })
}

fn lb_policy(o: &mut Obj, issues: &mut Issues) -> Option<LbPolicy> {
    let lpath = o.child("lb_policy");
    let policy = o.str("lb_policy", issues);
    let hpath = o.child("hash_on");
    let hash_on = o.get("hash_on");
    let key = match hash_on {
        None => HashKey::ClientIp,
        Some(Value::String(s)) if s == "client_ip" => HashKey::ClientIp,
        Some(v @ Value::Object(_)) => {
            let mut h = Obj::new(v, &hpath, issues)?;
            let npath = h.child("header");
            let name = h.req_str("header", issues, "").and_then(|n| header_name(n, &npath, issues));
            h.finish(issues);
            HashKey::Header(name?)
        }
        Some(_) => {
            issues.push(&hpath, "expected \"client_ip\" or {\"header\": \"x-user-id\"}");
            return None;
        }
    };
    match policy.unwrap_or("round_robin") {
        "round_robin" | "least_request" if hash_on.is_some() => {
            issues.push(&hpath, "hash_on only applies to \"lb_policy\": \"consistent_hash\"");
            None
        }
        "round_robin" => Some(LbPolicy::RoundRobin),
        "least_request" => Some(LbPolicy::LeastRequest),
        "consistent_hash" => Some(LbPolicy::ConsistentHash(key)),
        other => {
            issues.push(
                &lpath,
                format!("unknown lb_policy \"{other}\"; use \"round_robin\", \"least_request\" or \"consistent_hash\""),
            );
            None
        }
    }
}

fn upstream_tls(v: &Value, path: &str, base: &Path, issues: &mut Issues) -> Option<UpstreamTls> {
    let mut o = Obj::new(v, path, issues)?;
    let ca_file =
        if o.get("ca_file").is_some() { existing_file(&mut o, "ca_file", base, issues).map(Some)? } else { None };
    let spath = o.child("server_name");
    let server_name = o.str("server_name", issues).and_then(|s| {
        if rustls_pki_types::ServerName::try_from(s).is_ok() {
            Some(s.to_string())
        } else {
            issues.push(&spath, format!("\"{s}\" is not a valid TLS server name"));
            None
        }
    });
    o.finish(issues);
    Some(UpstreamTls { ca_file, server_name })
}

// === filters ===

fn filters(items: Vec<(String, &Value)>, base: &Path, issues: &mut Issues) -> Vec<FilterAttachment> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (p, v) in items {
        let Some(mut o) = Obj::new(v, &p, issues) else { continue };
        let module = module_ref(&mut o, base, issues);
        let npath = o.child("name");
        let name = match o.str("name", issues) {
            Some(n) => Some(n.to_string()),
            None => module.as_ref().and_then(|m| match m {
                ModuleRef::File(f) => f.file_stem().map(|s| s.to_string_lossy().into_owned()),
                ModuleRef::Registry { .. } => m.filter_name().map(str::to_string),
            }),
        };
        if let Some(n) = &name {
            if !names.insert(n.clone()) {
                issues
                    .push(&npath, format!("two filters on this route are named \"{n}\"; give each a unique \"name\""));
            }
        }
        let root_id = o.str("root_id", issues).unwrap_or_default().to_string();
        let vm_id = o.str("vm_id", issues).unwrap_or_default().to_string();
        let configuration = o.get("configuration").map(config_bytes).unwrap_or_default();
        let vm_configuration = o.get("vm_configuration").map(config_bytes).unwrap_or_default();
        let environment = match o.get("environment_variables") {
            Some(v) => environment(v, &o.child("environment_variables"), issues),
            None => Vec::new(),
        };
        let fpath = o.child("failure_policy");
        let failure_policy = match o.str("failure_policy", issues) {
            None | Some("fail_closed") => FailurePolicy::FailClosed,
            Some("fail_open") => FailurePolicy::FailOpen,
            Some(other) => {
                issues.push(&fpath, format!("unknown failure_policy \"{other}\"; use \"fail_closed\" (503, the default) or \"fail_open\" (skip the filter)"));
                FailurePolicy::FailClosed
            }
        };
        let capabilities =
            o.array("capabilities", issues).map(|items| capabilities(items, &o.child("capabilities"), issues));
        let allow_on_headers_stop_iteration = o.bool("allow_on_headers_stop_iteration", issues).unwrap_or(false);
        o.finish(issues);
        if let (Some(name), Some(module)) = (name, module) {
            out.push(FilterAttachment {
                name,
                module,
                root_id,
                vm_id,
                configuration,
                vm_configuration,
                environment,
                failure_policy,
                allow_on_headers_stop_iteration,
                capabilities,
            });
        }
    }
    out
}

/// `"module": "file.wasm"`, or `"filter": "name@version"` with its `"digest"` (registry routes).
fn module_ref(o: &mut Obj, base: &Path, issues: &mut Issues) -> Option<ModuleRef> {
    let (mpath, fpath, dpath) = (o.child("module"), o.child("filter"), o.child("digest"));
    let file = o.str("module", issues);
    let reference = o.str("filter", issues);
    let digest = o.str("digest", issues);
    match (file, reference) {
        (Some(m), None) => {
            let f = resolve(base, m);
            if f.is_file() {
                Some(ModuleRef::File(f))
            } else {
                issues.push(&mpath, format!("file {} does not exist or is not a regular file", f.display()));
                None
            }
        }
        (None, Some(r)) => {
            let Some((name, version)) = r.split_once('@').filter(|(n, v)| !n.is_empty() && !v.is_empty()) else {
                issues.push(&fpath, format!("\"{r}\" is not name@version (like \"auth@1.2.0\")"));
                return None;
            };
            if semver::Version::parse(version).is_err() {
                issues.push(&fpath, format!("\"{version}\" in \"{r}\" is not an exact semantic version (like 1.2.0)"));
                return None;
            }
            match digest {
                Some(d)
                    if d.strip_prefix("sha256:")
                        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) =>
                {
                    Some(ModuleRef::Registry { reference: format!("{name}@{version}"), digest: d.to_string() })
                }
                Some(d) => {
                    issues.push(&dpath, format!("\"{d}\" is not a digest like \"sha256:<64 hex digits>\""));
                    None
                }
                None => {
                    issues.push(&dpath, format!("missing; a registry filter is pinned by the digest of {r}"));
                    None
                }
            }
        }
        (Some(_), Some(_)) => {
            issues.push(
                o.path(),
                "give either \"module\" (a .wasm file) or \"filter\" (name@version from the registry), not both",
            );
            None
        }
        (None, None) => {
            issues.push(
                &mpath,
                "missing; give \"module\" (the path of a .wasm file) or \"filter\" (name@version from the registry)",
            );
            None
        }
    }
}

/// `{"key_values": {"K": "V"}, "host_env_keys": ["HOME"]}` (Envoy's `vm_config.environment_variables`): the
/// pairs, sorted by name; a host key that is unset is left out, as Envoy does.
fn environment(v: &Value, path: &str, issues: &mut Issues) -> Vec<(String, String)> {
    let Some(mut o) = Obj::new(v, path, issues) else { return Vec::new() };
    let mut out: Vec<(String, String)> = Vec::new();
    let valid = |k: &str| !k.is_empty() && !k.contains('=') && !k.contains('\0');
    if let Some(kv) = o.get("key_values") {
        let kpath = o.child("key_values");
        match kv.as_object() {
            Some(map) => {
                for (k, v) in map {
                    let p = format!("{kpath}.{k}");
                    if !valid(k) {
                        issues.push(&p, "a variable name must be non-empty and hold no '=' or NUL");
                        continue;
                    }
                    if let Some(v) = as_str(v, &p, issues) {
                        if v.contains('\0') {
                            issues.push(&p, "a value must hold no NUL");
                        } else {
                            out.push((k.clone(), v.to_string()));
                        }
                    }
                }
            }
            None => issues.push(&kpath, format!("expected an object of names to values, found {}", type_name(kv))),
        }
    }
    if let Some(items) = o.array("host_env_keys", issues) {
        for (p, v) in items {
            let Some(k) = as_str(v, &p, issues) else { continue };
            if !valid(k) {
                issues.push(&p, "a variable name must be non-empty and hold no '=' or NUL");
            } else if out.iter().any(|(n, _)| n == k) {
                issues.push(&p, format!("\"{k}\" is also in key_values; give it in one place"));
            } else if let Ok(value) = std::env::var(k) {
                out.push((k.to_string(), value));
            }
        }
    }
    o.finish(issues);
    out.sort();
    out
}

/// A capability allow-list (ABI §5.13): hostcall, WASI function and callback names, sorted and unique.
fn capabilities(items: Vec<(String, &Value)>, path: &str, issues: &mut Issues) -> Vec<String> {
    use crate::abi::hostcalls::capabilities as caps;
    if items.is_empty() {
        issues.push(
            path,
            "an empty list allows nothing, not even the filter's callbacks; list what the filter may use, like [\"proxy_on_request_headers\", \"proxy_log\"], or leave \"capabilities\" out to allow everything",
        );
    }
    let mut out: Vec<String> = Vec::new();
    for (p, v) in items {
        let Some(name) = as_str(v, &p, issues) else { continue };
        if !caps::is_known(name) {
            let known: Vec<&str> = caps::all().collect();
            let hint = match super::reader::closest(name, &known) {
                Some(k) => format!("did you mean \"{k}\"?"),
                None => "use the name of a proxy-wasm hostcall (\"proxy_log\"), a WASI function (\"fd_write\") or a callback (\"proxy_on_request_headers\")".to_string(),
            };
            issues.push(&p, format!("unknown capability \"{name}\"; {hint}"));
        } else if out.iter().any(|n| n == name) {
            issues.push(&p, format!("\"{name}\" is listed twice"));
        } else {
            out.push(name.to_string());
        }
    }
    out.sort();
    out
}

/// A string is passed as its bytes; any other JSON value as its JSON text (what Envoy does with a Struct).
fn config_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    /// The issues (or the parsed allow-list) for one filter attachment with `capabilities` set to `list`.
    fn parse(list: &str) -> Result<Option<Vec<String>>, Vec<String>> {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("f.wasm"), b"\0asm").expect("module file");
        let json = format!(
            r#"{{"listeners": [{{"name": "main", "address": "127.0.0.1:8080"}}],
                "routes": [{{"name": "r", "direct_response": {{"status": 200}},
                             "filters": [{{"module": "f.wasm"{list}}}]}}]}}"#
        );
        match Config::from_json(&json, "gw.json", dir.path()) {
            Ok(c) => Ok(c.routes[0].filters[0].capabilities.clone()),
            Err(ConfigError::Invalid { issues, .. }) => Err(issues.iter().map(|i| i.to_string()).collect()),
            Err(other) => Err(vec![other.to_string()]),
        }
    }

    #[test]
    fn capability_lists_are_checked_with_their_paths() {
        let at = "$.routes[0].filters[0].capabilities";
        assert_eq!(parse(""), Ok(None), "absent: everything allowed");
        assert_eq!(
            parse(r#", "capabilities": ["proxy_on_request_headers", "fd_write", "proxy_log"]"#),
            Ok(Some(vec!["fd_write".into(), "proxy_log".into(), "proxy_on_request_headers".into()])),
            "sorted"
        );
        let cases: Vec<(&str, Vec<String>)> = vec![
            (r#", "capabilities": "proxy_log""#, vec![format!("{at}: expected an array, found a string")]),
            (
                r#", "capabilities": []"#,
                vec![format!(
                    r#"{at}: an empty list allows nothing, not even the filter's callbacks; list what the filter may use, like ["proxy_on_request_headers", "proxy_log"], or leave "capabilities" out to allow everything"#
                )],
            ),
            (
                r#", "capabilities": ["proxy_lgo", 7, "proxy_log", "proxy_log", "open_socket"]"#,
                vec![
                    format!(r#"{at}[0]: unknown capability "proxy_lgo"; did you mean "proxy_log"?"#),
                    format!("{at}[1]: expected a string, found a number"),
                    format!(r#"{at}[3]: "proxy_log" is listed twice"#),
                    format!(
                        r#"{at}[4]: unknown capability "open_socket"; use the name of a proxy-wasm hostcall ("proxy_log"), a WASI function ("fd_write") or a callback ("proxy_on_request_headers")"#
                    ),
                ],
            ),
            (
                r#", "capabilites": ["proxy_log"]"#,
                vec![
                    r#"$.routes[0].filters[0].capabilites: unknown field "capabilites"; did you mean "capabilities"?"#
                        .into(),
                ],
            ),
        ];
        for (list, want) in cases {
            assert_eq!(parse(list), Err(want), "{list}");
        }
    }
}
