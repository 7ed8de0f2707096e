//! Load-balancing policies: which endpoint of a cluster gets the next request.
//!
//! Each worker has its own balancer per cluster, so the state here is only touched by one thread;
//! relaxed atomics keep the types `Sync` at no real cost.

use crate::config::{Endpoint, HashKey, LbPolicy};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Virtual nodes on the hash ring per unit of weight.
const RING_POINTS_PER_WEIGHT: usize = 64;

/// What a policy may look at to choose.
pub struct Pick<'a> {
    /// The client's address.
    pub client_ip: IpAddr,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
}

/// A per-worker balancer over a fixed endpoint list.
#[derive(Debug)]
pub struct Balancer {
    policy: Policy,
    in_flight: Arc<[AtomicUsize]>,
    weights: Vec<u32>,
    cursor: AtomicUsize,
}

#[derive(Debug)]
enum Policy {
    /// Indices in smooth weighted round-robin order, cycled through.
    RoundRobin(Vec<usize>),
    LeastRequest,
    /// Sorted (point, endpoint) pairs.
    Hash(HashKey, Vec<(u64, usize)>),
}

impl Balancer {
    /// Builds the balancer for `endpoints` (not empty: config validation guarantees it).
    pub fn new(policy: &LbPolicy, endpoints: &[Endpoint]) -> Balancer {
        let weights: Vec<u32> = endpoints.iter().map(|e| e.weight.max(1)).collect();
        let policy = match policy {
            LbPolicy::RoundRobin => Policy::RoundRobin(smooth_wrr_schedule(&weights)),
            LbPolicy::LeastRequest => Policy::LeastRequest,
            LbPolicy::ConsistentHash(key) => Policy::Hash(key.clone(), ring(endpoints)),
        };
        Balancer {
            policy,
            in_flight: endpoints.iter().map(|_| AtomicUsize::new(0)).collect(),
            weights,
            cursor: AtomicUsize::new(0),
        }
    }

    /// Chooses an endpoint and counts a request in flight on it until the guard is dropped.
    pub fn pick(&self, req: &Pick<'_>) -> InFlight {
        let index = match &self.policy {
            Policy::RoundRobin(schedule) => schedule[self.next() % schedule.len()],
            Policy::LeastRequest => self.least_request(),
            Policy::Hash(key, ring) => match hash_input(key, req) {
                Some(h) => ring_lookup(ring, h),
                None => self.next() % self.weights.len(),
            },
        };
        self.in_flight[index].fetch_add(1, Relaxed);
        InFlight { counters: self.in_flight.clone(), index }
    }

    fn next(&self) -> usize {
        self.cursor.fetch_add(1, Relaxed)
    }

    /// Fewest in flight relative to weight; ties are broken by a rotating start so equal endpoints
    /// share the load.
    fn least_request(&self) -> usize {
        let n = self.weights.len();
        let start = self.next() % n;
        let mut best = start;
        for offset in 0..n {
            let i = (start + offset) % n;
            // a/wa < b/wb  <=>  a*wb < b*wa
            let load = |j: usize| self.in_flight[j].load(Relaxed) as u64;
            if load(i) * u64::from(self.weights[best]) < load(best) * u64::from(self.weights[i]) {
                best = i;
            }
        }
        best
    }

    /// Requests in flight per endpoint (for tests and metrics).
    pub fn in_flight(&self) -> Vec<usize> {
        self.in_flight.iter().map(|c| c.load(Relaxed)).collect()
    }
}

/// One request in flight on an endpoint; dropping it (when the response body ends) ends the count.
#[derive(Debug)]
pub struct InFlight {
    counters: Arc<[AtomicUsize]>,
    index: usize,
}

impl InFlight {
    /// The chosen endpoint's position in the cluster.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counters[self.index].fetch_sub(1, Relaxed);
    }
}

/// nginx's smooth weighted round robin, unrolled once over the sum of the weights: weights 5,1,1 give
/// a,a,b,a,c,a,a rather than a,a,a,a,a,b,c.
fn smooth_wrr_schedule(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let (best, _) = current.iter().enumerate().max_by_key(|(i, c)| (**c, -(*i as i64))).unwrap_or((0, &0));
        current[best] -= total;
        schedule.push(best);
    }
    schedule
}

fn stable_hash(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: the same key lands on the same endpoint on every worker.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x5745_4952, 0x6861_7368);
    bytes.hash(&mut h);
    h.finish()
}

fn ring(endpoints: &[Endpoint]) -> Vec<(u64, usize)> {
    let mut ring = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        for v in 0..RING_POINTS_PER_WEIGHT * e.weight.max(1) as usize {
            ring.push((stable_hash(format!("{}#{v}", e.address).as_bytes()), i));
        }
    }
    ring.sort_unstable();
    ring
}

fn ring_lookup(ring: &[(u64, usize)], h: u64) -> usize {
    let at = ring.partition_point(|(p, _)| *p < h);
    ring[at % ring.len()].1
}

fn hash_input(key: &HashKey, req: &Pick<'_>) -> Option<u64> {
    match key {
        HashKey::ClientIp => Some(match req.client_ip {
            IpAddr::V4(a) => stable_hash(&a.octets()),
            IpAddr::V6(a) => stable_hash(&a.octets()),
        }),
        HashKey::Header(name) => req.headers.get(name.as_str()).map(|v| stable_hash(v.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(weights: &[u32]) -> Vec<Endpoint> {
        weights.iter().enumerate().map(|(i, w)| Endpoint { address: format!("10.0.0.{i}:80"), weight: *w }).collect()
    }

    fn pick(b: &Balancer, headers: &http::HeaderMap, ip: &str) -> InFlight {
        b.pick(&Pick { client_ip: ip.parse().unwrap(), headers })
    }

    #[test]
    fn smooth_wrr_table() {
        for (weights, want) in [
            (vec![1], vec![0]),
            (vec![1, 1, 1], vec![0, 1, 2]),
            (vec![5, 1, 1], vec![0, 0, 1, 0, 2, 0, 0]),
            (vec![2, 1], vec![0, 1, 0]),
        ] {
            assert_eq!(smooth_wrr_schedule(&weights), want, "weights {weights:?}");
        }
    }

    #[test]
    fn round_robin_follows_weights() {
        let b = Balancer::new(&LbPolicy::RoundRobin, &endpoints(&[3, 1]));
        let h = http::HeaderMap::new();
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[pick(&b, &h, "127.0.0.1").index()] += 1;
        }
        assert_eq!(counts, [300, 100]);
    }

    #[test]
    fn least_request_avoids_busy_endpoints() {
        let b = Balancer::new(&LbPolicy::LeastRequest, &endpoints(&[1, 1, 1]));
        let h = http::HeaderMap::new();
        let held: Vec<InFlight> = (0..3).map(|_| pick(&b, &h, "127.0.0.1")).collect();
        let mut seen: Vec<usize> = held.iter().map(InFlight::index).collect();
        seen.sort();
        assert_eq!(seen, [0, 1, 2], "three picks with nothing in flight spread over all endpoints");
        drop(held);
        let keep = pick(&b, &h, "127.0.0.1");
        let a = pick(&b, &h, "127.0.0.1");
        assert_ne!(a.index(), keep.index());
        assert_eq!(b.in_flight().iter().sum::<usize>(), 2);
    }

    #[test]
    fn consistent_hash_is_sticky_and_spreads() {
        let key = HashKey::Header("x-user".into());
        let b = Balancer::new(&LbPolicy::ConsistentHash(key.clone()), &endpoints(&[1, 1, 1]));
        let mut hits = [0; 3];
        for user in 0..300 {
            let mut h = http::HeaderMap::new();
            h.insert("x-user", user.to_string().parse().unwrap());
            let first = pick(&b, &h, "127.0.0.1").index();
            for _ in 0..3 {
                assert_eq!(pick(&b, &h, "127.0.0.2").index(), first, "user {user} moved");
            }
            hits[first] += 1;
        }
        assert!(hits.iter().all(|n| *n > 50), "uneven spread {hits:?}");
        // Removing an endpoint moves only the keys that were on it.
        let smaller = Balancer::new(&LbPolicy::ConsistentHash(key), &endpoints(&[1, 1]));
        for user in 0..300 {
            let mut h = http::HeaderMap::new();
            h.insert("x-user", user.to_string().parse().unwrap());
            let before = pick(&b, &h, "127.0.0.1").index();
            if before < 2 {
                assert_eq!(pick(&smaller, &h, "127.0.0.1").index(), before, "user {user} moved needlessly");
            }
        }
    }

    #[test]
    fn client_ip_hash_is_sticky() {
        let b = Balancer::new(&LbPolicy::ConsistentHash(HashKey::ClientIp), &endpoints(&[1, 1, 1, 1]));
        let h = http::HeaderMap::new();
        for last in 1..50 {
            let ip = format!("192.0.2.{last}");
            let first = pick(&b, &h, &ip).index();
            assert_eq!(pick(&b, &h, &ip).index(), first);
        }
    }
}
