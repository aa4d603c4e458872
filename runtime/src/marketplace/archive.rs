//! Package archives (`NAME-VERSION.penpal`): a tar of plain files — the manifest, one
//! component, the signature, optionally a README and up to [`MAX_SCREENSHOTS`] screenshots.
//! Reading is strict because archives come from strangers: every entry is a regular file at a
//! known name (no directories beyond `screenshots/`, no absolute paths, no `..`, no links or
//! devices), each declared size is checked against its cap before a byte is read, and a
//! duplicate or unknown entry refuses the whole archive. Nothing is ever written to disk from
//! an archive by name.

use std::io::Read as _;

use super::signature::SIGNATURE_FILE;
use crate::plugins::manifest::MANIFEST_FILE;

/// The largest archive.
pub const MAX_ARCHIVE: usize = 30 << 20;
/// The largest component.
pub const MAX_COMPONENT: u64 = 20 << 20;
/// The largest manifest.
pub const MAX_MANIFEST: u64 = 64 << 10;
/// The largest signature file.
pub const MAX_SIGNATURE: u64 = 4 << 10;
/// The largest README.
pub const MAX_README: u64 = 256 << 10;
/// The largest screenshot.
pub const MAX_SCREENSHOT: u64 = 1 << 20;
/// Screenshots per package.
pub const MAX_SCREENSHOTS: usize = 5;
/// The README's name.
pub const README: &str = "README.md";

/// A package's files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Archive {
    /// `penpal-plugin.toml`, exactly.
    pub manifest: Vec<u8>,
    /// The component's file name and bytes.
    pub component: (String, Vec<u8>),
    /// `penpal-plugin.sig`.
    pub signature: Vec<u8>,
    /// `README.md`.
    pub readme: Option<String>,
    /// `screenshots/NAME.png|webp`, by name.
    pub screenshots: Vec<(String, Vec<u8>)>,
}

/// Why an archive was refused; each names the entry and the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// Over [`MAX_ARCHIVE`].
    #[error("the archive is larger than {} MiB", MAX_ARCHIVE >> 20)]
    TooLarge,
    /// Not a tar.
    #[error("not a package archive (a tar made by `penpal plugin sign`): {0}")]
    Malformed(String),
    /// An entry that is not a plain file at an allowed name.
    #[error("`{0}` is not allowed in a package: {1}")]
    Entry(String, &'static str),
    /// An entry over its cap.
    #[error("`{0}` is larger than {1} bytes")]
    EntryTooLarge(String, u64),
    /// A required file is missing.
    #[error("the archive has no {0}: sign the package with `penpal plugin sign`, which packs it")]
    Missing(&'static str),
}

/// What an entry name is.
enum Slot {
    Manifest,
    Signature,
    Readme,
    Component(String),
    Screenshot(String),
}

fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn slot(path: &str) -> Result<Slot, &'static str> {
    if path.starts_with('/') || path.contains('\\') {
        return Err("absolute or backslashed paths are refused");
    }
    if path.split('/').any(|p| p == ".." || p == ".") {
        return Err("`..` and `.` are refused");
    }
    match path {
        MANIFEST_FILE => return Ok(Slot::Manifest),
        SIGNATURE_FILE => return Ok(Slot::Signature),
        README => return Ok(Slot::Readme),
        _ => {}
    }
    if let Some(shot) = path.strip_prefix("screenshots/") {
        if plain_name(shot) && (shot.ends_with(".png") || shot.ends_with(".webp")) {
            return Ok(Slot::Screenshot(shot.to_string()));
        }
        return Err("screenshots are screenshots/NAME.png or .webp");
    }
    if plain_name(path) && path.ends_with(".wasm") {
        return Ok(Slot::Component(path.to_string()));
    }
    Err(
        "a package holds penpal-plugin.toml, one .wasm, penpal-plugin.sig, README.md and screenshots/ only",
    )
}

fn read_entry(
    entry: &mut tar::Entry<'_, &[u8]>,
    name: &str,
    cap: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let size = entry
        .header()
        .size()
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
    if size > cap {
        return Err(ArchiveError::EntryTooLarge(name.to_string(), cap));
    }
    let mut out = Vec::with_capacity(size as usize);
    entry
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
    if out.len() as u64 > cap {
        return Err(ArchiveError::EntryTooLarge(name.to_string(), cap));
    }
    Ok(out)
}

/// Reads an archive under every rule above.
pub fn unpack(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    if bytes.len() > MAX_ARCHIVE {
        return Err(ArchiveError::TooLarge);
    }
    let mut tar = tar::Archive::new(bytes);
    let (mut manifest, mut component, mut signature) = (None, None, None);
    let mut out = Archive::default();
    let entries = tar
        .entries()
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Malformed(e.to_string()))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() && path.trim_end_matches('/') == "screenshots" {
            continue;
        }
        if !kind.is_file() {
            return Err(ArchiveError::Entry(
                path,
                "only plain files are allowed (no links, devices or directories)",
            ));
        }
        let dup = |name: &str| ArchiveError::Entry(name.to_string(), "it appears twice");
        match slot(&path).map_err(|why| ArchiveError::Entry(path.clone(), why))? {
            Slot::Manifest if manifest.is_none() => {
                manifest = Some(read_entry(&mut entry, &path, MAX_MANIFEST)?);
            }
            Slot::Signature if signature.is_none() => {
                signature = Some(read_entry(&mut entry, &path, MAX_SIGNATURE)?);
            }
            Slot::Readme if out.readme.is_none() => {
                let raw = read_entry(&mut entry, &path, MAX_README)?;
                out.readme = Some(String::from_utf8(raw).map_err(|_| {
                    ArchiveError::Entry(path.clone(), "the README must be UTF-8 text")
                })?);
            }
            Slot::Component(name) => {
                if component.is_some() {
                    return Err(ArchiveError::Entry(path, "a package holds one component"));
                }
                component = Some((name, read_entry(&mut entry, &path, MAX_COMPONENT)?));
            }
            Slot::Screenshot(name) => {
                if out.screenshots.iter().any(|(n, _)| *n == name) {
                    return Err(dup(&path));
                }
                if out.screenshots.len() == MAX_SCREENSHOTS {
                    return Err(ArchiveError::Entry(
                        path,
                        "a package has at most 5 screenshots",
                    ));
                }
                let shot = read_entry(&mut entry, &path, MAX_SCREENSHOT)?;
                out.screenshots.push((name, shot));
            }
            _ => return Err(dup(&path)),
        }
    }
    out.manifest = manifest.ok_or(ArchiveError::Missing(MANIFEST_FILE))?;
    out.component = component.ok_or(ArchiveError::Missing("component (.wasm)"))?;
    out.signature = signature.ok_or(ArchiveError::Missing(SIGNATURE_FILE))?;
    Ok(out)
}

/// Packs `a` (the same bytes every time: fixed modes, owners and times).
pub fn pack(a: &Archive) -> anyhow::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> anyhow::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data)?;
        Ok(())
    };
    add(MANIFEST_FILE, &a.manifest)?;
    add(&a.component.0, &a.component.1)?;
    add(SIGNATURE_FILE, &a.signature)?;
    if let Some(r) = &a.readme {
        add(README, r.as_bytes())?;
    }
    for (name, shot) in &a.screenshots {
        add(&format!("screenshots/{name}"), shot)?;
    }
    Ok(b.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        Archive {
            manifest: b"[plugin]\n".to_vec(),
            component: ("plugin.wasm".into(), b"\0asm component".to_vec()),
            signature: b"algorithm = \"ed25519\"\n".to_vec(),
            readme: Some("# Demo\n".into()),
            screenshots: vec![("chat.png".into(), vec![0x89, b'P', b'N', b'G'])],
        }
    }

    /// A tar holding `entries` as given (name bytes written raw into the header, so hostile
    /// names reach the reader as an attacker's tool would write them).
    fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(*kind);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn a_packed_package_unpacks_to_the_same_files_every_time() {
        let a = sample();
        let packed = pack(&a).unwrap();
        assert_eq!(pack(&a).unwrap(), packed, "packing is deterministic");
        assert_eq!(unpack(&packed).unwrap(), a);
    }

    #[test]
    fn hostile_or_incomplete_archives_are_refused_naming_the_entry() {
        use tar::EntryType::{Regular, Symlink};
        let base: [(&str, tar::EntryType, &[u8]); 3] = [
            ("penpal-plugin.toml", Regular, b"m"),
            ("plugin.wasm", Regular, b"w"),
            ("penpal-plugin.sig", Regular, b"s"),
        ];
        assert!(unpack(&raw_tar(&base)).is_ok());
        let with = |extra: (&'static str, tar::EntryType, &'static [u8])| {
            let mut all = base.to_vec();
            all.push(extra);
            unpack(&raw_tar(&all))
        };
        for evil in [
            "../evil.wasm",
            "/etc/cron.d/x",
            "screenshots/../../x.png",
            "a\\b.wasm",
            "lib/x.so",
            "screenshots/x.exe",
        ] {
            assert!(
                matches!(with((evil, Regular, b"x")), Err(ArchiveError::Entry(ref n, _)) if n == evil),
                "{evil}"
            );
        }
        assert!(matches!(
            with(("README.md", Symlink, b"")),
            Err(ArchiveError::Entry(..))
        ));
        assert!(matches!(
            with(("other.wasm", Regular, b"w")),
            Err(ArchiveError::Entry(..))
        ));
        assert!(matches!(
            with(("penpal-plugin.sig", Regular, b"s")),
            Err(ArchiveError::Entry(..))
        ));
        assert_eq!(
            unpack(&raw_tar(&base[..2])),
            Err(ArchiveError::Missing(SIGNATURE_FILE))
        );
        let big = vec![0u8; (MAX_SCREENSHOT + 1) as usize];
        let mut all = base.to_vec();
        all.push(("screenshots/big.png", Regular, &big));
        assert!(matches!(
            unpack(&raw_tar(&all)),
            Err(ArchiveError::EntryTooLarge(..))
        ));
        let shots: Vec<String> = (0..6).map(|n| format!("screenshots/{n}.png")).collect();
        let mut all = base.to_vec();
        for s in &shots {
            all.push((s.as_str(), Regular, b"p"));
        }
        assert!(matches!(
            unpack(&raw_tar(&all)),
            Err(ArchiveError::Entry(..))
        ));
        assert_eq!(
            unpack(&vec![0u8; MAX_ARCHIVE + 1]),
            Err(ArchiveError::TooLarge)
        );
        assert!(unpack(b"not a tar at all, just some text that is long enough").is_err());
    }
}
