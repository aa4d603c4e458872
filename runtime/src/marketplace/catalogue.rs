//! What the registry shows: the catalogue with search and filters, a package's page with its
//! versions, a version's README and screenshots, downloads (counted), and yanking.
//!
//! A package's `latest` is its greatest version that installs: not yanked and signed by a key
//! its publisher has not revoked. It is recomputed whenever one of those changes; a package
//! with no such version leaves the catalogue (its page and exact versions stay reachable, so
//! what is installed can still be looked up).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::blobs;
use crate::plugins::Capabilities;
use crate::store::{Db, StoreError, StoreResult};

/// Packages per catalogue page.
pub const PAGE: usize = 20;

/// A package in the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    /// Its name (what installs and manifests use).
    pub name: String,
    /// What people see.
    pub display_name: String,
    /// One or two sentences.
    pub description: String,
    /// `tutor`, `payment-provider`, `notifier` or `lms`.
    pub kind: String,
    /// Languages a tutor teaches (BCP 47).
    pub languages: Vec<String>,
    /// CEFR levels a tutor serves.
    pub levels: Vec<String>,
    /// The publisher's slug.
    pub publisher: String,
    /// The greatest version that installs; empty when none does.
    pub latest: String,
    /// Downloads of every version.
    pub downloads: u64,
    /// When a version was last published (ms).
    pub updated_at: i64,
}

/// What to look for; every part optional.
#[derive(Debug, Default, Clone)]
pub struct Search {
    /// Words that must each appear in the name, display name or description.
    pub text: Vec<String>,
    /// One kind.
    pub kind: Option<String>,
    /// A language a tutor teaches.
    pub language: Option<String>,
    /// A level a tutor serves.
    pub level: Option<String>,
    /// One publisher's packages.
    pub publisher: Option<String>,
    /// Zero-based page.
    pub page: usize,
}

const LISTING: &str = "record::id(id) AS name, display_name, description, kind, languages, levels, \
                       publisher, latest, downloads, updated_at";

/// One page of the catalogue: most downloaded first, then by name.
pub async fn search(db: &Db, s: &Search) -> StoreResult<Vec<Listing>> {
    // Packages mirrored from other registries are installed here, not offered from here.
    let mut clauses = vec!["latest != ''".to_string(), "source = NONE".to_string()];
    let mut vars = json!({"limit": PAGE, "start": s.page * PAGE});
    for (field, value) in [
        ("kind", &s.kind),
        ("language", &s.language),
        ("level", &s.level),
        ("publisher", &s.publisher),
    ] {
        if let Some(v) = value {
            clauses.push(match field {
                "language" => "$language INSIDE languages".to_string(),
                "level" => "$level INSIDE levels".to_string(),
                f => format!("{f} = ${f}"),
            });
            vars[field] = json!(v);
        }
    }
    for (i, word) in s.text.iter().enumerate() {
        clauses.push(format!(
            "string::contains(string::lowercase(record::id(id) + ' ' + display_name + ' ' + description), $w{i})"
        ));
        vars[format!("w{i}")] = json!(word.to_lowercase());
    }
    db.rows(
        &format!(
            "SELECT {LISTING} FROM package WHERE {} ORDER BY downloads DESC, name ASC LIMIT $limit START $start;",
            clauses.join(" AND ")
        ),
        vars,
    )
    .await
}

/// A version, as its package's page lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// The version.
    pub version: String,
    /// When it was published (ms).
    pub published_at: i64,
    /// Withdrawn by its publisher: it no longer installs anew.
    pub yanked: bool,
    /// Signed by a key its publisher has since revoked: it no longer installs.
    pub key_revoked: bool,
    /// The WIT version it was built against.
    pub wit: String,
    /// What it asks an installer to grant.
    pub requested: Capabilities,
    /// The fingerprint of the key that signed it.
    pub signed_by: String,
    /// SHA-256 of its archive.
    pub digest: String,
    /// Bytes of its archive.
    pub size: u64,
}

/// A screenshot of a version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Screenshot {
    /// Its file name in the package.
    pub name: String,
    /// SHA-256 of its bytes.
    pub digest: String,
}

#[derive(Deserialize)]
struct VersionRow {
    version: String,
    published_at: i64,
    yanked: bool,
    key: String,
    wit: String,
    requested: Capabilities,
    archive: String,
    size: u64,
    readme: Option<String>,
    screenshots: Vec<Screenshot>,
    manifest: String,
}

/// A version with everything its page shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionPage {
    /// The package.
    pub package: String,
    /// What the package's page lists.
    #[serde(flatten)]
    pub info: VersionInfo,
    /// Its README (Markdown, shown as text).
    pub readme: Option<String>,
    /// Its screenshots, each at `…/{version}/screenshots/{name}`.
    pub screenshots: Vec<Screenshot>,
    /// Its manifest, exactly as signed.
    pub manifest: String,
}

/// A package's page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackagePage {
    /// What the catalogue lists.
    #[serde(flatten)]
    pub listing: Listing,
    /// The publisher's display name.
    pub publisher_name: String,
    /// When the name was first published (ms).
    pub created_at: i64,
    /// The README of the latest version (or of the newest one when none installs).
    pub readme: Option<String>,
    /// That version's screenshots.
    pub screenshots: Vec<Screenshot>,
    /// Every version, newest first.
    pub versions: Vec<VersionInfo>,
}

async fn revoked_keys(db: &Db, publisher: &str) -> StoreResult<Vec<String>> {
    db.rows(
        "SELECT VALUE record::id(id) FROM publisher_key WHERE publisher = $p AND revoked_at != NONE;",
        json!({"p": publisher}),
    )
    .await
}

async fn versions(db: &Db, name: &str, publisher: &str) -> StoreResult<Vec<(VersionRow, bool)>> {
    let rows: Vec<VersionRow> = db
        .rows(
            "SELECT version, published_at, yanked, key, wit, requested, archive, size, readme, screenshots, manifest
             FROM package_version WHERE package = $name;",
            json!({"name": name}),
        )
        .await?;
    let revoked = revoked_keys(db, publisher).await?;
    let mut rows: Vec<(VersionRow, bool)> = rows
        .into_iter()
        .map(|r| {
            let off = revoked.contains(&r.key);
            (r, off)
        })
        .collect();
    rows.sort_by(|(a, _), (b, _)| precedence(&b.version, &a.version));
    Ok(rows)
}

fn precedence(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_precedence(&b),
        _ => a.cmp(b),
    }
}

fn info(r: &VersionRow, key_revoked: bool) -> VersionInfo {
    VersionInfo {
        version: r.version.clone(),
        published_at: r.published_at,
        yanked: r.yanked,
        key_revoked,
        wit: r.wit.clone(),
        requested: r.requested.clone(),
        signed_by: r.key.clone(),
        digest: r.archive.clone(),
        size: r.size,
    }
}

async fn listing(db: &Db, name: &str) -> StoreResult<Option<(Listing, i64)>> {
    #[derive(Deserialize)]
    struct Row {
        #[serde(flatten)]
        listing: Listing,
        created_at: i64,
    }
    Ok(db
        .one::<Row>(
            &format!("SELECT {LISTING}, created_at FROM type::record('package', $name);"),
            json!({"name": name}),
        )
        .await?
        .map(|r| (r.listing, r.created_at)))
}

/// The page of package `name`.
pub async fn package(db: &Db, name: &str) -> StoreResult<Option<PackagePage>> {
    let Some((listing, created_at)) = listing(db, name).await? else {
        return Ok(None);
    };
    let all = versions(db, name, &listing.publisher).await?;
    let shown = all
        .iter()
        .find(|(r, _)| r.version == listing.latest)
        .or(all.first());
    let publisher_name: Option<String> = db
        .one(
            "SELECT VALUE name FROM type::record('publisher', $p);",
            json!({"p": listing.publisher}),
        )
        .await?;
    Ok(Some(PackagePage {
        publisher_name: publisher_name.unwrap_or_default(),
        created_at,
        readme: shown.and_then(|(r, _)| r.readme.clone()),
        screenshots: shown
            .map(|(r, _)| r.screenshots.clone())
            .unwrap_or_default(),
        versions: all.iter().map(|(r, off)| info(r, *off)).collect(),
        listing,
    }))
}

/// Version `version` of `name`.
pub async fn version(db: &Db, name: &str, version: &str) -> StoreResult<Option<VersionPage>> {
    let Some((listing, _)) = listing(db, name).await? else {
        return Ok(None);
    };
    Ok(versions(db, name, &listing.publisher)
        .await?
        .into_iter()
        .find(|(r, _)| r.version == version)
        .map(|(r, off)| VersionPage {
            package: name.into(),
            info: info(&r, off),
            readme: r.readme,
            screenshots: r.screenshots,
            manifest: r.manifest,
        }))
}

/// The archive of `name` `version`, counted as a download.
pub async fn download(
    db: &Db,
    name: &str,
    version: &str,
) -> StoreResult<Option<(String, Vec<u8>)>> {
    let digest: Option<String> = db
        .one(
            "SELECT VALUE archive FROM type::record('package_version', [$name, $version]);",
            json!({"name": name, "version": version}),
        )
        .await?;
    let Some(digest) = digest else {
        return Ok(None);
    };
    let bytes = blobs::get(db, &digest)
        .await?
        .ok_or_else(|| StoreError::Db(format!("the archive of {name} {version} is missing")))?;
    db.exec(
        "UPDATE type::record('package', $name) SET downloads += 1;",
        json!({"name": name}),
    )
    .await?;
    Ok(Some((digest, bytes)))
}

/// The screenshot `file` of `name` `version`.
pub async fn screenshot(
    db: &Db,
    name: &str,
    version: &str,
    file: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let shots: Option<Vec<Screenshot>> = db
        .one(
            "SELECT VALUE screenshots FROM type::record('package_version', [$name, $version]);",
            json!({"name": name, "version": version}),
        )
        .await?;
    let Some(shot) = shots.into_iter().flatten().find(|s| s.name == file) else {
        return Ok(None);
    };
    blobs::get(db, &shot.digest).await
}

/// Sets whether `name` `version` is yanked; `false` when there is no such version.
pub async fn set_yanked(db: &Db, name: &str, version: &str, yanked: bool) -> StoreResult<bool> {
    let found: Vec<serde_json::Value> = db
        .rows(
            "UPDATE type::record('package_version', [$name, $version]) SET yanked = $yanked RETURN NONE;
             SELECT VALUE id FROM type::record('package_version', [$name, $version]);",
            json!({"name": name, "version": version, "yanked": yanked}),
        )
        .await?;
    if found.is_empty() {
        return Ok(false);
    }
    refresh_latest(db, name).await?;
    tracing::info!(package = %name, %version, yanked, "package version yanked or restored");
    Ok(true)
}

/// Recomputes `latest` for every package of `publisher` (after a key is revoked).
pub async fn refresh_publisher(db: &Db, publisher: &str) -> StoreResult<()> {
    let names: Vec<String> = db
        .rows(
            "SELECT VALUE record::id(id) FROM package WHERE publisher = $p;",
            json!({"p": publisher}),
        )
        .await?;
    for name in names {
        refresh_latest(db, &name).await?;
    }
    Ok(())
}

/// Recomputes `name`'s `latest`: its greatest version neither yanked nor signed by a revoked
/// key, or empty.
pub async fn refresh_latest(db: &Db, name: &str) -> StoreResult<()> {
    let Some((listing, _)) = listing(db, name).await? else {
        return Ok(());
    };
    let latest = versions(db, name, &listing.publisher)
        .await?
        .into_iter()
        .find(|(r, off)| !r.yanked && !off)
        .map(|(r, _)| r.version)
        .unwrap_or_default();
    db.exec(
        "UPDATE type::record('package', $name) SET latest = $latest;",
        json!({"name": name, "latest": latest}),
    )
    .await?;
    Ok(())
}
