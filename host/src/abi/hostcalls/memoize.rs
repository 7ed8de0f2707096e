//! The foreign function `weir.memoize_response`: a filter declares that the local response it sends from
//! `on_request_headers` answers every request that agrees on the inputs it names ([`MemoSpec`]). The values
//! are recorded here, from the acting stream's request headers, the request's set properties and shared data,
//! into a [`MemoDraft`] the stream keeps; the chain files it once the callback has sent its local response.
//!
//! `BAD_ARGUMENT`: arguments that are not a [`MemoSpec`], more than [`MAX_INPUTS`] inputs, a name no header can
//! have, a property that names an Envoy attribute, a counter id that is not a counter, or a call outside a
//! request headers callback.

use crate::abi::hostcalls::properties::is_attribute_name;
use crate::abi::memo::{Input, MemoDraft, DEFAULT_REVALIDATE, MAX_INPUTS, MAX_REVALIDATE};
use crate::abi::state::VmState;
use crate::abi::stream::Phase;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use weir_sdk::abi::{MemoSpec, Status};

/// Records the declaration in `args` on the acting stream.
pub(super) fn record(state: &mut VmState, args: &[u8]) -> Result<(), Status> {
    let spec: MemoSpec = serde_json::from_slice(args).map_err(|_| Status::BadArgument)?;
    if spec.headers.len() + spec.properties.len() + spec.shared_data.len() > MAX_INPUTS {
        return Err(Status::BadArgument);
    }
    let host = state.host.clone();
    let vm_id = state.vm_id.clone();
    let module = state.identity.module.clone();
    let counters = spec
        .counters
        .iter()
        .map(|&(id, delta)| Ok((host.filter_metrics.counter(id).map_err(|_| Status::BadArgument)?, delta)))
        .collect::<Result<Vec<_>, Status>>()?;
    if spec.properties.iter().any(|name| is_attribute_name(name.as_bytes())) {
        return Err(Status::BadArgument);
    }
    let inputs = spec
        .headers
        .iter()
        .map(|name| Input::parse(name).ok_or(Status::BadArgument))
        .collect::<Result<Vec<_>, Status>>()?;
    let stream = state.acting_stream().ok_or(Status::BadArgument)?;
    if stream.phase != Phase::RequestHeaders {
        return Err(Status::BadArgument);
    }
    let route = stream.info.as_ref().map_or_else(|| "".into(), |info| info.route.clone());
    let inputs = inputs
        .into_iter()
        .map(|input| {
            let values = input.values(&stream.request_headers);
            (input, values)
        })
        .collect();
    let properties =
        spec.properties.iter().map(|name| (name.as_bytes().to_vec(), stream.property(name.as_bytes()))).collect();
    let shared_data =
        spec.shared_data.iter().map(|key| (key.as_bytes().to_vec(), host.data.cas(&vm_id, key.as_bytes()))).collect();
    let (now, wall) = (Instant::now(), SystemTime::now());
    let since_epoch = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    let left = since_epoch(spec.expires_unix_ms).duration_since(wall).unwrap_or_default();
    let revalidate = spec.revalidate_ms.map_or(DEFAULT_REVALIDATE, Duration::from_millis).min(MAX_REVALIDATE);
    let age = spec.age.map(|age| {
        let elapsed = wall.duration_since(since_epoch(age.origin_unix_ms)).unwrap_or_default();
        (age.header.to_ascii_lowercase().into_bytes(), now.checked_sub(elapsed).unwrap_or(now))
    });
    let answers = host.metrics.filter_memo_answers(&module, &route);
    stream.memo = Some(Box::new(MemoDraft {
        inputs,
        properties,
        host,
        vm_id,
        shared_data,
        until: now + left.min(revalidate),
        age,
        counters,
        answers,
    }));
    Ok(())
}
