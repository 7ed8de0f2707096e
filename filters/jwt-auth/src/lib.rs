//! The jwt-auth filter: verifies a JWS compact token (HS/RS/PS 256-512, ES256/384, EdDSA) found in a header, a
//! query parameter or a cookie, against inline JWKS, PEM keys or a remote JWKS fetched through a cluster;
//! checks its claims; passes chosen claims and the consumer upstream as headers; refuses with RFC 6750 answers
//! and a stable code per cause. `filters/jwt-auth/README.md` has the configuration and the codes.
//!
//! Files: [`config`] (the configuration), [`token`] (parsing and verification), [`keys`] / [`keyset`] (keys and
//! selection), [`claims`], [`source`] (where the token is), [`output`] (headers upstream), [`remote`] (the
//! remote JWKS cache), [`failure`] (causes and answers), [`metrics`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use weir_sdk::callout::{CallResult, Token};
use weir_sdk::context;
use weir_sdk::http::HeaderSnapshot;
use weir_sdk::prelude::*;

pub mod alg;
pub mod b64;
pub mod cache;
pub mod claims;
pub mod config;
pub mod failure;
pub mod json;
pub mod keys;
pub mod keyset;
pub mod metrics;
pub mod output;
pub mod remote;
pub mod source;
pub mod token;
pub mod verified;

use cache::TokenCache;
use config::Config;
use failure::Failure;
use keys::Key;
use keyset::KeySet;
use remote::Remote;
use verified::Verified;

/// What one configuration shares with its requests.
struct Shared {
    config: Config,
    rules: claims::Rules,
    static_keys: KeySet,
    remote: RefCell<Option<Remote>>,
    metrics: metrics::Metrics,
    scopes: String,
    /// Requests paused until the JWKS fetch in flight answers.
    waiting: RefCell<Vec<Waiter>>,
    /// Tokens verified with the current keys.
    cache: RefCell<TokenCache<Verified>>,
}

/// A request waiting for keys: its stream, token, the token's source and the headers.
struct Waiter {
    stream: ContextId,
    token: String,
    source: usize,
    all: HeaderSnapshot,
}

/// The plugin: one per attachment and VM.
#[derive(Default)]
pub struct JwtAuth {
    shared: Option<Rc<Shared>>,
    fetch: Option<Token>,
}

fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The static keys of `config`: its inline JWKS and PEM keys.
fn static_keys(config: &Config) -> Result<KeySet, String> {
    let mut keys: Vec<Key> = Vec::new();
    if let Some(jwks) = &config.jwks {
        let text = match jwks {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let (set, skipped) = KeySet::from_jwks(text.as_bytes()).map_err(|e| format!("`jwks`: {e}"))?;
        if let Some((index, why)) = skipped.first() {
            return Err(format!("`jwks.keys[{index}]`: {why}"));
        }
        keys.extend(set.into_keys());
    }
    for (index, pem) in config.keys.iter().enumerate() {
        let alg = alg::Algorithm::parse(&pem.alg).ok_or_else(|| format!("`keys[{index}].alg` is not supported"))?;
        keys.push(Key::from_pem(pem.kid.clone(), alg, &pem.pem).map_err(|e| format!("`keys[{index}]`: {e}"))?);
    }
    Ok(KeySet::new(keys))
}

impl Plugin for JwtAuth {
    type Config = Config;
    type Filter = JwtRequest;

    fn on_configure(&mut self, mut config: Config) -> bool {
        if let Err(why) = config.check() {
            log::error!("jwt-auth: invalid configuration: {why}");
            return false;
        }
        let static_keys = match static_keys(&config) {
            Ok(keys) => keys,
            Err(why) => {
                log::error!("jwt-auth: invalid configuration: {why}");
                return false;
            }
        };
        let remote = config.remote_jwks.clone().map(Remote::new);
        let cache = TokenCache::new(config.token_cache.max_entries, config.token_cache.max_bytes);
        let shared = Shared {
            rules: claims::Rules::from_config(&config),
            scopes: config.required_scopes.join(" "),
            config,
            static_keys,
            remote: RefCell::new(remote),
            metrics: metrics::Metrics::define(),
            waiting: RefCell::new(Vec::new()),
            cache: RefCell::new(cache),
        };
        if let Some(remote) = shared.remote.borrow().as_ref() {
            let seconds = remote.config.cache_duration_seconds.min(remote.config.refetch_cooldown_seconds).clamp(1, 10);
            time::set_tick_period(Duration::from_secs(seconds));
        }
        self.shared = Some(Rc::new(shared));
        self.fetch = None;
        self.on_tick();
        // Weir skips what this filter never uses (docs/filters.md): it reads and changes the request headers in
        // their own callback, or while the request waits paused for a key fetch, and nothing else.
        http::declare_stream_needs(&weir_sdk::abi::StreamNeeds::HEADERS_ONLY);
        true
    }

    fn create_filter(&mut self, stream: ContextId) -> JwtRequest {
        JwtRequest { shared: self.shared.clone(), stream }
    }

    fn on_tick(&mut self) {
        let Some(shared) = &self.shared else { return };
        let now = time::now();
        // Waiters whose fetch answer was lost (the stream that sent it ended) are settled here.
        let stale = shared.remote.borrow().as_ref().is_some_and(|r| !r.fetching(now));
        if stale && !shared.waiting.borrow().is_empty() {
            shared.settle();
        }
        let mut remote = shared.remote.borrow_mut();
        let Some(remote) = remote.as_mut() else { return };
        if !remote.refresh_due(now) {
            return;
        }
        match remote.start(now).send() {
            Ok(token) => self.fetch = Some(token),
            Err(status) => {
                remote.abandon();
                shared.metrics.fetch(false);
                log::warn!("jwt-auth: cannot fetch the JWKS from cluster {:?}: {status:?}", remote.config.cluster);
            }
        }
    }

    fn on_http_call_response(&mut self, token: Token, answer: CallResult) {
        if self.fetch != Some(token) {
            return;
        }
        self.fetch = None;
        if let Some(shared) = &self.shared {
            shared.accept(answer);
        }
    }
}

impl Shared {
    /// Takes a JWKS fetch's answer, then settles the requests that waited for it.
    fn accept(&self, answer: CallResult) {
        let result = match self.remote.borrow_mut().as_mut() {
            Some(remote) => remote.accept(answer, time::now()),
            None => return,
        };
        match result {
            Ok(count) => {
                self.metrics.fetch(true);
                log::debug!("jwt-auth: JWKS fetched, {count} keys");
            }
            Err(why) => {
                self.metrics.fetch(false);
                log::warn!("jwt-auth: {why}; keeping the last good key set");
            }
        }
        self.settle();
    }

    /// Verifies the waiting requests with the keys there are now, and resumes or refuses each.
    fn settle(&self) {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for waiter in waiting {
            if context::set_effective(waiter.stream).is_err() {
                continue;
            }
            match self.verify(&waiter.token).map_err(|failure| self.no_keys_yet(failure)) {
                Ok(verified) => {
                    self.admit(&verified, waiter.source, &waiter.all);
                    http::resume_request();
                }
                Err(failure) => _ = self.refuse(failure),
            }
        }
    }

    /// Verifies `token` with every key this configuration has now (or finds it verified with them before), then
    /// checks its claims now.
    fn verify(&self, token: &str) -> Result<Rc<Verified>, Failure> {
        let remote = self.remote.borrow().as_ref().map(|r| Rc::clone(&r.keys));
        let now = unix_seconds(time::now());
        let mut cache = self.cache.borrow_mut();
        cache.keys_are(remote.as_ref());
        if let Some(verified) = cache.get(token) {
            self.metrics.cache_hit();
            let checked = verified.check(now);
            if checked == Err(Failure::TokenExpired) {
                cache.remove(token);
            }
            return checked.map(|()| verified);
        }
        let mut sets = vec![&self.static_keys];
        if let Some(remote) = &remote {
            sets.push(remote);
        }
        let signed = token::verify_signature(token, self.config.max_token_bytes, &sets)?;
        let verified = Rc::new(Verified::new(&signed.claims, &self.rules, &self.config));
        let checked = verified.check(now);
        if checked != Err(Failure::TokenExpired) {
            cache.insert(token, Rc::clone(&verified), signed.payload_bytes);
        }
        checked.map(|()| verified)
    }

    /// A verified request: the consumer, claim headers, the token removed if so configured.
    fn admit(&self, verified: &Verified, source: usize, all: &HeaderSnapshot) {
        let headers = http::request_headers();
        let consumer =
            self.config.consumer.as_ref().zip(verified.consumer()).map(|(c, name)| (c.header.as_str(), name));
        output::apply(headers, verified.headers(), consumer);
        if !self.config.forward_token {
            if let Some(source) = self.config.from.get(source) {
                source::remove(source, headers, all);
            }
        }
        self.metrics.success();
    }

    /// Answers the request with `failure`.
    fn refuse(&self, failure: Failure) -> Action {
        self.metrics.failure(failure);
        log::debug!("jwt-auth: refused: {}", failure.code());
        let challenge = failure.www_authenticate(&self.config.realm, &self.scopes);
        let mut headers = vec![("content-type", "application/json"), ("cache-control", "no-store")];
        if let Some(challenge) = &challenge {
            headers.push(("www-authenticate", challenge));
        }
        let details = format!("jwt_auth_{}", failure.code());
        http::send_response_with_details(failure.status(), &headers, &failure.body(), &details)
    }
}

/// One request.
pub struct JwtRequest {
    shared: Option<Rc<Shared>>,
    stream: ContextId,
}

impl Shared {
    /// An unknown `kid` while no key exists at all is the keys' fault, not the token's.
    fn no_keys_yet(&self, failure: Failure) -> Failure {
        let loaded = self.remote.borrow().as_ref().is_none_or(Remote::loaded);
        if failure == Failure::KidUnknown && !loaded && self.static_keys.is_empty() {
            Failure::JwksUnavailable
        } else {
            failure
        }
    }
}

impl HttpFilter for JwtRequest {
    fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return http::send_response(503, &[], b"");
        };
        let all = headers.snapshot();
        for output in shared.config.output_headers() {
            if all.contains(output) {
                headers.remove(output);
            }
        }
        let found = match source::find(&shared.config.from, &all) {
            Ok(Some(found)) => found,
            Ok(None) => return shared.refuse(Failure::TokenMissing),
            Err(failure) => return shared.refuse(failure),
        };
        match shared.verify(found.token) {
            Ok(verified) => {
                shared.admit(&verified, found.source, &all);
                Action::Continue
            }
            Err(Failure::KidUnknown) => {
                // Wait for the fetch in flight, or start one (at most one per cooldown), or refuse.
                let now = time::now();
                let call = match shared.remote.borrow_mut().as_mut() {
                    Some(remote) if remote.fetching(now) => Ok(None),
                    Some(remote) if remote.refetch_allowed(now) => Ok(Some(remote.start_for_kid(now))),
                    _ => Err(()),
                };
                let Ok(call) = call else { return shared.refuse(shared.no_keys_yet(Failure::KidUnknown)) };
                if let Some(call) = call {
                    let sent = call.dispatch(|me: &mut JwtRequest, answer: CallResult| {
                        if let Some(shared) = me.shared.clone() {
                            shared.accept(answer);
                        }
                    });
                    if let Err(status) = sent {
                        if let Some(remote) = shared.remote.borrow_mut().as_mut() {
                            remote.abandon();
                        }
                        log::warn!("jwt-auth: cannot fetch the JWKS: {status:?}");
                        return shared.refuse(shared.no_keys_yet(Failure::KidUnknown));
                    }
                }
                let (token, source) = (found.token.to_owned(), found.source);
                shared.waiting.borrow_mut().push(Waiter { stream: self.stream, token, source, all });
                Action::Pause
            }
            Err(failure) => shared.refuse(failure),
        }
    }
}

weir_sdk::filter!(JwtAuth);

#[cfg(test)]
mod tests;
