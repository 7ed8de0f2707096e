use super::*;
use std::fmt::Debug;

/// Checks that `table` lists every value of `kind` from 0 upwards, that each value decodes to its variant and
/// encodes back both ways, and that the first value after the table is rejected.
fn check<E>(kind: &'static str, table: &[(u32, E)], as_u32: fn(E) -> u32)
where
    E: Copy + Debug + PartialEq + Into<u32> + TryFrom<u32, Error = UnknownValue>,
{
    for (index, &(value, variant)) in table.iter().enumerate() {
        assert_eq!(value as usize, index, "{kind} table must be contiguous from 0");
        assert_eq!(E::try_from(value), Ok(variant), "{kind} {value}");
        assert_eq!(as_u32(variant), value, "{kind}::{variant:?}.as_u32()");
        assert_eq!(Into::<u32>::into(variant), value, "u32::from({kind}::{variant:?})");
    }
    let first_invalid = table.len() as u32;
    assert_eq!(E::try_from(first_invalid), Err(UnknownValue { kind, value: first_invalid }));
    assert_eq!(E::try_from(u32::MAX), Err(UnknownValue { kind, value: u32::MAX }));
}

#[test]
fn status_values() {
    use Status::*;
    let table = [
        (0, Ok),
        (1, NotFound),
        (2, BadArgument),
        (3, SerializationFailure),
        (4, ParseFailure),
        (5, BadExpression),
        (6, InvalidMemoryAccess),
        (7, Empty),
        (8, CasMismatch),
        (9, ResultMismatch),
        (10, InternalFailure),
        (11, BrokenConnection),
        (12, Unimplemented),
    ];
    check("Status", &table, Status::as_u32);
}

#[test]
fn action_values() {
    check("Action", &[(0, Action::Continue), (1, Action::Pause)], Action::as_u32);
}

#[test]
fn buffer_type_values() {
    use BufferType::*;
    let table = [
        (0, HttpRequestBody),
        (1, HttpResponseBody),
        (2, DownstreamData),
        (3, UpstreamData),
        (4, HttpCallResponseBody),
        (5, GrpcReceiveBuffer),
        (6, VmConfiguration),
        (7, PluginConfiguration),
        (8, CallData),
    ];
    check("BufferType", &table, BufferType::as_u32);
}

#[test]
fn map_type_values() {
    use MapType::*;
    let table = [
        (0, HttpRequestHeaders),
        (1, HttpRequestTrailers),
        (2, HttpResponseHeaders),
        (3, HttpResponseTrailers),
        (4, GrpcReceiveInitialMetadata),
        (5, GrpcReceiveTrailingMetadata),
        (6, HttpCallResponseHeaders),
        (7, HttpCallResponseTrailers),
    ];
    check("MapType", &table, MapType::as_u32);
}

#[test]
fn log_level_values() {
    use LogLevel::*;
    let table = [(0, Trace), (1, Debug), (2, Info), (3, Warn), (4, Error), (5, Critical)];
    check("LogLevel", &table, LogLevel::as_u32);
}

#[test]
fn stream_type_values() {
    use StreamType::*;
    check("StreamType", &[(0, HttpRequest), (1, HttpResponse), (2, Downstream), (3, Upstream)], StreamType::as_u32);
}

#[test]
fn peer_type_values() {
    use PeerType::*;
    check("PeerType", &[(0, Unknown), (1, Local), (2, Remote)], PeerType::as_u32);
}

#[test]
fn metric_type_values() {
    use MetricType::*;
    check("MetricType", &[(0, Counter), (1, Gauge), (2, Histogram)], MetricType::as_u32);
}

#[test]
fn action_from_guest_treats_every_non_zero_value_as_pause() {
    let table =
        [(0, Action::Continue), (1, Action::Pause), (2, Action::Pause), (4, Action::Pause), (u32::MAX, Action::Pause)];
    for (value, action) in table {
        assert_eq!(Action::from_guest(value), action, "{value}");
    }
}

#[test]
fn log_level_clamp_keeps_valid_levels_and_caps_the_rest_at_critical() {
    use LogLevel::*;
    let table =
        [(0, Trace), (1, Debug), (2, Info), (3, Warn), (4, Error), (5, Critical), (6, Critical), (u32::MAX, Critical)];
    for (value, level) in table {
        assert_eq!(LogLevel::clamp(value), level, "{value}");
    }
}

#[test]
fn log_levels_are_ordered_by_severity() {
    assert!(LogLevel::Trace < LogLevel::Debug);
    assert!(LogLevel::Error < LogLevel::Critical);
}

#[test]
fn unknown_value_names_the_enum_and_the_value() {
    let err = MapType::try_from(8).unwrap_err();
    assert_eq!(err, UnknownValue { kind: "MapType", value: 8 });
    assert_eq!(err.to_string(), "unknown MapType value 8");
    let _: &dyn std::error::Error = &err;
}
