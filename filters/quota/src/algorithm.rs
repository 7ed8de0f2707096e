//! The three algorithms as pure functions over a counter's stored state: fixed window, sliding window (the
//! previous window weighted by its unexpired fraction) and token bucket with burst. Times are nanoseconds since
//! the Unix epoch; the state is a short ASCII record (`"w,c"`, `"w,c,p"`, `"t,at"`) so that any store can keep
//! it as bytes.

/// How a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `limit` per window aligned on the epoch; the count restarts at each window's start.
    FixedWindow,
    /// `limit` per sliding window: the current window's count plus the previous one's, weighted by the part
    /// of the previous window still inside the sliding window.
    SlidingWindow,
    /// A bucket of `burst` tokens refilled at `limit` per window.
    TokenBucket,
}

impl Algorithm {
    /// The name in the configuration and in store keys.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::TokenBucket => "token_bucket",
        }
    }
}

/// One limit's numbers, after per-key overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Units per window (requests or tokens).
    pub limit: u64,
    /// The window, in nanoseconds (never 0).
    pub window_ns: u64,
    /// The bucket's capacity (token bucket only).
    pub burst: u64,
}

/// What to do to a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Take `cost` units if they fit; change nothing otherwise.
    Take(u64),
    /// Whether `cost` units would fit, changing nothing.
    Peek(u64),
    /// Charge `cost` units whether they fit or not (usage known after the fact).
    Charge(u64),
    /// Give back `cost` units taken at time `at` (a refused multi-limit request, a reservation settled lower).
    Refund {
        /// The units.
        cost: u64,
        /// When they were taken (in the window they were counted in).
        at: u64,
    },
}

/// The answer for one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the units were (or would be) taken.
    pub allowed: bool,
    /// Whole units left after this operation.
    pub remaining: u64,
    /// Nanoseconds until the counter is back to full (the window's end; a full bucket).
    pub reset_ns: u64,
    /// Nanoseconds until a refused `cost` would fit (0 when allowed).
    pub retry_ns: u64,
}

/// Milli-units: the token bucket refills continuously, so it counts thousandths.
const MILLI: u128 = 1000;

/// Applies `op` to the stored `state` (`None`: never written) at `now`: the new state to write (`None` when
/// nothing changed) and the outcome. A state that does not parse counts as empty.
pub fn apply(policy: &Policy, state: Option<&[u8]>, now: u64, op: Op) -> (Option<Vec<u8>>, Outcome) {
    let (numbers, len) = state.map(parse).unwrap_or_default();
    let numbers = &numbers[..len];
    match policy.algorithm {
        Algorithm::FixedWindow => fixed(policy, numbers, now, op),
        Algorithm::SlidingWindow => sliding(policy, numbers, now, op),
        Algorithm::TokenBucket => bucket(policy, numbers, now, op),
    }
}

/// The most numbers a counter holds (the sliding window's three).
const MAX_NUMBERS: usize = 4;

/// The first byte of a counter in the binary layout: then little-endian `i64`s (every value fits: nanoseconds
/// since the epoch, counts and milli-tokens up to 2^48 × 1000). Without it, the counter is the decimal text
/// `n,n,...` that the first version wrote, still read so that a hot swap from it keeps the counts.
const BINARY: u8 = 0xB1;

fn parse(state: &[u8]) -> ([i128; MAX_NUMBERS], usize) {
    let mut numbers = [0i128; MAX_NUMBERS];
    if let Some((&BINARY, rest)) = state.split_first() {
        let words = rest.chunks_exact(8);
        if !words.remainder().is_empty() || words.len() > MAX_NUMBERS {
            return (numbers, 0);
        }
        let len = words.len();
        for (slot, word) in numbers.iter_mut().zip(words) {
            *slot = i128::from(i64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or_default()));
        }
        return (numbers, len);
    }
    let Ok(text) = std::str::from_utf8(state) else { return (numbers, 0) };
    let mut len = 0;
    for part in text.split(',') {
        match (numbers.get_mut(len), part.parse::<i64>()) {
            (Some(slot), Ok(n)) => *slot = i128::from(n),
            _ => return (numbers, 0),
        }
        len += 1;
    }
    (numbers, len)
}

fn encode(numbers: &[i128]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 * numbers.len());
    out.push(BINARY);
    for n in numbers {
        let n = i64::try_from(*n).unwrap_or(if *n < 0 { i64::MIN } else { i64::MAX });
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

fn to_u64(value: i128) -> u64 {
    u64::try_from(value.max(0)).unwrap_or(u64::MAX)
}

/// The ceiling of `a / b` for positive `b`.
fn div_ceil(a: u128, b: u128) -> u128 {
    a.div_ceil(b.max(1))
}

fn fixed(policy: &Policy, numbers: &[i128], now: u64, op: Op) -> (Option<Vec<u8>>, Outcome) {
    let limit = i128::from(policy.limit);
    // Window arithmetic in u64 (exact: `window_ns` is never 0); i128 division and multiplication are calls on
    // wasm32.
    let index = i128::from(now / policy.window_ns);
    let mut count = match numbers {
        [w, c] if *w == index => *c,
        _ => 0,
    };
    let reset_ns = policy.window_ns - now % policy.window_ns;
    let (allowed, write) = match op {
        Op::Take(cost) | Op::Peek(cost) => {
            let fits = count + i128::from(cost) <= limit;
            if fits && matches!(op, Op::Take(_)) {
                count += i128::from(cost);
            }
            (fits, fits && matches!(op, Op::Take(_)))
        }
        Op::Charge(cost) => {
            count += i128::from(cost);
            (true, cost > 0)
        }
        Op::Refund { cost, at } => {
            let same = i128::from(at / policy.window_ns) == index;
            if same {
                count = (count - i128::from(cost)).max(0);
            }
            (true, same && cost > 0)
        }
    };
    let outcome =
        Outcome { allowed, remaining: to_u64(limit - count), reset_ns, retry_ns: if allowed { 0 } else { reset_ns } };
    (write.then(|| encode(&[index, count])), outcome)
}

fn sliding(policy: &Policy, numbers: &[i128], now: u64, op: Op) -> (Option<Vec<u8>>, Outcome) {
    let window = i128::from(policy.window_ns);
    let limit = i128::from(policy.limit);
    let index = i128::from(now / policy.window_ns);
    let (mut current, mut previous) = match numbers {
        [w, c, p] if *w == index => (*c, *p),
        [w, c, _] if *w + 1 == index => (0, *c),
        _ => (0, 0),
    };
    let elapsed = i128::from(now % policy.window_ns);
    let left = window - elapsed;
    // The estimate in milli-units: previous × unexpired fraction + current.
    let estimate = |current: i128, previous: i128| {
        previous.saturating_mul(1000).saturating_mul(left) / window + current.saturating_mul(1000)
    };
    let (allowed, write) = match op {
        Op::Take(cost) | Op::Peek(cost) => {
            let fits = estimate(current, previous) + i128::from(cost) * 1000 <= limit * 1000;
            if fits && matches!(op, Op::Take(_)) {
                current += i128::from(cost);
            }
            (fits, fits && matches!(op, Op::Take(_)))
        }
        Op::Charge(cost) => {
            current += i128::from(cost);
            (true, cost > 0)
        }
        Op::Refund { cost, at } => {
            let then = i128::from(at / policy.window_ns);
            if then == index {
                current = (current - i128::from(cost)).max(0);
            } else if then + 1 == index {
                previous = (previous - i128::from(cost)).max(0);
            }
            (true, cost > 0 && (then == index || then + 1 == index))
        }
    };
    let used = estimate(current, previous);
    let remaining = to_u64((limit * 1000 - used).div_euclid(1000));
    let reset_ns = to_u64(left);
    let retry_ns = match op {
        _ if allowed => 0,
        Op::Take(cost) | Op::Peek(cost) => sliding_retry(limit, i128::from(cost), current, previous, left, window),
        _ => 0,
    };
    (write.then(|| encode(&[index, current, previous])), Outcome { allowed, remaining, reset_ns, retry_ns })
}

/// When `cost` more fits in a sliding window: later in this window if the previous window's weight fading is
/// enough, else in the next window once this window's count has faded enough.
fn sliding_retry(limit: i128, cost: i128, current: i128, previous: i128, left: i128, window: i128) -> u64 {
    if cost > limit {
        return to_u64(left + window);
    }
    // This window: previous × (left - d) / window + current + cost <= limit.
    let room = limit - current - cost;
    if room >= 0 && previous > 0 {
        // left - d <= room × window / previous  =>  d >= left - room × window / previous
        let keep = room * window / previous;
        return to_u64((left - keep).max(0)).max(1);
    }
    // Next window (current becomes previous): current × (window - e) / window + cost <= limit.
    let room = limit - cost;
    if current <= 0 {
        return to_u64(left);
    }
    let keep = room * window / current;
    to_u64(left + (window - keep).max(0))
}

fn bucket(policy: &Policy, numbers: &[i128], now: u64, op: Op) -> (Option<Vec<u8>>, Outcome) {
    let window = u128::from(policy.window_ns);
    let capacity = i128::from(policy.burst) * MILLI as i128;
    let rate_num = u128::from(policy.limit) * MILLI; // milli-tokens per `window` ns
    let (mut tokens, at) = match numbers {
        [t, at] => (*t, *at),
        _ => (capacity, i128::from(now)),
    };
    let elapsed = u128::try_from(i128::from(now) - at).unwrap_or(0);
    let refill = i128::try_from(elapsed * rate_num / window).unwrap_or(i128::MAX);
    tokens = tokens.saturating_add(refill).min(capacity);
    let (allowed, write) = match op {
        Op::Take(cost) | Op::Peek(cost) => {
            let fits = tokens >= i128::from(cost) * 1000;
            if fits && matches!(op, Op::Take(_)) {
                tokens -= i128::from(cost) * 1000;
            }
            (fits, fits && matches!(op, Op::Take(_)))
        }
        Op::Charge(cost) => {
            // Post-paid usage may overdraw the bucket; the debt is repaid by the refill.
            tokens -= i128::from(cost) * 1000;
            (true, cost > 0)
        }
        Op::Refund { cost, .. } => {
            tokens = (tokens + i128::from(cost) * 1000).min(capacity);
            (true, cost > 0)
        }
    };
    let time_for = |milli: i128| -> u64 {
        if milli <= 0 || rate_num == 0 {
            return 0;
        }
        let needed = u128::try_from(milli).unwrap_or(0).saturating_mul(window);
        to_u64(i128::try_from(div_ceil(needed, rate_num)).unwrap_or(i128::MAX))
    };
    let reset_ns = time_for(capacity - tokens);
    let retry_ns = match op {
        _ if allowed => 0,
        Op::Take(cost) | Op::Peek(cost) if i128::from(cost) * 1000 > capacity => policy.window_ns.max(reset_ns),
        Op::Take(cost) | Op::Peek(cost) => time_for(i128::from(cost) * 1000 - tokens).max(1),
        _ => 0,
    };
    let remaining = to_u64(tokens.div_euclid(1000));
    // The refill time is written only with a change, so a refused take keeps the bucket's own clock.
    // Never moves the bucket's clock back (a worker whose clock read is a little behind another's).
    let stamp = i128::from(now).max(at);
    (write.then(|| encode(&[tokens, stamp])), Outcome { allowed, remaining, reset_ns, retry_ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn policy(algorithm: Algorithm, limit: u64, window_s: u64, burst: u64) -> Policy {
        Policy { algorithm, limit, window_ns: window_s * S, burst }
    }

    /// Runs `ops` at their times on one counter; the outcomes.
    fn run(policy: &Policy, ops: &[(u64, Op)]) -> Vec<Outcome> {
        let mut state: Option<Vec<u8>> = None;
        ops.iter()
            .map(|&(at, op)| {
                let (next, outcome) = apply(policy, state.as_deref(), at, op);
                if next.is_some() {
                    state = next;
                }
                outcome
            })
            .collect()
    }

    #[test]
    fn fixed_window_counts_and_restarts_at_the_edge() {
        let p = policy(Algorithm::FixedWindow, 3, 10, 0);
        let t0 = 1_000 * 10 * S; // a window start
        let out =
            run(&p, &[(t0, Op::Take(1)), (t0 + S, Op::Take(2)), (t0 + 2 * S, Op::Take(1)), (t0 + 10 * S, Op::Take(3))]);
        assert_eq!(out.iter().map(|o| o.allowed).collect::<Vec<_>>(), [true, true, false, true]);
        assert_eq!(out[1].remaining, 0);
        assert_eq!(out[2].retry_ns, 8 * S, "refused until the window's end");
        assert_eq!(out[3].reset_ns, 10 * S);
    }

    #[test]
    fn sliding_window_weights_the_previous_window() {
        let p = policy(Algorithm::SlidingWindow, 4, 10, 0);
        let t0 = 1_000 * 10 * S;
        let mut ops: Vec<(u64, Op)> = (0..4).map(|i| (t0 + i * S, Op::Take(1))).collect();
        ops.push((t0 + 11 * S, Op::Take(1))); // 4 × 0.9 = 3.6: no room
        ops.push((t0 + 16 * S, Op::Take(1))); // 4 × 0.4 = 1.6: room for 2
        ops.push((t0 + 16 * S, Op::Take(1)));
        ops.push((t0 + 16 * S, Op::Take(1)));
        let out = run(&p, &ops);
        assert_eq!(
            out.iter().map(|o| o.allowed).collect::<Vec<_>>(),
            [true, true, true, true, false, true, true, false]
        );
        // At 11 s: previous 4 weighs 4 × (9 - d)/10; room 3 => d >= 9 - 7.5 = 1.5 s.
        assert_eq!(out[4].retry_ns, 1_500_000_000);
        // At 16 s with current 2: 4 × (4 - d)/10 + 3 <= 4 => d >= 4 - 2.5 = 1.5 s.
        assert_eq!(out[7].retry_ns, 1_500_000_000);
        assert_eq!(out[6].remaining, 0, "1.6 + 2 = 3.6 leaves no whole unit");
    }

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let p = policy(Algorithm::TokenBucket, 2, 1, 4);
        let t0 = 77 * S;
        let mut ops: Vec<(u64, Op)> = (0..5).map(|_| (t0, Op::Take(1))).collect();
        ops.push((t0 + S / 2, Op::Take(1)));
        ops.push((t0 + S / 2, Op::Take(1)));
        let out = run(&p, &ops);
        assert_eq!(out.iter().map(|o| o.allowed).collect::<Vec<_>>(), [true, true, true, true, false, true, false]);
        assert_eq!(out[4].retry_ns, S / 2, "one token every half second");
        assert_eq!(out[3].reset_ns, 2 * S, "four tokens to refill at two per second");
    }

    #[test]
    fn charges_overdraw_and_refunds_give_back() {
        let p = policy(Algorithm::TokenBucket, 10, 60, 10);
        let out =
            run(&p, &[(0, Op::Charge(12)), (0, Op::Peek(1)), (0, Op::Refund { cost: 5, at: 0 }), (0, Op::Peek(1))]);
        assert_eq!(out.iter().map(|o| o.allowed).collect::<Vec<_>>(), [true, false, true, true]);
        assert_eq!(out[3].remaining, 3);
        let f = policy(Algorithm::FixedWindow, 10, 60, 0);
        let out = run(&f, &[(0, Op::Take(4)), (61 * S, Op::Refund { cost: 4, at: 0 }), (61 * S, Op::Peek(10))]);
        assert!(out[2].allowed, "a refund for an old window does not touch the new one");
    }

    #[test]
    fn garbage_state_counts_as_empty() {
        let p = policy(Algorithm::FixedWindow, 1, 1, 0);
        let (next, outcome) = apply(&p, Some(b"not,a,number"), 5 * S, Op::Take(1));
        assert!(outcome.allowed);
        assert_eq!(next.as_deref().map(parse), Some(parse(&encode(&[5, 1]))));
    }

    #[test]
    fn counters_round_trip_in_binary_and_the_first_text_layout_is_still_read() {
        for numbers in [&[][..], &[1_700_000_000_000_000_000, 42][..], &[-5, 0, i128::from(i64::MAX)][..]] {
            let (read, len) = super::parse(&super::encode(numbers));
            assert_eq!(&read[..len], numbers);
        }
        let (read, len) = super::parse(b"1700000000000000000,7,3");
        assert_eq!(&read[..len], [1_700_000_000_000_000_000, 7, 3]);
        for garbage in [&b"x,1"[..], b"1,2,3,4,5", &[0xB1, 1, 2, 3][..], &[0xB1; 42][..]] {
            assert_eq!(super::parse(garbage).1, 0, "{garbage:?} reads as no counter");
        }
    }
}
