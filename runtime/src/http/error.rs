//! The one API error type: every handler returns it, and it is the only thing that turns a
//! failure into an HTTP answer — `{"error": {"code", "message"}}` with the right status.
//! Internal failures are logged in full and shown as a bare "internal error", so nothing
//! about the database or a plugin leaks to a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// Why a request failed, named by outcome.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON, a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// A field is well-formed but not acceptable; names the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
    /// No valid credentials.
    #[error("{message}")]
    Unauthorized {
        /// A stable code: `unauthorized`, `token_expired`, `refresh_reused`…
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing — or one this caller may not see, which must look the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// It exists already, or the change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The account's plan does not include it (`plan_limit`); the message says what to do.
    #[error("{0}")]
    PlanLimit(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// Slow down; try again after `retry_after` seconds.
    #[error("{message}")]
    TooMany {
        /// Seconds until a retry may succeed.
        retry_after: u64,
        /// What was limited.
        message: String,
    },
    /// A dependency (the model, a plugin) is failing; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an infrastructure failure; logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// A handler result.
pub type ApiResult<T, E = ApiError> = Result<T, E>;

impl ApiError {
    /// An invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Missing or bad credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PlanLimit(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::Unauthorized { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PlanLimit(_) => "plan_limit",
            ApiError::TooLarge(_) => "too_large",
            ApiError::TooMany { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        if let ApiError::Invalid { field, .. } = self {
            error["field"] = json!(field);
        }
        if let ApiError::TooMany { retry_after, .. } = self {
            error["retry_after"] = json!(retry_after);
        }
        json!({ "error": error })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => ApiError::Conflict("it already exists".into()),
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::TooMany { retry_after, .. } = &self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let ApiError::Unauthorized { .. } = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"penpal\""),
            );
        }
        response
    }
}

/// Records a failure a client will only hear about in general terms: logs `detail` (with
/// anything that looks like a credential masked) under a fresh support id, and returns the id
/// for the client's message, so support can find the detail without the client seeing it.
pub fn report(what: &str, detail: &dyn std::fmt::Display) -> String {
    let id = crate::store::new_id()[20..].to_string();
    tracing::warn!(support_id = %id, error = %redact_secrets(&detail.to_string()), "{what}");
    id
}

/// `text` with credential-like words masked: API keys (`sk-…`), bearer tokens, long opaque
/// strings, and the user and password of URLs.
pub fn redact_secrets(text: &str) -> String {
    let secret_like = |w: &str| {
        let w =
            w.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | '.' | ':' | ';' | ')' | '('));
        w.starts_with("sk-")
            || w.starts_with("key-")
            || (w.len() >= 24
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*')))
    };
    let mut out = Vec::new();
    let mut bearer = false;
    for word in text.split(' ') {
        let masked = if bearer || secret_like(word) {
            "[redacted]".to_string()
        } else if let Some((scheme, rest)) = word.split_once("://")
            && let Some((_, host)) = rest.split_once('@')
        {
            format!("{scheme}://[redacted]@{host}")
        } else {
            word.to_string()
        };
        bearer = word.eq_ignore_ascii_case("bearer");
        out.push(masked);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error answers with its status, a stable code and the one body shape; a 429 says
    /// when to come back and an internal error says nothing of its cause.
    #[test]
    fn every_error_has_its_status_code_and_body() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::invalid("email", "x"), 422, "invalid"),
            (ApiError::unauthorized("x"), 401, "unauthorized"),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (ApiError::NotFound("conversation"), 404, "not_found"),
            (ApiError::Conflict("x".into()), 409, "conflict"),
            (ApiError::TooLarge("x".into()), 413, "too_large"),
            (
                ApiError::TooMany {
                    retry_after: 7,
                    message: "x".into(),
                },
                429,
                "rate_limited",
            ),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
            (
                ApiError::Internal(anyhow::anyhow!("db password is hunter2")),
                500,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status().as_u16(), error.code()), (status, code));
            let body = error.body();
            assert_eq!(body["error"]["code"], code);
            assert!(body["error"]["message"].is_string());
        }
        let invalid = ApiError::invalid("email", "enter an email").body();
        assert_eq!(invalid["error"]["field"], "email");
        let limited = ApiError::TooMany {
            retry_after: 7,
            message: "slow down".into(),
        };
        assert_eq!(limited.body()["error"]["retry_after"], 7);
        let response = limited.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let internal = ApiError::Internal(anyhow::anyhow!("db password is hunter2"));
        assert_eq!(internal.body()["error"]["message"], "internal error");
    }

    #[test]
    fn credentials_are_masked_and_the_rest_kept() {
        assert_eq!(
            redact_secrets("Incorrect API key provided: sk-proj-abc***********xyz1."),
            "Incorrect API key provided: [redacted]"
        );
        assert_eq!(
            redact_secrets(
                "sent Authorization: Bearer eyJhbGciOi to ws://root:pw@db:8000 at 12:00"
            ),
            "sent Authorization: Bearer [redacted] to ws://[redacted]@db:8000 at 12:00"
        );
        assert_eq!(
            redact_secrets("token 9f8e7d6c5b4a39281706f5e4d3c2b1a0 expired"),
            "token [redacted] expired"
        );
        assert_eq!(
            redact_secrets("the language model answered 503: overloaded"),
            "the language model answered 503: overloaded"
        );
    }
}
