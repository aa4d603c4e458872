//! What an account may do now, and why: its plan and the source that grants it — nothing (the
//! free plan), a subscription, an operator's complimentary grant, or (for the schools issue) a
//! school's seat. Grants are rows of `entitlement`, each with an optional end; the best live one
//! wins. [`Billing::check_turn`] is asked by the turn path before a learner's message is stored.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::plans::{Limit, Plan, Plans};
use crate::store::{Db, StoreResult, now_ms};
use crate::tutoring::conversations::ChatMode;

const DAY_MS: i64 = 86_400_000;

/// Where an account's plan comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Billing is off on this server: everything is allowed.
    Unlimited,
    /// No grant: the free plan.
    Free,
    /// A subscription at a payment provider.
    Subscription {
        /// penpal's subscription id.
        id: String,
    },
    /// Given by an operator.
    Complimentary {
        /// The operator's account id.
        by: String,
    },
    /// A seat bought by a school.
    School {
        /// The school's id.
        id: String,
    },
}

/// An account's plan now.
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlement {
    /// The plan (none when billing is off).
    pub plan: Option<Plan>,
    /// Why.
    pub source: Source,
    /// When the grant ends (ms), if it does.
    pub until: Option<i64>,
}

/// A stored grant.
#[derive(Debug, Clone, Deserialize)]
struct Grant {
    plan: String,
    source: String,
    reference: String,
    #[serde(default)]
    until: Option<i64>,
}

/// The billing room's rules: the plans, or none when billing is off.
#[derive(Debug, Clone, Default)]
pub struct Billing {
    /// The plans; none: billing is off.
    pub plans: Option<Plans>,
    /// The payment-provider plugin learners pay through.
    pub provider: Option<String>,
    /// Whether prices include VAT.
    pub sells_to: super::tax::SellsTo,
}

/// Why a turn may not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanLimit {
    /// The plan that limits.
    pub plan: String,
    /// What is over and what to do.
    pub message: String,
}

impl Billing {
    /// `user`'s plan at `now` (ms).
    pub async fn entitlement(&self, db: &Db, user: &str, now: i64) -> StoreResult<Entitlement> {
        let Some(plans) = &self.plans else {
            return Ok(Entitlement {
                plan: None,
                source: Source::Unlimited,
                until: None,
            });
        };
        let grants: Vec<Grant> = db
            .rows(
                "SELECT plan, source, reference, until FROM entitlement WHERE user = $u AND (until = NONE OR until > $now)",
                json!({"u": user, "now": now}),
            )
            .await?;
        // The most generous live grant: unlimited turns first, then the most turns.
        let best = grants
            .iter()
            .filter_map(|g| plans.get(&g.plan).map(|p| (g, p)))
            .max_by_key(|(_, p)| p.turns_per_day.map_or(u64::MAX, u64::from));
        Ok(match best {
            Some((g, p)) => Entitlement {
                plan: Some(p.clone()),
                source: match g.source.as_str() {
                    "subscription" => Source::Subscription {
                        id: g.reference.clone(),
                    },
                    "school" => Source::School {
                        id: g.reference.clone(),
                    },
                    _ => Source::Complimentary {
                        by: g.reference.clone(),
                    },
                },
                until: g.until,
            },
            None => Entitlement {
                plan: Some(plans.free().clone()),
                source: Source::Free,
                until: None,
            },
        })
    }

    /// Whether `user` may send a message now in a `mode` conversation with `personality`;
    /// the outer error is the database's.
    pub async fn check_turn(
        &self,
        db: &Db,
        user: &str,
        mode: ChatMode,
        personality: &str,
    ) -> StoreResult<Result<(), PlanLimit>> {
        let now = now_ms();
        let Some(plan) = self.entitlement(db, user, now).await?.plan else {
            return Ok(Ok(()));
        };
        let refuse = |limit: Limit| PlanLimit {
            plan: plan.id.clone(),
            message: limit.explain(&plan),
        };
        if let Err(limit) = plan.allows(mode, personality) {
            return Ok(Err(refuse(limit)));
        }
        if let Some(max) = plan.turns_per_day
            && turns_today(db, user, now).await? >= i64::from(max)
        {
            return Ok(Err(refuse(Limit::Turns(max))));
        }
        Ok(Ok(()))
    }
}

/// Turns `user` was answered since midnight UTC.
pub async fn turns_today(db: &Db, user: &str, now: i64) -> StoreResult<i64> {
    #[derive(Deserialize)]
    struct Count {
        n: i64,
    }
    let since = now.div_euclid(DAY_MS) * DAY_MS;
    let n: Option<Count> = db
        .one(
            "SELECT count() AS n FROM turn_stat:[$u, $since]..=[$u, ..] GROUP ALL",
            json!({"u": user, "since": since}),
        )
        .await?;
    Ok(n.map_or(0, |c| c.n))
}

/// Grants `plan` to `user` from `source` (`subscription`, `complimentary`, `school`) under
/// `reference`, until `until` (ms) or for good; a second grant with the same source and
/// reference replaces the first.
pub async fn grant(
    db: &Db,
    user: &str,
    plan: &str,
    source: &str,
    reference: &str,
    until: Option<i64>,
) -> StoreResult<()> {
    let mut row = json!({"user": user, "plan": plan, "source": source, "reference": reference, "created_at": now_ms()});
    // An absent field, not a null: the column is `option<int>`.
    if let Some(until) = until {
        row["until"] = json!(until);
    }
    db.exec(
        "UPSERT type::record('entitlement', [$u, $source, $ref]) CONTENT $row",
        json!({"u": user, "source": source, "ref": reference, "row": row}),
    )
    .await
}

/// The billing room's answer to what a plan lets an account open.
pub struct Gatekeeper {
    /// The database.
    pub db: Db,
    /// Plans and the rules they set.
    pub billing: std::sync::Arc<Billing>,
}

impl crate::tutoring::state::PlanGate for Gatekeeper {
    fn refuses<'a>(
        &'a self,
        user: &'a str,
        mode: ChatMode,
        personality: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<Option<String>>> + Send + 'a>>
    {
        Box::pin(async move {
            // Only what the plan includes: a day's used-up messages do not stop a learner from
            // opening (and reading) a conversation.
            let Some(plan) = self
                .billing
                .entitlement(&self.db, user, now_ms())
                .await?
                .plan
            else {
                return Ok(None);
            };
            Ok(plan
                .allows(mode, personality)
                .err()
                .map(|l| l.explain(&plan)))
        })
    }
}
