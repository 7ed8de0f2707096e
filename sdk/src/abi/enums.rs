//! The ABI's `u32` enumerations, with their exact values.

use std::fmt;

#[cfg(test)]
mod tests;

/// A `u32` that names no variant of the ABI enumeration it was decoded as.
///
/// A host answers a hostcall that carries one with [`Status::BadArgument`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownValue {
    /// The enumeration's Rust name, e.g. `"MapType"`.
    pub kind: &'static str,
    /// The value that was received.
    pub value: u32,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} value {}", self.kind, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// Declares a `#[repr(u32)] #[non_exhaustive]` ABI enumeration with `as_u32`, `From<_> for u32` and
/// `TryFrom<u32>` (unknown values give [`UnknownValue`]).
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// The value on the wire.
            pub const fn as_u32(self) -> u32 {
                self as u32
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.as_u32()
            }
        }

        impl TryFrom<u32> for $name {
            type Error = UnknownValue;

            fn try_from(value: u32) -> Result<Self, UnknownValue> {
                match value {
                    $( $value => Ok(Self::$variant), )+
                    _ => Err(UnknownValue { kind: stringify!($name), value }),
                }
            }
        }
    };
}

abi_enum! {
    /// The result of a hostcall (`proxy_status_t`).
    ///
    /// Guest SDKs tolerate few of these: the Rust SDK declares only 0, 1, 2, 3, 4, 7, 8 and 10, and panics on most
    /// statuses a call does not document. A host returns only what the call's contract allows.
    pub enum Status {
        /// Success.
        Ok = 0,
        /// A missing key, property, queue, metric, callout or buffer.
        NotFound = 1,
        /// An unknown enum value or id; a map or buffer not usable in this phase; an invalid HTTP callout.
        BadArgument = 2,
        /// A property could not be serialized, or a foreign function failed.
        SerializationFailure = 3,
        /// An unknown gRPC upstream (Envoy).
        ParseFailure = 4,
        /// A bad expression. Defined by cpp-host, used by no call.
        BadExpression = 5,
        /// A pointer or length out of bounds of guest memory, or a failed guest allocation.
        InvalidMemoryAccess = 6,
        /// A dequeue from an empty shared queue.
        Empty = 7,
        /// A compare-and-swap on shared data lost: the CAS value is stale.
        CasMismatch = 8,
        /// A result mismatch. Defined by cpp-host, used by no call.
        ResultMismatch = 9,
        /// The host could not start a callout, or the call needs a capability the plugin lacks.
        InternalFailure = 10,
        /// The connection broke. cpp-host reports it from `proxy_get_status` after a failed HTTP callout.
        BrokenConnection = 11,
        /// The host does not implement this call or this use of it.
        Unimplemented = 12,
    }
}

abi_enum! {
    /// What a stream callback (`proxy_on_request_headers`, `proxy_on_response_body`, ...) asks the host to do.
    ///
    /// Decode a guest's return value with [`Action::from_guest`], which accepts every value; `TryFrom` accepts
    /// only 0 and 1.
    pub enum Action {
        /// Forward what the callback was given and go on with the stream.
        Continue = 0,
        /// Stop the stream here until the filter resumes it (headers are held; a body chunk is buffered).
        Pause = 1,
    }
}

impl Action {
    /// Decodes a callback's return value: 0 is [`Action::Continue`] and any other value is [`Action::Pause`].
    ///
    /// The C++ SDK returns values above 1 (Envoy filter statuses such as `StopAllIterationAndBuffer`); a host that
    /// does not mimic Envoy's filter manager treats them all as a pause.
    pub const fn from_guest(value: u32) -> Action {
        if value == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

abi_enum! {
    /// Which buffer `proxy_get_buffer_bytes`, `proxy_get_buffer_status` and `proxy_set_buffer_bytes` act on.
    pub enum BufferType {
        /// The HTTP request body (the chunk given to the current body callback).
        HttpRequestBody = 0,
        /// The HTTP response body (the chunk given to the current body callback).
        HttpResponseBody = 1,
        /// Data received from the downstream peer of a TCP stream.
        DownstreamData = 2,
        /// Data received from the upstream peer of a TCP stream.
        UpstreamData = 3,
        /// The body of an HTTP callout's response, during `proxy_on_http_call_response`.
        HttpCallResponseBody = 4,
        /// A gRPC message received on a callout (the spec calls it `GRPC_CALL_MESSAGE`).
        GrpcReceiveBuffer = 5,
        /// The VM configuration, during `proxy_on_vm_start`. From ABI 0.2.0.
        VmConfiguration = 6,
        /// The plugin configuration, during `proxy_on_configure`. From ABI 0.2.0.
        PluginConfiguration = 7,
        /// The arguments of a foreign function call (the spec calls it `FOREIGN_FUNCTION_ARGUMENTS`). From ABI 0.2.0.
        CallData = 8,
    }
}

abi_enum! {
    /// Which header map, trailer map or metadata map the `proxy_*_header_map_*` hostcalls act on.
    pub enum MapType {
        /// The HTTP request headers, pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`) included.
        HttpRequestHeaders = 0,
        /// The HTTP request trailers.
        HttpRequestTrailers = 1,
        /// The HTTP response headers, `:status` included.
        HttpResponseHeaders = 2,
        /// The HTTP response trailers.
        HttpResponseTrailers = 3,
        /// The initial metadata received on a gRPC callout.
        GrpcReceiveInitialMetadata = 4,
        /// The trailing metadata received on a gRPC callout.
        GrpcReceiveTrailingMetadata = 5,
        /// The headers of an HTTP callout's response, during `proxy_on_http_call_response`.
        HttpCallResponseHeaders = 6,
        /// The trailers of an HTTP callout's response, during `proxy_on_http_call_response`.
        HttpCallResponseTrailers = 7,
    }
}

abi_enum! {
    /// The level of a `proxy_log` message, and what `proxy_get_log_level` reports. Ordered from least to most
    /// severe.
    #[derive(PartialOrd, Ord)]
    pub enum LogLevel {
        /// Trace.
        Trace = 0,
        /// Debug.
        Debug = 1,
        /// Info.
        Info = 2,
        /// Warn.
        Warn = 3,
        /// Error.
        Error = 4,
        /// Critical.
        Critical = 5,
    }
}

impl LogLevel {
    /// Decodes a level, clamping anything above 5 to [`LogLevel::Critical`].
    ///
    /// Envoy's `proxy_get_log_level` can report 6 ("off"), which no SDK defines; clamping keeps such a value
    /// inside the range every SDK accepts.
    pub const fn clamp(value: u32) -> LogLevel {
        match value {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }
}

abi_enum! {
    /// Which stream `proxy_continue_stream` and `proxy_close_stream` act on.
    pub enum StreamType {
        /// The HTTP request.
        HttpRequest = 0,
        /// The HTTP response.
        HttpResponse = 1,
        /// The downstream side of a TCP stream.
        Downstream = 2,
        /// The upstream side of a TCP stream.
        Upstream = 3,
    }
}

abi_enum! {
    /// Who closed a TCP connection, as passed to `proxy_on_downstream_connection_close` and
    /// `proxy_on_upstream_connection_close` (the C++ SDK calls it `CloseType`).
    pub enum PeerType {
        /// Not known.
        Unknown = 0,
        /// Closed by the proxy.
        Local = 1,
        /// Closed by the peer.
        Remote = 2,
    }
}

abi_enum! {
    /// The kind of metric `proxy_define_metric` creates.
    pub enum MetricType {
        /// A counter: only ever incremented.
        Counter = 0,
        /// A gauge: set, incremented and decremented.
        Gauge = 1,
        /// A histogram: each recorded value is one observation.
        Histogram = 2,
    }
}
