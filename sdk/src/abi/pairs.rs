//! The pairs layout shared by header maps, trailers, gRPC metadata, map properties and list properties.
//!
//! All integers are `u32` little-endian:
//!
//! ```text
//! [count]
//! [key_len_0][value_len_0] ... [key_len_{n-1}][value_len_{n-1}]
//! key_0 0x00 value_0 0x00 ... key_{n-1} 0x00 value_{n-1} 0x00
//! ```
//!
//! The lengths exclude the NULs, and every NUL is written and required. Keys and values are opaque bytes and may
//! themselves contain NULs.

use std::fmt;

#[cfg(test)]
mod tests;

/// The largest serialized input [`decode_pairs`] accepts: 1 MiB, as in cpp-host.
pub const MAX_PAIRS_BYTES: usize = 1 << 20;

/// The most pairs [`decode_pairs`] accepts: 1024, as in cpp-host.
pub const MAX_PAIRS: usize = 1024;

/// A key and its value, borrowed from the bytes [`decode_pairs`] parsed.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Why [`decode_pairs`] rejected its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PairsError {
    /// The input is longer than [`MAX_PAIRS_BYTES`].
    TooLarge,
    /// The header announces more than [`MAX_PAIRS`] pairs.
    TooManyPairs {
        /// The announced number of pairs.
        count: u32,
    },
    /// The input ends before the count, the lengths, or the keys, values and NULs they announce.
    Truncated,
    /// A key or value is not followed by a NUL byte.
    MissingNul {
        /// The index of the pair, counting from 0.
        index: usize,
    },
    /// Bytes are left over after the last value's NUL.
    TrailingBytes {
        /// How many bytes are left over.
        extra: usize,
    },
}

impl fmt::Display for PairsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairsError::TooLarge => write!(f, "serialized pairs exceed the limit of {MAX_PAIRS_BYTES} bytes"),
            PairsError::TooManyPairs { count } => write!(f, "{count} pairs exceed the limit of {MAX_PAIRS}"),
            PairsError::Truncated => f.write_str("serialized pairs end before the data their header announces"),
            PairsError::MissingNul { index } => write!(f, "the key or value of pair {index} is not followed by NUL"),
            PairsError::TrailingBytes { extra } => write!(f, "{extra} bytes follow the last pair"),
        }
    }
}

impl std::error::Error for PairsError {}

/// Serializes `pairs` in the pairs layout, in order; repeated keys stay repeated.
///
/// An empty slice gives an empty `Vec`, not the 4-byte count `00000000`: a host hands an empty map to the guest as
/// `ptr = 0, len = 0`, which every SDK reads as empty (and the Go SDK's allocator panics when asked for 0 bytes).
/// [`decode_pairs`] reads both forms as empty. No limit is applied; [`MAX_PAIRS`] and [`MAX_PAIRS_BYTES`] bound
/// only what is decoded.
///
/// # Panics
///
/// If a key or value is longer than `u32::MAX` bytes, or there are more than `u32::MAX` pairs.
pub fn encode_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    encode(pairs.iter().map(|(key, value)| (key.as_ref(), value.as_ref())))
}

/// [`encode_pairs`] over any re-iterable sequence of pairs.
pub(super) fn encode<'a, I>(pairs: I) -> Vec<u8>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    if pairs.len() == 0 {
        return Vec::new();
    }
    // Per pair: two lengths, two NULs. Saturating, so an impossible size fails the allocation instead of wrapping.
    let size = pairs
        .clone()
        .fold(4usize, |size, (key, value)| size.saturating_add(10).saturating_add(key.len() + value.len()));
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&wire_len(pairs.len()));
    for (key, value) in pairs.clone() {
        out.extend_from_slice(&wire_len(key.len()));
        out.extend_from_slice(&wire_len(value.len()));
    }
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

fn wire_len(len: usize) -> [u8; 4] {
    u32::try_from(len).expect("a pairs length or count exceeds u32::MAX").to_le_bytes()
}

/// Parses the pairs layout, borrowing keys and values from `bytes`.
///
/// Accepts what cpp-host accepts, and reports why it rejects the rest:
///
/// - at most [`MAX_PAIRS_BYTES`] bytes and [`MAX_PAIRS`] pairs;
/// - every key and value followed by its NUL;
/// - nothing after the last value's NUL.
///
/// An empty input, a single `0x00` byte (which the spec allows) and a zero count (`00000000`, what the SDKs send)
/// are all the empty map. cpp-host silently uses an empty map on any error; a host may do that or answer
/// [`Status::BadArgument`](super::Status::BadArgument), which no SDK expects.
pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<Pair<'_>>, PairsError> {
    if bytes.len() > MAX_PAIRS_BYTES {
        return Err(PairsError::TooLarge);
    }
    if bytes.is_empty() || bytes == [0] {
        return Ok(Vec::new());
    }
    let mut rest = bytes;
    let count = take_u32(&mut rest)?;
    let pairs_len =
        usize::try_from(count).ok().filter(|&n| n <= MAX_PAIRS).ok_or(PairsError::TooManyPairs { count })?;
    let mut lengths = take(&mut rest, pairs_len * 8)?;
    let mut data = rest;
    let mut pairs = Vec::with_capacity(pairs_len);
    for index in 0..pairs_len {
        let key_len = take_u32(&mut lengths)?;
        let value_len = take_u32(&mut lengths)?;
        let key = take_terminated(&mut data, key_len, index)?;
        let value = take_terminated(&mut data, value_len, index)?;
        pairs.push((key, value));
    }
    if !data.is_empty() {
        return Err(PairsError::TrailingBytes { extra: data.len() });
    }
    Ok(pairs)
}

/// Splits the first `len` bytes off `rest`.
fn take<'a>(rest: &mut &'a [u8], len: usize) -> Result<&'a [u8], PairsError> {
    let (head, tail) = rest.split_at_checked(len).ok_or(PairsError::Truncated)?;
    *rest = tail;
    Ok(head)
}

/// Splits a little-endian `u32` off `rest`.
fn take_u32(rest: &mut &[u8]) -> Result<u32, PairsError> {
    let (head, tail) = rest.split_first_chunk::<4>().ok_or(PairsError::Truncated)?;
    *rest = tail;
    Ok(u32::from_le_bytes(*head))
}

/// Splits `len` bytes and their NUL terminator off `rest`, returning the bytes.
fn take_terminated<'a>(rest: &mut &'a [u8], len: u32, index: usize) -> Result<&'a [u8], PairsError> {
    let len = usize::try_from(len).map_err(|_| PairsError::Truncated)?;
    let bytes = take(rest, len)?;
    match take(rest, 1)? {
        [0] => Ok(bytes),
        _ => Err(PairsError::MissingNul { index }),
    }
}
