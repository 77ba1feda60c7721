//! In-memory caches bounded by the estimated size of what they hold: loaded runs (DataFrames)
//! and the engine's prepared cells (see `eval::sliced::Prepared`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use polars::prelude::DataFrame;

/// Something whose memory footprint a cache can budget.
pub trait Weigh {
    fn weight_bytes(&self) -> usize;
}

impl Weigh for DataFrame {
    fn weight_bytes(&self) -> usize {
        self.estimated_size()
    }
}

impl Weigh for crate::eval::sliced::Prepared {
    fn weight_bytes(&self) -> usize {
        self.bytes()
    }
}

/// A finished analysis kept for identical repeats (any type), with its size estimated once.
pub struct Computed {
    value: Box<dyn std::any::Any + Send + Sync>,
    bytes: usize,
}

impl Computed {
    /// Wraps a result; its size is that of its JSON form (what it costs to keep, roughly).
    pub fn new<T: serde::Serialize + Send + Sync + 'static>(value: T) -> Computed {
        let bytes = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len() + 64);
        Computed { value: Box::new(value), bytes }
    }

    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }
}

impl Weigh for Computed {
    fn weight_bytes(&self) -> usize {
        self.bytes
    }
}

/// Finished analyses by (run, request): a repeat of an identical request is answered from here.
pub type ResultCache = ByteLru<Computed>;

/// A loaded model (an optimised ONNX plan, an HTTP client) with the memory it is charged for.
pub struct LoadedModel {
    pub model: std::sync::Arc<dyn crate::models::Model>,
    pub bytes: usize,
}

impl Weigh for LoadedModel {
    fn weight_bytes(&self) -> usize {
        self.bytes
    }
}

/// Loaded models by (run, source), least recently used out first.
pub type ModelCache = ByteLru<LoadedModel>;

struct Entry<V> {
    frame: Arc<V>,
    bytes: usize,
    last_used: u64,
}

struct Inner<V> {
    entries: HashMap<String, Entry<V>>,
    bytes: usize,
    clock: u64,
}

/// Least-recently-used cache holding at most `budget` bytes. A value larger than the whole
/// budget is returned to the caller but not kept.
pub struct ByteLru<V> {
    budget: usize,
    inner: Mutex<Inner<V>>,
}

/// Run DataFrames by run id.
pub type FrameCache = ByteLru<DataFrame>;

impl<V: Weigh> ByteLru<V> {
    pub fn new(budget: usize) -> Self {
        ByteLru {
            budget,
            inner: Mutex::new(Inner { entries: HashMap::new(), bytes: 0, clock: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        // A panic while holding the lock cannot leave the map inconsistent (every update is a
        // single insert/remove), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes that can be added without evicting anything.
    pub fn room(&self) -> usize {
        self.budget.saturating_sub(self.lock().bytes)
    }

    pub fn get(&self, id: &str) -> Option<Arc<V>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.get_mut(id).map(|e| {
            e.last_used = now;
            e.frame.clone()
        })
    }

    pub fn insert(&self, id: &str, frame: Arc<V>) {
        let bytes = frame.weight_bytes();
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

    /// Removes every entry whose key starts with `prefix` (e.g. everything of a deleted run).
    pub fn remove_prefix(&self, prefix: &str) {
        let mut inner = self.lock();
        let gone: Vec<String> = inner.entries.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        for k in gone {
            if let Some(e) = inner.entries.remove(&k) {
                inner.bytes -= e.bytes;
            }
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
