//! The ABI version a module declares through its marker export.

/// A proxy-wasm ABI version, as declared by a module's marker export (`proxy_abi_version_0_2_1`, ...).
///
/// The marker is a function export of type `() -> ()` that is never called. Versions are ordered, so
/// `version >= AbiVersion::V0_2_0` asks whether a module has what 0.2.0 added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AbiVersion {
    /// 0.1.0: Rust SDK 0.1.x and old modules. Header callbacks lack `end_of_stream`, buffer types stop at
    /// [`BufferType::GrpcReceiveBuffer`](super::BufferType::GrpcReceiveBuffer), and `proxy_continue_request` and
    /// `proxy_continue_response` stand in for `proxy_continue_stream`.
    V0_1_0,
    /// 0.2.0: both Go SDKs. Adds the configuration and call-data buffer types and the stream-control calls.
    V0_2_0,
    /// 0.2.1: Rust SDK 0.2.x. Adds `proxy_get_log_level` over 0.2.0.
    V0_2_1,
}

impl AbiVersion {
    /// The version named by a marker export, or `None` if `name` is not one.
    ///
    /// vNEXT's placeholder `proxy_abi_version_0_x_x` is not a version, as in cpp-host.
    pub fn from_export_name(name: &str) -> Option<AbiVersion> {
        match name {
            "proxy_abi_version_0_1_0" => Some(AbiVersion::V0_1_0),
            "proxy_abi_version_0_2_0" => Some(AbiVersion::V0_2_0),
            "proxy_abi_version_0_2_1" => Some(AbiVersion::V0_2_1),
            _ => None,
        }
    }

    /// The name of the marker export that declares this version.
    pub const fn export_name(self) -> &'static str {
        match self {
            AbiVersion::V0_1_0 => "proxy_abi_version_0_1_0",
            AbiVersion::V0_2_0 => "proxy_abi_version_0_2_0",
            AbiVersion::V0_2_1 => "proxy_abi_version_0_2_1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AbiVersion;

    const TABLE: &[(&str, AbiVersion)] = &[
        ("proxy_abi_version_0_1_0", AbiVersion::V0_1_0),
        ("proxy_abi_version_0_2_0", AbiVersion::V0_2_0),
        ("proxy_abi_version_0_2_1", AbiVersion::V0_2_1),
    ];

    #[test]
    fn export_names_round_trip() {
        for &(name, version) in TABLE {
            assert_eq!(AbiVersion::from_export_name(name), Some(version), "{name}");
            assert_eq!(version.export_name(), name, "{version:?}");
        }
    }

    #[test]
    fn other_names_are_not_versions() {
        for name in [
            "",
            "proxy_abi_version_0_x_x",
            "proxy_abi_version_0_3_0",
            "proxy_abi_version_0_2_1 ",
            "PROXY_ABI_VERSION_0_2_1",
            "proxy_on_memory_allocate",
        ] {
            assert_eq!(AbiVersion::from_export_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn versions_are_ordered() {
        assert!(AbiVersion::V0_1_0 < AbiVersion::V0_2_0);
        assert!(AbiVersion::V0_2_0 < AbiVersion::V0_2_1);
    }
}
