//! Delivery of the outbox (its rows are written by [`crate::store::outbox`], in the same
//! transaction as what causes them). A background worker claims due messages under a lease —
//! so several penpal nodes on one database never work on the same message at once — renders
//! them, and hands them to their channel. Delivery is at least once: a node that dies after
//! sending but before recording it leaves the lease to expire, and the message goes again with
//! the same `Message-ID`. A transient failure is retried with exponential backoff and jitter; a
//! permanent one, or too many transient ones, marks the message failed with its reason, for
//! the operator's dead-letter view (and a retry). Once a message is sent its values (which may
//! hold a single-use link) are cleared.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::mail::{self, Failure, Mailer};
use super::notifier::{Category as WitCategory, Notification, NotifierClient};
use super::preferences::{Preferences, Signer};
use super::templates::Templates;
use crate::plugins::{CallError, PluginError};
use crate::store::outbox::{Category, EMAIL};
use crate::store::{Db, StoreResult, new_id, now_ms};

/// When and how often to try again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first retry's delay; each next one doubles, up to [`RetryPolicy::max_delay`].
    pub base: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// Attempts before a message is given up.
    pub max_attempts: u32,
    /// How long a claimed message is this node's: past it, another node may take it.
    pub lease: Duration,
    /// How often the worker looks for due messages when nothing wakes it.
    pub poll: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            max_attempts: 8,
            lease: Duration::from_secs(120),
            poll: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`: `base · 2^(attempts − 1)`, capped, with "equal
    /// jitter" (half fixed, half random) so a burst of failures does not retry in lockstep.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        let full = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
            .as_millis() as u64;
        let half = full / 2;
        Duration::from_millis(half + rand::random_range(0..=half.max(1)))
    }
}

/// A message as the worker and the operator see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxRow {
    /// The message id (also its `Message-ID`).
    pub id: String,
    /// The template.
    pub template: String,
    /// `security`, `account`, `progress`, `school` or `marketing`.
    pub category: String,
    /// The account it concerns, if any.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub user: Option<String>,
    /// The recipient's address.
    pub to: String,
    /// The language it is written in.
    pub lang: String,
    /// `email`, or a notifier plugin's name.
    pub channel: String,
    /// `pending`, `sent`, `failed`, or `skipped` (the learner turned it off).
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When it was enqueued (ms).
    pub created_at: i64,
    /// When it was sent (ms).
    #[serde(default)]
    pub sent_at: Option<i64>,
    /// The next attempt (ms).
    pub next_at: i64,
    /// The template's values (not shown to operators).
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub vars: Value,
}

/// Messages claimed per pass.
const CLAIM_BATCH: usize = 32;

/// How one attempt ended.
enum Outcome {
    Sent,
    Retried,
    Failed,
    /// Not sent: the learner turned this off, or it waits for their quiet hours to end.
    Held,
}

/// Where messages go out: the built-in email channel and notifier plugins, and what every
/// message is made of.
pub struct Channels {
    /// Email over SMTP (none: email waits in the outbox).
    pub mailer: Option<Arc<Mailer>>,
    /// Notifier plugins, for every other channel.
    pub notifiers: Option<NotifierClient>,
    /// The templates.
    pub templates: Arc<Templates>,
    /// The server's public address, for unsubscribe links.
    pub public_url: String,
    /// Signs unsubscribe links.
    pub signer: Arc<Signer>,
}

/// The worker delivering the outbox.
pub struct Outbox {
    db: Db,
    channels: Channels,
    policy: RetryPolicy,
    wake: Arc<Notify>,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Messages sent.
    pub sent: usize,
    /// Messages to be retried.
    pub retried: usize,
    /// Messages given up.
    pub failed: usize,
    /// Messages skipped or deferred by the learner's preferences.
    pub held: usize,
}

impl Outbox {
    /// A worker over `db`'s outbox, delivering through `channels`.
    pub fn new(db: Db, channels: Channels, policy: RetryPolicy) -> Outbox {
        Outbox {
            db,
            channels,
            policy,
            wake: Arc::new(Notify::new()),
        }
    }

    /// A handle that wakes the worker at once (after a commit that enqueued something).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        if self.channels.mailer.is_none() {
            tracing::warn!(
                "email is off (no PENPAL_SMTP_URL): messages wait in the outbox until it is set"
            );
        }
        tokio::pin!(shutdown);
        let mut counted = std::time::Instant::now() - self.policy.poll;
        loop {
            if counted.elapsed() >= Duration::from_secs(1) {
                counted = std::time::Instant::now();
                match depth(&self.db).await {
                    Ok(n) => metrics::gauge!("penpal_outbox_pending").set(n as f64),
                    Err(e) => tracing::warn!(error = %e, "the outbox could not be counted"),
                }
            }
            let busy = match self.pass().await {
                Ok(pass) => pass != Pass::default(),
                Err(e) => {
                    tracing::error!(error = %e, "the outbox could not be read");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.policy.poll) => {}
            }
        }
    }

    /// Claims what is due and delivers it.
    pub async fn pass(&self) -> StoreResult<Pass> {
        use futures_util::StreamExt;
        let claim = new_id();
        let now = now_ms();
        // With email off, email waits rather than use up its attempts; other channels go on.
        let email = self.channels.mailer.is_some();
        let rows = claim_due(&self.db, &claim, now, self.policy.lease, CLAIM_BATCH, email).await?;
        // Several at once, one per pooled SMTP connection: lettre 0.11.23 leaves Nagle on, so
        // each message waits ~40 ms for the server's delayed ACK (lettre/lettre#1159, merged,
        // not yet released); in parallel those waits overlap instead of adding up.
        let outcomes: Vec<StoreResult<Outcome>> = futures_util::stream::iter(rows)
            .map(|row| self.attempt(row, &claim))
            .buffer_unordered(mail::CONNECTIONS)
            .collect()
            .await;
        let mut pass = Pass::default();
        for outcome in outcomes {
            match outcome? {
                Outcome::Sent => pass.sent += 1,
                Outcome::Retried => pass.retried += 1,
                Outcome::Failed => pass.failed += 1,
                Outcome::Held => pass.held += 1,
            }
        }
        Ok(pass)
    }

    /// Delivers `row` and records how it went — unless the learner's preferences hold it.
    async fn attempt(&self, row: OutboxRow, claim: &str) -> StoreResult<Outcome> {
        let category = Category::parse(&row.category).unwrap_or(Category::Security);
        if let Some(user) = row.user.as_deref().filter(|_| category.optional()) {
            let prefs = Preferences::load(&self.db, user).await?;
            if !prefs.allows(category, &row.channel) {
                hold(&self.db, &row.id, claim, None).await?;
                return Ok(Outcome::Held);
            }
            if category.keeps_quiet_hours()
                && let Some(until) = prefs.quiet_until(now_ms())
            {
                hold(&self.db, &row.id, claim, Some(until)).await?;
                return Ok(Outcome::Held);
            }
        }
        let attempts = row.attempts + 1;
        let (outcome, status, delay, error) = match self.deliver(&row, category).await {
            Ok(()) => (Outcome::Sent, "sent", None, None),
            Err(Failure::Transient(why)) if attempts < self.policy.max_attempts => {
                tracing::warn!(id = %row.id, channel = %row.channel, attempts, error = %why, "a message will be retried");
                let delay = Some(self.policy.delay(attempts));
                (Outcome::Retried, "pending", delay, Some(why))
            }
            Err(Failure::Transient(why) | Failure::Permanent(why)) => {
                tracing::error!(id = %row.id, channel = %row.channel, attempts, error = %why, "a message was given up");
                (Outcome::Failed, "failed", None, Some(why))
            }
        };
        metrics::counter!("penpal_outbox_deliveries_total", "channel" => row.channel.clone(), "outcome" => status)
            .increment(1);
        settle(&self.db, &row.id, claim, status, attempts, delay, error).await?;
        Ok(outcome)
    }

    async fn deliver(&self, row: &OutboxRow, category: Category) -> Result<(), Failure> {
        // Every message a learner may turn off says how, in one click; security mail never.
        let unsubscribe = row
            .user
            .as_deref()
            .filter(|_| category.optional())
            .map(|user| {
                format!(
                    "{}/unsubscribe?token={}",
                    self.channels.public_url,
                    self.channels.signer.token(user, category, &row.channel)
                )
            });
        let message = self
            .channels
            .templates
            .render(&row.template, &row.lang, &row.vars, unsubscribe.as_deref())
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        if row.channel == EMAIL {
            let Some(mailer) = &self.channels.mailer else {
                return Err(Failure::Transient("email is off on this server".into()));
            };
            return mailer
                .send(&row.id, &row.to, &message, unsubscribe.as_deref())
                .await;
        }
        let Some(notifiers) = &self.channels.notifiers else {
            return Err(Failure::Permanent(format!(
                "no channel `{}` on this server",
                row.channel
            )));
        };
        let notification = Notification {
            id: row.id.clone(),
            topic: row.template.replace('_', "-"),
            category: wit_category(category),
            recipient: row.to.clone(),
            locale: row.lang.clone(),
            subject: message.subject,
            text_body: message.text,
            html_body: Some(message.html),
            unsubscribe_url: unsubscribe,
        };
        match notifiers.send(&row.channel, &notification).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

fn wit_category(c: Category) -> WitCategory {
    match c {
        Category::Security => WitCategory::Security,
        Category::Account => WitCategory::Account,
        Category::Progress => WitCategory::Progress,
        Category::Marketing => WitCategory::Marketing,
        Category::School => WitCategory::School,
    }
}

/// Whether a notifier's failure is worth retrying: its own `unavailable`, a paused (circuit
/// open) or slow plugin, or one being reinstalled. Anything else — denied, bad input, a crash —
/// would fail the same way again.
fn classify(e: CallError) -> Failure {
    let why = e.to_string();
    match e {
        CallError::Plugin {
            error: PluginError::Unavailable(_),
            ..
        }
        | CallError::CircuitOpen { .. }
        | CallError::Timeout { .. }
        | CallError::NotInstalled(_) => Failure::Transient(why),
        _ => Failure::Permanent(why),
    }
}

/// Sets aside a claimed message without an attempt: until `until` (quiet hours), or for good
/// (`skipped`: the learner turned it off), its values cleared.
async fn hold(db: &Db, id: &str, claim: &str, until: Option<i64>) -> StoreResult<()> {
    let (sql, vars) = match until {
        Some(at) => (
            "UPDATE type::record('outbox', $id) SET next_at = $at, lease_owner = NONE, lease_until = 0 WHERE lease_owner = $claim",
            json!({"id": id, "claim": claim, "at": at}),
        ),
        None => (
            "UPDATE type::record('outbox', $id) SET status = 'skipped', vars = {}, lease_owner = NONE, lease_until = 0,
                 last_error = 'turned off by the learner' WHERE lease_owner = $claim",
            json!({"id": id, "claim": claim}),
        ),
    };
    db.exec(sql, vars).await
}

/// Leases up to `limit` due messages to `claim` and returns them. The lease is taken by one
/// statement that re-checks it, so of two nodes claiming at once only one gets a message.
async fn claim_due(
    db: &Db,
    claim: &str,
    now: i64,
    lease: Duration,
    limit: usize,
    email: bool,
) -> StoreResult<Vec<OutboxRow>> {
    db.exec(
        "UPDATE (SELECT VALUE id FROM outbox WHERE status = 'pending' AND next_at <= $now AND lease_until <= $now AND ($email OR channel != 'email') ORDER BY next_at LIMIT $limit)
         SET lease_owner = $claim, lease_until = $until
         WHERE status = 'pending' AND lease_until <= $now",
        json!({"now": now, "limit": limit, "claim": claim, "email": email, "until": now + lease.as_millis() as i64}),
    )
    .await?;
    db.rows(
        "SELECT *, record::id(id) AS id FROM outbox WHERE lease_owner = $claim AND status = 'pending'",
        json!({"claim": claim}),
    )
    .await
}

/// Records an attempt's outcome, if `claim` still holds the lease.
async fn settle(
    db: &Db,
    id: &str,
    claim: &str,
    status: &str,
    attempts: u32,
    delay: Option<Duration>,
    error: Option<String>,
) -> StoreResult<()> {
    let now = now_ms();
    let next_at = now + delay.map_or(0, |d| d.as_millis() as i64);
    let sql = match status {
        "sent" => {
            "UPDATE type::record('outbox', $id) SET status = 'sent', attempts = $attempts, sent_at = $now,
                 vars = {}, lease_owner = NONE, lease_until = 0, last_error = NONE WHERE lease_owner = $claim"
        }
        "pending" => {
            "UPDATE type::record('outbox', $id) SET attempts = $attempts, next_at = $next, lease_owner = NONE,
                 lease_until = 0, last_error = $error WHERE lease_owner = $claim"
        }
        _ => {
            "UPDATE type::record('outbox', $id) SET status = 'failed', attempts = $attempts,
                 lease_owner = NONE, lease_until = 0, last_error = $error WHERE lease_owner = $claim"
        }
    };
    db.exec(
        sql,
        json!({"id": id, "claim": claim, "attempts": attempts, "now": now, "next": next_at,
               "error": error.map(|e| crate::http::redact_secrets(&e))}),
    )
    .await
}

/// How many messages wait to be sent (due or not).
pub async fn depth(db: &Db) -> StoreResult<u64> {
    #[derive(Deserialize)]
    struct Count {
        n: u64,
    }
    let rows: Vec<Count> = db
        .rows(
            "SELECT count() AS n FROM outbox WHERE status = 'pending' GROUP ALL",
            json!({}),
        )
        .await?;
    Ok(rows.first().map_or(0, |c| c.n))
}

/// Messages with `status`, newest first, for the operator's view.
pub async fn list(db: &Db, status: Option<&str>, limit: usize) -> StoreResult<Vec<OutboxRow>> {
    db.rows(
        "SELECT *, record::id(id) AS id FROM outbox WHERE $status = NONE OR status = $status ORDER BY created_at DESC LIMIT $limit",
        json!({"status": status, "limit": limit}),
    )
    .await
}

/// Puts failed message `id` back in the queue, due now (an operator fixed what made it fail).
/// `false` when there is no such failed message.
pub async fn retry(db: &Db, id: &str) -> StoreResult<bool> {
    let rows: Vec<Value> = db
        .rows(
            "UPDATE type::record('outbox', $id) SET status = 'pending', attempts = 0, next_at = $now, last_error = NONE
             WHERE status = 'failed' RETURN record::id(id) AS id",
            json!({"id": id, "now": now_ms()}),
        )
        .await?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_half() {
        let p = RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            let d1 = p.delay(1).as_millis();
            assert!((1000..=2000).contains(&d1), "{d1}");
            let d3 = p.delay(3).as_millis();
            assert!((4000..=8000).contains(&d3), "{d3}");
            let d20 = p.delay(20).as_millis();
            assert!((30_000..=60_000).contains(&d20), "{d20}");
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| p.delay(3).as_millis()).collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }
}
