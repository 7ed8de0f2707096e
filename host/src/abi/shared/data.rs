//! Shared data: a process-wide key-value store with compare-and-swap, keyed by `(vm_id, key)`.
//!
//! One `Mutex<HashMap>` guards the whole store. Calls are short (a lookup and a reference count) and filters
//! use shared data for counters and small records, so contention stays low; a sharded map is the upgrade path
//! if profiles ever say otherwise. Keys come from requests (a client's address, an API key), so the maps are
//! randomly keyed (aHash: as resistant to chosen collisions as the standard SipHash, and cheaper on short keys).
//!
//! Weir's limits (the ABI sets none): a key and a value are each at most [`MAX_VALUE_BYTES`], and one
//! `vm_id` holds at most [`MAX_KEYS_PER_VM_ID`] keys. A write beyond either gets `BAD_ARGUMENT`.

use super::lock;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use weir_sdk::abi::Status;

/// The largest key or value a filter may store, in bytes (1 MiB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most keys one `vm_id` may hold.
pub const MAX_KEYS_PER_VM_ID: usize = 100_000;

/// A stored value and the CAS of its last write. The value is shared, so a read takes a reference, not a copy.
struct Entry {
    value: Bytes,
    cas: u32,
}

type Map<K, V> = HashMap<K, V, ahash::RandomState>;

/// The shared-data store of one process.
pub struct SharedData {
    by_vm: Mutex<Map<String, Map<Vec<u8>, Entry>>>,
    /// The next CAS handed out; shared by every key so a CAS is never reused soon after.
    next_cas: AtomicU32,
    max_value: usize,
    max_keys: usize,
}

impl Default for SharedData {
    fn default() -> Self {
        SharedData::with_limits(MAX_VALUE_BYTES, MAX_KEYS_PER_VM_ID)
    }
}

impl SharedData {
    /// An empty store with other limits (tests use small ones).
    pub fn with_limits(max_value: usize, max_keys: usize) -> SharedData {
        SharedData { by_vm: Mutex::new(Map::default()), next_cas: AtomicU32::new(1), max_value, max_keys }
    }

    /// A fresh CAS from the global counter, never 0 (0 means "no CAS" on the wire).
    fn fresh_cas(&self) -> u32 {
        loop {
            let cas = self.next_cas.fetch_add(1, Ordering::Relaxed);
            if cas != 0 {
                return cas;
            }
        }
    }

    /// The value stored under `key` and its CAS, or `None` when the key was never written.
    pub fn get(&self, vm_id: &str, key: &[u8]) -> Option<(Bytes, u32)> {
        let by_vm = lock(&self.by_vm);
        by_vm.get(vm_id)?.get(key).map(|e| (e.value.clone(), e.cas))
    }

    /// A number that changes whenever any value is written (the last CAS handed out): equal readings mean
    /// nothing was written in between.
    pub fn version(&self) -> u32 {
        self.next_cas.load(Ordering::Acquire)
    }

    /// The CAS of `key` (0: never written).
    pub fn cas(&self, vm_id: &str, key: &[u8]) -> u32 {
        let by_vm = lock(&self.by_vm);
        by_vm.get(vm_id).and_then(|keys| keys.get(key)).map_or(0, |e| e.cas)
    }

    /// Whether every `(key, cas)` still holds (0: the key is still absent), under one lock.
    pub fn unchanged(&self, vm_id: &str, keys: &[(Vec<u8>, u32)]) -> bool {
        let by_vm = lock(&self.by_vm);
        let values = by_vm.get(vm_id);
        keys.iter().all(|(key, cas)| values.and_then(|v| v.get(key.as_slice())).map_or(0, |e| e.cas) == *cas)
    }

    /// Stores `value` under `key`.
    ///
    /// - `cas == 0` stores unconditionally; a non-zero `cas` must equal the stored CAS, else
    ///   `CAS_MISMATCH`. A missing key is created whatever the `cas` (as cpp-host).
    /// - Every write gets a fresh CAS.
    /// - `BAD_ARGUMENT` when the key or value is too large, or the `vm_id` is full.
    pub fn set(&self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> Result<(), Status> {
        if key.len() > self.max_value || value.len() > self.max_value {
            return Err(Status::BadArgument);
        }
        // The value is copied before the lock is taken, and only the first write of a `vm_id` names it.
        let value = Bytes::copy_from_slice(value);
        let mut by_vm = lock(&self.by_vm);
        let keys = match by_vm.get_mut(vm_id) {
            Some(keys) => keys,
            None => by_vm.entry(vm_id.to_string()).or_default(),
        };
        match keys.get_mut(key) {
            Some(entry) => {
                if cas != 0 && cas != entry.cas {
                    return Err(Status::CasMismatch);
                }
                entry.value = value;
                entry.cas = self.fresh_cas();
            }
            None => {
                if keys.len() >= self.max_keys {
                    return Err(Status::BadArgument);
                }
                keys.insert(key.to_vec(), Entry { value, cas: self.fresh_cas() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of a table: a write and what it should return, then what a read sees.
    struct Step {
        vm: &'static str,
        key: &'static [u8],
        value: &'static [u8],
        /// `None`: use the CAS the last read returned; `Some(c)`: use `c`.
        cas: Option<u32>,
        expect: Result<(), Status>,
        /// The value a read sees afterwards.
        then: Option<&'static [u8]>,
    }

    #[test]
    fn cas_semantics() {
        let table = [
            // A missing key is created whatever the CAS.
            Step { vm: "a", key: b"k", value: b"1", cas: Some(12345), expect: Ok(()), then: Some(b"1") },
            // The CAS of the last read matches.
            Step { vm: "a", key: b"k", value: b"2", cas: None, expect: Ok(()), then: Some(b"2") },
            // A stale CAS loses and leaves the value alone.
            Step { vm: "a", key: b"k", value: b"3", cas: Some(1), expect: Err(Status::CasMismatch), then: Some(b"2") },
            // CAS 0 stores unconditionally.
            Step { vm: "a", key: b"k", value: b"4", cas: Some(0), expect: Ok(()), then: Some(b"4") },
            // An empty value is a value (the ABI has no delete).
            Step { vm: "a", key: b"k", value: b"", cas: Some(0), expect: Ok(()), then: Some(b"") },
            // Another vm_id has its own keys.
            Step { vm: "b", key: b"k", value: b"other", cas: Some(0), expect: Ok(()), then: Some(b"other") },
        ];
        let store = SharedData::default();
        let mut seen = std::collections::HashSet::new();
        for (i, s) in table.iter().enumerate() {
            let last = store.get(s.vm, s.key).map_or(0, |(_, c)| c);
            let cas = s.cas.unwrap_or(last);
            assert_eq!(store.set(s.vm, s.key, s.value, cas), s.expect, "step {i}");
            let got = store.get(s.vm, s.key);
            assert_eq!(got.as_ref().map(|(v, _)| &v[..]), s.then, "step {i}");
            let cas_now = got.map_or(0, |(_, c)| c);
            assert_ne!(cas_now, 0, "step {i}: a CAS is never 0");
            if s.expect.is_ok() {
                assert!(seen.insert(cas_now), "step {i}: every write gets a fresh CAS");
            } else {
                assert_eq!(cas_now, last, "step {i}: a failed write keeps the CAS");
            }
        }
        assert_eq!(store.get("a", b"k").map(|(v, _)| v), Some(Bytes::new()), "vm b did not touch vm a");
        assert_eq!(store.get("a", b"missing"), None);
        assert_eq!(store.get("c", b"k"), None);
    }

    #[test]
    fn the_cas_counter_skips_zero() {
        let store = SharedData::default();
        store.next_cas.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(store.fresh_cas(), u32::MAX);
        assert_eq!(store.fresh_cas(), 1, "0 is skipped on wrap-around");
    }

    #[test]
    fn limits_refuse_with_bad_argument() {
        let store = SharedData::with_limits(4, 2);
        for (vm, key, value, expect) in [
            ("a", &b"k1"[..], &b"1234"[..], Ok(())),
            ("a", b"k2", b"12345", Err(Status::BadArgument)),
            ("a", b"12345", b"1", Err(Status::BadArgument)),
            ("a", b"k2", b"2", Ok(())),
            ("a", b"k3", b"3", Err(Status::BadArgument)),
            ("a", b"k1", b"over", Ok(())),
            ("b", b"k3", b"3", Ok(())),
        ] {
            assert_eq!(store.set(vm, key, value, 0), expect, "{vm} {key:?}");
        }
    }
}
