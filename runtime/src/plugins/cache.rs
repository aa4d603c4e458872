//! The on-disk compile cache.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds; loading a compiled
//! artifact takes about one. Artifacts are keyed by the SHA-256 of the component's bytes *and*
//! the engine's compatibility hash (wasmtime version, target, settings), so a new wasmtime or a
//! changed engine setting never loads an artifact it cannot run: it simply misses.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

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
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Compiled));
        };
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let key = format!("{}-{:016x}", digest(wasm), compat.finish());
        let artifact = dir.join(format!("{key}.cwasm"));
        if let Some(component) = Self::read(engine, &artifact) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = Self::write(dir, &artifact, &component) {
            // A read-only or full disk costs a recompile at the next start, nothing more.
            tracing::warn!(dir = %dir.display(), error = %e, "could not store a compiled plugin");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn read(engine: &Engine, artifact: &Path) -> Option<Component> {
        let bytes = std::fs::read(artifact).ok()?;
        let expected = std::fs::read_to_string(artifact.with_extension("sha256")).ok()?;
        if digest(&bytes) != expected.trim() {
            tracing::warn!(file = %artifact.display(), "compiled plugin does not match its checksum; recompiling");
            return None;
        }
        // SAFETY: `deserialize` runs native code from the artifact, so it must be one this
        // process's wasmtime wrote. The file lives in a directory only this user can write, is
        // named by the source's hash and the engine's compatibility hash, and was checked above
        // against the checksum written beside it after a complete, atomic write.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        match component {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %artifact.display(), error = %e, "unusable compiled plugin; recompiling");
                None
            }
        }
    }

    fn write(dir: &Path, artifact: &Path, component: &Component) -> std::io::Result<()> {
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
        std::fs::write(&tmp, &bytes)?;
        let sum = artifact.with_extension(format!("sha256.tmp{}-{n}", std::process::id()));
        std::fs::write(&sum, digest(&bytes))?;
        std::fs::rename(sum, artifact.with_extension("sha256"))?;
        std::fs::rename(tmp, artifact)
    }
}
