//! The `weir` binary: parses arguments and hands over to [`weir::cli::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    weir::cli::run(weir::cli::Cli::parse())
}
