//! Billing: plans and their price books ([`plans`]), what each account may do and why
//! ([`entitlements`]), the subscription state machine ([`subscription`]), its HTTP face
//! ([`routes`]), and the client for payment-provider plugins ([`provider::PaymentsClient`]).
//! Webhooks, trials, coupons and tax build on these (see `docs/billing.md`).

pub mod coupons;
pub mod entitlements;
pub mod invoices;
pub mod manage;
pub mod money;
pub mod plans;
pub mod provider;
pub mod routes;
pub mod simulator;
pub mod subscription;
pub mod sweep;
pub mod tax;
pub mod webhooks;

pub use entitlements::{Billing, PlanLimit};

/// The billing room's part of a person's data: the plans granted to them, their
/// subscriptions and payment events; deleting an account first cancels its subscriptions at
/// the provider.
pub struct BillingData {
    /// The database.
    pub db: crate::store::Db,
    /// Payment-provider plugins.
    pub payments: provider::PaymentsClient,
}

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
                "billing_country",
                "SELECT VALUE country FROM billing_account WHERE user = $u",
            ),
            (
                "invoices",
                "SELECT provider, payment_id, plan, amount_minor, currency, refunded_minor, status, dispute, tax, paid_at FROM invoice WHERE user = $u ORDER BY paid_at",
            ),
            (
                "payment_events",
                "SELECT provider, provider_type, occurred_at, received_at, status FROM billing_event WHERE user = $u ORDER BY occurred_at",
            ),
        ]
    }

    fn delete(&self) -> &'static str {
        "DELETE entitlement WHERE user = $u; DELETE subscription WHERE user = $u; DELETE billing_customer WHERE user = $u; DELETE billing_event WHERE user = $u; DELETE coupon_redemption WHERE user = $u; UPDATE invoice SET user = 'deleted' WHERE user = $u; DELETE billing_account WHERE user = $u;"
    }

    fn release<'a>(
        &'a self,
        user: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send + 'a>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Live {
                provider: String,
                provider_id: String,
            }
            let live: Vec<Live> = self
                .db
                .rows(
                    "SELECT provider, provider_id FROM subscription WHERE user = $u AND status NOT IN ['canceled', 'incomplete_expired']",
                    serde_json::json!({"u": user}),
                )
                .await?;
            for s in live {
                // At once, not at the period's end: the account is going.
                self.payments
                    .cancel_subscription(
                        &s.provider,
                        &s.provider_id,
                        false,
                        &format!("delete-{}", s.provider_id),
                    )
                    .await?;
                tracing::info!(user = %user, provider = %s.provider, "subscription canceled before the account's deletion");
            }
            Ok(())
        })
    }
}
