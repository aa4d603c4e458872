//! The one path every plugin call takes, whatever its world: admission through the breaker, a
//! fresh store with the memory cap and the CPU deadline, the wall-clock timeout, the output
//! limit, classification of how the call ended, the counters, and the supervisor's notice.
//!
//! A room's typed client (the tutoring room's `TutorClient`, billing's `PaymentsClient`…)
//! picks the [`World`] its plugin was loaded as and passes a closure that makes the typed
//! call; everything else is here, once.

use std::future::Future;
use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::bindings::World;
use super::capabilities::CallState;
use super::error::{self, CallError, PluginError};
use super::health::{self, Outcome};
use super::{Installed, PluginHost};

/// How many bytes of strings and lists a call returned, for the output limit. Each room
/// implements it for its world's results.
pub trait OutputSize {
    /// The total.
    fn output_size(&self) -> usize;
}

impl OutputSize for () {
    fn output_size(&self) -> usize {
        0
    }
}

impl OutputSize for String {
    fn output_size(&self) -> usize {
        self.len()
    }
}

impl<T: OutputSize> OutputSize for Vec<T> {
    fn output_size(&self) -> usize {
        self.iter().map(|t| t.output_size() + 8).sum()
    }
}

impl<T: OutputSize> OutputSize for Option<T> {
    fn output_size(&self) -> usize {
        self.as_ref().map_or(0, OutputSize::output_size)
    }
}

impl OutputSize for super::types::CompletionRequest {
    fn output_size(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.content.len() + 8)
            .sum::<usize>()
            + self.model.output_size()
    }
}

/// What a call's closure hands back: the store (to classify a trap by what it recorded) and
/// the typed result, with the guest's error in the host's terms.
pub type Returned<R> = (Store<CallState>, wasmtime::Result<Result<R, PluginError>>);

impl PluginHost {
    /// The installed plugin `name`, which must run as a `kind` plugin.
    pub fn get_kind(&self, name: &str, kind: super::Kind) -> Result<Arc<Installed>, CallError> {
        let plugin = self
            .get(name)
            .ok_or_else(|| CallError::NotInstalled(name.to_string()))?;
        if plugin.kind() != kind {
            return Err(CallError::WrongWorld {
                plugin: name.to_string(),
                is: plugin.world,
                wanted: kind,
            });
        }
        Ok(plugin)
    }

    /// Runs one call of `function` on a fresh instance of `plugin` as world `W` under the
    /// limits, classifies how it ended, counts it, and tells the observer.
    pub async fn call<W, R, F, Fut>(
        &self,
        plugin: &Arc<Installed>,
        function: &'static str,
        call: F,
    ) -> Result<R, CallError>
    where
        W: World,
        R: OutputSize,
        F: FnOnce(W, Store<CallState>) -> Fut,
        Fut: Future<Output = Returned<R>>,
    {
        let name = plugin.name();
        let Some(pre) = plugin.prepared.downcast_ref::<W::Pre>() else {
            return Err(CallError::WrongWorld {
                plugin: name.to_string(),
                is: plugin.world,
                wanted: W::ID.kind,
            });
        };
        let health = &plugin.identity.health;
        if let Err(retry_in) = health.admit() {
            metrics::counter!("penpal_plugin_calls_total", "plugin" => name.to_string(),
                "world" => plugin.world.kind.to_string(), "function" => function, "outcome" => "circuit_open")
            .increment(1);
            metrics::gauge!("penpal_plugin_breaker_state", "plugin" => name.to_string()).set(2.0);
            return Err(CallError::CircuitOpen {
                plugin: name.to_string(),
                retry_in,
            });
        }
        let started = std::time::Instant::now();
        let state = CallState::new(
            plugin.identity.clone(),
            self.services.clone(),
            self.limits.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(self.limits.cpu_ticks());
        store.epoch_deadline_trap();

        let run = async {
            match W::instantiate(pre, &mut store).await {
                Ok(world) => {
                    let (store, r) = call(world, store).await;
                    (store, r, false)
                }
                Err(e) => (store, Err(e), true),
            }
        };
        let result = match tokio::time::timeout(self.limits.wall, run).await {
            Err(_) => Err((
                Outcome::Timeout,
                CallError::Timeout {
                    plugin: name.to_string(),
                    timeout: self.limits.wall,
                },
            )),
            Ok((store, r, instantiating)) => self.classify(name, &store, r, instantiating),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err((outcome, _)) => *outcome,
        };
        let faults = health.record(outcome);
        let world = plugin.world.kind.to_string();
        metrics::counter!("penpal_plugin_calls_total", "plugin" => name.to_string(), "world" => world.clone(),
            "function" => function, "outcome" => outcome.as_str())
        .increment(1);
        metrics::histogram!("penpal_plugin_call_duration_seconds", "plugin" => name.to_string(),
            "world" => world, "function" => function)
        .record(started.elapsed().as_secs_f64());
        let breaker = match health.breaker() {
            health::Breaker::Closed => 0.0,
            health::Breaker::HalfOpen | health::Breaker::Probing => 1.0,
            health::Breaker::Open => 2.0,
        };
        metrics::gauge!("penpal_plugin_breaker_state", "plugin" => name.to_string()).set(breaker);
        if (outcome.is_fault() || health.breaker() != health::Breaker::Closed)
            && let Some(observer) = self.observer.get()
        {
            observer.finished(plugin, outcome, faults);
        }
        result.map_err(|(_, e)| e)
    }

    fn classify<R: OutputSize>(
        &self,
        name: &str,
        store: &Store<CallState>,
        result: wasmtime::Result<Result<R, PluginError>>,
        instantiating: bool,
    ) -> Result<R, (Outcome, CallError)> {
        let plugin = name.to_string();
        match result {
            Ok(Ok(value)) => {
                let size = value.output_size();
                if size > self.limits.output_bytes {
                    Err((
                        Outcome::OutputTooLarge,
                        CallError::OutputTooLarge {
                            plugin,
                            size,
                            limit: self.limits.output_bytes,
                        },
                    ))
                } else {
                    Ok(value)
                }
            }
            Ok(Err(error)) => Err((Outcome::GuestError, CallError::Plugin { plugin, error })),
            Err(e) => {
                let state = store.data();
                if state.memory.hit {
                    return Err((
                        Outcome::OutOfMemory,
                        CallError::OutOfMemory {
                            plugin,
                            cap_mib: self.limits.memory_bytes >> 20,
                        },
                    ));
                }
                if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    return Err((
                        Outcome::Cpu,
                        CallError::CpuExceeded {
                            plugin,
                            budget: self.limits.cpu,
                        },
                    ));
                }
                if instantiating {
                    return Err((
                        Outcome::Instantiate,
                        CallError::Instantiate {
                            plugin,
                            message: error::escape_controls(&format!("{e:#}")),
                        },
                    ));
                }
                // A Rust guest prints its panic message to stderr before trapping; that
                // message says far more than "unreachable executed".
                let said =
                    error::explain_crash(&error::escape_controls(state.stderr_text().trim_end()));
                let message = if said.is_empty() {
                    e.downcast_ref::<Trap>()
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| format!("{e:#}"))
                } else {
                    said
                };
                Err((Outcome::Trap, CallError::Trap { plugin, message }))
            }
        }
    }
}

/// A typed call's result with the guest's error in the host's terms, for a client's closure.
pub fn lift<R, E: Into<PluginError>>(
    result: wasmtime::Result<Result<R, E>>,
) -> wasmtime::Result<Result<R, PluginError>> {
    result.map(|r| r.map_err(Into::into))
}
