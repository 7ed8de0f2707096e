//! The `weir` command line: `weir serve` runs the gateway; the other commands manage it.

mod filter;
mod serve;

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
    /// Write filters: `weir filter new NAME` creates a filter crate.
    #[command(subcommand)]
    Filter(FilterCommand),
}

/// `weir serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The JSON configuration file. Without it Weir serves a demo route on 127.0.0.1:8080.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Worker threads (default: the config's `workers`, else one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Log line format (overrides the config's logging.format).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
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
    }
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
