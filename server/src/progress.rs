//! Progress and cancellation of one piece of long work: counters the engine loops advance and a
//! flag they check, shared by the request that started the work, its worker and whoever watches.
//!
//! Plain atomics, so a loop can check it every iteration (one relaxed load) from any thread; the
//! engine imports nothing else of the server to use it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The progress of one job. `done` only grows; `total` is set when the work knows its size
/// (grid points, replicates, levels, bytes of a file) and never shrinks.
#[derive(Debug)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    /// Rows read so far (ingest), shown beside the fraction.
    rows: AtomicU64,
    cancelled: AtomicBool,
    stage: Mutex<&'static str>,
    started: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// What a watcher sees of a job at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    pub stage: &'static str,
    pub done: u64,
    pub total: u64,
    pub rows: u64,
    pub cancelled: bool,
    pub elapsed_ms: u64,
}

impl Snapshot {
    /// Seconds left at the rate so far; unknown before the first step and once finished.
    pub fn eta_seconds(&self) -> Option<f64> {
        if self.done == 0 || self.total <= self.done {
            return None;
        }
        let per = self.elapsed_ms as f64 / 1000.0 / self.done as f64;
        Some(per * (self.total - self.done) as f64)
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            stage: Mutex::new(""),
            started: Instant::now(),
        }
    }

    /// Says what the work is doing now ("reading", "bootstrap", "grid"…).
    pub fn stage(&self, stage: &'static str) {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner()) = stage;
    }

    /// Adds `n` steps to the work's size (a stage that learns its size adds it).
    pub fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` more steps done (never past the total, once one is known).
    pub fn advance(&self, n: u64) {
        let total = self.total.load(Ordering::Relaxed);
        let _ = self.done.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
            let next = d.saturating_add(n);
            Some(if total > 0 { next.min(total) } else { next })
        });
    }

    /// Sets the steps done to at least `n` (for work that knows its position, e.g. a byte offset).
    pub fn reach(&self, n: u64) {
        let total = self.total.load(Ordering::Relaxed);
        let n = if total > 0 { n.min(total) } else { n };
        self.done.fetch_max(n, Ordering::Relaxed);
    }

    /// Rows read so far (ingest).
    pub fn rows(&self, n: u64) {
        self.rows.fetch_max(n, Ordering::Relaxed);
    }

    /// Marks the whole work done (the fraction reaches 1 even when a stage skipped steps).
    pub fn finish(&self) {
        let total = self.total.load(Ordering::Relaxed).max(1);
        self.total.fetch_max(total, Ordering::Relaxed);
        self.done.fetch_max(total, Ordering::Relaxed);
    }

    /// Asks the work to stop; loops notice at their next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether the work was asked to stop: loops check this and return early (what they return
    /// is then thrown away by the work queue).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stage: *self.stage.lock().unwrap_or_else(|p| p.into_inner()),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            cancelled: self.is_cancelled(),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_never_passes_the_total_and_never_shrinks() {
        let p = Progress::new();
        p.add_total(10);
        p.advance(4);
        p.reach(2);
        assert_eq!(p.snapshot().done, 4);
        p.advance(100);
        assert_eq!(p.snapshot().done, 10);
        p.add_total(5);
        p.finish();
        let s = p.snapshot();
        assert_eq!((s.done, s.total), (15, 15));
        assert_eq!(s.eta_seconds(), None);
    }

    #[test]
    fn the_estimate_follows_the_rate() {
        let s = Snapshot { stage: "", done: 25, total: 100, rows: 0, cancelled: false, elapsed_ms: 1000 };
        assert!((s.eta_seconds().unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(Snapshot { done: 0, ..s }.eta_seconds(), None);
    }

    #[test]
    fn cancel_is_seen() {
        let p = Progress::new();
        assert!(!p.is_cancelled());
        p.cancel();
        assert!(p.is_cancelled() && p.snapshot().cancelled);
    }
}
