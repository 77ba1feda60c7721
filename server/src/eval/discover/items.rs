//! Items and slice keys.

use super::{Feature, Item};

/// A slice key: up to three items sorted by feature; unused positions hold [`NONE`], which sorts
/// last, so keys compare lexicographically by their items.
pub(super) type Key = [Item; 3];

/// Filler of unused key positions.
pub(super) const NONE: Item = Item { feature: u32::MAX, lo: 0, hi: 0 };

/// Number of items in a key.
pub(super) fn key_len(k: &Key) -> usize {
    k.iter().take_while(|i| i.feature != u32::MAX).count()
}

/// A key from sorted-by-feature items (at most three).
pub(super) fn key_of(items: &[Item]) -> Key {
    let mut k = [NONE; 3];
    for (slot, it) in k.iter_mut().zip(items) {
        *slot = *it;
    }
    k
}

/// Every item of a feature: each code of a categorical; for `ordered_buckets = Some(b)` every range
/// `lo..=hi` inside `0..b` except `0..=b-1` (that is no condition at all), then the codes `>= b`.
pub(super) fn feature_items(index: u32, f: &Feature) -> Vec<Item> {
    let k = f.labels.len() as u32;
    let b = f.ordered_buckets.unwrap_or(0).min(k);
    let mut out = Vec::new();
    for lo in 0..b {
        for hi in lo..b {
            if !(lo == 0 && hi + 1 == b) {
                out.push(Item { feature: index, lo, hi });
            }
        }
    }
    out.extend((b..k).map(|c| Item { feature: index, lo: c, hi: c }));
    out
}

/// The slices with one bucket range of `key` widened by one bucket (never to the full range):
/// the "range parents" a slice must beat in the redundancy test, so that a sub-range of a bad range
/// is not reported as a finding of its own.
pub(super) fn widened(features: &[Feature], key: &Key) -> Vec<Key> {
    let mut out = Vec::new();
    for (j, it) in key.iter().enumerate().take(key_len(key)) {
        let Some(b) = features.get(it.feature as usize).and_then(|f| f.ordered_buckets) else { continue };
        if it.hi >= b {
            continue;
        }
        let mut push = |lo: u32, hi: u32| {
            if !(lo == 0 && hi + 1 == b) {
                let mut k = *key;
                k[j] = Item { feature: it.feature, lo, hi };
                out.push(k);
            }
        };
        if it.lo > 0 {
            push(it.lo - 1, it.hi);
        }
        if it.hi + 1 < b {
            push(it.lo, it.hi + 1);
        }
    }
    out
}

/// The (k−1)-subsets of a key (its lattice parents); none for a single item.
pub(super) fn lattice_parents(key: &Key) -> Vec<Key> {
    let len = key_len(key);
    if len < 2 {
        return Vec::new();
    }
    (0..len)
        .map(|drop| {
            let items: Vec<Item> = key[..len].iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, it)| *it).collect();
            key_of(&items)
        })
        .collect()
}
