//! HTTP/1.1 pieces Weir's own client (`upstream::h1`) and server (`server::h1`) share.

pub mod date;
pub mod decode;
pub mod encode;
pub mod fields;
pub mod read;
pub mod trailers;
