//! HTTP callouts: requests a filter sends to a cluster, answered later through a callback.
//!
//! Build the request with [`HttpCall`], then either [`dispatch`](HttpCall::dispatch) it with a closure that gets
//! the filter (or plugin) back together with the answer, or [`send`](HttpCall::send) it and handle the answer in
//! [`HttpFilter::on_http_call_response`](crate::HttpFilter::on_http_call_response). While a callout runs, the
//! request usually waits: return [`Action::Pause`](crate::Action::Pause), then resume or answer it from the
//! callback.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_sdk::prelude::*;
//!
//! struct Auth;
//!
//! impl HttpFilter for Auth {
//!     fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
//!         let token = headers.get("authorization").unwrap_or_default();
//!         let sent = HttpCall::get("auth", "/check")
//!             .header("authorization", &token)
//!             .timeout(Duration::from_secs(1))
//!             .dispatch(|_filter: &mut Auth, response| match response {
//!                 Ok(answer) if answer.status == 200 => http::resume_request(),
//!                 _ => {
//!                     http::send_response(403, &[], b"denied\n");
//!                 }
//!             });
//!         match sent {
//!             Ok(_) => Action::Pause,
//!             Err(_) => http::send_response(503, &[], b"auth unavailable\n"),
//!         }
//!     }
//! }
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::time::Duration;

use crate::abi::{decode_pairs, encode_pairs, BufferType, MapType, Status};
use crate::context;
use crate::host::raw;
use crate::table::Table;

/// The id of a callout, as the host returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u32);

/// What a callback gets: the answer, or why there is none.
pub type CallResult = Result<Response, CallFailed>;

/// A callout's answer: any HTTP status, 5xx and timeouts (504) included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// `:status`, or 0 if the host sent none.
    pub status: u16,
    /// The headers, `:status` included, values converted lossily to UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The trailers.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    ///
    /// ```
    /// let response = weir_sdk::callout::Response {
    ///     status: 200,
    ///     headers: vec![("x-user".into(), "ada".into())],
    ///     ..Default::default()
    /// };
    /// assert_eq!(response.header("X-User"), Some("ada"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// A callout that got no HTTP answer (connection refused or reset): the host's status code and message
/// (`proxy_get_status`, e.g. 11 and `reset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailed {
    /// The host's code.
    pub code: u32,
    /// The host's message.
    pub message: String,
}

/// An HTTP request to send to a cluster (a configured upstream name, never a URL).
///
/// ```no_run
/// use std::time::Duration;
/// use weir_sdk::callout::HttpCall;
///
/// let call = HttpCall::new("billing", "POST", "/usage")
///     .authority("billing.internal")
///     .header("content-type", "application/json")
///     .body(br#"{"units":1}"#.to_vec())
///     .timeout(Duration::from_millis(250));
/// let token = call.send();
/// ```
#[derive(Debug, Clone)]
pub struct HttpCall {
    cluster: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    timeout: Duration,
}

impl HttpCall {
    /// A `method` request for `path` on `cluster`, with `:authority` set to the cluster name and a 5 s timeout.
    pub fn new(cluster: &str, method: &str, path: &str) -> HttpCall {
        HttpCall {
            cluster: cluster.to_owned(),
            headers: vec![
                (":method".to_owned(), method.to_owned()),
                (":path".to_owned(), path.to_owned()),
                (":authority".to_owned(), cluster.to_owned()),
            ],
            body: Vec::new(),
            trailers: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// A `GET` request for `path` on `cluster`.
    pub fn get(cluster: &str, path: &str) -> HttpCall {
        HttpCall::new(cluster, "GET", path)
    }

    /// A `POST` request for `path` on `cluster` with `body`.
    pub fn post(cluster: &str, path: &str, body: Vec<u8>) -> HttpCall {
        HttpCall::new(cluster, "POST", path).body(body)
    }

    /// Sets `:authority` (the `Host`).
    pub fn authority(self, authority: &str) -> HttpCall {
        self.header(":authority", authority)
    }

    /// Sets header `name` (replacing an earlier value of the same name).
    pub fn header(mut self, name: &str, value: &str) -> HttpCall {
        match self.headers.iter_mut().find(|(key, _)| key.eq_ignore_ascii_case(name)) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.headers.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> HttpCall {
        self.body = body;
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: &str, value: &str) -> HttpCall {
        self.trailers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the timeout (whole milliseconds; zero means none). When it passes, the answer is a 504.
    pub fn timeout(mut self, timeout: Duration) -> HttpCall {
        self.timeout = timeout;
        self
    }

    /// Sends the call; its answer goes to `callback`, with the filter (`F` = your [`HttpFilter`]) or plugin
    /// (`F` = your [`Plugin`]) that sent it. In the callback hostcalls act on the request that sent it.
    ///
    /// `Err` is the host's refusal: `BadArgument` for an unknown cluster or a missing pseudo-header,
    /// `InternalFailure` when the host could not start it.
    ///
    /// [`HttpFilter`]: crate::HttpFilter
    /// [`Plugin`]: crate::Plugin
    pub fn dispatch<F: 'static>(self, callback: impl FnOnce(&mut F, CallResult) + 'static) -> Result<Token, Status> {
        let callback: Callback<F> = Box::new(callback);
        self.start(Some(Box::new(callback)))
    }

    /// Sends the call; its answer goes to the `on_http_call_response` of the filter or plugin that sent it.
    pub fn send(self) -> Result<Token, Status> {
        self.start(None)
    }

    fn start(self, callback: Option<Box<dyn Any>>) -> Result<Token, Status> {
        let timeout_ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        let token = raw::http_call(
            self.cluster.as_bytes(),
            &encode_pairs(&self.headers),
            &self.body,
            &encode_pairs(&self.trailers),
            timeout_ms,
        )?;
        PENDING.with_borrow_mut(|pending| pending.insert(token, Pending { context: context::current().0, callback }));
        Ok(Token(token))
    }
}

/// A callback as stored: boxed, then type-erased until the answer comes back.
pub(crate) type Callback<F> = Box<dyn FnOnce(&mut F, CallResult)>;

/// A callout waiting for its answer: who sent it and where the answer goes.
pub(crate) struct Pending {
    /// The context that sent it.
    pub context: u32,
    /// A [`Callback`] of the filter or plugin type, or `None` for the trait method.
    pub callback: Option<Box<dyn Any>>,
}

thread_local! {
    static PENDING: RefCell<Table<Pending>> = const { RefCell::new(Table::new()) };
}

/// Takes the callout `token` out of the pending table.
pub(crate) fn take(token: u32) -> Option<Pending> {
    PENDING.with_borrow_mut(|pending| pending.remove(token))
}

/// Forgets the callouts `context` sent (it is being deleted): their answers, if the host still delivers them, are
/// dropped.
pub(crate) fn forget(context: u32) {
    PENDING.with_borrow_mut(|pending| pending.retain(|callout| callout.context != context));
}

/// Forgets every pending callout (a fresh fake host).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn reset() {
    PENDING.with_borrow_mut(Table::clear);
}

/// Reads the answer inside `proxy_on_http_call_response`: no headers means the call failed.
pub(crate) fn collect(num_headers: usize, body_size: usize, num_trailers: usize) -> CallResult {
    if num_headers == 0 {
        let (code, message) = raw::get_status().unwrap_or((0, Vec::new()));
        return Err(CallFailed { code, message: String::from_utf8_lossy(&message).into_owned() });
    }
    let headers = pairs(MapType::HttpCallResponseHeaders);
    let status = headers.iter().find(|(key, _)| key == ":status").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let body = if body_size == 0 {
        Vec::new()
    } else {
        raw::get_buffer_bytes(BufferType::HttpCallResponseBody, 0, body_size).unwrap_or_default()
    };
    let trailers = if num_trailers == 0 { Vec::new() } else { pairs(MapType::HttpCallResponseTrailers) };
    Ok(Response { status, headers, body, trailers })
}

fn pairs(map: MapType) -> Vec<(String, String)> {
    let bytes = raw::get_header_map_pairs(map).unwrap_or_default();
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    decode_pairs(&bytes).map(|pairs| pairs.iter().map(|(k, v)| (lossy(k), lossy(v))).collect()).unwrap_or_default()
}
