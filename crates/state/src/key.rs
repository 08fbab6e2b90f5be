//! [`IdKey`]: how the allocation table and its indexes key an allocation ID.

use std::cmp::Ordering;
use std::sync::Arc;

/// An ID with its first 16 bytes kept inline (big-endian, zero-padded) in front of the shared
/// string. A B-tree lookup in a table of a million allocations compares about two dozen keys,
/// and comparing two `Arc<str>` reads both strings from the heap: a cache miss each, most of
/// the cost of a lookup. Random IDs (UUIDs) differ within their first 16 bytes, so comparing
/// keys almost never reads the strings. Keys order exactly as their strings do: IDs that agree
/// on the first 16 bytes (or are shorter, the padding being below every byte but zero) fall
/// back to comparing the strings.
#[derive(Debug, Clone)]
pub(crate) struct IdKey {
    head: u128,
    id: Arc<str>,
}

impl IdKey {
    /// The key of `id` (allocates the shared string).
    pub(crate) fn new(id: &str) -> Self {
        Self {
            head: Self::head_of(id),
            id: Arc::from(id),
        }
    }

    /// The inline part of `id`'s key.
    pub(crate) fn head_of(id: &str) -> u128 {
        let mut head = [0u8; 16];
        let n = id.len().min(16);
        head[..n].copy_from_slice(&id.as_bytes()[..n]);
        u128::from_be_bytes(head)
    }

    /// How this key orders against `id`, whose [`IdKey::head_of`] is `head` (computed once by
    /// a caller comparing many keys with one ID); the string is read only on a tie.
    pub(crate) fn cmp_id(&self, head: u128, id: &str) -> Ordering {
        self.head.cmp(&head).then_with(|| (*self.id).cmp(id))
    }

    /// The ID.
    #[cfg(test)]
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.id == other.id
    }
}

impl Eq for IdKey {}

impl PartialOrd for IdKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| self.id.cmp(&other.id))
    }
}

#[cfg(test)]
mod tests {
    use super::IdKey;
    use proptest::prelude::*;

    #[test]
    fn orders_as_the_strings_do_at_the_edges() {
        let edge = [
            "",
            "\0",
            "a",
            "a\0",
            "ab",
            "0123456789abcdef",
            "0123456789abcdef\0",
            "0123456789abcdefg",
            "0123456789abcdeg",
            "8f3c1a2b-0000-4000-8000-000000000001",
            "8f3c1a2b-0000-4000-8000-000000000002",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "é",
        ];
        for a in edge {
            for b in edge {
                assert_eq!(
                    IdKey::new(a).cmp(&IdKey::new(b)),
                    a.cmp(b),
                    "{a:?} vs {b:?}"
                );
                assert_eq!(IdKey::new(a) == IdKey::new(b), a == b);
                assert_eq!(IdKey::new(a).cmp_id(IdKey::head_of(b), b), a.cmp(b));
            }
        }
    }

    proptest! {
        #[test]
        fn orders_as_the_strings_do(a in ".{0,40}", b in ".{0,40}", common in "[0-9a-f-]{0,20}") {
            let (a, b) = (format!("{common}{a}"), format!("{common}{b}"));
            prop_assert_eq!(IdKey::new(&a).cmp(&IdKey::new(&b)), a.cmp(&b));
            prop_assert_eq!(IdKey::new(&a).cmp_id(IdKey::head_of(&b), &b), a.cmp(&b));
            let key = IdKey::new(&a);
            prop_assert_eq!(key.id(), a.as_str());
        }
    }
}
