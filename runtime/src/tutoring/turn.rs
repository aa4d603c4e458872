//! The turn pipeline: from a stored learner message to a stored, reviewed tutor reply.
//!
//! 1. Build the turn context: profile (read fresh, so a level change shows at once), mode,
//!    the recent window that fits the token budget, the memory summary and pinned facts.
//! 2. The tutor plugin plans the turn: a streamed reply request and an analysis request.
//! 3. Both run concurrently; reply pieces go to `emit` as they arrive, so a turn costs
//!    max(reply, analysis), not their sum.
//! 4. The plugin reviews the turn (corrections, vocabulary, level signal, debrief).
//! 5. The reply and review are stored with stats, vocabulary and usage.
//!
//! The learner's message is stored by the caller before this runs; a failure here leaves it
//! `failed`, so it can be retried and is never lost.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::conversations::{self, Conversation, Correction, Message, Speaker, Status, Word};
use super::memory;
use super::profile::{Cefr, Profile};
use super::progress;
use super::protocol::LevelSeen;
use super::state::TurnDeps;
use super::tutor::{self, TurnContext, TurnReview};
use crate::http::report;
use crate::llm::usage::UsageRow;
use crate::llm::{LlmError, Piece, Usage};
use crate::plugins::types::{self, ChatMessage, Role};
use crate::plugins::{CallError, PluginError};
use crate::store::now_ms;

/// What a finished turn produced.
#[derive(Debug, Clone, Serialize)]
pub struct Completed {
    /// The learner's message, now answered, with its corrections and vocabulary.
    pub learner: Message,
    /// The tutor's reply.
    pub reply: Message,
    /// The level the turn suggests, if the personality judged it.
    pub level: Option<LevelSeen>,
    /// Whether the unsummarised turns now outgrow the memory budget.
    #[serde(skip)]
    pub over_budget: bool,
}

/// Why a turn failed, as the learner hears it: a stable code, a fixed message (clients
/// translate by code), and a support id under which the detail was logged. What the model or
/// a plugin said is never part of it, nor stored with the message.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// `llm_unavailable`, `tutor_unavailable`, `tutor_refused`, `internal`.
    pub code: &'static str,
    /// For the learner.
    pub message: String,
    /// Whether retrying the same message may work.
    pub retryable: bool,
    /// Quote it to support: the logs have the detail under it.
    pub support_id: Option<String>,
}

impl Failure {
    fn internal(e: impl std::fmt::Display) -> Failure {
        Failure {
            code: "internal",
            message: "something went wrong on our side; your message is saved — try again".into(),
            retryable: true,
            support_id: Some(report("a turn failed", &e)),
        }
    }
}

fn from_llm(e: LlmError) -> Failure {
    Failure {
        code: "llm_unavailable",
        message: "the tutor could not answer right now; your message is saved — try again".into(),
        retryable: true,
        support_id: Some(report("the model failed a turn", &e)),
    }
}

/// Longest refusal a tutor may show a learner.
const MAX_REFUSAL: usize = 300;

fn from_plugin(e: CallError) -> Failure {
    match e {
        // A refusal is the personality's word to the learner (a scenario it does not play…),
        // so it is shown — as one short line.
        CallError::Plugin {
            error: PluginError::InvalidInput(m),
            ..
        } => Failure {
            code: "tutor_refused",
            message: crate::plugins::escape_controls(&m)
                .chars()
                .take(MAX_REFUSAL)
                .collect(),
            retryable: false,
            support_id: None,
        },
        other => Failure {
            code: "tutor_unavailable",
            message:
                "the tutor personality is unavailable right now; your message is saved — try again"
                    .into(),
            retryable: true,
            support_id: Some(report("the tutor plugin failed a turn", &other)),
        },
    }
}

/// Rough token count of `text` (4 characters a token), for the window budget.
pub fn tokens(text: &str) -> usize {
    text.len().div_ceil(4) + 4
}

/// Messages read back for a turn's window.
const RECENT: i64 = 60;

/// Builds the context of the turn answering `learner` in `conv`, and the tokens of every
/// unsummarised answered message before it (`None` when there are more than the turn read).
/// `cached` is the conversation actor's copy of the newest messages; without it they are
/// read. Also answers the messages it used (those before `learner`).
pub async fn context(
    app: &TurnDeps,
    conv: &Conversation,
    profile: &Profile,
    learner: &Message,
    cached: Option<Vec<Message>>,
) -> Result<(TurnContext, Option<usize>, Vec<Message>), Failure> {
    let recent = match cached {
        // A retried message is the newest one: the window is what came before it.
        Some(mut c) => {
            c.retain(|m| m.seq < learner.seq);
            c
        }
        None => conversations::messages_before(&app.db, &conv.id, learner.seq, RECENT)
            .await
            .map_err(Failure::internal)?,
    };
    let history = window(&recent, conv.summary_upto, app.context_tokens);
    let saw_all = learner.seq - RECENT <= conv.summary_upto + 1;
    let unsummarised = saw_all.then(|| {
        recent
            .iter()
            .filter(|m| m.seq > conv.summary_upto && m.status.settled())
            .map(|m| tokens(&m.text))
            .sum()
    });
    let ctx = TurnContext {
        profile: profile.for_turn(&conv.language, conv.level),
        mode: conv.mode.wit(),
        scenario: conv.scenario.clone(),
        topic: conv.topic.clone(),
        history,
        memory: conv.summary.clone(),
        pinned: conv.pinned.clone(),
        message: learner.text.clone(),
        turn: conv.turns as u32,
    };
    Ok((ctx, unsummarised, recent))
}

/// The newest messages after a turn, as the next turn's `cached`: `recent` (what the turn
/// read), then the learner's message and, when answered, the reply; at most [`RECENT`].
fn next_recent(
    mut recent: Vec<Message>,
    learner: &Message,
    outcome: &Result<Completed, Failure>,
) -> Vec<Message> {
    match outcome {
        Ok(done) => recent.extend([done.learner.clone(), done.reply.clone()]),
        Err(f) => {
            let mut failed = learner.clone();
            failed.status = Status::Failed;
            failed.error = Some(f.code.to_string());
            recent.push(failed);
        }
    }
    let excess = recent.len().saturating_sub(RECENT as usize);
    recent.drain(..excess);
    recent
}

/// The newest messages after `summary_upto` that fit in `budget` tokens, oldest first.
/// Failed learner messages are left out: they were never answered.
pub fn window(recent: &[Message], summary_upto: i64, budget: usize) -> Vec<ChatMessage> {
    let mut used = 0;
    let mut out = Vec::new();
    for m in recent
        .iter()
        .rev()
        .filter(|m| m.seq > summary_upto && m.status.settled())
    {
        used += tokens(&m.text);
        if used > budget && !out.is_empty() {
            break;
        }
        out.push(ChatMessage {
            role: if m.role == Speaker::Tutor {
                Role::Assistant
            } else {
                Role::User
            },
            content: m.text.clone(),
        });
    }
    out.reverse();
    out
}

/// Runs the turn answering `learner` (already stored) and stores its result. `profile` is
/// its owner's, read with the message, so a level change shows at once. `emit` gets each
/// piece of the reply as it arrives. `cached` is the conversation's newest messages if the
/// caller keeps them; the second answer is their new state for the next turn (`None`
/// when the turn could not tell).
pub async fn run(
    app: TurnDeps,
    conv: Conversation,
    learner: Message,
    profile: Profile,
    cached: Option<Vec<Message>>,
    emit: impl Fn(String) + Send,
) -> (Result<Completed, Failure>, Option<Vec<Message>>) {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    metrics::counter!("penpal_turns_started_total").increment(1);
    let span = tracing::info_span!("turn", conversation = %conv.id, plugin = %conv.personality,
        model = %app.llm.settings().model, seq = learner.seq);
    let first = std::sync::atomic::AtomicBool::new(true);
    let emit = move |text: String| {
        if first.swap(false, std::sync::atomic::Ordering::Relaxed) {
            metrics::histogram!("penpal_turn_first_delta_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        emit(text)
    };
    let (outcome, next) = async {
        let (ctx, unsummarised, recent) =
            match context(&app, &conv, &profile, &learner, cached).await {
                Ok(c) => c,
                Err(f) => return (Err(f), None),
            };
        let outcome = answer(&app, &conv, &profile, &learner, &ctx, unsummarised, emit).await;
        let next = next_recent(recent, &learner, &outcome);
        (outcome, Some(next))
    }
    .instrument(span)
    .await;
    match &outcome {
        Ok(_) => metrics::counter!("penpal_turns_completed_total").increment(1),
        Err(f) => metrics::counter!("penpal_turns_failed_total", "code" => f.code).increment(1),
    }
    (outcome, next)
}

/// Plans, answers, reviews and stores the turn whose context is `ctx`.
async fn answer(
    app: &TurnDeps,
    conv: &Conversation,
    profile: &Profile,
    learner: &Message,
    ctx: &TurnContext,
    unsummarised: Option<usize>,
    emit: impl Fn(String) + Send,
) -> Result<Completed, Failure> {
    let plan = app
        .tutors
        .plan_turn(&conv.personality, ctx)
        .await
        .map_err(from_plugin)?;

    let reply_side = async {
        let mut stream = app.llm.stream(&plan.reply).await?;
        let mut text = String::new();
        while let Some(piece) = stream.next().await {
            match piece? {
                Piece::Text(t) => {
                    emit(t.clone());
                    text.push_str(&t);
                }
                Piece::Done(usage) => return Ok((text, usage)),
            }
        }
        Err(LlmError::Cut)
    };
    let analysis_side = async {
        let request = plan.analysis.as_ref()?;
        match app.llm.complete(request).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                // The reply stands without corrections; the learner still gets an answer.
                tracing::warn!(error = %e, "analysis failed; the turn goes on without it");
                None
            }
        }
    };
    let (reply, analysis) = tokio::join!(reply_side, analysis_side);
    let model = |r: &types::CompletionRequest| {
        r.model
            .clone()
            .unwrap_or_else(|| app.llm.settings().model.clone())
    };
    let mut usage = Vec::new();
    if let Some((_, used)) = &analysis
        && let Some(req) = &plan.analysis
    {
        usage.push(UsageRow::new(
            app.pricing,
            Some(&conv.user),
            Some(&conv.id),
            &model(req),
            "analysis",
            *used,
        ));
    }
    let (reply_text, reply_usage) = match reply {
        Ok(r) => r,
        Err(e) => {
            // The analysis was paid for even though the turn failed.
            for row in usage {
                row.record(&app.db).await;
            }
            return Err(from_llm(e));
        }
    };
    usage.push(UsageRow::new(
        app.pricing,
        Some(&conv.user),
        Some(&conv.id),
        &model(&plan.reply),
        "reply",
        reply_usage,
    ));

    let review = match app
        .tutors
        .review_turn(
            &conv.personality,
            ctx,
            &reply_text,
            analysis.as_ref().map(|(t, _)| t.as_str()),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "review failed; the reply stands without corrections");
            TurnReview {
                corrections: vec![],
                vocabulary: vec![],
                level: None,
                debrief: None,
                dropped: vec![],
            }
        }
    };
    for why in &review.dropped {
        tracing::debug!(plugin = %conv.personality, dropped = %why, "analysis item dropped");
    }
    // Memory compression reads the whole backlog, so only start it when this turn's own
    // reading shows the budget is outgrown.
    let over_budget = unsummarised
        .is_none_or(|t| t + tokens(&learner.text) + tokens(&reply_text) > app.context_tokens);
    let mut done = store(
        app,
        conv,
        profile,
        learner.clone(),
        reply_text,
        review,
        usage,
    )
    .await?;
    done.over_budget = over_budget;
    Ok(done)
}

fn category(c: tutor::ErrorCategory) -> &'static str {
    match c {
        tutor::ErrorCategory::Grammar => "grammar",
        tutor::ErrorCategory::Vocabulary => "vocabulary",
        tutor::ErrorCategory::Spelling => "spelling",
        tutor::ErrorCategory::Punctuation => "punctuation",
        tutor::ErrorCategory::WordOrder => "word-order",
        tutor::ErrorCategory::Register => "register",
        tutor::ErrorCategory::Other => "other",
    }
}

/// A review's corrections and vocabulary in the API's terms.
pub fn review_to_api(review: &TurnReview) -> (Vec<Correction>, Vec<Word>) {
    (
        review
            .corrections
            .iter()
            .map(|c| Correction {
                original: c.original.clone(),
                corrected: c.corrected.clone(),
                explanation: c.explanation.clone(),
                category: category(c.category).into(),
            })
            .collect(),
        review
            .vocabulary
            .iter()
            .map(|v| Word {
                term: v.term.clone(),
                translation: v.translation.clone(),
                example: v.example.clone(),
            })
            .collect(),
    )
}

/// The fixed part of a turn's transaction; optional statements and the commit follow it.
const STORE_TURN: &str = "BEGIN TRANSACTION;
             UPDATE type::record('message', [$c, $lseq])
                SET status = 'answered', corrections = $lcorr, vocabulary = $lvocab, error = NONE;
             CREATE type::record('message', [$c, $rseq]) CONTENT { conversation: $c, user: $u, seq: $rseq, role: 'tutor', text: $rtext,
                created_at: $now, status: 'ok', corrections: [], vocabulary: [], debrief: $rdebrief };
             UPDATE type::record('conversation', $c) SET last_seq = math::max([last_seq, $rseq]), turns += 1, updated_at = $now;
             CREATE type::record('turn_stat', [$u, $now, $sid]) CONTENT { user: $u, conversation: $c, language: $lang, at: $now, words: $words,
                errors: $errors, categories: $cats, observed: $observed, confidence: $confidence };
";

/// Stores a finished turn in one transaction: the answered learner message, the reply, the
/// conversation's counters, the turn's statistics, new vocabulary and the model usage.
async fn store(
    app: &TurnDeps,
    conv: &Conversation,
    profile: &Profile,
    mut learner: Message,
    reply_text: String,
    review: TurnReview,
    usage: Vec<UsageRow>,
) -> Result<Completed, Failure> {
    (learner.corrections, learner.vocabulary) = review_to_api(&review);
    learner.status = Status::Answered;
    learner.error = None;
    let now = now_ms();
    let reply = Message {
        seq: learner.seq + 1,
        role: Speaker::Tutor,
        text: reply_text,
        created_at: now,
        status: Status::Ok,
        corrections: vec![],
        vocabulary: vec![],
        debrief: review.debrief.clone(),
        error: None,
    };
    let level = review.level.map(|l| LevelSeen {
        observed: Cefr::from_wit(l.observed),
        confidence: l.confidence.clamp(0.0, 1.0),
    });
    let mut categories = serde_json::Map::new();
    for c in &learner.corrections {
        let n = categories
            .get(&c.category)
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        categories.insert(c.category.clone(), json!(n + 1));
    }
    let cards = progress::vocab_cards(
        &conv.user,
        &conv.language,
        Some(&conv.id),
        &learner.vocabulary,
    );
    // Optional parts are left out of the text rather than guarded in it.
    let mut extra = String::new();
    if !cards.is_empty() {
        // Keyed by word, so a word already being learned keeps its schedule.
        extra.push_str("INSERT IGNORE INTO vocab $cards;\n");
    }
    // Flat parameters: the database copies a whole parameter each time a path into it is
    // read, so nested ones (`$l.seq`) cost a copy of the message per use.
    let mut vars = json!({"c": conv.id, "u": conv.user, "lseq": learner.seq, "lcorr": learner.corrections, "lvocab": learner.vocabulary,
                   "rseq": reply.seq, "rtext": reply.text, "rdebrief": reply.debrief, "now": now, "sid": crate::store::new_id(), "lang": conv.language,
                   "words": learner.text.split_whitespace().count(), "errors": learner.corrections.len(),
                   "cats": categories, "observed": level.map(|l| l.observed), "confidence": level.map(|l| l.confidence as f64),
                   "cards": cards});
    for (i, row) in usage.into_iter().enumerate() {
        extra.push_str(&format!(
            "CREATE type::record('usage', $usage{i}_key) CONTENT $usage{i}_row;\n"
        ));
        vars[format!("usage{i}_key")] = json!(row.key);
        vars[format!("usage{i}_row")] = row.row;
    }
    let sql = format!("{STORE_TURN}{extra}COMMIT TRANSACTION;");
    app.db.exec(&sql, vars).await.map_err(Failure::internal)?;
    // A suggestion only changes on a turn that disagrees with the learner's level, or while
    // one is on offer (it may need withdrawing); agreeing turns skip the read.
    let worth_considering = level.is_some_and(|l| l.observed != profile.level(&conv.language))
        || profile.level_suggestion.is_some();
    if worth_considering
        && let Err(e) = progress::consider_level(&app.db, &conv.user, &conv.language, profile).await
    {
        tracing::warn!(error = %e, "could not update the level estimate");
    }
    Ok(Completed {
        learner,
        reply,
        level,
        over_budget: false,
    })
}

/// Records tokens a model call used, and what they cost.
pub async fn record_usage(
    app: &TurnDeps,
    user: Option<&str>,
    conversation: Option<&str>,
    model: &str,
    purpose: &'static str,
    usage: Usage,
) {
    UsageRow::new(app.pricing, user, conversation, model, purpose, usage)
        .record(&app.db)
        .await;
}

/// Starts compressing `conv`'s older turns into its summary if the window has outgrown its
/// budget. Runs in the background: the learner never waits for it.
pub fn maybe_compress(app: TurnDeps, conv_id: String) {
    tokio::spawn(async move {
        if let Err(e) = memory::compress_if_needed(&app, &conv_id).await {
            tracing::warn!(conversation = %conv_id, error = %e, "memory compression failed; will retry next turn");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: i64, role: &str, text: &str, status: &str) -> Message {
        Message {
            seq,
            role: serde_json::from_value(json!(role)).unwrap(),
            text: text.into(),
            created_at: 0,
            status: serde_json::from_value(json!(status)).unwrap(),
            corrections: vec![],
            vocabulary: vec![],
            debrief: None,
            error: None,
        }
    }

    /// The window holds the newest answered messages after the summary that fit the budget,
    /// oldest first, as the model's user and assistant turns.
    #[test]
    fn the_window_is_the_newest_answered_turns_within_the_budget() {
        let recent = vec![
            msg(1, "learner", "summarised already", "answered"),
            msg(2, "tutor", "also summarised", "ok"),
            msg(3, "learner", "Je suis allé au marché", "answered"),
            msg(4, "tutor", "Très bien ! Qu'as-tu acheté ?", "ok"),
            msg(5, "learner", "never answered", "failed"),
            msg(6, "learner", "des pommes", "answered"),
            msg(7, "tutor", "Miam.", "ok"),
            msg(8, "learner", "being answered now", "pending"),
        ];
        let all = window(&recent, 2, 10_000);
        let texts: Vec<&str> = all.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Je suis allé au marché",
                "Très bien ! Qu'as-tu acheté ?",
                "des pommes",
                "Miam."
            ]
        );
        assert!(matches!(all[0].role, Role::User) && matches!(all[1].role, Role::Assistant));

        // A budget for the two newest only.
        let budget = tokens("des pommes") + tokens("Miam.");
        let newest: Vec<String> = window(&recent, 2, budget)
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(newest, ["des pommes", "Miam."]);
        // Even a message over the whole budget is kept when it is the only one: the model
        // must see the turn it answers after.
        assert_eq!(window(&recent, 2, 1).len(), 1);
        assert!(window(&recent, 8, 10_000).is_empty(), "all summarised");
    }
}
