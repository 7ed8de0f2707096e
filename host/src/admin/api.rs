//! The `/api/v1/` endpoints: the registry (filters, clusters, routes, attachments, apply) and the running
//! configuration. Described in `docs/admin-api/openapi.json` (OpenAPI 3.1); `tests/tests/all/admin_api.rs` keeps the
//! two in step.

use super::respond::{control_error, error, json};
use super::AdminState;
use crate::config::{Config, ModuleRef, PathMatch, RouteAction};
use crate::control::{Applied, AttachSpec, Control, ControlError, PublishMeta};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest module or artifact upload.
pub const MAX_MODULE_BYTES: usize = 64 << 20;
/// Largest JSON body.
const MAX_JSON_BYTES: usize = 4 << 20;

/// Every endpoint as (method, path pattern): what the OpenAPI description must list, and nothing more.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/v1/config"),
    ("GET", "/api/v1/filters"),
    ("POST", "/api/v1/filters"),
    ("GET", "/api/v1/filters/{name}"),
    ("GET", "/api/v1/filters/{name}/{version}"),
    ("DELETE", "/api/v1/filters/{name}/{version}"),
    ("GET", "/api/v1/clusters"),
    ("GET", "/api/v1/clusters/{name}"),
    ("PUT", "/api/v1/clusters/{name}"),
    ("DELETE", "/api/v1/clusters/{name}"),
    ("GET", "/api/v1/routes"),
    ("GET", "/api/v1/routes/{id}"),
    ("PUT", "/api/v1/routes/{id}"),
    ("DELETE", "/api/v1/routes/{id}"),
    ("POST", "/api/v1/routes/{id}/filters"),
    ("DELETE", "/api/v1/routes/{id}/filters/{name}"),
    ("POST", "/api/v1/apply"),
];

type Resp = Response<Full<Bytes>>;

/// Serves one authorised `/api/` request.
pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<String> =
        path.trim_start_matches("/api/v1").split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    if !path.starts_with("/api/v1/") {
        return not_found(&method, &path);
    }
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let control = state.control.clone();
    match (&method, seg.as_slice()) {
        (&Method::GET, ["config"]) => json(StatusCode::OK, describe(state)),
        (&Method::GET, ["filters"]) => read(&control, |s| json!({ "filters": s.filters })),
        (&Method::POST, ["filters"]) => {
            let content_type =
                req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let body = match body_bytes(req, MAX_MODULE_BYTES).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let params = query_params(&query);
            let artifact = content_type.contains("tar") || content_type.starts_with("application/vnd.oci");
            mutate(control, move |c| {
                let (applied, published) = if artifact {
                    c.publish_artifact(&body)?
                } else {
                    let (Some(name), Some(version)) = (param(&params, "name"), param(&params, "version")) else {
                        return Err(ControlError::BadRequest(
                            "a .wasm upload needs ?name=NAME&version=VERSION (or send an artifact with Content-Type \
                             application/vnd.oci.image.layout.v1+tar)"
                                .into(),
                        ));
                    };
                    let meta = PublishMeta {
                        description: param(&params, "description").unwrap_or_default().to_string(),
                        config_schema: None,
                    };
                    c.publish(name, version, &body, meta)?
                };
                let status = if published.created { StatusCode::CREATED } else { StatusCode::OK };
                Ok((
                    status,
                    with_applied(json!({ "filter": published.version, "created": published.created }), applied),
                ))
            })
            .await
        }
        (&Method::GET, ["filters", name]) => {
            let name = name.to_string();
            read_or(&control, move |s| {
                let versions: Vec<_> = s.filters.iter().filter(|f| f.name == name).collect();
                if versions.is_empty() {
                    return Err(ControlError::NotFound(format!("no filter \"{name}\" is published")));
                }
                Ok(json!({ "name": name, "versions": versions }))
            })
        }
        (&Method::GET, ["filters", name, version]) => {
            let (name, version) = (name.to_string(), version.to_string());
            read_or(&control, move |s| {
                let Some(f) = s.filter(&name, &version) else {
                    return Err(ControlError::NotFound(format!("no filter {name}@{version}")));
                };
                let mut v = serde_json::to_value(f).unwrap_or_default();
                v["attached_to"] = s.routes_using(&f.key()).into();
                Ok(json!({ "filter": v }))
            })
        }
        (&Method::DELETE, ["filters", name, version]) => {
            let (name, version) = (name.to_string(), version.to_string());
            mutate(control, move |c| Ok((StatusCode::OK, with_applied(json!({}), c.remove_filter(&name, &version)?))))
                .await
        }
        (&Method::GET, ["clusters"]) => json(StatusCode::OK, json!({ "clusters": clusters(&control, None) })),
        (&Method::GET, ["clusters", name]) => match clusters(&control, Some(name)).pop() {
            Some(c) => json(StatusCode::OK, json!({ "cluster": c })),
            None => error(StatusCode::NOT_FOUND, "not_found", &format!("no cluster \"{name}\"")),
        },
        (&Method::PUT, ["clusters", name]) => {
            let name = name.to_string();
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            mutate(control, move |c| Ok((StatusCode::OK, with_applied(json!({}), c.set_cluster(&name, body)?)))).await
        }
        (&Method::DELETE, ["clusters", name]) => {
            let name = name.to_string();
            mutate(control, move |c| Ok((StatusCode::OK, with_applied(json!({}), c.remove_cluster(&name)?)))).await
        }
        (&Method::GET, ["routes"]) => json(StatusCode::OK, json!({ "routes": routes(&control, None) })),
        (&Method::GET, ["routes", id]) => match routes(&control, Some(id)).pop() {
            Some(r) => json(StatusCode::OK, json!({ "route": r })),
            None => {
                error(StatusCode::NOT_FOUND, "not_found", &format!("no route \"{id}\"; `weir route list` shows them"))
            }
        },
        (&Method::PUT, ["routes", id]) => {
            let id = id.to_string();
            let position = match query_params(&query).iter().find(|(k, _)| k == "position") {
                Some((_, v)) => match v.parse::<usize>() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            &format!("?position={v}: expected a number (0 is matched first)"),
                        )
                    }
                },
                None => None,
            };
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            mutate(control, move |c| Ok((StatusCode::OK, with_applied(json!({}), c.set_route(&id, body, position)?))))
                .await
        }
        (&Method::DELETE, ["routes", id]) => {
            let id = id.to_string();
            mutate(control, move |c| Ok((StatusCode::OK, with_applied(json!({}), c.remove_route(&id)?)))).await
        }
        (&Method::POST, ["routes", id, "filters"]) => {
            let id = id.to_string();
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let spec: AttachSpec = match serde_json::from_value(body) {
                Ok(s) => s,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        &format!(
                            "the attachment is not valid: {e}; send {{\"filter\": \"name@version\", \"configuration\": ..., \
                             \"position\": N, \"failure_policy\": \"fail_closed\"|\"fail_open\", \"root_id\": \"...\"}}"
                        ),
                    )
                }
            };
            mutate(control, move |c| {
                let (applied, pinned) = c.attach(&id, spec)?;
                Ok((StatusCode::OK, with_applied(json!({ "attached": pinned }), applied)))
            })
            .await
        }
        (&Method::DELETE, ["routes", id, "filters", name]) => {
            let (id, name) = (id.to_string(), name.to_string());
            mutate(control, move |c| Ok((StatusCode::OK, with_applied(json!({}), c.detach(&id, &name)?)))).await
        }
        (&Method::POST, ["apply"]) => {
            let prune = query_params(&query).iter().any(|(k, v)| k == "prune" && (v == "true" || v == "1"));
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            mutate(control, move |c| {
                let (applied, summary) = c.apply(&body, prune)?;
                Ok((StatusCode::OK, with_applied(json!({ "applied": summary }), applied)))
            })
            .await
        }
        _ => not_found(&method, &path),
    }
}

fn not_found(method: &Method, path: &str) -> Resp {
    let known: Vec<String> = ENDPOINTS.iter().map(|(m, p)| format!("{m} {p}")).collect();
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no admin endpoint {method} {path}; the endpoints are: {}", known.join(", ")),
    )
}

fn with_applied(mut body: Value, applied: Applied) -> Value {
    body["generation"] = applied.generation.into();
    if let Some(swap) = applied.swap {
        body["swap_ms"] = json!((swap.as_secs_f64() * 1e6).round() / 1e3);
    }
    body
}

/// Runs a change on the blocking pool (it compiles, starts VMs and flushes to disk).
async fn mutate(
    control: Arc<Control>,
    f: impl FnOnce(&Control) -> Result<(StatusCode, Value), ControlError> + Send + 'static,
) -> Resp {
    match tokio::task::spawn_blocking(move || f(&control)).await {
        Ok(Ok((status, body))) => json(status, body),
        Ok(Err(e)) => control_error(&e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &format!("the change did not complete: {e}")),
    }
}

fn read(control: &Control, f: impl FnOnce(&crate::registry::State) -> Value) -> Resp {
    match control.state() {
        Ok(s) => json(StatusCode::OK, f(&s)),
        Err(e) => control_error(&e),
    }
}

fn read_or(control: &Control, f: impl FnOnce(&crate::registry::State) -> Result<Value, ControlError>) -> Resp {
    match control.state().and_then(|s| f(&s)) {
        Ok(v) => json(StatusCode::OK, v),
        Err(e) => control_error(&e),
    }
}

async fn body_bytes(req: Request<Incoming>, limit: usize) -> Result<Bytes, Resp> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &format!("the body is larger than {limit} bytes"))
        } else {
            error(StatusCode::BAD_REQUEST, "bad_request", &format!("cannot read the body: {e}"))
        }),
    }
}

async fn body_json(req: Request<Incoming>) -> Result<Value, Resp> {
    let bytes = body_bytes(req, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            &format!(
                "the body is not JSON: {} at line {} column {}",
                e.to_string().split(" at line ").next().unwrap_or(""),
                e.line(),
                e.column()
            ),
        )
    })
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `%XX` and `+` decoding for path segments and query values.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The running configuration: listeners, routes (in match order, with where each is defined) and clusters.
pub fn describe(state: &AdminState) -> Value {
    let (_, generation) = state.control.running();
    json!({
        "generation": generation,
        "listeners": state.listeners.iter().map(|(n, a)| json!({"name": n, "address": a.to_string()})).collect::<Vec<_>>(),
        "routes": routes(&state.control, None),
        "clusters": clusters(&state.control, None),
    })
}

fn source(base: &Config, route: bool, name: &str) -> &'static str {
    let in_file =
        if route { base.routes.iter().any(|r| r.name == name) } else { base.clusters.iter().any(|c| c.name == name) };
    if in_file {
        "file"
    } else {
        "registry"
    }
}

fn routes(control: &Control, only: Option<&str>) -> Vec<Value> {
    let (config, _) = control.running();
    let stored = control.state().ok();
    config
        .routes
        .iter()
        .filter(|r| only.is_none_or(|o| o == r.name))
        .map(|r| {
            let path = r.matcher.path.as_ref().map(|p| match p {
                PathMatch::Exact(p) => json!({"exact": p}),
                PathMatch::Prefix(p) => json!({"prefix": p}),
                PathMatch::Regex(p) => json!({"regex": p}),
            });
            let mut v = json!({
                "id": r.name,
                "source": source(control.base(), true, &r.name),
                "match": {"hosts": r.matcher.hosts, "path": path, "methods": r.matcher.methods},
                "cluster": match &r.action { RouteAction::Cluster(c) => Some(c.as_str()), RouteAction::Direct(_) => None },
                "direct_response": matches!(r.action, RouteAction::Direct(_)),
                "filters": r.filters.iter().map(|f| json!({
                    "name": f.name,
                    "module": match &f.module { ModuleRef::File(p) => p.display().to_string(), ModuleRef::Registry { reference, .. } => reference.clone() },
                    "digest": match &f.module { ModuleRef::Registry { digest, .. } => Some(digest.as_str()), ModuleRef::File(_) => None },
                    "failure_policy": match f.failure_policy { crate::config::FailurePolicy::FailClosed => "fail_closed", crate::config::FailurePolicy::FailOpen => "fail_open" },
                })).collect::<Vec<_>>(),
            });
            if let Some(def) = stored.as_ref().and_then(|s| s.route(&r.name)) {
                v["definition"] = def.clone();
            }
            v
        })
        .collect()
}

fn clusters(control: &Control, only: Option<&str>) -> Vec<Value> {
    let (config, _) = control.running();
    let stored = control.state().ok();
    config
        .clusters
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.name))
        .map(|c| {
            let mut v = json!({
                "name": c.name,
                "source": source(control.base(), false, &c.name),
                "endpoints": c.endpoints.iter().map(|e| json!({"address": e.address, "weight": e.weight})).collect::<Vec<_>>(),
            });
            if let Some(def) = stored.as_ref().and_then(|s| s.cluster(&c.name)) {
                v["definition"] = def.clone();
            }
            if let Some(health) = control.cluster_health(&c.name) {
                v["health"] = health;
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_table() {
        for (raw, want) in [("a%40b", "a@b"), ("a+b", "a b"), ("100%", "100%"), ("%zz", "%zz"), ("%5E1.2", "^1.2")] {
            assert_eq!(percent_decode(raw), want, "{raw}");
        }
    }
}
