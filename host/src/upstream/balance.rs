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
        let index = self.choose(req, &|_| true).unwrap_or(0);
        self.count(index)
    }

    /// Chooses among the endpoints `usable` accepts, as the policy would among all (the next usable one in
    /// round-robin order, the least loaded usable one, the next usable point on the hash ring); `None` when it
    /// accepts none.
    pub fn pick_usable(&self, req: &Pick<'_>, usable: &dyn Fn(usize) -> bool) -> Option<InFlight> {
        self.choose(req, usable).map(|i| self.count(i))
    }

    fn count(&self, index: usize) -> InFlight {
        self.in_flight[index].fetch_add(1, Relaxed);
        InFlight { counters: self.in_flight.clone(), index }
    }

    fn choose(&self, req: &Pick<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        match &self.policy {
            // Each skipped place uses up its turn, so the usable endpoints share the load evenly.
            Policy::RoundRobin(schedule) => {
                (0..schedule.len()).map(|_| schedule[self.next() % schedule.len()]).find(|i| usable(*i))
            }
            Policy::LeastRequest => self.least_request(usable),
            Policy::Hash(key, ring) => match hash_input(key, req) {
                Some(h) => {
                    let at = ring.partition_point(|(p, _)| *p < h);
                    (0..ring.len()).map(|k| ring[(at + k) % ring.len()].1).find(|i| usable(*i))
                }
                None => {
                    let n = self.weights.len();
                    let start = self.next();
                    (0..n).map(|k| (start + k) % n).find(|i| usable(*i))
                }
            },
        }
    }

    fn next(&self) -> usize {
        self.cursor.fetch_add(1, Relaxed)
    }

    /// Fewest in flight relative to weight; ties are broken by a rotating start so equal endpoints
    /// share the load.
    fn least_request(&self, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.weights.len();
        // Ties go to a rotating start among the usable endpoints, so they share the load evenly.
        let usable_count = (0..n).filter(|i| usable(*i)).count();
        if usable_count == 0 {
            return None;
        }
        let start = (0..n).filter(|i| usable(*i)).nth(self.next() % usable_count)?;
        let mut best: Option<usize> = None;
        for offset in 0..n {
            let i = (start + offset) % n;
            if !usable(i) {
                continue;
            }
            // a/wa < b/wb  <=>  a*wb < b*wa
            let load = |j: usize| self.in_flight[j].load(Relaxed) as u64;
            best = match best {
                Some(b) if load(i) * u64::from(self.weights[b]) >= load(b) * u64::from(self.weights[i]) => Some(b),
                _ => Some(i),
            };
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

    #[test]
    fn every_policy_skips_unusable_endpoints_and_says_when_none_is_left() {
        let h = http::HeaderMap::new();
        let policies = [
            LbPolicy::RoundRobin,
            LbPolicy::LeastRequest,
            LbPolicy::ConsistentHash(HashKey::ClientIp),
            LbPolicy::ConsistentHash(HashKey::Header("x-user".into())),
        ];
        for policy in policies {
            let b = Balancer::new(&policy, &endpoints(&[1, 1, 1]));
            let mut seen = [0; 3];
            for i in 0..60 {
                let ip = format!("10.1.{}.{}", i / 200, i % 200);
                let pick = Pick { client_ip: ip.parse().unwrap(), headers: &h };
                let chosen = b.pick_usable(&pick, &|i| i != 1).expect("two are usable");
                seen[chosen.index()] += 1;
            }
            assert_eq!(seen[1], 0, "{policy:?}: the unusable endpoint is never chosen");
            assert!(seen[0] + seen[2] == 60, "{policy:?}");
            if matches!(policy, LbPolicy::RoundRobin | LbPolicy::LeastRequest) {
                assert_eq!(seen, [30, 0, 30], "{policy:?}: the others share evenly");
            }
            let pick = Pick { client_ip: "10.0.0.1".parse().unwrap(), headers: &h };
            assert!(b.pick_usable(&pick, &|_| false).is_none(), "{policy:?}: none usable");
            assert_eq!(b.in_flight(), vec![0, 0, 0], "{policy:?}: guards dropped");
        }
    }
}
