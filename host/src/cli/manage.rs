//! The management commands: clients of the admin API (`weir filter push|list|show|rm`,
//! `weir cluster ...`, `weir route ...`, `weir apply`). Each returns what to print, or the error.

use super::client::{encode, AdminArgs, Client};
use http::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Listing format.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// The admin API's JSON.
    Json,
}

/// `weir filter push` arguments.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// A .wasm module (needs --name and --version), an artifact (.tar from `weir filter pack`), or an
    /// oci:// reference (pulled, verified, then installed).
    #[arg(value_name = "FILE.wasm|ARTIFACT")]
    pub source: String,
    /// Push the artifact to this OCI registry instead of the gateway: oci://HOST:PORT/REPO:TAG.
    #[arg(value_name = "oci://DESTINATION")]
    pub destination: Option<String>,
    /// The filter's name (for a .wasm).
    #[arg(long)]
    pub name: Option<String>,
    /// The version (for a .wasm): semver, e.g. 1.2.0.
    #[arg(long)]
    pub version: Option<String>,
    /// What the filter does (for a .wasm).
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// A listing's arguments.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `weir filter show` / `rm` arguments.
#[derive(Debug, clap::Args)]
pub struct FilterRefArgs {
    /// NAME or NAME@VERSION (rm needs the version).
    #[arg(value_name = "NAME[@VERSION]")]
    pub reference: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `weir cluster set` arguments.
#[derive(Debug, clap::Args)]
pub struct ClusterSetArgs {
    /// The cluster's name.
    pub name: String,
    /// An endpoint HOST:PORT (repeat for several).
    #[arg(long = "endpoint", value_name = "HOST:PORT", required = true)]
    pub endpoints: Vec<String>,
    /// Speak HTTP/2 to the endpoints.
    #[arg(long)]
    pub http2: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// A command naming one route or cluster.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The route id or cluster name.
    pub id: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `weir route set` arguments.
#[derive(Debug, clap::Args)]
pub struct RouteSetArgs {
    /// The route's id.
    pub id: String,
    /// Match paths starting with P.
    #[arg(long, value_name = "P", conflicts_with = "path_exact")]
    pub path_prefix: Option<String>,
    /// Match exactly this path.
    #[arg(long, value_name = "P")]
    pub path_exact: Option<String>,
    /// Match this host (exact or *.example.com; repeatable).
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Match this method (repeatable).
    #[arg(long = "method", value_name = "M")]
    pub methods: Vec<String>,
    /// Proxy to this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// Replace the matched prefix with this before proxying.
    #[arg(long, value_name = "R")]
    pub prefix_rewrite: Option<String>,
    /// Place among the registry's routes (0 is matched first; default: last for a new route).
    #[arg(long, value_name = "N")]
    pub position: Option<usize>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `weir route attach` arguments.
#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// The route's id.
    pub id: String,
    /// NAME@VERSION, NAME@RANGE (^1.2, ~1.2.3, 1.x) or NAME (the highest version).
    #[arg(value_name = "NAME@VERSION-OR-RANGE")]
    pub filter: String,
    /// The filter's configuration: JSON text, or a JSON file.
    #[arg(long, value_name = "FILE-OR-JSON")]
    pub config: Option<String>,
    /// Position in the chain (0 is first).
    #[arg(long, value_name = "N")]
    pub position: Option<usize>,
    /// What a failing filter does to its request.
    #[arg(long, value_enum)]
    pub failure_policy: Option<FailurePolicyArg>,
    /// The root id (multi-plugin modules).
    #[arg(long, value_name = "ID")]
    pub root_id: Option<String>,
    /// The attachment's name on the route (default: the filter's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// Failure policies on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FailurePolicyArg {
    /// Answer 503 (the default).
    FailClosed,
    /// Skip the filter.
    FailOpen,
}

/// `weir route detach` arguments.
#[derive(Debug, clap::Args)]
pub struct DetachArgs {
    /// The route's id.
    pub id: String,
    /// The attachment's name.
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `weir apply` arguments.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A JSON file with "clusters" and/or "routes" (the configuration file's shapes).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Also remove registry routes and clusters the file does not name.
    #[arg(long)]
    pub prune: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

fn swap_note(v: &Value) -> String {
    match (v.get("generation").and_then(Value::as_u64), v.get("swap_ms").and_then(Value::as_f64)) {
        (Some(g), Some(ms)) => format!(" (generation {g}, serving on every worker after {ms:.1} ms)"),
        (Some(g), None) => format!(" (generation {g})"),
        _ => String::new(),
    }
}

/// `weir filter push`.
pub fn push(args: PushArgs) -> Result<String, String> {
    if let Some(dest) = &args.destination {
        if !dest.starts_with("oci://") {
            return Err(format!("{dest}: a destination must be an oci:// reference (oci://HOST:PORT/REPO:TAG)"));
        }
        return super::artifact::push_oci(Path::new(&args.source), dest);
    }
    let client = Client::new(&args.admin)?;
    let (path, content_type, body) = if args.source.starts_with("oci://") {
        let tar = pull_tar(&args.source)?;
        ("/api/v1/filters".to_string(), "application/vnd.oci.image.layout.v1+tar", tar)
    } else {
        let bytes = std::fs::read(&args.source).map_err(|e| format!("cannot read {}: {e}", args.source))?;
        if bytes.starts_with(b"\0asm") {
            let (Some(name), Some(version)) = (&args.name, &args.version) else {
                return Err(format!(
                    "{} is a .wasm module: give --name NAME and --version VERSION (or pack it into an artifact with `weir filter pack`)",
                    args.source
                ));
            };
            let mut path = format!("/api/v1/filters?name={}&version={}", encode(name), encode(version));
            if let Some(d) = &args.description {
                path.push_str(&format!("&description={}", encode(d)));
            }
            (path, "application/wasm", bytes)
        } else {
            if args.name.is_some() || args.version.is_some() {
                return Err(format!(
                    "{} is not a .wasm module; --name and --version apply to .wasm uploads (an artifact carries its own)",
                    args.source
                ));
            }
            ("/api/v1/filters".to_string(), "application/vnd.oci.image.layout.v1+tar", bytes)
        }
    };
    let (_, v) = client.call(Method::POST, &path, content_type, body)?;
    let f = &v["filter"];
    let id = format!("{}@{}", f["name"].as_str().unwrap_or("?"), f["version"].as_str().unwrap_or("?"));
    let digest = f["digest"].as_str().unwrap_or("?");
    let size = f["size"].as_u64().unwrap_or(0);
    Ok(if v["created"].as_bool() == Some(true) {
        let signed = f["signed_by"].as_str().map(|k| format!(", signed by {k}")).unwrap_or_default();
        format!("pushed {id} ({digest}, {size} bytes{signed})")
    } else {
        format!("{id} is already published with the same bytes ({digest}); nothing changed")
    })
}

/// Pulls and verifies an artifact from an OCI registry, as layout tar bytes to upload.
fn pull_tar(reference: &str) -> Result<Vec<u8>, String> {
    use crate::artifact::oci::{self, OciRef};
    let r = OciRef::parse(reference).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the client runtime: {e}"))?;
    let (artifact, _) = rt.block_on(oci::pull(&r, false)).map_err(|e| format!("{reference}: {e}"))?;
    Ok(artifact.to_layout_tar())
}

/// `weir filter list`.
pub fn filter_list(args: ListArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(Method::GET, "/api/v1/filters", None)?;
    let filters = v["filters"].as_array().cloned().unwrap_or_default();
    match args.output {
        Output::Json => Ok(pretty(&v)),
        Output::Table => Ok(table(
            &["NAME", "VERSION", "ABI", "SIZE", "DIGEST", "SIGNED BY"],
            filters
                .iter()
                .map(|f| {
                    vec![
                        text(&f["name"]),
                        text(&f["version"]),
                        text(&f["abi"]),
                        f["size"].as_u64().unwrap_or(0).to_string(),
                        short_digest(&f["digest"]),
                        f["signed_by"].as_str().unwrap_or("-").to_string(),
                    ]
                })
                .collect(),
        )),
    }
}

/// `weir filter show`.
pub fn filter_show(args: FilterRefArgs) -> Result<String, String> {
    let client = Client::new(&args.admin)?;
    let v = match args.reference.split_once('@') {
        Some((n, ver)) => client.json(Method::GET, &format!("/api/v1/filters/{}/{}", encode(n), encode(ver)), None)?,
        None => client.json(Method::GET, &format!("/api/v1/filters/{}", encode(&args.reference)), None)?,
    };
    if let Output::Json = args.output {
        return Ok(pretty(&v));
    }
    let versions: Vec<Value> = match v.get("filter") {
        Some(f) => vec![f.clone()],
        None => v["versions"].as_array().cloned().unwrap_or_default(),
    };
    let mut out = String::new();
    for f in versions {
        out.push_str(&format!("{}@{}\n", text(&f["name"]), text(&f["version"])));
        out.push_str(&format!("  digest:       {}\n", text(&f["digest"])));
        out.push_str(&format!("  size:         {} bytes\n", f["size"].as_u64().unwrap_or(0)));
        out.push_str(&format!("  abi:          {}\n", text(&f["abi"])));
        if let Some(d) = f["description"].as_str().filter(|d| !d.is_empty()) {
            out.push_str(&format!("  description:  {d}\n"));
        }
        if let Some(k) = f["signed_by"].as_str() {
            out.push_str(&format!("  signed by:    {k}\n"));
        }
        if !f["config_schema"].is_null() {
            out.push_str("  config schema: yes\n");
        }
        if let Some(routes) = f["attached_to"].as_array() {
            let names: Vec<String> = routes.iter().map(text).collect();
            out.push_str(&format!(
                "  attached to:  {}\n",
                if names.is_empty() { "-".into() } else { names.join(", ") }
            ));
        }
    }
    Ok(out.trim_end().to_string())
}

/// `weir filter rm NAME@VERSION`.
pub fn filter_rm(args: FilterRefArgs) -> Result<String, String> {
    let Some((name, version)) = args.reference.split_once('@') else {
        return Err(format!("{}: give NAME@VERSION; published versions are removed one at a time", args.reference));
    };
    let v = Client::new(&args.admin)?.json(
        Method::DELETE,
        &format!("/api/v1/filters/{}/{}", encode(name), encode(version)),
        None,
    )?;
    Ok(format!("removed {name}@{version}{}", swap_note(&v)))
}

/// `weir cluster set`.
pub fn cluster_set(args: ClusterSetArgs) -> Result<String, String> {
    let mut body = json!({
        "endpoints": args.endpoints.iter().map(|e| json!({"address": e})).collect::<Vec<_>>(),
    });
    if args.http2 {
        body["http2"] = true.into();
    }
    let v = Client::new(&args.admin)?.json(
        Method::PUT,
        &format!("/api/v1/clusters/{}", encode(&args.name)),
        Some(&body),
    )?;
    Ok(format!("cluster {} set{}", args.name, swap_note(&v)))
}

/// `weir cluster list`.
pub fn cluster_list(args: ListArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(Method::GET, "/api/v1/clusters", None)?;
    match args.output {
        Output::Json => Ok(pretty(&v)),
        Output::Table => Ok(table(
            &["NAME", "SOURCE", "ENDPOINTS"],
            v["clusters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let eps: Vec<String> = c["endpoints"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|e| text(&e["address"]))
                        .collect();
                    vec![text(&c["name"]), text(&c["source"]), eps.join(",")]
                })
                .collect(),
        )),
    }
}

/// `weir cluster rm`.
pub fn cluster_rm(args: IdArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(Method::DELETE, &format!("/api/v1/clusters/{}", encode(&args.id)), None)?;
    Ok(format!("cluster {} removed{}", args.id, swap_note(&v)))
}

/// `weir route set`.
pub fn route_set(args: RouteSetArgs) -> Result<String, String> {
    let mut matcher = json!({});
    if let Some(p) = &args.path_prefix {
        matcher["path"] = json!({"prefix": p});
    }
    if let Some(p) = &args.path_exact {
        matcher["path"] = json!({"exact": p});
    }
    if !args.hosts.is_empty() {
        matcher["host"] = json!(args.hosts);
    }
    if !args.methods.is_empty() {
        matcher["methods"] = json!(args.methods);
    }
    let mut body = json!({"match": matcher, "cluster": args.cluster});
    if let Some(r) = &args.prefix_rewrite {
        body["prefix_rewrite"] = r.as_str().into();
    }
    let mut path = format!("/api/v1/routes/{}", encode(&args.id));
    if let Some(p) = args.position {
        path.push_str(&format!("?position={p}"));
    }
    let v = Client::new(&args.admin)?.json(Method::PUT, &path, Some(&body))?;
    Ok(format!("route {} set{}", args.id, swap_note(&v)))
}

/// `weir route list`.
pub fn route_list(args: ListArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(Method::GET, "/api/v1/routes", None)?;
    match args.output {
        Output::Json => Ok(pretty(&v)),
        Output::Table => Ok(table(
            &["ID", "SOURCE", "MATCH", "TARGET", "FILTERS"],
            v["routes"].as_array().cloned().unwrap_or_default().iter().map(route_row).collect(),
        )),
    }
}

fn route_row(r: &Value) -> Vec<String> {
    let m = &r["match"];
    let mut parts = Vec::new();
    if let Some(hosts) = m["hosts"].as_array().filter(|h| !h.is_empty()) {
        parts.push(hosts.iter().map(text).collect::<Vec<_>>().join(","));
    }
    match m["path"].as_object().and_then(|p| p.iter().next()) {
        Some((kind, p)) => parts.push(format!("{kind} {}", text(p))),
        None => parts.push("any path".into()),
    }
    if let Some(ms) = m["methods"].as_array().filter(|m| !m.is_empty()) {
        parts.push(ms.iter().map(text).collect::<Vec<_>>().join(","));
    }
    let target = match r["cluster"].as_str() {
        Some(c) => format!("cluster {c}"),
        None => "direct response".into(),
    };
    let filters: Vec<String> = r["filters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            if f["name"] == f["module"] {
                text(&f["name"])
            } else {
                format!("{}={}", text(&f["name"]), text(&f["module"]))
            }
        })
        .collect();
    vec![
        text(&r["id"]),
        text(&r["source"]),
        parts.join(" "),
        target,
        if filters.is_empty() { "-".into() } else { filters.join(" > ") },
    ]
}

/// `weir route show`.
pub fn route_show(args: IdArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(Method::GET, &format!("/api/v1/routes/{}", encode(&args.id)), None)?;
    if let Output::Json = args.output {
        return Ok(pretty(&v));
    }
    let r = &v["route"];
    let row = route_row(r);
    let mut out = format!("route {} ({})\n  match:   {}\n  target:  {}\n", row[0], row[1], row[2], row[3]);
    let filters = r["filters"].as_array().cloned().unwrap_or_default();
    if filters.is_empty() {
        out.push_str("  filters: none\n");
    } else {
        out.push_str("  filters (in request order):\n");
        for (i, f) in filters.iter().enumerate() {
            out.push_str(&format!(
                "    {i}. {}  {}  {}\n",
                text(&f["name"]),
                text(&f["module"]),
                text(&f["failure_policy"])
            ));
        }
    }
    Ok(out.trim_end().to_string())
}

/// `weir route rm`.
pub fn route_rm(args: IdArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(Method::DELETE, &format!("/api/v1/routes/{}", encode(&args.id)), None)?;
    Ok(format!("route {} removed{}", args.id, swap_note(&v)))
}

/// `weir route attach`.
pub fn route_attach(args: AttachArgs) -> Result<String, String> {
    let mut body = json!({"filter": args.filter});
    if let Some(c) = &args.config {
        body["configuration"] = config_value(c)?;
    }
    if let Some(p) = args.position {
        body["position"] = p.into();
    }
    if let Some(p) = args.failure_policy {
        body["failure_policy"] = match p {
            FailurePolicyArg::FailClosed => "fail_closed",
            FailurePolicyArg::FailOpen => "fail_open",
        }
        .into();
    }
    if let Some(r) = &args.root_id {
        body["root_id"] = r.as_str().into();
    }
    if let Some(n) = &args.name {
        body["name"] = n.as_str().into();
    }
    let v = Client::new(&args.admin)?.json(
        Method::POST,
        &format!("/api/v1/routes/{}/filters", encode(&args.id)),
        Some(&body),
    )?;
    Ok(format!("attached {} to route {}{}", text(&v["attached"]), args.id, swap_note(&v)))
}

/// `--config`: JSON text, else a file holding JSON.
fn config_value(arg: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str::<Value>(arg) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(arg).map_err(|e| {
        format!("--config {arg}: neither JSON text nor a readable file ({e}); give e.g. '{{\"key\": \"value\"}}' or config.json")
    })?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "--config {arg}: not JSON: {} at line {} column {}",
            e.to_string().split(" at line ").next().unwrap_or(""),
            e.line(),
            e.column()
        )
    })
}

/// `weir route detach`.
pub fn route_detach(args: DetachArgs) -> Result<String, String> {
    let v = Client::new(&args.admin)?.json(
        Method::DELETE,
        &format!("/api/v1/routes/{}/filters/{}", encode(&args.id), encode(&args.name)),
        None,
    )?;
    Ok(format!("detached {} from route {}{}", args.name, args.id, swap_note(&v)))
}

/// `weir apply -f FILE`.
pub fn apply(args: ApplyArgs) -> Result<String, String> {
    let file = args.file.display().to_string();
    let body = std::fs::read_to_string(&args.file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let doc: Value = serde_json::from_str(&body).map_err(|e| {
        format!(
            "{file}: not JSON: {} at line {} column {}",
            e.to_string().split(" at line ").next().unwrap_or(""),
            e.line(),
            e.column()
        )
    })?;
    let path = if args.prune { "/api/v1/apply?prune=true" } else { "/api/v1/apply" };
    let v = Client::new(&args.admin)?.json(Method::POST, path, Some(&doc)).map_err(|e| format!("{file}: {e}"))?;
    if let Output::Json = args.output {
        return Ok(pretty(&v));
    }
    let mut lines = Vec::new();
    for kind in ["clusters", "routes"] {
        for what in ["created", "updated", "unchanged", "removed"] {
            let names: Vec<String> =
                v["applied"][kind][what].as_array().cloned().unwrap_or_default().iter().map(text).collect();
            if !names.is_empty() {
                lines.push(format!("{kind} {what}: {}", names.join(", ")));
            }
        }
    }
    lines.push(format!("applied {file}{}", swap_note(&v)));
    Ok(lines.join("\n"))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn short_digest(v: &Value) -> String {
    let d = text(v);
    match d.strip_prefix("sha256:") {
        Some(h) if h.len() > 12 => format!("sha256:{}", &h[..12]),
        _ => d,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == n { c } else { format!("{c:<w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}
