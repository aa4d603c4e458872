//! Sliding-window counters: how many things a key did within the last window, checked and
//! counted in one step under one lock, so a burst of parallel requests cannot all pass a
//! check that none of them has counted yet.
//!
//! Counts live in this process: behind several nodes each counts on its own, which multiplies
//! a limit by the node count but never lets a client through unlimited.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked before idle ones are swept, so a flood of distinct keys cannot grow memory
/// without bound.
const SWEEP_AT: usize = 100_000;

/// Events per key within a sliding window, without a lock of its own: for callers that must
/// check and count several keys under one lock.
#[derive(Debug)]
pub struct Counts<K> {
    window: Duration,
    hits: HashMap<K, VecDeque<Instant>>,
}

impl<K: Eq + Hash + Clone> Counts<K> {
    /// Counts events within `window`.
    pub fn new(window: Duration) -> Self {
        Counts {
            window,
            hits: HashMap::new(),
        }
    }

    /// `Some(seconds until one more fits)` when `key` has `limit` events in the window.
    pub fn over(&mut self, key: &K, limit: usize, now: Instant) -> Option<u64> {
        let q = self.hits.get_mut(key)?;
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() < limit {
            return None;
        }
        // The oldest event that must leave before one more fits.
        let oldest = q.get(q.len() - limit).copied().unwrap_or(now);
        let left = self.window.saturating_sub(now.duration_since(oldest));
        Some(left.as_secs().max(1))
    }

    /// Counts one event for `key` at `at`.
    pub fn record(&mut self, key: &K, at: Instant) {
        if self.hits.len() > SWEEP_AT {
            let window = self.window;
            self.hits
                .retain(|_, q| q.back().is_some_and(|t| at.duration_since(*t) < window));
        }
        self.hits.entry(key.clone()).or_default().push_back(at);
    }

    /// Takes back one event counted at `at` (a tentative count that turned out not to be one).
    pub fn forget(&mut self, key: &K, at: Instant) {
        if let Some(q) = self.hits.get_mut(key)
            && let Some(i) = q.iter().rposition(|t| *t == at)
        {
            q.remove(i);
        }
    }

    /// Forgets every event of `key`.
    pub fn clear(&mut self, key: &K) {
        self.hits.remove(key);
    }
}

/// [`Counts`] behind a lock, for limits on one key.
#[derive(Debug)]
pub struct Window<K>(Mutex<Counts<K>>);

impl<K: Eq + Hash + Clone> Window<K> {
    /// Counts events within `window`.
    pub fn new(window: Duration) -> Self {
        Window(Mutex::new(Counts::new(window)))
    }

    /// Counts one event for `key` if it has had fewer than `limit` in the window; otherwise
    /// `Err(seconds until the oldest leaves the window)`.
    pub fn take(&self, key: &K, limit: usize) -> Result<(), u64> {
        let now = Instant::now();
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = counts.over(key, limit, now) {
            return Err(wait);
        }
        counts.record(key, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_counts_up_to_the_limit_and_then_says_how_long_to_wait() {
        let w = Window::new(Duration::from_secs(3600));
        for _ in 0..3 {
            assert!(w.take(&"a", 3).is_ok());
        }
        let wait = w.take(&"a", 3).unwrap_err();
        assert!((3590..=3600).contains(&wait), "{wait}");
        assert!(w.take(&"b", 3).is_ok(), "keys are counted apart");
        assert!(w.take(&"a", 4).is_ok(), "a higher limit still has room");
    }

    #[test]
    fn events_leave_the_window() {
        let w = Window::new(Duration::from_millis(30));
        assert!(w.take(&1, 1).is_ok());
        assert!(w.take(&1, 1).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(w.take(&1, 1).is_ok());
    }

    #[test]
    fn a_tentative_event_can_be_taken_back() {
        let mut c = Counts::new(Duration::from_secs(60));
        let at = Instant::now();
        c.record(&"k", at);
        assert!(c.over(&"k", 1, at).is_some());
        c.forget(&"k", at);
        assert!(c.over(&"k", 1, at).is_none());
        c.record(&"k", at);
        c.clear(&"k");
        assert!(c.over(&"k", 1, at).is_none());
    }
}
