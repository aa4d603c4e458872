//! Installing from another registry: a penpal server the operator lists under
//! `[marketplace] registries`. A version is mirrored into this server's registry tables before
//! it installs, so installs, grants, upgrades and the audit log work the same for it:
//!
//! 1. the remote's package page and its publisher's keys are read (through the same outbound
//!    rules as LMS platforms: public HTTPS, loopback only where the operator allows it);
//! 2. the archive is downloaded (capped), checked against the digest the remote lists, and its
//!    signature verified **here** against the publisher's key there;
//! 3. that key is pinned: the first install from a (registry, publisher) trusts the keys it
//!    sees, and a version signed by a key not pinned since needs the admin to confirm it
//!    (`trust_key`), so a compromised registry cannot swap keys silently.
//!
//! Mirrored packages belong to `publisher@registry-host`, a name no local publisher can have,
//! and never appear in this server's own catalogue.

use serde::Deserialize;
use serde_json::json;

use super::archive::{self, MAX_ARCHIVE};
use super::blobs;
use super::catalogue::PackagePage;
use super::installs::InstallError;
use super::publishers::Publisher;
use super::signature::{PublicKey, Signature};
use crate::lms::lti::outbound::{self, Outbound};
use crate::plugins::manifest::Manifest;
use crate::store::{Db, now_ms};

/// Which version to mirror.
#[derive(Debug, Clone)]
pub enum Pick {
    /// The remote's latest.
    Latest,
    /// Exactly this one.
    Exact(String),
    /// The greatest that installs within this range.
    Within(semver::VersionReq),
}

/// The registries an operator allows, and how to reach them.
#[derive(Clone)]
pub struct Remote {
    /// Outbound requests, under the network rules.
    pub outbound: Outbound,
    /// The registries' addresses, without a trailing `/`.
    pub registries: Vec<String>,
}

fn unreachable(registry: &str, e: impl std::fmt::Display) -> InstallError {
    InstallError::Remote(format!("the registry {registry} could not be reached: {e}"))
}

impl Remote {
    /// Registries from the operator's list.
    pub fn new(outbound: Outbound, registries: &[String]) -> Remote {
        Remote {
            outbound,
            registries: registries
                .iter()
                .map(|r| r.trim().trim_end_matches('/').to_string())
                .collect(),
        }
    }

    async fn get(
        &self,
        registry: &str,
        url: &str,
        cap: usize,
    ) -> Result<Option<Vec<u8>>, InstallError> {
        let resp = self
            .outbound
            .client()
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(registry, e))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(unreachable(
                registry,
                format!("it answered {}", resp.status()),
            ));
        }
        let mut resp = resp;
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(registry, e))? {
            if out.len() + chunk.len() > cap {
                return Err(InstallError::Mirror(format!(
                    "{url} answered more than {cap} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        registry: &str,
        url: &str,
    ) -> Result<Option<T>, InstallError> {
        match self.get(registry, url, outbound::MAX_BODY).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                InstallError::Mirror(format!("{url} is not a penpal registry's answer: {e}"))
            }),
        }
    }

    /// Mirrors `name` from `registry` as `pick` says, and answers the version mirrored.
    /// `trust_key` confirms a signing key not pinned before.
    pub async fn mirror(
        &self,
        db: &Db,
        registry: &str,
        name: &str,
        pick: &Pick,
        trust_key: Option<&str>,
    ) -> Result<String, InstallError> {
        let base = registry.trim().trim_end_matches('/');
        if !self.registries.iter().any(|r| r == base) {
            return Err(InstallError::UnknownRegistry(base.into()));
        }
        if let Some(why) = self.outbound.refuses(base) {
            return Err(unreachable(base, why));
        }
        let page: PackagePage = self
            .json(base, &format!("{base}/v1/marketplace/packages/{name}"))
            .await?
            .ok_or_else(|| InstallError::NoPackage(format!("{name} at {base}")))?;
        let installable = |v: &&super::catalogue::VersionInfo| !v.yanked && !v.key_revoked;
        let info = match pick {
            Pick::Latest => page
                .versions
                .iter()
                .find(|v| v.version == page.listing.latest)
                .ok_or_else(|| {
                    InstallError::NoVersion(format!("no version of {name} at {base} installs"))
                })?,
            Pick::Exact(want) => {
                let v = page
                    .versions
                    .iter()
                    .find(|v| &v.version == want)
                    .ok_or_else(|| {
                        InstallError::NoVersion(format!("{name} at {base} has no version {want}"))
                    })?;
                if v.yanked {
                    return Err(InstallError::Yanked(name.into(), want.clone()));
                }
                if v.key_revoked {
                    return Err(InstallError::Revoked(name.into(), want.clone()));
                }
                v
            }
            Pick::Within(req) => page
                .versions
                .iter()
                .filter(installable)
                .filter(|v| semver::Version::parse(&v.version).is_ok_and(|s| req.matches(&s)))
                .max_by(|a, b| {
                    let (a, b) = (
                        semver::Version::parse(&a.version),
                        semver::Version::parse(&b.version),
                    );
                    match (a, b) {
                        (Ok(a), Ok(b)) => a.cmp_precedence(&b),
                        _ => std::cmp::Ordering::Equal,
                    }
                })
                .ok_or_else(|| {
                    InstallError::NothingNewer(format!(
                        "no version of {name} at {base} within {req} installs"
                    ))
                })?,
        };
        let version = info.version.clone();
        let host = reqwest::Url::parse(base)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| {
                    format!(
                        "{h}{}",
                        u.port().map(|p| format!(":{p}")).unwrap_or_default()
                    )
                })
            })
            .unwrap_or_else(|| base.to_string());
        let owner = format!("{}@{host}", page.listing.publisher);

        // A name this server already holds for someone else is not taken over.
        let existing: Option<String> = db
            .one(
                "SELECT VALUE publisher FROM type::record('package', $name);",
                json!({"name": name}),
            )
            .await?;
        if let Some(other) = existing.filter(|p| p != &owner) {
            return Err(InstallError::Mirror(format!(
                "this server already has a package called {name}, from {other}"
            )));
        }
        let mirrored: Option<String> = db
            .one(
                "SELECT VALUE archive FROM type::record('package_version', [$name, $version]);",
                json!({"name": name, "version": version}),
            )
            .await?;
        if mirrored.is_some() {
            return Ok(version);
        }

        let publisher: Publisher = self
            .json(
                base,
                &format!("{base}/v1/publishers/{}", page.listing.publisher),
            )
            .await?
            .ok_or_else(|| InstallError::Mirror(format!("{base} does not list the publisher")))?;
        let key = publisher
            .keys
            .iter()
            .find(|k| k.fingerprint == info.signed_by && k.revoked_at.is_none())
            .ok_or_else(|| InstallError::Revoked(name.into(), version.clone()))?;
        let public = PublicKey::parse(&key.public_key)
            .map_err(|e| InstallError::Mirror(format!("the publisher's key: {e}")))?;
        if public.fingerprint() != info.signed_by {
            return Err(InstallError::Mirror(
                "the registry lists a key under another key's fingerprint".into(),
            ));
        }
        let pinned: Vec<String> = db
            .rows(
                "SELECT VALUE record::id(id) FROM remote_key WHERE publisher = $owner;",
                json!({"owner": owner}),
            )
            .await?;
        if !pinned.is_empty()
            && !pinned.contains(&info.signed_by)
            && trust_key != Some(&info.signed_by)
        {
            return Err(InstallError::NewKey {
                publisher: owner,
                fingerprint: info.signed_by.clone(),
            });
        }

        let bytes = self
            .get(
                base,
                &format!("{base}/v1/marketplace/packages/{name}/{version}/download"),
                MAX_ARCHIVE,
            )
            .await?
            .ok_or_else(|| {
                InstallError::Mirror(format!("{base} has no archive of {name} {version}"))
            })?;
        let digest = blobs::digest(&bytes);
        if digest != info.digest {
            return Err(InstallError::Mirror(format!(
                "the archive's SHA-256 is {digest}, not the {} the registry lists",
                info.digest
            )));
        }
        let a = archive::unpack(&bytes).map_err(|e| InstallError::Mirror(e.to_string()))?;
        let sig = std::str::from_utf8(&a.signature)
            .ok()
            .and_then(|t| Signature::parse(t).ok())
            .ok_or_else(|| InstallError::Mirror("its signature file is malformed".into()))?;
        sig.verify(&a.manifest, &a.component.1, &public)
            .map_err(|e| InstallError::Mirror(e.to_string()))?;
        let manifest_text = String::from_utf8(a.manifest.clone())
            .map_err(|_| InstallError::Mirror("its manifest is not text".into()))?;
        let manifest = Manifest::parse(&manifest_text)
            .map_err(|e| InstallError::Mirror(format!("its manifest: {}", e.0)))?;
        if manifest.plugin.name.0 != name || manifest.plugin.version.to_string() != version {
            return Err(InstallError::Mirror(format!(
                "the archive holds {} {}, not {name} {version}",
                manifest.plugin.name.0, manifest.plugin.version
            )));
        }

        blobs::put(db, &bytes).await?;
        let mut shots = Vec::new();
        for (file, png) in &a.screenshots {
            shots.push(json!({"name": file, "digest": blobs::put(db, png).await?}));
        }
        let l = &page.listing;
        db.exec(
            "BEGIN TRANSACTION;
             UPSERT type::record('remote_key', $fp) CONTENT { registry: $registry, publisher: $owner,
                 public_key: $pk, created_at: $now };
             IF !record::exists(type::record('package', $name)) {
                 CREATE type::record('package', $name) CONTENT { publisher: $owner, kind: $kind,
                     display_name: $display, description: $description, languages: $languages, levels: $levels,
                     latest: $version, downloads: 0, created_at: $now, updated_at: $now, source: $registry };
             };
             CREATE type::record('package_version', [$name, $version]) CONTENT {
                 package: $name, version: $version, manifest: $manifest, archive: $digest,
                 component: $component, size: $size, key: $fp, wit: $wit, requested: $requested,
                 readme: $readme, screenshots: $shots, yanked: false, published_at: $published, published_by: $owner };
             COMMIT TRANSACTION;",
            json!({"fp": info.signed_by, "registry": base, "owner": owner, "pk": public.to_base64(),
                   "now": now_ms(), "name": name, "kind": l.kind, "display": l.display_name,
                   "description": l.description, "languages": l.languages, "levels": l.levels,
                   "version": version, "manifest": manifest_text, "digest": digest,
                   "component": blobs::digest(&a.component.1), "size": bytes.len(),
                   "wit": manifest.plugin.wit.to_string(), "requested": manifest.capabilities,
                   "readme": a.readme, "shots": shots, "published": info.published_at}),
        )
        .await?;
        super::catalogue::refresh_latest(db, name).await?;
        tracing::info!(package = %name, %version, registry = %base, key = %info.signed_by,
            "package mirrored from another registry");
        Ok(version)
    }
}
