//! Logging through the `log` facade.

use weir_sdk::abi::LogLevel;
use weir_sdk::prelude::*;
use weir_sdk::testing::LogEntry;

use super::{scripted, Phase};

#[test]
fn log_records_reach_the_host_with_their_level() {
    let mut host = scripted(|phase| {
        if let Phase::RequestHeaders(headers, _) = phase {
            let path = headers.path().unwrap_or_default();
            log::trace!("trace {path}");
            log::debug!("debug");
            log::info!("info {}", 42);
            log::warn!("warn");
            log::error!("error");
        }
        Action::Continue
    });
    host.clear_records();
    host.stream().send_request_headers(&[(":path", "/p")], true);
    let expected = [
        (LogLevel::Trace, "trace /p"),
        (LogLevel::Debug, "debug"),
        (LogLevel::Info, "info 42"),
        (LogLevel::Warn, "warn"),
        (LogLevel::Error, "error"),
    ]
    .map(|(level, message)| LogEntry { level, message: message.into() });
    assert_eq!(host.logs(), expected);
    assert!(host.calls().iter().all(|call| *call != "proxy_get_log_level"), "no level lookup per record");
}
