//! Extractors: JSON, query and path readers whose rejections are [`ApiError`]s (so a
//! malformed body gets the same JSON error shape as everything else), the authenticated
//! caller, and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::{ApiError, AppState};
use crate::auth::{Claims, Role};

/// A JSON body; a bad one is a 400 (or 413, 415) that says what is wrong.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge("the request body is too large".into())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            _ => ApiError::BadRequest(r.body_text()),
        }
    }
}

/// Query parameters; bad ones are a 400.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// Path parameters; bad ones are a 400.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// The signed-in caller, from `Authorization: Bearer <access token>`. No header and a bad
/// token are both 401, with different codes: `unauthorized` and `invalid_token` /
/// `token_expired`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user's id.
    pub id: String,
    /// Their role.
    pub role: Role,
    /// The refresh-token family of the session the token belongs to.
    pub family: String,
}

impl From<Claims> for AuthUser {
    fn from(c: Claims) -> Self {
        AuthUser {
            id: c.sub,
            role: c.role,
            family: c.fam,
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("sign in first: send `Authorization: Bearer <access token>`")
        })?;
        app.keys.verify_access(token).map(AuthUser::from)
    }
}

/// The client's IP: the peer address, or the first `X-Forwarded-For` hop when the operator
/// says a trusted proxy sits in front (`PENPAL_TRUST_PROXY`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if app.settings.trust_proxy
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Ok(ClientIp(ip));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(peer))
    }
}
