//! The registry: the gateway's mutable state in sled, in the data dir.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `blobs` | sha256 hex of the module | the `.wasm` bytes |
//! | `filters` | `name@version` | [`FilterVersion`] as JSON |
//! | `routes` | route id | the route as JSON, in the configuration file's shape |
//! | `clusters` | cluster name | the cluster as JSON, in the configuration file's shape |
//! | `meta` | `route_order`, `generation` | JSON |
//!
//! Routes and clusters are kept as the same JSON objects a configuration file holds, so one parser
//! (`config::parse`) validates both and reports problems with a JSON path. A filter attachment in a
//! registry route names its module by `"filter": "name@version"` and pins it with `"digest"`.
//!
//! Every mutation is one [`Change`], written in one sled transaction across the trees and flushed to
//! disk before [`Registry::commit`] returns: what the admin API acknowledged survives `kill -9`.

mod records;

pub use records::{FilterVersion, State};

use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::{Path, PathBuf};

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The store could not be opened.
    #[error("cannot open the registry in {dir}: {detail}; is another weir using this data dir? (\"data_dir\" in the configuration)")]
    Open {
        /// The store's folder.
        dir: PathBuf,
        /// What sled said.
        detail: String,
    },
    /// A read or write failed.
    #[error("registry storage failed: {0}")]
    Storage(String),
    /// A stored record does not decode (the store was written by something else).
    #[error("registry record {tree}/{key} is not valid: {detail}")]
    Corrupt {
        /// Tree name.
        tree: &'static str,
        /// Key.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

impl From<sled::Error> for RegistryError {
    fn from(e: sled::Error) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

/// One mutation: everything in it is written in one transaction, or nothing is.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// Module blobs to store: (sha256 hex, bytes).
    pub put_blobs: Vec<(String, Vec<u8>)>,
    /// Module blobs no version refers to any more.
    pub remove_blobs: Vec<String>,
    /// Filter versions published.
    pub put_filters: Vec<FilterVersion>,
    /// Filter versions removed: (name, version).
    pub remove_filters: Vec<(String, String)>,
    /// Routes written (id, JSON).
    pub put_routes: Vec<(String, Value)>,
    /// Routes removed.
    pub remove_routes: Vec<String>,
    /// The new route order, when it changes.
    pub route_order: Option<Vec<String>>,
    /// Clusters written (name, JSON).
    pub put_clusters: Vec<(String, Value)>,
    /// Clusters removed.
    pub remove_clusters: Vec<String>,
    /// A marker to set (see [`Registry::marked`]): that something was done once to this store, such as the
    /// demo's routes being written, so it is not done again after the user changed or removed them.
    pub mark: Option<String>,
}

impl Change {
    /// Whether the change writes nothing (a repeated publish of the same bytes).
    pub fn is_empty(&self) -> bool {
        self.put_blobs.is_empty()
            && self.remove_blobs.is_empty()
            && self.put_filters.is_empty()
            && self.remove_filters.is_empty()
            && self.mark.is_none()
            && !self.touches_routing()
    }

    /// Whether the change touches what the data plane serves (routes, clusters), as opposed to only the
    /// filter store.
    pub fn touches_routing(&self) -> bool {
        !(self.put_routes.is_empty()
            && self.remove_routes.is_empty()
            && self.route_order.is_none()
            && self.put_clusters.is_empty()
            && self.remove_clusters.is_empty())
    }
}

/// The store.
pub struct Registry {
    db: sled::Db,
    blobs: sled::Tree,
    filters: sled::Tree,
    routes: sled::Tree,
    clusters: sled::Tree,
    meta: sled::Tree,
}

const ROUTE_ORDER: &[u8] = b"route_order";
const GENERATION: &[u8] = b"generation";

impl Registry {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Registry, RegistryError> {
        let open_err = |e: sled::Error| RegistryError::Open { dir: dir.to_path_buf(), detail: e.to_string() };
        let db = sled::Config::new().path(dir).mode(sled::Mode::LowSpace).open().map_err(open_err)?;
        Registry::from_db(db)
    }

    /// A store in a temporary folder, removed when dropped (embedders and tests that want no data dir).
    pub fn temporary() -> Result<Registry, RegistryError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| RegistryError::Open { dir: std::env::temp_dir(), detail: e.to_string() })?;
        Registry::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Registry, RegistryError> {
        let tree = |name: &str| db.open_tree(name).map_err(RegistryError::from);
        Ok(Registry {
            blobs: tree("blobs")?,
            filters: tree("filters")?,
            routes: tree("routes")?,
            clusters: tree("clusters")?,
            meta: tree("meta")?,
            db,
        })
    }

    /// Everything but the blobs, as of now.
    pub fn state(&self) -> Result<State, RegistryError> {
        let mut filters = Vec::new();
        for item in self.filters.iter() {
            let (k, v) = item?;
            filters.push(decode::<FilterVersion>("filters", &k, &v)?);
        }
        filters.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.semver().cmp(&b.semver())));
        let mut clusters = Vec::new();
        for item in self.clusters.iter() {
            let (k, v) = item?;
            clusters.push((key_text("clusters", &k)?, decode::<Value>("clusters", &k, &v)?));
        }
        let order: Vec<String> = match self.meta.get(ROUTE_ORDER)? {
            Some(v) => decode("meta", ROUTE_ORDER, &v)?,
            None => Vec::new(),
        };
        let mut routes = Vec::new();
        for id in &order {
            match self.routes.get(id.as_bytes())? {
                Some(v) => routes.push((id.clone(), decode::<Value>("routes", id.as_bytes(), &v)?)),
                None => {
                    return Err(RegistryError::Corrupt {
                        tree: "meta",
                        key: "route_order".into(),
                        detail: format!("names route \"{id}\", which is not stored"),
                    })
                }
            }
        }
        let generation = match self.meta.get(GENERATION)? {
            Some(v) => decode("meta", GENERATION, &v)?,
            None => 0,
        };
        Ok(State { filters, clusters, routes, generation })
    }

    /// A module's bytes by sha256 hex.
    pub fn blob(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self.blobs.get(sha256_hex.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Whether a change with [`Change::mark`] `name` was committed.
    pub fn marked(&self, name: &str) -> Result<bool, RegistryError> {
        Ok(self.meta.get(mark_key(name).as_bytes())?.is_some())
    }

    /// Writes `change` in one transaction and flushes it to disk; returns the new generation.
    pub fn commit(&self, change: &Change) -> Result<u64, RegistryError> {
        let result = (&self.blobs, &self.filters, &self.routes, &self.clusters, &self.meta).transaction(
            |(blobs, filters, routes, clusters, meta)| {
                for (digest, bytes) in &change.put_blobs {
                    blobs.insert(digest.as_bytes(), bytes.as_slice())?;
                }
                for digest in &change.remove_blobs {
                    blobs.remove(digest.as_bytes())?;
                }
                for f in &change.put_filters {
                    filters.insert(f.key().as_bytes(), encode(f))?;
                }
                for (name, version) in &change.remove_filters {
                    filters.remove(format!("{name}@{version}").as_bytes())?;
                }
                for (id, route) in &change.put_routes {
                    routes.insert(id.as_bytes(), encode(route))?;
                }
                for id in &change.remove_routes {
                    routes.remove(id.as_bytes())?;
                }
                if let Some(order) = &change.route_order {
                    meta.insert(ROUTE_ORDER, encode(order))?;
                }
                for (name, cluster) in &change.put_clusters {
                    clusters.insert(name.as_bytes(), encode(cluster))?;
                }
                for name in &change.remove_clusters {
                    clusters.remove(name.as_bytes())?;
                }
                if let Some(mark) = &change.mark {
                    meta.insert(mark_key(mark).as_bytes(), encode(&true))?;
                }
                let generation: u64 = match meta.get(GENERATION)? {
                    Some(v) => serde_json::from_slice(&v).unwrap_or(0),
                    None => 0,
                } + 1;
                meta.insert(GENERATION, encode(&generation))?;
                Ok::<u64, ConflictableTransactionError<RegistryError>>(generation)
            },
        );
        let generation = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => RegistryError::from(e),
        })?;
        self.db.flush()?;
        Ok(generation)
    }
}

fn mark_key(name: &str) -> String {
    format!("mark:{name}")
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(tree: &'static str, key: &[u8], v: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(v).map_err(|e| RegistryError::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

fn key_text(tree: &'static str, key: &[u8]) -> Result<String, RegistryError> {
    String::from_utf8(key.to_vec()).map_err(|_| RegistryError::Corrupt {
        tree,
        key: format!("{key:?}"),
        detail: "the key is not UTF-8".into(),
    })
}

#[cfg(test)]
mod tests;
