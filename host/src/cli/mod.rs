//! The `weir` command line: `weir serve` runs the gateway; the other commands manage it.

mod artifact;
pub mod client;
mod filter;
pub mod manage;
mod serve;
mod token;

use crate::config::{Config, ConfigError, LogFormat};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Weir: a WebAssembly-extensible API and AI gateway.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (with no --config: the embedded demo configuration).
    Serve(ServeArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Filters: write (new), package (pack, keygen, inspect), move (push, pull) and manage (list, show, rm).
    #[command(subcommand)]
    Filter(FilterCommand),
    /// Upstream clusters in the registry.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Routes in the registry and the filters attached to them.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Write clusters and routes from a JSON file into the registry, as one change.
    Apply(manage::ApplyArgs),
    /// Mint a token the embedded demo's routes accept (signed with the demo key of the data dir).
    Token(token::TokenArgs),
}

/// `weir cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create or replace a cluster.
    Set(manage::ClusterSetArgs),
    /// List clusters (from the configuration file and the registry).
    List(manage::ListArgs),
    /// Remove a registry cluster (refused while a route uses it).
    Rm(manage::IdArgs),
}

/// `weir route ...`.
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Create or replace a route (its attached filters are kept).
    Set(manage::RouteSetArgs),
    /// List routes in match order.
    List(manage::ListArgs),
    /// Show one route and its filter chain.
    Show(manage::IdArgs),
    /// Remove a registry route.
    Rm(manage::IdArgs),
    /// Attach a filter version to a route, or upgrade, roll back, reconfigure or move an attachment.
    Attach(manage::AttachArgs),
    /// Remove a filter from a route.
    Detach(manage::DetachArgs),
}

/// `weir serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The JSON configuration file. Without it Weir serves the embedded demo on 127.0.0.1:8080 (the shipped
    /// filters on two routes to a built-in demo LLM; docs/quickstart.md).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Worker threads (default: the config's `workers`, else one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Log line format (overrides the config's logging.format).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// The data-plane listener's address, overriding the configuration's (which must have one listener); port 0
    /// picks a free port, logged as `listening`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// The admin listener's address, overriding the configuration's `admin.address`.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<std::net::SocketAddr>,
}

/// Log formats on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> LogFormat {
        match f {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// `weir config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print every error found (exit 1 if any).
    Check {
        /// The JSON configuration file.
        file: PathBuf,
    },
    /// Print the embedded default configuration (a starting point for your own).
    Default,
}

/// `weir filter ...`.
#[derive(Debug, Subcommand)]
pub enum FilterCommand {
    /// Create a filter crate in DIR/NAME: Cargo.toml, src/lib.rs (a working filter), tests on the fake host and
    /// on the built .wasm in Weir's runtime, a README, and a configuration that attaches the filter.
    New(FilterNewArgs),
    /// Pack a .wasm into a versioned artifact (an OCI image layout tar), optionally signed.
    #[command(disable_version_flag = true)]
    Pack(artifact::PackArgs),
    /// Write a new ed25519 key pair for signing artifacts: PREFIX.key and PREFIX.pub.
    Keygen(artifact::KeygenArgs),
    /// Pull an artifact from an OCI registry, check it, and write it as an artifact tar.
    Pull(artifact::PullArgs),
    /// Print an artifact's manifest (name, version, ABI, digests, signature), optionally checking a config.
    Inspect(artifact::InspectArgs),
    /// Upload a .wasm or an artifact to the gateway's registry, or an artifact to an OCI registry.
    #[command(disable_version_flag = true)]
    Push(manage::PushArgs),
    /// List published filter versions.
    List(manage::ListArgs),
    /// Show a filter's versions, or one version (NAME@VERSION).
    Show(manage::FilterRefArgs),
    /// Remove a published version (refused while attached).
    Rm(manage::FilterRefArgs),
}

/// `weir filter new` arguments.
#[derive(Debug, clap::Args)]
pub struct FilterNewArgs {
    /// The crate's name (letters, digits, '-' and '_', starting with a letter); also the folder created.
    pub name: String,
    /// The folder to create the crate in (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The weir-sdk crate the filter depends on (default: the sdk/ folder of the checkout this weir was built
    /// from).
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
    /// The weir crate whose harness the crate's wasm tests use (default: the host/ folder of that checkout).
    #[arg(long, value_name = "DIR")]
    pub weir_path: Option<PathBuf>,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Config(ConfigCommand::Check { file }) => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} listener{}, {} route{}, {} cluster{})",
                    file.display(),
                    c.listeners.len(),
                    plural(c.listeners.len()),
                    c.routes.len(),
                    plural(c.routes.len()),
                    c.clusters.len(),
                    plural(c.clusters.len())
                );
                ExitCode::SUCCESS
            }
            Err(e) => report_config_error(&e),
        },
        Command::Config(ConfigCommand::Default) => {
            print!("{}", crate::config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::Filter(FilterCommand::New(args)) => filter::new(args),
        Command::Filter(FilterCommand::Pack(args)) => artifact::report(artifact::pack(args)),
        Command::Filter(FilterCommand::Keygen(args)) => artifact::report(artifact::keygen(args)),
        Command::Filter(FilterCommand::Pull(args)) => artifact::report(artifact::pull(args)),
        Command::Filter(FilterCommand::Inspect(args)) => artifact::report(artifact::inspect(args)),
        Command::Filter(FilterCommand::Push(args)) => line(manage::push(args)),
        Command::Filter(FilterCommand::List(args)) => line(manage::filter_list(args)),
        Command::Filter(FilterCommand::Show(args)) => line(manage::filter_show(args)),
        Command::Filter(FilterCommand::Rm(args)) => line(manage::filter_rm(args)),
        Command::Cluster(ClusterCommand::Set(args)) => line(manage::cluster_set(args)),
        Command::Cluster(ClusterCommand::List(args)) => line(manage::cluster_list(args)),
        Command::Cluster(ClusterCommand::Rm(args)) => line(manage::cluster_rm(args)),
        Command::Route(RouteCommand::Set(args)) => line(manage::route_set(args)),
        Command::Route(RouteCommand::List(args)) => line(manage::route_list(args)),
        Command::Route(RouteCommand::Show(args)) => line(manage::route_show(args)),
        Command::Route(RouteCommand::Rm(args)) => line(manage::route_rm(args)),
        Command::Route(RouteCommand::Attach(args)) => line(manage::route_attach(args)),
        Command::Route(RouteCommand::Detach(args)) => line(manage::route_detach(args)),
        Command::Apply(args) => line(manage::apply(args)),
        Command::Token(args) => line(token::run(args)),
    }
}

/// Prints a management command's outcome with a final newline.
fn line(outcome: Result<String, String>) -> ExitCode {
    artifact::report(outcome.map(|mut s| {
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub(crate) fn report_config_error(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}
