//! Schools' sign-in over HTTP: admins set, read and remove their school's provider; the
//! sign-in page finds a school by an address's domain; and the browser's round trip —
//! `/sso/{school}/login` to the provider, `/sso/callback` back, then `/arrive` with a hand-off
//! code. The browser steps answer redirects: a refused sign-in lands on `/login?sso=<reason>`,
//! which says what happened, instead of a bare error document.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Provider, Setup, Sso, SsoError};
use crate::auth::{AuthUser, Gate, Keys};
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::lms::lti::routes::field;
use crate::lms::schools::{self, ADMIN};

/// The cookie holding a sign-in's state, so only the browser that started it finishes it.
pub const STATE_COOKIE: &str = "penpal_sso";

/// What the sign-in handlers use.
#[derive(Clone)]
pub struct SsoState {
    /// Schools' sign-in.
    pub sso: Sso,
    /// Token keys, to know who is signed in.
    pub keys: Arc<Keys>,
    /// Whether cookies carry `Secure`.
    pub secure_cookies: bool,
}

impl FromRef<SsoState> for Gate {
    fn from_ref(s: &SsoState) -> Gate {
        Gate {
            db: s.sso.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// The sign-in routes.
pub fn router(state: SsoState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(read_sso, set_sso, remove_sso))
        .routes(routes!(discover))
        .routes(routes!(start))
        .routes(routes!(callback))
        .with_state(state)
}

/// A school's sign-in, as its admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SsoView {
    /// The provider, when one is set.
    pub provider: Option<Provider>,
    /// The redirect URI to register at the provider for penpal's client.
    pub redirect_uri: String,
    /// The school's sign-in link, to hand out or put in the school's portal.
    pub sign_in_url: String,
}

/// A school's provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoBody {
    /// The provider's issuer, an `https://` URL: penpal reads
    /// `{issuer}/.well-known/openid-configuration`.
    #[schema(min_length = 1, max_length = 500)]
    issuer: String,
    /// Penpal's client id at the provider.
    #[schema(min_length = 1, max_length = 200)]
    client_id: String,
    /// Penpal's client secret there; leave it out to keep the one set before.
    #[schema(min_length = 1, max_length = 500)]
    client_secret: Option<String>,
    /// Address domains whose people the sign-in page sends to this provider (at most 20).
    #[serde(default)]
    #[schema(max_items = 20)]
    email_domains: Vec<String>,
}

fn view(s: &SsoState, school: &str, provider: Option<Provider>) -> SsoView {
    SsoView {
        provider,
        redirect_uri: s.sso.redirect_uri(),
        sign_in_url: s.sso.sign_in_url(school),
    }
}

fn api_error(e: SsoError) -> ApiError {
    match e {
        SsoError::NoSecret => ApiError::invalid("client_secret", e.to_string()),
        SsoError::Config(_) => ApiError::invalid("issuer", e.to_string()),
        SsoError::DomainTaken(_) => ApiError::Conflict(e.to_string()),
        SsoError::Unreachable(why) => {
            let id = crate::http::report("a school's identity provider could not be reached", &why);
            ApiError::Unavailable(format!(
                "the provider could not be reached: check the issuer and try again (support id {id})"
            ))
        }
        SsoError::Store(e) => e.into(),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// An address domain, lower case: labels of letters, digits and hyphens, with a dot.
fn domain(d: &str) -> ApiResult<String> {
    let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
    let ok = d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(ApiError::invalid(
            "email_domains",
            format!("`{d}` is not a domain name such as school.example"),
        ));
    }
    Ok(d)
}

#[utoipa::path(get, path = "/v1/schools/{school}/sso", tag = "schools",
    responses((status = 200, body = SsoView), (status = 401, description = "not signed in"),
        (status = 403, description = "not the school's admin"), (status = 404, description = "no such school, or not a member")),
    security(("bearer" = [])))]
async fn read_sso(
    State(s): State<SsoState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<SsoView>> {
    let m = schools::member(&s.sso.db, &school, &user.id, ADMIN).await?;
    let provider = s.sso.provider(&m.school).await?;
    Ok(Json(view(&s, &m.school, provider)))
}

#[utoipa::path(put, path = "/v1/schools/{school}/sso", tag = "schools", request_body = SsoBody,
    responses((status = 200, body = SsoView, description = "set: the provider's discovery was read and checked"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, or not a member"),
        (status = 409, description = "another school signs in people of one of these domains"),
        (status = 422, description = "a blank or overlong field, a bad domain, no secret for a new provider, or an issuer whose OpenID configuration is missing or unusable (not public HTTPS, no RS256, no code flow, no PKCE S256)"),
        (status = 503, description = "the provider could not be reached")),
    security(("bearer" = [])))]
async fn set_sso(
    State(s): State<SsoState>,
    user: AuthUser,
    Path(school): Path<String>,
    Json(b): Json<SsoBody>,
) -> ApiResult<Json<SsoView>> {
    let m = schools::member(&s.sso.db, &school, &user.id, ADMIN).await?;
    let issuer = field("issuer", &b.issuer, 500)?;
    if let Some(why) = s.sso.outbound.refuses(&issuer) {
        return Err(ApiError::invalid("issuer", why));
    }
    if b.email_domains.len() > 20 {
        return Err(ApiError::invalid(
            "email_domains",
            "give at most 20 domains",
        ));
    }
    let mut domains = b
        .email_domains
        .iter()
        .map(|d| domain(d))
        .collect::<ApiResult<Vec<_>>>()?;
    domains.sort();
    domains.dedup();
    let setup = Setup {
        issuer,
        client_id: field("client_id", &b.client_id, 200)?,
        client_secret: b
            .client_secret
            .as_deref()
            .map(|c| field("client_secret", c, 500))
            .transpose()?,
        domains,
    };
    let provider = s
        .sso
        .configure(&m.school, &user.id, &setup)
        .await
        .map_err(api_error)?;
    tracing::info!(school = %m.school, issuer = %provider.issuer, "school sign-in set");
    Ok(Json(view(&s, &m.school, Some(provider))))
}

#[utoipa::path(delete, path = "/v1/schools/{school}/sso", tag = "schools",
    responses((status = 204, description = "removed: its people sign in with a password (or a reset) from now on"),
        (status = 401, description = "not signed in"), (status = 403, description = "not the school's admin"),
        (status = 404, description = "no such school, not a member, or no provider set")),
    security(("bearer" = [])))]
async fn remove_sso(
    State(s): State<SsoState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<StatusCode> {
    let m = schools::member(&s.sso.db, &school, &user.id, ADMIN).await?;
    if !s.sso.remove(&m.school).await? {
        return Err(ApiError::NotFound("single sign-on"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// An address to find a school's sign-in for.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DiscoverQuery {
    /// The person's school address.
    #[param(max_length = 254, pattern = ".@.")]
    email: String,
}

/// The school that signs in people of an address's domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchoolSignIn {
    /// The school's id.
    pub school: String,
    /// Its name.
    pub name: String,
    /// Where to send the browser (a path on penpal).
    pub url: String,
}

#[utoipa::path(get, path = "/v1/sso/discover", tag = "schools", params(DiscoverQuery),
    responses((status = 200, body = SchoolSignIn),
        (status = 404, description = "no school signs in people with this address's domain"),
        (status = 400, description = "no `email`"), (status = 422, description = "not an address")))]
async fn discover(
    State(s): State<SsoState>,
    Query(q): Query<DiscoverQuery>,
) -> ApiResult<Json<SchoolSignIn>> {
    let email = q.email.trim();
    let parts = email.rsplit_once('@');
    if email.len() > 254 || !parts.is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()) {
        return Err(ApiError::invalid(
            "email",
            "give an address such as name@school.example",
        ));
    }
    let (school, name) = s
        .sso
        .school_for(email)
        .await?
        .ok_or(ApiError::NotFound("school sign-in for this address"))?;
    let url = format!(
        "/sso/{school}/login?{}",
        crate::lms::lti::services::form(&[("login_hint", email)])
    );
    Ok(Json(SchoolSignIn { school, name, url }))
}

/// Where a sign-in goes on to, and who it is for.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StartQuery {
    /// A penpal path to open after signing in (default `/classes`).
    #[param(max_length = 500)]
    next: Option<String>,
    /// The address the person gave, passed to the provider.
    #[param(max_length = 254)]
    login_hint: Option<String>,
}

fn redirect(to: &str) -> ApiResult<Response> {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(to).map_err(|e| ApiError::Internal(e.into()))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The sign-in page, saying why a sign-in did not happen.
fn back_to_login(e: &SsoError) -> ApiResult<Response> {
    let reason = match e {
        SsoError::NotSet => "not_set",
        SsoError::State => "expired",
        SsoError::Declined(_) => "declined",
        SsoError::NoSeat(_) => "no_seat",
        SsoError::Unreachable(_) | SsoError::Store(_) => "unavailable",
        _ => "refused",
    };
    match e {
        SsoError::Unreachable(why) => {
            crate::http::report("a school's identity provider could not be reached", why);
        }
        SsoError::Store(why) => {
            crate::http::report("a school sign-in could not be stored", &why.to_string());
        }
        other => tracing::info!(why = %other, "school sign-in refused"),
    }
    metrics::counter!("penpal_sso_refused_total", "reason" => reason).increment(1);
    redirect(&format!("/login?sso={reason}"))
}

fn state_cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{STATE_COOKIE}={value}; Path=/sso; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

#[utoipa::path(get, path = "/sso/{school}/login", tag = "schools", params(StartQuery, ("school" = String, Path, description = "the school")),
    responses((status = 303, description = "to the school's provider, with a fresh state, nonce and PKCE challenge (the state also in the `penpal_sso` cookie); or to `/login?sso=not_set` when the school has no provider"),
        (status = 400, description = "a malformed query"), (status = 422, description = "`next` or `login_hint` too long")))]
async fn start(
    State(s): State<SsoState>,
    Path(school): Path<String>,
    Query(q): Query<StartQuery>,
) -> ApiResult<Response> {
    if q.next.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::invalid(
            "next",
            "give a penpal path of at most 500 characters",
        ));
    }
    if q.login_hint
        .as_ref()
        .is_some_and(|h| h.chars().count() > 254)
    {
        return Err(ApiError::invalid(
            "login_hint",
            "give an address of at most 254 characters",
        ));
    }
    match s
        .sso
        .start(&school, q.next.as_deref(), q.login_hint.as_deref())
        .await
    {
        Ok((to, state)) => {
            let mut resp = redirect(&to)?;
            let cookie = state_cookie(&state, super::STATE_TTL_MS / 1000, s.secure_cookies);
            resp.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
            );
            Ok(resp)
        }
        Err(e) => back_to_login(&e),
    }
}

/// What a provider sends the browser back with.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The state penpal sent.
    state: Option<String>,
    /// Set when the provider did not sign the person in.
    error: Option<String>,
}

#[utoipa::path(get, path = "/sso/callback", tag = "schools", params(CallbackQuery),
    responses((status = 303, description = "signed in: to `/arrive?code=…&next=…`, where the page exchanges the one-time code for a session; or to `/login?sso=<reason>` (`expired`, `declined`, `refused`, `no_seat`, `unavailable`, `not_set`) with nothing stored"),
        (status = 400, description = "a malformed query")))]
async fn callback(
    State(s): State<SsoState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let cookie = crate::auth::web::cookie(&headers, STATE_COOKIE);
    let result = match (q.state.as_deref(), q.code.as_deref(), q.error.as_deref()) {
        // Only the browser that started the sign-in may finish it (no signing someone else
        // into an attacker's account by a crafted link).
        (Some(state), _, _) if cookie != Some(state) => Err(SsoError::State),
        (Some(state), _, Some(error)) => {
            // The state is spent: this sign-in is over.
            let _ = s.sso.finish_declined(state).await;
            Err(SsoError::Declined(error.chars().take(100).collect()))
        }
        (Some(state), Some(code), None) => s.sso.finish(state, code).await,
        _ => Err(SsoError::State),
    };
    let mut resp = match result {
        Ok(signed) => {
            let code = crate::auth::handoff::issue_code(&s.sso.db, &signed.user, None).await?;
            redirect(&format!(
                "/arrive?{}",
                crate::lms::lti::services::form(&[("code", &code), ("next", &signed.next)])
            ))?
        }
        Err(e) => back_to_login(&e)?,
    };
    let clear = state_cookie("", 0, s.secure_cookies);
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(resp)
}
