//! Failed sign-ins counted per account and per client address over a sliding window; past the
//! limit further attempts are refused (429 + Retry-After) without checking the password, so a
//! guesser learns nothing and costs no hashing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    window: Duration,
    per_account: usize,
    per_address: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(window: Duration, per_account: usize, per_address: usize) -> Self {
        Limiter { window, per_account, per_address, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(account: &str, address: &str) -> [(String, bool); 2] {
        [(format!("a:{}", account.to_lowercase()), true), (format!("i:{address}"), false)]
    }

    /// `Some(seconds)` to wait when the account or the address is over its limit.
    pub fn check(&self, account: &str, address: &str) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("limiter lock");
        let mut wait = None;
        for (key, is_account) in Self::keys(account, address) {
            let limit = if is_account { self.per_account } else { self.per_address };
            if let Some(q) = map.get_mut(&key) {
                while q.front().is_some_and(|t| now.duration_since(*t) > self.window) {
                    q.pop_front();
                }
                if q.len() >= limit
                    && let Some(first) = q.front()
                {
                    let left = self.window.saturating_sub(now.duration_since(*first)).as_secs().max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, account: &str, address: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("limiter lock");
        // Bounded memory: a flood of distinct names is cut back to the entries still in window.
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= self.window));
        }
        for (key, _) in Self::keys(account, address) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        self.failures.lock().expect("limiter lock").remove(&format!("a:{}", account.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_and_address_limits() {
        let l = Limiter::new(Duration::from_secs(60), 3, 5);
        for _ in 0..3 {
            assert!(l.check("ann", "1.2.3.4").is_none());
            l.failed("ann", "1.2.3.4");
        }
        assert!(l.check("ANN", "9.9.9.9").is_some(), "the account is locked from any address");
        assert!(l.check("bob", "1.2.3.4").is_none());
        l.failed("bob", "1.2.3.4");
        l.failed("cy", "1.2.3.4");
        assert!(l.check("dee", "1.2.3.4").is_some(), "the address is over its limit");
        l.succeeded("ann");
        assert!(l.check("ann", "5.5.5.5").is_none());
    }
}
