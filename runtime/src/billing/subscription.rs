//! The subscription state machine: every status a provider reports, the transitions between
//! them, and the order guard that keeps a late event from rolling state back. One pure
//! function, [`apply`], decides; the webhook path stores what it returns.
//!
//! Providers report a subscription whole (Stripe's `customer.subscription.*`, Paddle's
//! `subscription.*`); those snapshots are authoritative when they are newer than what is held.
//! Payment events (`invoice.paid`, `invoice.payment_failed`) move the status on their own only
//! where the provider's next snapshot would agree, so the two kinds of event can arrive in any
//! order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a subscription stands, in the providers' common terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; the first payment has not gone through yet.
    Incomplete,
    /// The first payment never went through in time: over, nothing was charged.
    IncompleteExpired,
    /// In its free trial.
    Trialing,
    /// Paid up.
    Active,
    /// A renewal payment failed; the provider is retrying (the learner keeps access meanwhile).
    PastDue,
    /// The retries ran out; the subscription stays, without access, until paid or canceled.
    Unpaid,
    /// Paused by the learner or at the end of a trial without a payment method.
    Paused,
    /// Over.
    Canceled,
}

impl Status {
    /// Whether it gives the plan's access: while trialing, paid, and during the provider's
    /// retries of a failed renewal (the grace period).
    pub fn entitles(self) -> bool {
        matches!(self, Status::Trialing | Status::Active | Status::PastDue)
    }

    /// Whether nothing can follow it.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Canceled | Status::IncompleteExpired)
    }

    /// Whether a provider may move a subscription from `self` to `next`.
    pub fn may_become(self, next: Status) -> bool {
        use Status::*;
        if self == next {
            return true;
        }
        match self {
            Incomplete => matches!(next, Active | Trialing | IncompleteExpired | Canceled),
            Trialing => matches!(
                next,
                Active | PastDue | Unpaid | Paused | Canceled | Incomplete
            ),
            Active => matches!(next, PastDue | Unpaid | Paused | Canceled),
            PastDue => matches!(next, Active | Unpaid | Paused | Canceled),
            Unpaid => matches!(next, Active | PastDue | Canceled),
            Paused => matches!(next, Active | Trialing | Canceled),
            Canceled | IncompleteExpired => false,
        }
    }
}

/// A subscription as penpal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Where it stands.
    pub status: Status,
    /// The host's plan id.
    pub plan: Option<String>,
    /// End of the paid (or trial) period, Unix seconds.
    pub period_end: Option<u64>,
    /// End of the trial, Unix seconds.
    pub trial_end: Option<u64>,
    /// Whether it stops at the period's end.
    pub cancel_at_period_end: bool,
    /// The provider's time of the newest fact applied, Unix seconds: older facts are stale.
    pub as_of: u64,
}

/// A fact about a subscription, from a provider's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The provider's whole view of the subscription.
    Snapshot {
        /// Its status.
        status: Status,
        /// The host's plan id, when the event carries it.
        plan: Option<String>,
        /// End of the current period.
        period_end: Option<u64>,
        /// End of the trial.
        trial_end: Option<u64>,
        /// Whether it stops at the period's end.
        cancel_at_period_end: bool,
    },
    /// A payment went through.
    Paid,
    /// A payment failed.
    PaymentFailed,
}

/// What applying a fact did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The subscription is now this.
    Changed(State),
    /// Nothing to change: the fact is older than what is held, or says what is held already.
    Unchanged,
    /// A transition no provider makes (a canceled subscription coming back): kept for the
    /// operator, not applied.
    Refused(String),
}

/// Applies `fact`, which the provider dates `at` (Unix seconds), to `held` (none: the first
/// fact about this subscription).
pub fn apply(held: Option<&State>, fact: &Fact, at: u64) -> Outcome {
    let Some(held) = held else {
        return match fact {
            Fact::Snapshot {
                status,
                plan,
                period_end,
                trial_end,
                cancel_at_period_end,
            } => Outcome::Changed(State {
                status: *status,
                plan: plan.clone(),
                period_end: *period_end,
                trial_end: *trial_end,
                cancel_at_period_end: *cancel_at_period_end,
                as_of: at,
            }),
            // A payment before the subscription is known: its snapshot will follow.
            Fact::Paid | Fact::PaymentFailed => Outcome::Unchanged,
        };
    };
    // Equal times apply: providers date several facts of one change with the same second.
    if at < held.as_of {
        return Outcome::Unchanged;
    }
    let next = match fact {
        Fact::Snapshot {
            status,
            plan,
            period_end,
            trial_end,
            cancel_at_period_end,
        } => State {
            status: *status,
            plan: plan.clone().or_else(|| held.plan.clone()),
            period_end: period_end.or(held.period_end),
            trial_end: trial_end.or(held.trial_end),
            cancel_at_period_end: *cancel_at_period_end,
            as_of: at,
        },
        Fact::Paid => match held.status {
            Status::Incomplete | Status::PastDue | Status::Unpaid => State {
                status: Status::Active,
                as_of: at,
                ..held.clone()
            },
            _ => return Outcome::Unchanged,
        },
        Fact::PaymentFailed => match held.status {
            Status::Active | Status::Trialing => State {
                status: Status::PastDue,
                as_of: at,
                ..held.clone()
            },
            _ => return Outcome::Unchanged,
        },
    };
    if !held.status.may_become(next.status) {
        return Outcome::Refused(format!(
            "a {:?} subscription cannot become {:?}",
            held.status, next.status
        ));
    }
    let same = State {
        as_of: held.as_of,
        ..next.clone()
    } == *held;
    if same {
        return Outcome::Unchanged;
    }
    Outcome::Changed(next)
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    fn held(status: Status, as_of: u64) -> State {
        State {
            status,
            plan: Some("premium-monthly".into()),
            period_end: Some(2_000),
            trial_end: None,
            cancel_at_period_end: false,
            as_of,
        }
    }

    fn snapshot(status: Status) -> Fact {
        Fact::Snapshot {
            status,
            plan: None,
            period_end: Some(3_000),
            trial_end: None,
            cancel_at_period_end: false,
        }
    }

    fn becomes(from: Status, fact: Fact) -> Option<Status> {
        match apply(Some(&held(from, 100)), &fact, 200) {
            Outcome::Changed(s) => Some(s.status),
            Outcome::Unchanged => Some(from),
            Outcome::Refused(_) => None,
        }
    }

    #[test]
    fn a_first_snapshot_starts_the_subscription() {
        let Outcome::Changed(s) = apply(None, &snapshot(Trialing), 50) else {
            panic!("applied");
        };
        assert_eq!(
            (s.status, s.as_of, s.period_end),
            (Trialing, 50, Some(3_000))
        );
    }

    #[test]
    fn a_payment_before_its_subscription_waits_for_the_snapshot() {
        assert_eq!(apply(None, &Fact::Paid, 50), Outcome::Unchanged);
    }

    #[test]
    fn incomplete_becomes_active_once_paid() {
        assert_eq!(becomes(Incomplete, Fact::Paid), Some(Active));
        assert_eq!(becomes(Incomplete, snapshot(Active)), Some(Active));
    }

    #[test]
    fn incomplete_expires_and_stays_expired() {
        assert_eq!(
            becomes(Incomplete, snapshot(IncompleteExpired)),
            Some(IncompleteExpired)
        );
        assert_eq!(becomes(IncompleteExpired, snapshot(Active)), None);
        assert_eq!(
            becomes(IncompleteExpired, Fact::Paid),
            Some(IncompleteExpired)
        );
    }

    #[test]
    fn a_trial_converts_to_active() {
        assert_eq!(becomes(Trialing, snapshot(Active)), Some(Active));
    }

    #[test]
    fn a_trial_without_a_payment_method_pauses_or_cancels() {
        assert_eq!(becomes(Trialing, snapshot(Paused)), Some(Paused));
        assert_eq!(becomes(Trialing, snapshot(Canceled)), Some(Canceled));
    }

    #[test]
    fn a_failed_renewal_is_past_due_and_keeps_access() {
        assert_eq!(becomes(Active, Fact::PaymentFailed), Some(PastDue));
        assert!(PastDue.entitles());
    }

    #[test]
    fn past_due_recovers_when_paid() {
        assert_eq!(becomes(PastDue, Fact::Paid), Some(Active));
        assert_eq!(becomes(PastDue, snapshot(Active)), Some(Active));
    }

    #[test]
    fn past_due_runs_out_to_unpaid_without_access() {
        assert_eq!(becomes(PastDue, snapshot(Unpaid)), Some(Unpaid));
        assert!(!Unpaid.entitles());
        assert_eq!(becomes(Unpaid, Fact::Paid), Some(Active));
    }

    #[test]
    fn cancel_at_period_end_keeps_access_until_the_provider_cancels() {
        let fact = Fact::Snapshot {
            status: Active,
            plan: None,
            period_end: Some(3_000),
            trial_end: None,
            cancel_at_period_end: true,
        };
        let Outcome::Changed(s) = apply(Some(&held(Active, 100)), &fact, 200) else {
            panic!("applied");
        };
        assert!(s.cancel_at_period_end && s.status.entitles());
        assert_eq!(
            s.plan.as_deref(),
            Some("premium-monthly"),
            "a snapshot without a plan keeps the one held"
        );
        assert_eq!(becomes(Active, snapshot(Canceled)), Some(Canceled));
    }

    #[test]
    fn a_canceled_subscription_never_comes_back() {
        for next in [Active, Trialing, PastDue, Paused, Unpaid, Incomplete] {
            assert_eq!(becomes(Canceled, snapshot(next)), None, "{next:?}");
        }
        assert_eq!(becomes(Canceled, Fact::Paid), Some(Canceled));
    }

    #[test]
    fn paused_resumes() {
        assert_eq!(becomes(Active, snapshot(Paused)), Some(Paused));
        assert_eq!(becomes(Paused, snapshot(Active)), Some(Active));
        assert!(!Paused.entitles());
    }

    #[test]
    fn a_payment_failure_on_a_paused_or_canceled_subscription_changes_nothing() {
        assert_eq!(becomes(Paused, Fact::PaymentFailed), Some(Paused));
        assert_eq!(becomes(Canceled, Fact::PaymentFailed), Some(Canceled));
    }

    #[test]
    fn an_older_fact_never_rolls_state_back() {
        let newer = held(Canceled, 500);
        assert_eq!(
            apply(Some(&newer), &snapshot(Active), 400),
            Outcome::Unchanged
        );
        let active = held(Active, 500);
        assert_eq!(
            apply(Some(&active), &Fact::PaymentFailed, 499),
            Outcome::Unchanged
        );
    }

    #[test]
    fn the_same_fact_twice_changes_nothing_the_second_time() {
        let Outcome::Changed(once) = apply(Some(&held(Active, 100)), &snapshot(PastDue), 200)
        else {
            panic!("applied");
        };
        assert_eq!(
            apply(Some(&once), &snapshot(PastDue), 200),
            Outcome::Unchanged
        );
    }

    #[test]
    fn every_status_may_stay_and_only_final_ones_go_nowhere() {
        let all = [
            Incomplete,
            IncompleteExpired,
            Trialing,
            Active,
            PastDue,
            Unpaid,
            Paused,
            Canceled,
        ];
        for s in all {
            assert!(s.may_become(s));
            let onward = all.iter().filter(|n| **n != s && s.may_become(**n)).count();
            assert_eq!(onward == 0, s.is_final(), "{s:?}");
        }
    }
}
