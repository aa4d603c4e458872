//! `PluginSupervisor`: the one writer of plugin life cycles — installs (including hot swaps of
//! a new version while the server runs, from the install directory it watches) and circuit
//! breakers.
//!
//! Calls never wait on this actor: the call path counts outcomes with atomics and only *tells*
//! the supervisor of a fault (or of a success while a breaker is not closed). The supervisor
//! then moves the breaker: open after `faults_to_open` faults in a row, half-open after a
//! cool-down that doubles each time a probe fails, closed after a successful probe.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;

use crate::plugins::health::Breaker;
use crate::plugins::manifest::MANIFEST_FILE;
use crate::plugins::{CallObserver, Capabilities, Installed, Outcome, PluginHost, PluginStatus};

/// How often the install directory is scanned for new versions.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);
pub use crate::plugins::installed::{GRANTS_FILE, install_if_newer, installed_packages};

/// When to stop calling a failing plugin, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    /// Faults in a row that open the breaker.
    pub faults_to_open: u64,
    /// The first cool-down.
    pub cool_down: Duration,
    /// The longest cool-down.
    pub max_cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            faults_to_open: 5,
            cool_down: Duration::from_secs(5),
            max_cool_down: Duration::from_secs(300),
        }
    }
}

/// A plugin call ended badly (or well, while its breaker was not closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallFinished {
    /// The plugin version called.
    pub plugin: Arc<Installed>,
    /// How the call ended.
    pub outcome: Outcome,
    /// Faults in a row, this one included.
    pub faults_in_a_row: u64,
}

/// Installs the package at `path` with `grants`; new calls reach it once this returns.
#[derive(Message)]
#[rtype(result = "Result<PluginStatus, String>")]
pub struct Install {
    /// A package directory.
    pub path: PathBuf,
    /// What the installer grants.
    pub grants: Capabilities,
}

/// Every installed plugin with its health.
#[derive(Message)]
#[rtype(result = "Vec<PluginStatus>")]
pub struct ListPlugins;

/// The supervisor actor.
pub struct PluginSupervisor {
    host: Arc<PluginHost>,
    policy: BreakerPolicy,
    /// Where `penpal plugin install` puts packages; scanned for new versions.
    watch: Option<PathBuf>,
    /// What was last seen in `watch`: package directory → component modification time.
    seen: HashMap<PathBuf, SystemTime>,
    /// The next cool-down per plugin version (name@digest).
    cool_downs: HashMap<String, Duration>,
}

impl PluginSupervisor {
    /// Starts a supervisor for `host`'s plugins, watching `watch` for installs when given. It
    /// observes `host`'s calls from the moment this returns, not from its first poll.
    pub fn launch(
        host: Arc<PluginHost>,
        policy: BreakerPolicy,
        watch: Option<PathBuf>,
    ) -> Addr<Self> {
        PluginSupervisor::create(move |ctx| {
            host.observe(Arc::new(ctx.address()));
            PluginSupervisor::new(host, policy, watch)
        })
    }

    fn new(host: Arc<PluginHost>, policy: BreakerPolicy, watch: Option<PathBuf>) -> Self {
        PluginSupervisor {
            host,
            policy,
            watch,
            seen: HashMap::new(),
            cool_downs: HashMap::new(),
        }
    }

    fn open(&mut self, plugin: &Arc<Installed>, ctx: &mut Context<Self>) {
        let key = format!("{}@{}", plugin.name(), plugin.digest);
        let cool_down = *self.cool_downs.get(&key).unwrap_or(&self.policy.cool_down);
        self.cool_downs
            .insert(key, (cool_down * 2).min(self.policy.max_cool_down));
        plugin.identity.health.open(cool_down);
        tracing::warn!(
            plugin = plugin.name(),
            version = %plugin.manifest.plugin.version,
            cool_down = ?cool_down,
            "plugin keeps failing: breaker open"
        );
        let plugin = plugin.clone();
        ctx.run_later(cool_down, move |_, _| {
            if plugin.identity.health.breaker() == Breaker::Open {
                plugin.identity.health.half_open();
                tracing::info!(
                    plugin = plugin.name(),
                    "breaker half-open: next call is a probe"
                );
            }
        });
    }

    /// Packages in the watched directory whose component changed since the last scan.
    fn changed_packages(&mut self) -> Vec<PathBuf> {
        let Some(dir) = &self.watch else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for pkg in installed_packages(dir) {
            let stamp = std::fs::metadata(pkg.join(MANIFEST_FILE))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if self.seen.insert(pkg.clone(), stamp) != Some(stamp) {
                changed.push(pkg);
            }
        }
        changed
    }
}

impl Actor for PluginSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.watch.is_some() {
            // What is already installed at start-up was loaded by the server; remember it.
            let _ = self.changed_packages();
            ctx.run_interval(WATCH_INTERVAL, |act, _| {
                let changed = act.changed_packages();
                if changed.is_empty() {
                    return;
                }
                let host = act.host.clone();
                // In order, on one blocking thread: compiling takes a while, and two versions
                // of one plugin must land oldest first.
                tokio::task::spawn_blocking(move || {
                    for pkg in changed {
                        if let Err(e) = install_if_newer(&host, &pkg) {
                            tracing::error!(package = %pkg.display(), error = %e, "could not install plugin");
                        }
                    }
                });
            });
        }
    }
}

impl CallObserver for Addr<PluginSupervisor> {
    fn finished(&self, plugin: &Arc<Installed>, outcome: Outcome, faults_in_a_row: u64) {
        self.do_send(CallFinished {
            plugin: plugin.clone(),
            outcome,
            faults_in_a_row,
        });
    }
}

impl Handler<CallFinished> for PluginSupervisor {
    type Result = ();

    fn handle(&mut self, msg: CallFinished, ctx: &mut Self::Context) {
        let health = &msg.plugin.identity.health;
        let state = health.breaker();
        if msg.outcome.is_fault() {
            let probe_failed = matches!(state, Breaker::Probing | Breaker::HalfOpen);
            let too_many =
                state == Breaker::Closed && msg.faults_in_a_row >= self.policy.faults_to_open;
            if probe_failed || too_many {
                self.open(&msg.plugin, ctx);
            }
        } else if matches!(state, Breaker::Probing | Breaker::HalfOpen) {
            health.close();
            self.cool_downs
                .remove(&format!("{}@{}", msg.plugin.name(), msg.plugin.digest));
            tracing::info!(
                plugin = msg.plugin.name(),
                "plugin recovered: breaker closed"
            );
        }
    }
}

impl Handler<Install> for PluginSupervisor {
    type Result = ResponseFuture<Result<PluginStatus, String>>;

    fn handle(&mut self, msg: Install, _: &mut Self::Context) -> Self::Result {
        let host = self.host.clone();
        Box::pin(async move {
            let installed =
                tokio::task::spawn_blocking(move || host.install_path(&msg.path, &msg.grants))
                    .await
                    .map_err(|e| format!("install task failed: {e}"))?
                    .map_err(|e| e.to_string())?;
            Ok(installed.status())
        })
    }
}

impl Handler<ListPlugins> for PluginSupervisor {
    type Result = Vec<PluginStatus>;

    fn handle(&mut self, _: ListPlugins, _: &mut Self::Context) -> Self::Result {
        self.host.list().iter().map(|p| p.status()).collect()
    }
}
