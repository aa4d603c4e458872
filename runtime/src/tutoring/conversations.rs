//! Conversations and their messages: the rows, the queries, and the CRUD routes. History lives
//! here, on the server, so it follows the learner across devices. Every query is scoped to
//! the caller: someone else's conversation is a 404, the same as one that does not exist.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::profile::{Cefr, Profile, language};
use super::tutor as types;
use crate::api::{ApiError, ApiResult, AppState, AuthUser, Json, Path, Query};
use crate::auth::routes::user_by_id;
use crate::plugins::manifest;
use crate::store::{Db, StoreResult, new_id, now_ms};

/// How a conversation is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChatMode {
    /// Explicit corrections, explained.
    Tutor,
    /// Natural conversation with recasts.
    Conversation,
    /// A scenario with roles and a goal.
    RolePlay,
}

impl ChatMode {
    /// As the plugin contract spells it.
    pub fn wit(self) -> types::ChatMode {
        match self {
            ChatMode::Tutor => types::ChatMode::Tutor,
            ChatMode::Conversation => types::ChatMode::Conversation,
            ChatMode::RolePlay => types::ChatMode::RolePlay,
        }
    }

    fn manifest(self) -> manifest::Mode {
        match self {
            ChatMode::Tutor => manifest::Mode::Tutor,
            ChatMode::Conversation => manifest::Mode::Conversation,
            ChatMode::RolePlay => manifest::Mode::RolePlay,
        }
    }

    /// The first-party personality for the mode.
    pub fn default_personality(self) -> &'static str {
        match self {
            ChatMode::Tutor => "tutor",
            ChatMode::Conversation => "partner",
            ChatMode::RolePlay => "roleplay",
        }
    }
}

/// A conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    /// Id.
    pub id: String,
    /// Owner (not shown in the API).
    #[serde(skip_serializing)]
    pub user: String,
    /// Title.
    pub title: String,
    /// The tutor plugin answering.
    pub personality: String,
    /// Mode.
    pub mode: ChatMode,
    /// Target language.
    pub language: String,
    /// Role-play scenario id.
    #[serde(default)]
    pub scenario: Option<String>,
    /// Topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// Archived conversations are listed only on request.
    pub archived: bool,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last activity (Unix ms).
    pub updated_at: i64,
    /// Highest message sequence number.
    pub last_seq: i64,
    /// Completed turns.
    pub turns: i64,
    /// Memory: summary of turns older than the window.
    #[serde(default, skip_serializing)]
    pub summary: Option<String>,
    /// Highest sequence number the summary covers.
    #[serde(skip_serializing)]
    pub summary_upto: i64,
    /// Facts the tutor must remember.
    #[serde(skip_serializing)]
    pub pinned: Vec<String>,
}

/// A correction of the learner's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Correction {
    /// As written.
    pub original: String,
    /// Fixed.
    pub corrected: String,
    /// Why, in the learner's native language.
    pub explanation: String,
    /// grammar, vocabulary, spelling, punctuation, word-order, register, other.
    pub category: String,
}

/// A word worth learning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Word {
    /// In the target language.
    pub term: String,
    /// In the native language.
    pub translation: String,
    /// An example sentence.
    #[serde(default)]
    pub example: Option<String>,
}

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Position in the conversation, from 1.
    pub seq: i64,
    /// Who said it.
    pub role: Speaker,
    /// The text.
    pub text: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Where it stands.
    pub status: Status,
    /// On learner messages: what was corrected.
    #[serde(default)]
    pub corrections: Vec<Correction>,
    /// On learner messages: words worth learning.
    #[serde(default)]
    pub vocabulary: Vec<Word>,
    /// A role-play's debrief.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debrief: Option<String>,
    /// Why answering failed, on failed learner messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The learner.
    Learner,
    /// The tutor.
    Tutor,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A learner's message being answered.
    Pending,
    /// A learner's message that was answered.
    Answered,
    /// A learner's message whose turn failed: retry it.
    Failed,
    /// A tutor's message.
    Ok,
}

impl Status {
    /// Whether the message was part of an answered exchange (and so belongs in the model's
    /// window and in summaries).
    pub fn settled(self) -> bool {
        matches!(self, Status::Answered | Status::Ok)
    }
}

/// The conversation `id` if `user` owns it.
pub async fn owned(db: &Db, user: &str, id: &str) -> ApiResult<Conversation> {
    fetch(db, id)
        .await?
        .filter(|c| c.user == user)
        .ok_or(ApiError::NotFound("conversation"))
}

/// The conversation `id`, whoever owns it.
pub async fn fetch(db: &Db, id: &str) -> StoreResult<Option<Conversation>> {
    if !valid_id(id) {
        return Ok(None);
    }
    db.one(
        "SELECT *, record::id(id) AS id FROM type::record('conversation', $id)",
        json!({"id": id}),
    )
    .await
}

/// Ids are 32 hex digits; anything else cannot name a record.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A learner's message as stored, with what the turn answering it needs.
#[derive(Debug)]
pub struct Appended {
    /// The conversation, with the message counted.
    pub conv: Conversation,
    /// The message, `pending`.
    pub message: Message,
    /// Its owner's profile, as of this message.
    pub profile: Profile,
}

/// Stores `text` as the next learner message of conversation `id`, `pending`. One
/// transaction also moves the conversation on and reads its owner's profile, so a turn
/// starts with one query. With `settle`, a message left `pending` before it (a restart cut
/// its turn off) is marked failed first. `None` when the conversation is gone.
pub async fn append_learner(
    db: &Db,
    id: &str,
    text: String,
    settle: bool,
) -> StoreResult<Option<Appended>> {
    const SETTLE: &str = "UPDATE type::record('message', [$c, $conv.last_seq - 1])
            SET status = 'failed', error = 'interrupted' WHERE status = 'pending';";
    let sql = format!(
        "BEGIN TRANSACTION;
         LET $conv = UPDATE ONLY type::record('conversation', $c) SET last_seq += 1, updated_at = $now RETURN AFTER;
         IF $conv = NONE {{ THROW 'gone' }};
         {settle}
         CREATE type::record('message', [$c, $conv.last_seq]) CONTENT {{ conversation: $c, user: $conv.user, seq: $conv.last_seq,
            role: 'learner', text: $text, created_at: $now, status: 'pending', corrections: [], vocabulary: [] }} RETURN NONE;
         RETURN {{ conv: $conv, profile: (SELECT VALUE profile FROM ONLY type::record('user', $conv.user)) }};
         COMMIT TRANSACTION;",
        settle = if settle { SETTLE } else { "" }
    );
    let now = now_ms();
    let res = db
        .run(&sql, json!({"c": id, "now": now, "text": text}))
        .await;
    let mut out = match res {
        // The `RETURN`'s value; the other statements answer nothing worth reading.
        Ok(rows) => rows
            .into_iter()
            .rfind(|r| r.get("conv").is_some())
            .unwrap_or_default(),
        // The transaction cannot tell "gone" from a failure in a way that survives the
        // client, so a failure asks.
        Err(e) => {
            return match fetch(db, id).await? {
                None => Ok(None),
                Some(_) => Err(e),
            };
        }
    };
    let mut conv = out["conv"].take();
    conv["id"] = json!(id);
    let conv: Conversation = serde_json::from_value(conv)?;
    let profile: Option<Profile> = serde_json::from_value(out["profile"].take())?;
    let message = Message {
        seq: conv.last_seq,
        role: Speaker::Learner,
        text,
        created_at: now,
        status: Status::Pending,
        corrections: vec![],
        vocabulary: vec![],
        debrief: None,
        error: None,
    };
    Ok(Some(Appended {
        conv,
        message,
        profile: profile.unwrap_or_default(),
    }))
}

/// The message `seq` of `conversation`.
pub async fn message(db: &Db, conversation: &str, seq: i64) -> StoreResult<Option<Message>> {
    db.one(
        "SELECT * FROM type::record('message', [$c, $seq])",
        json!({"c": conversation, "seq": seq}),
    )
    .await
}

/// Messages with `seq > after`, oldest first, at most `limit`.
pub async fn messages_after(
    db: &Db,
    conversation: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    db.rows(
        // Seqs are dense, so the next `limit` messages are exactly this range.
        // A key range reads in key order; no sort needed.
        "SELECT * FROM message:[$c, $from]..[$c, $to]",
        json!({"c": conversation, "from": after.saturating_add(1), "to": after.saturating_add(1).saturating_add(limit)}),
    )
    .await
}

/// The newest `limit` messages with `seq < before`, oldest first. Seqs are dense, so this
/// reads exactly the range `before - limit .. before`: pass at most `last_seq + 1`.
pub async fn messages_before(
    db: &Db,
    conversation: &str,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    db.rows(
        "SELECT * FROM message:[$c, $from]..[$c, $before]",
        json!({"c": conversation, "before": before, "from": before.saturating_sub(limit)}),
    )
    .await
}

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

/// A tutor personality on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tutor {
    name: String,
    display_name: String,
    description: String,
    languages: Vec<String>,
    modes: Vec<String>,
    levels: Vec<String>,
    scenarios: Vec<ScenarioInfo>,
}

/// A role-play scenario.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioInfo {
    id: String,
    title: String,
    setting: String,
    learner_role: String,
    tutor_role: String,
    goal: String,
}

/// The routes for conversations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, remove))
        .routes(routes!(list_messages))
        .routes(routes!(tutors))
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
    responses((status = 201, body = Conversation), (status = 422, description = "invalid field")), security(("bearer" = [])))]
async fn create(
    State(app): State<AppState>,
    user: AuthUser,
    Json(body): Json<NewConversation>,
) -> ApiResult<(StatusCode, Json<Conversation>)> {
    let profile = user_by_id(&app, &user.id).await?.profile;
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
    let personality = body
        .personality
        .unwrap_or_else(|| mode.default_personality().to_string());
    let plugin = app
        .host
        .get(&personality)
        .filter(|p| p.manifest.plugin.kind == manifest::Kind::Tutor)
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
        let base = language.split('-').next().unwrap_or(&language);
        if !info
            .languages
            .0
            .iter()
            .any(|l| l.0 == language || l.0 == base)
        {
            return Err(ApiError::invalid(
                "language",
                format!("`{personality}` does not teach `{language}`"),
            ));
        }
        let level = profile.level(&language);
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
    let scenario = text_field("scenario", body.scenario, 64)?;
    if mode == ChatMode::RolePlay {
        let offered = app.tutors.scenarios(&personality).await.map_err(|e| {
            let id = crate::api::report("a personality could not list its scenarios", &e);
            ApiError::Unavailable(format!(
                "the personality is unavailable right now: try again (support id {id})"
            ))
        })?;
        match &scenario {
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
    } else if scenario.is_some() {
        return Err(ApiError::invalid("scenario", "scenarios are for role-play"));
    }
    let topic = text_field("topic", body.topic, 200)?;
    let title =
        text_field("title", body.title, 200)?.unwrap_or_else(|| match (&topic, &scenario) {
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
        id: new_id(),
        user: user.id.clone(),
        title,
        personality,
        mode,
        language,
        scenario,
        topic,
        archived: false,
        created_at: now,
        updated_at: now,
        last_seq: 0,
        turns: 0,
        summary: None,
        summary_upto: 0,
        pinned: Vec::new(),
    };
    app.db
        .exec(
            "CREATE type::record('conversation', $id) CONTENT {
                user: $c.user, title: $c.title, personality: $c.personality, mode: $c.mode, language: $c.language,
                scenario: $scenario, topic: $topic, archived: false, created_at: $c.created_at,
                updated_at: $c.updated_at, last_seq: 0, turns: 0, summary_upto: 0, pinned: [] }",
            json!({"id": c.id, "c": {"user": c.user, "title": c.title, "personality": c.personality, "mode": c.mode,
                   "language": c.language, "created_at": now, "updated_at": now},
                   "scenario": c.scenario, "topic": c.topic}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(c)))
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
    State(app): State<AppState>,
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
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    Ok(Json(owned(&app.db, &user.id, &id).await?))
}

#[utoipa::path(patch, path = "/v1/conversations/{id}", tag = "conversations", request_body = ConversationPatch,
    responses((status = 200, body = Conversation)), security(("bearer" = [])))]
async fn update(
    State(app): State<AppState>,
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
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    owned(&app.db, &user.id, &id).await?;
    app.conversations.forget(&id);
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
    State(app): State<AppState>,
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

#[utoipa::path(get, path = "/v1/tutors", tag = "conversations", responses((status = 200, body = [Tutor])))]
async fn tutors(State(app): State<AppState>) -> ApiResult<Json<Vec<Tutor>>> {
    let mut out = Vec::new();
    for p in app.host.list() {
        let Some(info) = &p.manifest.tutor else {
            continue;
        };
        let scenarios = app.tutors.scenarios(p.name()).await.unwrap_or_default();
        out.push(Tutor {
            name: p.name().to_string(),
            display_name: info.display_name.0.clone(),
            description: p.manifest.plugin.description.0.clone(),
            languages: info.languages.0.iter().map(|l| l.0.clone()).collect(),
            modes: info.modes.0.iter().map(|m| m.to_string()).collect(),
            levels: info
                .levels
                .0
                .iter()
                .map(|l| Cefr::from(*l).as_str().to_string())
                .collect(),
            scenarios: scenarios
                .into_iter()
                .map(|s| ScenarioInfo {
                    id: s.id,
                    title: s.title,
                    setting: s.setting,
                    learner_role: s.learner_role,
                    tutor_role: s.tutor_role,
                    goal: s.goal,
                })
                .collect(),
        });
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "0123456789abcdef0123456789abcdef";

    async fn seeded() -> Db {
        let db = Db::connect("mem://", None).await.unwrap();
        db.exec(
            "CREATE user:u CONTENT { email: 'a@example.com', password_hash: 'x', role: 'learner', created_at: 0,
                password_changed_at: 0, profile: { display_name: 'Ana', targets: [{ language: 'es', level: 'B1' }] } };
             CREATE type::record('conversation', $c) CONTENT { user: 'u', title: 't', personality: 'p', mode: 'tutor', language: 'es',
                archived: false, created_at: 0, updated_at: 0, last_seq: 0, turns: 0, summary_upto: 0, pinned: [] };",
            json!({"c": C}),
        )
        .await
        .unwrap();
        db
    }

    #[tokio::test]
    async fn appending_numbers_messages_stores_them_pending_and_reads_the_profile() {
        let db = seeded().await;
        let a = append_learner(&db, C, "hola".into(), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.conv.id.as_str(), a.conv.last_seq, a.message.seq),
            (C, 1, 1)
        );
        assert_eq!(a.profile.display_name, "Ana");
        let b = append_learner(&db, C, "otra".into(), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.message.seq, 2);
        let stored = message(&db, C, 2).await.unwrap().unwrap();
        assert_eq!(
            (stored.text.as_str(), stored.status),
            ("otra", Status::Pending)
        );
        assert_eq!(fetch(&db, C).await.unwrap().unwrap().last_seq, 2);
    }

    #[tokio::test]
    async fn settling_fails_a_message_a_restart_left_pending() {
        let db = seeded().await;
        append_learner(&db, C, "cut off".into(), false)
            .await
            .unwrap()
            .unwrap();
        append_learner(&db, C, "again".into(), true)
            .await
            .unwrap()
            .unwrap();
        let first = message(&db, C, 1).await.unwrap().unwrap();
        assert_eq!(first.status, Status::Failed);
        assert_eq!(first.error.as_deref(), Some("interrupted"));
    }

    #[tokio::test]
    async fn appending_to_a_missing_conversation_is_none_and_stores_nothing() {
        let db = seeded().await;
        assert!(
            append_learner(&db, "fedcba9876543210fedcba9876543210", "hola".into(), true)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            message(&db, "fedcba9876543210fedcba9876543210", 1)
                .await
                .unwrap()
                .is_none()
        );
    }
}
