//! The LMS platforms a school registered: who they are (issuer, client id, deployments), where
//! their endpoints are, and which LMS plugin reads their quirks. A platform belongs to one
//! school; an (issuer, client id) pair to one platform.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::store::{Db, StoreResult, new_id, now_ms};

/// A registered platform.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Platform {
    /// Its id.
    pub id: String,
    /// The school it belongs to.
    pub school: String,
    /// A name for people, such as `Moodle (lycee-hugo.fr)`.
    pub name: String,
    /// The LMS plugin that reads it (`moodle`, `canvas`, `blackboard`).
    pub plugin: String,
    /// Its issuer (`iss`).
    pub issuer: String,
    /// Penpal's client id there.
    pub client_id: String,
    /// The deployments of penpal it launches from.
    pub deployment_ids: Vec<String>,
    /// Its OIDC authorization endpoint.
    pub auth_url: String,
    /// Its OAuth 2 token endpoint.
    pub token_url: String,
    /// Its key set.
    pub jwks_url: String,
    /// Registered (ms).
    pub created_at: i64,
}

/// A platform's fields, checked by the caller.
#[derive(Debug, Clone)]
pub struct NewPlatform {
    /// Name.
    pub name: String,
    /// Plugin.
    pub plugin: String,
    /// Issuer.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Deployment ids.
    pub deployment_ids: Vec<String>,
    /// Authorization endpoint.
    pub auth_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Key set.
    pub jwks_url: String,
}

/// Registers `p` for `school`; its id (a conflict when the issuer and client id are taken).
pub async fn create(db: &Db, school: &str, p: &NewPlatform) -> StoreResult<String> {
    let id = new_id();
    db.exec(
        "CREATE type::record('lti_platform', $id) CONTENT { school: $school, name: $p.name, plugin: $p.plugin,
             issuer: $p.issuer, client_id: $p.client_id, deployment_ids: $p.deployment_ids, auth_url: $p.auth_url,
             token_url: $p.token_url, jwks_url: $p.jwks_url, created_at: $now }",
        json!({"id": id, "school": school, "now": now_ms(), "p": {
            "name": p.name, "plugin": p.plugin, "issuer": p.issuer, "client_id": p.client_id,
            "deployment_ids": p.deployment_ids, "auth_url": p.auth_url, "token_url": p.token_url,
            "jwks_url": p.jwks_url}}),
    )
    .await?;
    Ok(id)
}

/// Platform `id`, if there is one.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<Platform>> {
    db.one(
        "SELECT *, record::id(id) AS id FROM type::record('lti_platform', $id)",
        json!({"id": id}),
    )
    .await
}

/// The platforms of `school`.
pub async fn of_school(db: &Db, school: &str) -> StoreResult<Vec<Platform>> {
    db.rows(
        "SELECT *, record::id(id) AS id FROM lti_platform WHERE school = $s ORDER BY created_at",
        json!({"s": school}),
    )
    .await
}

/// The platform `issuer` launches as, found by `client_id` or, when the login gave none, the
/// only one registered for `issuer`.
pub async fn find(db: &Db, issuer: &str, client_id: Option<&str>) -> StoreResult<Option<Platform>> {
    let found: Vec<Platform> = db
        .rows(
            "SELECT *, record::id(id) AS id FROM lti_platform WHERE issuer = $iss AND ($cid = NONE OR client_id = $cid) LIMIT 2",
            json!({"iss": issuer, "cid": client_id}),
        )
        .await?;
    Ok(match found.len() {
        1 => found.into_iter().next(),
        _ => None,
    })
}

/// Removes platform `id` (launches from it stop; accounts and classes it made stay).
pub async fn remove(db: &Db, id: &str) -> StoreResult<()> {
    db.exec(
        "DELETE type::record('lti_platform', $id)",
        json!({"id": id}),
    )
    .await
}

/// Renames platform `id` and/or replaces its deployments.
pub async fn update(
    db: &Db,
    id: &str,
    name: Option<&str>,
    deployment_ids: Option<&[String]>,
) -> StoreResult<()> {
    db.exec(
        "UPDATE type::record('lti_platform', $id) SET name = $name ?? name, deployment_ids = $d ?? deployment_ids",
        json!({"id": id, "name": name, "d": deployment_ids}),
    )
    .await
}
