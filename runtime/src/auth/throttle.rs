//! Login throttling, built so that guessing gets nowhere and nobody can lock a learner out.
//!
//! Every attempt is counted *before* its password is checked, in the same locked step as the
//! check of the limits, so a burst of parallel guesses cannot all slip past a count that none
//! of them has written yet; a success takes its own count back. Three limits apply within a
//! sliding window:
//!
//! - **per account and client** (low): a client guessing one account is stopped quickly, and
//!   only that client — the owner signing in from elsewhere is not affected;
//! - **per client** across accounts: one client cannot spray passwords over many accounts;
//! - **per account** from every client (much higher): a distributed guess is stopped too,
//!   except for clients that signed in to that account successfully before — so an attacker
//!   who spends a botnet on it still does not lock its owner out of their usual device.
//!
//! Counts live in this process (see [`crate::http::limit`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::ClientKey;
use crate::http::limit::Counts;

/// Limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures one client may cause on one account in the window.
    pub per_pair: usize,
    /// Failures one client may cause across accounts in the window.
    pub per_client: usize,
    /// Failures one account may see from all clients in the window (clients it knows excepted).
    pub per_account: usize,
    /// The window.
    pub window: Duration,
    /// How long a client that signed in stays known to the account.
    pub known_for: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            per_pair: 5,
            per_client: 20,
            per_account: 100,
            window: Duration::from_secs(15 * 60),
            known_for: Duration::from_secs(30 * 86_400),
        }
    }
}

type Pair = (String, ClientKey);

struct State {
    pairs: Counts<Pair>,
    clients: Counts<ClientKey>,
    accounts: Counts<String>,
    known: HashMap<Pair, Instant>,
}

/// Failure counts per (account, client), client and account.
pub struct Throttle {
    policy: ThrottlePolicy,
    state: Mutex<State>,
}

/// A sign-in attempt that has been counted; report how it ended.
#[must_use = "report the attempt's outcome with `succeeded`, or it stays counted as a failure"]
pub struct Attempt {
    pair: Pair,
    at: Instant,
}

impl Throttle {
    /// A throttle with `policy`.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Throttle {
            policy,
            state: Mutex::new(State {
                pairs: Counts::new(policy.window),
                clients: Counts::new(policy.window),
                accounts: Counts::new(policy.window),
                known: HashMap::new(),
            }),
        }
    }

    /// Counts an attempt by `client` on `account` as a failure until it is reported a
    /// success, or answers `Err(seconds to wait)` when a limit is reached.
    pub fn begin(&self, account: &str, client: ClientKey) -> Result<Attempt, u64> {
        let now = Instant::now();
        let pair = (account.to_string(), client);
        let mut s = self.lock();
        let known = s
            .known
            .get(&pair)
            .is_some_and(|t| now.duration_since(*t) < self.policy.known_for);
        let account_key = pair.0.clone();
        let wait = [
            s.pairs.over(&pair, self.policy.per_pair, now),
            s.clients.over(&client, self.policy.per_client, now),
            (!known)
                .then(|| s.accounts.over(&account_key, self.policy.per_account, now))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        s.pairs.record(&pair, now);
        s.clients.record(&client, now);
        s.accounts.record(&account_key, now);
        Ok(Attempt { pair, at: now })
    }

    /// The attempt signed in: it was no failure, the pair's failures are forgiven, and the
    /// client is known to the account from now on.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut s = self.lock();
        s.pairs.clear(&attempt.pair);
        s.clients.forget(&attempt.pair.1, attempt.at);
        s.accounts.forget(&attempt.pair.0, attempt.at);
        if s.known.len() > 100_000 {
            let keep = self.policy.known_for;
            s.known.retain(|_, t| t.elapsed() < keep);
        }
        s.known.insert(attempt.pair, Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().unwrap())
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            per_pair: 3,
            per_client: 5,
            per_account: 8,
            window: Duration::from_secs(60),
            known_for: Duration::from_secs(3600),
        }
    }

    /// Failures are counted as they begin; the client guessing is stopped, not the owner.
    #[test]
    fn a_guesser_is_stopped_and_the_owner_elsewhere_is_not() {
        let t = Throttle::new(policy());
        let guesser = client("6.6.6.6");
        for _ in 0..3 {
            let _failed = t.begin("ana@x", guesser).unwrap();
        }
        let wait = t.begin("ana@x", guesser).err().expect("the pair is over");
        assert!((1..=60).contains(&wait));
        let owner = t
            .begin("ana@x", client("1.1.1.1"))
            .expect("the owner still signs in");
        t.succeeded(owner);
        // The guesser's other attempts count per client too.
        let _ = t.begin("bob@x", guesser).unwrap();
        let _ = t.begin("cy@x", guesser).unwrap();
        assert!(
            t.begin("dee@x", guesser).is_err(),
            "five failures from one client"
        );
    }

    /// Attempts in flight count: the limit cannot be out-raced.
    #[test]
    fn attempts_count_before_their_outcome_is_known() {
        let t = Throttle::new(policy());
        let c = client("2001:db8::1");
        let in_flight: Vec<_> = (0..3).map(|_| t.begin("ana@x", c).unwrap()).collect();
        assert!(
            t.begin("ana@x", client("2001:db8::2")).is_err(),
            "same /64, same client"
        );
        // One of them was the right password: its count is taken back, the pair forgiven.
        let mut it = in_flight.into_iter();
        t.succeeded(it.next().unwrap());
        assert!(t.begin("ana@x", c).is_ok());
    }

    /// Many clients together hit the account-wide ceiling, which spares clients the account
    /// already knows.
    #[test]
    fn the_account_ceiling_spares_known_clients() {
        let t = Throttle::new(policy());
        let home = client("1.1.1.1");
        t.succeeded(t.begin("ana@x", home).unwrap());
        for i in 0..8 {
            let _ = t.begin("ana@x", client(&format!("9.9.9.{i}"))).unwrap();
        }
        assert!(t.begin("ana@x", client("9.9.9.200")).is_err());
        assert!(
            t.begin("ana@x", home).is_ok(),
            "the owner's device is known"
        );
    }
}
