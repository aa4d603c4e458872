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
        .routes(routes!(remove_platform, update_platform))
        .routes(routes!(new_registration))
        .routes(routes!(register))
        .routes(routes!(get_pick, answer_pick))
        .routes(routes!(post_answer))
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
    let frame = frame_origin(&verified);
    let code = crate::auth::handoff::issue_code(&s.db, &arrival.user, frame.as_deref()).await?;
    let next = if let Some(pick) = &arrival.pick {
        format!("/classes/{}/pick?link={pick}", arrival.class)
    } else if let Some(a) = arrival
        .assignment
        .as_ref()
        .filter(|_| arrival.role == crate::lms::classes::ClassRole::Learner)
    {
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

/// The origin (`scheme://host[:port]`) of an `http(s)` `url`, for a policy's source list.
fn origin(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .map(|u| u.origin().ascii_serialization())
}

/// The origin of the LMS page a launch came from, which may frame penpal: where its
/// `launch_presentation` returns (the course's site — Canvas authorizes on another host),
/// else its authorization endpoint's.
fn frame_origin(v: &super::launch::Verified) -> Option<String> {
    let presented = v
        .claims
        .get("https://purl.imsglobal.org/spec/lti/claim/launch_presentation")
        .and_then(|p| p.get("return_url"))
        .and_then(Value::as_str);
    presented
        .into_iter()
        .chain(std::iter::once(v.platform.auth_url.as_str()))
        .find_map(origin)
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

/// `v` trimmed, when it has 1 to `max` characters.
pub(crate) fn field(name: &'static str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ApiError::invalid(
            name,
            format!("give 1 to {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// `name` trimmed, when an LMS plugin of that name is installed.
async fn installed_plugin(s: &LtiState, name: &str) -> ApiResult<String> {
    let plugin = field("plugin", name, 64)?;
    if s.lti.lms.platform(&plugin).await.is_err() {
        return Err(ApiError::invalid(
            "plugin",
            format!(
                "no LMS plugin `{plugin}` is installed (moodle, canvas and blackboard come with penpal)"
            ),
        ));
    }
    Ok(plugin)
}

/// One to twenty deployment ids, each 1 to 200 characters.
fn deployments(ids: &[String]) -> ApiResult<Vec<String>> {
    if ids.is_empty() || ids.len() > 20 {
        return Err(ApiError::invalid(
            "deployment_ids",
            "give one to twenty deployment ids",
        ));
    }
    ids.iter()
        .map(|d| field("deployment_ids", d, 200))
        .collect()
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
    let name = field("name", &b.name, 120)?;
    let plugin = installed_plugin(&s, &b.plugin).await?;
    let issuer = field("issuer", &b.issuer, 500)?;
    let client_id = field("client_id", &b.client_id, 200)?;
    let deployment_ids = deployments(&b.deployment_ids)?;
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

/// Changes to a platform.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformPatch {
    /// A new name: not blank.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    name: Option<String>,
    /// The deployments penpal is launched from, replacing the list (one to twenty) — such as
    /// one the LMS made after a dynamic registration.
    #[schema(min_items = 1, max_items = 20)]
    deployment_ids: Option<Vec<String>>,
}

#[utoipa::path(patch, path = "/v1/schools/{school}/lti/platforms/{platform}", tag = "lti", request_body = PlatformPatch,
    responses((status = 200, body = Platform), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school or platform, or not a member"),
        (status = 422, description = "a blank name, or not one to twenty deployment ids")),
    security(("bearer" = [])))]
async fn update_platform(
    State(s): State<LtiState>,
    user: AuthUser,
    Path((school, platform)): Path<(String, String)>,
    Json(b): Json<PlatformPatch>,
) -> ApiResult<Json<Platform>> {
    let m = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    let p = platforms::get(&s.db, &platform)
        .await?
        .filter(|p| p.school == m.school)
        .ok_or(ApiError::NotFound("platform"))?;
    let name = b
        .name
        .as_deref()
        .map(|n| field("name", n, 120))
        .transpose()?;
    let ids = b.deployment_ids.as_deref().map(deployments).transpose()?;
    platforms::update(&s.db, &p.id, name.as_deref(), ids.as_deref()).await?;
    tracing::info!(school = %m.school, platform = %p.id, by = %user.id, "LTI platform changed");
    Ok(Json(
        platforms::get(&s.db, &p.id)
            .await?
            .ok_or(ApiError::NotFound("platform"))?,
    ))
}

/// A dynamic registration link to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    /// The LMS plugin to use; by default the one matching the platform's product family.
    #[schema(min_length = 1, max_length = 64)]
    plugin: Option<String>,
}

/// A link to paste into the LMS's LTI Dynamic Registration field.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationLink {
    /// The link: single use.
    pub url: String,
    /// When it stops working (ms since the epoch; seven days).
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/v1/schools/{school}/lti/registrations", tag = "lti", request_body = RegistrationBody,
    responses((status = 201, body = RegistrationLink, description = "paste the link into the LMS (Moodle: Site administration → Plugins → External tool → Manage tools, \"Tool URL\"; Canvas: Developer Keys → LTI Registration)"),
        (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member"),
        (status = 422, description = "an LMS plugin that is not installed")),
    security(("bearer" = [])))]
async fn new_registration(
    State(s): State<LtiState>,
    user: AuthUser,
    Path(school): Path<String>,
    Json(b): Json<RegistrationBody>,
) -> ApiResult<(StatusCode, Json<RegistrationLink>)> {
    let m = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    let plugin = match &b.plugin {
        Some(p) => Some(installed_plugin(&s, p).await?),
        None => None,
    };
    let (token, expires_at) =
        super::registration::new_link(&s.db, &m.school, &user.id, plugin.as_deref()).await?;
    tracing::info!(school = %m.school, by = %user.id, "LTI registration link made");
    Ok((
        StatusCode::CREATED,
        Json(RegistrationLink {
            url: format!("{}/lti/register/{token}", s.lti.public_url),
            expires_at,
        }),
    ))
}

/// What the LMS adds to a registration link it opens.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegisterParams {
    /// The platform's OpenID configuration URL.
    openid_configuration: Option<String>,
    /// The token its registration endpoint takes.
    registration_token: Option<String>,
}

#[utoipa::path(get, path = "/lti/register/{token}", tag = "lti", params(RegisterParams),
    responses((status = 200, content_type = "text/html", description = "registered: the platform is stored for the link's school; the page's Done button tells the LMS to close it (`org.imsglobal.lti.close`)"),
        (status = 400, content_type = "text/html", description = "the LMS gave no configuration, or its configuration is unusable"),
        (status = 404, content_type = "text/html", description = "the link is unknown, used or expired"),
        (status = 409, content_type = "text/html", description = "this platform is registered already"),
        (status = 502, content_type = "text/html", description = "the LMS refused the registration"),
        (status = 503, content_type = "text/html", description = "the LMS or the database could not be reached")))]
async fn register(
    State(s): State<LtiState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(q): Query<RegisterParams>,
) -> Response {
    use super::registration::{RegError, Registrar};
    let frame = q.openid_configuration.as_deref().and_then(origin);
    let registrar = Registrar {
        db: &s.db,
        outbound: &s.outbound,
        lms: &s.lti.lms,
        public_url: &s.lti.public_url,
    };
    let done = registrar
        .register(
            &token,
            q.openid_configuration.as_deref(),
            q.registration_token.as_deref(),
        )
        .await;
    match done {
        Ok(p) => {
            tracing::info!(school = %p.school, platform = %p.id, issuer = %p.issuer, "LTI platform registered dynamically");
            let next = if p.deployment_ids.is_empty() {
                " Before the first launch, add the deployment id the LMS shows to this platform in Penpal (school settings, LMS platforms)."
            } else {
                " Teachers can now add Penpal to their courses."
            };
            registration_page(
                StatusCode::OK,
                "Penpal is registered",
                &format!("{} is connected to Penpal.{next}", p.name),
                frame.as_deref(),
            )
        }
        Err(e) => {
            let status = match &e {
                RegError::Link => StatusCode::NOT_FOUND,
                RegError::NoConfiguration | RegError::Config(_) | RegError::Plugin(_) => {
                    StatusCode::BAD_REQUEST
                }
                RegError::Taken => StatusCode::CONFLICT,
                RegError::Refused(_) => StatusCode::BAD_GATEWAY,
                RegError::Unreachable(_) | RegError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            let message = match &e {
                RegError::Store(err) => {
                    let id = crate::http::report("a dynamic registration failed", err);
                    format!("Penpal could not store the registration: try again (support id {id})")
                }
                other => {
                    tracing::info!(why = %other, "LTI dynamic registration refused");
                    other.to_string()
                }
            };
            registration_page(
                status,
                "Penpal could not be registered",
                &message,
                frame.as_deref(),
            )
        }
    }
}

/// The script of the registration page's button: the LMS closes its registration window.
const CLOSE_SCRIPT: &str = "document.getElementById('done').addEventListener('click', function () { \
(window.opener || window.parent).postMessage({ subject: 'org.imsglobal.lti.close' }, '*'); });";

/// The script of the page taking a deep-linking answer back: it posts the form at once.
const POST_SCRIPT: &str = "document.forms[0].submit();";

/// The page the LMS shows at the end of a registration (in its frame or window, which
/// `frame` — the LMS's origin — may embed).
fn registration_page(
    status: StatusCode,
    title: &str,
    message: &str,
    frame: Option<&str>,
) -> Response {
    use crate::notify::templates::escape;
    lms_page(
        status,
        title,
        &format!(
            "<p>{}</p><button id=\"done\" type=\"button\">Done</button>",
            escape(message)
        ),
        CLOSE_SCRIPT,
        frame,
        None,
    )
}

/// A page penpal renders for an LMS's frame or window: `body` (markup the caller escaped),
/// its one script allowed by hash, framed by `frame` and posting forms only to `posts_to`.
fn lms_page(
    status: StatusCode,
    title: &str,
    body: &str,
    script: &str,
    frame: Option<&str>,
    posts_to: Option<&str>,
) -> Response {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'sha256-{hash}'; base-uri 'none'; \
         form-action {}; frame-ancestors {}",
        posts_to.unwrap_or("'none'"),
        frame.unwrap_or("'none'")
    );
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main class=\"page narrow\">\
         <h1>{t}</h1>{body}</main><script>{script}</script></body></html>",
        t = crate::notify::templates::escape(title),
    );
    let mut resp = (status, axum::response::Html(html)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    // The LMS may open this page as a popup and needs `window.opener` back.
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("unsafe-none"),
    );
    no_store(resp)
}

#[utoipa::path(get, path = "/lti/return/{token}", tag = "lti",
    responses((status = 200, content_type = "text/html", description = "a form posting the signed deep-linking answer (`JWT`) to the LMS, sent at once"),
        (status = 404, content_type = "text/html", description = "unknown, used or expired (two minutes)")))]
async fn post_answer(
    State(s): State<LtiState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    use crate::notify::templates::escape;
    let taken = match super::deep_link::take_answer(&s.db, &token).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some((return_url, jwt)) = taken else {
        return lms_page(
            StatusCode::NOT_FOUND,
            "Nothing to send",
            "<p>This answer was sent already or has expired: choose the assignments again from your course.</p>",
            "",
            None,
            None,
        );
    };
    let lms = origin(&return_url);
    lms_page(
        StatusCode::OK,
        "Back to your course",
        &format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"JWT\" value=\"{}\">\
             <button type=\"submit\">Continue</button></form>",
            escape(&return_url),
            escape(&jwt)
        ),
        POST_SCRIPT,
        lms.as_deref(),
        lms.as_deref(),
    )
}

#[utoipa::path(get, path = "/v1/lti/picks/{pick}", tag = "lti",
    responses((status = 200, body = super::deep_link::Pick, description = "a pick the caller came to make from their LMS: the class whose assignments can be placed"),
        (status = 404, description = "no such pick, not the caller's, used or expired (an hour)")),
    security(("bearer" = [])))]
async fn get_pick(
    State(s): State<LtiState>,
    user: AuthUser,
    Path(pick): Path<String>,
) -> ApiResult<Json<super::deep_link::Pick>> {
    Ok(Json(
        super::deep_link::get(&s.db, &pick, &user.id)
            .await?
            .ok_or(ApiError::NotFound("pick"))?,
    ))
}

/// The assignments to place in the course.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PickBody {
    /// Assignments of the pick's class, in the order the course lists them: none (to cancel)
    /// to twenty, and at most one when the LMS accepts one.
    #[schema(max_items = 20)]
    assignments: Vec<String>,
}

#[utoipa::path(post, path = "/v1/lti/picks/{pick}", tag = "lti", request_body = PickBody,
    responses((status = 200, body = super::deep_link::Response, description = "post `jwt` as the form field `JWT` to `return_url` from the browser; the pick is spent"),
        (status = 404, description = "no such pick, not the caller's, used or expired"),
        (status = 422, description = "an assignment not of the pick's class, too many, or several where the LMS takes one"),
        (status = 503, description = "the platform was removed or the response could not be signed")),
    security(("bearer" = [])))]
async fn answer_pick(
    State(s): State<LtiState>,
    user: AuthUser,
    Path(pick): Path<String>,
    Json(b): Json<PickBody>,
) -> ApiResult<Json<super::deep_link::Response>> {
    use super::deep_link::{self, MAX_ITEMS};
    let p = deep_link::get(&s.db, &pick, &user.id)
        .await?
        .ok_or(ApiError::NotFound("pick"))?;
    if b.assignments.len() > MAX_ITEMS {
        return Err(ApiError::invalid(
            "assignments",
            format!("place at most {MAX_ITEMS} assignments at once"),
        ));
    }
    if b.assignments.len() > 1 && !p.accept_multiple {
        return Err(ApiError::invalid(
            "assignments",
            "this LMS places one assignment at a time",
        ));
    }
    let mut chosen = Vec::with_capacity(b.assignments.len());
    for id in &b.assignments {
        let a = crate::lms::assignments::get(&s.db, id)
            .await?
            .filter(|a| a.class == p.class)
            .ok_or_else(|| {
                ApiError::invalid(
                    "assignments",
                    format!("`{id}` is not an assignment of this class"),
                )
            })?;
        if chosen
            .iter()
            .any(|c: &crate::lms::assignments::Assignment| c.id == a.id)
        {
            return Err(ApiError::invalid(
                "assignments",
                format!("`{id}` is there twice"),
            ));
        }
        chosen.push(a);
    }
    let answer = deep_link::respond(
        &s.db,
        &s.tool_keys,
        &s.lti.lms,
        &s.lti.public_url,
        &p,
        &chosen,
    )
    .await
    .map_err(|e| {
        let id = crate::http::report("a deep-linking response could not be made", &e);
        ApiError::Unavailable(format!(
            "the answer to the LMS could not be made: try again (support id {id})"
        ))
    })?;
    if !deep_link::spend(&s.db, &p.id, &user.id).await? {
        return Err(ApiError::NotFound("pick"));
    }
    tracing::info!(pick = %p.id, class = %p.class, by = %user.id, placed = chosen.len(), "LTI deep link answered");
    Ok(Json(answer))
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
