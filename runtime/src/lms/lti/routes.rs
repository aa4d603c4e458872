//! LTI's HTTP face: the tool's key set, the login initiation and launch endpoints platforms
//! call, school admins' platform registrations, and the operator's key rotation.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRef, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::ToolKeys;
use super::launch::{LoginParams, Lti, Refusal};
use super::outbound::Outbound;
use super::platforms::{self, NewPlatform, Platform};
use crate::auth::{AuthUser, Gate, Keys, Operator};
use crate::http::{ApiError, ApiResult, Json, Path};
use crate::lms::schools::{self, ADMIN};
use crate::store::{Db, StoreError};

/// What the LTI handlers use.
#[derive(Clone)]
pub struct LtiState {
    /// The database.
    pub db: Db,
    /// Token keys, to know who is signed in.
    pub keys: Arc<Keys>,
    /// The tool's signing keys.
    pub tool_keys: Arc<ToolKeys>,
    /// Launches.
    pub lti: Lti,
    /// Requests to platforms (to check registered URLs, read rosters).
    pub outbound: Outbound,
    /// Access tokens from platforms.
    pub tokens: Arc<super::services::Tokens>,
}

impl FromRef<LtiState> for Gate {
    fn from_ref(s: &LtiState) -> Gate {
        Gate {
            db: s.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// The LTI routes.
pub fn router(state: LtiState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(login_get, login_post))
        .routes(routes!(launch))
        .routes(routes!(register_platform, list_platforms))
        .routes(routes!(remove_platform))
        .routes(routes!(rotate_keys))
        .routes(routes!(sync_roster))
        .with_state(state)
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::UnknownPlatform(_) | Refusal::Target | Refusal::Missing(_) => {
            ApiError::BadRequest(r.to_string())
        }
        Refusal::Unreachable(why) => {
            let id = crate::http::report("an LTI launch could not be checked", &why);
            ApiError::Unavailable(format!(
                "the LMS platform could not be reached: try again (support id {id})"
            ))
        }
        Refusal::Refused(why) => ApiError::Conflict(why),
        other => ApiError::Unauthorized {
            code: "launch_refused",
            message: other.to_string(),
        },
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "lti",
    responses((status = 200, description = "the tool's public keys (RS256): the signing key and those retired within the overlap")))]
async fn jwks(State(s): State<LtiState>) -> ApiResult<Json<Value>> {
    Ok(Json(s.tool_keys.jwks().await?))
}

async fn login(s: &LtiState, p: LoginParams) -> ApiResult<Response> {
    let to = s.lti.login(&p).await.map_err(refusal)?;
    let mut resp = StatusCode::FOUND.into_response();
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&to).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(no_store(resp))
}

#[utoipa::path(get, path = "/lti/login", tag = "lti", params(LoginParams),
    responses((status = 302, description = "to the platform's authorization endpoint, with a fresh state and nonce"),
        (status = 400, description = "a parameter is missing, the platform is not registered, or the target is not a penpal page"),
        (status = 503, description = "the database could not be reached")))]
async fn login_get(State(s): State<LtiState>, Query(p): Query<LoginParams>) -> ApiResult<Response> {
    login(&s, p).await
}

#[utoipa::path(post, path = "/lti/login", tag = "lti",
    request_body(content = LoginParams, content_type = "application/x-www-form-urlencoded"),
    responses((status = 302, description = "to the platform's authorization endpoint, with a fresh state and nonce"),
        (status = 400, description = "a parameter is missing, the platform is not registered, or the target is not a penpal page"),
        (status = 503, description = "the database could not be reached")))]
async fn login_post(
    State(s): State<LtiState>,
    form: Result<Form<LoginParams>, FormRejection>,
) -> ApiResult<Response> {
    let Form(p) = form.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    login(&s, p).await
}

/// The platform's form post ending a login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LaunchForm {
    /// The signed launch.
    id_token: Option<String>,
    /// The state penpal sent with the login.
    state: Option<String>,
    /// Set when the platform refused the login.
    error: Option<String>,
}

#[utoipa::path(post, path = "/lti/launch", tag = "lti",
    request_body(content = LaunchForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "verified and provisioned: to `/lti?code=…&next=…`, where the page exchanges the one-time code for a session"),
        (status = 400, description = "no id token or state, or the platform reported an error"),
        (status = 401, description = "`launch_refused`: the state, signature or a claim did not check out (nothing was stored)"),
        (status = 409, description = "the school has no free seat for a new learner"),
        (status = 503, description = "the platform's keys could not be fetched")))]
async fn launch(
    State(s): State<LtiState>,
    form: Result<Form<LaunchForm>, FormRejection>,
) -> ApiResult<Response> {
    let Form(f) = form.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if let Some(e) = f.error {
        return Err(ApiError::BadRequest(format!(
            "the platform refused the login: {}",
            e.chars().take(200).collect::<String>()
        )));
    }
    let (Some(token), Some(state)) = (f.id_token, f.state) else {
        return Err(ApiError::BadRequest(
            "the launch needs `id_token` and `state`".into(),
        ));
    };
    let verified = s.lti.verify(&token, &state).await.map_err(|r| {
        metrics::counter!("penpal_lti_launches_refused_total").increment(1);
        tracing::info!(why = %r, "LTI launch refused");
        refusal(r)
    })?;
    let arrival = s.lti.arrive(&verified).await.map_err(refusal)?;
    let code = crate::auth::handoff::issue_code(&s.db, &arrival.user).await?;
    let next = if arrival.deep_linking {
        format!("/classes/{}/pick", arrival.class)
    } else if let Some(a) = &arrival.assignment {
        format!("/assignments/{a}")
    } else {
        format!("/classes/{}", arrival.class)
    };
    let to = format!(
        "/lti?{}",
        super::services::form(&[("code", &code), ("next", &next)])
    );
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&to).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(no_store(resp))
}

/// A platform to register (what its LTI 1.3 tool registration page shows).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformBody {
    /// A name for people: not blank.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    name: String,
    /// The LMS plugin that reads it: `moodle`, `canvas`, `blackboard` (see `GET /v1/plugins`).
    #[schema(min_length = 1, max_length = 64)]
    plugin: String,
    /// Its issuer (`iss`), such as `https://canvas.instructure.com`.
    #[schema(min_length = 1, max_length = 500)]
    issuer: String,
    /// Penpal's client id there.
    #[schema(min_length = 1, max_length = 200)]
    client_id: String,
    /// The deployment ids penpal is launched from (one to twenty).
    #[schema(min_items = 1, max_items = 20)]
    deployment_ids: Vec<String>,
    /// Its OIDC authorization endpoint (HTTPS).
    #[schema(min_length = 1, max_length = 500)]
    auth_url: String,
    /// Its OAuth 2 token endpoint (HTTPS).
    #[schema(min_length = 1, max_length = 500)]
    token_url: String,
    /// Its JWKS URL (HTTPS).
    #[schema(min_length = 1, max_length = 500)]
    jwks_url: String,
}

/// What a platform needs to know of penpal, to paste into its registration page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolConfig {
    /// OpenID Connect login initiation URL.
    pub login_url: String,
    /// Target link URI and redirection URI.
    pub launch_url: String,
    /// Public keyset URL.
    pub jwks_url: String,
}

/// The school's platforms and penpal's own endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct Platforms {
    /// The registered platforms.
    pub platforms: Vec<Platform>,
    /// penpal's endpoints.
    pub tool: ToolConfig,
}

impl LtiState {
    fn tool(&self) -> ToolConfig {
        let base = &self.lti.public_url;
        ToolConfig {
            login_url: format!("{base}/lti/login"),
            launch_url: format!("{base}/lti/launch"),
            jwks_url: format!("{base}/.well-known/jwks.json"),
        }
    }
}

#[utoipa::path(post, path = "/v1/schools/{school}/lti/platforms", tag = "lti", request_body = PlatformBody,
    responses((status = 201, body = Platform), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member"),
        (status = 409, description = "this issuer and client id are registered already"),
        (status = 422, description = "a blank field, an LMS plugin that is not installed, or an endpoint that is not a public HTTPS URL")),
    security(("bearer" = [])))]
async fn register_platform(
    State(s): State<LtiState>,
    user: AuthUser,
    Path(school): Path<String>,
    Json(b): Json<PlatformBody>,
) -> ApiResult<(StatusCode, Json<Platform>)> {
    let m = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    let field = |name: &'static str, v: &str, max: usize| -> ApiResult<String> {
        let v = v.trim();
        if v.is_empty() || v.chars().count() > max {
            return Err(ApiError::invalid(
                name,
                format!("give 1 to {max} characters"),
            ));
        }
        Ok(v.to_string())
    };
    let name = field("name", &b.name, 120)?;
    let plugin = field("plugin", &b.plugin, 64)?;
    if s.lti.lms.platform(&plugin).await.is_err() {
        return Err(ApiError::invalid(
            "plugin",
            format!(
                "no LMS plugin `{plugin}` is installed (moodle, canvas and blackboard come with penpal)"
            ),
        ));
    }
    let issuer = field("issuer", &b.issuer, 500)?;
    let client_id = field("client_id", &b.client_id, 200)?;
    let mut deployment_ids = Vec::new();
    for d in &b.deployment_ids {
        deployment_ids.push(field("deployment_ids", d, 200)?);
    }
    if deployment_ids.is_empty() || deployment_ids.len() > 20 {
        return Err(ApiError::invalid(
            "deployment_ids",
            "give one to twenty deployment ids",
        ));
    }
    let mut urls = Vec::new();
    for (name, v) in [
        ("auth_url", &b.auth_url),
        ("token_url", &b.token_url),
        ("jwks_url", &b.jwks_url),
    ] {
        let v = field(name, v, 500)?;
        if let Some(why) = s.outbound.refuses(&v) {
            return Err(ApiError::invalid(name, why));
        }
        urls.push(v);
    }
    let [auth_url, token_url, jwks_url] = <[String; 3]>::try_from(urls)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("three URLs")))?;
    let new = NewPlatform {
        name,
        plugin,
        issuer,
        client_id,
        deployment_ids,
        auth_url,
        token_url,
        jwks_url,
    };
    let id = match platforms::create(&s.db, &m.school, &new).await {
        Ok(id) => id,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "a platform with this issuer and client id is registered already".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(school = %m.school, platform = %id, by = %user.id, "LTI platform registered");
    let p = platforms::get(&s.db, &id)
        .await?
        .ok_or(ApiError::NotFound("platform"))?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/v1/schools/{school}/lti/platforms", tag = "lti",
    responses((status = 200, body = Platforms), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member")),
    security(("bearer" = [])))]
async fn list_platforms(
    State(s): State<LtiState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<Platforms>> {
    let m = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    Ok(Json(Platforms {
        platforms: platforms::of_school(&s.db, &m.school).await?,
        tool: s.tool(),
    }))
}

#[utoipa::path(delete, path = "/v1/schools/{school}/lti/platforms/{platform}", tag = "lti",
    responses((status = 204, description = "launches from it stop; the accounts and classes it made stay"),
        (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school or platform, or not a member")),
    security(("bearer" = [])))]
async fn remove_platform(
    State(s): State<LtiState>,
    user: AuthUser,
    Path((school, platform)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let m = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    let p = platforms::get(&s.db, &platform)
        .await?
        .filter(|p| p.school == m.school)
        .ok_or(ApiError::NotFound("platform"))?;
    platforms::remove(&s.db, &p.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The new signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// Its key id; the previous key stays published for seven days.
    pub kid: String,
}

#[utoipa::path(post, path = "/v1/admin/lti/keys/rotate", tag = "admin",
    responses((status = 200, body = Rotated), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn rotate_keys(State(s): State<LtiState>, op: Operator) -> ApiResult<Json<Rotated>> {
    let kid = s.tool_keys.rotate().await?;
    tracing::info!(kid = %kid, by = %op.0.id, "LTI tool key rotated");
    Ok(Json(Rotated { kid }))
}

#[utoipa::path(post, path = "/v1/classes/{class}/roster/sync", tag = "lti",
    responses((status = 200, body = super::services::Synced, description = "the course's members are in the class; inactive ones left it"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it"),
        (status = 409, description = "the class did not come from an LMS course with a roster service"),
        (status = 503, description = "the LMS could not be read")),
    security(("bearer" = [])))]
async fn sync_roster(
    State(s): State<LtiState>,
    user: AuthUser,
    Path(class): Path<String>,
) -> ApiResult<Json<super::services::Synced>> {
    use super::services::SyncError;
    let access = crate::lms::classes::access(&s.db, &class, &user.id)
        .await?
        .teacher()?;
    let synced = super::services::sync(
        &s.db,
        &s.tokens,
        &s.outbound,
        &s.lti.lms,
        &access.class.id,
        &access.class.school,
    )
    .await
    .map_err(|e| match e {
        SyncError::NotLinked => ApiError::Conflict(e.to_string()),
        SyncError::Platform(why) => {
            let id = crate::http::report("a roster sync failed", &why);
            ApiError::Unavailable(format!(
                "the LMS could not be read: try again later (support id {id})"
            ))
        }
        SyncError::Store(e) => e.into(),
    })?;
    tracing::info!(class = %access.class.id, by = %user.id, read = synced.read, added = synced.added, "roster synced");
    Ok(Json(synced))
}
