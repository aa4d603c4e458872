//! Extractors: JSON, query and path readers whose rejections are [`ApiError`]s, so a
//! malformed body gets the same JSON error shape as everything else.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderMap, StatusCode, header};

use super::ApiError;

/// A JSON body; a bad one is a 400 (or 413) that says what is wrong.
///
/// The body is read whole before the `Content-Type` is judged: a request refused unread
/// would leave its body on the connection, and hyper would then close a connection the
/// client was told to keep alive, failing the client's next request on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let is_json = json_type(req.headers());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        if !is_json {
            return Err(ApiError::BadRequest(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        // Every request body is an object; serde would read a struct from an array too.
        if !bytes.trim_ascii_start().starts_with(b"{") {
            return Err(ApiError::BadRequest(
                "send a JSON object (`{…}`) as the body".into(),
            ));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(value))
    }
}

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
            _ => ApiError::BadRequest(r.body_text()),
        }
    }
}

/// Whether `headers` say the body is JSON (`application/json` or `application/…+json`).
fn json_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
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

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// For a `PATCH` field where `null` means "take it away": a field that is present (even as
/// `null`) is `Some`, an absent one (with `#[serde(default)]`) is `None`.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

fn whole_number<E: serde::de::Error>(n: serde_json::Number) -> Result<i64, E> {
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
        .ok_or_else(|| E::custom(format!("expected a whole number, got {n}")))
}

/// An optional whole number, read so that `14.0` (which JSON Schema calls an integer) is 14.
pub fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)?
        .map(whole_number)
        .transpose()
}

/// [`whole`] for a `PATCH` field where `null` takes the value away (see [`present`]).
pub fn present_whole<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(
        <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)?
            .map(whole_number)
            .transpose()?,
    ))
}
