//! Vocabulary cards: scheduled by SM-2, reviewed through the API, exported for Anki.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::DAY_MS;
use crate::auth::AuthUser;
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::store::now_ms;
use crate::tutoring::conversations::Word;
use crate::tutoring::profile::language;
use crate::tutoring::state::TutoringState;

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
pub(super) fn card_id(language: &str, term: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{language}:{term}"))
}

/// The language and term a card id names.
pub(super) fn parse_card_id(id: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .split_once(':')
        .map(|(l, t)| (l.to_string(), t.to_string()))
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

async fn card_rows(app: &TutoringState, user: &str, p: &CardParams) -> ApiResult<Vec<Card>> {
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
pub(super) async fn cards(
    State(app): State<TutoringState>,
    user: AuthUser,
    Query(p): Query<CardParams>,
) -> ApiResult<Json<Vec<Card>>> {
    Ok(Json(card_rows(&app, &user.id, &p).await?))
}

#[utoipa::path(post, path = "/v1/vocabulary/{id}/review", tag = "progress", request_body = Review,
    responses((status = 200, body = Card), (status = 404, description = "no such card")), security(("bearer" = [])))]
pub(super) async fn review(
    State(app): State<TutoringState>,
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
pub(super) fn csv_field(s: &str) -> String {
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
pub(super) async fn export_csv(
    State(app): State<TutoringState>,
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
    use crate::tutoring::progress::streak;

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
