//! What a component really is, against what its manifest claims: which world it exports at
//! which WIT version, and what it imports. Used at load and by `penpal plugin check`.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::{self, WitVersion, WorldId};
use super::manifest::{Kind, Manifest};

const PACKAGE: &str = "penpal:plugin/";

/// What inspection found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// The world the component implements and the WIT version it was built against.
    pub world: Option<(Kind, semver::Version)>,
    /// That world as this host runs it: `None` when it exports none, or at a version this host
    /// does not run.
    pub runs_as: Option<WorldId>,
    /// Everything it imports.
    pub imports: Vec<String>,
    /// Everything it exports.
    pub exports: Vec<String>,
    /// Reasons it cannot run as its manifest says.
    pub problems: Vec<String>,
    /// Things that will work, but likely not as the author meant.
    pub warnings: Vec<String>,
}

/// `penpal:plugin/NAME@VERSION` → (NAME, VERSION).
fn split(name: &str) -> Option<(&str, Option<semver::Version>)> {
    let rest = name.strip_prefix(PACKAGE)?;
    Some(match rest.split_once('@') {
        Some((iface, version)) => (iface, semver::Version::parse(version).ok()),
        None => (rest, None),
    })
}

fn supported(version: &semver::Version) -> bool {
    WitVersion::of(version).is_some()
}

fn provided() -> String {
    WitVersion::ALL
        .iter()
        .map(|v| v.provided().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares `component` with `manifest`.
pub fn inspect(engine: &Engine, component: &Component, manifest: &Manifest) -> CheckReport {
    let ty = component.component_type();
    let mut report = CheckReport {
        imports: ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
        exports: ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
        ..CheckReport::default()
    };

    for export in &report.exports {
        let Some((iface, version)) = split(export) else {
            continue;
        };
        let Some(kind) = Kind::ALL
            .into_iter()
            .find(|k| k.export_interface() == iface)
        else {
            continue;
        };
        match version {
            Some(v) => report.world = Some((kind, v)),
            None => report.problems.push(format!(
                "`{export}` has no version; rebuild with the penpal SDK"
            )),
        }
    }

    let declared = manifest.plugin.kind;
    match &report.world {
        None => report.problems.push(format!(
            "the component exports no Penpal world; a {declared} plugin must export \
             `{PACKAGE}{}@{}` (it exports: {})",
            declared.export_interface(),
            manifest.plugin.wit,
            if report.exports.is_empty() {
                "nothing".to_string()
            } else {
                report.exports.join(", ")
            }
        )),
        Some((kind, _)) if *kind != declared => report.problems.push(format!(
            "the manifest says kind = \"{declared}\", but the component implements the {kind} world"
        )),
        Some((_, version)) if !supported(version) => report.problems.push(format!(
            "the component targets penpal:plugin@{version}, which this host does not run \
             (it runs {})",
            provided()
        )),
        Some((_, version)) if WitVersion::of(version) != WitVersion::of(&manifest.plugin.wit) => {
            report.problems.push(format!(
                "the manifest says wit = \"{}\", but the component was built against {version}",
                manifest.plugin.wit
            ))
        }
        Some((kind, version)) => {
            let id = WitVersion::of(version).map(|wit| WorldId { kind: *kind, wit });
            match id {
                Some(id) if bindings::hosted(id) => report.runs_as = Some(id),
                _ => report.problems.push(format!(
                    "this host runs {kind} plugins built against penpal:plugin@0.2 or later, \
                     not {version}: rebuild it with the current SDK"
                )),
            }
        }
    }

    let caps = &manifest.capabilities;
    for import in &report.imports {
        if let Some((iface, version)) = split(import) {
            if let Some(v) = &version
                && !supported(v)
            {
                report.problems.push(format!(
                    "the component imports `{import}`, a version this host does not provide"
                ));
            }
            let unrequested = match iface {
                "kv" => !caps.kv,
                "llm" => !caps.llm,
                _ => false,
            };
            if unrequested {
                report.warnings.push(format!(
                    "the component imports `{iface}` but the manifest does not request it: \
                     every {iface} call will be denied (add `{iface} = true` under [capabilities])"
                ));
            }
        } else if import.starts_with("wasi:http/") {
            if caps.http.is_empty() {
                report.warnings.push(format!(
                    "the component imports `{import}` but the manifest lists no http hosts: \
                     every request will be denied"
                ));
            }
        } else if !import.starts_with("wasi:") {
            report.problems.push(format!(
                "the component imports `{import}`, which no Penpal host provides"
            ));
        }
    }
    report
}
