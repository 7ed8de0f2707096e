//! `weir serve`: load the configuration (or the embedded demo), seed the registry, start the gateway, wait for
//! SIGTERM or Ctrl-C, drain, exit 0.

use super::{report_config_error, ServeArgs};
use crate::config::{Config, ConfigError};
use crate::demo::{llm::DemoLlm, seed::Seed, token};
use crate::server::{Gateway, StartOptions};
use crate::telemetry;
use std::process::ExitCode;

pub(super) fn run(args: ServeArgs) -> ExitCode {
    // The embedded demo's LLM upstream listens before the configuration is made: its cluster names its port.
    let mut demo_llm = None;
    let config = match &args.config {
        Some(path) => Config::load(path),
        None => match DemoLlm::start(([127, 0, 0, 1], 0).into()) {
            Ok(llm) => {
                let config = Config::embedded_demo(llm.addr());
                demo_llm = Some(llm);
                Ok(config)
            }
            Err(e) => {
                eprintln!("error: cannot start the demo LLM upstream on 127.0.0.1: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let config = match config.and_then(|c| overridden(c, &args)) {
        Ok(c) => c,
        Err(e) => return report_config_error(&e),
    };
    telemetry::init(args.log_format.map(Into::into).unwrap_or(config.logging.format));
    let seed = match &demo_llm {
        Some(llm) => {
            tracing::info!(
                demo_llm = %llm.addr(),
                "no --config given: serving the embedded demo (docs/quickstart.md; weir config default prints the file part)"
            );
            match token::ensure_key(&config.data_dir) {
                Ok(key) => Seed { filters: true, demo_jwks: Some(token::jwks(&key.verifying_key())) },
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        // The embedded modules are unsigned: a gateway that accepts only signed artifacts does not get them.
        None => Seed { filters: !config.registry.require_signed, demo_jwks: None },
    };
    let drain = config.drain_timeout;
    let options = StartOptions {
        workers: args.workers.map(usize::from),
        registry_dir: Some(config.data_dir.join("registry")),
        // wasmtime's cache wants an absolute folder; a relative data_dir is relative to the working dir.
        cache_dir: std::path::absolute(config.data_dir.join("compiled")).ok(),
        seed: Some(seed),
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
    if let Some(llm) = demo_llm {
        llm.stop();
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// `--listen` and `--admin` written into the configuration's JSON (so they also hold when registry changes are
/// composed with it).
fn overridden(config: Config, args: &ServeArgs) -> Result<Config, ConfigError> {
    if args.listen.is_none() && args.admin.is_none() {
        return Ok(config);
    }
    if args.listen.is_some() && config.listeners.len() != 1 {
        return Err(ConfigError::Invalid {
            file: config.source.file.clone(),
            issues: vec![crate::config::ConfigIssue {
                path: "$.listeners".into(),
                message: format!(
                    "--listen replaces the address of the only listener, and this configuration has {}: set their \
                     addresses in the file instead",
                    config.listeners.len()
                ),
            }],
        });
    }
    config.edited(|doc| {
        if let Some(listen) = args.listen {
            doc["listeners"][0]["address"] = listen.to_string().into();
        }
        if let Some(admin) = args.admin {
            if !doc.get("admin").is_some_and(serde_json::Value::is_object) {
                doc["admin"] = serde_json::json!({});
            }
            doc["admin"]["address"] = admin.to_string().into();
        }
    })
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
