//! Callout mode: the translated request sent by callout, its answer translated into a local answer, sent in
//! place of the response to the request the gateway forwarded meanwhile.

use std::time::Duration;

use weir_sdk::callout::{CallResult, HttpCall};
use weir_sdk::prelude::*;

use super::{unix_nanos, AdapterRequest};
use crate::chunks::ChunkWriter;
use crate::errors::ApiError;
use crate::openai;
use crate::providers::{self, StreamDecoder};
use crate::sigv4;
use crate::Shared;

/// A local answer: status, headers, body.
pub(super) struct LocalAnswer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl LocalAnswer {
    pub(super) fn error(error: &ApiError, retry_after: Option<String>) -> LocalAnswer {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(r) = retry_after {
            headers.push(("retry-after", r));
        }
        LocalAnswer { status: error.status, headers, body: error.to_bytes() }
    }
}

impl AdapterRequest {
    pub(super) fn callout(&mut self, shared: &Shared, outgoing: providers::Outgoing, body: &Body) -> Action {
        let settings = &shared.settings;
        let cluster = match settings.cluster.clone().or_else(property::cluster_name) {
            Some(cluster) => cluster,
            None => {
                return self.reply(
                    &ApiError::upstream(500, "api_error", "provider-adapter: the route has no cluster to call"),
                    None,
                )
            }
        };
        let mut call = HttpCall::new(&cluster, "POST", &outgoing.path)
            .authority(&settings.host)
            .timeout(Duration::from_millis(settings.timeout_ms));
        for (name, value) in upstream_headers(settings, &outgoing) {
            call = call.header(&name, &value);
        }
        match call.body(outgoing.body).dispatch(|filter: &mut AdapterRequest, result| filter.answered(result)) {
            Ok(_) => {
                // Hold the request (its whole body, Envoy's StopIterationAndBuffer at the end of the stream)
                // until the callout answers; the answer replaces it. Emptied, in case a host forwards it anyway
                // (then its response headers are held until the callout's answer replaces them).
                body.replace(b"");
                Action::Pause
            }
            Err(status) => {
                let error = ApiError::upstream(
                    502,
                    "bad_gateway",
                    format!("provider-adapter: the callout to {cluster:?} could not start ({status:?})"),
                );
                self.reply(&error, None)
            }
        }
    }

    /// The callout's answer: translated, then sent as the local response: now while the request is held (or
    /// the forwarded request's response headers are), else when those response headers arrive.
    fn answered(&mut self, result: CallResult) {
        let Some(answer) = self.translate_answer(result) else { return };
        if self.waiting || !self.response_started {
            self.send(answer);
        } else {
            self.ready = Some(answer);
        }
    }

    pub(super) fn send(&mut self, answer: LocalAnswer) -> Action {
        self.local = true;
        let headers: Vec<(&str, &str)> = answer.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        http::send_response_with_details(answer.status, &headers, &answer.body, "provider_adapter")
    }

    fn translate_answer(&self, result: CallResult) -> Option<LocalAnswer> {
        let (Some(shared), Some(exchange)) = (self.shared.as_ref(), self.exchange.as_ref()) else { return None };
        let provider = shared.settings.provider;
        let response = match result {
            Ok(response) => response,
            Err(failed) => {
                let error = ApiError::upstream(
                    502,
                    "bad_gateway",
                    format!("the provider could not be reached ({})", failed.message),
                );
                return Some(LocalAnswer::error(&error, None));
            }
        };
        if !(200..300).contains(&response.status) {
            let error =
                providers::decode_error(provider, response.status, response.header("x-amzn-errortype"), &response.body);
            return Some(LocalAnswer::error(&error, response.header("retry-after").map(str::to_string)));
        }
        let a = &exchange.answer;
        if exchange.client_stream {
            // The provider streamed; the whole stream came at once: translate it the same way.
            let mut decoder = StreamDecoder::new(&shared.settings, a);
            let mut writer = ChunkWriter::new(a.id.clone(), a.created, a.model.clone(), exchange.include_usage);
            let mut out = Vec::new();
            for event in super::decode(&mut decoder, &response.body, true, &mut false, provider) {
                writer.write(event, &mut out);
            }
            writer.end(&mut out);
            let headers =
                vec![("content-type", "text/event-stream".to_string()), ("cache-control", "no-cache".to_string())];
            return Some(LocalAnswer { status: 200, headers, body: out });
        }
        Some(match providers::decode_response(provider, &response.body, a) {
            Ok(decoded) => LocalAnswer {
                status: 200,
                headers: vec![("content-type", "application/json".to_string())],
                body: openai::write_response(&decoded).to_string().into_bytes(),
            },
            Err(error) => LocalAnswer::error(&error, None),
        })
    }
}

/// The headers the translated request needs beside `:path`: the provider's static headers and its credentials
/// (a key header from the pool, or AWS SigV4 over `outgoing`'s path and body).
pub(super) fn upstream_headers(
    settings: &crate::config::Settings,
    outgoing: &providers::Outgoing,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = providers::static_headers(settings).into_iter().collect();
    if let Some(credentials) = &settings.aws {
        let date = sigv4::amz_date(unix_nanos() / 1_000_000_000);
        let hash = sigv4::sha256_hex(&outgoing.body);
        let (path, query) = outgoing.path.split_once('?').unwrap_or((&outgoing.path, ""));
        let mut signed: Vec<(&str, &str)> =
            vec![("host", &settings.host), ("x-amz-date", &date), ("x-amz-content-sha256", &hash)];
        if let Some(token) = &credentials.session_token {
            signed.push(("x-amz-security-token", token));
        }
        let signing = sigv4::Signing {
            method: "POST",
            path,
            query,
            headers: &signed,
            payload: &outgoing.body,
            region: &settings.region,
            service: "bedrock",
            amz_date: &date,
        };
        let authorization = sigv4::authorization(&signing, credentials);
        headers.extend(signed[1..].iter().map(|(n, v)| (n.to_string(), v.to_string())));
        headers.push(("authorization".into(), authorization));
    } else if let Some(key) = settings.keys.next() {
        let (name, value) = providers::key_header(settings.provider, key);
        headers.push((name.to_string(), value.to_string()));
    }
    headers
}
