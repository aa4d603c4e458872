//! What the account room's handlers hold ([`AuthState`]), and the [`Gate`] every room's
//! state gives its handlers so they can ask who is calling ([`AuthUser`], [`Operator`]).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::{Claims, Keys, Role, Throttle};
use crate::http::limit::Window;
use crate::http::{ApiError, ClientKey, TrustedProxies, bearer};
use crate::store::Db;
use crate::store::personal::PersonalData;

/// What checks an access token: the signing keys and the stored sessions. A room whose
/// handlers take [`AuthUser`] gives its state a `FromRef` to this.
#[derive(Clone)]
pub struct Gate {
    /// Where sessions are stored.
    pub db: Db,
    /// Token keys and the session cache.
    pub keys: Arc<Keys>,
}

/// The account room's settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Mark session cookies `Secure` (off only for plain-http development).
    pub secure_cookies: bool,
    /// Sign-ups one client may make per hour.
    pub signups_per_hour: usize,
    /// Where learners reach penpal, for links in mail (no trailing slash).
    pub public_url: String,
}

impl AuthSettings {
    /// The public address of `path` (which starts with `/`), for a link in mail.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }
}

/// What the account routes use.
#[derive(Clone)]
pub struct AuthState {
    /// The database.
    pub db: Db,
    /// Token keys.
    pub keys: Arc<Keys>,
    /// Login throttle.
    pub throttle: Arc<Throttle>,
    /// Sign-ups per client in the last hour.
    pub signups: Arc<Window<ClientKey>>,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted: TrustedProxies,
    /// Every room's part of a person's data, for the export and account deletion.
    pub personal: Arc<[Arc<dyn PersonalData>]>,
    /// Per-key limits of verification and reset mails.
    pub mail_limits: Arc<super::recovery::MailLimits>,
    /// Reset requests, handled after they are answered.
    pub resets: super::recovery::ResetQueue,
    /// Wakes the outbox's worker after a commit that enqueued mail.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Which channels carry each category of message.
    pub routing: Arc<crate::store::outbox::Routing>,
    /// Settings.
    pub settings: AuthSettings,
}

impl FromRef<AuthState> for Gate {
    fn from_ref(s: &AuthState) -> Gate {
        Gate {
            db: s.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

impl FromRef<AuthState> for TrustedProxies {
    fn from_ref(s: &AuthState) -> TrustedProxies {
        s.trusted.clone()
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

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Gate: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let gate = Gate::from_ref(state);
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("sign in first: send `Authorization: Bearer <access token>`")
        })?;
        gate.keys
            .authenticate(&gate.db, token)
            .await
            .map(AuthUser::from)
    }
}

/// A signed-in operator. No session is a 401; a session of another role is a 403.
#[derive(Debug, Clone)]
pub struct Operator(pub AuthUser);

impl<S> FromRequestParts<S> for Operator
where
    S: Send + Sync,
    Gate: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Operator {
            return Err(ApiError::Forbidden(
                "this needs the operator role (granted with `penpal admin grant-role EMAIL operator`)"
                    .into(),
            ));
        }
        Ok(Operator(user))
    }
}
