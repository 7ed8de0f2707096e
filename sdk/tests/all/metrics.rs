//! Metrics: counters, gauges and histograms.

use weir_sdk::prelude::*;

use super::{scripted, Phase};

#[test]
fn each_kind_updates_its_value() {
    let mut host = scripted(|phase| {
        if let Phase::RequestHeaders(..) = phase {
            let requests = Counter::define("requests").unwrap();
            assert_eq!(Counter::define("requests"), Ok(requests), "the same name is the same counter");
            requests.increment(2);
            requests.increment(0);
            requests.increment(1);
            assert_eq!(requests.value(), Some(3));

            let in_flight = Gauge::define("in_flight").unwrap();
            in_flight.set(5);
            in_flight.add(-7);
            assert_eq!(in_flight.value(), Some(-2));

            let sizes = Histogram::define("sizes").unwrap();
            sizes.record(10);
            sizes.record(20);
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[], true);
    assert_eq!(host.metric("requests"), Some(3));
    assert_eq!(host.metric("in_flight"), Some(-2));
    assert_eq!(host.histogram("sizes"), [10, 20]);
    assert_eq!(host.metric("sizes"), None, "histograms have no single value");
    assert_eq!(host.metric("nope"), None);
    assert!(!host.logged("failed"), "{:?}", host.logs());
    let increments = host.calls().iter().filter(|c| **c == "proxy_increment_metric").count();
    assert_eq!(increments, 3, "zero increments are not sent");
}
