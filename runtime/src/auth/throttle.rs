//! Login throttling: failed attempts counted per client IP and per account in a sliding
//! window. Only failures count, so a learner who signs in often is never slowed down, and a
//! success clears the account's count. Past the limit, sign-in answers 429 with
//! `Retry-After` until the oldest failure leaves the window — before the password is even
//! checked, so guessing gets nowhere.
//!
//! Counts live in this process: behind several nodes each node counts on its own, which
//! multiplies the limit by the node count but never lets an attacker through unthrottled.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures one account may see in the window.
    pub per_account: usize,
    /// Failures one IP may cause in the window.
    pub per_ip: usize,
    /// The window.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            per_account: 5,
            per_ip: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Failure counts per key (`ip:…` and `account:…`).
#[derive(Debug, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    /// A throttle with `policy`.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Throttle {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when the IP or the account is over its limit.
    pub fn check(&self, ip: &str, account: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0u64;
        for (key, limit) in [
            (format!("ip:{ip}"), self.policy.per_ip),
            (format!("account:{account}"), self.policy.per_account),
        ] {
            if let Some(q) = map.get_mut(&key) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.policy.window)
                {
                    q.pop_front();
                }
                if q.len() >= limit
                    && let Some(oldest) = q.front()
                {
                    let left = self
                        .policy
                        .window
                        .saturating_sub(now.duration_since(*oldest));
                    wait = wait.max(left.as_secs().max(1));
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    /// Counts a failed attempt against both keys.
    pub fn failed(&self, ip: &str, account: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound memory under a flood of distinct keys: drop entries with nothing recent.
        if map.len() > 100_000 {
            let window = self.policy.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for key in [format!("ip:{ip}"), format!("account:{account}")] {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// Clears the account's failures after a successful sign-in.
    pub fn succeeded(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("account:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_count_and_success_clears_the_account() {
        let t = Throttle::new(ThrottlePolicy {
            per_account: 3,
            per_ip: 5,
            window: Duration::from_secs(60),
        });
        for _ in 0..10 {
            assert!(t.check("1.1.1.1", "a@x").is_ok(), "no failures, no limit");
        }
        for _ in 0..3 {
            t.failed("1.1.1.1", "a@x");
        }
        let wait = t
            .check("1.1.1.1", "a@x")
            .expect_err("account over its limit");
        assert!((1..=60).contains(&wait));
        assert!(
            t.check("1.1.1.1", "b@x").is_ok(),
            "other accounts from the IP still pass"
        );
        t.failed("1.1.1.1", "b@x");
        t.failed("1.1.1.1", "c@x");
        assert!(
            t.check("1.1.1.1", "d@x").is_err(),
            "the IP is over its limit"
        );
        assert!(t.check("2.2.2.2", "d@x").is_ok());
        t.succeeded("a@x");
        assert!(t.check("2.2.2.2", "a@x").is_ok());
    }
}
