//! The level estimate: recent turns' observed levels, and the suggestion offered once they
//! agree.

use serde::Deserialize;
use serde_json::json;

use super::DAY_MS;
use crate::store::{Db, StoreResult, now_ms};
use crate::tutoring::profile::{Cefr, LevelSuggestion, Profile};

/// Observations a level suggestion needs.
pub const LEVEL_EVIDENCE: usize = 5;

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
