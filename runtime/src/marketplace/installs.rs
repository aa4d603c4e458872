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
    /// A school asked for an operator's secret.
    #[error(
        "secrets are the operator's: a school's install cannot be granted them (the operator can install it server-wide)"
    )]
    SchoolSecret,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whose install: the whole server's (the operator's) or one school's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account on the server.
    Server,
    /// One school's members only.
    School(String),
}

impl Scope {
    /// The name the plugin runs under: the package's, or `NAME@SCHOOL` for a school's.
    pub fn key(&self, package: &str) -> String {
        match self {
            Scope::Server => package.to_string(),
            Scope::School(s) => format!("{package}@{s}"),
        }
    }

    fn school(&self) -> Option<&str> {
        match self {
            Scope::Server => None,
            Scope::School(s) => Some(s),
        }
    }

    fn of(school: Option<String>) -> Scope {
        school.map_or(Scope::Server, Scope::School)
    }
}

/// An install's row: the desired state.
#[derive(Debug, Clone, Deserialize)]
struct Row {
    key: String,
    school: Option<String>,
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

const ROW: &str = "record::id(id) AS key, package ?? record::id(id) AS package, school, version, \
                   range, pinned, grants, decided, previous, waiting, disabled, installed_by, updated_at";

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
    /// The school it is installed for; none when server-wide.
    pub school: Option<String>,
    /// The name it runs under: what learners pick as a personality (`NAME@SCHOOL` for a
    /// school's).
    pub runs_as: String,
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
    /// The school whose install it was; none when server-wide.
    pub school: Option<String>,
    /// The version before.
    pub from_version: Option<String>,
    /// The version after.
    pub to_version: Option<String>,
    /// What was granted or why.
    pub detail: Option<String>,
}

/// What to install.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// For whom.
    pub scope: Scope,
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

    async fn row(&self, scope: &Scope, name: &str) -> Result<Option<Row>, StoreError> {
        self.db
            .one(
                &format!("SELECT {ROW} FROM type::record('install', $key);"),
                json!({"key": scope.key(name)}),
            )
            .await
    }

    /// Every install row (`None`), or one scope's.
    async fn rows(&self, scope: Option<&Scope>) -> Result<Vec<Row>, StoreError> {
        let rows: Vec<Row> = self
            .db
            .rows(
                &format!("SELECT {ROW} FROM install ORDER BY key;"),
                json!({}),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| scope.is_none_or(|s| s.school() == r.school.as_deref()))
            .collect())
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

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        scope: &Scope,
        package: &str,
        from: Option<&str>,
        to: Option<&str>,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        let school = scope.school();
        tracing::info!(%actor, %action, %package, school, from, to, "marketplace install changed");
        self.db
            .exec(
                "CREATE install_audit CONTENT { at: $at, actor: $actor, action: $action, package: $package,
                 school: $school, from_version: $from, to_version: $to, detail: $detail };",
                json!({"at": now_ms(), "actor": actor, "action": action, "package": package,
                       "school": school, "from": from, "to": to, "detail": detail}),
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
        runs_as: &str,
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
        let runs_as = runs_as.to_string();
        tokio::task::spawn_blocking(move || host.load_as(&package, &grants, &runs_as))
            .await
            .map_err(|e| InstallError::Load(e.to_string()))?
            .map_err(|e| InstallError::Load(e.to_string()))
    }

    /// Installs what `w` says: the package at its version (its latest when `None`), from this
    /// registry or another one, with its grants, upgrading within its range.
    pub async fn install(&self, actor: &str, w: &Wanted) -> Result<InstallView, InstallError> {
        let name = w.package.as_str();
        let scope = &w.scope;
        let key = scope.key(name);
        let grants = &w.grants;
        let range_text = w.range.as_deref();
        if scope.school().is_some() && !grants.secrets.is_empty() {
            return Err(InstallError::SchoolSecret);
        }
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
        if self.row(scope, name).await?.is_some() {
            return Err(InstallError::AlreadyInstalled(name.into()));
        }
        if self.host.get(&key).is_some() && !self.live.lock().await.contains_key(&key) {
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
        self.load(name, &v, grants, &key).await?;
        let created = self
            .db
            .exec(
                "CREATE type::record('install', $key) CONTENT { package: $name, school: $school, version: $version,
                 range: $range, pinned: false, grants: $grants, decided: $decided, installed_by: $by, updated_at: $now };",
                json!({"key": key, "name": name, "school": scope.school(), "version": version,
                       "range": range_text, "grants": grants, "decided": v.requested, "by": actor,
                       "now": now_ms()}),
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
            scope,
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
        self.view(scope, name).await
    }

    /// Changes `name`'s grants, range or pin.
    pub async fn change(
        &self,
        actor: &str,
        scope: &Scope,
        name: &str,
        change: &Change,
    ) -> Result<InstallView, InstallError> {
        let row = self
            .row(scope, name)
            .await?
            .ok_or(InstallError::NotInstalled)?;
        if let Some(g) = &change.grants
            && scope.school().is_some()
            && !g.secrets.is_empty()
        {
            return Err(InstallError::SchoolSecret);
        }
        let current = self.version(name, &row.version).await?;
        let mut sets = Vec::new();
        let mut vars = json!({"key": row.key, "now": now_ms()});
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
                scope,
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
            self.audit(actor, "range", scope, name, None, None, Some(r.clone()))
                .await?;
        }
        if let Some(p) = change.pinned {
            sets.push("pinned = $pinned");
            vars["pinned"] = json!(p);
            let action = if p { "pin" } else { "unpin" };
            self.audit(actor, action, scope, name, Some(&row.version), None, None)
                .await?;
        }
        if !sets.is_empty() {
            self.db
                .exec(
                    &format!(
                        "UPDATE type::record('install', $key) SET {}, updated_at = $now;",
                        sets.join(", ")
                    ),
                    vars,
                )
                .await?;
        }
        self.sync().await;
        self.view(scope, name).await
    }

    /// Upgrades `name` to `version`, or to the greatest within its range. A version asking for
    /// more than was decided on waits for a grant instead.
    pub async fn upgrade(
        &self,
        actor: &str,
        scope: &Scope,
        name: &str,
        version: Option<&str>,
        trust_key: Option<&str>,
    ) -> Result<InstallView, InstallError> {
        let row = self
            .row(scope, name)
            .await?
            .ok_or(InstallError::NotInstalled)?;
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
        self.view(scope, name).await
    }

    /// Moves `row` to `target`, or marks `target` waiting when it asks for more than was
    /// decided on. Conditional on the version being the one read, so two nodes deciding at
    /// once move it once.
    async fn move_to(&self, actor: &str, row: &Row, target: &Version) -> Result<(), StoreError> {
        let asks = target.requested.beyond(&row.decided);
        let scope = Scope::of(row.school.clone());
        if !asks.is_empty() {
            if row.waiting.as_deref() != Some(&target.version) {
                self.db
                    .exec(
                        "UPDATE type::record('install', $key) SET waiting = $v, updated_at = $now;",
                        json!({"key": row.key, "v": target.version, "now": now_ms()}),
                    )
                    .await?;
                self.audit(
                    actor,
                    "waiting_for_grant",
                    &scope,
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
                "UPDATE type::record('install', $key) SET previous = version, version = $v, waiting = NONE,
                 disabled = NONE, updated_at = $now WHERE version = $old RETURN record::id(id) AS key;",
                json!({"key": row.key, "v": target.version, "old": row.version, "now": now_ms()}),
            )
            .await?;
        if !moved.is_empty() {
            self.audit(
                actor,
                "upgrade",
                &scope,
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
    pub async fn rollback(
        &self,
        actor: &str,
        scope: &Scope,
        name: &str,
    ) -> Result<InstallView, InstallError> {
        let row = self
            .row(scope, name)
            .await?
            .ok_or(InstallError::NotInstalled)?;
        let previous = row.previous.clone().ok_or(InstallError::NoPrevious)?;
        self.installable(name, &previous).await?;
        self.db
            .exec(
                "UPDATE type::record('install', $key) SET previous = version, version = $prev, pinned = true,
                 waiting = NONE, disabled = NONE, updated_at = $now;",
                json!({"key": row.key, "prev": previous, "now": now_ms()}),
            )
            .await?;
        self.audit(
            actor,
            "rollback",
            scope,
            name,
            Some(&row.version),
            Some(&previous),
            Some("pinned, so it is not upgraded again until unpinned".into()),
        )
        .await?;
        self.sync().await;
        self.view(scope, name).await
    }

    /// Removes `name`; calls in flight finish.
    pub async fn uninstall(
        &self,
        actor: &str,
        scope: &Scope,
        name: &str,
    ) -> Result<(), InstallError> {
        let row = self
            .row(scope, name)
            .await?
            .ok_or(InstallError::NotInstalled)?;
        self.db
            .exec(
                "DELETE type::record('install', $key);",
                json!({"key": row.key}),
            )
            .await?;
        self.audit(
            actor,
            "uninstall",
            scope,
            name,
            Some(&row.version),
            None,
            None,
        )
        .await?;
        self.sync().await;
        Ok(())
    }

    /// `scope`'s installs.
    pub async fn list(&self, scope: &Scope) -> Result<Vec<InstallView>, InstallError> {
        let mut out = Vec::new();
        for row in self.rows(Some(scope)).await? {
            out.push(self.describe(row).await?);
        }
        Ok(out)
    }

    /// One install.
    pub async fn view(&self, scope: &Scope, name: &str) -> Result<InstallView, InstallError> {
        let row = self
            .row(scope, name)
            .await?
            .ok_or(InstallError::NotInstalled)?;
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
            runs_as: row.key,
            school: row.school,
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

    /// `scope`'s audit log, newest first.
    pub async fn audit_log(
        &self,
        scope: &Scope,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (filter, school) = match scope.school() {
            Some(s) => ("school = $school", Some(s)),
            None => ("school = NONE", None),
        };
        self.db
            .rows(
                &format!(
                    "SELECT at, actor, action, package, school, from_version, to_version, detail FROM install_audit
                     WHERE {filter} ORDER BY at DESC LIMIT $limit;"
                ),
                json!({"limit": limit, "school": school}),
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
        for row in self.rows(None).await? {
            if row.disabled.is_some() {
                continue;
            }
            let scope = Scope::of(row.school.clone());
            let current = self.version(&row.package, &row.version).await?;
            if self.on_revoked == OnRevoked::Disable && self.revoked(&current.key).await? {
                let why = "the key that signed this version was revoked by its publisher";
                self.db
                    .exec(
                        "UPDATE type::record('install', $key) SET disabled = $why, updated_at = $now WHERE version = $v;",
                        json!({"key": row.key, "why": why, "v": row.version, "now": now_ms()}),
                    )
                    .await?;
                self.audit(
                    AUTO,
                    "disable",
                    &scope,
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
            .rows(None)
            .await?
            .into_iter()
            .filter(|r| r.disabled.is_none())
            .map(|r| (r.key.clone(), r))
            .collect();
        let gone: Vec<String> = live
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            self.host.uninstall(&name);
            live.remove(&name);
            tracing::info!(plugin = %name, "marketplace plugin removed from this node");
        }
        for (key, row) in wanted {
            let state = (row.version.clone(), row.grants.clone());
            if live.get(&key) == Some(&state) {
                continue;
            }
            let version = self.version(&row.package, &row.version).await?;
            match self.load(&row.package, &version, &row.grants, &key).await {
                Ok(installed) => {
                    self.host.install(installed);
                    live.insert(key, state);
                }
                Err(e) => {
                    tracing::warn!(plugin = %key, version = %row.version, error = %e,
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
