//! What `weir serve` writes into its registry before the first snapshot is built, in one transaction:
//!
//! - the five shipped filters ([`super::shipped`]) as `NAME@VERSION` (the binary's version), when that version is
//!   not there yet, so `weir route attach ROUTE jwt-auth` works on any install with no upload. Skipped when the
//!   configuration accepts only signed artifacts (`registry.require_signed`): the embedded modules are not signed;
//! - for the embedded demo (no `--config`), the demo routes of `routes.json`, once per data dir (a marker in the
//!   registry remembers it), so routes the user changed or removed stay so across restarts.
//!
//! Seeded records are ordinary registry records: `weir route attach`, `weir route rm` and the rest apply to them.

use super::shipped::{self, ShippedFilter};
use crate::registry::{Change, FilterVersion, Registry, RegistryError, State};
use serde_json::Value;

/// The marker set once the demo routes were written.
const DEMO_MARK: &str = "demo-routes";

/// The demo routes, with placeholders for the shared configurations (`routes.json`).
const ROUTES: &str = include_str!("routes.json");

/// What to seed.
#[derive(Debug, Clone, Default)]
pub struct Seed {
    /// Publish the shipped filters.
    pub filters: bool,
    /// Write the demo routes (once per data dir), their jwt-auth attachments trusting this JWK Set.
    pub demo_jwks: Option<Value>,
}

/// Why seeding failed: the start fails with it.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The store could not be read or written.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An embedded filter does not load (a build problem, not the user's).
    #[error("the embedded filter {name} does not load: {detail}")]
    Module {
        /// The filter.
        name: String,
        /// The loader's words.
        detail: String,
    },
    /// The embedded demo routes are malformed (a build problem).
    #[error("the embedded demo routes: {0}")]
    Routes(String),
}

/// What seeding wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seeded {
    /// `NAME@VERSION` of each filter published now.
    pub filters: Vec<String>,
    /// Ids of the routes written now.
    pub routes: Vec<String>,
}

/// The change that writes what `seed` asks for and `registry` lacks (empty when it lacks nothing), each new module
/// validated and its ABI read first ([`declared_abi`]). The caller commits it
/// once the state it leaves has been built and started, so a seed that does not start never reaches the disk.
pub fn plan(seed: &Seed, registry: &Registry) -> Result<(Change, Seeded), SeedError> {
    let state = registry.state()?;
    let mut change = Change::default();
    let mut seeded = Seeded::default();
    if seed.filters {
        for filter in shipped::SHIPPED {
            publish(filter, &state, &mut change, &mut seeded)?;
        }
    }
    if let Some(jwks) = &seed.demo_jwks {
        if !registry.marked(DEMO_MARK)? {
            demo_routes(jwks, &state, &mut change, &mut seeded)?;
            change.mark = Some(DEMO_MARK.into());
        }
    }
    Ok((change, seeded))
}

fn publish(filter: &ShippedFilter, state: &State, change: &mut Change, seeded: &mut Seeded) -> Result<(), SeedError> {
    let digest = crate::artifact::sha256_digest(filter.wasm);
    if let Some(existing) = state.filter(filter.name, shipped::VERSION) {
        if existing.digest != digest {
            tracing::warn!(
                filter = %existing.key(),
                registry = %existing.digest,
                embedded = %digest,
                "the registry holds another module under this shipped filter's version; kept the registry's \
                 (published versions are immutable: to use this build, push it under a new version)"
            );
        }
        return Ok(());
    }
    let abi = declared_abi(filter)?.to_string();
    let record = FilterVersion {
        name: filter.name.into(),
        version: shipped::VERSION.into(),
        digest: digest.clone(),
        size: filter.wasm.len() as u64,
        abi,
        description: filter.description.into(),
        config_schema: None,
        signed_by: None,
        published_at: now(),
    };
    seeded.filters.push(record.key());
    change.put_blobs.push((digest.trim_start_matches("sha256:").into(), filter.wasm.to_vec()));
    change.put_filters.push(record);
    Ok(())
}

/// The ABI version an embedded module declares (`"0.2.1"`), as a push reads it ([`crate::artifact::detect_abi`]),
/// after the module is validated: it is checked here, not compiled, and compiled with every check of a load
/// when a route attaches it. Compiling the five at start left ~50 MiB resident in a gateway that attaches
/// none of them (docs/benchmarks.md, "Idle memory").
fn declared_abi(filter: &ShippedFilter) -> Result<&'static str, SeedError> {
    let fail = |detail: String| SeedError::Module { name: filter.name.into(), detail };
    wasmparser::Validator::new().validate_all(filter.wasm).map_err(|e| fail(format!("not a valid module: {e}")))?;
    crate::artifact::detect_abi(filter.wasm).map_err(|e| fail(e.to_string()))
}

/// Adds the demo routes the registry does not hold (by id), after its own routes.
fn demo_routes(jwks: &Value, state: &State, change: &mut Change, seeded: &mut Seeded) -> Result<(), SeedError> {
    let doc: Value = serde_json::from_str(ROUTES).map_err(|e| SeedError::Routes(e.to_string()))?;
    let shared = doc.get("shared").cloned().unwrap_or_default();
    let routes = doc.get("routes").and_then(Value::as_array).ok_or_else(|| SeedError::Routes("no routes".into()))?;
    let mut order: Vec<String> = state.routes.iter().map(|(id, _)| id.clone()).collect();
    for route in routes {
        let mut route = route.clone();
        let id = route.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if id.is_empty() || state.route(&id).is_some() {
            continue;
        }
        let chain = route.get_mut("filters").and_then(Value::as_array_mut).into_iter().flatten();
        for attachment in chain {
            let name = attachment.get("filter").and_then(Value::as_str).unwrap_or_default().to_string();
            let filter = shipped::find(&name)
                .ok_or_else(|| SeedError::Routes(format!("route {id}: {name} is not a shipped filter")))?;
            attachment["filter"] = format!("{}@{}", filter.name, shipped::VERSION).into();
            attachment["digest"] = crate::artifact::sha256_digest(filter.wasm).into();
            if let Some(placeholder) = attachment.get("configuration").and_then(Value::as_str) {
                let mut configuration = shared
                    .get(placeholder)
                    .cloned()
                    .ok_or_else(|| SeedError::Routes(format!("route {id}: no shared configuration {placeholder}")))?;
                if configuration.get("jwks").is_some() {
                    configuration["jwks"] = jwks.clone();
                }
                attachment["configuration"] = configuration;
            }
        }
        order.push(id.clone());
        seeded.routes.push(id.clone());
        change.put_routes.push((id, route));
    }
    change.route_order = Some(order);
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
