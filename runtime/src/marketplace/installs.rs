//! Installs from the registry, server-wide: which version of a package runs here, what its
//! installer granted, and how it moves between versions.
//!
//! The `install` row is the desired state; every node converges its plugin host to it
//! ([`Installs::sync`], after each change on the node that made it and every few seconds on
//! all of them), so several nodes sharing a database run the same versions. Nothing is granted
//! by default: an installer grants each requested capability, secret and host, or leaves it
//! out, and the plugin's calls to what was left out answer `denied`.
//!
//! Versions move four ways, each written to the audit log with who did it:
//! - **upgrade** to the greatest version within the install's semver range that installs (not
//!   yanked, not signed by a revoked key) — automatically unless pinned, or on request;
//! - a version that asks for **more** than the installer decided on waits (`waiting_for_grant`)
//!   while the installed one keeps serving, until an admin grants (or declines) the new asks;
//! - **rollback** to the previous version, which pins the install so it is not upgraded again;
//! - **uninstall**.
//!
//! Swaps are live: the host's `install` replaces the entry new calls reach, and calls in flight
//! finish on the version they started on. Before a version runs its archive is read back by
//! digest and its signature checked again against the publisher's key.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::archive;
use super::blobs;
use super::signature::{PublicKey, Signature};
use crate::config::OnRevoked;
use crate::plugins::manifest::Manifest;
use crate::plugins::{Capabilities, Installed, Package, PluginHost};
use crate::store::{Db, StoreError, now_ms};

/// How often each node syncs with the installs recorded (other nodes' changes, new versions).
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Who did it, when a node did it on its own.
pub const AUTO: &str = "automatic";

/// Why an install change was refused; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// No such package.
    #[error("no package is called `{0}` in this registry")]
    NoPackage(String),
    /// No such version, or none that installs.
    #[error("{0}")]
    NoVersion(String),
    /// The version was yanked.
    #[error("{0} {1} was withdrawn by its publisher: choose another version")]
    Yanked(String, String),
    /// Signed by a revoked key.
    #[error(
        "{0} {1} is signed by a key its publisher revoked: it no longer installs; choose a version signed since"
    )]
    Revoked(String, String),
    /// A grant of something not requested.
    #[error("{0} is not something this version asks for: grant only what it requests")]
    NotRequested(String),
    /// A plugin this server ships has the name.
    #[error("`{0}` is the name of a plugin this server loads from its own directories")]
    Taken(String),
    /// Installed already.
    #[error("`{0}` is installed already: upgrade it, or change its grants")]
    AlreadyInstalled(String),
    /// Not installed.
    #[error("not installed")]
    NotInstalled,
    /// A malformed range.
    #[error("`{0}` is not a semver range such as ^1.2 or ~1.2.3")]
    BadRange(String),
    /// A version outside the range.
    #[error("{version} is outside the install's range {range}: change the range first")]
    OutsideRange {
        /// The version.
        version: String,
        /// The range.
        range: String,
    },
    /// Nothing newer to upgrade to.
    #[error("{0}")]
    NothingNewer(String),
    /// No previous version.
    #[error("there is no previous version to roll back to")]
    NoPrevious,
    /// The version does not load on this host.
    #[error("the version does not load: {0}")]
    Load(String),
    /// A registry the operator did not list.
    #[error(
        "{0} is not one of this server's registries: the operator lists them under [marketplace] registries"
    )]
    UnknownRegistry(String),
    /// Another registry could not be reached.
    #[error("{0}")]
    Remote(String),
    /// What another registry served does not check out.
    #[error(
        "the package from the other registry does not check out, so nothing was installed: {0}"
    )]
    Mirror(String),
    /// Signed by a key not pinned for the publisher.
    #[error(
        "{publisher} now signs with key {fingerprint}, not the one pinned when it was first installed here: if the publisher confirms the change, install again with trust_key = \"{fingerprint}\""
    )]
    NewKey {
        /// The publisher, at its registry.
        publisher: String,
        /// The new key.
        fingerprint: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An install's row: the desired state.
#[derive(Debug, Clone, Deserialize)]
struct Row {
    package: String,
    version: String,
    range: String,
    pinned: bool,
    grants: Capabilities,
    decided: Capabilities,
    previous: Option<String>,
    waiting: Option<String>,
    disabled: Option<String>,
    installed_by: String,
    updated_at: i64,
}

const ROW: &str = "record::id(id) AS package, version, range, pinned, grants, decided, previous, \
                   waiting, disabled, installed_by, updated_at";

/// A published version, as installs need it.
#[derive(Debug, Clone, Deserialize)]
struct Version {
    version: String,
    requested: Capabilities,
    key: String,
    yanked: bool,
    archive: String,
}

/// A version waiting for a grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Waiting {
    /// The version.
    pub version: String,
    /// What it asks for beyond what the installer decided on, in plain words.
    pub asks: Vec<String>,
    /// Everything it requests.
    pub requested: Capabilities,
}

/// An install, as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallView {
    /// The package.
    pub package: String,
    /// The version installed.
    pub version: String,
    /// `active`, `waiting_for_grant` (a newer version asks for more; this one keeps serving)
    /// or `disabled`.
    pub status: String,
    /// The semver range upgrades stay within.
    pub range: String,
    /// Pinned: never upgraded automatically.
    pub pinned: bool,
    /// What the installed version requests.
    pub requested: Capabilities,
    /// What the installer granted.
    pub grants: Capabilities,
    /// What was granted, in plain words.
    pub granted: Vec<String>,
    /// What the installed version requests but was not granted, in plain words: those calls
    /// answer `denied`.
    pub ungranted: Vec<String>,
    /// A newer version waiting for a grant.
    pub waiting: Option<Waiting>,
    /// The installed version is signed by a key its publisher revoked.
    pub key_revoked: bool,
    /// Why it does not run, when disabled.
    pub disabled: Option<String>,
    /// The version a rollback returns to.
    pub previous: Option<String>,
    /// Who installed it.
    pub installed_by: String,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// When (ms).
    pub at: i64,
    /// The account that did it, or `automatic`.
    pub actor: String,
    /// `install`, `grant`, `upgrade`, `waiting_for_grant`, `rollback`, `pin`, `unpin`,
    /// `range`, `disable` or `uninstall`.
    pub action: String,
    /// The package.
    pub package: String,
    /// The version before.
    pub from_version: Option<String>,
    /// The version after.
    pub to_version: Option<String>,
    /// What was granted or why.
    pub detail: Option<String>,
}

/// What to install.
#[derive(Debug, Default, Clone)]
pub struct Wanted {
    /// The package.
    pub package: String,
    /// The version; the latest when `None`.
    pub version: Option<String>,
    /// The range; `^VERSION` when `None`.
    pub range: Option<String>,
    /// What is granted.
    pub grants: Capabilities,
    /// Another registry to install from.
    pub registry: Option<String>,
    /// A signing key the installer confirms (see [`InstallError::NewKey`]).
    pub trust_key: Option<String>,
}

/// A change to an install.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// New grants.
    pub grants: Option<Capabilities>,
    /// A new range.
    pub range: Option<String>,
    /// Pin or unpin.
    pub pinned: Option<bool>,
}

/// Installs and the node's share of them.
#[derive(Clone)]
pub struct Installs {
    /// Where installs are recorded.
    pub db: Db,
    /// The host they run on.
    pub host: Arc<PluginHost>,
    /// What a revoked key does to what it signed.
    pub on_revoked: OnRevoked,
    /// Other registries to install from.
    pub remote: Option<super::remote::Remote>,
    /// What this node runs from the registry: package → (version, grants). One sync at a time.
    live: Arc<tokio::sync::Mutex<HashMap<String, (String, Capabilities)>>>,
}

fn words(c: &Capabilities) -> String {
    let w = c.in_words();
    if w.is_empty() {
        "nothing".into()
    } else {
        w.join("; ")
    }
}

fn semver(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v).ok()
}

fn range(r: &str) -> Result<semver::VersionReq, InstallError> {
    semver::VersionReq::parse(r).map_err(|_| InstallError::BadRange(r.into()))
}

/// Whether `grants` asks only for what `requested` requests.
fn within(grants: &Capabilities, requested: &Capabilities) -> Result<(), InstallError> {
    let any_host = requested.http.iter().any(|h| h.is_operator());
    if let Some(h) = grants
        .http
        .iter()
        .find(|h| h.is_operator() || !(any_host || requested.http.contains(h)))
    {
        return Err(InstallError::NotRequested(format!("the host {}", h.0)));
    }
    if let Some(s) = grants
        .secrets
        .iter()
        .find(|s| !requested.secrets.contains(s))
    {
        return Err(InstallError::NotRequested(format!("the secret `{}`", s.0)));
    }
    if grants.kv && !requested.kv {
        return Err(InstallError::NotRequested("a key-value store".into()));
    }
    if grants.llm && !requested.llm {
        return Err(InstallError::NotRequested("the language model".into()));
    }
    Ok(())
}

impl Installs {
    /// Installs recorded in `db`, run on `host`.
    pub fn new(
        db: Db,
        host: Arc<PluginHost>,
        on_revoked: OnRevoked,
        remote: Option<super::remote::Remote>,
    ) -> Installs {
        Installs {
            db,
            host,
            on_revoked,
            remote,
            live: Arc::default(),
        }
    }

    fn remote(&self) -> Result<&super::remote::Remote, InstallError> {
        self.remote
            .as_ref()
            .ok_or_else(|| InstallError::UnknownRegistry("another registry".into()))
    }

    /// The registry `name` was mirrored from, if any.
    async fn source(&self, name: &str) -> Result<Option<String>, StoreError> {
        let source: Option<Option<String>> = self
            .db
            .one(
                "SELECT VALUE source FROM type::record('package', $name);",
                json!({"name": name}),
            )
            .await?;
        Ok(source.flatten())
    }

    async fn row(&self, name: &str) -> Result<Option<Row>, StoreError> {
        self.db
            .one(
                &format!("SELECT {ROW} FROM type::record('install', $name);"),
                json!({"name": name}),
            )
            .await
    }

    async fn rows(&self) -> Result<Vec<Row>, StoreError> {
        self.db
            .rows(
                &format!("SELECT {ROW} FROM install ORDER BY package;"),
                json!({}),
            )
            .await
    }

    async fn versions(&self, name: &str) -> Result<Vec<Version>, StoreError> {
        self.db
            .rows(
                "SELECT version, requested, key, yanked, archive FROM package_version WHERE package = $name;",
                json!({"name": name}),
            )
            .await
    }

    async fn revoked(&self, key: &str) -> Result<bool, StoreError> {
        // A local publisher's key, or a pinned key of a publisher at another registry.
        let at: Option<Option<i64>> = self
            .db
            .one(
                "RETURN (SELECT VALUE revoked_at FROM type::record('publisher_key', $k))[0]
                     ?? (SELECT VALUE revoked_at FROM type::record('remote_key', $k))[0];",
                json!({"k": key}),
            )
            .await?;
        Ok(at.flatten().is_some())
    }

    async fn version(&self, name: &str, version: &str) -> Result<Version, InstallError> {
        self.versions(name)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| InstallError::NoVersion(format!("{name} has no version {version}")))
    }

    /// `name` `version`, when it may be installed anew.
    async fn installable(&self, name: &str, version: &str) -> Result<Version, InstallError> {
        let v = self.version(name, version).await?;
        if v.yanked {
            return Err(InstallError::Yanked(name.into(), version.into()));
        }
        if self.revoked(&v.key).await? {
            return Err(InstallError::Revoked(name.into(), version.into()));
        }
        Ok(v)
    }

    /// The greatest version of `name` within `req` that installs.
    async fn best(
        &self,
        name: &str,
        req: &semver::VersionReq,
    ) -> Result<Option<Version>, StoreError> {
        let mut best: Option<(semver::Version, Version)> = None;
        for v in self.versions(name).await? {
            let Some(parsed) = semver(&v.version) else {
                continue;
            };
            if v.yanked || !req.matches(&parsed) || self.revoked(&v.key).await? {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| parsed > *b) {
                best = Some((parsed, v));
            }
        }
        Ok(best.map(|(_, v)| v))
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        package: &str,
        from: Option<&str>,
        to: Option<&str>,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        tracing::info!(%actor, %action, %package, from, to, "marketplace install changed");
        self.db
            .exec(
                "CREATE install_audit CONTENT { at: $at, actor: $actor, action: $action, package: $package,
                 from_version: $from, to_version: $to, detail: $detail };",
                json!({"at": now_ms(), "actor": actor, "action": action, "package": package,
                       "from": from, "to": to, "detail": detail}),
            )
            .await
    }

    /// Reads `name` `version` back by digest, checks its signature against its publisher's
    /// key, and compiles and links it with `grants`. Installs nothing.
    async fn load(
        &self,
        name: &str,
        version: &Version,
        grants: &Capabilities,
    ) -> Result<Installed, InstallError> {
        let bytes = blobs::get(&self.db, &version.archive)
            .await?
            .ok_or_else(|| InstallError::Load("its archive is missing from the registry".into()))?;
        let a = archive::unpack(&bytes).map_err(|e| InstallError::Load(e.to_string()))?;
        // A local publisher's key, or a pinned key of a publisher at another registry.
        let public: Option<String> = self
            .db
            .one(
                "RETURN (SELECT VALUE public_key FROM type::record('publisher_key', $k))[0]
                     ?? (SELECT VALUE public_key FROM type::record('remote_key', $k))[0];",
                json!({"k": version.key}),
            )
            .await?;
        let key = public
            .and_then(|k| PublicKey::parse(&k).ok())
            .ok_or_else(|| InstallError::Load("its publisher's key is unknown".into()))?;
        let sig = std::str::from_utf8(&a.signature)
            .map_err(|_| InstallError::Load("its signature is not text".into()))
            .and_then(|t| Signature::parse(t).map_err(|e| InstallError::Load(e.to_string())))?;
        sig.verify(&a.manifest, &a.component.1, &key)
            .map_err(|e| InstallError::Load(e.to_string()))?;
        let manifest = std::str::from_utf8(&a.manifest)
            .ok()
            .and_then(|t| Manifest::parse(t).ok())
            .ok_or_else(|| InstallError::Load("its manifest does not parse".into()))?;
        let package = Package {
            manifest,
            wasm: a.component.1,
            manifest_path: format!("{name}-{}.penpal", version.version).into(),
        };
        let host = self.host.clone();
        let grants = grants.clone();
        tokio::task::spawn_blocking(move || host.load(&package, &grants))
            .await
            .map_err(|e| InstallError::Load(e.to_string()))?
            .map_err(|e| InstallError::Load(e.to_string()))
    }

    /// Installs what `w` says: the package at its version (its latest when `None`), from this
    /// registry or another one, with its grants, upgrading within its range.
    pub async fn install(&self, actor: &str, w: &Wanted) -> Result<InstallView, InstallError> {
        let name = w.package.as_str();
        let grants = &w.grants;
        let range_text = w.range.as_deref();
        let mirrored;
        let version = match &w.registry {
            Some(registry) => {
                let pick = match &w.version {
                    Some(v) => super::remote::Pick::Exact(v.clone()),
                    None => super::remote::Pick::Latest,
                };
                mirrored = self
                    .remote()?
                    .mirror(&self.db, registry, name, &pick, w.trust_key.as_deref())
                    .await?;
                Some(mirrored.as_str())
            }
            None => w.version.as_deref(),
        };
        let latest: Option<String> = self
            .db
            .one(
                "SELECT VALUE latest FROM type::record('package', $name);",
                json!({"name": name}),
            )
            .await?;
        let latest = latest.ok_or_else(|| InstallError::NoPackage(name.into()))?;
        let version = match version {
            Some(v) => v.to_string(),
            None if latest.is_empty() => {
                return Err(InstallError::NoVersion(format!(
                    "no version of {name} installs: every one is withdrawn or signed by a revoked key"
                )));
            }
            None => latest,
        };
        if self.row(name).await?.is_some() {
            return Err(InstallError::AlreadyInstalled(name.into()));
        }
        if self.host.get(name).is_some() && !self.live.lock().await.contains_key(name) {
            return Err(InstallError::Taken(name.into()));
        }
        let v = self.installable(name, &version).await?;
        within(grants, &v.requested)?;
        let range_text = range_text
            .map(str::to_string)
            .unwrap_or_else(|| format!("^{version}"));
        let req = range(&range_text)?;
        if !semver(&version).is_some_and(|s| req.matches(&s)) {
            return Err(InstallError::OutsideRange {
                version,
                range: range_text,
            });
        }
        // It must load before it is recorded: an install that cannot run is refused whole.
        self.load(name, &v, grants).await?;
        let created = self
            .db
            .exec(
                "CREATE type::record('install', $name) CONTENT { version: $version, range: $range, pinned: false,
                 grants: $grants, decided: $decided, installed_by: $by, updated_at: $now };",
                json!({"name": name, "version": version, "range": range_text, "grants": grants,
                       "decided": v.requested, "by": actor, "now": now_ms()}),
            )
            .await;
        match created {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(InstallError::AlreadyInstalled(name.into()));
            }
            Err(e) => return Err(e.into()),
        }
        let granted = v.requested.intersect(grants);
        self.audit(
            actor,
            "install",
            name,
            None,
            Some(&version),
            Some(format!(
                "granted: {}; left ungranted: {}",
                words(&granted),
                words(&v.requested.beyond(&granted))
            )),
        )
        .await?;
        self.sync().await;
        self.view(name).await
    }

    /// Changes `name`'s grants, range or pin.
    pub async fn change(
        &self,
        actor: &str,
        name: &str,
        change: &Change,
    ) -> Result<InstallView, InstallError> {
        let row = self.row(name).await?.ok_or(InstallError::NotInstalled)?;
        let current = self.version(name, &row.version).await?;
        let mut sets = Vec::new();
        let mut vars = json!({"name": name, "now": now_ms()});
        if let Some(grants) = &change.grants {
            // What the admin decides on: the waiting version's request when one waits.
            let target = match &row.waiting {
                Some(w) => self.version(name, w).await?,
                None => current.clone(),
            };
            within(grants, &current.requested.union(&target.requested))?;
            sets.push("grants = $grants, decided = $decided");
            vars["grants"] = json!(grants);
            vars["decided"] = json!(target.requested.union(&row.decided));
            self.audit(
                actor,
                "grant",
                name,
                Some(&row.version),
                row.waiting.as_deref(),
                Some(format!(
                    "granted: {}",
                    words(&target.requested.intersect(grants))
                )),
            )
            .await?;
        }
        if let Some(r) = &change.range {
            range(r)?;
            sets.push("range = $range");
            vars["range"] = json!(r);
            self.audit(actor, "range", name, None, None, Some(r.clone()))
                .await?;
        }
        if let Some(p) = change.pinned {
            sets.push("pinned = $pinned");
            vars["pinned"] = json!(p);
            let action = if p { "pin" } else { "unpin" };
            self.audit(actor, action, name, Some(&row.version), None, None)
                .await?;
        }
        if !sets.is_empty() {
            self.db
                .exec(
                    &format!(
                        "UPDATE type::record('install', $name) SET {}, updated_at = $now;",
                        sets.join(", ")
                    ),
                    vars,
                )
                .await?;
        }
        self.sync().await;
        self.view(name).await
    }

    /// Upgrades `name` to `version`, or to the greatest within its range. A version asking for
    /// more than was decided on waits for a grant instead.
    pub async fn upgrade(
        &self,
        actor: &str,
        name: &str,
        version: Option<&str>,
        trust_key: Option<&str>,
    ) -> Result<InstallView, InstallError> {
        let row = self.row(name).await?.ok_or(InstallError::NotInstalled)?;
        let req = range(&row.range)?;
        // From another registry: mirror what is asked for (or the best within the range) first.
        if let Some(registry) = self.source(name).await? {
            let pick = match version {
                Some(v) => super::remote::Pick::Exact(v.into()),
                None => super::remote::Pick::Within(req.clone()),
            };
            self.remote()?
                .mirror(&self.db, &registry, name, &pick, trust_key)
                .await?;
        }
        let target = match version {
            Some(v) => {
                let t = self.installable(name, v).await?;
                if !semver(v).is_some_and(|s| req.matches(&s)) {
                    return Err(InstallError::OutsideRange {
                        version: v.into(),
                        range: row.range,
                    });
                }
                t
            }
            None => self.best(name, &req).await?.ok_or_else(|| {
                InstallError::NothingNewer(format!(
                    "no version of {name} within {} installs",
                    row.range
                ))
            })?,
        };
        let newer = match (semver(&target.version), semver(&row.version)) {
            (Some(t), Some(c)) => t > c,
            _ => false,
        };
        if !newer {
            return Err(InstallError::NothingNewer(format!(
                "{name} {} is installed; {} is not newer",
                row.version, target.version
            )));
        }
        self.move_to(actor, &row, &target).await?;
        self.sync().await;
        self.view(name).await
    }

    /// Moves `row` to `target`, or marks `target` waiting when it asks for more than was
    /// decided on. Conditional on the version being the one read, so two nodes deciding at
    /// once move it once.
    async fn move_to(&self, actor: &str, row: &Row, target: &Version) -> Result<(), StoreError> {
        let asks = target.requested.beyond(&row.decided);
        if !asks.is_empty() {
            if row.waiting.as_deref() != Some(&target.version) {
                self.db
                    .exec(
                        "UPDATE type::record('install', $name) SET waiting = $v, updated_at = $now;",
                        json!({"name": row.package, "v": target.version, "now": now_ms()}),
                    )
                    .await?;
                self.audit(
                    actor,
                    "waiting_for_grant",
                    &row.package,
                    Some(&row.version),
                    Some(&target.version),
                    Some(format!("asks for more: {}", words(&asks))),
                )
                .await?;
            }
            return Ok(());
        }
        let moved: Vec<serde_json::Value> = self
            .db
            .rows(
                "UPDATE type::record('install', $name) SET previous = version, version = $v, waiting = NONE,
                 disabled = NONE, updated_at = $now WHERE version = $old RETURN record::id(id) AS package;",
                json!({"name": row.package, "v": target.version, "old": row.version, "now": now_ms()}),
            )
            .await?;
        if !moved.is_empty() {
            self.audit(
                actor,
                "upgrade",
                &row.package,
                Some(&row.version),
                Some(&target.version),
                None,
            )
            .await?;
        }
        Ok(())
    }

    /// Returns `name` to its previous version and pins it there.
    pub async fn rollback(&self, actor: &str, name: &str) -> Result<InstallView, InstallError> {
        let row = self.row(name).await?.ok_or(InstallError::NotInstalled)?;
        let previous = row.previous.clone().ok_or(InstallError::NoPrevious)?;
        self.installable(name, &previous).await?;
        self.db
            .exec(
                "UPDATE type::record('install', $name) SET previous = version, version = $prev, pinned = true,
                 waiting = NONE, disabled = NONE, updated_at = $now;",
                json!({"name": name, "prev": previous, "now": now_ms()}),
            )
            .await?;
        self.audit(
            actor,
            "rollback",
            name,
            Some(&row.version),
            Some(&previous),
            Some("pinned, so it is not upgraded again until unpinned".into()),
        )
        .await?;
        self.sync().await;
        self.view(name).await
    }

    /// Removes `name`; calls in flight finish.
    pub async fn uninstall(&self, actor: &str, name: &str) -> Result<(), InstallError> {
        let row = self.row(name).await?.ok_or(InstallError::NotInstalled)?;
        self.db
            .exec(
                "DELETE type::record('install', $name);",
                json!({"name": name}),
            )
            .await?;
        self.audit(actor, "uninstall", name, Some(&row.version), None, None)
            .await?;
        self.sync().await;
        Ok(())
    }

    /// Every install.
    pub async fn list(&self) -> Result<Vec<InstallView>, InstallError> {
        let mut out = Vec::new();
        for row in self.rows().await? {
            out.push(self.describe(row).await?);
        }
        Ok(out)
    }

    /// One install.
    pub async fn view(&self, name: &str) -> Result<InstallView, InstallError> {
        let row = self.row(name).await?.ok_or(InstallError::NotInstalled)?;
        self.describe(row).await
    }

    async fn describe(&self, row: Row) -> Result<InstallView, InstallError> {
        let current = self.version(&row.package, &row.version).await?;
        let granted = current.requested.intersect(&row.grants);
        let waiting = match &row.waiting {
            Some(w) => {
                let v = self.version(&row.package, w).await?;
                Some(Waiting {
                    version: w.clone(),
                    asks: v.requested.beyond(&row.decided).in_words(),
                    requested: v.requested,
                })
            }
            None => None,
        };
        let status = if row.disabled.is_some() {
            "disabled"
        } else if waiting.is_some() {
            "waiting_for_grant"
        } else {
            "active"
        };
        Ok(InstallView {
            package: row.package,
            version: row.version,
            status: status.into(),
            range: row.range,
            pinned: row.pinned,
            granted: granted.in_words(),
            ungranted: current.requested.beyond(&granted).in_words(),
            requested: current.requested,
            grants: row.grants,
            waiting,
            key_revoked: self.revoked(&current.key).await?,
            disabled: row.disabled,
            previous: row.previous,
            installed_by: row.installed_by,
            updated_at: row.updated_at,
        })
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.db
            .rows(
                "SELECT at, actor, action, package, from_version, to_version, detail FROM install_audit
                 ORDER BY at DESC LIMIT $limit;",
                json!({"limit": limit}),
            )
            .await
    }

    /// Decides automatic upgrades and revocations, then makes this node's host run exactly
    /// what the rows say. Failures are logged and retried on the next sync.
    pub async fn sync(&self) {
        if let Err(e) = self.try_sync().await {
            tracing::warn!(error = %e, "marketplace installs could not be synced");
        }
    }

    async fn try_sync(&self) -> Result<(), InstallError> {
        let mut live = self.live.lock().await;
        for row in self.rows().await? {
            if row.disabled.is_some() {
                continue;
            }
            let current = self.version(&row.package, &row.version).await?;
            if self.on_revoked == OnRevoked::Disable && self.revoked(&current.key).await? {
                let why = "the key that signed this version was revoked by its publisher";
                self.db
                    .exec(
                        "UPDATE type::record('install', $name) SET disabled = $why, updated_at = $now WHERE version = $v;",
                        json!({"name": row.package, "why": why, "v": row.version, "now": now_ms()}),
                    )
                    .await?;
                self.audit(
                    AUTO,
                    "disable",
                    &row.package,
                    Some(&row.version),
                    None,
                    Some(why.into()),
                )
                .await?;
                continue;
            }
            // A version an admin asked for, once its asks are decided on, goes ahead even
            // when pinned.
            if let Some(w) = &row.waiting {
                let target = self.version(&row.package, w).await?;
                if target.requested.beyond(&row.decided).is_empty() {
                    self.move_to(AUTO, &row, &target).await?;
                    continue;
                }
            }
            if !row.pinned
                && let Ok(req) = range(&row.range)
                && let Some(best) = self.best(&row.package, &req).await?
                && semver(&best.version) > semver(&row.version)
            {
                self.move_to(AUTO, &row, &best).await?;
            }
        }
        let wanted: HashMap<String, Row> = self
            .rows()
            .await?
            .into_iter()
            .filter(|r| r.disabled.is_none())
            .map(|r| (r.package.clone(), r))
            .collect();
        let gone: Vec<String> = live
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            self.host.uninstall(&name);
            live.remove(&name);
            tracing::info!(package = %name, "marketplace plugin removed from this node");
        }
        for (name, row) in wanted {
            let state = (row.version.clone(), row.grants.clone());
            if live.get(&name) == Some(&state) {
                continue;
            }
            let version = self.version(&name, &row.version).await?;
            match self.load(&name, &version, &row.grants).await {
                Ok(installed) => {
                    self.host.install(installed);
                    live.insert(name, state);
                }
                Err(e) => {
                    tracing::warn!(package = %name, version = %row.version, error = %e,
                        "a marketplace install does not load on this node");
                }
            }
        }
        Ok(())
    }

    /// Syncs every `every` until `shutdown`.
    pub async fn run(self, every: std::time::Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.sync().await;
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
