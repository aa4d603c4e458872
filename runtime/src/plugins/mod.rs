//! The plugin host: one wasmtime engine, the components it has compiled, and the plugins
//! installed on it.
//!
//! Everything a third party may replace runs here as a WebAssembly component behind the
//! `penpal:plugin` WIT contract. The design choices that matter:
//!
//! - **One engine, one linker**, shared by every plugin; an [`InstancePre`] per installed
//!   plugin version, so a call only instantiates — it never resolves imports or compiles.
//! - **A fresh store per call** with the pooling allocator: no state leaks between learners,
//!   and a fresh instance costs microseconds.
//! - **No ambient authority**: WASI is linked with an empty context (no files, environment,
//!   sockets or stdin), each `penpal:plugin` capability answers `denied` unless requested
//!   *and* granted ([`capabilities`]), and `wasi:http` reaches only granted hosts
//!   ([`capabilities`]).
//! - **Limits on every call** ([`limits`]): memory cap, CPU deadline, wall-clock timeout,
//!   output size. A failure fails that call alone and is counted ([`health`]).
//! - **Hot swap**: the installed map holds `Arc`s; installing a version replaces the entry,
//!   so new calls reach it while calls in flight finish on the version they started with.
//! - **Four worlds, one path**: [`bindings`] generates each WIT version once; a component is
//!   loaded as the world and version it exports ([`WorldId`]), and every call, whatever its
//!   world, goes through [`PluginHost::call`]. This module knows no domain: each room owns a
//!   typed client for its world (`TutorClient` in tutoring, `PaymentsClient` in billing,
//!   `NotifierClient` in notify, `LmsClient` in lms).
//!
//! [`InstancePre`]: wasmtime::component::InstancePre

pub mod bindings;
pub mod cache;
mod call;
pub mod capabilities;
pub mod check;
mod error;
pub mod health;
pub mod installed;
pub mod limits;
pub mod manifest;
pub mod package;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The shared WIT types in the host's current version (`penpal:plugin@0.2`).
pub use bindings::v0_2::types;
pub use bindings::{WitVersion, World, WorldId};
pub use cache::{CacheOutcome, CompileCache};
pub use call::{OutputSize, Returned, lift};
pub use capabilities::{CallState, Identity, PluginConfig, Secret, Services, special_purpose};
pub use error::{CallError, LoadError, PluginError, escape_controls};
pub use health::{Health, HealthReport, Outcome};
pub use limits::Limits;
pub use manifest::{Capabilities, Kind, Manifest};
pub use package::Package;

/// Bytes of each pooled memory and table kept mapped between instances.
const KEEP_RESIDENT: usize = 2 << 20;

/// Most instances alive at once across all plugins.
const MAX_INSTANCES: u32 = 1000;

/// Told of every call that failed, and of every success while a breaker is not closed, so the
/// plugin's supervisor can move its breaker.
pub trait CallObserver: Send + Sync {
    /// A call to `plugin` ended with `outcome`; `faults_in_a_row` counts it.
    fn finished(&self, plugin: &Arc<Installed>, outcome: Outcome, faults_in_a_row: u64);
}

/// An installed plugin version, ready to call.
pub struct Installed {
    /// Its manifest.
    pub manifest: Manifest,
    /// Name, version, grants and counters.
    pub identity: Arc<Identity>,
    /// SHA-256 of the component.
    pub digest: String,
    /// Whether it was compiled or loaded from the cache.
    pub cache: CacheOutcome,
    /// The world it exports, at the WIT version it was built against.
    pub world: WorldId,
    /// That world's typed pre-instance (a [`World::Pre`]), made once at load.
    prepared: Box<dyn Any + Send + Sync>,
}

impl Installed {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.world.kind
    }

    /// A summary for the API and the CLI.
    pub fn status(&self) -> PluginStatus {
        PluginStatus {
            name: self.identity.name.clone(),
            version: self.manifest.plugin.version.to_string(),
            kind: self.manifest.plugin.kind,
            wit: self.manifest.plugin.wit.to_string(),
            runs_as: self.world.to_string(),
            publisher: self.manifest.plugin.publisher.0.clone(),
            description: self.manifest.plugin.description.0.clone(),
            granted: self.identity.granted.describe(),
            digest: self.digest.clone(),
            health: self.identity.health.report(),
        }
    }
}

/// What the API and the CLI show of an installed plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: Kind,
    /// WIT version it targets.
    pub wit: String,
    /// The world and WIT line the host runs it as, such as `tutor@0.1`.
    pub runs_as: String,
    /// Publisher.
    pub publisher: String,
    /// Description.
    pub description: String,
    /// Capabilities it holds.
    pub granted: String,
    /// SHA-256 of its component.
    pub digest: String,
    /// Counters and breaker.
    pub health: HealthReport,
}

/// The engine, the linker and the installed plugins.
pub struct PluginHost {
    engine: Arc<Engine>,
    linker: Linker<CallState>,
    cache: CompileCache,
    limits: Limits,
    services: Services,
    installed: RwLock<HashMap<String, Arc<Installed>>>,
    failed: RwLock<BTreeMap<String, String>>,
    observer: OnceLock<Arc<dyn CallObserver>>,
}

/// A package that did not load, and why: shown to operators beside the plugins that did.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct FailedPlugin {
    /// The package's directory.
    pub package: String,
    /// Why it did not load.
    pub reason: String,
}

impl PluginHost {
    /// A host whose calls run under `limits`, compiling through `cache`.
    pub fn new(limits: Limits, cache: CompileCache, services: Services) -> wasmtime::Result<Self> {
        let engine = Arc::new(Engine::new(&engine_config(&limits))?);
        limits::start_epoch_ticker(Arc::downgrade(&engine));
        let mut linker = Linker::new(&engine);
        capabilities::link_all(&mut linker)?;
        Ok(PluginHost {
            engine,
            linker,
            cache,
            limits,
            services,
            installed: RwLock::new(HashMap::new()),
            failed: RwLock::new(BTreeMap::new()),
            observer: OnceLock::new(),
        })
    }

    /// Notes that the package at `package` did not load, and why (or, with `None`, that it
    /// now has).
    pub fn note_load(&self, package: &Path, failure: Option<String>) {
        let mut failed = self.failed.write().unwrap_or_else(|p| p.into_inner());
        let key = package.display().to_string();
        match failure {
            Some(reason) => {
                failed.insert(key, reason);
            }
            None => {
                failed.remove(&key);
            }
        }
    }

    /// Packages that did not load, with the reason.
    pub fn failures(&self) -> Vec<FailedPlugin> {
        let failed = self.failed.read().unwrap_or_else(|p| p.into_inner());
        failed
            .iter()
            .map(|(package, reason)| FailedPlugin {
                package: package.clone(),
                reason: reason.clone(),
            })
            .collect()
    }

    /// The engine (for tools that inspect components).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The limits calls run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sets who is told of call outcomes (the supervisor). Only the first call takes effect.
    pub fn observe(&self, observer: Arc<dyn CallObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Compiles (or loads from the cache) and links `package`, granting it what it requested
    /// and `grants` allows. Blocking: compiling takes up to a second.
    pub fn load(&self, package: &Package, grants: &Capabilities) -> Result<Installed, LoadError> {
        let (component, cache) = self.compile(&package.wasm)?;
        self.link(package, &component, cache, grants, None)
    }

    /// [`load`](Self::load), installed under `name` instead of its manifest's: a school's own
    /// install of a package runs as `NAME@SCHOOL`, with a store and usage of its own.
    pub fn load_as(
        &self,
        package: &Package,
        grants: &Capabilities,
        name: &str,
    ) -> Result<Installed, LoadError> {
        let (component, cache) = self.compile(&package.wasm)?;
        self.link(package, &component, cache, grants, Some(name))
    }

    /// Checks an already compiled `component` against `package`'s manifest and links it.
    pub(crate) fn link(
        &self,
        package: &Package,
        component: &Component,
        cache: CacheOutcome,
        grants: &Capabilities,
        name: Option<&str>,
    ) -> Result<Installed, LoadError> {
        let manifest = &package.manifest;
        let report = check::inspect(&self.engine, component, manifest);
        if let Some(problem) = report.problems.first() {
            return Err(LoadError::Contract(problem.clone()));
        }
        let pre = self.linker.instantiate_pre(component).map_err(|e| {
            LoadError::Contract(format!(
                "the component cannot be linked on this host: {e:#}"
            ))
        })?;
        let world = report.runs_as.ok_or_else(|| {
            LoadError::Contract("the component exports no world this host runs".into())
        })?;
        let prepared =
            bindings::prepare(world, pre).map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        let identity = Arc::new(Identity {
            name: name.unwrap_or(&manifest.plugin.name.0).to_string(),
            version: manifest.plugin.version.to_string(),
            granted: manifest.capabilities.intersect(grants),
            health: Arc::new(Health::default()),
        });
        for warning in capabilities::validate_all(&identity, &self.services) {
            tracing::warn!(plugin = %identity.name, "{warning}");
        }
        Ok(Installed {
            manifest: manifest.clone(),
            identity,
            digest: cache::digest(&package.wasm),
            cache,
            world,
            prepared,
        })
    }

    /// Compiles a component without installing it (for `penpal plugin check`).
    pub fn compile(&self, wasm: &[u8]) -> Result<(Component, CacheOutcome), LoadError> {
        self.cache.load(&self.engine, wasm).map_err(|e| match e {
            cache::CompileError::Limit(why) => LoadError::Limit {
                why,
                memory_mib: self.limits.memory_bytes >> 20,
            },
            cache::CompileError::Invalid(why) => LoadError::Compile(why),
        })
    }

    /// Makes `plugin` the version new calls reach. Calls already running on the version it
    /// replaces finish there: they hold their own `Arc`.
    pub fn install(&self, plugin: Installed) -> Arc<Installed> {
        let plugin = Arc::new(plugin);
        let replaced = self
            .write()
            .insert(plugin.name().to_string(), plugin.clone());
        tracing::info!(
            plugin = plugin.name(),
            version = %plugin.manifest.plugin.version,
            world = %plugin.world,
            replaced = replaced.map(|old| old.manifest.plugin.version.to_string()),
            granted = %plugin.identity.granted.describe(),
            cache = ?plugin.cache,
            "plugin installed"
        );
        plugin
    }

    /// Reads and installs the package at `path`.
    pub fn install_path(
        &self,
        path: &Path,
        grants: &Capabilities,
    ) -> Result<Arc<Installed>, LoadError> {
        let package = Package::open(path)?;
        Ok(self.install(self.load(&package, grants)?))
    }

    /// Removes a plugin; calls in flight finish.
    pub fn uninstall(&self, name: &str) -> Option<Arc<Installed>> {
        self.write().remove(name)
    }

    /// The version new calls to `name` reach.
    pub fn get(&self, name: &str) -> Option<Arc<Installed>> {
        self.read().get(name).cloned()
    }

    /// Every installed plugin, by name.
    pub fn list(&self) -> Vec<Arc<Installed>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Installed>>> {
        // A panic while holding this lock cannot leave the map half-written (inserts and
        // removes are single calls), so a poisoned lock is still sound to use.
        self.installed.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Installed>>> {
        self.installed.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The engine configuration every plugin runs under: component model, epoch interruption, and
/// the pooling allocator sized by `limits`. Public so benchmarks can compare like with like.
pub fn engine_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 4)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 4)
        .total_stacks(MAX_INSTANCES)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_core_instances_per_component(32)
        .max_memory_size(limits.memory_bytes)
        // Keep the pages an instance dirtied mapped and reset them in place for the next one
        // (finding them with PAGEMAP_SCAN where the kernel has it): page faults and madvise
        // otherwise cost more than the call itself.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
