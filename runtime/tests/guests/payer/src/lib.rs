//! A payment provider for tests: checkouts and portals are URLs built from the request, and a
//! webhook verifies only when its `x-test-signature` header equals the granted secret
//! `webhook_secret` — so a test sees the secret reach the plugin and a bad signature refused.

use penpal_host_api::config;
use penpal_host_api::payments::{
    CheckoutRequest, EventKind, Interval, Money, PaymentEvent, PaymentProvider, Redirect,
    Subscription, SubscriptionStatus, Webhook,
};
use penpal_host_api::types::PluginError;
use serde_json::Value;

struct Payer;

fn subscription(id: &str, status: SubscriptionStatus, plan: Option<String>) -> Subscription {
    Subscription {
        id: id.to_string(),
        status,
        plan_id: plan,
        current_period_end: Some(1_800_000_000),
        trial_end: None,
        cancel_at_period_end: false,
    }
}

impl PaymentProvider for Payer {
    fn create_checkout(request: CheckoutRequest) -> Result<Redirect, PluginError> {
        let every = match request.interval {
            Some(Interval::Month) => "month",
            Some(Interval::Year) => "year",
            None => "once",
        };
        Ok(Redirect {
            id: format!("cs_{}", request.idempotency_key),
            url: format!(
                "https://pay.test/checkout/{}?customer={}&amount={}{}&every={every}&trial={}",
                request.plan_id,
                request.customer_id,
                request.price.amount_minor,
                request.price.currency,
                request.trial_days
            ),
        })
    }

    fn create_portal(customer: String, return_url: String) -> Result<Redirect, PluginError> {
        Ok(Redirect {
            id: format!("portal_{customer}"),
            url: format!("https://pay.test/portal/{customer}?return={return_url}"),
        })
    }

    fn verify_webhook(hook: Webhook) -> Result<Vec<PaymentEvent>, PluginError> {
        let secret = config::secret("webhook_secret")?;
        let signed = hook
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-test-signature") && *v == secret);
        if !signed {
            return Err(PluginError::Denied("bad or missing signature".into()));
        }
        let body: Value = serde_json::from_slice(&hook.body)
            .map_err(|e| PluginError::InvalidInput(format!("body: {e}")))?;
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let kind = match text("type").as_deref() {
            Some("invoice.paid") => EventKind::InvoicePaid,
            Some("invoice.payment_failed") => EventKind::PaymentFailed,
            Some("customer.subscription.deleted") => EventKind::SubscriptionDeleted,
            _ => EventKind::Other,
        };
        Ok(vec![PaymentEvent {
            id: text("id").ok_or_else(|| PluginError::InvalidInput("no id".into()))?,
            kind,
            provider_type: text("type").unwrap_or_default(),
            customer_id: text("customer"),
            provider_customer_id: None,
            subscription: text("subscription")
                .map(|id| subscription(&id, SubscriptionStatus::Active, None)),
            payment_id: None,
            amount: body.get("amount").and_then(Value::as_i64).map(|a| Money {
                amount_minor: a,
                currency: "EUR".into(),
            }),
            occurred_at: hook.received_at,
        }])
    }

    fn cancel_subscription(
        id: String,
        at_period_end: bool,
        _: String,
    ) -> Result<Subscription, PluginError> {
        let mut s = subscription(&id, SubscriptionStatus::Active, None);
        if at_period_end {
            s.cancel_at_period_end = true;
        } else {
            s.status = SubscriptionStatus::Canceled;
        }
        Ok(s)
    }

    fn resume_subscription(id: String, _: String) -> Result<Subscription, PluginError> {
        Ok(subscription(&id, SubscriptionStatus::Active, None))
    }

    fn change_plan(
        id: String,
        plan: String,
        _: Money,
        _: Interval,
        _: String,
    ) -> Result<Subscription, PluginError> {
        Ok(subscription(&id, SubscriptionStatus::Active, Some(plan)))
    }

    fn refund(payment: String, amount: Option<Money>, _: String) -> Result<(), PluginError> {
        match amount {
            Some(m) if m.amount_minor <= 0 => Err(PluginError::InvalidInput(format!(
                "refund of {} for {payment} must be positive",
                m.amount_minor
            ))),
            _ => Ok(()),
        }
    }
}

penpal_host_api::export_payment_provider!(Payer);
