//! The `weir` binary: parses arguments and hands over to [`weir::cli::run`].

use clap::Parser;

// mimalloc: per-thread heaps suit the thread-per-core workers (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    weir::cli::run(weir::cli::Cli::parse())
}
