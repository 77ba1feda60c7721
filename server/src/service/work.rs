//! CPU-heavy work (ingest, analyses, model calls) runs on the blocking pool under a semaphore
//! sized to the cores, so a burst of requests cannot take every thread; when the queue behind it is
//! full, a request is refused at once (`ServiceError::Busy`, answered 503 with `Retry-After`)
//! instead of waiting forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use super::ServiceError;

pub struct WorkQueue {
    workers: usize,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Counts a waiter for as long as it waits (also when its request is dropped mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkQueue {
    /// `workers` jobs at a time; at most `max_waiting` more wait for a turn.
    pub fn new(workers: usize, max_waiting: usize) -> WorkQueue {
        let workers = workers.max(1);
        WorkQueue { workers, permits: Arc::new(Semaphore::new(workers)), waiting: AtomicUsize::new(0), max_waiting }
    }

    /// Jobs running now, and waiting (for the log and the health check).
    pub fn load(&self) -> (usize, usize) {
        (self.workers - self.permits.available_permits(), self.waiting.load(Ordering::SeqCst))
    }

    /// Runs `job` on the blocking pool when a worker is free; refuses when the queue is full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(ServiceError::Busy);
                }
                let _w = Waiting(&self.waiting);
                self.permits.clone().acquire_owned().await.map_err(|_| ServiceError::Busy)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| ServiceError::Join(if e.is_panic() { "a worker panicked (see the log)".into() } else { e.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let q = Arc::new(WorkQueue::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        // One job runs (blocked until told), one waits, the third is refused.
        let running = { let (q, rx) = (q.clone(), rx.clone()); tokio::spawn(async move { q.run(move || rx.lock().unwrap().recv().ok()).await }) };
        while q.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiting = { let q = q.clone(); tokio::spawn(async move { q.run(|| 2).await }) };
        while q.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(q.run(|| 3).await, Err(ServiceError::Busy)));
        tx.send(()).unwrap();
        assert!(running.await.unwrap().is_ok());
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!(q.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(q.run(|| 4).await.unwrap(), 4, "free again");
    }
}
