//! The limits every plugin call runs under, and the epoch ticker that enforces CPU time.
//!
//! Three independent limits, because each catches what the others cannot: a memory cap (the
//! store's limiter and the pooling allocator), a CPU deadline counted in engine epochs (which
//! interrupts a guest spinning in wasm), and a wall-clock timeout around the whole call (epochs
//! do not tick inside a host call, such as a slow model request).

use std::sync::Weak;
use std::time::Duration;

use wasmtime::Engine;

/// How often the engine's epoch advances; the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits for one plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory one instance may hold, in bytes.
    pub memory_bytes: usize,
    /// Most CPU time one call may spend in wasm.
    pub cpu: Duration,
    /// Most time one call may take, host calls included.
    pub wall: Duration,
    /// Largest result a call may return, in bytes of strings and lists.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu: Duration::from_millis(200),
            wall: Duration::from_secs(5),
            output_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// The CPU deadline in epoch ticks (at least one).
    pub fn cpu_ticks(&self) -> u64 {
        (self.cpu.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
    }
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is dropped.
pub fn start_epoch_ticker(engine: Weak<Engine>) {
    let spawned = std::thread::Builder::new()
        .name("penpal-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the epoch ticker; CPU deadlines will not fire");
    }
}

/// A store's memory limiter that remembers it refused to grow, so the host can tell an
/// out-of-memory failure from any other trap.
#[derive(Debug)]
pub struct MemoryCap {
    max_bytes: usize,
    /// Set when a growth past `max_bytes` was refused.
    pub hit: bool,
}

impl MemoryCap {
    /// A limiter allowing `max_bytes` per memory.
    pub fn new(max_bytes: usize) -> Self {
        MemoryCap {
            max_bytes,
            hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
