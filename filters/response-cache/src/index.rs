//! The index record: every entry of a namespace (key, slot, generation, size, expiry, last use) with the byte
//! total and the next generation. Writers change it with compare-and-swap, so the bounds hold whatever the
//! number of workers: an entry exists only once the index holds it, and a write that would pass a bound first
//! evicts expired entries, then the least recently used.

use crate::key::Hash;

const MAGIC: &[u8; 4] = b"RCI1";
/// Encoded size of one record.
const RECORD: usize = 16 + 4 + 2 + 4 + 8 + 8 + 8;

/// One entry in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub hash: Hash,
    /// The slot holding its parts.
    pub slot: u32,
    /// How many parts.
    pub parts: u16,
    /// Bytes it takes (parts and meta).
    pub bytes: u32,
    /// When it expires (ms).
    pub expires_ms: u64,
    /// When it was last used (ms).
    pub used_ms: u64,
    /// Its generation.
    pub generation: u64,
}

/// The index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// The next generation handed out.
    pub next_generation: u64,
    /// The entries.
    pub records: Vec<Record>,
}

/// A recorded use of an entry, written to the index later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    /// The slot.
    pub slot: u32,
    /// The generation that was used.
    pub generation: u64,
    /// When.
    pub at_ms: u64,
}

/// The bounds of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most entries.
    pub max_entries: usize,
    /// The most bytes.
    pub max_bytes: u64,
}

/// Why a new entry does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl Index {
    /// The bytes of every entry.
    pub fn bytes(&self) -> u64 {
        self.records.iter().map(|r| u64::from(r.bytes)).sum()
    }

    /// Decodes an index (`None` bytes or an empty value: an empty index; `None`: not an index).
    pub fn decode(bytes: Option<&[u8]>) -> Option<Index> {
        let Some(bytes) = bytes.filter(|b| !b.is_empty()) else { return Some(Index::default()) };
        if bytes.get(..4)? != MAGIC {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)) };
        let next_generation = u64_at(4)?;
        let body = bytes.get(12..)?;
        if body.len() % RECORD != 0 {
            return None;
        }
        let records = body
            .chunks(RECORD)
            .map(|c| {
                let mut hash = [0u8; 16];
                hash.copy_from_slice(&c[..16]);
                let n = |from: usize, len: usize| {
                    c[from..from + len].iter().rev().fold(0u64, |a, b| a << 8 | u64::from(*b))
                };
                Record {
                    hash: Hash(hash),
                    slot: n(16, 4) as u32,
                    parts: n(20, 2) as u16,
                    bytes: n(22, 4) as u32,
                    expires_ms: n(26, 8),
                    used_ms: n(34, 8),
                    generation: n(42, 8),
                }
            })
            .collect();
        Some(Index { next_generation, records })
    }

    /// The encoded index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.records.len() * RECORD);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.next_generation.to_le_bytes());
        for r in &self.records {
            out.extend_from_slice(&r.hash.0);
            out.extend_from_slice(&r.slot.to_le_bytes());
            out.extend_from_slice(&r.parts.to_le_bytes());
            out.extend_from_slice(&r.bytes.to_le_bytes());
            out.extend_from_slice(&r.expires_ms.to_le_bytes());
            out.extend_from_slice(&r.used_ms.to_le_bytes());
            out.extend_from_slice(&r.generation.to_le_bytes());
        }
        out
    }

    /// Records uses: an entry's last use is the latest of them.
    pub fn apply_touches(&mut self, touches: &[Touch]) {
        if touches.is_empty() {
            return;
        }
        let at: std::collections::HashMap<(u32, u64), usize> =
            self.records.iter().enumerate().map(|(i, r)| ((r.slot, r.generation), i)).collect();
        for t in touches {
            if let Some(&i) = at.get(&(t.slot, t.generation)) {
                let r = &mut self.records[i];
                r.used_ms = r.used_ms.max(t.at_ms);
            }
        }
    }

    /// Makes room for `wanted` (its key, parts, bytes and expiry; the rest is set here) under `bounds` and adds
    /// it, used at `wanted.used_ms`: the old entry of the same key, expired entries, then the least recently used
    /// go. Returns the new record and the removed ones.
    pub fn insert(&mut self, wanted: Record, bounds: Bounds) -> Result<(Record, Vec<Record>), TooLarge> {
        let Record { hash, parts, bytes, expires_ms, used_ms: now_ms, .. } = wanted;
        let Bounds { max_entries, max_bytes } = bounds;
        if u64::from(bytes) > max_bytes || max_entries == 0 {
            return Err(TooLarge);
        }
        let mut removed = Vec::new();
        let mut keep = Vec::with_capacity(self.records.len() + 1);
        for r in self.records.drain(..) {
            if r.hash == hash || r.expires_ms <= now_ms {
                removed.push(r);
            } else {
                keep.push(r);
            }
        }
        self.records = keep;
        let mut total = self.bytes();
        while self.records.len() + 1 > max_entries || total + u64::from(bytes) > max_bytes {
            let Some((at, _)) = self.records.iter().enumerate().min_by_key(|(_, r)| (r.used_ms, r.generation)) else {
                break;
            };
            let r = self.records.swap_remove(at);
            total -= u64::from(r.bytes);
            removed.push(r);
        }
        let mut used: Vec<u32> = self.records.iter().map(|r| r.slot).collect();
        used.sort_unstable();
        let slot = (0u32..).find(|s| used.binary_search(s).is_err()).unwrap_or(0);
        let generation = self.next_generation.max(1);
        self.next_generation = generation + 1;
        let record = Record { hash, slot, parts, bytes, expires_ms, used_ms: now_ms, generation };
        self.records.push(record);
        Ok((record, removed))
    }

    /// Removes the records `matches` picks; returns them.
    pub fn remove_where(&mut self, matches: impl Fn(&Record) -> bool) -> Vec<Record> {
        let (gone, keep): (Vec<Record>, Vec<Record>) = self.records.drain(..).partition(|r| matches(r));
        self.records = keep;
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash([n; 16])
    }

    /// Inserts key `n` of `bytes` expiring at `expires`, at `now`, with at most `entries` entries of `max` bytes.
    fn put(
        index: &mut Index,
        n: u8,
        bytes: u32,
        expires: u64,
        now: u64,
        entries: usize,
        max: u64,
    ) -> Result<(Record, Vec<Record>), TooLarge> {
        let wanted = Record { hash: h(n), slot: 0, parts: 1, bytes, expires_ms: expires, used_ms: now, generation: 0 };
        index.insert(wanted, Bounds { max_entries: entries, max_bytes: max })
    }

    /// (key, bytes, expires, now, max entries, max bytes, removed keys)
    type Step = (u8, u32, u64, u64, usize, u64, &'static [u8]);

    #[test]
    fn bounds_evict_expired_then_least_recently_used() {
        let mut index = Index::default();
        let table: &[Step] = &[
            (1, 10, 100, 1, 3, 100, &[]),
            (2, 10, 100, 2, 3, 100, &[]),
            (3, 10, 100, 3, 3, 100, &[]),
            (4, 10, 100, 4, 3, 100, &[1]),      // entries bound: the oldest use goes
            (5, 85, 100, 5, 3, 100, &[2, 3]),   // bytes bound: as many as needed
            (5, 20, 100, 6, 3, 100, &[5]),      // the same key replaces itself
            (6, 10, 100, 200, 3, 100, &[4, 5]), // expired entries go first
        ];
        for (key, bytes, expires, now, entries, max, want) in table {
            let (record, removed) = put(&mut index, *key, *bytes, *expires, *now, *entries, *max).expect("fits");
            let mut removed: Vec<u8> = removed.iter().map(|r| r.hash.0[0]).collect();
            removed.sort_unstable();
            assert_eq!(removed, *want, "insert {key}");
            assert!(index.records.len() <= *entries && index.bytes() <= *max, "insert {key}");
            assert_eq!(index.records.iter().filter(|r| r.slot == record.slot).count(), 1, "slots are unique");
        }
        assert_eq!(put(&mut index, 9, 101, 1, 1, 3, 100), Err(TooLarge));
        assert_eq!(Index::decode(Some(&index.encode())), Some(index.clone()));
        assert_eq!(Index::decode(None), Some(Index::default()));
        assert_eq!(Index::decode(Some(b"nope")), None);
    }

    #[test]
    fn touches_keep_entries() {
        let mut index = Index::default();
        for key in 1..=3 {
            put(&mut index, key, 1, 1000, u64::from(key), 3, 100).expect("fits");
        }
        let first = index.records[0];
        index.apply_touches(&[Touch { slot: first.slot, generation: first.generation, at_ms: 10 }]);
        let (_, removed) = put(&mut index, 4, 1, 1000, 11, 3, 100).expect("fits");
        assert_eq!(removed.iter().map(|r| r.hash).collect::<Vec<_>>(), [h(2)], "the touched entry stays");
        let gone = index.remove_where(|r| r.hash == h(3));
        assert_eq!(gone.len(), 1);
        assert_eq!(index.records.len(), 2);
    }
}
