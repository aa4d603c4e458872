//! Proving an address and getting back in: email verification and password reset.
//!
//! Both send a link holding a random single-use token; only its SHA-256 is stored
//! (`account_token`), with an expiry — 48 hours to verify, 30 minutes to reset. The link puts
//! the token after `#`, so it never reaches a server log or a `Referer`; the page posts it.
//! A reset request answers the same whether or not the address has an account, and does its
//! lookup after answering, so neither the reply nor its timing says which addresses exist. A
//! reset ends every session of the account.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tokens::{self, hash_token, random_token};
use super::{AuthState, AuthUser, passwords};
use crate::http::limit::Window;
use crate::http::{ApiError, ApiResult, Json};
use crate::store::Batch;
use crate::store::outbox::{Category, Notice};
use crate::store::{Db, StoreResult, now_ms};

/// How long a verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(48 * 3600);
/// How long a reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// Verification mails one account may ask for per hour.
const RESENDS_PER_HOUR: usize = 3;
/// Reset mails one address may receive per hour (more requests are answered, not sent).
const RESETS_PER_HOUR: usize = 3;

/// Per-key limits of the recovery mails.
#[derive(Debug)]
pub struct MailLimits {
    /// Verification re-sends, per account.
    pub resends: Window<String>,
    /// Reset mails, per address.
    pub resets: Window<String>,
}

impl Default for MailLimits {
    fn default() -> Self {
        MailLimits {
            resends: Window::new(Duration::from_secs(3600)),
            resets: Window::new(Duration::from_secs(3600)),
        }
    }
}

/// The routes of verification and reset.
pub fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(verify_email))
        .routes(routes!(change_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_reset))
        .routes(routes!(reset_password))
}

fn var(name: &str, value: impl Serialize) -> (String, Value) {
    (name.to_string(), json!(value))
}

/// Adds to `batch` a new single-use token for `purpose` and the message carrying its link:
/// the token row and the outbox row commit together with whatever else `batch` holds.
#[allow(clippy::too_many_arguments)] // one call per purpose; a struct would only rename them
pub(super) fn add_link(
    batch: &mut Batch,
    app: &AuthState,
    purpose: &'static str,
    user: &str,
    email: &str,
    name: &str,
    lang: &str,
    prefix: &str,
) {
    let token = random_token();
    let (ttl, page, template, extra) = match purpose {
        "verify_email" => (
            VERIFY_TTL,
            "verify-email",
            "verify_email",
            json!({"hours": VERIFY_TTL.as_secs() / 3600}),
        ),
        // Mailed to the new address, which the same page proves.
        "change_email" => (
            VERIFY_TTL,
            "verify-email",
            "email_change",
            json!({"hours": VERIFY_TTL.as_secs() / 3600, "new": email}),
        ),
        _ => (
            RESET_TTL,
            "reset-password",
            "password_reset",
            json!({"minutes": RESET_TTL.as_secs() / 60}),
        ),
    };
    let now = now_ms();
    batch.push(
        &format!(
            "CREATE type::record('account_token', ${prefix}_tok) CONTENT {{ user: ${prefix}_user, purpose: ${prefix}_purpose, email: ${prefix}_email, created_at: ${prefix}_now, expires_at: ${prefix}_exp }};"
        ),
        [
            var(&format!("{prefix}_tok"), hash_token(&token)),
            var(&format!("{prefix}_user"), user),
            var(&format!("{prefix}_purpose"), purpose),
            var(&format!("{prefix}_email"), email),
            var(&format!("{prefix}_now"), now),
            var(&format!("{prefix}_exp"), now + ttl.as_millis() as i64),
        ],
    );
    let mut vars = json!({
        "name": name,
        "link": app.settings.link(&format!("/{page}#token={token}")),
    });
    if let (Some(v), Some(extra)) = (vars.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    batch.notify(
        &Notice {
            template,
            // Asked for by the learner and proving who they are: never held back.
            category: Category::Security,
            user: Some(user.to_string()),
            to: email.to_string(),
            lang: lang.to_string(),
            vars,
        },
        &app.routing,
        &format!("{prefix}_n"),
    );
}

/// The owner of a live token for `purpose`, marking it used (`None`: unknown, used, expired).
async fn redeem(db: &Db, token: &str, purpose: &str) -> StoreResult<Option<(String, String)>> {
    Ok(redeem_any(db, token, &[purpose])
        .await?
        .map(|(user, email, _)| (user, email)))
}

/// The owner, address and purpose of a live token for one of `purposes`, marking it used.
async fn redeem_any(
    db: &Db,
    token: &str,
    purposes: &[&str],
) -> StoreResult<Option<(String, String, String)>> {
    #[derive(Deserialize)]
    struct Redeemed {
        user: String,
        email: String,
        purpose: String,
    }
    let rows: Vec<Redeemed> = db
        .rows(
            "UPDATE type::record('account_token', $h) SET used_at = $now
             WHERE purpose INSIDE $purposes AND used_at = NONE AND expires_at > $now
             RETURN user, email, purpose",
            json!({"h": hash_token(token), "purposes": purposes, "now": now_ms()}),
        )
        .await?;
    Ok(rows
        .into_iter()
        .next()
        .map(|r| (r.user, r.email, r.purpose)))
}

/// A token from a link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token after `#token=` in the link.
    #[schema(min_length = 1, max_length = 200)]
    token: String,
}

/// Whether the address is verified.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// Always true in a success.
    email_verified: bool,
}

/// A link's token that is unknown, used or expired: like any other wrong credential, a 401.
fn bad_link() -> ApiError {
    ApiError::Unauthorized {
        code: "link_invalid",
        message: "this link is not valid any more (used, expired or mistyped): ask for a new one"
            .into(),
    }
}

#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 200, body = Verified), (status = 401, description = "`link_invalid`: the link is used, expired or unknown")))]
async fn verify_email(
    State(app): State<AuthState>,
    Json(body): Json<TokenBody>,
) -> ApiResult<Json<Verified>> {
    let (user, email, purpose) =
        redeem_any(&app.db, &body.token, &["verify_email", "change_email"])
            .await?
            .ok_or_else(bad_link)?;
    if purpose == "change_email" {
        return switch_email(&app, &user, &email).await;
    }
    // The address verified is the one the link went to: a later change of address needs its
    // own verification. The first verification also welcomes the learner, in the same
    // transaction.
    let row = super::routes::user_by_id(&app.db, &user).await?;
    let mut batch = Batch::default();
    batch.push(
        "UPDATE type::record('user', $u) SET email_verified_at = $now WHERE email = $email;",
        [var("u", &user), var("email", &email), var("now", now_ms())],
    );
    if row.email_verified_at.is_none() && row.email == email {
        let lang = passwords::Lang::pick(row.interface_language.as_deref());
        batch.notify(
            &Notice {
                template: "welcome",
                category: Category::Account,
                user: Some(user.clone()),
                to: email.clone(),
                lang: lang.code().to_string(),
                vars: json!({
                    "name": row.display_name(),
                    "link": app.settings.link("/chat"),
                }),
            },
            &app.routing,
            "w",
        );
    }
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    tracing::info!(user = %user, "email verified");
    Ok(Json(Verified {
        email_verified: true,
    }))
}

/// Gives `user` the address `new`, which its link just proved, and tells both addresses.
async fn switch_email(app: &AuthState, user: &str, new: &str) -> ApiResult<Json<Verified>> {
    let row = super::routes::user_by_id(&app.db, user).await?;
    let now = now_ms();
    let when = crate::store::utc_minute(now);
    let lang = passwords::Lang::pick(row.interface_language.as_deref());
    let mut batch = Batch::default();
    batch.push(
        "UPDATE type::record('user', $u) SET email = $new, email_verified_at = $now;",
        [var("u", user), var("new", new), var("now", now)],
    );
    // Both hear of it: the old address in case someone else did it, the new as a record.
    for (i, to) in [row.email.as_str(), new].into_iter().enumerate() {
        batch.notify(
            &Notice {
                template: "email_changed",
                category: Category::Security,
                user: Some(user.to_string()),
                to: to.to_string(),
                lang: lang.code().to_string(),
                vars: json!({
                    "name": row.display_name(),
                    "old": row.email,
                    "new": new,
                    "when": when,
                    "link": app.settings.link("/forgot-password"),
                }),
            },
            &app.routing,
            &format!("ec{i}"),
        );
    }
    batch
        .commit(&app.db)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => ApiError::Conflict(
                "another account took this address meanwhile: choose another one".into(),
            ),
            other => other,
        })?;
    app.outbox.notify_one();
    tracing::info!(user = %user, "email address changed");
    Ok(Json(Verified {
        email_verified: true,
    }))
}

/// A new address for the account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmail {
    /// The new address; it takes effect once the link mailed to it is followed.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// The account's current password.
    password: String,
}

#[utoipa::path(post, path = "/v1/me/email", tag = "account", request_body = ChangeEmail,
    responses((status = 202, description = "a link is on its way to the new address; the account keeps its address until it is followed"),
        (status = 409, description = "another account has this address"),
        (status = 422, description = "not an email address, the current one, or a wrong password"),
        (status = 429, description = "too many links asked for; see `Retry-After`")),
    security(("bearer" = [])))]
async fn change_email(
    State(app): State<AuthState>,
    user: AuthUser,
    Json(body): Json<ChangeEmail>,
) -> ApiResult<StatusCode> {
    let new = super::routes::email(&body.email)?;
    let row = super::routes::user_by_id(&app.db, &user.id).await?;
    if new == row.email {
        return Err(ApiError::invalid(
            "email",
            "this is already the account's address",
        ));
    }
    if !passwords::verify(body.password, Some(row.password_hash.clone())).await? {
        return Err(ApiError::invalid("password", "the password is wrong"));
    }
    if super::routes::user_by_email(&app.db, &new).await?.is_some() {
        return Err(ApiError::Conflict(
            "another account has this address".into(),
        ));
    }
    app.mail_limits
        .resends
        .take(&format!("change:{}", user.id), RESENDS_PER_HOUR)
        .map_err(|wait| ApiError::TooMany {
            retry_after: wait,
            message: format!(
                "a link was sent a moment ago: try again in {} min",
                wait.div_ceil(60)
            ),
        })?;
    let lang = passwords::Lang::pick(row.interface_language.as_deref());
    let mut batch = Batch::default();
    add_link(
        &mut batch,
        &app,
        "change_email",
        &user.id,
        &new,
        &row.display_name(),
        lang.code(),
        "c",
    );
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/v1/auth/verify-email/resend", tag = "auth",
    responses((status = 202, description = "a new link is on its way"), (status = 409, description = "the address is already verified"),
        (status = 429, description = "too many links asked for; see `Retry-After`")),
    security(("bearer" = [])))]
async fn resend_verification(
    State(app): State<AuthState>,
    user: AuthUser,
) -> ApiResult<StatusCode> {
    let row = super::routes::user_by_id(&app.db, &user.id).await?;
    if row.email_verified_at.is_some() {
        return Err(ApiError::Conflict(
            "this address is already verified".into(),
        ));
    }
    app.mail_limits
        .resends
        .take(&user.id, RESENDS_PER_HOUR)
        .map_err(|wait| ApiError::TooMany {
            retry_after: wait,
            message: format!(
                "a link was sent a moment ago: try again in {} min",
                wait.div_ceil(60)
            ),
        })?;
    let mut batch = Batch::default();
    let lang = passwords::Lang::pick(row.interface_language.as_deref());
    add_link(
        &mut batch,
        &app,
        "verify_email",
        &user.id,
        &row.email,
        &row.display_name(),
        lang.code(),
        "v",
    );
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    Ok(StatusCode::ACCEPTED)
}

/// An address that forgot its password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's email address.
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// The same answer for every address.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetRequested {
    /// What happens next.
    message: &'static str,
}

#[utoipa::path(post, path = "/v1/auth/password-reset/request", tag = "auth", request_body = ResetRequest,
    responses((status = 202, body = ResetRequested, description = "the same answer whether or not the address has an account"),
        (status = 422, description = "not an email address")))]
async fn request_reset(
    State(app): State<AuthState>,
    Json(body): Json<ResetRequest>,
) -> ApiResult<(StatusCode, Json<ResetRequested>)> {
    let email = body.email.trim().to_lowercase();
    if email.len() > 254 || !email.contains('@') {
        // Only the form is judged here, which says nothing about which accounts exist.
        return Err(ApiError::invalid(
            "email",
            "enter an email address such as ana@example.com",
        ));
    }
    // The lookup runs after the answer, in a task of its own: its cost must not tell which
    // addresses exist. A full queue (a flood) drops the request, with the same answer.
    if app.resets.try_send(email).is_err() {
        tracing::warn!("password reset requests are arriving faster than they are handled");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetRequested {
            message: "if an account has this address, a link to choose a new password is on its way",
        }),
    ))
}

/// Requests for reset links waiting for [`reset_worker`].
pub type ResetQueue = tokio::sync::mpsc::Sender<String>;

/// Reset requests waiting at most (more are dropped: the same answer, no mail).
pub const RESET_QUEUE: usize = 1024;

/// Handles reset requests one at a time, away from the requests that made them, until
/// `shutdown` (it holds the state, queue included, so it would not end on its own).
pub async fn reset_worker(
    app: AuthState,
    mut queue: tokio::sync::mpsc::Receiver<String>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let email = tokio::select! {
            _ = &mut shutdown => return,
            next = queue.recv() => match next {
                Some(email) => email,
                None => return,
            },
        };
        if let Err(e) = send_reset(&app, &email).await {
            tracing::error!(error = %e, "a password reset could not be prepared");
        }
    }
}

async fn send_reset(app: &AuthState, email: &str) -> anyhow::Result<()> {
    let Some(row) = super::routes::user_by_email(&app.db, email).await? else {
        return Ok(());
    };
    if app
        .mail_limits
        .resets
        .take(&email.to_string(), RESETS_PER_HOUR)
        .is_err()
    {
        tracing::warn!(user = %row.id, "password reset mails to this address are paused for the hour");
        return Ok(());
    }
    let lang = passwords::Lang::pick(row.interface_language.as_deref());
    let mut batch = Batch::default();
    add_link(
        &mut batch,
        app,
        "reset_password",
        &row.id,
        &row.email,
        &row.display_name(),
        lang.code(),
        "r",
    );
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    Ok(())
}

/// A new password, with the token from the reset link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The token after `#token=` in the link.
    #[schema(min_length = 1, max_length = 200)]
    token: String,
    /// 10 to 128 characters, and hard to guess.
    #[schema(min_length = 10, max_length = 128)]
    new_password: String,
}

#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = NewPassword,
    responses((status = 204, description = "the password is changed and every session ended"),
        (status = 401, description = "`link_invalid`: the link is used, expired or unknown"),
        (status = 422, description = "the password is weak")))]
async fn reset_password(
    State(app): State<AuthState>,
    Json(body): Json<NewPassword>,
) -> ApiResult<StatusCode> {
    // Judge the password before spending the token: a weak one must not cost the link.
    let owner: Option<Value> = app
        .db
        .one(
            "SELECT user FROM type::record('account_token', $h) WHERE purpose = 'reset_password' AND used_at = NONE AND expires_at > $now",
            json!({"h": hash_token(&body.token), "now": now_ms()}),
        )
        .await?;
    let user_id = owner
        .and_then(|o| o["user"].as_str().map(str::to_string))
        .ok_or_else(bad_link)?;
    let row = super::routes::user_by_id(&app.db, &user_id).await?;
    let lang = passwords::Lang::pick(row.interface_language.as_deref());
    if let Some(problem) = passwords::policy(&body.new_password, &row.email, lang) {
        return Err(ApiError::invalid("new_password", problem));
    }
    let hash = passwords::hash(body.new_password).await?;
    let (user, email) = redeem(&app.db, &body.token, "reset_password")
        .await?
        .ok_or_else(bad_link)?;
    let mut batch = Batch::default();
    let now = now_ms();
    batch.push(
        // A reset proves the address too.
        "UPDATE type::record('user', $u) SET password_hash = $hash, password_changed_at = $now,
             email_verified_at = IF email_verified_at = NONE AND email = $email THEN $now ELSE email_verified_at END;",
        [var("u", &user), var("hash", hash), var("now", now), var("email", &email)],
    );
    super::routes::password_changed_notice(&mut batch, &app, &row, lang, now);
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    tokens::revoke_others(&app.db, &app.keys, &user, None).await?;
    tracing::info!(user = %user, "password reset");
    Ok(StatusCode::NO_CONTENT)
}
