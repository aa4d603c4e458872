//! The registry this server keeps: what a publish checks before anything is stored, and the
//! package and version rows it stores when every check passes.
//!
//! The checks run cheapest first, so a stranger's bad upload costs little: size, the archive's
//! entries, the manifest (parsed strictly), the publisher it names, the signature against a
//! key registered to *this* publisher and not revoked, the name's owner, the version (new and
//! semver-greater than every one published, yanked ones included), and last the component
//! itself — compiled and linked by this server's plugin host, so it really exports the world
//! its manifest declares at a WIT version this host runs. Compiling is the one costly check;
//! one runs at a time, and the compiled code lands in the host's cache for the install.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::archive::{self, ArchiveError, MAX_ARCHIVE};
use super::blobs;
use super::publishers::{self, PublisherRow, Signer};
use super::signature::{Signature, SignatureError};
use crate::plugins::manifest::{Kind, Manifest};
use crate::plugins::{Capabilities, Package, PluginHost};
use crate::store::{Db, StoreError, now_ms};

/// Why a publish was refused: each names what to fix. Nothing is stored on any of them.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Over [`MAX_ARCHIVE`].
    #[error("the package is larger than {} MiB", MAX_ARCHIVE >> 20)]
    TooLarge,
    /// The archive broke a rule.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The manifest is invalid.
    #[error("penpal-plugin.toml: {0}")]
    Manifest(String),
    /// The manifest names another component file than the archive holds.
    #[error(
        "penpal-plugin.toml names the component `{named}`, but the package holds `{held}`: sign the package again from its directory"
    )]
    ComponentName {
        /// In the manifest.
        named: String,
        /// In the archive.
        held: String,
    },
    /// The manifest names another publisher.
    #[error(
        "penpal-plugin.toml says publisher = \"{named}\", but this account publishes as \"{slug}\": set publisher = \"{slug}\" and sign again"
    )]
    Publisher {
        /// In the manifest.
        named: String,
        /// The account's publisher.
        slug: String,
    },
    /// The signature file is malformed, or does not verify.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The signing key is not one of this publisher's.
    #[error(
        "the package is signed by key {0}, which is not registered to this publisher: register it first (POST /v1/publishers/{{publisher}}/keys) or sign with a registered key"
    )]
    UnknownKey(String),
    /// The signing key was revoked.
    #[error(
        "the package is signed by key {0}, which this publisher revoked: sign it with a current key"
    )]
    RevokedKey(String),
    /// Another publisher owns the name.
    #[error("the name `{0}` belongs to another publisher: choose another name")]
    NameTaken(String),
    /// A plugin of this server has the name.
    #[error("the name `{0}` is reserved by a plugin this server ships: choose another name")]
    Reserved(String),
    /// A version cannot change kind.
    #[error("`{name}` is a {was} package; a new version cannot make it a {now}")]
    KindChanged {
        /// The package.
        name: String,
        /// Its kind so far.
        was: String,
        /// The new version's.
        now: Kind,
    },
    /// The version was published before.
    #[error("{name} {version} is published already: versions never change; raise the version")]
    VersionExists {
        /// The package.
        name: String,
        /// The version.
        version: String,
    },
    /// The version is not above every published one.
    #[error("{name} {version} is not newer than {latest}, published already: raise the version")]
    NotNewer {
        /// The package.
        name: String,
        /// The version offered.
        version: String,
        /// The greatest published.
        latest: String,
    },
    /// The component does not run as its manifest says on this host.
    #[error("the component does not run as its manifest says: {0}")]
    Component(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A version as the registry publishes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Published {
    /// The package's name.
    pub name: String,
    /// This version.
    pub version: String,
    /// Its kind (the WIT world it exports).
    pub kind: String,
    /// The WIT version it was built against.
    pub wit: String,
    /// Who published it.
    pub publisher: String,
    /// SHA-256 of the archive: what a download is checked against.
    pub digest: String,
    /// Bytes of the archive.
    pub size: u64,
    /// Fingerprint of the key that signed it.
    pub signed_by: String,
    /// What it asks the installer to grant.
    pub requested: Capabilities,
    /// When (ms).
    pub published_at: i64,
}

/// The registry: its database and the plugin host that checks components.
#[derive(Clone)]
pub struct Registry {
    /// Where packages are stored.
    pub db: Db,
    /// Compiles and links uploads, exactly as an install would.
    pub host: Arc<PluginHost>,
    /// One component check at a time: compiling is the costly step.
    pub checks: Arc<tokio::sync::Semaphore>,
}

fn text(bytes: &[u8], file: &str) -> Result<String, PublishError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| PublishError::Manifest(format!("{file} is not UTF-8 text")))
}

/// (display name, languages, levels) for the catalogue, from the kind's section.
fn shelf(m: &Manifest) -> (String, Vec<String>, Vec<String>) {
    if let Some(t) = &m.tutor {
        return (
            t.display_name.0.clone(),
            t.languages.0.iter().map(|l| l.0.clone()).collect(),
            t.levels.0.iter().map(|l| l.to_string()).collect(),
        );
    }
    let name = m
        .payment_provider
        .as_ref()
        .map(|p| p.display_name.0.clone())
        .or_else(|| m.notifier.as_ref().map(|n| n.display_name.0.clone()))
        .or_else(|| m.lms.as_ref().map(|l| l.display_name.0.clone()))
        .unwrap_or_else(|| m.plugin.name.0.clone());
    (name, Vec::new(), Vec::new())
}

impl Registry {
    /// A registry over `db`, checking components on `host`.
    pub fn new(db: Db, host: Arc<PluginHost>) -> Registry {
        Registry {
            db,
            host,
            checks: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Checks the archive `bytes` that `publisher`'s owner uploaded and, when every check
    /// passes, stores it as a new version.
    pub async fn publish(
        &self,
        publisher: &PublisherRow,
        bytes: Vec<u8>,
    ) -> Result<Published, PublishError> {
        if bytes.len() > MAX_ARCHIVE {
            return Err(PublishError::TooLarge);
        }
        let a = archive::unpack(&bytes)?;
        let manifest_text = text(&a.manifest, "penpal-plugin.toml")?;
        let manifest = Manifest::parse(&manifest_text).map_err(|e| PublishError::Manifest(e.0))?;
        if manifest.component_file() != a.component.0 {
            return Err(PublishError::ComponentName {
                named: manifest.component_file().into(),
                held: a.component.0.clone(),
            });
        }
        if manifest.plugin.publisher.0 != publisher.slug {
            return Err(PublishError::Publisher {
                named: manifest.plugin.publisher.0.clone(),
                slug: publisher.slug.clone(),
            });
        }
        let signature = Signature::parse(&text(&a.signature, "penpal-plugin.sig")?)?;
        let key = match publishers::signer(&self.db, &publisher.slug, &signature.key).await? {
            Signer::Active(k) => k,
            Signer::Revoked => return Err(PublishError::RevokedKey(signature.key)),
            Signer::Unknown => return Err(PublishError::UnknownKey(signature.key)),
        };
        signature.verify(&a.manifest, &a.component.1, &key)?;

        let name = manifest.plugin.name.0.clone();
        let version = manifest.plugin.version.clone();
        self.check_name_and_version(publisher, &manifest).await?;

        // The component's face first (milliseconds): a lying manifest waits for no compile.
        let outline = crate::plugins::check::outline(&a.component.1)
            .map_err(|e| PublishError::Component(format!("not a valid component: {e}")))?;
        if let Some(problem) = crate::plugins::check::precheck(&outline, &manifest)
            .problems
            .into_iter()
            .next()
        {
            return Err(PublishError::Component(problem));
        }
        let permit = self
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PublishError::Component("the server is shutting down".into()))?;
        let host = self.host.clone();
        let package = Package {
            manifest: manifest.clone(),
            wasm: a.component.1.clone(),
            manifest_path: format!("{name}-{version}.penpal").into(),
        };
        // Loading without grants compiles, inspects and links, and installs nothing.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            host.load(&package, &Capabilities::default()).map(|_| ())
        })
        .await
        .map_err(|e| PublishError::Component(format!("the check stopped: {e}")))?
        .map_err(|e| PublishError::Component(e.to_string()))?;

        let digest = blobs::put(&self.db, &bytes).await?;
        let mut shots = Vec::new();
        for (file, png) in &a.screenshots {
            shots.push(json!({"name": file, "digest": blobs::put(&self.db, png).await?}));
        }
        let (display_name, languages, levels) = shelf(&manifest);
        let published = Published {
            name: name.clone(),
            version: version.to_string(),
            kind: manifest.plugin.kind.to_string(),
            wit: manifest.plugin.wit.to_string(),
            publisher: publisher.slug.clone(),
            digest,
            size: bytes.len() as u64,
            signed_by: signature.key.clone(),
            requested: manifest.capabilities.clone(),
            published_at: now_ms(),
        };
        // One transaction, with the name's owner and the version checked again inside it:
        // two publishes racing for a name or a version cannot both land.
        let stored = self
            .db
            .exec(
                "BEGIN TRANSACTION;
                 LET $owner = (SELECT VALUE publisher FROM type::record('package', $name))[0];
                 IF $owner != NONE AND $owner != $publisher { THROW 'name taken' };
                 IF record::exists(type::record('package_version', [$name, $version])) { THROW 'version exists' };
                 CREATE type::record('package_version', [$name, $version]) CONTENT {
                     package: $name, version: $version, manifest: $manifest, archive: $digest,
                     component: $component, size: $size, key: $key, wit: $wit, requested: $requested,
                     readme: $readme, screenshots: $shots, yanked: false, published_at: $now, published_by: $by };
                 IF $owner = NONE {
                     CREATE type::record('package', $name) CONTENT { publisher: $publisher, kind: $kind,
                         display_name: $display, description: $description, languages: $languages, levels: $levels,
                         latest: $version, downloads: 0, created_at: $now, updated_at: $now };
                 } ELSE {
                     UPDATE type::record('package', $name) SET display_name = $display, description = $description,
                         languages = $languages, levels = $levels, latest = $version, updated_at = $now;
                 };
                 COMMIT TRANSACTION;",
                json!({"name": name, "version": published.version, "publisher": publisher.slug,
                       "manifest": manifest_text, "digest": published.digest,
                       "component": blobs::digest(&a.component.1), "size": published.size,
                       "key": signature.key, "wit": published.wit, "requested": published.requested,
                       "readme": a.readme, "shots": shots, "now": published.published_at,
                       "by": publisher.owner, "kind": published.kind, "display": display_name,
                       "description": manifest.plugin.description.0, "languages": languages,
                       "levels": levels}),
            )
            .await;
        match stored {
            Ok(()) => {}
            Err(StoreError::Db(m) | StoreError::Conflict(m)) if m.contains("name taken") => {
                return Err(PublishError::NameTaken(name));
            }
            Err(StoreError::Db(m) | StoreError::Conflict(m))
                if m.contains("version exists") || m.contains("already exists") =>
            {
                return Err(PublishError::VersionExists {
                    name,
                    version: published.version,
                });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(package = %name, version = %published.version, publisher = %publisher.slug,
            key = %published.signed_by, "package version published");
        Ok(published)
    }

    /// The name is free or this publisher's, not reserved, of the same kind, and the version
    /// is above every published one.
    async fn check_name_and_version(
        &self,
        publisher: &PublisherRow,
        manifest: &Manifest,
    ) -> Result<(), PublishError> {
        #[derive(Deserialize)]
        struct Owner {
            publisher: String,
            kind: String,
        }
        let name = &manifest.plugin.name.0;
        let version = &manifest.plugin.version;
        let owner: Option<Owner> = self
            .db
            .one(
                "SELECT publisher, kind FROM type::record('package', $name);",
                json!({"name": name}),
            )
            .await?;
        match owner {
            Some(o) if o.publisher != publisher.slug => {
                return Err(PublishError::NameTaken(name.clone()));
            }
            Some(o) if o.kind != manifest.plugin.kind.to_string() => {
                return Err(PublishError::KindChanged {
                    name: name.clone(),
                    was: o.kind,
                    now: manifest.plugin.kind,
                });
            }
            Some(_) => {}
            // A name the server's own plugins use would shadow them at install.
            None if self.host.get(name).is_some() => {
                return Err(PublishError::Reserved(name.clone()));
            }
            None => {}
        }
        let published: Vec<String> = self
            .db
            .rows(
                "SELECT VALUE version FROM package_version WHERE package = $name;",
                json!({"name": name}),
            )
            .await?;
        // Precedence, not equality: `1.0.0+a` and `1.0.0+b` are the same version to semver.
        let versions: Vec<semver::Version> = published
            .iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            .collect();
        if versions.iter().any(|v| v.cmp_precedence(version).is_eq()) {
            return Err(PublishError::VersionExists {
                name: name.clone(),
                version: version.to_string(),
            });
        }
        if let Some(latest) = versions
            .iter()
            .filter(|v| v.cmp_precedence(version).is_gt())
            .max_by(|a, b| a.cmp_precedence(b))
        {
            return Err(PublishError::NotNewer {
                name: name.clone(),
                version: version.to_string(),
                latest: latest.to_string(),
            });
        }
        Ok(())
    }
}
