//! What the registry stores, as plain serde records.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One published filter version: immutable once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterVersion {
    /// Filter name.
    pub name: String,
    /// Semantic version, normalised (`1.2.0`).
    pub version: String,
    /// `sha256:<hex>` of the module.
    pub digest: String,
    /// Module size in bytes.
    pub size: u64,
    /// The proxy-wasm ABI the module declares (`0.2.1`, `0.2.0`, `0.1.0`).
    pub abi: String,
    /// What the filter does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema every attachment's configuration must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_schema: Option<Value>,
    /// Key id of the trusted key that signed the artifact, when it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// When it was published (seconds since the Unix epoch).
    pub published_at: u64,
}

impl FilterVersion {
    /// The key in the `filters` tree.
    pub fn key(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The version as semver (versions are validated on publish; an unparsable one sorts first).
    pub fn semver(&self) -> semver::Version {
        semver::Version::parse(&self.version).unwrap_or(semver::Version::new(0, 0, 0))
    }

    /// The hex part of the digest (the blob's key).
    pub fn digest_hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// The registry's content (blobs aside).
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Every filter version, by name then version.
    pub filters: Vec<FilterVersion>,
    /// Clusters by name (sorted).
    pub clusters: Vec<(String, Value)>,
    /// Routes in match order.
    pub routes: Vec<(String, Value)>,
    /// Bumped by every committed change.
    pub generation: u64,
}

impl State {
    /// The state after `change` (what [`Registry::commit`](super::Registry::commit) will store).
    pub fn apply(&self, change: &super::Change) -> State {
        let mut next = self.clone();
        next.filters.retain(|f| !change.remove_filters.iter().any(|(n, v)| *n == f.name && *v == f.version));
        for f in &change.put_filters {
            next.filters.retain(|g| g.key() != f.key());
            next.filters.push(f.clone());
        }
        next.filters.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.semver().cmp(&b.semver())));
        next.clusters.retain(|(n, _)| !change.remove_clusters.contains(n));
        for (name, cluster) in &change.put_clusters {
            match next.clusters.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = cluster.clone(),
                None => next.clusters.push((name.clone(), cluster.clone())),
            }
        }
        next.clusters.sort_by(|a, b| a.0.cmp(&b.0));
        let mut routes: Vec<(String, Value)> =
            next.routes.into_iter().filter(|(id, _)| !change.remove_routes.contains(id)).collect();
        for (id, route) in &change.put_routes {
            match routes.iter_mut().find(|(i, _)| i == id) {
                Some(slot) => slot.1 = route.clone(),
                None => routes.push((id.clone(), route.clone())),
            }
        }
        if let Some(order) = &change.route_order {
            routes.sort_by_key(|(id, _)| order.iter().position(|o| o == id).unwrap_or(usize::MAX));
        }
        next.routes = routes;
        next.generation += 1;
        next
    }

    /// A filter version by name and exact version.
    pub fn filter(&self, name: &str, version: &str) -> Option<&FilterVersion> {
        self.filters.iter().find(|f| f.name == name && f.version == version)
    }

    /// A route by id.
    pub fn route(&self, id: &str) -> Option<&Value> {
        self.routes.iter().find(|(i, _)| i == id).map(|(_, v)| v)
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<&Value> {
        self.clusters.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The ids of the routes whose chains attach `name@version`.
    pub fn routes_using(&self, reference: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, r)| {
                r.get("filters")
                    .and_then(Value::as_array)
                    .is_some_and(|fs| fs.iter().any(|f| f.get("filter").and_then(Value::as_str) == Some(reference)))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The ids of the routes that proxy to `cluster`.
    pub fn routes_to_cluster(&self, cluster: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, r)| r.get("cluster").and_then(Value::as_str) == Some(cluster))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether any version other than `except` stores the module with this digest.
    pub fn digest_shared(&self, digest: &str, except: (&str, &str)) -> bool {
        self.filters.iter().any(|f| f.digest == digest && (f.name.as_str(), f.version.as_str()) != except)
    }
}
