//! An in-memory cache of loaded runs, bounded by the DataFrames' estimated size in bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use polars::prelude::DataFrame;

struct Entry {
    frame: Arc<DataFrame>,
    bytes: usize,
    last_used: u64,
}

struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    clock: u64,
}

/// Least-recently-used cache of run DataFrames, holding at most `budget` bytes. A frame larger
/// than the whole budget is returned to the caller but not kept.
pub struct FrameCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl FrameCache {
    pub fn new(budget: usize) -> Self {
        FrameCache {
            budget,
            inner: Mutex::new(Inner { entries: HashMap::new(), bytes: 0, clock: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent (every update is a
        // single insert/remove), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<DataFrame>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.get_mut(id).map(|e| {
            e.last_used = now;
            e.frame.clone()
        })
    }

    pub fn insert(&self, id: &str, frame: Arc<DataFrame>) {
        let bytes = frame.estimated_size();
        if bytes > self.budget {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(id) {
            inner.bytes -= old.bytes;
        }
        while inner.bytes + bytes > self.budget {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes;
            }
        }
        inner.clock += 1;
        let last_used = inner.clock;
        inner.bytes += bytes;
        inner.entries.insert(id.to_string(), Entry { frame, bytes, last_used });
    }

    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.remove(id) {
            inner.bytes -= e.bytes;
        }
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn frame(n: usize) -> Arc<DataFrame> {
        let c = Column::new("x".into(), vec![1.0f64; n]);
        Arc::new(DataFrame::new(n, vec![c]).unwrap())
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let one = frame(1000).estimated_size();
        let cache = FrameCache::new(one * 2 + one / 2);
        cache.insert("a", frame(1000));
        cache.insert("b", frame(1000));
        assert!(cache.get("a").is_some()); // a is now more recent than b
        cache.insert("c", frame(1000));
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert!(cache.bytes() <= one * 2 + one / 2);
    }

    #[test]
    fn oversized_frame_is_not_kept() {
        let cache = FrameCache::new(10);
        cache.insert("big", frame(1000));
        assert!(cache.get("big").is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
