//! Tokens whose signature was verified, so that a client sending the same token again costs a lookup instead of
//! a public-key operation (RS256 verification is about a millisecond of CPU in the VM). Envoy's `jwt_authn` has
//! the same cache (`jwt_cache_config`).
//!
//! What is kept is the result of the signature check only: the claims are checked again on every request (time
//! moves on, so `exp` and `nbf` are evaluated at each use). Only tokens a key verified enter the cache, so a
//! client cannot fill it with forgeries; it is bounded by entries and by bytes, the oldest entry goes first, and
//! it is emptied whenever the key set changes (a key removed from the JWKS must stop verifying at once).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::rc::Rc;

use crate::keyset::KeySet;

/// How many bytes from the end of a token its hash reads: the signature's last bytes, which differ between any
/// two tokens (the full text is compared on a match). Hashing all of a kilobyte token costs more in the VM than
/// the rest of a cached request.
const HASHED_TAIL: usize = 32;

/// A bounded map from a token (its exact text) to what its verification yielded (`V`).
#[derive(Debug)]
pub struct TokenCache<V> {
    /// By the hash of the token's length and tail: the entries with that hash (almost always one).
    entries: HashMap<u64, Vec<Entry<V>>>,
    hasher: RandomState,
    len: usize,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<Rc<str>>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    /// The remote key set the entries were verified with (held, so it cannot be freed and its address reused).
    remote: Option<Rc<KeySet>>,
}

#[derive(Debug)]
struct Entry<V> {
    token: Rc<str>,
    value: Rc<V>,
    /// What this entry counts against `max_bytes`.
    bytes: usize,
}

impl<V> TokenCache<V> {
    /// A cache of at most `max_entries` tokens and `max_bytes` bytes; `max_entries == 0` keeps nothing.
    pub fn new(max_entries: usize, max_bytes: usize) -> TokenCache<V> {
        TokenCache {
            entries: HashMap::new(),
            hasher: RandomState::new(),
            len: 0,
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            remote: None,
        }
    }

    /// Empties the cache if the remote key set is not the one its entries were verified with.
    pub fn keys_are(&mut self, remote: Option<&Rc<KeySet>>) {
        let same = match (&self.remote, remote) {
            (Some(held), Some(now)) => Rc::ptr_eq(held, now),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.clear();
            self.remote = remote.cloned();
        }
    }

    fn hash(&self, token: &str) -> u64 {
        let tail = &token.as_bytes()[token.len().saturating_sub(HASHED_TAIL)..];
        self.hasher.hash_one((token.len(), tail))
    }

    /// What `token` yielded if its signature was verified with the current keys.
    pub fn get(&self, token: &str) -> Option<Rc<V>> {
        let slot = self.entries.get(&self.hash(token))?;
        slot.iter().find(|entry| same(&entry.token, token)).map(|entry| Rc::clone(&entry.value))
    }

    /// Remembers that `token` verified, yielding `value` (from claims whose JSON text was `payload_bytes` long).
    pub fn insert(&mut self, token: &str, value: Rc<V>, payload_bytes: usize) {
        // The token, its key in the order queue (shared), and the parsed claims (about twice the JSON).
        let bytes = token.len() + 2 * payload_bytes + 64;
        if self.max_entries == 0 || bytes > self.max_bytes || self.get(token).is_some() {
            return;
        }
        while self.len >= self.max_entries || self.bytes + bytes > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else { break };
            self.take(&oldest);
        }
        let token: Rc<str> = Rc::from(token);
        self.order.push_back(Rc::clone(&token));
        let hash = self.hash(&token);
        self.entries.entry(hash).or_default().push(Entry { token, value, bytes });
        self.len += 1;
        self.bytes += bytes;
    }

    /// Takes `token`'s entry out of the map (not out of the order queue).
    fn take(&mut self, token: &str) -> bool {
        let hash = self.hash(token);
        let Some(slot) = self.entries.get_mut(&hash) else { return false };
        let Some(index) = slot.iter().position(|entry| same(&entry.token, token)) else { return false };
        let entry = slot.swap_remove(index);
        if slot.is_empty() {
            self.entries.remove(&hash);
        }
        self.len -= 1;
        self.bytes -= entry.bytes;
        true
    }

    /// Forgets `token` (its claims no longer pass, for good: expired).
    pub fn remove(&mut self, token: &str) {
        if self.take(token) {
            self.order.retain(|key| !same(key, token));
        }
    }

    /// Forgets everything (the keys changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.len = 0;
        self.bytes = 0;
    }

    /// How many tokens are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether `a` and `b` are the same text, compared eight bytes at a time (the byte loop `==` compiles to in the
/// VM costs about 14 instructions per byte, more than the rest of a cached request for a 600-byte token).
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = a_words.remainder() == b_words.remainder();
    let word = |chunk: &[u8]| u64::from_ne_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
    tails_equal && a_words.zip(b_words).all(|(x, y)| word(x) == word(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str) -> Rc<String> {
        Rc::new(sub.to_owned())
    }

    fn sub(cache: &TokenCache<String>, token: &str) -> Option<String> {
        cache.get(token).map(|value| (*value).clone())
    }

    #[test]
    fn keeps_at_most_max_entries_and_evicts_the_oldest() {
        let mut cache: TokenCache<String> = TokenCache::new(2, 1 << 20);
        cache.insert("a", claims("a"), 10);
        cache.insert("b", claims("b"), 10);
        cache.insert("c", claims("c"), 10);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none());
        assert_eq!(sub(&cache, "c").as_deref(), Some("c"));
    }

    #[test]
    fn keeps_at_most_max_bytes_and_refuses_a_token_larger_than_the_whole_cache() {
        // Each entry: 1 + 2 * 100 + 64 = 265 bytes; 600 bytes hold two.
        let mut cache: TokenCache<String> = TokenCache::new(100, 600);
        for token in ["a", "b", "c"] {
            cache.insert(token, claims(token), 100);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none() && cache.get("b").is_some());
        cache.insert(&"x".repeat(700), claims("x"), 0);
        assert_eq!(cache.len(), 2, "an entry larger than max_bytes is not kept and evicts nothing");
    }

    #[test]
    fn zero_entries_disables_it_and_clear_and_remove_forget() {
        let mut off: TokenCache<String> = TokenCache::new(0, 1 << 20);
        off.insert("a", claims("a"), 1);
        assert!(off.is_empty());

        let mut cache: TokenCache<String> = TokenCache::new(10, 1 << 20);
        cache.insert("a", claims("a"), 1);
        cache.insert("b", claims("b"), 1);
        cache.remove("a");
        assert!(cache.get("a").is_none() && cache.len() == 1);
        cache.insert("a", claims("a"), 1);
        assert_eq!(cache.len(), 2, "a removed token can come back");
        cache.clear();
        assert!(cache.is_empty() && cache.get("b").is_none());
    }

    #[test]
    fn tokens_that_differ_anywhere_are_different_entries() {
        let base = "h".repeat(40) + "." + &"p".repeat(41) + "." + &"s".repeat(43);
        let mut cache: TokenCache<String> = TokenCache::new(100, 1 << 20);
        cache.insert(&base, claims("base"), 10);
        for at in [0, 7, 8, 40, 63, 64, base.len() - 33, base.len() - 1] {
            let mut other = base.clone().into_bytes();
            other[at] = b'x';
            let other = String::from_utf8(other).expect("ascii");
            assert!(cache.get(&other).is_none(), "a change at byte {at} is another token");
            cache.insert(&other, claims(&format!("{at}")), 10);
            assert_eq!(sub(&cache, &other), Some(format!("{at}")));
        }
        assert!(cache.get(&base[1..]).is_none() && cache.get(&format!("{base}x")).is_none(), "prefixes, suffixes");
        assert_eq!(sub(&cache, &base).as_deref(), Some("base"));
        assert_eq!(cache.len(), 9);
        cache.remove(&base);
        assert!(cache.get(&base).is_none() && cache.len() == 8);
    }

    #[test]
    fn a_new_remote_key_set_empties_it() {
        let first = Rc::new(KeySet::default());
        let mut cache: TokenCache<String> = TokenCache::new(10, 1 << 20);
        cache.keys_are(Some(&first));
        cache.insert("a", claims("a"), 1);
        cache.keys_are(Some(&Rc::clone(&first)));
        assert_eq!(cache.len(), 1, "the same set keeps the entries");
        cache.keys_are(Some(&Rc::new(KeySet::default())));
        assert!(cache.is_empty(), "another set (even with the same keys) empties it");
    }
}
