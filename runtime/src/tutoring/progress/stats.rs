//! A learner's statistics: turns, accuracy, errors by category, streaks, model usage.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::DAY_MS;
use crate::auth::AuthUser;
use crate::http::{ApiError, ApiResult, Json, Query};
use crate::store::{Db, StoreResult, now_ms, utc_date};
use crate::tutoring::profile::language;
use crate::tutoring::state::TutoringState;

/// Progress figures.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProgressParams {
    /// Only this language.
    language: Option<String>,
    /// Days of history, 1 to 365; 30 by default.
    #[param(minimum = 1, maximum = 365)]
    days: Option<i64>,
}

/// A learner's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// Messages the learner sent that a tutor answered.
    messages: i64,
    /// Conversations started.
    conversations: i64,
    /// Consecutive days with practice, up to today (or yesterday).
    streak_days: i64,
    /// Cards in the vocabulary.
    words_seen: i64,
    /// Cards recalled in at least two reviews in a row.
    words_learned: i64,
    /// Cards due now.
    words_due: i64,
    /// Per day (oldest first): turns, errors by category, accuracy (share of turns without error).
    #[schema(value_type = Vec<Object>)]
    days: Vec<Value>,
    /// Errors by category over the period.
    #[schema(value_type = Object)]
    errors_by_category: BTreeMap<String, i64>,
    /// Accuracy over the period (null with no turns).
    accuracy: Option<f64>,
    /// Levels per target language and any level change on offer.
    #[schema(value_type = Object)]
    level: Value,
    /// Model usage.
    #[schema(value_type = Object)]
    usage: Value,
}

#[derive(Deserialize)]
struct StatRow {
    at: i64,
    errors: i64,
    #[serde(default)]
    categories: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

async fn count(db: &Db, sql: &str, vars: Value) -> StoreResult<i64> {
    Ok(db.one::<Count>(sql, vars).await?.map_or(0, |c| c.n))
}

/// Days in a row ending today or yesterday on which the learner practised.
pub fn streak(mut days: Vec<i64>, today: i64) -> i64 {
    days.sort_unstable();
    days.dedup();
    let mut expect = if days.last() == Some(&today) {
        today
    } else {
        today - 1
    };
    let mut n = 0;
    for d in days.iter().rev() {
        if *d == expect {
            n += 1;
            expect -= 1;
        } else if *d < expect {
            break;
        }
    }
    n
}

#[utoipa::path(get, path = "/v1/me/progress", tag = "progress", params(ProgressParams),
    responses((status = 200, body = Progress)), security(("bearer" = [])))]
pub(super) async fn progress(
    State(app): State<TutoringState>,
    user: AuthUser,
    Query(p): Query<ProgressParams>,
) -> ApiResult<Json<Progress>> {
    let days = match p.days {
        None => 30,
        Some(d) if (1..=365).contains(&d) => d,
        Some(_) => return Err(ApiError::invalid("days", "use 1 to 365")),
    };
    let lang = p
        .language
        .as_deref()
        .map(|l| language("language", l))
        .transpose()?;
    let now = now_ms();
    let today = now.div_euclid(DAY_MS);
    let since = (today - days + 1) * DAY_MS;
    let u = json!({"u": user.id, "lang": lang, "since": since, "now": now});
    let lang_filter = if lang.is_some() {
        " AND language = $lang"
    } else {
        ""
    };
    let stats: Vec<StatRow> = app
        .db
        .rows(&format!("SELECT at, errors, categories FROM turn_stat:[$u, $since]..=[$u, ..] WHERE true{lang_filter} ORDER BY at"), u.clone())
        .await?;
    #[derive(Deserialize)]
    struct At {
        at: i64,
    }
    let all_days: Vec<At> = app
        .db
        .rows(
            &format!("SELECT at FROM turn_stat:[$u, NONE]..=[$u, ..] WHERE true{lang_filter}"),
            u.clone(),
        )
        .await?;
    let mut per_day: BTreeMap<i64, (i64, i64, BTreeMap<String, i64>)> = BTreeMap::new();
    let mut by_category: BTreeMap<String, i64> = BTreeMap::new();
    for s in &stats {
        let e = per_day.entry(s.at.div_euclid(DAY_MS)).or_default();
        e.0 += 1;
        e.1 += i64::from(s.errors == 0);
        for (k, v) in &s.categories {
            *e.2.entry(k.clone()).or_default() += v;
            *by_category.entry(k.clone()).or_default() += v;
        }
    }
    let day_list: Vec<Value> = (today - days + 1..=today)
        .map(|d| {
            let (turns, clean, cats) = per_day.get(&d).cloned().unwrap_or_default();
            json!({"date": utc_date(d), "turns": turns, "errors": cats,
                   "accuracy": if turns > 0 { Some(clean as f64 / turns as f64) } else { None }})
        })
        .collect();
    let turns: i64 = per_day.values().map(|d| d.0).sum();
    let clean: i64 = per_day.values().map(|d| d.1).sum();
    let vlang = if lang.is_some() {
        " AND language = $lang"
    } else {
        ""
    };
    let profile = crate::tutoring::profile::load(&app.db, &user.id).await?;
    let usage: Option<Value> = app
        .db
        .one(
            "SELECT math::sum(prompt_tokens) AS prompt_tokens, math::sum(completion_tokens) AS completion_tokens,
                    math::sum(cost_micros) AS cost_micros, count(estimated = true) AS estimated_calls
             FROM usage:[$u, NONE]..=[$u, ..] GROUP ALL",
            u.clone(),
        )
        .await?;
    Ok(Json(Progress {
        messages: count(
            &app.db,
            // One turn stat per answered learner message; they outlive deleted conversations.
            "SELECT count() AS n FROM turn_stat:[$u, NONE]..=[$u, ..] GROUP ALL",
            u.clone(),
        )
        .await?,
        conversations: count(
            &app.db,
            "SELECT count() AS n FROM conversation WHERE user = $u GROUP ALL",
            u.clone(),
        )
        .await?,
        streak_days: streak(
            all_days.iter().map(|a| a.at.div_euclid(DAY_MS)).collect(),
            today,
        ),
        words_seen: count(
            &app.db,
            &format!("SELECT count() AS n FROM vocab:[$u, NONE]..=[$u, ..] WHERE true{vlang} GROUP ALL"),
            u.clone(),
        )
        .await?,
        words_learned: count(
            &app.db,
            &format!(
                "SELECT count() AS n FROM vocab:[$u, NONE]..=[$u, ..] WHERE reps >= 2{vlang} GROUP ALL"
            ),
            u.clone(),
        )
        .await?,
        words_due: count(
            &app.db,
            &format!(
                "SELECT count() AS n FROM vocab:[$u, NONE]..=[$u, ..] WHERE due_at <= $now{vlang} GROUP ALL"
            ),
            u.clone(),
        )
        .await?,
        days: day_list,
        errors_by_category: by_category,
        accuracy: (turns > 0).then(|| clean as f64 / turns as f64),
        level: json!({"targets": profile.targets, "suggestion": profile.level_suggestion}),
        usage: usage.unwrap_or_else(
            || json!({"prompt_tokens": 0, "completion_tokens": 0, "cost_micros": 0, "estimated_calls": 0}),
        ),
    }))
}

/// What a weekly digest or a streak reminder says about a learner.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Week {
    /// Messages answered in the last seven days.
    pub turns: i64,
    /// Share of those without an error (none without turns).
    pub accuracy: Option<f64>,
    /// Consecutive days of practice up to today or yesterday.
    pub streak_days: i64,
    /// Whether the learner practised today (UTC, as streaks count).
    pub practised_today: bool,
    /// Cards recalled in at least two reviews in a row.
    pub words_learned: i64,
    /// Cards due now.
    pub words_due: i64,
}

/// `user`'s last seven days as of `now` (ms).
pub async fn week(db: &Db, user: &str, now: i64) -> StoreResult<Week> {
    let today = now.div_euclid(DAY_MS);
    let u = json!({"u": user, "since": now - 7 * DAY_MS, "now": now});
    let recent: Vec<StatRow> = db
        .rows(
            "SELECT at, errors, categories FROM turn_stat:[$u, $since]..=[$u, ..]",
            u.clone(),
        )
        .await?;
    #[derive(Deserialize)]
    struct At {
        at: i64,
    }
    let days: Vec<At> = db
        .rows("SELECT at FROM turn_stat:[$u, NONE]..=[$u, ..]", u.clone())
        .await?;
    let days: Vec<i64> = days.iter().map(|a| a.at.div_euclid(DAY_MS)).collect();
    let turns = recent.len() as i64;
    let clean = recent.iter().filter(|s| s.errors == 0).count() as i64;
    Ok(Week {
        turns,
        accuracy: (turns > 0).then(|| clean as f64 / turns as f64),
        practised_today: days.contains(&today),
        streak_days: streak(days, today),
        words_learned: count(
            db,
            "SELECT count() AS n FROM vocab:[$u, NONE]..=[$u, ..] WHERE reps >= 2 GROUP ALL",
            u.clone(),
        )
        .await?,
        words_due: count(
            db,
            "SELECT count() AS n FROM vocab:[$u, NONE]..=[$u, ..] WHERE due_at <= $now GROUP ALL",
            u,
        )
        .await?,
    })
}

/// One answered turn as statistics see it: when, how long, how many errors of which kind —
/// never what was said.
#[derive(Debug, Clone, Deserialize)]
pub struct TurnFact {
    /// When (ms).
    pub at: i64,
    /// Words the learner wrote.
    pub words: i64,
    /// Errors corrected.
    pub errors: i64,
    /// Errors by category.
    #[serde(default)]
    pub categories: BTreeMap<String, i64>,
}

/// `user`'s turns in `language` since `since` (ms), oldest first: what a class's teachers see
/// of their practice.
pub async fn turns_since(
    db: &Db,
    user: &str,
    language: &str,
    since: i64,
) -> StoreResult<Vec<TurnFact>> {
    db.rows(
        "SELECT at, words, errors, categories FROM turn_stat:[$u, $since]..=[$u, ..] WHERE language = $lang",
        json!({"u": user, "since": since, "lang": language}),
    )
    .await
}
