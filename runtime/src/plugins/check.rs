//! What a component really is, against what its manifest claims: which world it exports at
//! which WIT version, and what it imports. Used at load and by `penpal plugin check`.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::{self, WitVersion, WorldId};
use super::manifest::{Kind, Manifest};

const PACKAGE: &str = "penpal:plugin/";

/// The interfaces of the `host` world every plugin world includes.
const HOST_INTERFACES: [&str; 4] = ["log", "config", "kv", "llm"];

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
    /// Things worth knowing that need no change.
    pub notes: Vec<String>,
    /// Bytes of linear memory the component starts with (see [`Outline`]).
    pub initial_memory: u64,
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

/// What a component's bytes say before it is compiled: its top-level imports and exports, and
/// the linear memory its core modules start with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// Top-level import names.
    pub imports: Vec<String>,
    /// Top-level export names.
    pub exports: Vec<String>,
    /// Bytes of linear memory its modules define at start (their memories' minimum sizes).
    pub initial_memory: u64,
}

/// Reads `wasm`'s outline in one pass, in milliseconds where compiling takes seconds: a
/// component whose manifest names another world is refused before anyone waits for that.
pub fn outline(wasm: &[u8]) -> Result<Outline, String> {
    use wasmparser::{ComponentExternName, Parser, Payload};
    let mut out = Outline::default();
    // Nested modules and components come as their own runs of payloads: only depth 0 is the
    // component's own face.
    let mut depth = 0usize;
    let mut is_component = false;
    let name = |n: ComponentExternName<'_>| n.name.to_string();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("not a WebAssembly component: {e}"))? {
            Payload::Version { encoding, .. } if depth == 0 => {
                is_component = encoding == wasmparser::Encoding::Component;
                if !is_component {
                    return Err("a core WebAssembly module, not a component: build it for \
                                wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
                        .into());
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(imports) if depth == 0 => {
                for i in imports {
                    out.imports.push(name(i.map_err(|e| e.to_string())?.name));
                }
            }
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for e in exports {
                    out.exports.push(name(e.map_err(|e| e.to_string())?.name));
                }
            }
            Payload::MemorySection(memories) => {
                for m in memories {
                    let m = m.map_err(|e| e.to_string())?;
                    let page = 1u64 << m.page_size_log2.unwrap_or(16);
                    out.initial_memory = out.initial_memory.saturating_add(m.initial * page);
                }
            }
            _ => {}
        }
    }
    if !is_component {
        return Err("not a WebAssembly component".into());
    }
    Ok(out)
}

/// Compares an [`outline`] with `manifest`, before compiling.
pub fn precheck(o: &Outline, manifest: &Manifest) -> CheckReport {
    judge(o.imports.clone(), o.exports.clone(), manifest)
}

/// Compares `component` with `manifest`.
pub fn inspect(engine: &Engine, component: &Component, manifest: &Manifest) -> CheckReport {
    let ty = component.component_type();
    judge(
        ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
        ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
        manifest,
    )
}

/// Compares a component's import and export names with `manifest`.
fn judge(imports: Vec<String>, exports: Vec<String>, manifest: &Manifest) -> CheckReport {
    let mut report = CheckReport {
        imports,
        exports,
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
    // componentize-py and componentize-js link every interface of the world whether the code
    // calls it or not, so for them an import says nothing about use and a warning would be
    // noise; Rust components import only what they call.
    let whole_world = HOST_INTERFACES.iter().all(|i| {
        report
            .imports
            .iter()
            .any(|n| split(n).is_some_and(|(n, _)| n == *i))
    });
    let mut linked_unrequested = Vec::new();
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
            if unrequested && whole_world {
                linked_unrequested.push(iface);
            } else if unrequested {
                report.warnings.push(format!(
                    "the component imports `{iface}` but the manifest does not request it: \
                     every {iface} call will be denied (add `{iface} = true` under [capabilities])"
                ));
            }
        } else if import.starts_with("wasi:http/") {
            if caps.http.is_empty() && whole_world {
                if !linked_unrequested.contains(&"outbound HTTP") {
                    linked_unrequested.push("outbound HTTP");
                }
            } else if caps.http.is_empty() {
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
    if !linked_unrequested.is_empty() {
        report.notes.push(format!(
            "the component links every host interface, as componentize-py and componentize-js \
             builds do; its manifest does not request {}, so such calls answer `denied` \
             (request them under [capabilities] if the code uses them)",
            match linked_unrequested.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            }
        ));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(capabilities: &str) -> Manifest {
        Manifest::parse(&format!(
            "[plugin]\nname = \"ada\"\nversion = \"0.1.0\"\nkind = \"tutor\"\nwit = \"0.2.0\"\n\
             publisher = \"ada\"\ndescription = \"Ada\"\n{capabilities}\n[tutor]\n\
             display-name = \"Ada\"\nlanguages = [\"fr\"]\nmodes = [\"tutor\"]\nlevels = [\"B1\"]\n"
        ))
        .unwrap()
    }

    fn imports(names: &[&str]) -> Outline {
        Outline {
            imports: names.iter().map(|n| n.to_string()).collect(),
            exports: vec!["penpal:plugin/tutoring@0.2.0".into()],
            initial_memory: 0,
        }
    }

    #[test]
    fn an_import_the_manifest_does_not_request_is_a_warning_unless_the_toolchain_links_everything()
    {
        // A Rust component imports what it calls: kv without `kv = true` is a mistake.
        let rust = precheck(
            &imports(&["penpal:plugin/log@0.2.0", "penpal:plugin/kv@0.2.0"]),
            &manifest(""),
        );
        assert!(rust.problems.is_empty(), "{:?}", rust.problems);
        assert_eq!(rust.warnings.len(), 1, "{:?}", rust.warnings);
        assert!(rust.warnings[0].contains("`kv = true`"));

        // componentize-js links the whole world, http included: a note, no warning.
        let every = [
            "penpal:plugin/log@0.2.0",
            "penpal:plugin/config@0.2.0",
            "penpal:plugin/kv@0.2.0",
            "penpal:plugin/llm@0.2.0",
            "wasi:http/outgoing-handler@0.2.10",
        ];
        let js = precheck(&imports(&every), &manifest("[capabilities]\nkv = true\n"));
        assert!(js.warnings.is_empty(), "{:?}", js.warnings);
        assert_eq!(
            js.notes,
            [
                "the component links every host interface, as componentize-py and componentize-js \
              builds do; its manifest does not request llm or outbound HTTP, so such calls \
              answer `denied` (request them under [capabilities] if the code uses them)"
            ]
        );
        let asked = precheck(
            &imports(&every),
            &manifest("[capabilities]\nkv = true\nllm = true\nhttp = [\"api.example.com\"]\n"),
        );
        assert!(asked.notes.is_empty() && asked.warnings.is_empty());
    }
}
