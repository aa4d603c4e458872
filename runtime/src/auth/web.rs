//! Browser sessions: the same accounts and tokens, with the refresh token kept where page
//! scripts cannot read it.
//!
//! The web app holds its access token in memory only. The refresh token lives in an
//! `HttpOnly`, `SameSite=Strict` cookie scoped to `/v1/auth/web`, so an injected script can
//! neither read nor exfiltrate it. Every route that acts on that cookie also demands an
//! `X-CSRF-Token` header equal to a value derived from the refresh token (a signed double
//! submit): the page reads it from a readable `penpal_csrf` cookie, which another site can
//! neither read nor forge. A request whose `Origin` is another site is refused outright.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuthState;
use super::routes::{Login, Register, create_account, exchange, sign_in};
use super::tokens::{self, Tokens};
use crate::http::{ApiError, ApiResult, ClientIp, Json};

/// The refresh cookie's name.
pub const REFRESH_COOKIE: &str = "penpal_refresh";
/// The readable CSRF cookie's name.
pub const CSRF_COOKIE: &str = "penpal_csrf";
/// The header that must echo it.
pub const CSRF_HEADER: &str = "x-csrf-token";
const REFRESH_PATH: &str = "/v1/auth/web";

/// What a browser session start or refresh answers: no refresh token, it is in the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebSession {
    /// A JWT for `Authorization: Bearer`; keep it in memory.
    access_token: String,
    /// Seconds the access token lives.
    expires_in: u64,
    /// The user's id.
    user_id: String,
    /// Echo as `X-CSRF-Token` on the next refresh or sign-out (also in the `penpal_csrf` cookie).
    csrf_token: String,
}

/// The browser-session routes under `/v1/auth/web`.
pub fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(web_register))
        .routes(routes!(web_login))
        .routes(routes!(web_refresh))
        .routes(routes!(web_logout))
        .routes(routes!(web_handoff))
}

/// The CSRF value bound to `refresh`: knowing it does not reveal the token, and it changes
/// with every rotation.
pub fn csrf_for(refresh: &str) -> String {
    let digest = Sha256::digest(format!("penpal-csrf\0{refresh}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Refuses requests that a browser says come from another site.
fn same_origin(headers: &HeaderMap) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    if host.is_some() && origin_host == host {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "browser sessions only start from penpal's own pages".into(),
        ))
    }
}

/// `; Secure` unless the operator turned secure cookies off for plain-http development.
fn secure_flag(app: &AuthState) -> &'static str {
    if app.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    }
}

/// The cookie-bearing answer for `tokens`.
fn session(app: &AuthState, status: StatusCode, t: Tokens) -> Response {
    let csrf = csrf_for(&t.refresh_token);
    let max_age = app.keys.refresh_ttl.as_secs();
    let flags = secure_flag(app);
    let refresh = format!(
        "{REFRESH_COOKIE}={}; Path={REFRESH_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{flags}",
        t.refresh_token
    );
    let readable =
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age}; SameSite=Strict{flags}");
    let body = WebSession {
        access_token: t.access_token,
        expires_in: t.expires_in,
        user_id: t.user_id,
        csrf_token: csrf,
    };
    let mut resp = (status, Json(body)).into_response();
    for c in [refresh, readable] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Cookies that end the browser session.
fn cleared(app: &AuthState, mut resp: Response) -> Response {
    let flags = secure_flag(app);
    for c in [
        format!(
            "{REFRESH_COOKIE}=; Path={REFRESH_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{flags}"
        ),
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict{flags}"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The refresh cookie, once the CSRF header proves the caller is penpal's own page.
fn checked_refresh(headers: &HeaderMap) -> ApiResult<&str> {
    same_origin(headers)?;
    let refresh = cookie(headers, REFRESH_COOKIE).ok_or(ApiError::Unauthorized {
        code: "no_session",
        message: "no browser session: sign in".into(),
    })?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if sent.is_empty() || sent != csrf_for(refresh) {
        return Err(ApiError::Forbidden(
            "missing or wrong X-CSRF-Token: send the value of the penpal_csrf cookie".into(),
        ));
    }
    Ok(refresh)
}

#[utoipa::path(post, path = "/v1/auth/web/register", tag = "auth", request_body = Register,
    responses((status = 201, body = WebSession, description = "signed up; sets the session cookies"), (status = 409, description = "email taken")))]
async fn web_register(
    State(app): State<AuthState>,
    client: ClientIp,
    headers: HeaderMap,
    Json(body): Json<Register>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    let (device, new_cookie) = super::devices::Device::from_headers(&headers).with_cookie();
    let lang = super::routes::accept_language(&headers);
    let t = create_account(&app, client, lang, &device, body).await?;
    Ok(known_here(
        &app,
        session(&app, StatusCode::CREATED, t),
        new_cookie,
    ))
}

#[utoipa::path(post, path = "/v1/auth/web/login", tag = "auth", request_body = Login,
    responses((status = 200, body = WebSession, description = "signed in; sets the session cookies"), (status = 401, description = "wrong email or password"), (status = 429, description = "too many failed attempts")))]
async fn web_login(
    State(app): State<AuthState>,
    client: ClientIp,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    let (device, new_cookie) = super::devices::Device::from_headers(&headers).with_cookie();
    let t = sign_in(&app, client, &device, body).await?;
    Ok(known_here(
        &app,
        session(&app, StatusCode::OK, t),
        new_cookie,
    ))
}

/// Sets the cookie that names this browser, when it had none.
fn known_here(app: &AuthState, mut resp: Response, new_cookie: Option<String>) -> Response {
    if let Some(v) = new_cookie
        .as_deref()
        .and_then(|id| super::devices::cookie_header(id, app.settings.secure_cookies))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[utoipa::path(post, path = "/v1/auth/web/refresh", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "the penpal_csrf cookie's value")),
    responses((status = 200, body = WebSession, description = "rotated; sets new session cookies"), (status = 401, description = "no session, or it ended"), (status = 403, description = "CSRF check failed")))]
async fn web_refresh(State(app): State<AuthState>, headers: HeaderMap) -> ApiResult<Response> {
    let refresh = checked_refresh(&headers)?;
    match exchange(&app, refresh).await {
        Ok(t) => Ok(session(&app, StatusCode::OK, t)),
        // A dead session's cookies are useless: clear them so the page starts clean.
        Err(e @ ApiError::Unauthorized { .. }) => Ok(cleared(&app, e.into_response())),
        Err(e) => Err(e),
    }
}

#[utoipa::path(post, path = "/v1/auth/web/logout", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "the penpal_csrf cookie's value")),
    responses((status = 204, description = "the session is ended and its cookies cleared"),
        (status = 401, description = "no browser session"), (status = 403, description = "CSRF check failed")))]
async fn web_logout(State(app): State<AuthState>, headers: HeaderMap) -> ApiResult<Response> {
    let refresh = checked_refresh(&headers)?;
    if let Some(family) = tokens::family_of(&app.db, refresh).await? {
        tokens::revoke_family(&app.db, &app.keys, &family).await?;
    }
    Ok(cleared(&app, StatusCode::NO_CONTENT.into_response()))
}

/// A one-time hand-off code (from an LMS launch or a single sign-on).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The code the landing page was given.
    #[schema(min_length = 1, max_length = 100)]
    code: String,
}

#[utoipa::path(post, path = "/v1/auth/web/handoff", tag = "auth", request_body = Handoff,
    responses((status = 200, body = WebSession, description = "signed in; sets the session cookies"),
        (status = 401, description = "the code is unknown, used or expired: launch again"),
        (status = 403, description = "not from penpal's own pages")))]
async fn web_handoff(
    State(app): State<AuthState>,
    headers: HeaderMap,
    Json(body): Json<Handoff>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    let user = super::handoff::redeem(&app.db, &body.code)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this sign-in link was used or has expired: launch penpal again from your course",
            )
        })?;
    let role = super::routes::user_by_id(&app.db, &user).await?.role;
    let t = tokens::issue(&app.db, &app.keys, &user, role, None).await?;
    Ok(session(&app, StatusCode::OK, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; penpal_refresh=abc; b=2"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("penpal_csrf=xyz"));
        assert_eq!(cookie(&h, REFRESH_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "penpal"), None);
    }

    #[test]
    fn csrf_is_bound_to_the_refresh_token() {
        assert_eq!(csrf_for("one"), csrf_for("one"));
        assert_ne!(csrf_for("one"), csrf_for("two"));
        assert!(!csrf_for("one").contains("one"));
    }

    #[test]
    fn other_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            same_origin(&h).is_ok(),
            "no Origin: not a cross-site browser request"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(same_origin(&h).is_err());
    }
}
