//! [`Table`]: values by context id or token, in a sorted `Vec`.
//!
//! Hosts hand out context ids and callout tokens in increasing order and never reuse them, so an insert is almost
//! always a push, a lookup is a binary search, and a filter module carries one small piece of code per value type
//! instead of a `BTreeMap`'s (about 5 KB of wasm each) or a `HashMap` and its random seed (`random_get`).

/// Values keyed by `u32`, sorted by key.
pub(crate) struct Table<T> {
    entries: Vec<(u32, T)>,
}

impl<T> Table<T> {
    /// An empty table.
    pub const fn new() -> Table<T> {
        Table { entries: Vec::new() }
    }

    fn find(&self, key: u32) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&key, |(k, _)| *k)
    }

    /// The value of `key`.
    pub fn get(&self, key: u32) -> Option<&T> {
        self.find(key).ok().map(|at| &self.entries[at].1)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: u32) -> Option<&mut T> {
        self.find(key).ok().map(|at| &mut self.entries[at].1)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: u32) -> bool {
        self.find(key).is_ok()
    }

    /// Sets the value of `key`, replacing an earlier one.
    pub fn insert(&mut self, key: u32, value: T) {
        match self.entries.last() {
            Some((last, _)) if *last >= key => match self.find(key) {
                Ok(at) => self.entries[at].1 = value,
                Err(at) => self.entries.insert(at, (key, value)),
            },
            _ => self.entries.push((key, value)),
        }
    }

    /// Takes the value of `key` out.
    pub fn remove(&mut self, key: u32) -> Option<T> {
        self.find(key).ok().map(|at| self.entries.remove(at).1)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.entries.retain(|(_, value)| keep(value));
    }

    /// Removes everything.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn keeps_values_by_key_in_any_insertion_order() {
        let mut table = Table::new();
        for key in [4, 8, 2, 12, 6] {
            table.insert(key, key * 10);
        }
        table.insert(8, 81);
        assert_eq!(table.entries.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2, 4, 6, 8, 12]);
        assert_eq!((table.get(8), table.get(5)), (Some(&81), None));
        assert!(table.contains(12) && !table.contains(0));
        *table.get_mut(2).unwrap() += 1;
        assert_eq!(table.remove(2), Some(21));
        assert_eq!(table.remove(2), None);
        assert_eq!(table.get(4), Some(&40));
        table.retain(|value| *value != 40);
        assert!(!table.contains(4) && table.contains(6));
        table.clear();
        assert!(!table.contains(6));
    }
}
