//! Messages penpal sends on its own: the weekly progress digest and the streak reminder, each
//! at the learner's chosen local hour (and the digest on their chosen day), in their stored
//! time zone. Every node runs the schedule; a message is sent once because its key
//! (`notify_once`, such as `digest:<user>:<local date>`) is created in the same transaction
//! that enqueues it, and a second node's attempt conflicts and is dropped.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::preferences::{Preferences, Weekday};
use crate::store::outbox::{Category, Notice, Routing};
use crate::store::{Batch, Db, StoreError, StoreResult, now_ms};
use crate::tutoring::progress::stats::{Week, week};

/// Learners read per query while looking for those due.
const PAGE: usize = 500;
/// How long a sent key is kept (longer than any period it guards).
const KEEP_KEYS_MS: i64 = 60 * 86_400_000;

/// What the schedule decides for one learner at one moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// The weekly digest, keyed by the local date.
    Digest(String),
    /// The streak reminder, keyed by the local date.
    Streak(String),
}

/// What is due for a learner with `prefs` at `now` (ms), given their `week`: nothing outside
/// their hour; the digest on their day; a reminder when a streak is alive but today has no
/// practice yet.
pub fn due(prefs: &Preferences, week: &Week, now: i64) -> Vec<Due> {
    let Ok(at) = jiff::Timestamp::from_millisecond(now) else {
        return Vec::new();
    };
    let local = at.to_zoned(prefs.tz());
    if local.hour() as u8 != prefs.hour {
        return Vec::new();
    }
    let date = local.date().to_string();
    let mut out = Vec::new();
    if Weekday::of(local.date()) == prefs.digest_day {
        out.push(Due::Digest(date.clone()));
    }
    if week.streak_days > 0 && !week.practised_today {
        out.push(Due::Streak(date));
    }
    out
}

/// The schedule's worker.
pub struct Scheduler {
    /// The database.
    pub db: Db,
    /// Channels per category.
    pub routing: Arc<Routing>,
    /// The server's public address, for links.
    pub public_url: String,
    /// How often it looks.
    pub every: Duration,
    /// Wakes the outbox after enqueueing.
    pub outbox: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Deserialize)]
struct Learner {
    id: String,
    email: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl Scheduler {
    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.tick(now_ms()).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(messages = n, "scheduled messages enqueued");
                    self.outbox.notify_one();
                }
                Err(e) => tracing::error!(error = %e, "the schedule could not run"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Enqueues what is due at `now` (ms) for every learner with a verified address; returns
    /// how many messages it enqueued.
    pub async fn tick(&self, now: i64) -> StoreResult<usize> {
        self.db
            .exec(
                "DELETE notify_once WHERE at < $before",
                json!({"before": now - KEEP_KEYS_MS}),
            )
            .await?;
        let mut after = String::new();
        let mut sent = 0;
        loop {
            let page: Vec<Learner> = self
                .db
                .rows(
                    "SELECT record::id(id) AS id, email, profile.interface_language AS lang, profile.display_name AS name
                     FROM user WHERE role = 'learner' AND email_verified_at != NONE AND record::id(id) > $after
                     ORDER BY id LIMIT $limit",
                    json!({"after": after, "limit": PAGE}),
                )
                .await?;
            for learner in &page {
                sent += self.learner(learner, now).await?;
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.id.clone(),
                _ => return Ok(sent),
            }
        }
    }

    async fn learner(&self, l: &Learner, now: i64) -> StoreResult<usize> {
        let prefs = Preferences::load(&self.db, &l.id).await?;
        // Most learners are outside their hour: decide that before reading their progress.
        if due(&prefs, &Week::default(), now).is_empty() {
            return Ok(0);
        }
        let week = week(&self.db, &l.id, now).await?;
        let mut sent = 0;
        for item in due(&prefs, &week, now) {
            let (key, template, vars) = match &item {
                Due::Digest(date) => (
                    format!("digest:{}:{date}", l.id),
                    "weekly_digest",
                    json!({
                        "turns": week.turns,
                        "accuracy": week.accuracy.map(|a| (a * 100.0).round() as i64),
                        "streak": week.streak_days,
                        "learned": week.words_learned,
                        "due": week.words_due,
                        "link": format!("{}/progress", self.public_url),
                    }),
                ),
                Due::Streak(date) => (
                    format!("streak:{}:{date}", l.id),
                    "streak_reminder",
                    json!({
                        "streak": week.streak_days,
                        "due": week.words_due,
                        "link": format!("{}/chat", self.public_url),
                    }),
                ),
            };
            let mut vars = vars;
            vars["name"] = json!(
                l.name.clone().unwrap_or_else(|| l
                    .email
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .into())
            );
            let mut batch = Batch::default();
            batch.push(
                "CREATE type::record('notify_once', $once_key) CONTENT { user: $once_user, at: $once_at };",
                [
                    ("once_key".to_string(), json!(key)),
                    ("once_user".to_string(), json!(l.id)),
                    ("once_at".to_string(), json!(now)),
                ],
            );
            batch.notify(
                &Notice {
                    template,
                    category: Category::Progress,
                    user: Some(l.id.clone()),
                    to: l.email.clone(),
                    lang: l.lang.clone().unwrap_or_else(|| "en".into()),
                    vars,
                },
                &self.routing,
                "s",
            );
            match batch.commit(&self.db).await {
                Ok(()) => sent += 1,
                // Sent already (by this node earlier, or by another).
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(tz: &str, hour: u8, day: Weekday) -> Preferences {
        let mut p = Preferences::defaults(tz);
        p.hour = hour;
        p.digest_day = day;
        p
    }

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_digest_comes_on_the_learners_day_at_their_local_hour() {
        // 2027-01-11 is a Monday; 17:30 UTC is 18:30 in Paris and 02:30 on Tuesday in Tokyo.
        let now = at("2027-01-11T17:30:00Z");
        let quiet = Week::default();
        assert_eq!(
            due(&prefs("Europe/Paris", 18, Weekday::Monday), &quiet, now),
            vec![Due::Digest("2027-01-11".into())]
        );
        assert_eq!(
            due(&prefs("Europe/Paris", 17, Weekday::Monday), &quiet, now),
            vec![],
            "not at another hour"
        );
        assert_eq!(
            due(&prefs("Asia/Tokyo", 2, Weekday::Tuesday), &quiet, now),
            vec![Due::Digest("2027-01-12".into())],
            "the local day, not UTC's"
        );
        assert_eq!(
            due(&prefs("Asia/Tokyo", 2, Weekday::Monday), &quiet, now),
            vec![]
        );
    }

    #[test]
    fn a_reminder_keeps_a_live_streak_and_is_not_sent_once_practised() {
        let now = at("2027-01-13T17:10:00Z"); // a Wednesday
        let p = prefs("UTC", 17, Weekday::Monday);
        let alive = Week {
            streak_days: 4,
            practised_today: false,
            ..Week::default()
        };
        assert_eq!(due(&p, &alive, now), vec![Due::Streak("2027-01-13".into())]);
        let done = Week {
            practised_today: true,
            ..alive.clone()
        };
        assert_eq!(due(&p, &done, now), vec![]);
        assert_eq!(due(&p, &Week::default(), now), vec![], "no streak to keep");
    }
}
