//! Active health checks: one thread per checked cluster (with a small runtime of its own, so checks never
//! compete with a worker's requests and stop with the cluster's state), probing each endpoint every
//! `interval` with `GET path` on a fresh connection and feeding the results to [`ClusterState::record_check`].

use super::health::ClusterState;
use super::pool::{probe, Connector};
use super::TlsConfigs;
use crate::config;
use std::sync::{Arc, Weak};

/// Starts checking `cfg`'s endpoints for `state`; the thread ends once `state` is dropped.
pub fn start(state: &Arc<ClusterState>, cfg: &config::Cluster, hc: config::HealthCheck, tls: &TlsConfigs) {
    let weak: Weak<ClusterState> = Arc::downgrade(state);
    let connector = Connector::for_cluster(cfg, tls);
    let name = format!("weir-health-{}", cfg.name);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "health checks cannot start: no runtime");
                return;
            }
        };
        runtime.block_on(run(weak, connector, hc));
    });
    if let Err(e) = spawned {
        tracing::error!(cluster = %cfg.name, error = %e, "health checks cannot start: no thread");
    }
}

async fn run(state: Weak<ClusterState>, connector: Connector, hc: config::HealthCheck) {
    let addresses: Vec<Arc<str>> = match state.upgrade() {
        Some(s) => s.endpoints.iter().map(|e| e.address.clone()).collect(),
        None => return,
    };
    let mut ticker = tokio::time::interval(hc.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Every endpoint at once, so one slow endpoint does not delay the others' verdicts.
        let probes = addresses.iter().map(|address| {
            let host = hc.host.as_deref().unwrap_or(address);
            probe(address, &connector, &hc.path, host, hc.timeout)
        });
        let results = join_all(probes).await;
        let Some(state) = state.upgrade() else { return };
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(status) if hc.expects(status) => state.record_check(i, true, &hc, ""),
                Ok(status) => state.record_check(i, false, &hc, &format!("status {status}")),
                Err(detail) => state.record_check(i, false, &hc, &detail),
            }
        }
    }
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in set.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
