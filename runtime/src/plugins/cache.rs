//! The on-disk compile cache.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds; loading a compiled
//! artifact takes about one. Artifacts are keyed by the SHA-256 of the component's bytes *and*
//! the engine's compatibility hash (wasmtime version, target, settings), so a new wasmtime or a
//! changed engine setting never loads an artifact it cannot run: it simply misses.
//!
//! Loading an artifact runs native code from it, so the cache trusts nothing it reads back:
//! - each artifact carries an HMAC-SHA256 over its name (source digest and engine hash) and its
//!   bytes, keyed by a secret kept *outside* the cache directory (`<dir>.key`, owner-only). A
//!   file swapped in from another plugin, or written by anyone without the key, fails the check
//!   before `deserialize` and is recompiled;
//! - a cache directory, key or artifact that is not owned by the server's user, or that others
//!   may write, is not used at all (logged; every load compiles).
//!
//! A component that this host's limits cannot run (a memory cap below its initial memory) is
//! refused as such at once — it is not mistaken for a damaged artifact and recompiled.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a component could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The component needs more than this host's limits allow; recompiling would not help.
    #[error("{0}")]
    Limit(String),
    /// The bytes are not a component this engine can compile.
    #[error("{0}")]
    Invalid(String),
}

impl CompileError {
    fn of(e: wasmtime::Error) -> CompileError {
        let text = format!("{e:#}");
        // The pooling allocator's own words for a module it cannot host.
        if text.contains("pooling allocator") || text.contains("exceeds the limit") {
            CompileError::Limit(text)
        } else {
            CompileError::Invalid(text)
        }
    }
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Loaded from a compiled artifact.
    Hit,
    /// Compiled now (and stored, when the cache has a directory).
    Compiled,
}

/// Compiled components on disk, or no cache at all.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// The hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CompileCache {
    /// A cache in `dir` (created, owner-only, when first written).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        CompileCache {
            dir: Some(dir.into()),
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        CompileCache { dir: None }
    }

    /// The component for `wasm`, compiled or loaded from the cache.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), CompileError> {
        let compile = || Component::new(engine, wasm).map_err(CompileError::of);
        let Some(dir) = &self.dir else {
            return Ok((compile()?, CacheOutcome::Compiled));
        };
        let Some(secret) = self.secret(dir) else {
            return Ok((compile()?, CacheOutcome::Compiled));
        };
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let key = format!("{}-{:016x}", digest(wasm), compat.finish());
        let artifact = dir.join(format!("{key}.cwasm"));
        if let Some(component) = Self::read(engine, &artifact, &key, &secret)? {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = compile()?;
        if let Err(e) = Self::write(dir, &artifact, &key, &secret, &component) {
            // A read-only or full disk costs a recompile at the next start, nothing more.
            tracing::warn!(dir = %dir.display(), error = %e, "could not store a compiled plugin");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    /// The cache's MAC key, made on first use, or `None` when the directory or the key cannot
    /// be trusted (then the cache is not used).
    fn secret(&self, dir: &Path) -> Option<Vec<u8>> {
        let key_file = dir.with_extension("key");
        let checked = (|| {
            if dir.exists() {
                private(dir)?;
            }
            match std::fs::read(&key_file) {
                Ok(secret) => {
                    private(&key_file)?;
                    if secret.len() < 32 {
                        return Err(format!("{} is too short", key_file.display()));
                    }
                    Ok(secret)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let secret: [u8; 32] = rand::random();
                    write_private(&key_file, &secret)
                        .map_err(|e| format!("cannot write {}: {e}", key_file.display()))?;
                    Ok(secret.to_vec())
                }
                Err(e) => Err(format!("cannot read {}: {e}", key_file.display())),
            }
        })();
        match checked {
            Ok(secret) => Some(secret),
            Err(why) => {
                tracing::error!(dir = %dir.display(), "not using the compile cache: {why}");
                None
            }
        }
    }

    /// The artifact for `key`, if there is one that this cache wrote; `Err` only when the
    /// engine's limits refuse the component itself.
    fn read(
        engine: &Engine,
        artifact: &Path,
        key: &str,
        secret: &[u8],
    ) -> Result<Option<Component>, CompileError> {
        let Ok(bytes) = std::fs::read(artifact) else {
            return Ok(None);
        };
        if let Err(why) = private(artifact) {
            tracing::error!(file = %artifact.display(), "ignoring a compiled plugin: {why}");
            return Ok(None);
        }
        let tag = std::fs::read_to_string(artifact.with_extension("mac")).unwrap_or_default();
        if !verify(secret, key, &bytes, tag.trim()) {
            tracing::warn!(file = %artifact.display(), "compiled plugin fails its authentication check; recompiling");
            return Ok(None);
        }
        // SAFETY: `deserialize` runs native code from the artifact, so it must be one this
        // process's wasmtime wrote: its MAC, keyed by a secret outside the cache directory and
        // bound to the artifact's name (source digest and engine hash), was checked above, and
        // the file and directory are the server user's alone.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        match component.map_err(CompileError::of) {
            Ok(component) => Ok(Some(component)),
            Err(limit @ CompileError::Limit(_)) => Err(limit),
            Err(e) => {
                tracing::warn!(file = %artifact.display(), error = %e, "unusable compiled plugin; recompiling");
                Ok(None)
            }
        }
    }

    fn write(
        dir: &Path,
        artifact: &Path,
        key: &str,
        secret: &[u8],
        component: &Component,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // Unique per process and call, so concurrent loads of one component never share a
        // temporary file; the rename makes whichever finishes last win, whole.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = artifact.with_extension(format!("tmp{}-{n}", std::process::id()));
        write_private(&tmp, &bytes)?;
        let mac = artifact.with_extension(format!("mac.tmp{}-{n}", std::process::id()));
        write_private(&mac, tag(secret, key, &bytes).as_bytes())?;
        std::fs::rename(mac, artifact.with_extension("mac"))?;
        std::fs::rename(tmp, artifact)
    }
}

/// The hex HMAC-SHA256 of an artifact named `key` holding `bytes`.
fn tag(secret: &[u8], key: &str, bytes: &[u8]) -> String {
    hex(&mac(secret, key, bytes).finalize().into_bytes())
}

fn mac(secret: &[u8], key: &str, bytes: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(key.as_bytes());
    mac.update(&[0]);
    mac.update(bytes);
    mac
}

/// Whether `tag` (hex) authenticates `bytes` under `key`, compared in constant time.
fn verify(secret: &[u8], key: &str, bytes: &[u8], tag: &str) -> bool {
    let Some(raw) = unhex(tag) else {
        return false;
    };
    mac(secret, key, bytes).verify_slice(&raw).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes `bytes` to `path`, readable and writable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// `Err(why)` unless `path` belongs to this process's user and no one else may write it.
fn private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        if meta.file_type().is_symlink() {
            return Err(format!("{} is a symbolic link", path.display()));
        }
        if let Some(me) = own_uid()
            && meta.uid() != me
        {
            return Err(format!(
                "{} belongs to user {}, not to this server's user {me}",
                path.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} may be written by other users (mode {:o})",
                path.display(),
                meta.mode() & 0o777
            ));
        }
    }
    Ok(())
}

/// This process's user id: the owner of its own `/proc` entry (Linux).
#[cfg(unix)]
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_bind_the_bytes_to_their_name_and_key() {
        let t = tag(b"secret", "abc-01", b"native code");
        assert!(verify(b"secret", "abc-01", b"native code", &t));
        assert!(
            !verify(b"secret", "def-01", b"native code", &t),
            "another name"
        );
        assert!(
            !verify(b"secret", "abc-01", b"other code", &t),
            "other bytes"
        );
        assert!(
            !verify(b"other", "abc-01", b"native code", &t),
            "another key"
        );
        assert!(!verify(b"secret", "abc-01", b"native code", "zz"));
    }

    #[cfg(unix)]
    #[test]
    fn files_others_may_write_are_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.cwasm");
        write_private(&f, b"x").unwrap();
        assert!(private(&f).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(private(&f).unwrap_err().contains("written by other users"));
    }
}
