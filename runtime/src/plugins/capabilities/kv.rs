//! `kv`: a small key-value store private to each plugin (its namespace is its name), behind
//! the [`KvStore`] trait: the database ([`DbKv`]) in a server, the process ([`MemoryKv`]) in
//! tools and tests.
//! Requires `capabilities.kv = true`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use wasmtime::component::Linker;

use super::{BoxFuture, CallState, Capability, Ctx, Identity, Services, View};
use crate::plugins::bindings::{v0_1, v0_2};
use crate::plugins::error::PluginError;
use crate::store::Db;

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

/// The record id of a plugin's key: a hash, so any key is a valid id.
fn kv_id(ns: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{ns}\u{0}{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Plugins' key-value data in the database (`plugin_kv`), so it survives restarts and is
/// shared by every node on one database.
pub struct DbKv(pub Db);

impl KvStore for DbKv {
    fn get<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Row {
                value: String,
            }
            let row: Option<Row> = self
                .0
                .one(
                    // `value` is a keyword (SELECT VALUE); read the row by its key instead.
                    "SELECT * FROM type::record('plugin_kv', $id)",
                    json!({"id": kv_id(ns, key)}),
                )
                .await
                .map_err(|e| e.to_string())?;
            row.map(|r| B64.decode(r.value).map_err(|e| e.to_string()))
                .transpose()
        })
    }

    fn set<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        value: Vec<u8>,
        max_keys: usize,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct N {
                n: usize,
            }
            // One count: the keys other than this one, so replacing a value never hits the cap.
            let others: Option<N> = self
                .0
                .one(
                    "SELECT count() AS n FROM plugin_kv WHERE ns = $ns AND key != $key GROUP ALL",
                    json!({"ns": ns, "key": key}),
                )
                .await
                .map_err(|e| e.to_string())?;
            if others.is_some_and(|n| n.n >= max_keys) {
                return Err(format!("the plugin already holds {max_keys} keys"));
            }
            self.0
                .exec(
                    "UPSERT type::record('plugin_kv', $id) CONTENT { ns: $ns, key: $key, value: $value }",
                    json!({"id": kv_id(ns, key), "ns": ns, "key": key, "value": B64.encode(value)}),
                )
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn delete<'a>(&'a self, ns: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0
                .exec(
                    "DELETE type::record('plugin_kv', $id)",
                    json!({"id": kv_id(ns, key)}),
                )
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn list<'a>(
        &'a self,
        ns: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct K {
                key: String,
            }
            let rows: Vec<K> = self
                .0
                .rows(
                    "SELECT key FROM plugin_kv WHERE ns = $ns AND string::starts_with(key, $prefix) ORDER BY key",
                    json!({"ns": ns, "prefix": prefix}),
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows.into_iter().map(|k| k.key).collect())
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

#[cfg(test)]
mod db_tests {
    use super::*;

    /// What a plugin stores is its own and bounded, and reads back as it was written.
    #[tokio::test]
    async fn plugin_kv_round_trips_isolates_and_caps() {
        let kv = DbKv(Db::connect("mem://", None).await.unwrap());
        kv.set("tutor-a", "streak", b"3".to_vec(), 2).await.unwrap();
        kv.set("tutor-a", "seen:chat", vec![0, 255], 2)
            .await
            .unwrap();
        // Replacing a value is not a new key, so the cap does not refuse it.
        kv.set("tutor-a", "streak", b"4".to_vec(), 2).await.unwrap();
        let full = kv.set("tutor-a", "third", b"x".to_vec(), 2).await;
        assert!(full.unwrap_err().contains("2 keys"));
        // Another plugin sees none of it, and cannot delete it.
        assert_eq!(kv.get("tutor-b", "streak").await.unwrap(), None);
        assert!(kv.list("tutor-b", "").await.unwrap().is_empty());
        kv.delete("tutor-b", "streak").await.unwrap();

        assert_eq!(
            kv.get("tutor-a", "streak").await.unwrap(),
            Some(b"4".to_vec())
        );
        assert_eq!(
            kv.get("tutor-a", "seen:chat").await.unwrap(),
            Some(vec![0, 255])
        );
        assert_eq!(kv.list("tutor-a", "seen:").await.unwrap(), ["seen:chat"]);
        kv.delete("tutor-a", "streak").await.unwrap();
        assert_eq!(kv.get("tutor-a", "streak").await.unwrap(), None);
        // The freed slot can be used again.
        kv.set("tutor-a", "third", b"x".to_vec(), 2).await.unwrap();
    }
}
