//! Progress: per-learner statistics, the level estimate offered to the learner, and
//! vocabulary scheduled by spaced repetition (SM-2) with its review API and an Anki CSV export.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conversations::Word;
use super::profile::{Cefr, LevelSuggestion, Profile, language};
use crate::api::{ApiError, ApiResult, AppState, AuthUser, Json, Path, Query};
use crate::auth::routes::user_by_id;
use crate::store::{Db, StoreResult, now_ms, utc_date};

const DAY_MS: i64 = 86_400_000;
/// Observations a level suggestion needs.
pub const LEVEL_EVIDENCE: usize = 5;

/// The new cards `words` make, due for a first review now, keyed `[user, language, term]`
/// for `INSERT IGNORE INTO vocab` (words already there keep their schedule).
pub fn vocab_cards(
    user: &str,
    lang: &str,
    conversation: Option<&str>,
    words: &[Word],
) -> Vec<Value> {
    let now = now_ms();
    words
        .iter()
        .filter_map(|w| {
            let term: String = w.term.trim().to_lowercase().chars().take(80).collect();
            (!term.is_empty()).then(|| {
                json!({"id": [user, lang, term], "user": user, "language": lang, "term": term,
                       "translation": w.translation.chars().take(200).collect::<String>(),
                       "example": w.example.as_ref().map(|e| e.chars().take(300).collect::<String>()),
                       "conversation": conversation, "added_at": now, "due_at": now,
                       "interval_days": 0.0, "ease": 2.5, "reps": 0, "lapses": 0})
            })
        })
        .collect()
}

/// A card's id in the API: its language and term, URL-safe. Cards are keyed by
/// `[user, language, term]`, so the id needs no lookup and cannot name another learner's card.
fn card_id(language: &str, term: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{language}:{term}"))
}

/// The language and term a card id names.
fn parse_card_id(id: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .split_once(':')
        .map(|(l, t)| (l.to_string(), t.to_string()))
}

#[derive(Debug, Deserialize)]
struct Observed {
    observed: Cefr,
    confidence: f64,
}

/// Looks at the learner's recent level signals in `lang` and offers a new level when they
/// consistently point away from the profile's, or withdraws an offer they no longer support.
pub async fn consider_level(db: &Db, user: &str, lang: &str, profile: &Profile) -> StoreResult<()> {
    let seen: Vec<Observed> = db
        .rows(
            // The last fortnight bounds the scan; older signals say little about today's level.
            "SELECT observed, confidence, at FROM turn_stat:[$u, $since]..=[$u, ..]
             WHERE language = $lang AND observed != NONE ORDER BY at DESC LIMIT 12",
            json!({"u": user, "lang": lang, "since": now_ms() - 14 * DAY_MS}),
        )
        .await?;
    let confident: Vec<&Observed> = seen.iter().filter(|o| o.confidence >= 0.3).collect();
    if confident.len() < LEVEL_EVIDENCE || !profile.targets.iter().any(|t| t.language == lang) {
        return Ok(());
    }
    let mut ranks: Vec<usize> = confident.iter().map(|o| o.observed.rank()).collect();
    ranks.sort_unstable();
    let median = Cefr::ALL[ranks[ranks.len() / 2]];
    let current = profile.level(lang);
    let suggestion = (median != current).then(|| LevelSuggestion {
        language: lang.to_string(),
        current,
        suggested: median,
        turns: confident.len() as u32,
    });
    let unchanged = match (&suggestion, &profile.level_suggestion) {
        (Some(a), Some(b)) => a.suggested == b.suggested && a.language == b.language,
        (None, None) => true,
        (None, Some(b)) => b.language != lang,
        _ => false,
    };
    if !unchanged {
        db.exec(
            "UPDATE type::record('user', $u) SET profile.level_suggestion = $s",
            json!({"u": user, "s": suggestion}),
        )
        .await?;
    }
    Ok(())
}

/// How well a card was recalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Forgotten.
    Again,
    /// Recalled with effort.
    Hard,
    /// Recalled.
    Good,
    /// Effortless.
    Easy,
}

/// The SM-2 schedule of a card.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Days until the next review.
    pub interval_days: f64,
    /// Ease factor, at least 1.3.
    pub ease: f64,
    /// Successful reviews in a row.
    pub reps: i64,
    /// Times forgotten.
    pub lapses: i64,
}

impl Schedule {
    /// The schedule after a review graded `grade` (SM-2, with "again" due in ten minutes).
    pub fn review(self, grade: Grade) -> Schedule {
        let q: f64 = match grade {
            Grade::Again => 1.0,
            Grade::Hard => 3.0,
            Grade::Good => 4.0,
            Grade::Easy => 5.0,
        };
        let ease = (self.ease + 0.1 - (5.0 - q) * (0.08 + (5.0 - q) * 0.02)).max(1.3);
        if grade == Grade::Again {
            return Schedule {
                interval_days: 10.0 / 1440.0,
                ease,
                reps: 0,
                lapses: self.lapses + 1,
            };
        }
        let reps = self.reps + 1;
        let base = match reps {
            1 => 1.0,
            2 => 6.0,
            _ => self.interval_days.max(1.0) * ease,
        };
        let interval_days = match grade {
            Grade::Hard => (base * 0.8).max(1.0),
            Grade::Easy => base * 1.3,
            _ => base,
        };
        Schedule {
            interval_days,
            ease,
            reps,
            lapses: self.lapses,
        }
    }
}

/// A vocabulary card.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Card {
    /// Opaque; derived from the language and term.
    #[serde(default)]
    id: String,
    language: String,
    term: String,
    translation: String,
    #[serde(default)]
    example: Option<String>,
    added_at: i64,
    due_at: i64,
    interval_days: f64,
    ease: f64,
    reps: i64,
    lapses: i64,
    #[serde(default)]
    last_review: Option<i64>,
}

/// Which cards.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CardParams {
    /// Only this language.
    language: Option<String>,
    /// Only cards due now.
    #[serde(default)]
    due: bool,
    /// 1 to 500; 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    grade: Grade,
}

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

/// The progress routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(progress))
        .routes(routes!(cards))
        .routes(routes!(review))
        .routes(routes!(export_csv))
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
async fn progress(
    State(app): State<AppState>,
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
    let profile = user_by_id(&app, &user.id).await?.profile;
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

async fn card_rows(app: &AppState, user: &str, p: &CardParams) -> ApiResult<Vec<Card>> {
    let n = match p.limit {
        None => 100,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("limit", "use 1 to 500")),
    };
    let lang = p
        .language
        .as_deref()
        .map(|l| language("language", l))
        .transpose()?;
    let mut sql = String::from(if lang.is_some() {
        "SELECT * OMIT id FROM vocab:[$u, $lang, NONE]..=[$u, $lang, ..]"
    } else {
        "SELECT * OMIT id FROM vocab:[$u, NONE]..=[$u, ..]"
    });
    if p.due {
        sql.push_str(" WHERE due_at <= $now");
    }
    sql.push_str(" ORDER BY due_at ASC LIMIT $n");
    let mut cards: Vec<Card> = app
        .db
        .rows(
            &sql,
            json!({"u": user, "lang": lang, "now": now_ms(), "n": n}),
        )
        .await?;
    for c in &mut cards {
        c.id = card_id(&c.language, &c.term);
    }
    Ok(cards)
}

#[utoipa::path(get, path = "/v1/vocabulary", tag = "progress", params(CardParams),
    responses((status = 200, body = [Card])), security(("bearer" = [])))]
async fn cards(
    State(app): State<AppState>,
    user: AuthUser,
    Query(p): Query<CardParams>,
) -> ApiResult<Json<Vec<Card>>> {
    Ok(Json(card_rows(&app, &user.id, &p).await?))
}

#[utoipa::path(post, path = "/v1/vocabulary/{id}/review", tag = "progress", request_body = Review,
    responses((status = 200, body = Card), (status = 404, description = "no such card")), security(("bearer" = [])))]
async fn review(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<Review>,
) -> ApiResult<Json<Card>> {
    let Some((lang, term)) = parse_card_id(&id) else {
        return Err(ApiError::NotFound("card"));
    };
    let key = json!([user.id, lang, term]);
    let card: Card = app
        .db
        .one(
            "SELECT * OMIT id FROM type::record('vocab', $key)",
            json!({"key": key}),
        )
        .await?
        .ok_or(ApiError::NotFound("card"))?;
    let next = Schedule {
        interval_days: card.interval_days,
        ease: card.ease,
        reps: card.reps,
        lapses: card.lapses,
    }
    .review(body.grade);
    let now = now_ms();
    let updated: Option<Card> = app
        .db
        .one(
            "UPDATE type::record('vocab', $key) SET interval_days = $i, ease = $e, reps = $r, lapses = $l,
                due_at = $due, last_review = $now RETURN AFTER",
            json!({"key": key, "i": next.interval_days, "e": next.ease, "r": next.reps, "l": next.lapses,
                   "due": now + (next.interval_days * DAY_MS as f64) as i64, "now": now}),
        )
        .await?
        .map(|mut c: Card| {
            c.id = id.clone();
            c
        });
    updated.map(Json).ok_or(ApiError::NotFound("card"))
}

/// One CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The cards as a CSV file Anki imports: a header of Anki directives, then
/// front, back, example, tags.
pub fn anki_csv(cards: &[Card]) -> String {
    let mut out = String::from(
        "#separator:comma\n#html:false\n#columns:Front,Back,Example,Tags\n#tags column:4\n",
    );
    for c in cards {
        let tags = format!("penpal penpal::{}", c.language);
        out.push_str(&format!(
            "{},{},{},{}\n",
            csv_field(&c.term),
            csv_field(&c.translation),
            csv_field(c.example.as_deref().unwrap_or("")),
            csv_field(&tags)
        ));
    }
    out
}

#[utoipa::path(get, path = "/v1/vocabulary/export.csv", tag = "progress", params(CardParams),
    responses((status = 200, content_type = "text/csv", description = "an Anki-importable CSV")), security(("bearer" = [])))]
async fn export_csv(
    State(app): State<AppState>,
    user: AuthUser,
    Query(mut p): Query<CardParams>,
) -> ApiResult<Response> {
    p.limit = Some(p.limit.unwrap_or(500));
    let cards = card_rows(&app, &user.id, &p).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"penpal-vocabulary.csv\"",
            ),
        ],
        anki_csv(&cards),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_ids_round_trip_and_reject_garbage() {
        for (lang, term) in [("fr", "être"), ("de", "11:30 Uhr"), ("ja", "猫")] {
            let id = card_id(lang, term);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(parse_card_id(&id), Some((lang.into(), term.into())));
        }
        assert_eq!(parse_card_id("not base64!"), None);
        use base64::Engine as _;
        let no_language = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("chat");
        assert_eq!(parse_card_id(&no_language), None);
    }

    #[test]
    fn sm2_spaces_reviews_out_and_lapses_reset() {
        let s = Schedule {
            interval_days: 0.0,
            ease: 2.5,
            reps: 0,
            lapses: 0,
        };
        let a = s.review(Grade::Good);
        assert_eq!((a.interval_days, a.reps), (1.0, 1));
        let b = a.review(Grade::Good);
        assert_eq!(b.interval_days, 6.0);
        let c = b.review(Grade::Good);
        assert!(c.interval_days > 14.0 && c.interval_days < 16.0, "{c:?}");
        let d = c.review(Grade::Again);
        assert_eq!((d.reps, d.lapses), (0, 1));
        assert!(d.interval_days < 0.01);
        assert!(d.ease < c.ease);
        assert!(c.review(Grade::Easy).interval_days > c.review(Grade::Hard).interval_days);
    }

    #[test]
    fn streaks_count_back_from_today_or_yesterday() {
        assert_eq!(streak(vec![10, 11, 12], 12), 3);
        assert_eq!(streak(vec![10, 11], 12), 2);
        assert_eq!(streak(vec![9, 11, 12, 12], 12), 2);
        assert_eq!(streak(vec![5], 12), 0);
    }

    #[test]
    fn csv_quotes_what_it_must() {
        let card = Card {
            id: "x".into(),
            language: "fr".into(),
            term: "le marché".into(),
            translation: "the market, the fair".into(),
            example: Some("Il dit \"bonjour\"".into()),
            added_at: 0,
            due_at: 0,
            interval_days: 0.0,
            ease: 2.5,
            reps: 0,
            lapses: 0,
            last_review: None,
        };
        let csv = anki_csv(&[card]);
        assert!(
            csv.ends_with(
                "le marché,\"the market, the fair\",\"Il dit \"\"bonjour\"\"\",penpal penpal::fr\n"
            ),
            "{csv}"
        );
    }
}
