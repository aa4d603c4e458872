//! The account's routes: register, login, refresh, logout, change password, delete, export.

use crate::store::personal::{self, PersonalData};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::recovery;
use super::tokens::{self, RefreshRefusal, Tokens};
use super::{AuthState, AuthUser};
use super::{Role, passwords};
use crate::http::{ApiError, ApiResult, ClientIp, Json};
use crate::store::Batch;
use crate::store::outbox::{Category, Notice};
use crate::store::{Db, new_id, now_ms};

/// The routes under `/v1/auth` and `/v1/me`.
pub fn router(state: AuthState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(change_password))
        .routes(routes!(delete_account))
        .routes(routes!(export))
        .merge(super::web::router())
        .merge(recovery::router())
        .with_state(state)
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// An email address such as ana@example.com.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 10 to 128 characters, and hard to guess: refused with advice otherwise.
    #[schema(min_length = 10, max_length = 128)]
    password: String,
    /// How the tutor addresses the learner (at most 60 characters); defaults to the email's
    /// local part.
    #[serde(default)]
    #[schema(max_length = 60)]
    display_name: Option<String>,
    /// The learner's IANA time zone, such as `Europe/Paris` (the web app sends the browser's);
    /// digests and quiet hours follow it. `UTC` when left out.
    #[serde(default)]
    #[schema(max_length = 64)]
    time_zone: Option<String>,
}

/// Email and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

/// A refresh token to exchange, or to end.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// Confirms account deletion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    password: String,
}

/// A user row.
#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// PHC hash.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Created (ms).
    pub created_at: i64,
    /// The interface language the learner chose (kept in their profile), for messages.
    #[serde(default)]
    pub interface_language: Option<String>,
    /// How the learner is addressed (kept in their profile).
    #[serde(default)]
    pub name: Option<String>,
    /// When the address was verified (ms).
    #[serde(default)]
    pub email_verified_at: Option<i64>,
    /// Their IANA time zone, if they gave one.
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl UserRow {
    /// How mail addresses the user: their display name, or their address's local part.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.email.split('@').next().unwrap_or_default().to_string())
    }
}

/// Normalises and checks an email address.
pub(super) fn email(raw: &str) -> ApiResult<String> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.contains(char::is_whitespace)
        });
    if ok {
        Ok(e)
    } else {
        Err(ApiError::invalid(
            "email",
            "enter an email address such as ana@example.com",
        ))
    }
}

/// The account with address `email` (already normalised), if any.
pub async fn user_by_email(db: &Db, email: &str) -> ApiResult<Option<UserRow>> {
    Ok(db
        .one(
            "SELECT *, record::id(id) AS id, profile.interface_language AS interface_language, profile.display_name AS name FROM user WHERE email = $email",
            json!({"email": email}),
        )
        .await?)
}

/// The account with `id`.
pub async fn user_by_id(db: &Db, id: &str) -> ApiResult<UserRow> {
    db
        .one(
            "SELECT *, record::id(id) AS id, profile.interface_language AS interface_language, profile.display_name AS name FROM type::record('user', $id)",
            json!({"id": id}),
        )
        .await?
        .ok_or(ApiError::NotFound("account"))
}

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = Register,
    responses((status = 201, body = Tokens), (status = 409, description = "email taken"), (status = 422, description = "invalid field"),
        (status = 429, description = "too many sign-ups from this client; see `Retry-After`")))]
async fn register(
    State(app): State<AuthState>,
    client: ClientIp,
    headers: axum::http::HeaderMap,
    Json(body): Json<Register>,
) -> ApiResult<(StatusCode, Json<Tokens>)> {
    let lang = accept_language(&headers);
    let device = super::devices::Device::from_headers(&headers);
    Ok((
        StatusCode::CREATED,
        Json(create_account(&app, client, lang, &device, body).await?),
    ))
}

/// Checks that `name` is an IANA time zone this server knows (`Europe/Paris`, `UTC`).
pub fn time_zone(field: &'static str, name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || jiff::tz::TimeZone::get(name).is_err() {
        return Err(ApiError::invalid(
            field,
            "use an IANA time zone name, such as Europe/Paris or America/New_York",
        ));
    }
    Ok(name.to_string())
}

/// Adds to `batch` the change of `user`'s time zone (checked with [`time_zone`]).
pub fn set_time_zone(batch: &mut Batch, user: &str, tz: &str) {
    batch.push(
        "UPDATE type::record('user', $tz_user) SET time_zone = $tz_name;",
        [
            ("tz_user".to_string(), json!(user)),
            ("tz_name".to_string(), json!(tz)),
        ],
    );
}

/// The language a request's `Accept-Language` asks for, among those penpal speaks.
pub(super) fn accept_language(headers: &axum::http::HeaderMap) -> passwords::Lang {
    passwords::Lang::pick(
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Creates the account `body` describes and starts its first session. Only well-formed
/// sign-ups count against the client's hourly limit, and they count before the password is
/// hashed: the hash is the expensive part a flood would aim at.
pub(super) async fn create_account(
    app: &AuthState,
    client: ClientIp,
    lang: passwords::Lang,
    device: &super::devices::Device,
    body: Register,
) -> ApiResult<Tokens> {
    let email = email(&body.email)?;
    if let Some(problem) = passwords::policy(&body.password, &email, lang) {
        return Err(ApiError::invalid("password", problem));
    }
    app.signups
        .take(&client.key(), app.settings.signups_per_hour)
        .map_err(|wait| ApiError::TooMany {
            retry_after: wait,
            message: format!(
                "too many new accounts from this network: try again in {} min",
                wait.div_ceil(60)
            ),
        })?;
    let display_name = body
        .display_name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or("learner").to_string());
    if display_name.chars().count() > 60 {
        return Err(ApiError::invalid(
            "display_name",
            "use at most 60 characters",
        ));
    }
    let time_zone = match &body.time_zone {
        Some(tz) => time_zone("time_zone", tz)?,
        None => "UTC".to_string(),
    };
    let hash = passwords::hash(body.password).await?;
    let id = new_id();
    let now = now_ms();
    // The account, its verification link and the mail carrying it commit together.
    let mut batch = Batch::default();
    batch.push(
        "CREATE type::record('user', $id) CONTENT { email: $email, password_hash: $hash, role: 'learner', created_at: $now, password_changed_at: $now, time_zone: $tz, profile: { display_name: $name, interface_language: $lang } };",
        [
            ("id".to_string(), json!(id)),
            ("email".to_string(), json!(email)),
            ("hash".to_string(), json!(hash)),
            ("now".to_string(), json!(now)),
            ("name".to_string(), json!(display_name)),
            ("lang".to_string(), json!(lang.code())),
            ("tz".to_string(), json!(time_zone)),
        ],
    );
    // The device it signed up on is known: signing in there later is not news.
    super::devices::remember(&mut batch, &id, device, now);
    recovery::add_link(
        &mut batch,
        app,
        "verify_email",
        &id,
        &email,
        &display_name,
        lang.code(),
        "v",
    );
    batch
        .commit(&app.db)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => ApiError::Conflict(
                "an account with this email already exists: sign in instead".into(),
            ),
            other => other,
        })?;
    tracing::info!(user = %id, "account registered");
    app.outbox.notify_one();
    Ok(tokens::issue(&app.db, &app.keys, &id, Role::Learner, None).await?)
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = Tokens), (status = 401, description = "wrong email or password"), (status = 429, description = "too many failed attempts")))]
async fn login(
    State(app): State<AuthState>,
    client: ClientIp,
    device: super::devices::Device,
    Json(body): Json<Login>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(sign_in(&app, client, &device, body).await?))
}

/// Checks a sign-in against the throttle and the password, and starts a session. The attempt
/// is counted before the password is checked (see [`super::throttle`]). A sign-in from a
/// device the account has not used before mails its owner.
pub(super) async fn sign_in(
    app: &AuthState,
    client: ClientIp,
    device: &super::devices::Device,
    body: Login,
) -> ApiResult<Tokens> {
    let account = body.email.trim().to_lowercase();
    let attempt = app
        .throttle
        .begin(&account, client.key())
        .map_err(|wait| ApiError::TooMany {
            retry_after: wait,
            message: format!("too many failed sign-ins from here: try again in {wait} s"),
        })?;
    let user: Option<UserRow> = app
        .db
        .one(
            "SELECT *, record::id(id) AS id, profile.interface_language AS interface_language, profile.display_name AS name FROM user WHERE email = $email",
            json!({"email": account}),
        )
        .await?;
    let ok = passwords::verify(
        body.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    match user {
        Some(user) if ok => {
            app.throttle.succeeded(attempt);
            let lang = passwords::Lang::pick(user.interface_language.as_deref());
            super::devices::signed_in(
                app,
                &user.id,
                &user.email,
                &user.display_name(),
                lang.code(),
                device,
                client,
            )
            .await?;
            Ok(tokens::issue(&app.db, &app.keys, &user.id, user.role, None).await?)
        }
        // The attempt stays counted as a failure.
        _ => Err(ApiError::unauthorized("wrong email or password")),
    }
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = Tokens), (status = 401, description = "unknown, expired, revoked or reused token")))]
async fn refresh(
    State(app): State<AuthState>,
    Json(body): Json<RefreshBody>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(exchange(&app, &body.refresh_token).await?))
}

/// Exchanges a refresh token for the session's next tokens.
pub(super) async fn exchange(app: &AuthState, refresh_token: &str) -> ApiResult<Tokens> {
    match tokens::consume(&app.db, &app.keys, refresh_token).await? {
        Ok((user_id, family)) => {
            let user = user_by_id(&app.db, &user_id)
                .await
                .map_err(|_| ApiError::unauthorized("this account no longer exists"))?;
            Ok(tokens::issue(&app.db, &app.keys, &user.id, user.role, Some(&family)).await?)
        }
        Err(RefreshRefusal::Reused) => Err(ApiError::Unauthorized {
            code: "refresh_reused",
            message: "this refresh token was already used; every session it started has been ended: sign in again".into(),
        }),
        Err(RefreshRefusal::Ended) => Err(ApiError::Unauthorized {
            code: "refresh_expired",
            message: "this session has ended: sign in again".into(),
        }),
        Err(RefreshRefusal::Unknown) => Err(ApiError::Unauthorized {
            code: "invalid_token",
            message: "unknown refresh token".into(),
        }),
    }
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "the session is ended")), security(("bearer" = [])))]
async fn logout(State(app): State<AuthState>, user: AuthUser) -> ApiResult<StatusCode> {
    tokens::revoke_family(&app.db, &app.keys, &user.family).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = ChangePassword,
    responses((status = 204, description = "changed; other sessions are ended")), security(("bearer" = [])))]
async fn change_password(
    State(app): State<AuthState>,
    user: AuthUser,
    Json(body): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    let row = user_by_id(&app.db, &user.id).await?;
    if !passwords::verify(body.current_password, Some(row.password_hash.clone())).await? {
        return Err(ApiError::invalid(
            "current_password",
            "the current password is wrong",
        ));
    }
    let lang = passwords::Lang::pick(row.interface_language.as_deref());
    if let Some(problem) = passwords::policy(&body.new_password, &row.email, lang) {
        return Err(ApiError::invalid("new_password", problem));
    }
    let hash = passwords::hash(body.new_password).await?;
    let now = now_ms();
    // The change and the notice of it commit together.
    let mut batch = Batch::default();
    batch.push(
        "UPDATE type::record('user', $id) SET password_hash = $hash, password_changed_at = $now;",
        [
            ("id".to_string(), json!(user.id)),
            ("hash".to_string(), json!(hash)),
            ("now".to_string(), json!(now)),
        ],
    );
    password_changed_notice(&mut batch, &app, &row, lang, now);
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    tokens::revoke_others(&app.db, &app.keys, &user.id, Some(&user.family)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds to `batch` the security notice that `row`'s password changed at `now` (ms), with a
/// link to reset it for someone who did not change it.
pub(super) fn password_changed_notice(
    batch: &mut Batch,
    app: &AuthState,
    row: &UserRow,
    lang: passwords::Lang,
    now: i64,
) {
    let when = crate::store::utc_minute(now);
    batch.notify(
        &Notice {
            template: "password_changed",
            category: Category::Security,
            user: Some(row.id.clone()),
            to: row.email.clone(),
            lang: lang.code().to_string(),
            vars: json!({
                "name": row.display_name(),
                "when": when,
                "link": app.settings.link("/forgot-password"),
            }),
        },
        &app.routing,
        "pc",
    );
}

#[utoipa::path(delete, path = "/v1/me", tag = "account", request_body = DeleteAccount,
    responses((status = 204, description = "the account and everything about it is deleted")), security(("bearer" = [])))]
async fn delete_account(
    State(app): State<AuthState>,
    user: AuthUser,
    Json(body): Json<DeleteAccount>,
) -> ApiResult<StatusCode> {
    let row = user_by_id(&app.db, &user.id).await?;
    if !passwords::verify(body.password, Some(row.password_hash)).await? {
        return Err(ApiError::invalid("password", "the password is wrong"));
    }
    let rooms: Vec<&dyn PersonalData> = app.personal.iter().map(AsRef::as_ref).collect();
    for room in &rooms {
        room.release(&user.id).await.map_err(|e| {
            let id = crate::http::report("an account's outside services could not be ended", &e);
            ApiError::Unavailable(format!(
                "your subscription could not be canceled at the payment provider, so nothing was deleted: try again later (support id {id})"
            ))
        })?;
    }
    tokens::revoke_others(&app.db, &app.keys, &user.id, None).await?;
    for room in &rooms {
        room.forget(&user.id);
    }
    personal::delete(
        &app.db,
        &user.id,
        &rooms,
        "DELETE type::record('user', $u);",
    )
    .await?;
    tracing::info!(user = %user.id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Everything the service holds about a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    /// When the export was made (RFC 3339).
    exported_at: String,
    /// The account, without its password hash.
    account: Value,
    /// Each room's part, by key: today `sessions` (refresh tokens are stored hashed; the
    /// hashes are not exported), `conversations` (each with its messages), `vocabulary` (with
    /// its review schedule), `turn_stats`, `usage` and `notifications` (what was sent, without
    /// its contents).
    #[serde(flatten)]
    #[schema(additional_properties)]
    parts: serde_json::Map<String, Value>,
}

/// The account room's part of a person's data: their sessions.
pub struct Accounts;

impl PersonalData for Accounts {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "sessions",
                "SELECT family, created_at, expires_at, used_at, revoked FROM refresh_token WHERE user = $u ORDER BY created_at",
            ),
            (
                "devices",
                "SELECT first_seen, last_seen FROM known_device WHERE user = $u ORDER BY first_seen",
            ),
        ]
    }

    fn delete(&self) -> &'static str {
        "DELETE refresh_token WHERE user = $u; DELETE account_token WHERE user = $u; DELETE known_device WHERE user = $u;"
    }
}

#[utoipa::path(get, path = "/v1/me/export", tag = "account",
    responses((status = 200, body = Export)), security(("bearer" = [])))]
async fn export(State(app): State<AuthState>, user: AuthUser) -> ApiResult<Json<Export>> {
    let u = json!({"u": user.id});
    let mut account: Vec<Value> = app
        .db
        .rows("SELECT record::id(id) AS id, email, email_verified_at, role, created_at, password_changed_at, time_zone, profile FROM type::record('user', $u)", u)
        .await?;
    let rooms: Vec<&dyn PersonalData> = app.personal.iter().map(AsRef::as_ref).collect();
    let parts = personal::export(&app.db, &user.id, &rooms).await?;
    Ok(Json(Export {
        exported_at: crate::store::rfc3339(now_ms()),
        account: account.pop().ok_or(ApiError::NotFound("account"))?,
        parts,
    }))
}
