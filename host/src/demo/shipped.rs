//! The five shipped filters of `filters/`, built for `wasm32-wasip1` by `host/build.rs` and embedded in the binary.

/// One embedded filter module.
#[derive(Debug, Clone, Copy)]
pub struct ShippedFilter {
    /// The name it is published under (its folder in `filters/`: `jwt-auth`).
    pub name: &'static str,
    /// The crate (`weir-filter-jwt-auth`).
    pub package: &'static str,
    /// What it does (the crate's description).
    pub description: &'static str,
    /// The module.
    pub wasm: &'static [u8],
}

/// The version every shipped filter is published as: the workspace's, which is `weir`'s own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

include!(concat!(env!("OUT_DIR"), "/shipped.rs"));

/// The shipped filter called `name`.
pub fn find(name: &str) -> Option<&'static ShippedFilter> {
    SHIPPED.iter().find(|f| f.name == name)
}
