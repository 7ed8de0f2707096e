//! The proxy-wasm ABI as data: status codes, enumerations and wire encodings.
//!
//! This module is the one definition of the ABI's numbers and byte layouts. The host decodes what a guest sends
//! with it, and guests encode what they send with it, so both sides agree by construction. Golden-byte tests pin
//! every value against the proxy-wasm reference.
//!
//! - Enumerations ([`Status`], [`Action`], [`BufferType`], [`MapType`], [`LogLevel`], [`StreamType`],
//!   [`PeerType`], [`MetricType`]) are `#[repr(u32)]` with the exact ABI values. A raw `u32` from the other side
//!   is decoded with [`TryFrom`], which returns [`UnknownValue`] for a value the ABI does not define; the host
//!   answers that with [`Status::BadArgument`]. Each converts back with `as_u32` or [`From`].
//! - [`AbiVersion`] names the ABI a module was built for, from its marker export (`proxy_abi_version_0_2_1`).
//! - Header maps, trailers, gRPC metadata and every other list of key/value pairs use one layout:
//!   [`encode_pairs`] and [`decode_pairs`].
//! - Property paths are NUL-separated segments: [`split_path`] and [`join_path`].
//! - Property values have fixed encodings: [`encode_i64`], [`encode_u64`], [`encode_bool`], [`encode_f64`],
//!   [`encode_map`] and [`encode_list`], read back with [`decode_i64`], [`decode_u64`], [`decode_bool`],
//!   [`decode_f64`], [`decode_pairs`] and [`decode_list`].
//! - Weir's foreign function `weir.memoize_response` takes a [`MemoSpec`] as JSON.
//!
//! All integers that cross the boundary are little-endian.

mod enums;
mod memo;
mod needs;
mod pairs;
mod path;
mod value;
mod version;

pub use enums::{Action, BufferType, LogLevel, MapType, MetricType, PeerType, Status, StreamType, UnknownValue};
pub use memo::{MemoAge, MemoSpec, MEMOIZE_RESPONSE};
pub use needs::{StreamNeeds, DECLARE_STREAM_NEEDS};
pub use pairs::{decode_pairs, encode_pairs, Pair, PairsError, MAX_PAIRS, MAX_PAIRS_BYTES};
pub use path::{join_path, split_path};
pub use value::{
    decode_bool, decode_f64, decode_i64, decode_list, decode_u64, encode_bool, encode_f64, encode_i64, encode_list,
    encode_map, encode_u64,
};
pub use version::AbiVersion;
