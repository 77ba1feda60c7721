//! Jobs a caller can watch and cancel: a tracked request's [`Progress`] under an id its client
//! chose, visible only to the caller that started it, kept a few minutes after it ends.
//!
//! The request's task carries its job (a task-local), so every `WorkQueue::run` inside it
//! reports into the same progress and stops when it is cancelled, with no parameter threaded
//! through the services.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_app::model::{JobState, JobStatus};

use super::ServiceError;
use crate::progress::Progress;

tokio::task_local! {
    static CURRENT: Arc<Progress>;
}

/// The job of the request being served, if it is tracked.
pub fn current() -> Option<Arc<Progress>> {
    CURRENT.try_with(|p| p.clone()).ok()
}

/// Runs `fut` with `progress` as its job (every work-queue job inside reports into it).
pub async fn scope<F: Future>(progress: Arc<Progress>, fut: F) -> F::Output {
    CURRENT.scope(progress, fut).await
}

/// How long a finished job can still be read.
const KEEP: Duration = Duration::from_secs(600);
/// Jobs held at once (running and recently finished), over all callers.
const MAX_JOBS: usize = 4096;
/// Running jobs one caller may hold.
const MAX_RUNNING_PER_OWNER: usize = 64;

struct Entry {
    owner: String,
    progress: Arc<Progress>,
    ended: Option<(JobState, Instant)>,
}

#[derive(Default)]
pub struct Jobs {
    map: Mutex<HashMap<String, Entry>>,
}

/// Whether a client-chosen job id is acceptable: 8–64 letters, digits, `-` or `_`.
pub fn valid_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tracking job `id` for `owner`. An id in use by a running job, or by another
    /// caller's job, is refused.
    pub fn start(&self, id: &str, owner: &str) -> Result<Arc<Progress>, ServiceError> {
        if !valid_id(id) {
            return Err(ServiceError::BadRequest("a job id is 8–64 letters, digits, '-' or '_'".into()));
        }
        let mut map = self.lock();
        map.retain(|_, e| e.ended.is_none_or(|(_, at)| at.elapsed() < KEEP));
        match map.get(id) {
            Some(e) if e.owner != owner => return Err(ServiceError::Conflict(format!("job id '{id}' is taken; choose another"))),
            Some(e) if e.ended.is_none() => return Err(ServiceError::Conflict(format!("job '{id}' is still running"))),
            _ => {}
        }
        if map.len() >= MAX_JOBS || map.values().filter(|e| e.owner == owner && e.ended.is_none()).count() >= MAX_RUNNING_PER_OWNER {
            return Err(ServiceError::Busy);
        }
        let progress = Arc::new(Progress::new());
        map.insert(id.to_string(), Entry { owner: owner.to_string(), progress: progress.clone(), ended: None });
        Ok(progress)
    }

    /// Records how job `id` ended (a cancelled job stays cancelled whatever its request answered).
    pub fn end(&self, id: &str, state: JobState) {
        if let Some(e) = self.lock().get_mut(id) {
            let state = if e.progress.is_cancelled() { JobState::Cancelled } else { state };
            if state == JobState::Done {
                e.progress.finish();
            }
            e.ended = Some((state, Instant::now()));
        }
    }

    /// Job `id` as its owner sees it; `None` when there is no such job of `owner`'s.
    pub fn status(&self, id: &str, owner: &str) -> Option<JobStatus> {
        let map = self.lock();
        let e = map.get(id).filter(|e| e.owner == owner)?;
        Some(status(id, e))
    }

    /// Cancels job `id` of `owner`'s; its loops stop at their next check.
    pub fn cancel(&self, id: &str, owner: &str) -> Option<JobStatus> {
        let map = self.lock();
        let e = map.get(id).filter(|e| e.owner == owner)?;
        if e.ended.is_none() {
            e.progress.cancel();
        }
        Some(status(id, e))
    }
}

fn status(id: &str, e: &Entry) -> JobStatus {
    let s = e.progress.snapshot();
    let state = match e.ended {
        Some((state, _)) => state,
        None if s.cancelled => JobState::Cancelling,
        None => JobState::Running,
    };
    JobStatus {
        job: id.to_string(),
        state,
        stage: s.stage.to_string(),
        done: s.done,
        total: s.total,
        rows: s.rows,
        elapsed_ms: s.elapsed_ms,
        eta_seconds: if state == JobState::Running { s.eta_seconds() } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_seen_and_cancelled_only_by_its_owner() {
        let jobs = Jobs::default();
        let p = jobs.start("job-0001", "ann").unwrap();
        p.add_total(4);
        p.advance(1);
        assert!(jobs.status("job-0001", "bob").is_none());
        assert!(jobs.cancel("job-0001", "bob").is_none());
        assert!(!p.is_cancelled());
        assert!(matches!(jobs.start("job-0001", "bob"), Err(ServiceError::Conflict(_))));
        assert!(matches!(jobs.start("job-0001", "ann"), Err(ServiceError::Conflict(_))), "still running");
        let s = jobs.status("job-0001", "ann").unwrap();
        assert_eq!((s.state, s.done, s.total), (JobState::Running, 1, 4));
        assert_eq!(jobs.cancel("job-0001", "ann").unwrap().state, JobState::Cancelling);
        assert!(p.is_cancelled());
        jobs.end("job-0001", JobState::Done);
        assert_eq!(jobs.status("job-0001", "ann").unwrap().state, JobState::Cancelled);
        assert!(jobs.start("job-0001", "ann").is_ok(), "an ended job's id can be reused by its owner");
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("abcd-1234_XY"));
        assert!(!valid_id("short"));
        assert!(!valid_id("has space in it"));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(matches!(Jobs::default().start("../../etc", "a"), Err(ServiceError::BadRequest(_))));
    }
}
