//! Bounds on the size of the request's futures. hyper moves the handler's future whole into its connection
//! state once per request, and every `Box::pin` of a step copies that step's future: a future that grows
//! by kilobytes (an inline filter phase, a value stored twice by an async fn's arguments) costs every
//! request a memcpy of that size. docs/benchmarks.md ("Future sizes") has the figures; these tests keep them.

use super::{Completion, ConnInfo, Pipeline, RequestBody, ResponseBody};
use http::{Request, Response};
use std::future::Future;

fn future_size<'a, Fut: Future>(_: impl FnOnce(&'a Pipeline, ConnInfo, Request<RequestBody>) -> Fut) -> usize {
    std::mem::size_of::<Fut>()
}

/// What the bound is checked against, with its size, printed on failure.
#[test]
fn request_futures_stay_small() {
    let handle = future_size(Pipeline::handle);
    let record = std::mem::size_of::<Completion>();
    let body = std::mem::size_of::<ResponseBody>();
    let response = std::mem::size_of::<Response<ResponseBody>>();
    println!("handle {handle} B, completion {record} B, response body {body} B, response {response} B");
    // Measured (rustc 1.95): handle 5,472 bytes (plain proxying's forward inline), down from 10,320 when the
    // filter phases and the 480-byte record were inline; the response body 296 bytes, down from 768.
    assert!(handle <= 8 * 1024, "Pipeline::handle's future is {handle} bytes: box the step that grew it");
    assert_eq!(record, std::mem::size_of::<usize>(), "the completion record is boxed");
    assert!(body <= 512, "the response body is {body} bytes");
}
