//! The conversation routes: create, list, read, rename or archive, delete, page through messages.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::*;
use crate::auth::AuthUser;
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::store::Db;
use crate::store::{new_id, now_ms};
use crate::tutoring::profile::{Cefr, language};
use crate::tutoring::state::{TurnDeps, TutoringState};

/// A new conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// `tutor` (default), `conversation` or `role-play`.
    #[serde(default)]
    mode: Option<ChatMode>,
    /// A tutor plugin's name; defaults to the first-party one for the mode.
    #[serde(default)]
    personality: Option<String>,
    /// Defaults to the learner's first target language.
    #[serde(default)]
    language: Option<String>,
    /// A scenario id, for role-play (see `GET /v1/tutors`).
    #[serde(default)]
    #[schema(max_length = 64)]
    scenario: Option<String>,
    /// Something to talk about.
    #[serde(default)]
    #[schema(max_length = 200)]
    topic: Option<String>,
    /// Defaults to one made from the mode and topic.
    #[serde(default)]
    #[schema(max_length = 200)]
    title: Option<String>,
}

/// Changes to a conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationPatch {
    /// A new title: not blank, at most 200 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: Option<String>,
    #[serde(default)]
    archived: Option<bool>,
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` (or `before`) for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Paging of conversations.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 100; 20 by default.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// List archived conversations instead.
    #[serde(default)]
    archived: bool,
}

/// Paging of messages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessageParams {
    /// Older than this sequence number (from `next_cursor`).
    before: Option<i64>,
    /// Newer than this sequence number (catching up).
    after: Option<i64>,
    /// 1 to 200; 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The routes for conversations.
pub fn router() -> OpenApiRouter<TutoringState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, remove))
        .routes(routes!(list_messages))
}

fn limit(v: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("limit", format!("use 1 to {max}"))),
    }
}

fn text_field(field: &'static str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("use at most {max} characters"),
        )),
        other => Ok(other),
    }
}

#[utoipa::path(post, path = "/v1/conversations", tag = "conversations", request_body = NewConversation,
    responses((status = 201, body = Conversation),
        (status = 402, description = "`plan_limit`: the account's plan does not include this mode or personality; the message says what to do"),
        (status = 422, description = "invalid field")), security(("bearer" = [])))]
async fn create(
    State(app): State<TutoringState>,
    user: AuthUser,
    Json(body): Json<NewConversation>,
) -> ApiResult<(StatusCode, Json<Conversation>)> {
    let profile = crate::tutoring::profile::load(&app.db, &user.id).await?;
    let mode = body.mode.unwrap_or(ChatMode::Tutor);
    let language = match body.language {
        Some(l) => language("language", &l)?,
        None => profile
            .targets
            .first()
            .map(|t| t.language.clone())
            .ok_or_else(|| {
                ApiError::invalid(
                    "language",
                    "name a target language, or set one in your profile first",
                )
            })?,
    };
    let level = profile.level(&language);
    let spec = Opening {
        personality: body
            .personality
            .unwrap_or_else(|| mode.default_personality().to_string()),
        mode,
        scenario: text_field("scenario", body.scenario, 64)?,
        topic: text_field("topic", body.topic, 200)?,
        title: text_field("title", body.title, 200)?,
        language,
        level: None,
    };
    let schools = app.scope.schools_of(&user.id).await?;
    check_offer(&app, &spec, level, &schools).await?;
    if let Some(why) = app.plans.refuses(&user.id, mode, &spec.personality).await? {
        return Err(ApiError::PlanLimit(why));
    }
    Ok((
        StatusCode::CREATED,
        Json(open(&app.db, &user.id, &new_id(), spec).await?),
    ))
}

/// What a conversation is opened with, checked by [`check_offer`].
#[derive(Debug, Clone)]
pub struct Opening {
    /// The tutor plugin.
    pub personality: String,
    /// How it is run.
    pub mode: ChatMode,
    /// Its target language.
    pub language: String,
    /// A role-play scenario the personality offers.
    pub scenario: Option<String>,
    /// Something to talk about.
    pub topic: Option<String>,
    /// Its title; one is made from the mode and topic when none is given.
    pub title: Option<String>,
    /// The level it runs at instead of the learner's (a class assignment's).
    pub level: Option<Cefr>,
}

/// Whether `spec`'s personality offers it at `level`: the personality exists (and, when a
/// school's own, belongs to one of `schools`), runs the mode, teaches the language and serves
/// the level, and a role-play names one of its scenarios. Each refusal names the field and
/// what would do; another school's tutor looks exactly like one that does not exist.
pub async fn check_offer(
    app: &TurnDeps,
    spec: &Opening,
    level: Cefr,
    schools: &[String],
) -> ApiResult<()> {
    let personality = &spec.personality;
    let mode = spec.mode;
    let language = &spec.language;
    let mine = crate::tutoring::state::school_of(personality)
        .is_none_or(|school| schools.iter().any(|s| s == school));
    let plugin = app
        .tutors
        .get(personality)
        .filter(|_| mine)
        .ok_or_else(|| {
            ApiError::invalid(
                "personality",
                format!("no tutor personality is called `{personality}`: see GET /v1/tutors"),
            )
        })?;
    if let Some(info) = &plugin.manifest.tutor {
        if !info.modes.0.contains(&mode.manifest()) {
            return Err(ApiError::invalid(
                "mode",
                format!(
                    "`{personality}` does not run this mode; it runs {}",
                    info.modes
                        .0
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let base = language.split('-').next().unwrap_or(language);
        if !info
            .languages
            .0
            .iter()
            .any(|l| &l.0 == language || l.0 == base)
        {
            return Err(ApiError::invalid(
                "language",
                format!("`{personality}` does not teach `{language}`"),
            ));
        }
        if !info.levels.0.iter().any(|l| Cefr::from(*l) == level) {
            return Err(ApiError::invalid(
                "personality",
                format!(
                    "`{personality}` does not serve level {}: pick another personality",
                    level.as_str()
                ),
            ));
        }
    }
    if mode == ChatMode::RolePlay {
        let offered = app.tutors.scenarios(personality).await.map_err(|e| {
            let id = crate::http::report("a personality could not list its scenarios", &e);
            ApiError::Unavailable(format!(
                "the personality is unavailable right now: try again (support id {id})"
            ))
        })?;
        match &spec.scenario {
            Some(s) if offered.iter().any(|o| &o.id == s) => {}
            _ => {
                return Err(ApiError::invalid(
                    "scenario",
                    format!(
                        "pick a scenario: {}",
                        offered
                            .iter()
                            .map(|o| o.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    } else if spec.scenario.is_some() {
        return Err(ApiError::invalid("scenario", "scenarios are for role-play"));
    }
    Ok(())
}

/// Opens conversation `id` for `user` as `spec` says ([`check_offer`] and the plan were
/// checked by the caller).
pub async fn open(db: &Db, user: &str, id: &str, spec: Opening) -> ApiResult<Conversation> {
    let Opening {
        personality,
        mode,
        language,
        scenario,
        topic,
        title,
        level,
    } = spec;
    let title = title.unwrap_or_else(|| match (&topic, &scenario) {
        (Some(t), _) => t.clone(),
        (None, Some(s)) => format!("Role-play: {s}"),
        (None, None) => format!(
            "{} ({})",
            match mode {
                ChatMode::Tutor => "Lesson",
                ChatMode::Conversation => "Conversation",
                ChatMode::RolePlay => "Role-play",
            },
            language
        ),
    });
    let now = now_ms();
    let c = Conversation {
        id: id.to_string(),
        user: user.to_string(),
        title,
        personality,
        mode,
        language,
        scenario,
        topic,
        level,
        archived: false,
        created_at: now,
        updated_at: now,
        last_seq: 0,
        turns: 0,
        summary: None,
        summary_upto: 0,
        pinned: Vec::new(),
    };
    // Absent, not null: the optional columns are `option<…>`.
    let mut row = json!({"user": c.user, "title": c.title, "personality": c.personality, "mode": c.mode,
        "language": c.language, "archived": false, "created_at": now, "updated_at": now,
        "last_seq": 0, "turns": 0, "summary_upto": 0, "pinned": []});
    for (key, value) in [("scenario", &c.scenario), ("topic", &c.topic)] {
        if let Some(v) = value {
            row[key] = json!(v);
        }
    }
    if let Some(l) = c.level {
        row["level"] = json!(l);
    }
    db.exec(
        "CREATE type::record('conversation', $id) CONTENT $row",
        json!({"id": c.id, "row": row}),
    )
    .await?;
    Ok(c)
}

fn encode_cursor(updated_at: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{updated_at}.{id}"))
}

fn decode_cursor(cursor: &str) -> ApiResult<(i64, String)> {
    let bad = || ApiError::invalid("cursor", "not a cursor this API gave out");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, id.to_string()))
}

#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", params(ListParams),
    responses((status = 200, body = Page<Conversation>)), security(("bearer" = [])))]
async fn list(
    State(app): State<TutoringState>,
    user: AuthUser,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Page<Conversation>>> {
    let n = limit(p.limit, 20, 100)?;
    let (t, id) = match &p.cursor {
        Some(c) => decode_cursor(c)?,
        None => (i64::MAX, String::new()),
    };
    let mut items: Vec<Conversation> = app
        .db
        .rows(
            "SELECT *, record::id(id) AS id FROM conversation
             WHERE user = $u AND archived = $archived AND (updated_at < $t OR (updated_at = $t AND record::id(id) < $id))
             ORDER BY updated_at DESC, id DESC LIMIT $n",
            json!({"u": user.id, "archived": p.archived, "t": t, "id": id, "n": n + 1}),
        )
        .await?;
    let next_cursor = if items.len() as i64 > n {
        items.truncate(n as usize);
        items.last().map(|c| encode_cursor(c.updated_at, &c.id))
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}

#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    responses((status = 200, body = Conversation), (status = 404, description = "no such conversation")), security(("bearer" = [])))]
async fn read(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    Ok(Json(owned(&app.db, &user.id, &id).await?))
}

#[utoipa::path(patch, path = "/v1/conversations/{id}", tag = "conversations", request_body = ConversationPatch,
    responses((status = 200, body = Conversation)), security(("bearer" = [])))]
async fn update(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(patch): Json<ConversationPatch>,
) -> ApiResult<Json<Conversation>> {
    let mut c = owned(&app.db, &user.id, &id).await?;
    if let Some(title) = patch.title {
        c.title = text_field("title", Some(title), 200)?
            .ok_or_else(|| ApiError::invalid("title", "a title cannot be empty"))?;
    }
    if let Some(a) = patch.archived {
        c.archived = a;
    }
    app.db
        .exec(
            "UPDATE type::record('conversation', $id) SET title = $title, archived = $archived",
            json!({"id": id, "title": c.title, "archived": c.archived}),
        )
        .await?;
    Ok(Json(c))
}

#[utoipa::path(delete, path = "/v1/conversations/{id}", tag = "conversations",
    responses((status = 204, description = "deleted with its messages")), security(("bearer" = [])))]
async fn remove(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    owned(&app.db, &user.id, &id).await?;
    app.running.forget(&id);
    app.db
        .exec(
            "BEGIN TRANSACTION; DELETE message:[$id, NONE]..=[$id, ..]; DELETE usage:[$u, NONE]..=[$u, ..] WHERE conversation = $id;
             DELETE type::record('conversation', $id); COMMIT TRANSACTION;",
            json!({"id": id, "u": user.id}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations", params(MessageParams),
    responses((status = 200, body = Page<Message>)), security(("bearer" = [])))]
async fn list_messages(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(p): Query<MessageParams>,
) -> ApiResult<Json<Page<Message>>> {
    let conv = owned(&app.db, &user.id, &id).await?;
    let n = limit(p.limit, 50, 200)?;
    if let Some(after) = p.after {
        let items = messages_after(&app.db, &id, after, n).await?;
        return Ok(Json(Page {
            items,
            next_cursor: None,
        }));
    }
    // Ranges are exact (seqs are dense), so start from the newest message, not from infinity.
    let before = p.before.unwrap_or(i64::MAX).min(conv.last_seq + 1);
    let items = messages_before(&app.db, &id, before, n + 1).await?;
    let more = items.len() as i64 > n;
    let items: Vec<Message> = if more { items[1..].to_vec() } else { items };
    let next_cursor = more
        .then(|| items.first().map(|m| m.seq.to_string()))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}
