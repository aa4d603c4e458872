//! The registry over HTTP: publisher sign-up, a publisher's public page with its keys, key
//! registration and revocation, and publishing a package archive.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::archive::MAX_ARCHIVE;
use super::catalogue::{self, Listing, PackagePage, Search, VersionInfo, VersionPage};
use super::installs::{AuditEntry, Change, InstallError, InstallView, Installs, Scope, Wanted};
use super::publishers::{self, KeyView, Publisher, PublisherError, PublisherRow, TokenView};
use super::registry::{PublishError, Published, Registry};
use super::signature::PublicKey;
use crate::auth::{AuthUser, Gate, Keys, Operator};
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::lms::lti::routes::field;
use crate::plugins::Capabilities;
use crate::plugins::manifest::{Kind, Level};

/// What the marketplace's handlers use.
#[derive(Clone)]
pub struct MarketplaceState {
    /// The registry.
    pub registry: Registry,
    /// Installs from it.
    pub installs: Installs,
    /// Token keys, to know who is signed in.
    pub keys: Arc<Keys>,
}

impl FromRef<MarketplaceState> for Gate {
    fn from_ref(s: &MarketplaceState) -> Gate {
        Gate {
            db: s.registry.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// The marketplace's routes.
pub fn router(state: MarketplaceState) -> OpenApiRouter {
    // Archives are larger than any other body: only this route takes them.
    let upload = OpenApiRouter::new()
        .routes(routes!(publish))
        .layer(DefaultBodyLimit::max(MAX_ARCHIVE))
        .with_state(state.clone());
    OpenApiRouter::new()
        .routes(routes!(catalogue))
        .routes(routes!(package_page))
        .routes(routes!(version_page))
        .routes(routes!(download))
        .routes(routes!(screenshot))
        .routes(routes!(yank))
        .routes(routes!(installs, install))
        .routes(routes!(read_install, change_install, uninstall))
        .routes(routes!(upgrade))
        .routes(routes!(rollback))
        .routes(routes!(audit))
        .routes(routes!(school_installs, school_install))
        .routes(routes!(
            read_school_install,
            change_school_install,
            uninstall_school
        ))
        .routes(routes!(upgrade_school))
        .routes(routes!(rollback_school))
        .routes(routes!(school_audit))
        .routes(routes!(become_publisher))
        .routes(routes!(my_publisher))
        .routes(routes!(publisher_page))
        .routes(routes!(register_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_tokens, make_token))
        .routes(routes!(revoke_token))
        .with_state(state)
        .merge(upload)
}

fn publisher_error(e: PublisherError) -> ApiError {
    match e {
        PublisherError::Unverified => ApiError::Forbidden(e.to_string()),
        PublisherError::AlreadyPublisher(_)
        | PublisherError::SlugTaken(_)
        | PublisherError::KeyTaken
        | PublisherError::TooManyKeys => ApiError::Conflict(e.to_string()),
        PublisherError::NoSuchKey => ApiError::NotFound("key"),
        PublisherError::TooManyTokens => ApiError::Conflict(e.to_string()),
        PublisherError::NoSuchToken => ApiError::NotFound("token"),
        PublisherError::Store(e) => e.into(),
    }
}

fn publish_error(e: PublishError) -> ApiError {
    match e {
        PublishError::TooLarge => ApiError::TooLarge(e.to_string()),
        PublishError::NameTaken(_)
        | PublishError::Reserved(_)
        | PublishError::VersionExists { .. }
        | PublishError::NotNewer { .. } => ApiError::Conflict(e.to_string()),
        PublishError::Archive(_) => ApiError::invalid("archive", e.to_string()),
        PublishError::Manifest(_)
        | PublishError::ComponentName { .. }
        | PublishError::Publisher { .. }
        | PublishError::KindChanged { .. } => ApiError::invalid("manifest", e.to_string()),
        PublishError::Signature(_) | PublishError::UnknownKey(_) | PublishError::RevokedKey(_) => {
            ApiError::invalid("signature", e.to_string())
        }
        PublishError::Component(_) => ApiError::invalid("component", e.to_string()),
        PublishError::Store(e) => e.into(),
    }
}

/// The publisher the signed-in account is, when it is `slug`.
async fn own(s: &MarketplaceState, user: &AuthUser, slug: &str) -> ApiResult<PublisherRow> {
    match publishers::of_owner(&s.registry.db, &user.id).await? {
        Some(p) if p.slug == slug => Ok(p),
        _ if publishers::get(&s.registry.db, slug).await?.is_some() => Err(ApiError::Forbidden(
            "only the publisher's own account may change it".into(),
        )),
        _ => Err(ApiError::NotFound("publisher")),
    }
}

/// Becoming a publisher.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPublisher {
    /// The name in URLs and in manifests (`publisher = "…"`): 2–39 of `a-z`, `0-9` and `-`,
    /// starting with a letter.
    #[schema(
        min_length = 2,
        max_length = 39,
        pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    )]
    slug: String,
    /// The name people see.
    #[schema(min_length = 1, max_length = 80)]
    name: String,
}

#[utoipa::path(post, path = "/v1/publishers", tag = "marketplace", request_body = NewPublisher,
    responses((status = 201, body = Publisher, description = "the account publishes as this publisher from now on"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "the account's address is not verified"),
        (status = 409, description = "the account publishes already, or the name is taken"),
        (status = 422, description = "a name that is not a slug, or a blank or overlong display name")),
    security(("bearer" = [])))]
async fn become_publisher(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Json(b): Json<NewPublisher>,
) -> ApiResult<(StatusCode, Json<Publisher>)> {
    if !publishers::valid_slug(&b.slug) {
        return Err(ApiError::invalid(
            "slug",
            "2 to 39 of a-z, 0-9 and -, starting with a letter, such as `ada-tutors`",
        ));
    }
    let name = field("name", &b.name, 80)?;
    let p = publishers::create(&s.registry.db, &user.id, &b.slug, &name)
        .await
        .map_err(publisher_error)?;
    tracing::info!(publisher = %p.slug, "publisher signed up");
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/v1/me/publisher", tag = "marketplace",
    responses((status = 200, body = Publisher), (status = 401, description = "not signed in"),
        (status = 404, description = "the account does not publish")),
    security(("bearer" = [])))]
async fn my_publisher(
    State(s): State<MarketplaceState>,
    user: AuthUser,
) -> ApiResult<Json<Publisher>> {
    let row = publishers::of_owner(&s.registry.db, &user.id)
        .await?
        .ok_or(ApiError::NotFound("publisher"))?;
    publishers::get(&s.registry.db, &row.slug)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("publisher"))
}

#[utoipa::path(get, path = "/v1/publishers/{publisher}", tag = "marketplace",
    params(("publisher" = String, Path, max_length = 39)),
    responses((status = 200, body = Publisher, description = "the publisher and every key it registered, revoked ones included"),
        (status = 404, description = "no such publisher")))]
async fn publisher_page(
    State(s): State<MarketplaceState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<Publisher>> {
    publishers::get(&s.registry.db, &slug)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("publisher"))
}

/// A key to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The public key `penpal key generate` printed: base64 of its 32 bytes.
    #[schema(min_length = 1, max_length = 100)]
    public_key: String,
    /// A note to tell keys apart ("laptop", "CI").
    #[schema(min_length = 1, max_length = 80)]
    label: String,
}

#[utoipa::path(post, path = "/v1/publishers/{publisher}/keys", tag = "marketplace", request_body = NewKey,
    params(("publisher" = String, Path, max_length = 39)),
    responses((status = 201, body = KeyView, description = "packages signed by it publish from now on"),
        (status = 401, description = "not signed in"), (status = 403, description = "another account's publisher"),
        (status = 404, description = "no such publisher"),
        (status = 409, description = "the key is registered already, or the publisher holds the most keys it may"),
        (status = 422, description = "not an ed25519 public key, or a blank or overlong label")),
    security(("bearer" = [])))]
async fn register_key(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path(slug): Path<String>,
    Json(b): Json<NewKey>,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    let p = own(&s, &user, &slug).await?;
    let key = PublicKey::parse(&b.public_key)
        .map_err(|e| ApiError::invalid("public_key", e.to_string()))?;
    let label = field("label", &b.label, 80)?;
    let view = publishers::add_key(&s.registry.db, &p.slug, &key, &label)
        .await
        .map_err(publisher_error)?;
    tracing::info!(publisher = %p.slug, key = %view.fingerprint, "publisher key registered");
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/v1/publishers/{publisher}/keys/{fingerprint}", tag = "marketplace",
    params(("publisher" = String, Path, max_length = 39), ("fingerprint" = String, Path, max_length = 64)),
    responses((status = 204, description = "revoked: what it signed no longer publishes or installs"),
        (status = 401, description = "not signed in"), (status = 403, description = "another account's publisher"),
        (status = 404, description = "no such publisher, or no such key of it")),
    security(("bearer" = [])))]
async fn revoke_key(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((slug, fingerprint)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let p = own(&s, &user, &slug).await?;
    publishers::revoke_key(&s.registry.db, &p.slug, &fingerprint)
        .await
        .map_err(publisher_error)?;
    // What the key signed stops being any package's latest, and installs of it are flagged
    // or disabled as the operator's policy says.
    catalogue::refresh_publisher(&s.registry.db, &p.slug).await?;
    s.installs.sync().await;
    Ok(StatusCode::NO_CONTENT)
}

/// A package archive's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // only its schema is used: the handler reads the raw body
struct PackageArchive(Vec<u8>);

#[utoipa::path(post, path = "/v1/marketplace/packages", tag = "marketplace",
    request_body(content = PackageArchive, content_type = "application/octet-stream",
        description = "a package archive, NAME-VERSION.penpal as `penpal plugin sign` packs it (at most 30 MiB)"),
    responses((status = 201, body = Published, description = "published: the version is listed and installable"),
        (status = 401, description = "not signed in, or an unknown publish token"), (status = 403, description = "the account is not a publisher"),
        (status = 409, description = "the name belongs to another publisher or to one of this server's plugins, or the version is not new and greater than every published one"),
        (status = 413, description = "the archive is larger than 30 MiB"),
        (status = 422, description = "the archive, manifest, signature or component is refused; `field` says which and the message what to fix")),
    security(("bearer" = [])))]
async fn publish(
    State(s): State<MarketplaceState>,
    headers: HeaderMap,
    user: Result<AuthUser, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    // A publish token (from CI) or a signed-in publisher's session.
    let p = match crate::http::bearer(&headers) {
        Some(t) if t.starts_with(publishers::TOKEN_PREFIX) => publishers::by_token(
            &s.registry.db,
            t,
        )
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this publish token is unknown or revoked: make a new one on your publisher page",
            )
        })?,
        _ => publishers::of_owner(&s.registry.db, &user?.id)
            .await?
            .ok_or_else(|| {
                ApiError::Forbidden(
                    "this account does not publish: become a publisher first (POST /v1/publishers)"
                        .into(),
                )
            })?,
    };
    let bytes = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => publish_error(PublishError::TooLarge),
        _ => ApiError::BadRequest(r.body_text()),
    })?;
    let published = s
        .registry
        .publish(&p, bytes.to_vec())
        .await
        .map_err(publish_error)?;
    // Installs here whose range takes the new version upgrade now; other nodes on their next
    // sync.
    let installs = s.installs.clone();
    tokio::spawn(async move { installs.sync().await });
    Ok((StatusCode::CREATED, Json(published)))
}

/// What to look for in the catalogue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CatalogueParams {
    /// Words that must each appear in a package's name, display name or description.
    #[param(max_length = 200)]
    q: Option<String>,
    /// One kind of plugin.
    kind: Option<Kind>,
    /// A language a tutor teaches (BCP 47, such as `fr` or `pt-BR`).
    #[param(max_length = 35, pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
    language: Option<String>,
    /// A CEFR level a tutor serves.
    level: Option<Level>,
    /// One publisher's packages.
    #[param(
        min_length = 2,
        max_length = 39,
        pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    )]
    publisher: Option<String>,
    /// Zero-based page of 20.
    #[param(minimum = 0, maximum = 500)]
    page: Option<u32>,
}

/// `fr`, `pt-BR`: a primary tag of 2–3 letters, then subtags of 1–8 letters or digits.
fn language_tag(t: &str) -> bool {
    let mut parts = t.split('-');
    let primary = parts.next().unwrap_or_default();
    t.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[utoipa::path(get, path = "/v1/marketplace/packages", tag = "marketplace", params(CatalogueParams),
    responses((status = 200, body = Vec<Listing>, description = "packages with a version that installs, most downloaded first (20 a page)"),
        (status = 400, description = "an unknown parameter, kind or level"),
        (status = 422, description = "an overlong search, a malformed language or publisher, or a page past 500")))]
async fn catalogue(
    State(s): State<MarketplaceState>,
    Query(p): Query<CatalogueParams>,
) -> ApiResult<Json<Vec<Listing>>> {
    let q = p.q.unwrap_or_default();
    if q.chars().count() > 200 {
        return Err(ApiError::invalid("q", "at most 200 characters"));
    }
    if let Some(l) = &p.language
        && !language_tag(l)
    {
        return Err(ApiError::invalid(
            "language",
            "a BCP 47 tag such as `fr` or `pt-BR`",
        ));
    }
    if let Some(slug) = &p.publisher
        && !publishers::valid_slug(slug)
    {
        return Err(ApiError::invalid(
            "publisher",
            "a publisher's name, such as `ada-tutors`",
        ));
    }
    let page = p.page.unwrap_or(0);
    if page > 500 {
        return Err(ApiError::invalid("page", "at most 500"));
    }
    let search = Search {
        text: q.split_whitespace().take(8).map(str::to_string).collect(),
        kind: p.kind.map(|k| k.to_string()),
        language: p.language.map(|l| l.trim().to_ascii_lowercase()),
        level: p.level.map(|l| l.to_string()),
        publisher: p.publisher,
        page: page as usize,
    };
    Ok(Json(catalogue::search(&s.registry.db, &search).await?))
}

#[utoipa::path(get, path = "/v1/marketplace/packages/{name}", tag = "marketplace",
    params(("name" = String, Path, max_length = 64)),
    responses((status = 200, body = PackagePage, description = "the package, its README and screenshots, and every version"),
        (status = 404, description = "no such package")))]
async fn package_page(
    State(s): State<MarketplaceState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PackagePage>> {
    catalogue::package(&s.registry.db, &name)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("package"))
}

#[utoipa::path(get, path = "/v1/marketplace/packages/{name}/{version}", tag = "marketplace",
    params(("name" = String, Path, max_length = 64), ("version" = String, Path, max_length = 64)),
    responses((status = 200, body = VersionPage, description = "the version, its README, screenshots and manifest"),
        (status = 404, description = "no such package or version")))]
async fn version_page(
    State(s): State<MarketplaceState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionPage>> {
    catalogue::version(&s.registry.db, &name, &version)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("version"))
}

/// Content named by its version never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[utoipa::path(get, path = "/v1/marketplace/packages/{name}/{version}/download", tag = "marketplace",
    params(("name" = String, Path, max_length = 64), ("version" = String, Path, max_length = 64)),
    responses((status = 200, content_type = "application/octet-stream", body = PackageArchive,
            description = "the archive exactly as published (yanked versions too, for those who pinned them); `ETag` is its SHA-256. Verify its signature before use: `penpal plugin verify`"),
        (status = 404, description = "no such package or version")))]
async fn download(
    State(s): State<MarketplaceState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (digest, bytes) = catalogue::download(&s.registry.db, &name, &version)
        .await?
        .ok_or(ApiError::NotFound("version"))?;
    let disposition = format!("attachment; filename=\"{name}-{version}.penpal\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&format!("\"sha256:{digest}\""))
                    .unwrap_or(HeaderValue::from_static("\"\"")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/marketplace/packages/{name}/{version}/screenshots/{file}", tag = "marketplace",
    params(("name" = String, Path, max_length = 64), ("version" = String, Path, max_length = 64),
        ("file" = String, Path, max_length = 64)),
    responses((status = 200, content_type = "image/png", description = "the screenshot (PNG or WebP)"),
        (status = 404, description = "no such package, version or screenshot")))]
async fn screenshot(
    State(s): State<MarketplaceState>,
    Path((name, version, file)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let bytes = catalogue::screenshot(&s.registry.db, &name, &version, &file)
        .await?
        .ok_or(ApiError::NotFound("screenshot"))?;
    let kind = if file.ends_with(".webp") {
        "image/webp"
    } else {
        "image/png"
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        ],
        bytes,
    )
        .into_response())
}

/// Whether a version is withdrawn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Yank {
    /// `true` withdraws it: it no longer installs anew, while installs of it keep running and
    /// it stays downloadable for those who pinned it. `false` restores it.
    yanked: bool,
}

#[utoipa::path(put, path = "/v1/marketplace/packages/{name}/{version}/yanked", tag = "marketplace",
    request_body = Yank,
    params(("name" = String, Path, max_length = 64), ("version" = String, Path, max_length = 64)),
    responses((status = 200, body = VersionInfo, description = "changed; the package's latest is recomputed"),
        (status = 401, description = "not signed in"), (status = 403, description = "another publisher's package"),
        (status = 404, description = "no such package or version")),
    security(("bearer" = [])))]
async fn yank(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((name, version)): Path<(String, String)>,
    Json(b): Json<Yank>,
) -> ApiResult<Json<VersionInfo>> {
    let page = catalogue::package(&s.registry.db, &name)
        .await?
        .ok_or(ApiError::NotFound("package"))?;
    own(&s, &user, &page.listing.publisher).await?;
    if !catalogue::set_yanked(&s.registry.db, &name, &version, b.yanked).await? {
        return Err(ApiError::NotFound("version"));
    }
    catalogue::version(&s.registry.db, &name, &version)
        .await?
        .map(|v| Json(v.info))
        .ok_or(ApiError::NotFound("version"))
}

fn install_error(e: InstallError) -> ApiError {
    match e {
        InstallError::NoPackage(_) => ApiError::invalid("package", e.to_string()),
        InstallError::NotInstalled => ApiError::NotFound("install"),
        InstallError::NoVersion(_) | InstallError::OutsideRange { .. } | InstallError::Load(_) => {
            ApiError::invalid("version", e.to_string())
        }
        InstallError::NotRequested(_) | InstallError::SchoolSecret => {
            ApiError::invalid("grants", e.to_string())
        }
        InstallError::UnknownRegistry(_) | InstallError::Mirror(_) => {
            ApiError::invalid("registry", e.to_string())
        }
        InstallError::NewKey { .. } => ApiError::Conflict(e.to_string()),
        InstallError::Remote(why) => {
            let id = crate::http::report("another registry could not be reached", &why);
            ApiError::Unavailable(format!("{why} (support id {id})"))
        }
        InstallError::BadRange(_) => ApiError::invalid("range", e.to_string()),
        InstallError::Yanked(..)
        | InstallError::Revoked(..)
        | InstallError::Taken(_)
        | InstallError::AlreadyInstalled(_)
        | InstallError::NothingNewer(_)
        | InstallError::NoPrevious => ApiError::Conflict(e.to_string()),
        InstallError::Store(e) => e.into(),
    }
}

/// An install: which package, which version, and what it is granted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstall {
    /// The package's name.
    #[schema(min_length = 1, max_length = 64)]
    package: String,
    /// The version; its latest when left out.
    #[schema(max_length = 64)]
    version: Option<String>,
    /// The semver range it upgrades within (`^1.2`, `~1.2.3`, `=1.2.3`); `^VERSION` when left
    /// out.
    #[schema(max_length = 64)]
    range: Option<String>,
    /// What it is granted, each capability, secret and host on its own; nothing when left
    /// out. Only what the version requests may be granted.
    #[serde(default)]
    grants: Capabilities,
    /// Install from another registry the operator lists (its address); this server's own
    /// when left out.
    #[schema(max_length = 500)]
    registry: Option<String>,
    /// Confirms a new signing key of the publisher at that registry (its fingerprint), when
    /// it is not the one pinned at the first install.
    #[schema(max_length = 64)]
    trust_key: Option<String>,
}

/// A change to an install; what is left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallChange {
    /// The grants from now on (replacing the ones before). While a version waits, granting
    /// decides on its asks — what is left out stays denied — and it is installed.
    grants: Option<Capabilities>,
    /// The semver range upgrades stay within.
    #[schema(max_length = 64)]
    range: Option<String>,
    /// Pinned installs are never upgraded automatically.
    pinned: Option<bool>,
}

/// Which version to upgrade to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeTo {
    /// A version within the install's range; the greatest that installs when left out.
    #[schema(max_length = 64)]
    version: Option<String>,
    /// For a package from another registry: confirms its publisher's new signing key (its
    /// fingerprint), when it is not the one pinned at the first install.
    #[schema(max_length = 64)]
    trust_key: Option<String>,
}

/// How much of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// 1 to 500; 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The school `school` as its admin `user` manages it.
async fn school_scope(s: &MarketplaceState, user: &AuthUser, school: &str) -> ApiResult<Scope> {
    let m =
        crate::lms::schools::member(&s.registry.db, school, &user.id, crate::lms::schools::ADMIN)
            .await?;
    Ok(Scope::School(m.school))
}

async fn list_in(s: &MarketplaceState, scope: Scope) -> ApiResult<Json<Vec<InstallView>>> {
    Ok(Json(s.installs.list(&scope).await.map_err(install_error)?))
}

async fn install_in(
    s: &MarketplaceState,
    scope: Scope,
    actor: &str,
    b: NewInstall,
) -> ApiResult<(StatusCode, Json<InstallView>)> {
    let wanted = Wanted {
        scope,
        package: b.package.trim().to_string(),
        version: b.version.map(|v| v.trim().to_string()),
        range: b.range.map(|r| r.trim().to_string()),
        grants: b.grants,
        registry: b.registry,
        trust_key: b.trust_key,
    };
    let view = s
        .installs
        .install(actor, &wanted)
        .await
        .map_err(install_error)?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn change_in(
    s: &MarketplaceState,
    scope: Scope,
    actor: &str,
    name: &str,
    b: InstallChange,
) -> ApiResult<Json<InstallView>> {
    let change = Change {
        grants: b.grants,
        range: b.range.map(|r| r.trim().to_string()),
        pinned: b.pinned,
    };
    Ok(Json(
        s.installs
            .change(actor, &scope, name, &change)
            .await
            .map_err(install_error)?,
    ))
}

async fn upgrade_in(
    s: &MarketplaceState,
    scope: Scope,
    actor: &str,
    name: &str,
    b: UpgradeTo,
) -> ApiResult<Json<InstallView>> {
    Ok(Json(
        s.installs
            .upgrade(
                actor,
                &scope,
                name,
                b.version.as_deref().map(str::trim),
                b.trust_key.as_deref(),
            )
            .await
            .map_err(install_error)?,
    ))
}

async fn audit_in(
    s: &MarketplaceState,
    scope: Scope,
    p: AuditParams,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "1 to 500"));
    }
    Ok(Json(s.installs.audit_log(&scope, limit as usize).await?))
}

#[utoipa::path(get, path = "/v1/marketplace/installs", tag = "marketplace",
    responses((status = 200, body = Vec<InstallView>, description = "every package installed server-wide from the registry"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn installs(
    State(s): State<MarketplaceState>,
    _: Operator,
) -> ApiResult<Json<Vec<InstallView>>> {
    list_in(&s, Scope::Server).await
}

#[utoipa::path(post, path = "/v1/marketplace/installs", tag = "marketplace", request_body = NewInstall,
    responses((status = 201, body = InstallView, description = "installed for every account and serving; `ungranted` lists what its calls will be denied"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator"),
        (status = 409, description = "installed already, a name this server's own plugins use, a version withdrawn or signed by a revoked key, or (from another registry) a signing key not pinned before"),
        (status = 422, description = "no such package or version, a grant of something not requested, a bad range, a version that does not load here, a registry the operator does not list, or a package from it that does not check out"),
        (status = 503, description = "the other registry could not be reached")),
    security(("bearer" = [])))]
async fn install(
    State(s): State<MarketplaceState>,
    Operator(user): Operator,
    Json(b): Json<NewInstall>,
) -> ApiResult<(StatusCode, Json<InstallView>)> {
    install_in(&s, Scope::Server, &user.id, b).await
}

#[utoipa::path(get, path = "/v1/marketplace/installs/{name}", tag = "marketplace",
    params(("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView), (status = 401, description = "not signed in"),
        (status = 403, description = "not an operator"), (status = 404, description = "not installed")),
    security(("bearer" = [])))]
async fn read_install(
    State(s): State<MarketplaceState>,
    _: Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<InstallView>> {
    Ok(Json(
        s.installs
            .view(&Scope::Server, &name)
            .await
            .map_err(install_error)?,
    ))
}

#[utoipa::path(patch, path = "/v1/marketplace/installs/{name}", tag = "marketplace", request_body = InstallChange,
    params(("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView, description = "changed and applied"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator"),
        (status = 404, description = "not installed"),
        (status = 422, description = "a grant of something not requested, or a bad range")),
    security(("bearer" = [])))]
async fn change_install(
    State(s): State<MarketplaceState>,
    Operator(user): Operator,
    Path(name): Path<String>,
    Json(b): Json<InstallChange>,
) -> ApiResult<Json<InstallView>> {
    change_in(&s, Scope::Server, &user.id, &name, b).await
}

#[utoipa::path(delete, path = "/v1/marketplace/installs/{name}", tag = "marketplace",
    params(("name" = String, Path, max_length = 64)),
    responses((status = 204, description = "uninstalled: new calls no longer reach it; calls in flight finish"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator"),
        (status = 404, description = "not installed")),
    security(("bearer" = [])))]
async fn uninstall(
    State(s): State<MarketplaceState>,
    Operator(user): Operator,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.installs
        .uninstall(&user.id, &Scope::Server, &name)
        .await
        .map_err(install_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/marketplace/installs/{name}/upgrade", tag = "marketplace", request_body = UpgradeTo,
    params(("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView, description = "upgraded; or, when the version asks for more than was granted, `waiting_for_grant` with the installed version still serving"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator"),
        (status = 404, description = "not installed"),
        (status = 409, description = "nothing newer within the range, a version withdrawn or signed by a revoked key, or (from another registry) a signing key not pinned before"),
        (status = 422, description = "no such version, or one outside the range"),
        (status = 503, description = "the registry the package comes from could not be reached")),
    security(("bearer" = [])))]
async fn upgrade(
    State(s): State<MarketplaceState>,
    Operator(user): Operator,
    Path(name): Path<String>,
    Json(b): Json<UpgradeTo>,
) -> ApiResult<Json<InstallView>> {
    upgrade_in(&s, Scope::Server, &user.id, &name, b).await
}

#[utoipa::path(post, path = "/v1/marketplace/installs/{name}/rollback", tag = "marketplace",
    params(("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView, description = "back on the previous version, pinned there"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator"),
        (status = 404, description = "not installed"),
        (status = 409, description = "no previous version, or it was withdrawn or signed by a revoked key since")),
    security(("bearer" = [])))]
async fn rollback(
    State(s): State<MarketplaceState>,
    Operator(user): Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<InstallView>> {
    Ok(Json(
        s.installs
            .rollback(&user.id, &Scope::Server, &name)
            .await
            .map_err(install_error)?,
    ))
}

#[utoipa::path(get, path = "/v1/marketplace/audit", tag = "marketplace", params(AuditParams),
    responses((status = 200, body = Vec<AuditEntry>, description = "who installed, granted, upgraded, rolled back and uninstalled what server-wide, newest first"),
        (status = 400, description = "a malformed limit"), (status = 401, description = "not signed in"),
        (status = 403, description = "not an operator"), (status = 422, description = "a limit out of range")),
    security(("bearer" = [])))]
async fn audit(
    State(s): State<MarketplaceState>,
    _: Operator,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    audit_in(&s, Scope::Server, p).await
}

#[utoipa::path(get, path = "/v1/schools/{school}/installs", tag = "marketplace",
    params(("school" = String, Path, max_length = 64)),
    responses((status = 200, body = Vec<InstallView>, description = "the packages installed for this school only"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member")),
    security(("bearer" = [])))]
async fn school_installs(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<Vec<InstallView>>> {
    let scope = school_scope(&s, &user, &school).await?;
    list_in(&s, scope).await
}

#[utoipa::path(post, path = "/v1/schools/{school}/installs", tag = "marketplace", request_body = NewInstall,
    params(("school" = String, Path, max_length = 64)),
    responses((status = 201, body = InstallView, description = "installed for this school's members only, as `runs_as` (`NAME@SCHOOL`), with a store of its own; `ungranted` lists what its calls will be denied"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member"),
        (status = 409, description = "installed for the school already, or a version withdrawn or signed by a revoked key"),
        (status = 422, description = "no such package or version, a grant of something not requested or of an operator's secret, a bad range, a version that does not load here, or a registry the operator does not list"),
        (status = 503, description = "the other registry could not be reached")),
    security(("bearer" = [])))]
async fn school_install(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path(school): Path<String>,
    Json(b): Json<NewInstall>,
) -> ApiResult<(StatusCode, Json<InstallView>)> {
    let scope = school_scope(&s, &user, &school).await?;
    install_in(&s, scope, &user.id, b).await
}

#[utoipa::path(get, path = "/v1/schools/{school}/installs/{name}", tag = "marketplace",
    params(("school" = String, Path, max_length = 64), ("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView), (status = 401, description = "not signed in"),
        (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, not a member, or not installed for it")),
    security(("bearer" = [])))]
async fn read_school_install(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((school, name)): Path<(String, String)>,
) -> ApiResult<Json<InstallView>> {
    let scope = school_scope(&s, &user, &school).await?;
    Ok(Json(
        s.installs
            .view(&scope, &name)
            .await
            .map_err(install_error)?,
    ))
}

#[utoipa::path(patch, path = "/v1/schools/{school}/installs/{name}", tag = "marketplace", request_body = InstallChange,
    params(("school" = String, Path, max_length = 64), ("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView, description = "changed and applied"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, not a member, or not installed for it"),
        (status = 422, description = "a grant of something not requested or of an operator's secret, or a bad range")),
    security(("bearer" = [])))]
async fn change_school_install(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((school, name)): Path<(String, String)>,
    Json(b): Json<InstallChange>,
) -> ApiResult<Json<InstallView>> {
    let scope = school_scope(&s, &user, &school).await?;
    change_in(&s, scope, &user.id, &name, b).await
}

#[utoipa::path(delete, path = "/v1/schools/{school}/installs/{name}", tag = "marketplace",
    params(("school" = String, Path, max_length = 64), ("name" = String, Path, max_length = 64)),
    responses((status = 204, description = "uninstalled for the school; calls in flight finish"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, not a member, or not installed for it")),
    security(("bearer" = [])))]
async fn uninstall_school(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((school, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = school_scope(&s, &user, &school).await?;
    s.installs
        .uninstall(&user.id, &scope, &name)
        .await
        .map_err(install_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/schools/{school}/installs/{name}/upgrade", tag = "marketplace", request_body = UpgradeTo,
    params(("school" = String, Path, max_length = 64), ("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView, description = "upgraded; or `waiting_for_grant` with the installed version still serving"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, not a member, or not installed for it"),
        (status = 409, description = "nothing newer within the range, a version withdrawn or signed by a revoked key, or a signing key not pinned before"),
        (status = 422, description = "no such version, or one outside the range"),
        (status = 503, description = "the registry the package comes from could not be reached")),
    security(("bearer" = [])))]
async fn upgrade_school(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((school, name)): Path<(String, String)>,
    Json(b): Json<UpgradeTo>,
) -> ApiResult<Json<InstallView>> {
    let scope = school_scope(&s, &user, &school).await?;
    upgrade_in(&s, scope, &user.id, &name, b).await
}

#[utoipa::path(post, path = "/v1/schools/{school}/installs/{name}/rollback", tag = "marketplace",
    params(("school" = String, Path, max_length = 64), ("name" = String, Path, max_length = 64)),
    responses((status = 200, body = InstallView, description = "back on the previous version, pinned there"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, not a member, or not installed for it"),
        (status = 409, description = "no previous version, or it was withdrawn or signed by a revoked key since")),
    security(("bearer" = [])))]
async fn rollback_school(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((school, name)): Path<(String, String)>,
) -> ApiResult<Json<InstallView>> {
    let scope = school_scope(&s, &user, &school).await?;
    Ok(Json(
        s.installs
            .rollback(&user.id, &scope, &name)
            .await
            .map_err(install_error)?,
    ))
}

#[utoipa::path(get, path = "/v1/schools/{school}/installs-audit", tag = "marketplace",
    params(("school" = String, Path, max_length = 64), AuditParams),
    responses((status = 200, body = Vec<AuditEntry>, description = "who installed, granted, upgraded, rolled back and uninstalled what for this school, newest first"),
        (status = 400, description = "a malformed limit"), (status = 401, description = "not signed in"),
        (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member"),
        (status = 422, description = "a limit out of range")),
    security(("bearer" = [])))]
async fn school_audit(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path(school): Path<String>,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let scope = school_scope(&s, &user, &school).await?;
    audit_in(&s, scope, p).await
}

/// A publish token to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A note to tell tokens apart ("GitHub Actions").
    #[schema(min_length = 1, max_length = 80)]
    label: String,
}

#[utoipa::path(get, path = "/v1/publishers/{publisher}/tokens", tag = "marketplace",
    params(("publisher" = String, Path, max_length = 39)),
    responses((status = 200, body = Vec<TokenView>, description = "the publisher's publish tokens (never the tokens themselves)"),
        (status = 401, description = "not signed in"), (status = 403, description = "another account's publisher"),
        (status = 404, description = "no such publisher")),
    security(("bearer" = [])))]
async fn list_tokens(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<Vec<TokenView>>> {
    let p = own(&s, &user, &slug).await?;
    Ok(Json(publishers::tokens(&s.registry.db, &p.slug).await?))
}

#[utoipa::path(post, path = "/v1/publishers/{publisher}/tokens", tag = "marketplace", request_body = NewToken,
    params(("publisher" = String, Path, max_length = 39)),
    responses((status = 201, body = TokenView, description = "made: `token` is shown this once; it publishes as this publisher and does nothing else"),
        (status = 401, description = "not signed in"), (status = 403, description = "another account's publisher"),
        (status = 404, description = "no such publisher"),
        (status = 409, description = "the publisher holds the most tokens it may"),
        (status = 422, description = "a blank or overlong label")),
    security(("bearer" = [])))]
async fn make_token(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path(slug): Path<String>,
    Json(b): Json<NewToken>,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    let p = own(&s, &user, &slug).await?;
    let label = field("label", &b.label, 80)?;
    let view = publishers::add_token(&s.registry.db, &p.slug, &label)
        .await
        .map_err(publisher_error)?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/v1/publishers/{publisher}/tokens/{id}", tag = "marketplace",
    params(("publisher" = String, Path, max_length = 39), ("id" = String, Path, max_length = 64)),
    responses((status = 204, description = "revoked: it publishes nothing from now on"),
        (status = 401, description = "not signed in"), (status = 403, description = "another account's publisher"),
        (status = 404, description = "no such publisher, or no such token of it")),
    security(("bearer" = [])))]
async fn revoke_token(
    State(s): State<MarketplaceState>,
    user: AuthUser,
    Path((slug, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let p = own(&s, &user, &slug).await?;
    publishers::revoke_token(&s.registry.db, &p.slug, &id)
        .await
        .map_err(publisher_error)?;
    Ok(StatusCode::NO_CONTENT)
}
