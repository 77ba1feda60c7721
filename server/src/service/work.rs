//! CPU-heavy work (ingest, analyses, model calls) runs on the blocking pool under a semaphore
//! sized to the cores, so a burst of requests cannot take every thread; when the queue behind it is
//! full, a request is refused at once (`ServiceError::Busy`, answered 503 with `Retry-After`)
//! instead of waiting forever.
//!
//! Every job reports into a [`Progress`]: the request's tracked job (see `jobs`) or its own. A
//! cancelled job (asked explicitly, or its request dropped because the client went away) is not
//! started, or its loops stop at their next check; its worker is freed as soon as it returns, and
//! what it returned is thrown away (`ServiceError::Cancelled`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::ServiceError;
use crate::progress::Progress;

pub struct WorkQueue {
    workers: usize,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Spare jobs running now (see [`WorkQueue::run_spare`]): the next job asked for cancels them.
    spare: std::sync::Mutex<Vec<Arc<Progress>>>,
    /// Numbers the guesses that spare work serves (see [`WorkQueue::new_guess`]).
    guesses: AtomicUsize,
}

/// Why spare work did not run or finish (see [`WorkQueue::run_spare`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Spare {
    /// A worker was busy or a job waiting: nothing started.
    Busy,
    /// A job asked for meanwhile cancelled it (or it panicked): its answer is thrown away.
    Cancelled,
}

/// Counts a waiter for as long as it waits (also when its request is dropped mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Cancels a job whose caller stopped waiting for it (its future dropped) before it ended.
struct CancelOnDrop(Option<Arc<Progress>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.cancel();
        }
    }
}

/// How often a job waiting for a worker checks whether it was cancelled.
const WAIT_CHECK: Duration = Duration::from_millis(100);

impl WorkQueue {
    /// `workers` jobs at a time; at most `max_waiting` more wait for a turn.
    pub fn new(workers: usize, max_waiting: usize) -> WorkQueue {
        let workers = workers.max(1);
        WorkQueue { workers, permits: Arc::new(Semaphore::new(workers)), waiting: AtomicUsize::new(0), max_waiting, spare: Default::default(), guesses: AtomicUsize::new(0) }
    }

    /// A new guess at what will be asked next: the spare work of older guesses should stop
    /// (see [`WorkQueue::is_current_guess`]).
    pub fn new_guess(&self) -> usize {
        self.guesses.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether `guess` is still the latest.
    pub fn is_current_guess(&self, guess: usize) -> bool {
        self.guesses.load(Ordering::SeqCst) == guess
    }

    /// Runs `job`, work nobody has asked for yet (a guess at the next request), only when every
    /// worker is idle ([`Spare::Busy`] when they are not). It reports into its own [`Progress`],
    /// which the next job asked for ([`run_with`](Self::run_with)) cancels: its loops stop at
    /// their next check, so it yields the cores to the user's request ([`Spare::Cancelled`]).
    pub async fn run_spare<T: Send + 'static>(&self, job: impl FnOnce(&Progress) -> T + Send + 'static) -> Result<T, Spare> {
        if self.waiting.load(Ordering::SeqCst) > 0 || self.permits.available_permits() < self.workers {
            return Err(Spare::Busy);
        }
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| Spare::Busy)?;
        let progress = Arc::new(Progress::new());
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).push(progress.clone());
        let p = progress.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if p.is_cancelled() { None } else { Some(job(&p)) }
        })
        .await;
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).retain(|x| !Arc::ptr_eq(x, &progress));
        out.ok().flatten().filter(|_| !progress.is_cancelled()).ok_or(Spare::Cancelled)
    }

    /// Jobs running now, and waiting (for the log and the health check).
    pub fn load(&self) -> (usize, usize) {
        (self.workers - self.permits.available_permits(), self.waiting.load(Ordering::SeqCst))
    }

    /// Runs `job` on the blocking pool when a worker is free; refuses when the queue is full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
        self.run_tracked(move |_| job()).await
    }

    /// Like [`run`](Self::run), with the job's [`Progress`] for its loops to advance and check:
    /// the request's tracked job, or a fresh one.
    pub async fn run_tracked<T: Send + 'static>(&self, job: impl FnOnce(&Progress) -> T + Send + 'static) -> Result<T, ServiceError> {
        let progress = super::jobs::current().unwrap_or_default();
        self.run_with(progress, job).await
    }

    /// Runs `job` reporting into `progress`.
    pub async fn run_with<T: Send + 'static>(&self, progress: Arc<Progress>, job: impl FnOnce(&Progress) -> T + Send + 'static) -> Result<T, ServiceError> {
        if progress.is_cancelled() {
            return Err(ServiceError::Cancelled);
        }
        for spare in self.spare.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            spare.cancel();
        }
        let mut guard = CancelOnDrop(Some(progress.clone()));
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    guard.0 = None;
                    return Err(ServiceError::Busy);
                }
                let _w = Waiting(&self.waiting);
                let acquire = self.permits.clone().acquire_owned();
                tokio::pin!(acquire);
                loop {
                    tokio::select! {
                        p = &mut acquire => break p.map_err(|_| ServiceError::Busy)?,
                        _ = tokio::time::sleep(WAIT_CHECK) => if progress.is_cancelled() {
                            return Err(ServiceError::Cancelled);
                        },
                    }
                }
            }
        };
        let p = progress.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if p.is_cancelled() { None } else { Some(job(&p)) }
        })
        .await
        .map_err(|e| ServiceError::Join(if e.is_panic() { "a worker panicked (see the log)".into() } else { e.to_string() }));
        guard.0 = None;
        match out? {
            Some(v) if !progress.is_cancelled() => Ok(v),
            _ => Err(ServiceError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spare_work_runs_only_on_idle_workers_and_yields_to_asked_work() {
        let q = Arc::new(WorkQueue::new(2, 4));
        assert_eq!(q.run_spare(|_| 1).await, Ok(1), "idle: it runs");
        // A spare job that loops until cancelled; a job asked for meanwhile cancels it.
        let spare = {
            let q = q.clone();
            tokio::spawn(async move {
                q.run_spare(|p| {
                    while !p.is_cancelled() {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    "stopped"
                })
                .await
            })
        };
        while q.spare.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(q.run_spare(|_| 2).await, Err(Spare::Busy), "a worker is busy: no more spare work");
        assert_eq!(q.run(|| 3).await.unwrap(), 3);
        assert_eq!(spare.await.unwrap(), Err(Spare::Cancelled), "cancelled by the asked job, its answer thrown away");
        assert!(q.spare.lock().unwrap().is_empty());
        assert_eq!(q.permits.available_permits(), 2);
    }

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_job_stops_and_frees_its_worker() {
        let q = Arc::new(WorkQueue::new(1, 4));
        let progress = Arc::new(Progress::new());
        let steps = Arc::new(AtomicUsize::new(0));
        let long = {
            let (q, progress, steps) = (q.clone(), progress.clone(), steps.clone());
            tokio::spawn(async move {
                q.run_with(progress, move |p| {
                    while !p.is_cancelled() {
                        steps.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    "partial"
                })
                .await
            })
        };
        while steps.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        progress.cancel();
        assert!(matches!(long.await.unwrap(), Err(ServiceError::Cancelled)), "a cancelled job's result is thrown away");
        assert_eq!(q.load().0, 0, "its worker is free");
        assert_eq!(q.run(|| 5).await.unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_request_cancels_its_job() {
        let q = Arc::new(WorkQueue::new(1, 4));
        let progress = Arc::new(Progress::new());
        let fut = {
            let (q, progress) = (q.clone(), progress.clone());
            async move { q.run_with(progress, |p| while !p.is_cancelled() { std::thread::sleep(Duration::from_millis(1)) }).await }
        };
        // The client gives up after a moment: the request's future is dropped.
        assert!(tokio::time::timeout(Duration::from_millis(50), fut).await.is_err());
        assert!(progress.is_cancelled());
        // The next job gets the worker as soon as the cancelled one notices.
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), q.run(|| 6)).await.unwrap().unwrap(), 6);
    }
}
