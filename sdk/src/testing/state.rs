//! The fake host's state: one per thread, what the hostcalls read and write and what tests inspect.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::abi::{LogLevel, MetricType, Status};

/// An ordered header map, as the fake keeps it.
pub(crate) type Pairs = Vec<(String, Vec<u8>)>;

/// A foreign function the test registered.
pub(crate) type Foreign = Rc<dyn Fn(&[u8]) -> Result<Vec<u8>, Status>>;

/// One log line a filter wrote through `proxy_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its level.
    pub level: LogLevel,
    /// Its text.
    pub message: String,
}

/// A local response a filter sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers the filter gave.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The details string.
    pub details: String,
}

impl LocalResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A callout a filter started and nobody answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Its token (answer it with [`FakeHost::respond`](super::FakeHost::respond)).
    pub token: u32,
    /// The cluster it was sent to.
    pub cluster: String,
    /// Its headers, pseudo-headers included.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// Its trailers.
    pub trailers: Vec<(String, String)>,
    /// Its timeout in milliseconds (0: none).
    pub timeout_ms: u32,
    /// The context that sent it.
    pub context: u32,
}

impl Callout {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// What the fake holds for one stream.
#[derive(Default)]
pub(crate) struct StreamState {
    /// Maps 0 to 3: request headers, request trailers, response headers, response trailers.
    pub maps: [Pairs; 4],
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub local_response: Option<LocalResponse>,
    pub resumed_request: usize,
    pub resumed_response: usize,
    pub closed: bool,
}

/// A metric as the fake keeps it.
pub(crate) struct Metric {
    pub name: String,
    pub kind: MetricType,
    pub value: i64,
    pub samples: Vec<u64>,
}

/// A shared queue as the fake keeps it.
pub(crate) struct Queue {
    pub name: String,
    pub items: VecDeque<Vec<u8>>,
    pub registered: bool,
}

/// A callout answer, readable during `proxy_on_http_call_response`.
pub(crate) struct Answer {
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
}

/// Everything the fake host knows.
pub(crate) struct FakeState {
    pub current: u32,
    pub effective: Option<u32>,
    pub roots: Vec<u32>,
    pub streams: BTreeMap<u32, StreamState>,
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    pub log_level: LogLevel,
    pub logs: Vec<LogEntry>,
    pub calls: Vec<&'static str>,
    pub time_nanos: u64,
    pub tick_period_ms: u32,
    pub callouts: BTreeMap<u32, Callout>,
    pub next_token: u32,
    pub answer: Option<Answer>,
    pub status: (u32, Vec<u8>),
    pub shared: BTreeMap<Vec<u8>, (Vec<u8>, u32)>,
    pub next_cas: u32,
    pub queues: Vec<Queue>,
    pub ready_queues: Vec<u32>,
    pub metrics: Vec<Metric>,
    pub foreign: BTreeMap<String, Foreign>,
    /// The plugin's `on_done` returned `false`: it may call `proxy_done`.
    pub stopping: bool,
    /// It did.
    pub done: bool,
}

impl Default for FakeState {
    fn default() -> Self {
        FakeState {
            current: 0,
            effective: None,
            roots: Vec::new(),
            streams: BTreeMap::new(),
            properties: BTreeMap::new(),
            vm_configuration: Vec::new(),
            plugin_configuration: Vec::new(),
            log_level: LogLevel::Trace,
            logs: Vec::new(),
            calls: Vec::new(),
            time_nanos: 1_700_000_000_000_000_000,
            tick_period_ms: 0,
            callouts: BTreeMap::new(),
            next_token: 0,
            answer: None,
            status: (0, Vec::new()),
            shared: BTreeMap::new(),
            next_cas: 0,
            queues: Vec::new(),
            ready_queues: Vec::new(),
            metrics: Vec::new(),
            foreign: BTreeMap::new(),
            stopping: false,
            done: false,
        }
    }
}

impl FakeState {
    /// The context hostcalls act on: the effective one if set, else the current one.
    pub fn target(&self) -> u32 {
        self.effective.unwrap_or(self.current)
    }

    /// The stream hostcalls act on, if the target is a stream.
    pub fn stream(&mut self) -> Option<&mut StreamState> {
        let target = self.target();
        self.streams.get_mut(&target)
    }
}

thread_local! {
    static STATE: RefCell<FakeState> = RefCell::new(FakeState::default());
}

/// Runs `f` on this thread's fake state. Never call it re-entrantly (nothing in it calls the guest).
pub(crate) fn with<T>(f: impl FnOnce(&mut FakeState) -> T) -> T {
    STATE.with_borrow_mut(f)
}

/// Starts over with an empty fake host.
pub(crate) fn reset() {
    with(|state| *state = FakeState::default());
}

/// Lossy UTF-8.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `(name, value)` string pairs as the fake keeps them.
pub(crate) fn to_pairs(pairs: &[(&str, &str)]) -> Pairs {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec())).collect()
}

/// The fake's pairs as strings.
pub(crate) fn from_pairs(pairs: &Pairs) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| (name.clone(), lossy(value))).collect()
}
