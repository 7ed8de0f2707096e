//! WASI preview 1, as a proxy-wasm host offers it (cpp-host's behaviour): standard output and error go to
//! the log, clocks and randomness work, there is no filesystem, no sockets, the environment holds only the
//! variables the attachment configured (`environment_variables`), and
//! `poll_oneoff` never blocks the worker.

use super::memory;
use super::state::VmState;
use rand::RngCore;
use wasmtime::{Caller, Linker};

const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const FAULT: i32 = 21;
const INVAL: i32 = 28;
const NOENT: i32 = 44;
const NOSYS: i32 = 52;
const NOTSUP: i32 = 58;

/// The largest `random_get` request served (cpp-host's bound).
const MAX_RANDOM: u32 = 64 * 1024;

fn errno<T>(r: Result<T, memory::BadAccess>) -> i32 {
    match r {
        Ok(_) => SUCCESS,
        Err(_) => FAULT,
    }
}

/// Writes the guest's bytes for fd 1 (info) or 2 (error) to the log, one trailing newline stripped.
fn fd_write(caller: &mut Caller<'_, VmState>, fd: i32, iovs: u32, iovs_len: u32, nwritten: u32) -> i32 {
    if fd != 1 && fd != 2 {
        return BADF;
    }
    let mut out = Vec::new();
    for i in 0..iovs_len {
        let Some(at) = iovs.checked_add(i.saturating_mul(8)) else { return FAULT };
        let Ok(iov) = memory::read(caller, at, 8) else { return FAULT };
        let buf = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        match memory::read(caller, buf, len) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => return FAULT,
        }
    }
    let total = out.len() as u32;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    let text = String::from_utf8_lossy(&out);
    let tag = caller.data().log_tag.clone();
    if fd == 1 {
        tracing::info!(target: "weir::filter", filter = %tag, "{text}");
    } else {
        tracing::error!(target: "weir::filter", filter = %tag, "{text}");
    }
    errno(memory::write_u32(caller, nwritten, total))
}

/// Registers the shim under `module` (`wasi_snapshot_preview1` or `wasi_unstable`).
pub fn add_to_linker(linker: &mut Linker<VmState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(module, "fd_write", |mut c: Caller<'_, VmState>, fd: i32, iovs: i32, n: i32, ret: i32| {
        fd_write(&mut c, fd, iovs as u32, n as u32, ret as u32)
    })?;
    linker.func_wrap(module, "fd_read", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32| NOSYS)?;
    linker.func_wrap(module, "fd_pread", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i64, _: i32| NOSYS)?;
    linker.func_wrap(module, "fd_pwrite", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i64, _: i32| NOSYS)?;
    linker.func_wrap(module, "fd_seek", |_: Caller<'_, VmState>, _: i32, _: i64, _: i32, _: i32| SUCCESS)?;
    linker.func_wrap(module, "fd_close", |_: Caller<'_, VmState>, _: i32| SUCCESS)?;
    linker.func_wrap(
        module,
        "fd_sync",
        |_: Caller<'_, VmState>, fd: i32| if fd == 1 || fd == 2 { SUCCESS } else { BADF },
    )?;
    linker.func_wrap(
        module,
        "fd_datasync",
        |_: Caller<'_, VmState>, fd: i32| if fd == 1 || fd == 2 { SUCCESS } else { BADF },
    )?;
    linker.func_wrap(module, "fd_tell", |mut c: Caller<'_, VmState>, fd: i32, ret: i32| {
        if fd != 1 && fd != 2 {
            return BADF;
        }
        errno(memory::write_u64(&mut c, ret as u32, 0))
    })?;
    linker.func_wrap(module, "fd_advise", |_: Caller<'_, VmState>, _: i32, _: i64, _: i64, _: i32| SUCCESS)?;
    linker.func_wrap(
        module,
        "fd_allocate",
        |_: Caller<'_, VmState>, fd: i32, _: i64, _: i64| if fd == 1 || fd == 2 { SUCCESS } else { BADF },
    )?;
    linker.func_wrap(module, "fd_fdstat_get", |mut c: Caller<'_, VmState>, fd: i32, ret: i32| {
        if fd != 1 && fd != 2 {
            return BADF;
        }
        // struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting } = 24 bytes.
        let mut stat = [0u8; 24];
        stat[8..16].copy_from_slice(&64u64.to_le_bytes()); // FD_WRITE
        errno(memory::write(&mut c, ret as u32, &stat))
    })?;
    linker.func_wrap(module, "fd_fdstat_set_flags", |_: Caller<'_, VmState>, _: i32, _: i32| NOSYS)?;
    linker.func_wrap(
        module,
        "fd_fdstat_set_rights",
        |_: Caller<'_, VmState>, fd: i32, _: i64, _: i64| if fd == 1 || fd == 2 { SUCCESS } else { BADF },
    )?;
    linker.func_wrap(module, "fd_filestat_get", |_: Caller<'_, VmState>, _: i32, _: i32| BADF)?;
    linker.func_wrap(
        module,
        "fd_filestat_set_size",
        |_: Caller<'_, VmState>, fd: i32, _: i64| if fd == 1 || fd == 2 { SUCCESS } else { BADF },
    )?;
    linker.func_wrap(
        module,
        "fd_filestat_set_times",
        |_: Caller<'_, VmState>, fd: i32, _: i64, _: i64, _: i32| if fd == 1 || fd == 2 { SUCCESS } else { BADF },
    )?;
    linker.func_wrap(module, "fd_prestat_get", |_: Caller<'_, VmState>, _: i32, _: i32| BADF)?;
    linker.func_wrap(module, "fd_prestat_dir_name", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32| NOSYS)?;
    linker.func_wrap(module, "fd_readdir", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i64, _: i32| 20)?;
    linker.func_wrap(module, "fd_renumber", |_: Caller<'_, VmState>, _: i32, _: i32| NOTSUP)?;
    linker.func_wrap(
        module,
        "path_open",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i64, _: i64, _: i32, _: i32| NOENT,
    )?;
    linker.func_wrap(module, "path_create_directory", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32| NOTSUP)?;
    linker.func_wrap(
        module,
        "path_filestat_get",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32| NOTSUP,
    )?;
    linker.func_wrap(
        module,
        "path_filestat_set_times",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i64, _: i64, _: i32| NOTSUP,
    )?;
    linker.func_wrap(
        module,
        "path_link",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| NOTSUP,
    )?;
    linker.func_wrap(
        module,
        "path_readlink",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| NOTSUP,
    )?;
    linker.func_wrap(module, "path_remove_directory", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32| NOTSUP)?;
    linker.func_wrap(
        module,
        "path_rename",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| NOTSUP,
    )?;
    linker
        .func_wrap(module, "path_symlink", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32| NOTSUP)?;
    linker.func_wrap(module, "path_unlink_file", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32| NOTSUP)?;
    linker.func_wrap(module, "environ_sizes_get", |mut c: Caller<'_, VmState>, count: i32, size: i32| {
        // Only the variables the attachment configured (`environment_variables`, as Envoy's
        // vm_config.environment_variables); the host's own environment is never shown whole.
        let env = c.data().environment.clone();
        let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        errno(
            memory::write_u32(&mut c, count as u32, env.len() as u32)
                .and_then(|_| memory::write_u32(&mut c, size as u32, bytes as u32)),
        )
    })?;
    linker.func_wrap(module, "environ_get", |mut c: Caller<'_, VmState>, ptrs: i32, buf: i32| {
        let env = c.data().environment.clone();
        let (mut ptr, mut at) = (ptrs as u32, buf as u32);
        for (k, v) in env.iter() {
            let entry = format!("{k}={v}\0");
            let Some(next) = at.checked_add(entry.len() as u32) else { return FAULT };
            if memory::write_u32(&mut c, ptr, at).and_then(|_| memory::write(&mut c, at, entry.as_bytes())).is_err() {
                return FAULT;
            }
            ptr = ptr.wrapping_add(4);
            at = next;
        }
        SUCCESS
    })?;
    linker.func_wrap(module, "args_sizes_get", |mut c: Caller<'_, VmState>, count: i32, size: i32| {
        errno(memory::write_u32(&mut c, count as u32, 0).and_then(|_| memory::write_u32(&mut c, size as u32, 0)))
    })?;
    linker.func_wrap(module, "args_get", |_: Caller<'_, VmState>, _: i32, _: i32| SUCCESS)?;
    linker.func_wrap(module, "clock_time_get", |mut c: Caller<'_, VmState>, id: i32, _precision: i64, ret: i32| {
        let nanos = match id {
            0 => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
            1 => monotonic_nanos(),
            _ => return NOTSUP,
        };
        errno(memory::write_u64(&mut c, ret as u32, nanos))
    })?;
    linker.func_wrap(module, "clock_res_get", |mut c: Caller<'_, VmState>, id: i32, ret: i32| {
        if id != 0 && id != 1 {
            return NOTSUP;
        }
        errno(memory::write_u64(&mut c, ret as u32, 1))
    })?;
    linker.func_wrap(module, "random_get", |mut c: Caller<'_, VmState>, buf: i32, len: i32| {
        let len = len as u32;
        if len == 0 {
            return SUCCESS;
        }
        if len > MAX_RANDOM {
            return INVAL;
        }
        let mut bytes = vec![0u8; len as usize];
        rand::rng().fill_bytes(&mut bytes);
        errno(memory::write(&mut c, buf as u32, &bytes))
    })?;
    linker.func_wrap(module, "sched_yield", |_: Caller<'_, VmState>| SUCCESS)?;
    linker.func_wrap(module, "poll_oneoff", |mut c: Caller<'_, VmState>, _in: i32, _out: i32, _n: i32, ret: i32| {
        // Never blocks: a worker thread must not sleep inside a filter (Go's runtime calls this in GC).
        errno(memory::write_u32(&mut c, ret as u32, 0))
    })?;
    linker.func_wrap(module, "proc_exit", |c: Caller<'_, VmState>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("filter {} called proc_exit({code})", c.data().log_tag)))
    })?;
    linker.func_wrap(module, "proc_raise", |_: Caller<'_, VmState>, _: i32| NOSYS)?;
    linker.func_wrap(module, "sock_accept", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32| NOTSUP)?;
    linker.func_wrap(
        module,
        "sock_recv",
        |mut c: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, n: i32, flags: i32| {
            let _ = memory::write_u32(&mut c, n as u32, 0);
            let _ = memory::write_u32(&mut c, flags as u32, 0);
            NOTSUP
        },
    )?;
    linker.func_wrap(module, "sock_send", |mut c: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, n: i32| {
        let _ = memory::write_u32(&mut c, n as u32, 0);
        NOTSUP
    })?;
    linker.func_wrap(module, "sock_shutdown", |_: Caller<'_, VmState>, _: i32, _: i32| NOTSUP)?;
    Ok(())
}

fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}
