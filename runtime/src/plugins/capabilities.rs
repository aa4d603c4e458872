//! The host capabilities plugins import — `log`, `config`, `kv`, `llm` — and the per-call
//! state they run against.
//!
//! Every capability is linked for every plugin so that any component instantiates, but each
//! call checks what this plugin was *granted* (its manifest's request intersected with the
//! installer's grant) and answers a guest-visible `denied` otherwise. Host functions return
//! `wasmtime::Result<Result<T, PluginError>>`: the outer error traps the guest (reserved for
//! host bugs), the inner one is the guest's to handle.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::penpal::plugin::{config, kv, llm, log, types};
use super::health::Health;
use super::limits::MemoryCap;
use super::manifest::Capabilities;
use types::PluginError;

/// A boxed future, for the backend traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Longest log line kept from a plugin, in bytes.
pub const MAX_LOG_LINE: usize = 4096;
/// Longest kv key, in bytes.
pub const MAX_KV_KEY: usize = 256;
/// Largest kv value, in bytes.
pub const MAX_KV_VALUE: usize = 64 * 1024;
/// Most keys one plugin may hold.
pub const MAX_KV_KEYS: usize = 10_000;
/// Log lines one call may write; the rest are dropped (and counted in one closing line).
pub const MAX_LOG_LINES_PER_CALL: u32 = 64;
/// What a guest may write to stderr (kept to explain a panic), in bytes.
pub const STDERR_CAPTURE: usize = 8 * 1024;

/// Where plugins' key-value data lives. Namespaces are plugin names; a plugin only ever
/// reaches its own.
pub trait KvStore: Send + Sync {
    /// The value at `key`.
    fn get<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>>;
    /// Stores `value` at `key`; fails when the namespace already holds `max_keys` other keys.
    fn set<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        value: Vec<u8>,
        max_keys: usize,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Removes `key`.
    fn delete<'a>(&'a self, ns: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Keys with `prefix`, sorted.
    fn list<'a>(
        &'a self,
        ns: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, String>>;
}

/// A process-local [`KvStore`]: the single-node default until the database-backed store.
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>,
}

impl MemoryKv {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, BTreeMap<String, Vec<u8>>>) -> T,
    ) -> Result<T, String> {
        let mut data = self
            .data
            .lock()
            .map_err(|_| "kv store lock poisoned".to_string())?;
        Ok(f(&mut data))
    }
}

impl KvStore for MemoryKv {
    fn get<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move { self.with(|d| d.get(ns).and_then(|m| m.get(key)).cloned()) })
    }

    fn set<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        value: Vec<u8>,
        max_keys: usize,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.with(|d| {
                let space = d.entry(ns.to_string()).or_default();
                if !space.contains_key(key) && space.len() >= max_keys {
                    return Err(format!("the store is full ({max_keys} keys)"));
                }
                space.insert(key.to_string(), value);
                Ok(())
            })?
        })
    }

    fn delete<'a>(&'a self, ns: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.with(|d| {
                if let Some(space) = d.get_mut(ns) {
                    space.remove(key);
                }
            })
        })
    }

    fn list<'a>(
        &'a self,
        ns: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            self.with(|d| {
                d.get(ns)
                    .map(|space| {
                        space
                            .range(prefix.to_string()..)
                            .take_while(|(k, _)| k.starts_with(prefix))
                            .map(|(k, _)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default()
            })
        })
    }
}

/// A completion request as the host's model client takes it.
pub type LlmRequest = types::CompletionRequest;

/// A finished completion.
#[derive(Debug, Clone)]
pub struct LlmAnswer {
    /// The text.
    pub content: String,
    /// Prompt tokens used.
    pub prompt_tokens: u32,
    /// Completion tokens used.
    pub completion_tokens: u32,
}

/// The host's model, as the `llm` capability reaches it.
pub trait LlmBackend: Send + Sync {
    /// Runs `request` to completion; `Err` is a message for an `unavailable` error.
    fn complete(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmAnswer, String>>;
}

/// A secret value; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The operator's settings and secrets for one plugin.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    /// Plain settings, readable by the plugin.
    pub settings: BTreeMap<String, String>,
    /// Secrets, readable only when granted.
    pub secrets: BTreeMap<String, Secret>,
}

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
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: super::outbound::OutboundPolicy,
    log_lines: u32,
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
            outbound: super::outbound::OutboundPolicy {
                who: who.clone(),
                networks: services.allowed_networks.clone(),
            },
            http: WasiHttpCtx::new(),
            who,
            services,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            stderr,
            log_lines: 0,
        }
    }

    /// What the guest wrote to stderr, as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// `message` with every secret this plugin can read replaced, so a plugin cannot leak its
    /// own secrets into the host's logs.
    fn redact(&self, mut message: String) -> String {
        if let Some(config) = self.services.config.get(&self.who.name) {
            for secret in config.secrets.values() {
                if !secret.0.is_empty() && message.contains(&secret.0) {
                    message = message.replace(&secret.0, "<redacted>");
                }
            }
        }
        message
    }

    fn denied(&self, what: &str) -> PluginError {
        self.who.health.record_denied();
        tracing::debug!(plugin = %self.who.name, capability = what, "capability denied");
        PluginError::Denied(format!(
            "plugin `{}` has not been granted {what}",
            self.who.name
        ))
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl types::Host for CallState {}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            if self.log_lines == MAX_LOG_LINES_PER_CALL + 1 {
                tracing::warn!(target: "penpal::plugin", plugin = %self.who.name, "plugin logs too much; dropping the rest of this call's lines");
            }
            return Ok(());
        }
        let mut line = super::error::escape_controls(&self.redact(message));
        if line.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        let (plugin, version) = (&self.who.name, &self.who.version);
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "penpal::plugin", plugin, version, "{line}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "penpal::plugin", plugin, version, "{line}")
            }
            log::Level::Info => tracing::info!(target: "penpal::plugin", plugin, version, "{line}"),
            log::Level::Warn => tracing::warn!(target: "penpal::plugin", plugin, version, "{line}"),
            log::Level::Error => {
                tracing::error!(target: "penpal::plugin", plugin, version, "{line}")
            }
        }
        Ok(())
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .services
            .config
            .get(&self.who.name)
            .and_then(|c| c.settings.get(&key))
            .cloned())
    }

    async fn secret(&mut self, name: String) -> wasmtime::Result<Result<String, PluginError>> {
        if !self.who.granted.secrets.iter().any(|s| s.0 == name) {
            return Ok(Err(self.denied(&format!("the secret `{name}`"))));
        }
        Ok(self
            .services
            .config
            .get(&self.who.name)
            .and_then(|c| c.secrets.get(&name))
            .map(|s| s.0.clone())
            .ok_or_else(|| {
                PluginError::NotFound(format!("the operator has not set the secret `{name}`"))
            }))
    }
}

impl CallState {
    fn kv_check(&self, key: &str) -> Result<(), PluginError> {
        if !self.who.granted.kv {
            return Err(self.denied("the kv store"));
        }
        if key.is_empty() || key.len() > MAX_KV_KEY {
            return Err(PluginError::InvalidInput(format!(
                "kv keys must be 1 to {MAX_KV_KEY} bytes"
            )));
        }
        Ok(())
    }
}

impl kv::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, PluginError>> {
        if let Err(e) = self.kv_check(&key) {
            return Ok(Err(e));
        }
        Ok(self
            .services
            .kv
            .get(&self.who.name, &key)
            .await
            .map_err(PluginError::Unavailable))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        if let Err(e) = self.kv_check(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_KV_VALUE {
            return Ok(Err(PluginError::InvalidInput(format!(
                "kv values must be at most {MAX_KV_VALUE} bytes; this one is {}",
                value.len()
            ))));
        }
        Ok(self
            .services
            .kv
            .set(&self.who.name, &key, value, MAX_KV_KEYS)
            .await
            .map_err(PluginError::InvalidInput))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), PluginError>> {
        if let Err(e) = self.kv_check(&key) {
            return Ok(Err(e));
        }
        Ok(self
            .services
            .kv
            .delete(&self.who.name, &key)
            .await
            .map_err(PluginError::Unavailable))
    }

    async fn list_keys(
        &mut self,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, PluginError>> {
        if !self.who.granted.kv {
            return Ok(Err(self.denied("the kv store")));
        }
        Ok(self
            .services
            .kv
            .list(&self.who.name, &prefix)
            .await
            .map_err(PluginError::Unavailable))
    }
}

impl llm::Host for CallState {
    async fn complete(
        &mut self,
        request: types::CompletionRequest,
    ) -> wasmtime::Result<Result<llm::Completion, PluginError>> {
        if !self.who.granted.llm {
            return Ok(Err(self.denied("the llm capability")));
        }
        if request.messages.is_empty() {
            return Ok(Err(PluginError::InvalidInput(
                "a completion request needs at least one message".into(),
            )));
        }
        let Some(backend) = self.services.llm.clone() else {
            return Ok(Err(PluginError::Unavailable(
                "no language model is configured on this host".into(),
            )));
        };
        Ok(match backend.complete(request).await {
            Ok(answer) => {
                self.who
                    .health
                    .record_tokens(answer.prompt_tokens.into(), answer.completion_tokens.into());
                Ok(llm::Completion {
                    content: answer.content,
                    usage: llm::Usage {
                        prompt_tokens: answer.prompt_tokens,
                        completion_tokens: answer.completion_tokens,
                    },
                })
            }
            Err(e) => Err(PluginError::Unavailable(e)),
        })
    }
}
