//! Context ids: which root or stream a callback runs for, and acting on another one.
//!
//! The host gives every plugin (root context) and every HTTP stream an id. The SDK records the id of the
//! callback that is running, so helpers act on it; [`set_effective`] makes later hostcalls of this callback act
//! on another stream, e.g. to resume a request parked by an earlier callback:
//!
//! ```no_run
//! use weir_sdk::{context, http, ContextId};
//!
//! fn release(parked: &mut Vec<ContextId>) {
//!     for stream in parked.drain(..) {
//!         if context::set_effective(stream).is_ok() {
//!             http::resume_request();
//!         }
//!     }
//! }
//! ```

use std::cell::Cell;
use std::fmt;

use crate::abi::Status;
use crate::host::raw;

/// The id the host gave a root context (one per plugin) or a stream context (one per HTTP request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextId(pub u32);

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// The context whose callback is running (0 outside callbacks).
///
/// ```no_run
/// let me = weir_sdk::context::current();
/// log::debug!("stream {me}");
/// ```
pub fn current() -> ContextId {
    ContextId(CURRENT.get())
}

/// Records that a callback of `context` starts (the dispatcher calls it before every callback).
pub(crate) fn enter(context: u32) {
    CURRENT.set(context);
}

/// Makes the rest of this callback's hostcalls act on `context` (`proxy_set_effective_context`); the host resets
/// it when the callback returns. `Err(BadArgument)` when the host no longer knows `context`.
///
/// ```no_run
/// # let parked = weir_sdk::ContextId(7);
/// if weir_sdk::context::set_effective(parked).is_ok() {
///     weir_sdk::http::resume_request();
/// }
/// ```
pub fn set_effective(context: ContextId) -> Result<(), Status> {
    raw::set_effective_context(context.0)
}

/// Tells the host a plugin whose [`Plugin::on_done`](crate::Plugin::on_done) returned `false` has finished
/// (`proxy_done`).
///
/// ```no_run
/// let _ = weir_sdk::context::done();
/// ```
pub fn done() -> Result<(), Status> {
    raw::done()
}
