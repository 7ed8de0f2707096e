//! Logging and time: `proxy_log`, `proxy_get_log_level`, `proxy_get_current_time_nanoseconds`,
//! `proxy_set_tick_period_milliseconds`.

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{LogLevel, Status};

/// The most verbose level enabled for filter logs, as a proxy-wasm level.
fn enabled_level() -> LogLevel {
    use tracing::Level;
    let enabled = |l: Level| match l {
        Level::TRACE => tracing::enabled!(target: "weir::filter", Level::TRACE),
        Level::DEBUG => tracing::enabled!(target: "weir::filter", Level::DEBUG),
        Level::INFO => tracing::enabled!(target: "weir::filter", Level::INFO),
        Level::WARN => tracing::enabled!(target: "weir::filter", Level::WARN),
        _ => true,
    };
    [
        (Level::TRACE, LogLevel::Trace),
        (Level::DEBUG, LogLevel::Debug),
        (Level::INFO, LogLevel::Info),
        (Level::WARN, LogLevel::Warn),
    ]
    .into_iter()
    .find(|(l, _)| enabled(*l))
    .map_or(LogLevel::Error, |(_, p)| p)
}

fn log(caller: &mut Caller<'_, VmState>, level: u32, ptr: u32, len: u32) -> Result<(), Status> {
    let level = LogLevel::try_from(level).map_err(|_| Status::BadArgument)?;
    // Filters log every callback at debug; most lines are dropped. Check bounds, and copy only what is kept.
    let wanted = match level {
        LogLevel::Trace => tracing::enabled!(target: "weir::filter", tracing::Level::TRACE),
        LogLevel::Debug => tracing::enabled!(target: "weir::filter", tracing::Level::DEBUG),
        LogLevel::Info => tracing::enabled!(target: "weir::filter", tracing::Level::INFO),
        LogLevel::Warn => tracing::enabled!(target: "weir::filter", tracing::Level::WARN),
        _ => true,
    };
    let capture = caller.data().capturing && level >= LogLevel::Info;
    if !wanted && !capture {
        return memory::check(caller, ptr, len).map_err(Status::from);
    }
    let msg = memory::read(caller, ptr, len)?;
    let text = String::from_utf8_lossy(&msg).into_owned();
    let tag = caller.data().log_tag.clone();
    match level {
        LogLevel::Trace => tracing::trace!(target: "weir::filter", filter = %tag, "{text}"),
        LogLevel::Debug => tracing::debug!(target: "weir::filter", filter = %tag, "{text}"),
        LogLevel::Info => tracing::info!(target: "weir::filter", filter = %tag, "{text}"),
        LogLevel::Warn => tracing::warn!(target: "weir::filter", filter = %tag, "{text}"),
        _ => tracing::error!(target: "weir::filter", filter = %tag, "{text}"),
    }
    if capture {
        let state = caller.data_mut();
        if state.captured_logs.len() < 64 {
            state.captured_logs.push(text);
        }
    }
    Ok(())
}

/// Sets or clears (0) the tick period of the acting context's root; the worker delivers `proxy_on_tick`.
fn set_tick_period(c: &mut Caller<'_, VmState>, millis: u32) -> Result<(), Status> {
    let state = c.data_mut();
    let root = state.acting_root().ok_or(Status::BadArgument)?;
    if millis == 0 {
        state.tick_periods.remove(&root);
    } else {
        state.tick_periods.insert(root, std::time::Duration::from_millis(u64::from(millis)));
    }
    Ok(())
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", |mut c: Caller<'_, VmState>, level: i32, ptr: i32, len: i32| {
        status(log(&mut c, level as u32, ptr as u32, len as u32))
    })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut c: Caller<'_, VmState>, ms: i32| {
        status(set_tick_period(&mut c, ms as u32))
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Caller<'_, VmState>, ret: i32| {
        status(memory::write_u32(&mut c, ret as u32, enabled_level() as u32).map_err(Status::from))
    })?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Caller<'_, VmState>, ret: i32| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        status(memory::write_u64(&mut c, ret as u32, now).map_err(Status::from))
    })?;
    Ok(())
}
