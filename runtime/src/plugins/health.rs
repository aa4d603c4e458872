//! Per-plugin counters and circuit-breaker state.
//!
//! The call path reads and bumps these with atomics — no lock, no message — so a call pays
//! nanoseconds for its bookkeeping. State *transitions* of the breaker (open, half-open,
//! closed) belong to the `PluginSupervisor` actor; the one exception is a caller claiming the
//! single probe call of a half-open breaker, which must be a compare-and-swap to admit exactly
//! one.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Breaker {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The next call is a probe; success closes the breaker, failure opens it again.
    HalfOpen,
    /// A probe is running; other calls are refused.
    Probing,
}

impl Breaker {
    fn from_u8(v: u8) -> Breaker {
        match v {
            1 => Breaker::Open,
            2 => Breaker::HalfOpen,
            3 => Breaker::Probing,
            _ => Breaker::Closed,
        }
    }
}

/// How one call ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Returned a value.
    Ok,
    /// Returned its own error (not a fault of the plugin's health).
    GuestError,
    /// Trapped (a panic, an `unreachable`, a bad memory access).
    Trap,
    /// Spent its CPU budget.
    Cpu,
    /// Ran past the wall-clock timeout.
    Timeout,
    /// Asked for more memory than its cap.
    OutOfMemory,
    /// Returned more than the output limit.
    OutputTooLarge,
    /// Could not be instantiated.
    Instantiate,
}

impl Outcome {
    /// Its name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::GuestError => "guest_error",
            Outcome::Trap => "trap",
            Outcome::Cpu => "cpu",
            Outcome::Timeout => "timeout",
            Outcome::OutOfMemory => "out_of_memory",
            Outcome::OutputTooLarge => "output_too_large",
            Outcome::Instantiate => "instantiate",
        }
    }

    /// Whether the outcome counts against the plugin's health.
    pub fn is_fault(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::GuestError)
    }
}

/// Counters and breaker state of one installed plugin version.
#[derive(Debug)]
pub struct Health {
    born: Instant,
    calls: AtomicU64,
    ok: AtomicU64,
    guest_errors: AtomicU64,
    traps: AtomicU64,
    cpu_exceeded: AtomicU64,
    timeouts: AtomicU64,
    out_of_memory: AtomicU64,
    output_too_large: AtomicU64,
    instantiate_failures: AtomicU64,
    denied: AtomicU64,
    refused: AtomicU64,
    llm_prompt_tokens: AtomicU64,
    llm_completion_tokens: AtomicU64,
    consecutive_faults: AtomicU64,
    breaker: AtomicU8,
    /// Milliseconds since `born` when an open breaker becomes half-open.
    reopen_at_ms: AtomicU64,
}

/// A point-in-time copy of [`Health`], for the API and the CLI.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `ok`, `degraded` (recent faults) or `failing` (breaker not closed).
    pub status: &'static str,
    /// Breaker state.
    pub breaker: Breaker,
    /// Calls made.
    pub calls: u64,
    /// Calls that returned a value.
    pub ok: u64,
    /// Calls that returned the plugin's own error.
    pub guest_errors: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Calls stopped at the CPU deadline.
    pub cpu_exceeded: u64,
    /// Calls stopped at the wall-clock timeout.
    pub timeouts: u64,
    /// Calls that hit the memory cap.
    pub out_of_memory: u64,
    /// Calls whose result was over the output limit.
    pub output_too_large: u64,
    /// Calls whose instance could not be created.
    pub instantiate_failures: u64,
    /// Capability calls answered `denied`.
    pub denied: u64,
    /// Calls refused by an open breaker.
    pub refused: u64,
    /// Faults in a row, up to now.
    pub consecutive_faults: u64,
    /// Model tokens the plugin spent through the `llm` capability.
    pub llm_tokens: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            born: Instant::now(),
            calls: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            guest_errors: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            cpu_exceeded: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            out_of_memory: AtomicU64::new(0),
            output_too_large: AtomicU64::new(0),
            instantiate_failures: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            llm_prompt_tokens: AtomicU64::new(0),
            llm_completion_tokens: AtomicU64::new(0),
            consecutive_faults: AtomicU64::new(0),
            breaker: AtomicU8::new(0),
            reopen_at_ms: AtomicU64::new(0),
        }
    }
}

impl Health {
    /// The breaker's state.
    pub fn breaker(&self) -> Breaker {
        Breaker::from_u8(self.breaker.load(Relaxed))
    }

    /// Lets a call through, or says how long until the breaker may let one through.
    pub fn admit(&self) -> Result<(), Duration> {
        match self.breaker() {
            Breaker::Closed => Ok(()),
            Breaker::HalfOpen => {
                // Exactly one caller wins the probe.
                match self.breaker.compare_exchange(2, 3, Relaxed, Relaxed) {
                    Ok(_) => Ok(()),
                    Err(_) => self.refuse(),
                }
            }
            Breaker::Open | Breaker::Probing => self.refuse(),
        }
    }

    fn refuse(&self) -> Result<(), Duration> {
        self.refused.fetch_add(1, Relaxed);
        let now = self.born.elapsed().as_millis() as u64;
        let at = self.reopen_at_ms.load(Relaxed);
        Err(Duration::from_millis(at.saturating_sub(now).max(1)))
    }

    /// Counts a finished call; returns how many faults are now in a row.
    pub fn record(&self, outcome: Outcome) -> u64 {
        self.calls.fetch_add(1, Relaxed);
        let counter = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::GuestError => &self.guest_errors,
            Outcome::Trap => &self.traps,
            Outcome::Cpu => &self.cpu_exceeded,
            Outcome::Timeout => &self.timeouts,
            Outcome::OutOfMemory => &self.out_of_memory,
            Outcome::OutputTooLarge => &self.output_too_large,
            Outcome::Instantiate => &self.instantiate_failures,
        };
        counter.fetch_add(1, Relaxed);
        if outcome.is_fault() {
            self.consecutive_faults.fetch_add(1, Relaxed) + 1
        } else {
            self.consecutive_faults.store(0, Relaxed);
            0
        }
    }

    /// Counts a capability call answered `denied`.
    pub fn record_denied(&self) {
        self.denied.fetch_add(1, Relaxed);
    }

    /// Counts model tokens spent through the `llm` capability.
    pub fn record_tokens(&self, prompt: u64, completion: u64) {
        self.llm_prompt_tokens.fetch_add(prompt, Relaxed);
        self.llm_completion_tokens.fetch_add(completion, Relaxed);
    }

    /// Opens the breaker for `cool_down`. Supervisor only.
    pub fn open(&self, cool_down: Duration) {
        let at = self.born.elapsed() + cool_down;
        self.reopen_at_ms.store(at.as_millis() as u64, Relaxed);
        self.breaker.store(1, Relaxed);
    }

    /// Lets one probe call through. Supervisor only.
    pub fn half_open(&self) {
        self.breaker.store(2, Relaxed);
    }

    /// Closes the breaker. Supervisor only.
    pub fn close(&self) {
        self.consecutive_faults.store(0, Relaxed);
        self.breaker.store(0, Relaxed);
    }

    /// A copy of the counters.
    pub fn report(&self) -> HealthReport {
        let breaker = self.breaker();
        let consecutive_faults = self.consecutive_faults.load(Relaxed);
        HealthReport {
            status: match (breaker, consecutive_faults) {
                (Breaker::Closed, 0) => "ok",
                (Breaker::Closed, _) => "degraded",
                _ => "failing",
            },
            breaker,
            calls: self.calls.load(Relaxed),
            ok: self.ok.load(Relaxed),
            guest_errors: self.guest_errors.load(Relaxed),
            traps: self.traps.load(Relaxed),
            cpu_exceeded: self.cpu_exceeded.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            out_of_memory: self.out_of_memory.load(Relaxed),
            output_too_large: self.output_too_large.load(Relaxed),
            instantiate_failures: self.instantiate_failures.load(Relaxed),
            denied: self.denied.load(Relaxed),
            refused: self.refused.load(Relaxed),
            consecutive_faults,
            llm_tokens: self.llm_prompt_tokens.load(Relaxed)
                + self.llm_completion_tokens.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_open_admits_exactly_one_probe() {
        let h = Health::default();
        h.open(Duration::from_secs(60));
        assert!(h.admit().is_err());
        h.half_open();
        assert!(h.admit().is_ok());
        assert!(
            h.admit().is_err(),
            "a second caller must wait for the probe"
        );
        assert_eq!(h.report().refused, 2);
    }

    #[test]
    fn faults_in_a_row_reset_on_success() {
        let h = Health::default();
        assert_eq!(h.record(Outcome::Trap), 1);
        assert_eq!(h.record(Outcome::Timeout), 2);
        assert_eq!(h.report().status, "degraded");
        assert_eq!(h.record(Outcome::GuestError), 0);
        assert_eq!(h.report().status, "ok");
    }
}
