//! Every change the admin API offers, each computed from the registry's state as one [`Change`].

use super::{Applied, Control, ControlError};
use crate::artifact::{self, Artifact};
use crate::config::Config;
use crate::registry::{Change, FilterVersion, State};
use serde_json::{Map, Value};

/// Which artifacts the gateway accepts (`registry.trusted_keys`, `registry.require_signed`).
#[derive(Default)]
pub(super) struct Trust {
    keys: Vec<ed25519_dalek::VerifyingKey>,
    require_signed: bool,
}

impl Trust {
    pub(super) fn from_config(config: &Config) -> Trust {
        Trust { keys: config.registry.trusted_keys.clone(), require_signed: config.registry.require_signed }
    }
}

/// What a publish carries besides the module.
#[derive(Debug, Default, Clone)]
pub struct PublishMeta {
    /// What the filter does.
    pub description: String,
    /// JSON Schema for attachments' configurations.
    pub config_schema: Option<Value>,
}

/// The outcome of a publish.
#[derive(Debug, Clone)]
pub struct Published {
    /// The stored version.
    pub version: FilterVersion,
    /// False when the same bytes were already published under this name and version (a no-op).
    pub created: bool,
}

/// `weir route attach`: which filter, and how.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachSpec {
    /// `name@version`, `name@range` (`^1.2`, `~1.2.3`, `1.x`) or `name` (the highest version).
    pub filter: String,
    /// The attachment's name on the route (default: the filter's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The plugin configuration (kept from the attachment it replaces when absent).
    #[serde(default)]
    pub configuration: Option<Value>,
    /// Where in the chain (0 is first; default: the end, or where the attachment it replaces was).
    #[serde(default)]
    pub position: Option<usize>,
    /// `fail_closed` (default) or `fail_open`.
    #[serde(default)]
    pub failure_policy: Option<String>,
    /// The root id (multi-plugin modules).
    #[serde(default)]
    pub root_id: Option<String>,
}

/// What `apply` did, by kind.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ApplySummary {
    /// Clusters created, changed, unchanged and removed (by name).
    pub clusters: Outcomes,
    /// Routes likewise (by id).
    pub routes: Outcomes,
}

/// Names by what happened to them.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Outcomes {
    /// New.
    pub created: Vec<String>,
    /// Replaced with a different definition.
    pub updated: Vec<String>,
    /// The same definition as stored.
    pub unchanged: Vec<String>,
    /// Removed (`prune`).
    pub removed: Vec<String>,
}

/// A route id or cluster name: URL-safe, so it can be a path segment.
fn check_id(kind: &str, id: &str) -> Result<(), ControlError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ControlError::BadRequest(format!(
            "\"{id}\" is not a valid {kind} name: use letters, digits, '-', '_' and '.', starting with a letter or digit, at most 128 characters"
        )))
    }
}

fn version_of(v: &str) -> Result<semver::Version, ControlError> {
    semver::Version::parse(v).map_err(|e| {
        ControlError::BadRequest(format!("\"{v}\" is not a semantic version ({e}); use MAJOR.MINOR.PATCH, like 1.2.0"))
    })
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Control {
    /// Publishes a module as `name@version` after checking that it compiles and passes the import checks.
    /// The same bytes again are a no-op; different bytes under a published version are refused.
    pub fn publish(
        &self,
        name: &str,
        version: &str,
        wasm: &[u8],
        meta: PublishMeta,
    ) -> Result<(Applied, Published), ControlError> {
        if self.trust.require_signed {
            return Err(ControlError::Untrusted(
                "this gateway accepts only signed artifacts (registry.require_signed); pack the module with \
                 `weir filter pack --sign-key KEY` and push the artifact"
                    .into(),
            ));
        }
        self.publish_checked(name, version, wasm, meta, None)
    }

    /// Publishes an artifact (a verified OCI image layout tar): its signature is checked against the
    /// trusted keys, and unsigned artifacts are refused when the gateway requires signatures.
    pub fn publish_artifact(&self, tar: &[u8]) -> Result<(Applied, Published), ControlError> {
        let artifact = Artifact::from_layout_tar(tar).map_err(|e| ControlError::BadRequest(e.to_string()))?;
        let signer = match artifact.verify(&self.trust.keys) {
            Ok(signer) => signer,
            // Without require_signed, a signature by a key this gateway does not know cannot be checked: the
            // version is stored as unsigned (no `signed_by`).
            Err(artifact::ArtifactError::UntrustedKey { .. }) if !self.trust.require_signed => None,
            Err(e) => {
                return Err(ControlError::Untrusted(format!("{}@{}: {e}", artifact.meta.name, artifact.meta.version)))
            }
        };
        if self.trust.require_signed && signer.is_none() {
            return Err(ControlError::Untrusted(format!(
                "{}@{} is not signed and this gateway accepts only artifacts signed by a trusted key \
                 (registry.require_signed); sign it with `weir filter pack --sign-key KEY`",
                artifact.meta.name, artifact.meta.version
            )));
        }
        let meta = PublishMeta {
            description: artifact.meta.description.clone(),
            config_schema: artifact.meta.config_schema.clone(),
        };
        let version = artifact.meta.version.to_string();
        self.publish_checked(
            &artifact.meta.name,
            &version,
            &artifact.wasm,
            meta,
            signer.map(|k| k.as_str().to_string()),
        )
    }

    fn publish_checked(
        &self,
        name: &str,
        version: &str,
        wasm: &[u8],
        meta: PublishMeta,
        signed_by: Option<String>,
    ) -> Result<(Applied, Published), ControlError> {
        artifact::check_name(name).map_err(|e| ControlError::BadRequest(e.to_string()))?;
        let version = version_of(version)?.to_string();
        if let Some(schema) = &meta.config_schema {
            artifact::schema::check_schema(schema)
                .map_err(|e| ControlError::BadRequest(format!("config_schema is not a usable JSON Schema: {e}")))?;
        }
        let digest = artifact::sha256_digest(wasm);
        let hex = digest.trim_start_matches("sha256:").to_string();
        // Compiles (once per digest, cached) and checks exports and imports before anything is stored.
        let runtime = self.builder.runtime()?;
        let loaded = runtime.load(name, wasm).map_err(|e| ControlError::Module(Box::new(e)))?;
        let abi = loaded.abi.export_name().trim_start_matches("proxy_abi_version_").replace('_', ".");
        self.change(|state, _| {
            if let Some(existing) = state.filter(name, &version) {
                if existing.digest == digest {
                    return Ok((Change::default(), Published { version: existing.clone(), created: false }));
                }
                return Err(ControlError::Conflict(format!(
                    "{name}@{version} is already published with other bytes ({}); published versions are immutable: \
                     publish this module as a new version",
                    existing.digest
                )));
            }
            let record = FilterVersion {
                name: name.to_string(),
                version: version.clone(),
                digest: digest.clone(),
                size: wasm.len() as u64,
                abi: abi.clone(),
                description: meta.description.clone(),
                config_schema: meta.config_schema.clone(),
                signed_by: signed_by.clone(),
                published_at: now(),
            };
            let change = Change {
                put_blobs: vec![(hex.clone(), wasm.to_vec())],
                put_filters: vec![record.clone()],
                ..Change::default()
            };
            Ok((change, Published { version: record, created: true }))
        })
    }

    /// Removes `name@version`; refused while a route attaches it.
    pub fn remove_filter(&self, name: &str, version: &str) -> Result<Applied, ControlError> {
        let version = version_of(version)?.to_string();
        self.change(|state, _| {
            let Some(f) = state.filter(name, &version) else {
                return Err(ControlError::NotFound(format!(
                    "no filter {name}@{version}; `weir filter list` shows what is published"
                )));
            };
            let users = state.routes_using(&f.key());
            if !users.is_empty() {
                return Err(ControlError::Conflict(format!(
                    "{name}@{version} is attached to route{} {}; detach it first (weir route detach ROUTE NAME)",
                    if users.len() == 1 { "" } else { "s" },
                    users.join(", ")
                )));
            }
            let mut change = Change { remove_filters: vec![(f.name.clone(), f.version.clone())], ..Change::default() };
            let last = !state.digest_shared(&f.digest, (&f.name, &f.version));
            if last {
                change.remove_blobs.push(f.digest_hex().to_string());
            }
            Ok((change, last.then(|| f.digest_hex().to_string())))
        })
        .map(|(applied, gone)| {
            if let Some(hex) = gone {
                self.builder.forget_module(&hex);
            }
            applied
        })
    }

    /// Creates or replaces a registry cluster (the configuration file's cluster shape).
    pub fn set_cluster(&self, name: &str, body: Value) -> Result<Applied, ControlError> {
        check_id("cluster", name)?;
        self.not_in_file("cluster", name)?;
        let cluster = named_object("cluster", name, body)?;
        self.change(|_, _| Ok((Change { put_clusters: vec![(name.to_string(), cluster)], ..Change::default() }, ())))
            .map(|(a, ())| a)
    }

    /// Removes a registry cluster; refused while a route proxies to it.
    pub fn remove_cluster(&self, name: &str) -> Result<Applied, ControlError> {
        self.not_in_file("cluster", name)?;
        self.change(|state, _| {
            if state.cluster(name).is_none() {
                return Err(ControlError::NotFound(format!("no cluster \"{name}\" in the registry")));
            }
            let users = state.routes_to_cluster(name);
            if !users.is_empty() {
                return Err(ControlError::Conflict(format!(
                    "cluster \"{name}\" is used by route{} {}; remove or re-point them first",
                    if users.len() == 1 { "" } else { "s" },
                    users.join(", ")
                )));
            }
            Ok((Change { remove_clusters: vec![name.to_string()], ..Change::default() }, ()))
        })
        .map(|(a, ())| a)
    }

    /// Creates or replaces a registry route (the configuration file's route shape). A body without
    /// `"filters"` keeps the route's attachments; attachments given as `"filter": "name@range"` without a
    /// digest are pinned to the highest matching version. A new route goes at `position` (0 is matched
    /// first among the registry's routes; default: last); an existing one keeps its place unless given.
    pub fn set_route(&self, id: &str, body: Value, position: Option<usize>) -> Result<Applied, ControlError> {
        check_id("route", id)?;
        self.not_in_file("route", id)?;
        let mut route = named_object("route", id, body)?;
        self.change(|state, _| {
            if route.get("filters").is_none() {
                if let Some(existing) = state.route(id).and_then(|r| r.get("filters")) {
                    route["filters"] = existing.clone();
                }
            }
            resolve_attachments(state, id, &mut route)?;
            let mut order: Vec<String> = state.routes.iter().map(|(i, _)| i.clone()).collect();
            let at = order.iter().position(|i| i == id);
            if at.is_none() || position.is_some() {
                order.retain(|i| i != id);
                let p = position.unwrap_or(order.len()).min(order.len());
                order.insert(p, id.to_string());
            }
            let change = Change {
                put_routes: vec![(id.to_string(), route.clone())],
                route_order: Some(order),
                ..Change::default()
            };
            Ok((change, ()))
        })
        .map(|(a, ())| a)
    }

    /// Removes a registry route.
    pub fn remove_route(&self, id: &str) -> Result<Applied, ControlError> {
        self.not_in_file("route", id)?;
        self.change(|state, _| {
            stored_route(state, id)?;
            let order = state.routes.iter().filter(|(i, _)| i != id).map(|(i, _)| i.clone()).collect();
            Ok((Change { remove_routes: vec![id.to_string()], route_order: Some(order), ..Change::default() }, ()))
        })
        .map(|(a, ())| a)
    }

    /// Attaches a filter version to a route, or replaces the attachment of the same name (upgrade, rollback,
    /// configuration change, move). Returns the pinned `name@version`.
    pub fn attach(&self, id: &str, spec: AttachSpec) -> Result<(Applied, String), ControlError> {
        self.not_in_file("route", id)?;
        self.change(|state, _| {
            let mut route = stored_route(state, id)?;
            let version = resolve(state, &spec.filter)?;
            let name = spec.name.clone().unwrap_or_else(|| version.name.clone());
            let mut chain: Vec<Value> = route.get("filters").and_then(Value::as_array).cloned().unwrap_or_default();
            let at = chain.iter().position(|f| f.get("name").and_then(Value::as_str) == Some(name.as_str()));
            let mut entry = match at {
                Some(i) => chain.remove(i),
                None => Value::Object(Map::new()),
            };
            entry["name"] = Value::String(name.clone());
            entry["filter"] = Value::String(version.key());
            entry["digest"] = Value::String(version.digest.clone());
            if let Some(c) = &spec.configuration {
                entry["configuration"] = c.clone();
            }
            if let Some(p) = &spec.failure_policy {
                entry["failure_policy"] = Value::String(p.clone());
            }
            if let Some(r) = &spec.root_id {
                entry["root_id"] = Value::String(r.clone());
            }
            check_schema(version, entry.get("configuration"), &format!("route \"{id}\", filter \"{name}\""))?;
            let p = spec.position.or(at).unwrap_or(chain.len()).min(chain.len());
            chain.insert(p, entry);
            route["filters"] = Value::Array(chain);
            let pinned = version.key();
            Ok((Change { put_routes: vec![(id.to_string(), route)], ..Change::default() }, pinned))
        })
    }

    /// Removes the attachment `name` from a route.
    pub fn detach(&self, id: &str, name: &str) -> Result<Applied, ControlError> {
        self.not_in_file("route", id)?;
        self.change(|state, _| {
            let mut route = stored_route(state, id)?;
            let mut chain: Vec<Value> = route.get("filters").and_then(Value::as_array).cloned().unwrap_or_default();
            let before = chain.len();
            chain.retain(|f| f.get("name").and_then(Value::as_str) != Some(name));
            if chain.len() == before {
                let names: Vec<&str> = route
                    .get("filters")
                    .and_then(Value::as_array)
                    .map(|fs| fs.iter().filter_map(|f| f.get("name").and_then(Value::as_str)).collect())
                    .unwrap_or_default();
                return Err(ControlError::NotFound(format!(
                    "route \"{id}\" has no filter named \"{name}\"; its filters: {}",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                )));
            }
            route["filters"] = Value::Array(chain);
            Ok((Change { put_routes: vec![(id.to_string(), route)], ..Change::default() }, ()))
        })
        .map(|(a, ())| a)
    }

    /// Writes a declarative document (`{"clusters": [...], "routes": [...]}`, the configuration file's
    /// shapes) into the registry as one change. Named clusters and routes are created or replaced (routes
    /// keep their place; new ones are appended in the document's order). With `prune`, registry clusters
    /// and routes the document does not name are removed and the routes take the document's order.
    pub fn apply(&self, doc: &Value, prune: bool) -> Result<(Applied, ApplySummary), ControlError> {
        let Some(obj) = doc.as_object() else {
            return Err(ControlError::BadRequest(
                "the document must be a JSON object with \"clusters\" and/or \"routes\"".into(),
            ));
        };
        if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "clusters" | "routes")) {
            return Err(ControlError::BadRequest(format!(
                "$.{k}: apply writes only \"clusters\" and \"routes\" into the registry; listeners, admin and \
                 other process settings come from the configuration file given to `weir serve --config`"
            )));
        }
        let items = |key: &str| -> Result<Vec<(String, Value)>, ControlError> {
            let Some(v) = obj.get(key) else { return Ok(Vec::new()) };
            let Some(list) = v.as_array() else {
                return Err(ControlError::BadRequest(format!("$.{key}: expected an array")));
            };
            let mut out: Vec<(String, Value)> = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    return Err(ControlError::BadRequest(format!(
                        "$.{key}[{i}].name: missing; every entry needs a name"
                    )));
                };
                let kind = if key == "routes" { "route" } else { "cluster" };
                check_id(kind, name).map_err(|e| ControlError::BadRequest(format!("$.{key}[{i}].name: {e}")))?;
                self.not_in_file(kind, name)?;
                if out.iter().any(|(n, _)| n == name) {
                    return Err(ControlError::BadRequest(format!("$.{key}[{i}].name: \"{name}\" appears twice")));
                }
                out.push((name.to_string(), item.clone()));
            }
            Ok(out)
        };
        let clusters = items("clusters")?;
        let routes = items("routes")?;
        self.change(|state, _| {
            let mut summary = ApplySummary::default();
            let mut change = Change::default();
            for (name, cluster) in &clusters {
                sort_outcome(&mut summary.clusters, name, state.cluster(name), cluster);
                change.put_clusters.push((name.clone(), cluster.clone()));
            }
            let mut order: Vec<String> = state.routes.iter().map(|(i, _)| i.clone()).collect();
            for (id, route) in &routes {
                let mut route = route.clone();
                resolve_attachments(state, id, &mut route)?;
                sort_outcome(&mut summary.routes, id, state.route(id), &route);
                if !order.contains(id) {
                    order.push(id.clone());
                }
                change.put_routes.push((id.clone(), route));
            }
            if prune {
                for (id, _) in &state.routes {
                    if !routes.iter().any(|(r, _)| r == id) {
                        change.remove_routes.push(id.clone());
                        summary.routes.removed.push(id.clone());
                    }
                }
                for (name, _) in &state.clusters {
                    if !clusters.iter().any(|(c, _)| c == name) {
                        change.remove_clusters.push(name.clone());
                        summary.clusters.removed.push(name.clone());
                    }
                }
                order = routes.iter().map(|(id, _)| id.clone()).collect();
            }
            change.route_order = Some(order);
            Ok((change, summary))
        })
    }

    fn not_in_file(&self, kind: &str, name: &str) -> Result<(), ControlError> {
        let defined = match kind {
            "route" => self.base().routes.iter().any(|r| r.name == name),
            _ => self.base().clusters.iter().any(|c| c.name == name),
        };
        if defined {
            return Err(ControlError::Conflict(format!(
                "{kind} \"{name}\" is defined in {}; change it there (the registry holds the {kind}s made through \
                 the admin API and `weir apply`)",
                self.base().source.file
            )));
        }
        Ok(())
    }
}

/// A registry route's JSON, or the "no route" error.
fn stored_route(state: &State, id: &str) -> Result<Value, ControlError> {
    state.route(id).cloned().ok_or_else(|| {
        ControlError::NotFound(format!("no route \"{id}\" in the registry; `weir route list` shows them"))
    })
}

fn sort_outcome(out: &mut Outcomes, name: &str, stored: Option<&Value>, new: &Value) {
    match stored {
        None => out.created.push(name.to_string()),
        Some(s) if s == new => out.unchanged.push(name.to_string()),
        Some(_) => out.updated.push(name.to_string()),
    }
}

/// The body as an object whose `"name"` is `name` (set when absent, refused when different).
fn named_object(kind: &str, name: &str, body: Value) -> Result<Value, ControlError> {
    let Value::Object(mut obj) = body else {
        return Err(ControlError::BadRequest(format!(
            "the {kind} must be a JSON object (the configuration file's {kind} shape)"
        )));
    };
    match obj.get("name") {
        None => {
            obj.insert("name".into(), Value::String(name.to_string()));
        }
        Some(Value::String(n)) if n == name => {}
        Some(other) => {
            return Err(ControlError::BadRequest(format!(
                "$.name: {other} differs from the {kind} name in the URL (\"{name}\"); leave it out or make them equal"
            )))
        }
    }
    Ok(Value::Object(obj))
}

/// The published version `spec` (`name@version`, `name@range` or `name`) names: the highest match.
fn resolve<'s>(state: &'s State, spec: &str) -> Result<&'s FilterVersion, ControlError> {
    let (name, req) = match spec.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    };
    let versions: Vec<&FilterVersion> = state.filters.iter().filter(|f| f.name == name).collect();
    if versions.is_empty() {
        return Err(ControlError::NotFound(format!(
            "no filter \"{name}\" is published; push it first (weir filter push FILE.wasm --name {name} --version 1.0.0)"
        )));
    }
    let matches = |f: &FilterVersion| -> Result<bool, ControlError> {
        let Some(r) = req else { return Ok(true) };
        if let Ok(exact) = semver::Version::parse(r) {
            return Ok(f.semver() == exact);
        }
        let range = semver::VersionReq::parse(r).map_err(|e| {
            ControlError::BadRequest(format!(
                "\"{r}\" in \"{spec}\" is neither a version nor a range ({e}); use 1.2.0, ^1.2, ~1.2.3 or 1.x"
            ))
        })?;
        Ok(range.matches(&f.semver()))
    };
    let mut best: Option<&FilterVersion> = None;
    for f in versions.iter().copied() {
        if matches(f)? && best.is_none_or(|b| f.semver() > b.semver()) {
            best = Some(f);
        }
    }
    best.ok_or_else(|| {
        ControlError::NotFound(format!(
            "no published version of \"{name}\" matches \"{}\"; published: {}",
            req.unwrap_or("*"),
            versions.iter().map(|f| f.version.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Pins every `"filter"` attachment of a route that has no digest yet, and checks each configuration
/// against its version's schema.
fn resolve_attachments(state: &State, id: &str, route: &mut Value) -> Result<(), ControlError> {
    let Some(chain) = route.get_mut("filters").and_then(Value::as_array_mut) else { return Ok(()) };
    for (i, entry) in chain.iter_mut().enumerate() {
        let Some(spec) = entry.get("filter").and_then(Value::as_str).map(str::to_string) else { continue };
        let version = match entry.get("digest") {
            Some(_) => {
                // Already pinned: it must still be published (or the composed configuration fails to read it).
                let (n, v) = spec.split_once('@').unwrap_or((spec.as_str(), ""));
                match state.filter(n, v) {
                    Some(f) => f,
                    None => {
                        return Err(ControlError::NotFound(format!(
                            "route \"{id}\": filters[{i}]: {spec} is not published"
                        )))
                    }
                }
            }
            None => resolve(state, &spec)
                .map_err(|e| ControlError::NotFound(format!("route \"{id}\": filters[{i}]: {e}")))?,
        };
        entry["filter"] = Value::String(version.key());
        entry["digest"] = Value::String(version.digest.clone());
        if entry.get("name").is_none() {
            entry["name"] = Value::String(version.name.clone());
        }
        check_schema(version, entry.get("configuration"), &format!("route \"{id}\", filters[{i}]"))?;
    }
    Ok(())
}

/// Checks an attachment's configuration against the version's schema; an absent configuration is checked
/// as `{}`.
fn check_schema(version: &FilterVersion, config: Option<&Value>, at: &str) -> Result<(), ControlError> {
    let Some(schema) = &version.config_schema else { return Ok(()) };
    let empty = Value::Object(Map::new());
    let config = config.unwrap_or(&empty);
    artifact::schema::validate(schema, config).map_err(|issues| {
        ControlError::BadRequest(format!(
            "{at}: the configuration does not match the schema of {}: {}",
            version.key(),
            issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")
        ))
    })
}
