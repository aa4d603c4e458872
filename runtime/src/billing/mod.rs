//! Billing: plans, trials, entitlements and subscriptions, and the payment providers that
//! charge for them. So far the room holds its client for the `payment-provider` world
//! ([`provider::PaymentsClient`]); plans, subscriptions and webhooks build on it.

pub mod provider;
