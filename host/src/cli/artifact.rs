//! `weir filter pack | keygen | pull | inspect` (and [`push_oci`] for `weir filter push`): filter artifacts in
//! the OCI format (`crate::artifact`, `docs/artifacts.md`).
//!
//! Each command is a function returning what to print on success, or the error message; [`report`] prints
//! either and turns it into the exit code (0, or 1 with `error: ` on stderr).

use crate::artifact::oci::{self, OciRef};
use crate::artifact::{self, schema, sign, Artifact};
use clap::ValueEnum;
use ed25519_dalek::VerifyingKey;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `weir filter pack` arguments.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// The filter module (.wasm built for wasm32-wasip1, exporting proxy_abi_version_*).
    #[arg(value_name = "FILE.wasm")]
    pub wasm: PathBuf,
    /// The artifact's name: letters, digits, '-' and '_', starting with a letter.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Its version (semver: MAJOR.MINOR.PATCH, e.g. 1.2.0).
    #[arg(long, value_name = "VERSION")]
    pub version: String,
    /// What the filter does.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub description: String,
    /// A JSON Schema for the filter's configuration.
    #[arg(long, value_name = "SCHEMA.json")]
    pub schema: Option<PathBuf>,
    /// Sign the artifact with this ed25519 private key (PEM, from `weir filter keygen`).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// The artifact file to write (default: NAME-VERSION.tar in the current folder).
    #[arg(long, short = 'o', value_name = "OUT.tar")]
    pub out: Option<PathBuf>,
}

/// `weir filter keygen` arguments.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (private, mode 0600) and PREFIX.pub (public); existing files are not overwritten.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

/// `weir filter pull` arguments.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:DIGEST.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// The artifact file to write (default: NAME-VERSION.tar in the current folder).
    #[arg(long, short = 'o', value_name = "OUT.tar")]
    pub out: Option<PathBuf>,
    /// Accept the artifact only if it is signed by one of these public keys (repeatable).
    #[arg(long, value_name = "KEY.pub")]
    pub trusted_key: Vec<PathBuf>,
    /// Speak plain HTTP to the registry (loopback hosts always are).
    #[arg(long)]
    pub plain_http: bool,
}

/// `weir filter inspect` arguments.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The artifact file (from `weir filter pack` or `weir filter pull`).
    #[arg(value_name = "ARTIFACT.tar")]
    pub artifact: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Check the signature against these public keys (repeatable): the artifact must be signed by one.
    #[arg(long, value_name = "KEY.pub")]
    pub trusted_key: Vec<PathBuf>,
    /// Also validate this filter configuration (JSON) against the artifact's configuration schema.
    #[arg(long, value_name = "CONFIG.json")]
    pub config: Option<PathBuf>,
}

/// How `inspect` prints.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// Aligned lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// Prints the outcome of a command and returns its exit code.
pub fn report(outcome: Result<String, String>) -> ExitCode {
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// `weir filter pack`.
pub fn pack(args: PackArgs) -> Result<String, String> {
    let wasm = fs::read(&args.wasm).map_err(|e| format!("{}: cannot read: {e}", args.wasm.display()))?;
    let version: semver::Version = args.version.parse().map_err(|e| {
        format!("--version {:?} is not a semver version (MAJOR.MINOR.PATCH, e.g. 1.2.0): {e}", args.version)
    })?;
    let schema = match &args.schema {
        None => None,
        Some(path) => {
            let text = fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            let value: Value =
                serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
            artifact::schema::check_schema(&value)
                .map_err(|e| format!("{}: the configuration schema is not a valid JSON Schema: {e}", path.display()))?;
            Some(value)
        }
    };
    let key = match &args.sign_key {
        None => None,
        Some(path) => Some(sign::read_signing_key(path).map_err(|e| e.to_string())?),
    };
    artifact::check_name(&args.name).map_err(|e| e.to_string())?;
    let packed = artifact::pack(wasm, &args.name, version, &args.description, schema, key.as_ref())
        .map_err(|e| format!("{}: {e}", args.wasm.display()))?;
    let out = args.out.unwrap_or_else(|| default_out(&packed));
    write_tar(&out, &packed)?;
    let signed = match &packed.signature {
        Some(sig) => format!("signed by key {}", sig.key_id),
        None => "unsigned".to_string(),
    };
    Ok(format!(
        "packed {} (proxy-wasm ABI {}, {} bytes, {signed}) into {}\n",
        packed.id(),
        packed.meta.abi,
        packed.meta.wasm_size,
        out.display()
    ))
}

/// `weir filter keygen`.
pub fn keygen(args: KeygenArgs) -> Result<String, String> {
    let (key, public) = sign::generate();
    let (private_path, public_path) = sign::write_key_pair(&args.out, &key).map_err(|e| e.to_string())?;
    Ok(format!(
        "wrote {} (private key: keep it secret) and {} (public key, key id {})\n",
        private_path.display(),
        public_path.display(),
        artifact::KeyId::of(&public)
    ))
}

/// `weir filter pull`.
pub fn pull(args: PullArgs) -> Result<String, String> {
    let reference = OciRef::parse(&args.reference).map_err(|e| e.to_string())?;
    let trusted = read_trusted(&args.trusted_key)?;
    let (pulled, digest) = block_on(oci::pull(&reference, args.plain_http))?.map_err(|e| e.to_string())?;
    let signature = signature_line(&pulled, &trusted).map_err(|e| format!("{reference}: {e}"))?;
    let out = args.out.unwrap_or_else(|| default_out(&pulled));
    write_tar(&out, &pulled)?;
    Ok(format!("pulled {} (manifest {digest}, {signature}) into {}\n", pulled.id(), out.display()))
}

/// `weir filter push ARTIFACT.tar oci://...`: reads and checks the artifact, pushes it, and says where to.
pub fn push_oci(artifact_tar: &Path, reference: &str) -> Result<String, String> {
    let reference = OciRef::parse(reference).map_err(|e| e.to_string())?;
    let loaded = read_tar(artifact_tar)?;
    let digest = block_on(oci::push(&loaded, &reference, false))?.map_err(|e| e.to_string())?;
    Ok(format!(
        "pushed {} to {reference} (manifest {digest}; pull it by digest with {})\n",
        loaded.id(),
        reference.with_target(oci::OciTarget::Digest(digest.clone()))
    ))
}

/// `weir filter inspect`.
pub fn inspect(args: InspectArgs) -> Result<String, String> {
    let loaded = read_tar(&args.artifact)?;
    let trusted = read_trusted(&args.trusted_key)?;
    let signature = signature_line(&loaded, &trusted).map_err(|e| format!("{}: {e}", args.artifact.display()))?;
    let manifest_digest = artifact::sha256_digest(&loaded.manifest_bytes());
    let config_check = match &args.config {
        None => None,
        Some(path) => Some(check_config(&loaded, path)?),
    };
    let meta = &loaded.meta;
    match args.output {
        OutputFormat::Json => {
            let value = serde_json::json!({
                "meta": meta,
                "manifest_digest": manifest_digest,
                "signature": loaded.signature.as_ref().map(|s| serde_json::json!({
                    "key_id": s.key_id.as_str(),
                    "verified": !trusted.is_empty(),
                })),
            });
            Ok(format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default()))
        }
        OutputFormat::Text => {
            let description = if meta.description.is_empty() { "-" } else { meta.description.as_str() };
            let schema = if meta.config_schema.is_some() { "yes (see -o json)" } else { "none" };
            let mut out = format!(
                "name         {}\nversion      {}\nabi          proxy-wasm {}\ndescription  {description}\n\
                 wasm         {} ({} bytes)\nmanifest     {manifest_digest}\nschema       {schema}\n\
                 signature    {signature}\n",
                meta.name, meta.version, meta.abi, meta.wasm_digest, meta.wasm_size
            );
            if let Some(line) = config_check {
                out.push_str(&line);
            }
            Ok(out)
        }
    }
}

// === helpers ===

fn check_config(loaded: &Artifact, path: &Path) -> Result<String, String> {
    let text = fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let config: Value = serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let Some(schema) = &loaded.meta.config_schema else {
        return Err(format!("{} has no configuration schema to check {} against", loaded.id(), path.display()));
    };
    match schema::validate(schema, &config) {
        Ok(()) => Ok(format!("config       {}: valid\n", path.display())),
        Err(issues) => {
            let list: Vec<String> = issues.iter().map(|i| format!("  {i}")).collect();
            Err(format!(
                "{}: does not match {}'s configuration schema ({} issue{}):\n{}",
                path.display(),
                loaded.id(),
                issues.len(),
                if issues.len() == 1 { "" } else { "s" },
                list.join("\n")
            ))
        }
    }
}

fn signature_line(a: &Artifact, trusted: &[VerifyingKey]) -> Result<String, artifact::ArtifactError> {
    if trusted.is_empty() {
        return Ok(match &a.signature {
            Some(sig) => format!("signed by key {} (not checked: no --trusted-key given)", sig.key_id),
            None => "unsigned".into(),
        });
    }
    let id = artifact::require_trusted(a, trusted)?;
    Ok(format!("signed by trusted key {id}"))
}

fn read_trusted(paths: &[PathBuf]) -> Result<Vec<VerifyingKey>, String> {
    paths.iter().map(|p| sign::read_verifying_key(p).map_err(|e| e.to_string())).collect()
}

fn read_tar(path: &Path) -> Result<Artifact, String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if meta.len() > artifact::layout::MAX_TAR_SIZE {
        return Err(format!(
            "{}: {}",
            path.display(),
            artifact::ArtifactError::TooLarge {
                what: "the artifact file".into(),
                size: meta.len(),
                limit: artifact::layout::MAX_TAR_SIZE
            }
        ));
    }
    let bytes = fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Artifact::from_layout_tar(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_tar(path: &Path, a: &Artifact) -> Result<(), String> {
    fs::write(path, a.to_layout_tar()).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn default_out(a: &Artifact) -> PathBuf {
    PathBuf::from(format!("{}-{}.tar", a.meta.name, a.meta.version))
}

fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}
