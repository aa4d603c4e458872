//! The billing room's client for the `payment-provider` world, and what a provider's answers
//! count against the output limit. Providers run from `penpal:plugin@0.2`.

use std::sync::Arc;

use crate::plugins::bindings::v0_2::payment_provider::PaymentProvider;
use crate::plugins::{CallError, Kind, OutputSize, PluginHost, lift};

pub use crate::plugins::bindings::v0_2::payment_provider::exports::penpal::plugin::payments::{
    CheckoutRequest, EventKind, Interval, Money, PaymentEvent, Redirect, Subscription,
    SubscriptionStatus, Webhook,
};

/// Calls payment-provider plugins.
#[derive(Clone)]
pub struct PaymentsClient {
    host: Arc<PluginHost>,
}

macro_rules! provider_call {
    ($self:ident, $name:ident, $function:literal, |$p:ident, $store:ident| $call:expr) => {{
        let plugin = $self.host.get_kind($name, Kind::PaymentProvider)?;
        $self
            .host
            .call(
                &plugin,
                $function,
                |$p: PaymentProvider, mut $store| async move {
                    let r = $call.await;
                    ($store, lift(r))
                },
            )
            .await
    }};
}

impl PaymentsClient {
    /// A client over `host`'s installed providers.
    pub fn new(host: Arc<PluginHost>) -> Self {
        PaymentsClient { host }
    }

    /// A hosted checkout page for `request` at provider `name`.
    pub async fn create_checkout(
        &self,
        name: &str,
        request: &CheckoutRequest,
    ) -> Result<Redirect, CallError> {
        provider_call!(self, name, "create-checkout", |p, store| p
            .penpal_plugin_payments()
            .call_create_checkout(&mut store, request))
    }

    /// The provider's page where `customer` manages their payments.
    pub async fn create_portal(
        &self,
        name: &str,
        customer: &str,
        return_url: &str,
    ) -> Result<Redirect, CallError> {
        provider_call!(self, name, "create-portal", |p, store| p
            .penpal_plugin_payments()
            .call_create_portal(&mut store, customer, return_url))
    }

    /// Verifies and reads a webhook exactly as received.
    pub async fn verify_webhook(
        &self,
        name: &str,
        hook: &Webhook,
    ) -> Result<Vec<PaymentEvent>, CallError> {
        provider_call!(self, name, "verify-webhook", |p, store| p
            .penpal_plugin_payments()
            .call_verify_webhook(&mut store, hook))
    }

    /// Cancels a subscription now or at its period's end.
    pub async fn cancel_subscription(
        &self,
        name: &str,
        subscription: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<Subscription, CallError> {
        provider_call!(self, name, "cancel-subscription", |p, store| p
            .penpal_plugin_payments()
            .call_cancel_subscription(
                &mut store,
                subscription,
                at_period_end,
                idempotency_key
            ))
    }

    /// Undoes a cancellation scheduled for the period's end.
    pub async fn resume_subscription(
        &self,
        name: &str,
        subscription: &str,
        idempotency_key: &str,
    ) -> Result<Subscription, CallError> {
        provider_call!(self, name, "resume-subscription", |p, store| p
            .penpal_plugin_payments()
            .call_resume_subscription(&mut store, subscription, idempotency_key))
    }

    /// Moves a subscription to another plan.
    pub async fn change_plan(
        &self,
        name: &str,
        subscription: &str,
        plan: &str,
        price: &Money,
        interval: Interval,
        idempotency_key: &str,
    ) -> Result<Subscription, CallError> {
        provider_call!(self, name, "change-plan", |p, store| p
            .penpal_plugin_payments()
            .call_change_plan(
                &mut store,
                subscription,
                plan,
                price,
                interval,
                idempotency_key
            ))
    }

    /// Refunds a payment, whole when `amount` is none.
    pub async fn refund(
        &self,
        name: &str,
        payment: &str,
        amount: Option<&Money>,
        idempotency_key: &str,
    ) -> Result<(), CallError> {
        provider_call!(self, name, "refund", |p, store| p
            .penpal_plugin_payments()
            .call_refund(&mut store, payment, amount, idempotency_key))
    }
}

impl OutputSize for Redirect {
    fn output_size(&self) -> usize {
        self.id.len() + self.url.len()
    }
}

impl OutputSize for Money {
    fn output_size(&self) -> usize {
        self.currency.len() + 8
    }
}

impl OutputSize for Subscription {
    fn output_size(&self) -> usize {
        self.id.len() + self.plan_id.output_size() + 32
    }
}

impl OutputSize for PaymentEvent {
    fn output_size(&self) -> usize {
        self.id.len()
            + self.provider_type.len()
            + self.customer_id.output_size()
            + self.provider_customer_id.output_size()
            + self.subscription.output_size()
            + self.payment_id.output_size()
            + self.amount.output_size()
            + 16
    }
}
