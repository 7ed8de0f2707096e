//! Spreading a listener's connections evenly over the workers.
//!
//! The kernel hashes each new connection to one worker's `SO_REUSEPORT` socket; with few connections the split
//! is uneven (32 connections on 2 workers came out 19 to 13 in a benchmark run, one worker serving 40% more
//! requests than the other while it had a core's worth of work: docs/benchmarks.md). A worker that accepts a
//! connection while it has more connections open on that listener than the least loaded worker hands the
//! connection, before reading from it, to that worker, as Envoy's `exact_balance` does: no worker has more than
//! one connection more than another. A request still never changes threads; only a connection that has not been
//! read from does, once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One listener's open connections per worker, and a way to hand a connection to each worker.
pub struct Balancer {
    open: Box<[AtomicUsize]>,
    inboxes: Box<[mpsc::UnboundedSender<Handoff>]>,
}

/// A connection handed to another worker, counted there already.
pub struct Handoff {
    /// The accepted connection, not read from.
    pub stream: std::net::TcpStream,
    /// Its peer.
    pub client: SocketAddr,
    /// Its place in the receiving worker's count.
    pub open: Open,
}

/// A connection counted as open on one worker until it is dropped.
pub struct Open {
    balancer: Arc<Balancer>,
    worker: usize,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.balancer.open[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Balancer {
    /// A balancer for `workers` workers, and each worker's inbox of handed connections.
    pub fn new(workers: usize) -> (Arc<Balancer>, Vec<mpsc::UnboundedReceiver<Handoff>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let open = (0..workers).map(|_| AtomicUsize::new(0)).collect();
        (Arc::new(Balancer { open, inboxes: senders.into() }), receivers)
    }

    /// Counts a connection as open on `worker`.
    pub fn enter(self: &Arc<Self>, worker: usize) -> Open {
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        Open { balancer: self.clone(), worker }
    }

    /// The worker that should serve a connection `me` just accepted: `me`, unless another worker has fewer
    /// connections open (then the one with the fewest).
    pub fn place(&self, me: usize) -> usize {
        let mine = self.open[me].load(Ordering::Relaxed);
        let (least, fewest) = self
            .open
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .enumerate()
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        if mine > fewest {
            least
        } else {
            me
        }
    }

    /// Hands `stream` to worker `to` (counted there at once, so the next placement sees it); gives it back when
    /// that worker no longer takes connections (it is shutting down).
    pub fn hand_off(
        self: &Arc<Self>,
        to: usize,
        stream: std::net::TcpStream,
        client: SocketAddr,
    ) -> Result<(), std::net::TcpStream> {
        let open = self.enter(to);
        self.inboxes[to].send(Handoff { stream, client, open }).map_err(|refused| refused.0.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_least_loaded_worker() {
        // (open connections per worker, the worker that accepted, where the connection goes)
        let cases: [(&[usize], usize, usize); 7] = [
            (&[0, 0], 0, 0),
            (&[1, 1], 1, 1),
            (&[1, 0], 0, 1),
            (&[1, 0], 1, 1),
            (&[5, 3, 4], 0, 1),
            (&[3, 5, 4], 1, 0),
            (&[4, 4, 4], 2, 2),
        ];
        for (open, me, want) in cases {
            let (balancer, _inboxes) = Balancer::new(open.len());
            let held: Vec<Open> =
                open.iter().enumerate().flat_map(|(w, &n)| (0..n).map(move |_| w)).map(|w| balancer.enter(w)).collect();
            assert_eq!(balancer.place(me), want, "{open:?}, accepted by {me}");
            drop(held);
            assert_eq!(balancer.place(me), me, "{open:?}: counts fall as connections close");
        }
    }

    #[test]
    fn a_handed_connection_is_counted_at_once_and_given_back_when_refused() -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (balancer, mut inboxes) = Balancer::new(2);
        let _client = std::net::TcpStream::connect(addr)?;
        let (stream, client) = listener.accept()?;
        assert!(balancer.hand_off(1, stream, client).is_ok());
        let _mine = balancer.enter(0);
        assert_eq!(balancer.place(0), 0, "1 against 1 (the one in flight): stays");
        let handed = inboxes[1].try_recv().expect("in worker 1's inbox");
        assert_eq!(handed.client, client);
        drop(handed);
        assert_eq!(balancer.place(0), 1, "1 against 0 once it closed");
        inboxes.truncate(1); // worker 1 stopped
        let _client = std::net::TcpStream::connect(addr)?;
        let (stream, client) = listener.accept()?;
        assert!(balancer.hand_off(1, stream, client).is_err(), "given back to serve");
        assert_eq!(balancer.place(0), 1, "not counted on worker 1");
        Ok(())
    }
}
