//! The install directory: packages `penpal plugin install` put there, each with the grants its
//! installer gave (`grants.toml` beside the manifest), read at start-up and watched by the
//! supervisor while the server runs.

use std::path::{Path, PathBuf};

use super::manifest::MANIFEST_FILE;
use super::{Capabilities, Package, PluginHost};

/// The file beside an installed package's manifest that records what its installer granted.
pub const GRANTS_FILE: &str = "grants.toml";

/// The package directories in an install directory, each name's newest version last, so that
/// installing them in order leaves the newest serving.
pub fn installed_packages(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort_by_key(|p| version_order(p));
    dirs
}

/// Sorts `name-1.10.0` after `name-1.9.0`.
fn version_order(path: &Path) -> (String, Option<semver::Version>) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Names may contain dashes too (`my-plugin-1.0.0-rc.1`): the version starts at the first
    // dash after which the rest parses.
    name.match_indices('-')
        .find_map(|(i, _)| {
            semver::Version::parse(&name[i + 1..])
                .ok()
                .map(|v| (name[..i].to_string(), Some(v)))
        })
        .unwrap_or_else(|| (name.to_string(), None))
}

/// Installs the package at `pkg` unless the same or a newer version of it is serving.
pub fn install_if_newer(host: &PluginHost, pkg: &Path) -> Result<(), String> {
    let result = (|| {
        let package = Package::open(pkg).map_err(|e| e.to_string())?;
        let m = &package.manifest.plugin;
        if let Some(current) = host.get(&m.name.0)
            && current.manifest.plugin.version >= m.version
        {
            return Ok(());
        }
        let grants = read_grants(pkg)?;
        let installed = host.load(&package, &grants).map_err(|e| e.to_string())?;
        host.install(installed);
        Ok(())
    })();
    // Operators see what failed to load, and why, beside what runs.
    host.note_load(pkg, result.as_ref().err().cloned());
    result
}

/// Reads the grants recorded beside an installed package (none when absent).
pub fn read_grants(pkg: &Path) -> Result<Capabilities, String> {
    let path = pkg.join(GRANTS_FILE);
    if !path.exists() {
        return Ok(Capabilities::default());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_last() {
        let mut dirs: Vec<PathBuf> = [
            "echo-1.10.0",
            "echo-1.9.0",
            "alpha-2.0.0",
            "echo-1.10.0-rc.1",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        dirs.sort_by_key(|p| version_order(p));
        let names: Vec<&str> = dirs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "alpha-2.0.0",
                "echo-1.9.0",
                "echo-1.10.0-rc.1",
                "echo-1.10.0"
            ]
        );
    }
}
