//! The store in shared data (seen by every worker, kept across hot swaps). Shared data has no delete and no
//! listing, and the host caps keys per `vm_id`, so every key comes from a fixed set:
//!
//! | key (after `rc:v1:<namespace>:`) | holds |
//! | --- | --- |
//! | `idx` | the [`Index`]: every entry, the bounds' accounting, the next generation |
//! | `dir:<n>` | the directory bucket of keys whose hash falls in `n` (of `max(64, max_entries)`): (key, slot, generation) |
//! | `d:<slot>:<part>` | an entry's parts ([`crate::entry`]); emptied when it goes |
//! | `m:<slot>` | the entry's generation and readable key, for purges |
//! | `lock:<n>` | requests in flight for keys whose hash falls in `n` (of 256): (key, deadline) |
//!
//! A hit reads one directory bucket and the entry's parts, checking that every part has the generation the
//! directory gave: a part rewritten meanwhile makes it a miss, never a mix of two answers.

use std::fmt;

use weir_sdk::shared::{self, Cas};
use weir_sdk::Status;

use crate::config::Rules;
use crate::entry::{self, Entry};
use crate::index::{Bounds, Index, Record, Touch};
use crate::key::Hash;

/// Lock buckets.
const LOCK_BUCKETS: usize = 256;
/// The CAS a write of a key read as absent carries (see `weir_sdk::shared::update`).
const ABSENT: Cas = Cas(u32::MAX);

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The host refused a read or a write.
    Host(Status),
    /// Other writers changed a record during every attempt.
    Contended,
    /// The entry is larger than `max_bytes`.
    TooLarge,
    /// A record is not in this version's format.
    Corrupt(&'static str),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Host(status) => write!(f, "the host answered {status:?}"),
            StoreError::Contended => write!(f, "other workers changed the record during every attempt"),
            StoreError::TooLarge => write!(f, "the entry is larger than max_bytes"),
            StoreError::Corrupt(what) => write!(f, "the {what} record is not readable"),
        }
    }
}

impl From<Status> for StoreError {
    fn from(status: Status) -> StoreError {
        StoreError::Host(status)
    }
}

/// One directory slot: (key, slot, generation).
type DirEntry = (Hash, u32, u64);
const DIR_ENTRY: usize = 28;

fn decode_dir(bytes: &[u8]) -> Vec<DirEntry> {
    bytes
        .chunks_exact(DIR_ENTRY)
        .map(|c| {
            let mut hash = [0u8; 16];
            hash.copy_from_slice(&c[..16]);
            let slot = u32::from_le_bytes([c[16], c[17], c[18], c[19]]);
            let generation = u64::from_le_bytes([c[20], c[21], c[22], c[23], c[24], c[25], c[26], c[27]]);
            (Hash(hash), slot, generation)
        })
        .collect()
}

fn encode_dir(entries: &[DirEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * DIR_ENTRY);
    for (hash, slot, generation) in entries {
        out.extend_from_slice(&hash.0);
        out.extend_from_slice(&slot.to_le_bytes());
        out.extend_from_slice(&generation.to_le_bytes());
    }
    out
}

/// What an insert did.
#[derive(Debug)]
pub struct Inserted {
    /// Entries evicted to make room (the same key's old entry included).
    pub evicted: Vec<Record>,
    /// The index after the insert: entries and bytes.
    pub entries: usize,
    /// Bytes after the insert.
    pub bytes: u64,
}

/// The store of one configuration.
pub struct Store<'a> {
    rules: &'a Rules,
}

impl<'a> Store<'a> {
    /// The store `rules` describe.
    pub fn new(rules: &'a Rules) -> Store<'a> {
        Store { rules }
    }

    fn key(&self, suffix: &str) -> String {
        let mut key = String::with_capacity(self.rules.prefix.len() + suffix.len());
        key.push_str(&self.rules.prefix);
        key.push_str(suffix);
        key
    }

    fn dir_key(&self, hash: &Hash) -> String {
        self.key(&format!("dir:{}", hash.bucket(self.rules.max_entries.max(64))))
    }

    fn part_key(&self, slot: u32, part: usize) -> String {
        self.key(&format!("d:{slot}:{part}"))
    }

    /// The entry stored for `hash`, whole, and its slot, if any (expired ones included: the caller decides).
    pub fn lookup(&self, hash: &Hash) -> Result<Option<(Entry, u32)>, StoreError> {
        Ok(self.lookup_with_keys(hash)?.map(|(entry, slot, _)| (entry, slot)))
    }

    /// [`Store::lookup`], with the shared data keys the entry was read from (its directory and its parts).
    pub fn lookup_with_keys(&self, hash: &Hash) -> Result<Option<(Entry, u32, Vec<String>)>, StoreError> {
        let dir_key = self.dir_key(hash);
        let Some((dir, _)) = shared::get_bytes(&dir_key)? else { return Ok(None) };
        let Some((_, slot, generation)) = decode_dir(&dir).into_iter().find(|(h, _, _)| h == hash) else {
            return Ok(None);
        };
        let first_key = self.part_key(slot, 0);
        let Some((first, _)) = shared::get_bytes(&first_key)? else { return Ok(None) };
        let Some(head) = entry::decode_head(&first) else { return Ok(None) };
        if head.entry.generation != generation || head.entry.hash != *hash {
            return Ok(None);
        }
        let mut keys = vec![dir_key, first_key];
        let mut entry = head.entry;
        for part in 1..head.parts {
            let key = self.part_key(slot, part);
            let Some((bytes, _)) = shared::get_bytes(&key)? else { return Ok(None) };
            let Some(body) = entry::decode_part(&bytes, generation) else { return Ok(None) };
            entry.body.extend_from_slice(body);
            keys.push(key);
        }
        if entry.body.len() != head.body_len {
            return Ok(None);
        }
        Ok(Some((entry, slot, keys)))
    }

    /// Reads, changes and writes the index with compare-and-swap; `change` may run several times.
    fn update_index<T>(
        &self,
        mut change: impl FnMut(&mut Index) -> Result<T, StoreError>,
    ) -> Result<(T, Index), StoreError> {
        let key = self.key("idx");
        for _ in 0..=self.rules.store_retries {
            let current = shared::get_bytes(&key)?;
            let (mut index, cas) = match &current {
                Some((bytes, cas)) => (Index::decode(Some(bytes)).ok_or(StoreError::Corrupt("index"))?, *cas),
                None => (Index::default(), ABSENT),
            };
            let out = change(&mut index)?;
            match shared::set_bytes(&key, &index.encode(), Some(cas)) {
                Ok(()) => return Ok((out, index)),
                Err(Status::CasMismatch) => continue,
                Err(status) => return Err(StoreError::Host(status)),
            }
        }
        Err(StoreError::Contended)
    }

    /// The index as it is.
    pub fn index(&self) -> Result<Index, StoreError> {
        let bytes = shared::get_bytes(&self.key("idx"))?;
        Index::decode(bytes.as_ref().map(|(b, _)| b.as_slice())).ok_or(StoreError::Corrupt("index"))
    }

    /// Writes recorded uses to the index.
    pub fn touch(&self, touches: &[Touch]) -> Result<(), StoreError> {
        if touches.is_empty() {
            return Ok(());
        }
        self.update_index(|index| {
            index.apply_touches(touches);
            Ok(())
        })
        .map(|_| ())
    }

    /// Stores `entry` (its generation is set here) under the bounds, with `readable` for purges, writing the
    /// uses in `touches` on the way.
    pub fn insert(
        &self,
        mut entry: Entry,
        readable: &str,
        now_ms: u64,
        touches: &[Touch],
    ) -> Result<Inserted, StoreError> {
        let sized = entry.encode();
        let bytes: usize = sized.iter().map(Vec::len).sum::<usize>() + readable.len() + 8;
        let parts = u16::try_from(sized.len()).map_err(|_| StoreError::TooLarge)?;
        let bytes32 = u32::try_from(bytes).map_err(|_| StoreError::TooLarge)?;
        let rules = self.rules;
        let ((record, evicted), index) = self.update_index(|index| {
            index.apply_touches(touches);
            let wanted = Record {
                hash: entry.hash,
                slot: 0,
                parts,
                bytes: bytes32,
                expires_ms: entry.expires_ms,
                used_ms: now_ms,
                generation: 0,
            };
            let bounds = Bounds { max_entries: rules.max_entries, max_bytes: rules.max_bytes };
            index.insert(wanted, bounds).map_err(|_| StoreError::TooLarge)
        })?;
        entry.generation = record.generation;
        let mut meta = record.generation.to_le_bytes().to_vec();
        meta.extend_from_slice(readable.as_bytes());
        shared::set_bytes(&self.key(&format!("m:{}", record.slot)), &meta, None)?;
        for (n, part) in entry.encode().iter().enumerate() {
            shared::set_bytes(&self.part_key(record.slot, n), part, None)?;
        }
        self.dir_change(&entry.hash, |dir| {
            dir.retain(|(h, s, _)| *h != entry.hash && *s != record.slot);
            dir.push((entry.hash, record.slot, record.generation));
        })?;
        for gone in &evicted {
            // A slot taken again by this entry keeps its new parts; the old entry's extra parts go.
            let from = if gone.slot == record.slot { usize::from(record.parts) } else { 0 };
            self.forget(gone, from)?;
        }
        // Another worker may have evicted this entry while its parts were written: then it must not stay
        // reachable outside the index's accounting.
        let still = self.index()?.records.iter().any(|r| r.slot == record.slot && r.generation == record.generation);
        if !still {
            self.forget(&record, 0)?;
        }
        Ok(Inserted { evicted, entries: index.records.len(), bytes: index.bytes() })
    }

    /// Removes every entry whose readable key `matches`; returns how many went and the index after.
    pub fn purge(&self, matches: impl Fn(&str) -> bool) -> Result<(usize, Index), StoreError> {
        let index = self.index()?;
        let mut doomed: Vec<(u32, u64)> = Vec::new();
        for r in &index.records {
            let Some((meta, _)) = shared::get_bytes(&self.key(&format!("m:{}", r.slot)))? else { continue };
            if meta.len() < 8 || meta[..8] != r.generation.to_le_bytes() {
                continue;
            }
            if matches(&String::from_utf8_lossy(&meta[8..])) {
                doomed.push((r.slot, r.generation));
            }
        }
        if doomed.is_empty() {
            return Ok((0, index));
        }
        let (gone, index) =
            self.update_index(|index| Ok(index.remove_where(|r| doomed.contains(&(r.slot, r.generation)))))?;
        for record in &gone {
            self.forget(record, 0)?;
        }
        Ok((gone.len(), index))
    }

    /// Makes a removed entry unreachable and frees its bytes: out of its directory bucket, and its parts and
    /// meta emptied from part `from` on, each only if it still holds that generation (the slot may be someone
    /// else's by now).
    fn forget(&self, record: &Record, from: usize) -> Result<(), StoreError> {
        self.dir_change(&record.hash, |dir| {
            dir.retain(|(h, _, g)| !(*h == record.hash && *g == record.generation));
        })?;
        for part in from..usize::from(record.parts) {
            let key = self.part_key(record.slot, part);
            let Some((bytes, cas)) = shared::get_bytes(&key)? else { continue };
            let ours = if part == 0 {
                entry::decode_head(&bytes).is_some_and(|h| h.entry.generation == record.generation)
            } else {
                entry::decode_part(&bytes, record.generation).is_some()
            };
            if ours {
                // A lost race means a new entry took the slot: its parts stay.
                match shared::set_bytes(&key, b"", Some(cas)) {
                    Ok(()) | Err(Status::CasMismatch) => {}
                    Err(status) => return Err(StoreError::Host(status)),
                }
            }
        }
        let meta_key = self.key(&format!("m:{}", record.slot));
        if let Some((meta, cas)) = shared::get_bytes(&meta_key)? {
            if meta.len() >= 8 && meta[..8] == record.generation.to_le_bytes() {
                match shared::set_bytes(&meta_key, b"", Some(cas)) {
                    Ok(()) | Err(Status::CasMismatch) => {}
                    Err(status) => return Err(StoreError::Host(status)),
                }
            }
        }
        Ok(())
    }

    fn dir_change(&self, hash: &Hash, change: impl Fn(&mut Vec<DirEntry>)) -> Result<(), StoreError> {
        let key = self.dir_key(hash);
        for _ in 0..=self.rules.store_retries {
            let current = shared::get_bytes(&key)?;
            let (mut dir, cas) = match &current {
                Some((bytes, cas)) => (decode_dir(bytes), *cas),
                None => (Vec::new(), ABSENT),
            };
            change(&mut dir);
            match shared::set_bytes(&key, &encode_dir(&dir), Some(cas)) {
                Ok(()) => return Ok(()),
                Err(Status::CasMismatch) => continue,
                Err(status) => return Err(StoreError::Host(status)),
            }
        }
        Err(StoreError::Contended)
    }

    fn lock_key(&self, hash: &Hash) -> String {
        self.key(&format!("lock:{}", hash.bucket(LOCK_BUCKETS)))
    }

    /// Tries to become the one request in flight for `hash` until `deadline_ms`: `true` when this request
    /// leads, `false` when another one does.
    pub fn lead(&self, hash: &Hash, now_ms: u64, deadline_ms: u64) -> Result<bool, StoreError> {
        let mut leads = false;
        self.lock_change(hash, |locks| {
            locks.retain(|(_, deadline)| *deadline > now_ms);
            leads = !locks.iter().any(|(h, _)| h == hash);
            if leads {
                locks.push((*hash, deadline_ms));
            }
            leads
        })?;
        Ok(leads)
    }

    /// The deadline of the request in flight for `hash` (passed or not), if one holds the lock.
    pub fn lock_deadline(&self, hash: &Hash) -> Result<Option<u64>, StoreError> {
        let Some((bytes, _)) = shared::get_bytes(&self.lock_key(hash))? else { return Ok(None) };
        Ok(decode_locks(&bytes).iter().find(|(h, _)| h == hash).map(|(_, deadline)| *deadline))
    }

    /// Ends the lead on `hash` taken with `deadline` (a lead that expired and was taken again by another request
    /// stays).
    pub fn release(&self, hash: &Hash, deadline_ms: u64) -> Result<(), StoreError> {
        self.lock_change(hash, |locks| {
            let before = locks.len();
            locks.retain(|(h, d)| !(h == hash && *d == deadline_ms));
            locks.len() != before
        })
    }

    /// CAS loop on a lock bucket; `change` says whether to write.
    fn lock_change(
        &self,
        hash: &Hash,
        mut change: impl FnMut(&mut Vec<(Hash, u64)>) -> bool,
    ) -> Result<(), StoreError> {
        let key = self.lock_key(hash);
        for _ in 0..=self.rules.store_retries {
            let current = shared::get_bytes(&key)?;
            let (mut locks, cas) = match &current {
                Some((bytes, cas)) => (decode_locks(bytes), *cas),
                None => (Vec::new(), ABSENT),
            };
            if !change(&mut locks) {
                return Ok(());
            }
            let mut out = Vec::with_capacity(locks.len() * 24);
            for (h, deadline) in &locks {
                out.extend_from_slice(&h.0);
                out.extend_from_slice(&deadline.to_le_bytes());
            }
            match shared::set_bytes(&key, &out, Some(cas)) {
                Ok(()) => return Ok(()),
                Err(Status::CasMismatch) => continue,
                Err(status) => return Err(StoreError::Host(status)),
            }
        }
        Err(StoreError::Contended)
    }
}

fn decode_locks(bytes: &[u8]) -> Vec<(Hash, u64)> {
    bytes
        .chunks_exact(24)
        .map(|c| {
            let mut hash = [0u8; 16];
            hash.copy_from_slice(&c[..16]);
            (Hash(hash), u64::from_le_bytes([c[16], c[17], c[18], c[19], c[20], c[21], c[22], c[23]]))
        })
        .collect()
}
