//! Billing: plans and their price books ([`plans`]), what each account may do and why
//! ([`entitlements`]), the subscription state machine ([`subscription`]), its HTTP face
//! ([`routes`]), and the client for payment-provider plugins ([`provider::PaymentsClient`]).
//! Webhooks, trials, coupons and tax build on these (see `docs/billing.md`).

pub mod entitlements;
pub mod plans;
pub mod provider;
pub mod routes;
pub mod simulator;
pub mod subscription;
pub mod webhooks;

pub use entitlements::{Billing, PlanLimit};

/// The billing room's part of a person's data: the plans granted to them.
pub struct BillingData;

impl crate::store::personal::PersonalData for BillingData {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "plans",
                "SELECT plan, source, until, created_at FROM entitlement WHERE user = $u ORDER BY created_at",
            ),
            (
                "subscriptions",
                "SELECT provider, status, plan, period_end, trial_end, cancel_at_period_end, updated_at FROM subscription WHERE user = $u",
            ),
            (
                "payment_events",
                "SELECT provider, provider_type, occurred_at, received_at, status FROM billing_event WHERE user = $u ORDER BY occurred_at",
            ),
        ]
    }

    fn delete(&self) -> &'static str {
        "DELETE entitlement WHERE user = $u; DELETE subscription WHERE user = $u; DELETE billing_customer WHERE user = $u; DELETE billing_event WHERE user = $u;"
    }
}
