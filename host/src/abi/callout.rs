//! HTTP callouts as a VM sees them: the requests its callbacks started (picked up by the worker after each
//! call), the answer visible during `proxy_on_http_call_response`, and the status `proxy_get_status` reports.

use super::stream::{Headers, Pairs};
use std::sync::Arc;
use std::time::Duration;

/// A callout a filter asked for.
#[derive(Debug, Clone)]
pub struct Callout {
    /// The token handed to the filter.
    pub token: u32,
    /// The root context that receives the answer.
    pub root: u32,
    /// The cluster to send it to.
    pub cluster: String,
    /// Headers with `:method`, `:path`, `:authority`.
    pub headers: Pairs,
    /// Body.
    pub body: Vec<u8>,
    /// Trailers sent after the body (none when empty).
    pub trailers: Pairs,
    /// Bound; `None`: the filter asked for none (Weir still caps it, see `MAX_CALLOUT_TIME`).
    pub timeout: Option<Duration>,
}

/// The longest a callout may run when the filter set no timeout.
pub const MAX_CALLOUT_TIME: Duration = Duration::from_secs(300);

/// The answer to a callout, visible during `proxy_on_http_call_response` (maps 6 and 7, buffer 4).
#[derive(Debug, Clone, Default)]
pub struct CalloutResponse {
    /// Headers with `:status`.
    pub headers: Headers,
    /// Trailers.
    pub trailers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// Per-VM callout state.
#[derive(Debug, Default)]
pub struct Callouts {
    /// Names of the clusters a callout may target.
    pub clusters: Arc<[String]>,
    /// Callouts started by the current callback, not yet picked up.
    pub pending: Vec<Callout>,
    /// The answer being delivered.
    pub response: Option<CalloutResponse>,
    /// `proxy_get_status`: code and message of the last callout event.
    pub status: (u32, Vec<u8>),
    next_token: u32,
}

impl Callouts {
    /// The next HTTP callout token: 4, 8, 12, ... (the low two bits 0 mark an HTTP call, as cpp-host).
    pub fn next_token(&mut self) -> u32 {
        self.next_token = self.next_token.wrapping_add(4).max(4);
        self.next_token
    }
}
