//! A plugin package on disk: `penpal-plugin.toml` beside its component.

use std::path::{Path, PathBuf};

use super::manifest::{MANIFEST_FILE, Manifest};

/// A manifest and the bytes of its component.
#[derive(Debug, Clone)]
pub struct Package {
    /// The validated manifest.
    pub manifest: Manifest,
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// Where the manifest was read.
    pub manifest_path: PathBuf,
}

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The path does not lead to a manifest.
    #[error("{0}")]
    NotFound(String),
    /// The manifest is invalid.
    #[error("{0}")]
    Manifest(#[from] super::manifest::ManifestError),
    /// The component file could not be read.
    #[error("cannot read the component {path}: {source}")]
    Component {
        /// The component's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Package {
    /// Reads a package from a directory holding `penpal-plugin.toml`, from the manifest itself,
    /// or from a `.wasm` file with the manifest beside it.
    pub fn open(path: &Path) -> Result<Package, PackageError> {
        let manifest_path = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else if path.extension().is_some_and(|e| e == "wasm") {
            path.with_file_name(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        if !manifest_path.is_file() {
            return Err(PackageError::NotFound(format!(
                "no {MANIFEST_FILE} at {}: give a plugin directory, its manifest, or its .wasm \
                 with the manifest beside it",
                manifest_path.display()
            )));
        }
        let manifest = Manifest::load(&manifest_path)?;
        let dir = manifest_path.parent().unwrap_or(Path::new("."));
        let component = if path.extension().is_some_and(|e| e == "wasm") {
            path.to_path_buf()
        } else {
            dir.join(manifest.component_file())
        };
        let wasm = std::fs::read(&component).map_err(|source| PackageError::Component {
            path: component.clone(),
            source,
        })?;
        Ok(Package {
            manifest,
            wasm,
            manifest_path,
        })
    }
}
