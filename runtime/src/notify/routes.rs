//! The notify room's HTTP face: a learner's notification settings (`/v1/me/notifications`)
//! and the one-click unsubscribe (`POST /unsubscribe?token=…`, RFC 8058), which needs no
//! sign-in: the signed link is the proof.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::preferences::{Preferences, Settings, SettingsPatch, Signer, parse_clock};
use crate::auth::{AuthUser, Gate, Keys};
use crate::http::{ApiError, ApiResult, Json, Query};
use crate::store::outbox::{Category, Routing};
use crate::store::{Batch, Db, now_ms};

/// What the notify room's handlers use.
#[derive(Clone)]
pub struct NotifyState {
    /// The database.
    pub db: Db,
    /// Token keys, to know who is signed in.
    pub keys: Arc<Keys>,
    /// The channels each category goes out on.
    pub routing: Arc<Routing>,
    /// Signs and checks unsubscribe links.
    pub signer: Arc<Signer>,
}

impl FromRef<NotifyState> for Gate {
    fn from_ref(s: &NotifyState) -> Gate {
        Gate {
            db: s.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// The notify room's routes.
pub fn router(state: NotifyState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(settings, update_settings))
        .routes(routes!(unsubscribe))
        .with_state(state)
}

#[utoipa::path(get, path = "/v1/me/notifications", tag = "notifications",
    responses((status = 200, body = Settings)), security(("bearer" = [])))]
async fn settings(State(s): State<NotifyState>, user: AuthUser) -> ApiResult<Json<Settings>> {
    let prefs = Preferences::load(&s.db, &user.id).await?;
    Ok(Json(prefs.view(&s.routing)))
}

#[utoipa::path(patch, path = "/v1/me/notifications", tag = "notifications", request_body = SettingsPatch,
    responses((status = 200, body = Settings),
        (status = 422, description = "an unknown time zone, an hour past 23, quiet hours not `HH:MM` or starting and ending at once, a channel the category does not use, or security notices turned off")),
    security(("bearer" = [])))]
async fn update_settings(
    State(s): State<NotifyState>,
    user: AuthUser,
    Json(patch): Json<SettingsPatch>,
) -> ApiResult<Json<Settings>> {
    let mut prefs = Preferences::load(&s.db, &user.id).await?;
    let mut batch = Batch::default();
    if let Some(tz) = patch.time_zone {
        let tz = crate::auth::routes::time_zone("time_zone", &tz)?;
        crate::auth::routes::set_time_zone(&mut batch, &user.id, &tz);
        prefs.time_zone = tz;
    }
    if let Some(hour) = patch.hour {
        if !(0.0..=23.0).contains(&hour) || hour.fract() != 0.0 {
            return Err(ApiError::invalid(
                "hour",
                "use a whole local hour from 0 to 23",
            ));
        }
        prefs.hour = hour as u8;
    }
    if let Some(day) = patch.digest_day {
        prefs.digest_day = day;
    }
    if let Some(quiet) = patch.quiet_hours {
        prefs.quiet = match quiet {
            None => None,
            Some(q) => {
                let bad =
                    || ApiError::invalid("quiet_hours", "write times as HH:MM, such as 22:00");
                let start = parse_clock(&q.start).ok_or_else(bad)?;
                let end = parse_clock(&q.end).ok_or_else(bad)?;
                if start == end {
                    return Err(ApiError::invalid(
                        "quiet_hours",
                        "quiet hours must end at another time than they start",
                    ));
                }
                Some((start, end))
            }
        };
    }
    for choice in patch.channels.unwrap_or_default() {
        if !choice.category.optional() && !choice.enabled {
            return Err(ApiError::invalid(
                "channels",
                "security notices (password and sign-in changes) are always sent",
            ));
        }
        if !s
            .routing
            .channels(choice.category)
            .contains(&choice.channel)
        {
            return Err(ApiError::invalid(
                "channels",
                format!(
                    "`{}` messages do not go out on `{}` on this server",
                    choice.category.as_str(),
                    choice.channel
                ),
            ));
        }
        prefs.set(choice.category, &choice.channel, choice.enabled);
    }
    let (sql, vars) = prefs.store(&user.id, now_ms());
    batch.push(sql, object(vars));
    batch.commit(&s.db).await?;
    Ok(Json(prefs.view(&s.routing)))
}

fn object(v: serde_json::Value) -> Vec<(String, serde_json::Value)> {
    match v {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The signed link's token.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct UnsubscribeQuery {
    /// From the `List-Unsubscribe` header or the message's footer.
    token: String,
}

/// What was turned off.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unsubscribed {
    /// The category no longer sent.
    pub category: Category,
    /// On this channel.
    pub channel: String,
}

#[utoipa::path(post, path = "/unsubscribe", tag = "notifications", params(UnsubscribeQuery),
    description = "One-click unsubscribe (RFC 8058): mail clients POST `List-Unsubscribe=One-Click` here; the web page's button POSTs here too. No sign-in: the link's signature is the proof. Repeating it changes nothing.",
    responses((status = 200, body = Unsubscribed), (status = 401, description = "`link_invalid`: the link was altered or is not this server's")))]
async fn unsubscribe(
    State(s): State<NotifyState>,
    Query(q): Query<UnsubscribeQuery>,
) -> ApiResult<Json<Unsubscribed>> {
    let (user, category, channel) = s.signer.check(&q.token).ok_or(ApiError::Unauthorized {
        code: "link_invalid",
        message: "this unsubscribe link is not valid: change your settings after signing in".into(),
    })?;
    // Security links are never signed; a forged one would fail the signature anyway.
    if category.optional() {
        let mut prefs = Preferences::load(&s.db, &user).await?;
        prefs.set(category, &channel, false);
        let (sql, vars) = prefs.store(&user, now_ms());
        // Only while the account exists: a link outliving it must not create a row.
        let mut batch = Batch::default();
        batch.push(
            &format!("IF record::exists(type::record('user', $np_user)) {{ {sql} }};"),
            object(vars),
        );
        batch.commit(&s.db).await?;
        tracing::info!(user = %user, category = category.as_str(), channel = %channel, "unsubscribed");
    }
    Ok(Json(Unsubscribed { category, channel }))
}
