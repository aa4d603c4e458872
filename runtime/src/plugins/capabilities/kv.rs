//! `kv`: a small key-value store private to each plugin (its namespace is its name), behind
//! the [`KvStore`] trait so the backend can be the process ([`MemoryKv`]) or the database.
//! Requires `capabilities.kv = true`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use wasmtime::component::Linker;

use super::{BoxFuture, CallState, Capability, Ctx, Identity, Services, View};
use crate::plugins::bindings::{v0_1, v0_2};
use crate::plugins::error::PluginError;

/// Longest kv key, in bytes.
pub const MAX_KV_KEY: usize = 256;
/// Largest kv value, in bytes.
pub const MAX_KV_VALUE: usize = 64 * 1024;
/// Most keys one plugin may hold.
pub const MAX_KV_KEYS: usize = 10_000;

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

/// A process-local [`KvStore`], for tools and tests that run plugins without a database.
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

/// The `kv` capability.
pub(crate) struct Kv;

impl Capability for Kv {
    type State = Kv;

    fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        v0_1::kv::add_to_linker::<_, View<Kv>>(linker, CallState::view::<Kv>)?;
        v0_2::kv::add_to_linker::<_, View<Kv>>(linker, CallState::view::<Kv>)
    }

    fn state(_: &Arc<Identity>, _: &Services) -> Kv {
        Kv
    }
}

impl Ctx<'_, Kv> {
    fn check(&self, key: &str) -> Result<(), PluginError> {
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

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        self.check(key)?;
        let kv = &self.services.kv;
        kv.get(&self.who.name, key)
            .await
            .map_err(PluginError::Unavailable)
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), PluginError> {
        self.check(key)?;
        if value.len() > MAX_KV_VALUE {
            return Err(PluginError::InvalidInput(format!(
                "kv values must be at most {MAX_KV_VALUE} bytes; this one is {}",
                value.len()
            )));
        }
        let kv = &self.services.kv;
        kv.set(&self.who.name, key, value, MAX_KV_KEYS)
            .await
            .map_err(PluginError::InvalidInput)
    }

    async fn delete(&self, key: &str) -> Result<(), PluginError> {
        self.check(key)?;
        let kv = &self.services.kv;
        kv.delete(&self.who.name, key)
            .await
            .map_err(PluginError::Unavailable)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PluginError> {
        if !self.who.granted.kv {
            return Err(self.denied("the kv store"));
        }
        let kv = &self.services.kv;
        kv.list(&self.who.name, prefix)
            .await
            .map_err(PluginError::Unavailable)
    }
}

macro_rules! kv_host {
    ($($version:ident),*) => {$(
        impl $version::kv::Host for Ctx<'_, Kv> {
            async fn get(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Result<Option<Vec<u8>>, $version::types::PluginError>> {
                Ok(Ctx::get(self, &key).await.map_err(Into::into))
            }

            async fn set(
                &mut self,
                key: String,
                value: Vec<u8>,
            ) -> wasmtime::Result<Result<(), $version::types::PluginError>> {
                Ok(Ctx::set(self, &key, value).await.map_err(Into::into))
            }

            async fn delete(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Result<(), $version::types::PluginError>> {
                Ok(Ctx::delete(self, &key).await.map_err(Into::into))
            }

            async fn list_keys(
                &mut self,
                prefix: String,
            ) -> wasmtime::Result<Result<Vec<String>, $version::types::PluginError>> {
                Ok(self.list(&prefix).await.map_err(Into::into))
            }
        }
    )*};
}

kv_host!(v0_1, v0_2);
