//! The remote JWK Set: when to fetch it (first use, cache expiry, an unknown `kid` after a cooldown), and what
//! to keep (the last good set, whatever the issuer answers meanwhile).

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use weir_sdk::callout::{CallResult, HttpCall};

use crate::config::RemoteJwks;
use crate::keyset::KeySet;

/// The remote key set's state in one VM.
#[derive(Debug)]
pub struct Remote {
    /// Where it comes from.
    pub config: RemoteJwks,
    /// The last good set (empty until the first good fetch).
    pub keys: Rc<KeySet>,
    loaded_at: Option<SystemTime>,
    last_attempt: Option<SystemTime>,
    last_kid_fetch: Option<SystemTime>,
    in_flight_until: Option<SystemTime>,
}

impl Remote {
    /// A remote set not fetched yet.
    pub fn new(config: RemoteJwks) -> Remote {
        Remote {
            config,
            keys: Rc::new(KeySet::default()),
            loaded_at: None,
            last_attempt: None,
            last_kid_fetch: None,
            in_flight_until: None,
        }
    }

    fn cooldown(&self) -> Duration {
        Duration::from_secs(self.config.refetch_cooldown_seconds)
    }

    /// Whether a fetch is in flight (its answer settles the requests waiting for keys).
    pub fn fetching(&self, now: SystemTime) -> bool {
        self.in_flight(now)
    }

    fn in_flight(&self, now: SystemTime) -> bool {
        self.in_flight_until.is_some_and(|until| now < until)
    }

    fn cooled(&self, now: SystemTime) -> bool {
        self.since(self.last_attempt, now)
    }

    fn since(&self, at: Option<SystemTime>, now: SystemTime) -> bool {
        at.is_none_or(|at| now.duration_since(at).unwrap_or_default() >= self.cooldown())
    }

    /// Whether a good set was ever fetched.
    pub fn loaded(&self) -> bool {
        self.loaded_at.is_some()
    }

    /// Whether the timer should fetch now: never loaded (retried every cooldown), or the cache expired.
    pub fn refresh_due(&self, now: SystemTime) -> bool {
        if self.in_flight(now) {
            return false;
        }
        match self.loaded_at {
            None => self.cooled(now),
            Some(at) => {
                let age = now.duration_since(at).unwrap_or_default();
                age >= Duration::from_secs(self.config.cache_duration_seconds) && self.cooled(now)
            }
        }
    }

    /// Whether a request with an unknown `kid` may cause a fetch now: none in flight, and the cooldown passed
    /// since the last fetch an unknown `kid` caused (and since the last fetch, if none succeeded yet).
    pub fn refetch_allowed(&self, now: SystemTime) -> bool {
        !self.in_flight(now) && self.since(self.last_kid_fetch, now) && (self.loaded() || self.cooled(now))
    }

    /// Like [`start`](Remote::start), for a request with an unknown `kid` (starts that cooldown).
    pub fn start_for_kid(&mut self, now: SystemTime) -> HttpCall {
        self.last_kid_fetch = Some(now);
        self.start(now)
    }

    /// The fetch request; marks a fetch in flight.
    pub fn start(&mut self, now: SystemTime) -> HttpCall {
        let timeout = Duration::from_millis(self.config.fetch_timeout_ms);
        self.last_attempt = Some(now);
        self.in_flight_until = Some(now + timeout + Duration::from_secs(1));
        let call = HttpCall::get(&self.config.cluster, &self.config.path)
            .header("accept", "application/json")
            .timeout(timeout);
        match &self.config.authority {
            Some(authority) => call.authority(authority),
            None => call,
        }
    }

    /// The fetch could not be sent.
    pub fn abandon(&mut self) {
        self.in_flight_until = None;
    }

    /// Takes a fetch's answer: a good set replaces the old one; anything else keeps it. Returns the number of
    /// keys, or why the answer was not used.
    pub fn accept(&mut self, answer: CallResult, now: SystemTime) -> Result<usize, String> {
        self.in_flight_until = None;
        let answer = answer.map_err(|failed| format!("the JWKS fetch failed: {}", failed.message))?;
        if answer.status != 200 {
            return Err(format!("the JWKS endpoint answered {}", answer.status));
        }
        if answer.body.len() > self.config.max_jwks_bytes {
            return Err(format!("the JWKS is over {} bytes", self.config.max_jwks_bytes));
        }
        let (keys, skipped) = KeySet::from_jwks(&answer.body)?;
        for (index, why) in &skipped {
            log::info!("jwt-auth: JWKS key {index} left out: {why}");
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable key".into());
        }
        let count = keys.len();
        self.keys = Rc::new(keys);
        self.loaded_at = Some(now);
        Ok(count)
    }
}
