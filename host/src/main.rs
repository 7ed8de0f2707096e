//! The `weir` binary: parses arguments and hands over to [`weir::cli::run`].

use clap::Parser;

// mimalloc: per-thread heaps suit the thread-per-core workers (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    weir::cli::run(weir::cli::Cli::parse())
}

/// mimalloc asks for transparent huge pages on its 1 GiB arena (`madvise(MADV_HUGEPAGE)`), so every 2 MiB of the
/// arena that a small allocation touches becomes resident whole: an idle gateway measured 59 MiB resident with
/// them, 18 MiB without (docs/benchmarks.md, "Idle memory"). A gateway's heap is small and its hot data per
/// worker, so huge pages buy it little; they are turned off for the process before the workers allocate.
fn no_transparent_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("weir: could not turn off transparent huge pages: {e}");
    }
}
