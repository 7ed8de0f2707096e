//! A stored response and its encoding in shared-data parts of at most [`PART_BYTES`]: part 0 holds the head
//! (generation, key, times, status, headers) and the body's first bytes, later parts the generation and more
//! of the body. Every part carries the generation, so a reader that meets parts of two writes sees a miss.

use crate::config::PART_BYTES;
use crate::key::Hash;

const HEAD_MAGIC: &[u8; 3] = b"RC1";
const PART_MAGIC: &[u8; 3] = b"RCp";
/// Bytes before the body in a later part.
const PART_HEAD: usize = 12;

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The write's generation (from the index).
    pub generation: u64,
    /// The key.
    pub hash: Hash,
    /// An SSE answer for a streaming client.
    pub stream: bool,
    /// When it was stored (ms since the epoch).
    pub stored_ms: u64,
    /// When it expires (ms since the epoch).
    pub expires_ms: u64,
    /// The status.
    pub status: u16,
    /// The headers kept.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

fn put_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v.min(u16::MAX as usize) as u16).to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v.min(u32::MAX as usize) as u32).to_le_bytes());
}

impl Entry {
    /// The parts to store, in order.
    pub fn encode(&self) -> Vec<Vec<u8>> {
        let mut head = Vec::with_capacity(64 + self.body.len().min(PART_BYTES));
        head.extend_from_slice(HEAD_MAGIC);
        head.push(u8::from(self.stream));
        head.extend_from_slice(&self.generation.to_le_bytes());
        head.extend_from_slice(&self.hash.0);
        head.extend_from_slice(&self.stored_ms.to_le_bytes());
        head.extend_from_slice(&self.expires_ms.to_le_bytes());
        head.extend_from_slice(&self.status.to_le_bytes());
        let parts_at = head.len();
        put_u16(&mut head, 0); // the part count, filled in below
        put_u32(&mut head, self.body.len());
        put_u16(&mut head, self.headers.len());
        for (name, value) in &self.headers {
            put_u16(&mut head, name.len());
            head.extend_from_slice(name.as_bytes());
            put_u32(&mut head, value.len());
            head.extend_from_slice(value.as_bytes());
        }
        let first = PART_BYTES.saturating_sub(head.len()).min(self.body.len());
        head.extend_from_slice(&self.body[..first]);
        let mut parts = vec![head];
        for chunk in self.body[first..].chunks(PART_BYTES - PART_HEAD) {
            let mut part = Vec::with_capacity(PART_HEAD + chunk.len());
            part.extend_from_slice(PART_MAGIC);
            part.push(0);
            part.extend_from_slice(&self.generation.to_le_bytes());
            part.extend_from_slice(chunk);
            parts.push(part);
        }
        let count = (parts.len().min(u16::MAX as usize) as u16).to_le_bytes();
        parts[0][parts_at..parts_at + 2].copy_from_slice(&count);
        parts
    }
}

/// Part 0, decoded: the entry without the rest of its body, and how many parts it has.
#[derive(Debug)]
pub struct Head {
    /// The entry, its body holding part 0's bytes only.
    pub entry: Entry,
    /// Parts in all.
    pub parts: usize,
    /// The whole body's length.
    pub body_len: usize,
}

/// A reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Option<usize> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn text(&mut self, n: usize) -> Option<String> {
        self.take(n).map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Decodes part 0 (`None`: not a head, e.g. an entry cleared to empty).
pub fn decode_head(bytes: &[u8]) -> Option<Head> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(3)? != HEAD_MAGIC {
        return None;
    }
    let stream = r.take(1)?[0] == 1;
    let generation = r.u64()?;
    let mut hash = [0u8; 16];
    hash.copy_from_slice(r.take(16)?);
    let stored_ms = r.u64()?;
    let expires_ms = r.u64()?;
    let status_bytes = r.take(2)?;
    let status = u16::from_le_bytes([status_bytes[0], status_bytes[1]]);
    let parts = r.u16()?;
    let body_len = r.u32()?;
    let count = r.u16()?;
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let n = r.u16()?;
        let name = r.text(n)?;
        let v = r.u32()?;
        headers.push((name, r.text(v)?));
    }
    let body = bytes.get(r.at..)?.to_vec();
    let entry = Entry { generation, hash: Hash(hash), stream, stored_ms, expires_ms, status, headers, body };
    Some(Head { entry, parts, body_len })
}

/// The body bytes of a later part, if it belongs to `generation`.
pub fn decode_part(bytes: &[u8], generation: u64) -> Option<&[u8]> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(3)? != PART_MAGIC {
        return None;
    }
    r.take(1)?;
    (r.u64()? == generation).then(|| &bytes[PART_HEAD..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body_len: usize) -> Entry {
        Entry {
            generation: 7,
            hash: Hash([3; 16]),
            stream: true,
            stored_ms: 1,
            expires_ms: 2,
            status: 203,
            headers: vec![("content-type".into(), "text/event-stream".into()), ("x-é".into(), "ü".into())],
            body: (0..body_len).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn entries_round_trip_across_parts() {
        for body_len in [0, 10, PART_BYTES - 100, PART_BYTES, 3 * PART_BYTES + 5] {
            let original = entry(body_len);
            let parts = original.encode();
            assert!(parts.iter().all(|p| p.len() <= PART_BYTES), "{body_len}");
            let head = decode_head(&parts[0]).expect("head");
            assert_eq!(head.parts, parts.len());
            assert_eq!(head.body_len, body_len);
            let mut body = head.entry.body.clone();
            for part in &parts[1..] {
                body.extend_from_slice(decode_part(part, 7).expect("same generation"));
                assert!(decode_part(part, 8).is_none(), "another generation is refused");
            }
            assert_eq!(Entry { body, ..head.entry }, original, "{body_len}");
        }
        assert!(decode_head(b"").is_none());
        assert!(decode_head(&entry(5).encode()[0][..20]).is_none(), "a truncated head is refused");
    }
}
