//! Conversation memory: when the turns since the last summary outgrow the token budget, the
//! older ones are folded into a rolling summary by the model, in the background. Learners see
//! and steer it through `/v1/conversations/{id}/context`: read it, pin facts the tutor must
//! keep, or reset it. It lives in the conversation's row, so it survives restarts.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conversations::{self, Speaker, owned};
use super::state::{TurnDeps, TutoringState};
use super::turn::{record_usage, tokens, window};
use crate::auth::AuthUser;
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::plugins::types::{ChatMessage, CompletionRequest, Role};

/// Most pinned facts per conversation.
pub const MAX_PINS: usize = 20;
/// Longest pinned fact, in characters.
pub const MAX_PIN_CHARS: usize = 200;

/// Where to cut `pending` (the settled messages after the summary, oldest first) when they
/// outgrow `budget` tokens: the last seq to fold into the summary, keeping the newest half of
/// the budget verbatim. `None` when they fit, or when nothing would be folded.
fn cut(pending: &[conversations::Message], budget: usize) -> Option<i64> {
    let total: usize = pending.iter().map(|m| tokens(&m.text)).sum();
    if total <= budget {
        return None;
    }
    let mut kept = 0;
    for m in pending.iter().rev() {
        kept += tokens(&m.text);
        if kept > budget / 2 {
            // The message that crosses half the budget is folded too; if it is the newest,
            // the summary takes everything but nothing verbatim is lost: it is still in
            // the messages, only the model's window no longer repeats it.
            return Some(m.seq);
        }
    }
    None
}

/// Folds older turns into the summary when the window is over budget.
pub async fn compress_if_needed(app: &TurnDeps, id: &str) -> anyhow::Result<()> {
    let Some(conv) = conversations::fetch(&app.db, id).await? else {
        return Ok(());
    };
    let budget = app.context_tokens;
    let pending = conversations::messages_after(&app.db, id, conv.summary_upto, 400).await?;
    let pending: Vec<_> = pending.into_iter().filter(|m| m.status.settled()).collect();
    let Some(cut) = cut(&pending, budget) else {
        return Ok(());
    };
    let old: Vec<_> = pending.iter().filter(|m| m.seq <= cut).collect();
    let transcript = old
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                if m.role == Speaker::Tutor {
                    "Tutor"
                } else {
                    "Learner"
                },
                m.text
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut prompt = String::new();
    if let Some(s) = &conv.summary {
        prompt.push_str(&format!("Summary so far:\n{s}\n\n"));
    }
    prompt.push_str(&format!("New turns:\n{transcript}"));
    let request = CompletionRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "You keep the memory of a language-learning conversation. Merge the summary so far \
                          and the new turns into one summary of at most 150 words: facts about the learner, \
                          topics covered, recurring mistakes, promises made. Write plain prose."
                    .into(),
            },
            ChatMessage { role: Role::User, content: prompt },
        ],
        model: None,
        temperature: Some(0.2),
        max_tokens: Some(400),
        json: false,
    };
    let (summary, usage) = app.llm.complete(&request).await?;
    record_usage(
        app,
        Some(&conv.user),
        Some(&conv.id),
        &app.llm.settings().model,
        "memory",
        usage,
    )
    .await;
    let summary: String = summary.chars().take(4000).collect();
    // Only if nobody moved the summary meanwhile (a reset, or another compression).
    app.db
        .exec(
            "UPDATE type::record('conversation', $id) SET summary = $summary, summary_upto = $cut WHERE summary_upto = $old",
            json!({"id": id, "summary": summary, "cut": cut, "old": conv.summary_upto}),
        )
        .await?;
    tracing::debug!(conversation = %id, upto = cut, "memory compressed");
    Ok(())
}

/// What the tutor remembers of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Context {
    /// The summary of turns older than the window.
    summary: Option<String>,
    /// The last message the summary covers.
    summary_upto: i64,
    /// Facts the tutor must remember.
    pinned: Vec<String>,
    /// The verbatim messages the next turn will see, oldest first.
    window: Vec<WindowMessage>,
    /// Estimated tokens of the window.
    window_tokens: usize,
    /// The budget past which older turns are summarised.
    budget_tokens: usize,
}

/// A message in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowMessage {
    role: Speaker,
    text: String,
}

/// A fact to pin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Such as "I am vegetarian" or "my exam is on 3 June": not blank, at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pin: String,
}

/// What to forget.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResetParams {
    /// Remove only the pinned fact at this index (from 0); without it, reset everything.
    pin: Option<usize>,
}

/// The context routes.
pub fn router() -> OpenApiRouter<TutoringState> {
    OpenApiRouter::new().routes(routes!(read, pin, reset))
}

async fn view(app: &TurnDeps, user: &str, id: &str) -> ApiResult<Context> {
    let conv = owned(&app.db, user, id).await?;
    let recent = conversations::messages_before(&app.db, id, conv.last_seq + 1, 60).await?;
    let win = window(&recent, conv.summary_upto, app.context_tokens);
    Ok(Context {
        window_tokens: win.iter().map(|m| tokens(&m.content)).sum(),
        window: win
            .into_iter()
            .map(|m| WindowMessage {
                role: if m.role == Role::Assistant {
                    Speaker::Tutor
                } else {
                    Speaker::Learner
                },
                text: m.content,
            })
            .collect(),
        summary: conv.summary,
        summary_upto: conv.summary_upto,
        pinned: conv.pinned,
        budget_tokens: app.context_tokens,
    })
}

#[utoipa::path(get, path = "/v1/conversations/{id}/context", tag = "conversations",
    responses((status = 200, body = Context)), security(("bearer" = [])))]
async fn read(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Context>> {
    Ok(Json(view(&app, &user.id, &id).await?))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/context", tag = "conversations", request_body = Pin,
    responses((status = 201, body = Context), (status = 422, description = "empty, too long, or too many pins")), security(("bearer" = [])))]
async fn pin(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<Pin>,
) -> ApiResult<(StatusCode, Json<Context>)> {
    let conv = owned(&app.db, &user.id, &id).await?;
    let fact = body.pin.trim().to_string();
    if fact.is_empty() || fact.chars().count() > MAX_PIN_CHARS {
        return Err(ApiError::invalid(
            "pin",
            format!("use 1 to {MAX_PIN_CHARS} characters"),
        ));
    }
    if conv.pinned.len() >= MAX_PINS {
        return Err(ApiError::invalid(
            "pin",
            format!("a conversation holds at most {MAX_PINS} pinned facts: remove one first"),
        ));
    }
    app.db
        .exec(
            "UPDATE type::record('conversation', $id) SET pinned += $fact",
            json!({"id": id, "fact": fact}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&app, &user.id, &id).await?)))
}

#[utoipa::path(delete, path = "/v1/conversations/{id}/context", tag = "conversations", params(ResetParams),
    responses((status = 200, body = Context)), security(("bearer" = [])))]
async fn reset(
    State(app): State<TutoringState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(p): Query<ResetParams>,
) -> ApiResult<Json<Context>> {
    let conv = owned(&app.db, &user.id, &id).await?;
    match p.pin {
        Some(i) => {
            if i >= conv.pinned.len() {
                return Err(ApiError::invalid("pin", "no pinned fact at this index"));
            }
            let mut pinned = conv.pinned;
            pinned.remove(i);
            app.db
                .exec(
                    "UPDATE type::record('conversation', $id) SET pinned = $pinned",
                    json!({"id": id, "pinned": pinned}),
                )
                .await?;
        }
        None => {
            // The tutor forgets everything said so far; the messages stay readable.
            app.db
                .exec(
                    "UPDATE type::record('conversation', $id) SET summary = NONE, summary_upto = last_seq, pinned = []",
                    json!({"id": id}),
                )
                .await?;
        }
    }
    Ok(Json(view(&app, &user.id, &id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tutoring::conversations::{Message, Status};

    fn msg(seq: i64, words: usize) -> Message {
        Message {
            seq,
            role: if seq % 2 == 1 {
                Speaker::Learner
            } else {
                Speaker::Tutor
            },
            // "mot " is 4 characters: one token each, plus the per-message overhead.
            text: "mot ".repeat(words),
            created_at: 0,
            status: Status::Answered,
            corrections: vec![],
            vocabulary: vec![],
            debrief: None,
            error: None,
        }
    }

    #[test]
    fn nothing_is_cut_while_the_window_fits() {
        let pending: Vec<Message> = (1..=4).map(|s| msg(s, 10)).collect();
        // Each message is 14 tokens: 56 in all.
        assert_eq!(cut(&pending, 56), None);
        assert_eq!(cut(&[], 10), None);
    }

    #[test]
    fn the_cut_keeps_the_newest_half_of_the_budget_verbatim() {
        let pending: Vec<Message> = (1..=10).map(|s| msg(s, 10)).collect();
        // 140 tokens over a budget of 100: keep at most 50 verbatim (messages 7–10 are 56,
        // so 8–10 stay and 7, the one crossing half, is folded with everything before it).
        assert_eq!(cut(&pending, 100), Some(7));
        // A smaller budget folds more.
        assert_eq!(cut(&pending, 40), Some(9));
    }

    #[test]
    fn one_huge_newest_message_is_folded_rather_than_kept_past_the_budget() {
        let mut pending: Vec<Message> = (1..=3).map(|s| msg(s, 5)).collect();
        pending.push(msg(4, 500));
        assert_eq!(cut(&pending, 100), Some(4));
    }
}
