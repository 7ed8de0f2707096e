//! Shared data: `proxy_get_shared_data`, `proxy_set_shared_data`, on the process-wide store keyed by the
//! VM's `vm_id` (see [`crate::abi::shared::SharedData`] for the CAS rules and Weir's limits).

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::Status;

/// Hands the value of `key` and its CAS to the guest. `NOT_FOUND` for a key never written; an empty value
/// is OK with `(0, 0)` and its CAS.
fn get(c: &mut Caller<'_, VmState>, key: (u32, u32), ret_ptr: u32, ret_len: u32, ret_cas: u32) -> Result<(), Status> {
    let found = memory::with_bytes(c, key, (0, 0), |key, _, state| state.host.data.get(&state.vm_id, key))?;
    let (value, cas) = found.ok_or(Status::NotFound)?;
    // The CAS first: a bad pointer then fails before anything is allocated in the guest.
    memory::write_u32(c, ret_cas, cas)?;
    memory::return_bytes(c, &value, ret_ptr, ret_len)
}

/// Stores a value under `key`: OK, `CAS_MISMATCH`, or `BAD_ARGUMENT` beyond Weir's limits.
fn set(c: &mut Caller<'_, VmState>, key: (u32, u32), value: (u32, u32), cas: u32) -> Result<(), Status> {
    memory::with_bytes(c, key, value, |key, value, state| state.host.data.set(&state.vm_id, key, value, cas))?
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, VmState>, kp: i32, kl: i32, rp: i32, rl: i32, rc: i32| {
            status(get(&mut c, (kp as u32, kl as u32), rp as u32, rl as u32, rc as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, VmState>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| {
            status(set(&mut c, (kp as u32, kl as u32), (vp as u32, vl as u32), cas as u32))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{host, i, Guest, BAD, IN, OUT};
    use wasmtime::Val;
    use weir_sdk::abi::Status;

    const CALLS: &[(&str, &str)] = &[("proxy_get_shared_data", "iiiii"), ("proxy_set_shared_data", "iiiii")];
    const KEY: u32 = IN;
    const VALUE: u32 = IN + 0x100;

    fn get(g: &mut Guest, key: &[u8], ret: u32, ret_cas: u32) -> i32 {
        let [kp, kl] = g.put(KEY, key);
        g.clear_out();
        g.call("proxy_get_shared_data", &[kp, kl, i(ret), i(ret + 4), i(ret_cas)])
    }

    fn set(g: &mut Guest, key: &[u8], value: Option<&[u8]>, cas: u32) -> i32 {
        let [kp, kl] = g.put(KEY, key);
        let [vp, vl] = match value {
            Some(v) => g.put(VALUE, v),
            None => [i(BAD), Val::I32(4)],
        };
        g.call("proxy_set_shared_data", &[kp, kl, vp, vl, i(cas)])
    }

    #[test]
    fn statuses_values_and_cas_through_guest_memory() {
        let shared = host();
        let mut g = Guest::new(CALLS, shared.clone(), "vm");
        assert_eq!(get(&mut g, b"k", OUT, OUT + 8), Status::NotFound as i32);
        assert_eq!(set(&mut g, b"k", Some(b""), 0), 0);
        assert_eq!(get(&mut g, b"k", OUT, OUT + 8), 0, "an empty value is OK");
        assert_eq!((g.u32_at(OUT), g.u32_at(OUT + 4)), (0, 0), "an empty value is (0, 0)");
        let cas = g.u32_at(OUT + 8);
        assert_ne!(cas, 0, "the CAS is written for an empty value too");
        for (what, value, cas, status) in [
            ("stale CAS", Some(&b"v1"[..]), cas.wrapping_add(1000), Status::CasMismatch),
            ("matching CAS", Some(b"v1"), cas, Status::Ok),
            ("the old CAS again", Some(b"v2"), cas, Status::CasMismatch),
            ("value out of bounds", None, 0, Status::InvalidMemoryAccess),
        ] {
            assert_eq!(set(&mut g, b"k", value, cas), status as i32, "{what}");
        }
        assert_eq!(get(&mut g, b"k", OUT, OUT + 8), 0);
        assert_eq!(g.returned(), b"v1");
        assert_ne!(g.u32_at(OUT + 8), cas, "a write gets a fresh CAS");
        assert_eq!(get(&mut g, b"k", OUT, BAD), Status::InvalidMemoryAccess as i32, "CAS out-pointer");
        assert_eq!(get(&mut g, b"k", BAD, OUT + 8), Status::InvalidMemoryAccess as i32, "value out-pointers");
        // Same process, other VMs: the same vm_id sees the value, another does not.
        let mut twin = Guest::new(CALLS, shared.clone(), "vm");
        assert_eq!(get(&mut twin, b"k", OUT, OUT + 8), 0);
        assert_eq!(twin.returned(), b"v1");
        let mut other = Guest::new(CALLS, shared, "other");
        assert_eq!(get(&mut other, b"k", OUT, OUT + 8), Status::NotFound as i32);
    }
}
