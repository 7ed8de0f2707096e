//! `weir serve`: load the configuration, start the gateway, wait for SIGTERM or Ctrl-C, drain, exit 0.

use super::{report_config_error, ServeArgs};
use crate::config::Config;
use crate::server::{Gateway, StartOptions};
use crate::telemetry;
use std::process::ExitCode;

pub(super) fn run(args: ServeArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => return report_config_error(&e),
        },
        None => Config::embedded_default(),
    };
    telemetry::init(args.log_format.map(Into::into).unwrap_or(config.logging.format));
    if args.config.is_none() {
        tracing::info!("no --config given: serving the embedded demo configuration (weir config default prints it)");
    }
    let drain = config.drain_timeout;
    let options = StartOptions {
        workers: args.workers.map(usize::from),
        registry_dir: Some(config.data_dir.join("registry")),
        // wasmtime's cache wants an absolute folder; a relative data_dir is relative to the working dir.
        cache_dir: std::path::absolute(config.data_dir.join("compiled")).ok(),
    };
    // The handlers go in before anything listens: a SIGINT or SIGTERM that arrives as soon as the gateway
    // answers must drain it, not kill it (the default action).
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: cannot wait for signals: {e}");
            return ExitCode::from(1);
        }
    };
    let gateway = match Gateway::start(config, options) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    signals.wait();
    tracing::info!(
        drain_timeout_ms = drain.as_millis() as u64,
        "shutting down: no new connections, draining in-flight requests"
    );
    gateway.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT, caught from [`Signals::install`] on.
struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let context = rt.enter();
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        drop(context);
        Ok(Signals { rt, term, int })
    }

    /// Waits for the first of them.
    fn wait(self) {
        let Signals { rt, mut term, mut int } = self;
        rt.block_on(async {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        });
    }
}
