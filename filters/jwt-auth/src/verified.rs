//! A token whose signature verified, as one configuration uses it: its claims judged once ([`Prepared`]: every
//! check but the time), the consumer and the claim headers rendered once. A cached token then costs a time
//! comparison and the header writes on each use, not a walk over its claims.

use serde_json::{Map, Value};

use crate::claims::{self, Prepared, Rules};
use crate::config::Config;
use crate::failure::Failure;
use crate::output;

/// What a verified token yields under one configuration.
#[derive(Debug)]
pub struct Verified {
    prepared: Prepared,
    /// The consumer's name when the configuration names a consumer claim: `Err` when the token lacks it.
    consumer: Option<Result<String, Failure>>,
    /// `(header, value)` for each `claims_to_headers` entry whose claim renders as a header value.
    headers: Vec<(String, String)>,
}

impl Verified {
    /// Judges `claims` by `rules` and renders what `config` sends upstream.
    pub fn new(claims: &Map<String, Value>, rules: &Rules, config: &Config) -> Verified {
        let consumer = config
            .consumer
            .as_ref()
            .map(|consumer| output::header_value(claims::lookup(claims, &consumer.claim)).ok_or(Failure::ClaimMissing));
        let headers = config
            .claims_to_headers
            .iter()
            .filter_map(|out| Some((out.header.clone(), output::header_value(claims::lookup(claims, &out.claim))?)))
            .collect();
        Verified { prepared: rules.prepare(claims), consumer, headers }
    }

    /// Whether the token passes at `now` (Unix seconds): its claims, then the consumer claim.
    pub fn check(&self, now: i64) -> Result<(), Failure> {
        self.prepared.at(now)?;
        match &self.consumer {
            Some(Err(failure)) => Err(*failure),
            _ => Ok(()),
        }
    }

    /// The consumer's name (after a successful [`check`](Verified::check), when one is configured).
    pub fn consumer(&self) -> Option<&str> {
        self.consumer.as_ref().and_then(|c| c.as_ref().ok()).map(String::as_str)
    }

    /// The claim headers to set.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(header, value)| (header.as_str(), value.as_str()))
    }
}
