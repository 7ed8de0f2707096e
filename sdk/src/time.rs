//! The host's clock and the plugin's timer.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! weir_sdk::time::set_tick_period(Duration::from_secs(10)); // Plugin::on_tick every 10 s
//! let now = weir_sdk::time::now();
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::host::{raw, report};

/// The host's wall-clock time (`proxy_get_current_time_nanoseconds`).
pub fn now() -> SystemTime {
    let nanos = raw::get_current_time_nanoseconds().unwrap_or(0);
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// The host's wall-clock time in nanoseconds since the Unix epoch, as the hostcall answers it: for arithmetic on
/// every request, where [`now`] and `duration_since(UNIX_EPOCH)` would divide and multiply the same number back
/// (in 128 bits, which wasm32 calls out for).
pub fn unix_nanos() -> u64 {
    raw::get_current_time_nanoseconds().unwrap_or(0)
}

/// Calls [`Plugin::on_tick`](crate::Plugin::on_tick) every `period` (whole milliseconds), the first one a period
/// from now; zero stops the timer. Acts on the plugin of the running callback.
pub fn set_tick_period(period: Duration) {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    if let Err(status) = raw::set_tick_period_milliseconds(millis) {
        report("set_tick_period", status);
    }
}
