//! The host capabilities plugins import — `log`, `config`, `kv`, `llm`, outbound `wasi:http` —
//! one file each, and the per-call state they run against.
//!
//! Each capability has the same small life cycle (`Capability`): it **links** its imports for
//! every WIT version the host runs, it **validates** at load what a plugin was granted against
//! what the host can give (warnings an operator sees), and it makes its **per-call state** the
//! first time a call uses it — a call that never logs or fetches pays nothing for either. A
//! capability's host functions see a borrowed view (`Ctx`): the plugin's identity, the
//! host's services and that capability's own state, never the rest of the call. Adding a
//! capability is one file here, its line in `capabilities!`, and its WIT.
//!
//! Every capability is linked for every plugin so that any component instantiates, but each
//! call checks what this plugin was *granted* (its manifest's request intersected with the
//! installer's grant) and answers a guest-visible `denied` otherwise. Host functions return
//! `wasmtime::Result<Result<T, PluginError>>`: the outer error traps the guest (reserved for
//! host bugs), the inner one is the guest's to handle.

mod config;
mod http;
mod kv;
mod llm;
mod log;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use config::{PluginConfig, Secret};
pub use http::{OutboundPolicy, host_allowed, special_purpose};
pub use kv::{DbKv, KvStore, MAX_KV_KEY, MAX_KV_KEYS, MAX_KV_VALUE, MemoryKv};
pub use llm::{LlmAnswer, LlmBackend, LlmRequest};
pub use log::{MAX_LOG_LINE, MAX_LOG_LINES_PER_CALL};

use super::bindings::WitVersion;
use super::error::PluginError;
use super::health::Health;
use super::limits::MemoryCap;
use super::manifest::Capabilities;

/// A boxed future, for the backend traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a guest may write to stderr (kept to explain a panic), in bytes.
pub const STDERR_CAPTURE: usize = 8 * 1024;

/// One host capability.
pub(crate) trait Capability: Sized + 'static {
    /// What the capability keeps for the length of one call.
    type State: Send + 'static;

    /// Links the capability's imports, for every WIT version, into `linker`.
    fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()>;

    /// What an operator should know at load about what `who` was granted of this capability
    /// (a granted secret nobody set, a model the host does not have).
    fn validate(_who: &Identity, _services: &Services) -> Vec<String> {
        Vec::new()
    }

    /// The state of one call, made when the call first uses the capability.
    fn state(who: &Arc<Identity>, services: &Services) -> Self::State;
}

/// The view a capability's host functions get: who calls, what the host offers, and the
/// capability's own state.
pub(crate) struct Ctx<'a, S> {
    pub(crate) who: &'a Arc<Identity>,
    pub(crate) services: &'a Services,
    pub(crate) state: &'a mut S,
}

impl<S> Ctx<'_, S> {
    /// A guest-visible refusal, counted against the plugin.
    pub(crate) fn denied(&self, what: &str) -> PluginError {
        self.who.health.record_denied();
        tracing::debug!(plugin = %self.who.name, capability = what, "capability denied");
        PluginError::Denied(format!(
            "plugin `{}` has not been granted {what}",
            self.who.name
        ))
    }
}

/// [`HasData`] for a capability's view, so its imports link through [`CallState::view`].
pub(crate) struct View<C>(PhantomData<C>);

impl<C: Capability> HasData for View<C> {
    type Data<'a> = Ctx<'a, C::State>;
}

macro_rules! capabilities {
    ($($capability:ty),* $(,)?) => {
        /// Links WASI (with the empty context [`CallState::new`] gives it) and every
        /// capability.
        pub(crate) fn link_all(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
            wasmtime_wasi::p2::add_to_linker_async(linker)?;
            // `types` declares no functions, but components import it: an empty instance
            // satisfies them.
            for version in WitVersion::ALL {
                linker.instance(&format!("penpal:plugin/types@{}", version.provided()))?;
            }
            $(<$capability as Capability>::link(linker)?;)*
            Ok(())
        }

        /// Every capability's load-time warnings for `who`.
        pub(crate) fn validate_all(who: &Identity, services: &Services) -> Vec<String> {
            let mut warnings = Vec::new();
            $(warnings.extend(<$capability as Capability>::validate(who, services));)*
            warnings
        }
    };
}

capabilities!(log::Log, config::Config, kv::Kv, llm::Llm, http::Http);

/// What the host gives every plugin call to work with.
#[derive(Clone)]
pub struct Services {
    /// Plugins' key-value data.
    pub kv: Arc<dyn KvStore>,
    /// The model behind the `llm` capability, when one is configured.
    pub llm: Option<Arc<dyn LlmBackend>>,
    /// Settings and secrets by plugin name.
    pub config: Arc<HashMap<String, PluginConfig>>,
    /// Special-purpose networks (loopback, private…) the operator lets plugins reach over
    /// HTTP; none by default.
    pub allowed_networks: Arc<Vec<ipnet::IpNet>>,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            kv: Arc::new(MemoryKv::default()),
            llm: None,
            config: Arc::new(HashMap::new()),
            allowed_networks: Arc::new(Vec::new()),
        }
    }
}

impl Services {
    /// `message` with every secret `plugin` can read replaced, so a plugin cannot leak its own
    /// secrets into the host's logs.
    pub(crate) fn redact(&self, plugin: &str, mut message: String) -> String {
        if let Some(config) = self.config.get(plugin) {
            for secret in config.secrets.values() {
                if !secret.expose().is_empty() && message.contains(secret.expose()) {
                    message = message.replace(secret.expose(), "<redacted>");
                }
            }
        }
        message
    }
}

/// Who a call is made for: fixed per installed plugin version.
#[derive(Debug)]
pub struct Identity {
    /// Plugin name (also its kv namespace and the key of its config).
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// What it requested and was granted.
    pub granted: Capabilities,
    /// Its counters.
    pub health: Arc<Health>,
}

/// The store data of one call.
pub struct CallState {
    pub(crate) who: Arc<Identity>,
    pub(crate) services: Services,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) stderr: MemoryOutputPipe,
    /// Each capability's state, by its type, made on first use.
    states: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl CallState {
    /// Fresh state with no ambient authority: no files, no environment, no network, no stdin;
    /// stderr captured (to explain a panic) and stdout discarded.
    pub fn new(who: Arc<Identity>, services: Services, memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        CallState {
            who,
            services,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            stderr,
            states: HashMap::new(),
        }
    }

    /// What the guest wrote to stderr, as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// Capability `C`'s view of this call.
    pub(crate) fn view<C: Capability>(&mut self) -> Ctx<'_, C::State> {
        let CallState {
            who,
            services,
            states,
            ..
        } = self;
        Ctx {
            who,
            services,
            state: state_of::<C>(states, who, services),
        }
    }

    /// Capability `C`'s state beside the resource table (for `wasi:http`, whose view needs both).
    pub(crate) fn state_and_table<C: Capability>(&mut self) -> (&mut C::State, &mut ResourceTable) {
        let CallState {
            who,
            services,
            states,
            table,
            ..
        } = self;
        (state_of::<C>(states, who, services), table)
    }
}

fn state_of<'a, C: Capability>(
    states: &'a mut HashMap<TypeId, Box<dyn Any + Send>>,
    who: &Arc<Identity>,
    services: &Services,
) -> &'a mut C::State {
    states
        .entry(TypeId::of::<C::State>())
        .or_insert_with(|| Box::new(C::state(who, services)))
        .downcast_mut::<C::State>()
        .unwrap_or_else(|| unreachable!("each state is stored under its own type"))
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
