//! `cargo xtask rooms`: the runtime's rooms depend downward only.
//!
//! Each top-level module of `runtime/src` is a room with a place in [`ORDER`]; a room may
//! `use crate::X` only for rooms listed before it. The order is the house plan's: the contract
//! and the data, then models, then the domain rooms, then the actors, then the HTTP surface
//! that composes them, then the composition root.
//! Edges that break it today are listed in [`KNOWN`], each with the step that removes it: the
//! check fails on any *other* upward edge, and on a listed edge that no longer exists (so the
//! list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, bail};

/// Rooms, lowest first. A room may depend on the rooms before it only.
#[rustfmt::skip]
const ORDER: &[&str] = &[
    // The data and the plugin contract: know no domain.
    "store", "plugins",
    // Models and their accounting; typed configuration; the HTTP vocabulary.
    "llm", "config", "http",
    // Domain rooms: each owns its types, state, store queries and handlers.
    "auth", "tutoring", "billing", "notify", "lms", "marketplace",
    // Actors run the domain's turns for live connections (and serve the socket).
    "actors",
    // Operations, pages and the HTTP surface that composes the rooms.
    "ops", "web", "api",
    // The composition root.
    "server", "cli",
];

/// Upward edges that exist today, and what removes each. Shrink it; never grow it.
const KNOWN: &[(&str, &str, &str)] = &[];

fn place_of(room: &str) -> Option<usize> {
    ORDER.iter().position(|r| *r == room)
}

/// The rooms `text` names through `crate::…` paths (grouped `use crate::{a, b::c}` included).
fn named_rooms(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item);
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Every room → the rooms it names, with one file where it does.
fn edges(src: &Path) -> Result<BTreeMap<(String, String), String>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(src)? {
        let path = entry?.path();
        let room = match (path.is_dir(), path.file_stem().and_then(|s| s.to_str())) {
            (_, Some("lib" | "main")) | (_, None) => continue,
            (true, Some(name)) => name.to_string(),
            (false, Some(name)) if path.extension().is_some_and(|e| e == "rs") => name.to_string(),
            _ => continue,
        };
        let mut files = Vec::new();
        collect(&path, &mut files)?;
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            for other in named_rooms(&text) {
                if other != room {
                    found
                        .entry((room.clone(), other))
                        .or_insert_with(|| file.display().to_string());
                }
            }
        }
    }
    Ok(found)
}

fn collect(path: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), out)?;
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Checks `runtime/src` under `root`.
pub fn check(root: &Path) -> Result<()> {
    let edges = edges(&root.join("runtime/src"))?;
    let mut problems = Vec::new();
    let mut known_seen = BTreeSet::new();
    for ((from, to), file) in &edges {
        let (Some(a), Some(b)) = (place_of(from), place_of(to)) else {
            problems.push(format!(
                "{from} → {to} ({file}): a room missing from the table in xtask/src/rooms.rs"
            ));
            continue;
        };
        if b < a {
            continue;
        }
        if KNOWN.iter().any(|(f, t, _)| f == from && t == to) {
            known_seen.insert((from.clone(), to.clone()));
            continue;
        }
        problems.push(format!(
            "{from} → {to} ({file}): {from} may only use rooms below it ({})",
            ORDER[..a].join(", ")
        ));
    }
    for (from, to, why) in KNOWN {
        if !known_seen.contains(&(from.to_string(), to.to_string())) {
            problems.push(format!(
                "{from} → {to} is gone ({why}): remove it from KNOWN in xtask/src/rooms.rs"
            ));
        }
    }
    if !problems.is_empty() {
        bail!("room dependencies:\n  {}", problems.join("\n  "));
    }
    match known_seen.len() {
        0 => println!("rooms: {} edges, all downward", edges.len()),
        n => println!(
            "rooms: {} edges, all downward but {n} known ones being removed",
            edges.len()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_and_plain_paths_are_both_read() {
        let text = "use crate::api::App;\nuse crate::{store::Db, plugins};\nlet x = crate::llm::usage::Pricing::default();";
        let rooms: Vec<String> = named_rooms(text).into_iter().collect();
        assert_eq!(rooms, ["api", "llm", "plugins", "store"]);
    }

    #[test]
    fn every_room_has_one_place() {
        let unique: BTreeSet<&str> = ORDER.iter().copied().collect();
        assert_eq!(ORDER.len(), unique.len());
    }
}
