//! The one checked path into guest memory. Every `(ptr, len)` from the guest is checked with 64-bit
//! arithmetic against the memory's current size; nothing here panics on guest input, and no slice of guest
//! memory is kept across a call back into the guest (allocation may grow and move memory).

use super::state::VmState;
use wasmtime::{Caller, Extern, Memory, TypedFunc};
use weir_sdk::abi::Status;

/// What went wrong touching guest memory; always reported to the guest as `INVALID_MEMORY_ACCESS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAccess;

impl From<BadAccess> for Status {
    fn from(_: BadAccess) -> Status {
        Status::InvalidMemoryAccess
    }
}

fn memory(caller: &mut Caller<'_, VmState>) -> Result<Memory, BadAccess> {
    // Resolved once after instantiation: looking the export up by name on every access is measurable.
    if let Some(m) = caller.data().memory {
        return Ok(m);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(BadAccess),
    }
}

fn range(ptr: u32, len: u32, size: usize) -> Result<std::ops::Range<usize>, BadAccess> {
    let end = u64::from(ptr) + u64::from(len);
    if end > size as u64 {
        return Err(BadAccess);
    }
    Ok(ptr as usize..end as usize)
}

/// Checks that `(ptr, len)` lies inside guest memory, without copying.
pub fn check(caller: &mut Caller<'_, VmState>, ptr: u32, len: u32) -> Result<(), BadAccess> {
    if len == 0 {
        return Ok(());
    }
    let mem = memory(caller)?;
    range(ptr, len, mem.data_size(&*caller)).map(|_| ())
}

/// Copies `len` bytes at `ptr` out of guest memory. `(0, 0)` is the empty value.
pub fn read(caller: &mut Caller<'_, VmState>, ptr: u32, len: u32) -> Result<Vec<u8>, BadAccess> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let mem = memory(caller)?;
    let data = mem.data(&*caller);
    let r = range(ptr, len, data.len())?;
    Ok(data[r].to_vec())
}

/// Reads a UTF-8 string (lossily: names from the guest are compared as text).
pub fn read_string(caller: &mut Caller<'_, VmState>, ptr: u32, len: u32) -> Result<String, BadAccess> {
    read(caller, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Writes bytes at `ptr`.
pub fn write(caller: &mut Caller<'_, VmState>, ptr: u32, bytes: &[u8]) -> Result<(), BadAccess> {
    let mem = memory(caller)?;
    let data = mem.data_mut(&mut *caller);
    let r = range(ptr, bytes.len() as u32, data.len())?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian u32 at `ptr`.
pub fn write_u32(caller: &mut Caller<'_, VmState>, ptr: u32, value: u32) -> Result<(), BadAccess> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub fn write_u64(caller: &mut Caller<'_, VmState>, ptr: u32, value: u64) -> Result<(), BadAccess> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Runs `f` on the guest bytes at `a` and `b` (each `(ptr, len)`; `(0, 0)` is the empty value) and the
/// store's state, without copying the bytes out: for values the host copies into its own types anyway.
pub fn with_bytes<R>(
    caller: &mut Caller<'_, VmState>,
    a: (u32, u32),
    b: (u32, u32),
    f: impl FnOnce(&[u8], &[u8], &mut VmState) -> R,
) -> Result<R, BadAccess> {
    let mem = match memory(caller) {
        Ok(m) => m,
        Err(_) if a.1 == 0 && b.1 == 0 => return Ok(f(&[], &[], caller.data_mut())),
        Err(e) => return Err(e),
    };
    let (data, state) = mem.data_and_store_mut(&mut *caller);
    let data: &[u8] = data;
    let slice =
        |(ptr, len): (u32, u32)| if len == 0 { Ok(&data[..0]) } else { range(ptr, len, data.len()).map(|r| &data[r]) };
    let (a, b) = (slice(a)?, slice(b)?);
    Ok(f(a, b, state))
}

/// Hands `bytes` to the guest: allocates exactly `bytes.len()` in the guest with its allocator export,
/// copies them in, and writes the pointer and length to the two out-parameters. An empty value allocates
/// nothing and writes `(0, 0)`.
pub fn return_bytes(caller: &mut Caller<'_, VmState>, bytes: &[u8], ret_ptr: u32, ret_len: u32) -> Result<(), Status> {
    return_with(caller, bytes.len(), ret_ptr, ret_len, |_, out| {
        out.copy_from_slice(bytes);
        true
    })
}

/// As [`return_bytes`], for a value the host writes straight into the guest's allocation: `fill` gets the
/// store's state and exactly `len` bytes of guest memory, and answers `false` when it cannot fill them (the
/// value changed while the guest allocated: INTERNAL_FAILURE, nothing returned).
pub fn return_with(
    caller: &mut Caller<'_, VmState>,
    len: usize,
    ret_ptr: u32,
    ret_len: u32,
    fill: impl FnOnce(&mut VmState, &mut [u8]) -> bool,
) -> Result<(), Status> {
    // Check the out-parameters first so a bad pointer does not leak a guest allocation.
    let mem = memory(caller)?;
    {
        let size = mem.data_size(&*caller);
        range(ret_ptr, 4, size)?;
        range(ret_len, 4, size)?;
    }
    if len == 0 {
        write_u32(caller, ret_ptr, 0)?;
        write_u32(caller, ret_len, 0)?;
        return Ok(());
    }
    let alloc: TypedFunc<u32, u32> = caller.data().allocator.clone().ok_or(Status::InvalidMemoryAccess)?;
    let len = u32::try_from(len).map_err(|_| Status::InvalidMemoryAccess)?;
    // Re-enters the guest: no borrow of memory is held across this call.
    let ptr = alloc.call(&mut *caller, len).map_err(|_| Status::InvalidMemoryAccess)?;
    if ptr == 0 {
        return Err(Status::InvalidMemoryAccess);
    }
    let (data, state) = mem.data_and_store_mut(&mut *caller);
    let size = data.len();
    let (r, rp, rl) = (range(ptr, len, size)?, range(ret_ptr, 4, size)?, range(ret_len, 4, size)?);
    if !fill(state, &mut data[r]) {
        return Err(Status::InternalFailure);
    }
    data[rp].copy_from_slice(&ptr.to_le_bytes());
    data[rl].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn range_checks_in_64_bits() {
        for (ptr, len, size, ok) in [
            (0, 0, 0, true),
            (0, 4, 4, true),
            (1, 4, 4, false),
            (u32::MAX, 1, 1 << 16, false),
            (u32::MAX, u32::MAX, usize::MAX >> 1, true),
            (10, u32::MAX, 1 << 20, false),
        ] {
            assert_eq!(range(ptr, len, size).is_ok(), ok, "ptr {ptr} len {len} size {size}");
        }
    }
}
