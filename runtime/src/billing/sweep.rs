//! The billing room's own clock, for what no provider event says: coupon uses taken at a
//! checkout that was abandoned go back to the coupon, and a trial about to end is reminded
//! when the provider sends no reminder of its own (Paddle has none; Stripe's
//! `trial_will_end` comes three days ahead, so this waits until two). Every step is safe to
//! run on several nodes at once.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::plans::Plans;
use super::webhooks::{self, Mailing};
use crate::store::outbox::Routing;
use crate::store::{Batch, Db, StoreError, StoreResult, now_ms};

/// A checkout abandoned this long ago gives its coupon use back: Stripe's sessions end after
/// a day, and providers retry a completed checkout's webhooks for up to three.
pub const ABANDONED_AFTER_MS: i64 = 3 * 86_400_000;

/// A trial ending within this many seconds is reminded, if it was not already.
pub const REMIND_TRIAL_WITHIN_SECS: i64 = 2 * 86_400;

/// Runs the sweep every `every`.
pub struct Sweeper {
    /// The database.
    pub db: Db,
    /// Channels per category.
    pub routing: Arc<Routing>,
    /// The server's public address, for links.
    pub public_url: String,
    /// The plans, for names and prices in reminders.
    pub plans: Option<Plans>,
    /// How often it looks.
    pub every: Duration,
    /// Wakes the outbox after enqueueing.
    pub outbox: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Deserialize)]
struct Ending {
    provider: String,
    provider_id: String,
    user: String,
    #[serde(default)]
    plan: Option<String>,
    trial_end: i64,
}

impl Sweeper {
    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.tick(now_ms()).await {
                Ok((0, 0)) => {}
                Ok((released, reminded)) => {
                    tracing::info!(released, reminded, "billing sweep");
                    self.outbox.notify_one();
                }
                Err(e) => tracing::error!(error = %e, "the billing sweep could not run"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One sweep at `now` (ms): coupon uses released, trial reminders enqueued.
    pub async fn tick(&self, now: i64) -> StoreResult<(usize, usize)> {
        let released = super::coupons::release_stale(&self.db, now - ABANDONED_AFTER_MS).await?;
        let secs = now / 1000;
        let ending: Vec<Ending> = self
            .db
            .rows(
                "SELECT provider, provider_id, user, plan, trial_end FROM subscription
                 WHERE status = 'trialing' AND trial_end > $now AND trial_end <= $until",
                json!({"now": secs, "until": secs + REMIND_TRIAL_WITHIN_SECS}),
            )
            .await?;
        let mailing = Mailing {
            routing: &self.routing,
            public_url: &self.public_url,
            plans: self.plans.as_ref(),
        };
        let mut reminded = 0;
        for t in ending {
            let mut batch = Batch::default();
            batch.push(
                "CREATE type::record('notify_once', $tr_key) CONTENT { user: $tr_user, at: $tr_at };",
                [
                    (
                        "tr_key".to_string(),
                        json!(webhooks::trial_key(&t.provider, &t.provider_id)),
                    ),
                    ("tr_user".to_string(), json!(t.user)),
                    ("tr_at".to_string(), json!(now)),
                ],
            );
            let vars =
                webhooks::trial_ending(t.plan.as_deref(), t.trial_end as u64, self.plans.as_ref());
            webhooks::notify_owner(&self.db, &mut batch, &t.user, "trial_ending", vars, mailing)
                .await?;
            match batch.commit(&self.db).await {
                Ok(()) => reminded += 1,
                // Reminded already: by the provider's event, an earlier sweep or another node.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((released, reminded))
    }
}
