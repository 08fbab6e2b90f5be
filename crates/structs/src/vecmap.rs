//! `VecMap`: a small ordered map for the maps an allocation holds (task states, task
//! resources), which have one to a few entries each.
//!
//! A `BTreeMap` allocates a leaf sized for 11 entries on its first insert (about 1.8 KB for
//! task states); a million allocations with one task each spent more than half of their memory
//! on those leaves. A `VecMap` keeps its entries sorted by key in one vector, behind an `Arc`:
//! cloning it shares the entries (a snapshot decoder gives a million allocations the same
//! task resources for the cost of a pointer each) and a change copies them first if they are
//! shared (copy on write). An empty map allocates nothing and the map itself is one pointer.
//!
//! It serializes exactly as a `BTreeMap` does (a map with its keys in order, so a JSON object
//! with sorted keys) and deserializes from one; when a key repeats, the last value wins, as it
//! does for a `BTreeMap`. Lookups are binary searches; inserts and removes move the entries
//! after them, which is cheap for the few entries these maps hold.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A small ordered map, stored as a sorted vector shared copy-on-write (see the module docs).
pub struct VecMap<K, V> {
    /// Sorted by key, no key twice; `None` when empty (never `Some` of an empty vector).
    entries: Option<Arc<Vec<(K, V)>>>,
}

impl<K, V> VecMap<K, V> {
    /// An empty map (allocates nothing).
    pub const fn new() -> Self {
        Self { entries: None }
    }

    /// The entries, in key order.
    pub fn as_slice(&self) -> &[(K, V)] {
        self.entries.as_deref().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter(self.as_slice().iter())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.as_slice().iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.as_slice().iter().map(|(_, v)| v)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries = None;
    }

    /// True when both maps share their entries (a clone not changed since): equal without
    /// comparing them.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        match (&self.entries, &other.entries) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn search<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.as_slice()
            .binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        self.as_slice().get(i).map(|(_, v)| v)
    }

    /// The stored key and value for `key`.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        self.as_slice().get(i).map(|(k, v)| (k, v))
    }

    /// True when the map has an entry for `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).is_ok()
    }

    /// Builds a map from entries already sorted by key with no key twice, without sorting
    /// them; `None` if they are not.
    pub fn from_sorted(entries: Vec<(K, V)>) -> Option<Self> {
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            Some(Self::from_vec_unchecked(entries))
        } else {
            None
        }
    }

    fn from_vec_unchecked(entries: Vec<(K, V)>) -> Self {
        Self {
            entries: (!entries.is_empty()).then(|| Arc::new(entries)),
        }
    }

    /// Sorts `entries` by key; of the entries with equal keys the last one stays (what
    /// inserting them one by one into a `BTreeMap` leaves).
    fn from_unsorted(mut entries: Vec<(K, V)>) -> Self {
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            // Stable: equal keys keep their order, and the reversal makes the last one first,
            // so `dedup_by` (which keeps the first of a run) keeps it.
            entries.reverse();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|a, b| a.0 == b.0);
        }
        Self::from_vec_unchecked(entries)
    }
}

impl<K: Ord + Clone, V: Clone> VecMap<K, V> {
    /// The entries to change: copied first if another map shares them.
    fn entries_mut(&mut self) -> &mut Vec<(K, V)> {
        Arc::make_mut(self.entries.get_or_insert_with(Default::default))
    }

    /// The value for `key`, to change (copies the entries first if they are shared).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        self.entries_mut().get_mut(i).map(|(_, v)| v)
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(i) => self
                .entries_mut()
                .get_mut(i)
                .map(|(_, v)| std::mem::replace(v, value)),
            Err(i) => {
                self.entries_mut().insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        let entries = self.entries_mut();
        let (_, v) = entries.remove(i);
        if entries.is_empty() {
            self.entries = None;
        }
        Some(v)
    }

    /// The value for `key`, inserted with `default()` first if there is none (a `BTreeMap`'s
    /// `entry(key).or_insert_with(default)`).
    pub fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        let i = match self.search(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries_mut().insert(i, (key, default()));
                i
            }
        };
        let entries = self.entries_mut();
        // `i` is an index of an entry found or just inserted.
        &mut entries[i].1
    }

    /// The values in key order, to change (copies the entries first if they are shared).
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        let entries = match self.entries.as_mut() {
            Some(entries) => Arc::make_mut(entries).as_mut_slice(),
            None => &mut [],
        };
        entries.iter_mut().map(|(_, v)| v)
    }

    /// The entries in key order, values to change (copies the entries first if shared).
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + ExactSizeIterator {
        let entries = match self.entries.as_mut() {
            Some(entries) => Arc::make_mut(entries).as_mut_slice(),
            None => &mut [],
        };
        entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        if self.entries.is_none() {
            return;
        }
        let entries = self.entries_mut();
        entries.retain_mut(|(k, v)| keep(k, v));
        if entries.is_empty() {
            self.entries = None;
        }
    }
}

/// The entries of a [`VecMap`] in key order.
#[derive(Clone)]
pub struct Iter<'a, K, V>(std::slice::Iter<'a, (K, V)>);

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: Clone, V: Clone> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    /// Moves the entries out, or clones them if another map shares them.
    fn into_iter(self) -> Self::IntoIter {
        match self.entries {
            Some(entries) => Arc::unwrap_or_clone(entries).into_iter(),
            None => Vec::new().into_iter(),
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_unsorted(iter.into_iter().collect())
    }
}

impl<K: Ord + Clone, V: Clone> Extend<(K, V)> for VecMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        Self::from_unsorted(entries.into())
    }
}

impl<K: Ord, V> From<BTreeMap<K, V>> for VecMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        Self::from_vec_unchecked(map.into_iter().collect())
    }
}

impl<K: Ord, V> From<VecMap<K, V>> for BTreeMap<K, V>
where
    K: Clone,
    V: Clone,
{
    fn from(map: VecMap<K, V>) -> Self {
        map.into_iter().collect()
    }
}

impl<K, Q, V> std::ops::Index<&Q> for VecMap<K, V>
where
    K: Ord + Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value for `key`. Panics if there is none, as indexing a `BTreeMap` does.
    #[allow(clippy::panic)] // `Index` has no other way to say the key is missing
    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("VecMap: no entry for the key"),
        }
    }
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for VecMap<K, V> {
    /// Shares the entries (a pointer copy).
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
        }
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for VecMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || self.as_slice() == other.as_slice()
    }
}

impl<K: Eq, V: Eq> Eq for VecMap<K, V> {}

impl<K: std::hash::Hash, V: std::hash::Hash> std::hash::Hash for VecMap<K, V> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K, V> Deserialize<'de> for VecMap<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
        where
            K: Deserialize<'de> + Ord,
            V: Deserialize<'de>,
        {
            type Value = VecMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the input: bound it, as serde's own maps do.
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = access.next_entry()? {
                    entries.push(entry);
                }
                Ok(VecMap::from_unsorted(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::VecMap;
    use std::collections::BTreeMap;

    fn both(entries: &[(&str, i64)]) -> (VecMap<String, i64>, BTreeMap<String, i64>) {
        let owned = || entries.iter().map(|(k, v)| (k.to_string(), *v));
        (owned().collect(), owned().collect())
    }

    #[test]
    fn behaves_like_a_btreemap() {
        let (mut m, mut b) = both(&[("web", 1), ("db", 2), ("web", 3), ("cache", 4)]);
        assert_eq!(m.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_eq!(m.len(), 3);
        assert_eq!(
            m.get("web"),
            Some(&3),
            "the last value of a repeated key wins"
        );
        assert_eq!(m["db"], 2);
        assert!(m.contains_key("cache") && !m.contains_key("nope"));
        assert_eq!(m.insert("api".into(), 5), b.insert("api".into(), 5));
        assert_eq!(m.insert("db".into(), 6), b.insert("db".into(), 6));
        assert_eq!(m.remove("cache"), b.remove("cache"));
        assert_eq!(m.remove("cache"), None);
        *m.get_mut("web").unwrap() += 10;
        *b.get_mut("web").unwrap() += 10;
        *m.get_or_insert_with("z".into(), || 7) += 1;
        *b.entry("z".into()).or_insert_with(|| 7) += 1;
        for v in m.values_mut() {
            *v *= 2;
        }
        for v in b.values_mut() {
            *v *= 2;
        }
        assert_eq!(m.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        assert_eq!(
            m.values().collect::<Vec<_>>(),
            b.values().collect::<Vec<_>>()
        );
        assert_eq!(m.clone().into_iter().collect::<BTreeMap<_, _>>(), b);
        assert_eq!(BTreeMap::from(m.clone()), b);
        assert_eq!(VecMap::from(b.clone()), m);
        assert_eq!(format!("{m:?}"), format!("{b:?}"));
        m.retain(|k, _| k != "api");
        b.retain(|k, _| k != "api");
        assert_eq!(m.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        m.clear();
        assert!(m.is_empty() && m.get("web").is_none());
        assert_eq!(m, VecMap::default());
    }

    #[test]
    fn removing_the_last_entry_leaves_an_empty_map() {
        let mut m = VecMap::from([("a".to_string(), 1)]);
        assert_eq!(m.remove("a"), Some(1));
        assert!(m.is_empty());
        assert_eq!(m, VecMap::new());
        let mut r = VecMap::from([("a".to_string(), 1)]);
        r.retain(|_, _| false);
        assert!(r.is_empty());
    }

    #[test]
    fn clones_share_entries_until_one_changes() {
        let a = VecMap::from([("web".to_string(), vec![1])]);
        let mut b = a.clone();
        assert!(a.ptr_eq(&b));
        b.get_mut("web").unwrap().push(2);
        assert!(!a.ptr_eq(&b));
        assert_eq!(a["web"], vec![1], "the original is unchanged");
        assert_eq!(b["web"], vec![1, 2]);
        let mut c = a.clone();
        c.insert("db".into(), vec![]);
        assert_eq!(a.len(), 1);
        assert_eq!(a.clone().into_iter().count(), 1);
    }

    #[test]
    fn from_sorted_checks_the_order() {
        let sorted = vec![("a".to_string(), 1), ("b".to_string(), 2)];
        assert_eq!(VecMap::from_sorted(sorted.clone()).unwrap().len(), 2);
        let mut unsorted = sorted;
        unsorted.reverse();
        assert!(VecMap::from_sorted(unsorted).is_none());
        let repeated = vec![("a".to_string(), 1), ("a".to_string(), 2)];
        assert!(VecMap::from_sorted(repeated).is_none());
    }

    #[test]
    fn serializes_exactly_as_a_btreemap() {
        for entries in [
            &[][..],
            &[("web", 1)][..],
            &[("web", 1), ("db", -2), ("cache", 3)][..],
        ] {
            let (m, b) = both(entries);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, serde_json::to_string(&b).unwrap());
            assert_eq!(
                serde_json::to_string_pretty(&m).unwrap(),
                serde_json::to_string_pretty(&b).unwrap()
            );
            let back: VecMap<String, i64> = serde_json::from_str(&json).unwrap();
            assert_eq!(back, m);
            // A map written by either type reads back as the other.
            let from_b: BTreeMap<String, i64> = serde_json::from_str(&json).unwrap();
            assert_eq!(from_b, b);
            let bin = bincode::serialize(&m).unwrap();
            assert_eq!(bin, bincode::serialize(&b).unwrap());
            let back: VecMap<String, i64> = bincode::deserialize(&bin).unwrap();
            assert_eq!(back, m);
        }
        // Keys out of order, and a repeated key, read as a BTreeMap reads them.
        let json = r#"{"web":1,"db":2,"web":3}"#;
        let m: VecMap<String, i64> = serde_json::from_str(json).unwrap();
        let b: BTreeMap<String, i64> = serde_json::from_str(json).unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"db":2,"web":3}"#);
        assert!(serde_json::from_str::<VecMap<String, i64>>("[1]").is_err());
        assert!(serde_json::from_str::<VecMap<String, i64>>(r#"{"a":"x"}"#).is_err());
    }

    #[test]
    fn is_one_pointer() {
        assert_eq!(size_of::<VecMap<String, String>>(), size_of::<usize>());
    }
}
