//! Logging through the `log` facade to the host's log (`proxy_log`), and the panic hook.
//!
//! The registration macro installs both in `_initialize`. Filters log with `log::info!` and friends; records below
//! the host's level (read with `proxy_get_log_level` whenever a plugin starts) are dropped before they are
//! formatted. A panic's message (`panicked at src/lib.rs:12:5: ...`) is logged at critical just before the trap.

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::abi::LogLevel;
use crate::host::raw;

/// The `log::Log` that forwards every record to the host.
struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl Log for HostLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = abi_level(record.level());
        match record.args().as_str() {
            Some(message) => {
                let _ = raw::log(level, message.as_bytes());
            }
            None => {
                let _ = raw::log(level, record.args().to_string().as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// The ABI level of a `log` level.
fn abi_level(level: Level) -> LogLevel {
    match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    }
}

/// The `log` filter for a host level; critical keeps errors.
fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::Trace,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Warn => LevelFilter::Warn,
        _ => LevelFilter::Error,
    }
}

/// Installs the logger (once; later calls change nothing) at level info until the host's level is known.
pub(crate) fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Adopts the host's level. Natively (under the fake host) everything is kept, since the level is process-wide and
/// tests on other threads read their own logs.
pub(crate) fn adopt_host_level() {
    if cfg!(target_arch = "wasm32") {
        if let Ok(level) = raw::get_log_level() {
            log::set_max_level(level_filter(level));
        }
    } else {
        log::set_max_level(LevelFilter::Trace);
    }
}

/// Sends panic messages to the host log at critical before the trap (wasm only: natively the test harness
/// reports panics itself).
pub(crate) fn install_panic_hook() {
    if cfg!(target_arch = "wasm32") {
        std::panic::set_hook(Box::new(|info| {
            let _ = raw::log(LogLevel::Critical, info.to_string().as_bytes());
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_both_ways() {
        let table = [
            (Level::Trace, LogLevel::Trace, LevelFilter::Trace),
            (Level::Debug, LogLevel::Debug, LevelFilter::Debug),
            (Level::Info, LogLevel::Info, LevelFilter::Info),
            (Level::Warn, LogLevel::Warn, LevelFilter::Warn),
            (Level::Error, LogLevel::Error, LevelFilter::Error),
        ];
        for (level, abi, filter) in table {
            assert_eq!(abi_level(level), abi);
            assert_eq!(level_filter(abi), filter);
        }
        assert_eq!(level_filter(LogLevel::Critical), LevelFilter::Error);
    }
}
