//! Logs (tracing) and metrics (Prometheus).

pub mod metrics;

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber: `RUST_LOG` filters (default `info`), to stderr.
/// Calling it twice is harmless (the second call does nothing), so tests may call it freely.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
