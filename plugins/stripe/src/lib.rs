//! Stripe as a payment provider: hosted Checkout Sessions for subscriptions, the Customer
//! Portal, subscription changes and refunds through Stripe's API (form-encoded, every POST
//! with an `Idempotency-Key`), and webhooks verified from the raw body.
//!
//! Settings: `api_base` (default `https://api.stripe.com`; penpal's simulator in tests),
//! `automatic_tax` (`true` to have Stripe Tax compute tax at checkout).
//! Secrets: `api_key`, `webhook_secret` (`whsec_…`).
//!
//! A webhook's `Stripe-Signature` is `t=<unix seconds>,v1=<hex>,v1=<hex>…`: each `v1` is an
//! HMAC-SHA256 of `"{t}.{body}"`. During a secret rotation Stripe signs with every active
//! secret, so any `v1` matching ours verifies; the comparison is constant-time, and a `t` more
//! than 300 seconds from when penpal received the body is refused. Nothing is parsed before.

use penpal_host_api::config;
use penpal_host_api::http;
use penpal_host_api::payments::{
    CheckoutRequest, EventKind, Interval, Money, PaymentEvent, PaymentProvider, Redirect,
    Subscription, SubscriptionStatus, Webhook,
};
use penpal_host_api::signature;
use penpal_host_api::types::PluginError;
use serde_json::Value;

/// Oldest (or furthest in the future) a signature may be, in seconds.
pub const TOLERANCE: u64 = 300;

/// `t=…,v1=…`, each signature over `"{t}.{body}"`.
const SCHEME: signature::Scheme = signature::Scheme {
    separator: ',',
    time: "t",
    signature: "v1",
    joiner: b".",
};

struct Stripe;

fn api_base() -> String {
    config::get("api_base").unwrap_or_else(|| "https://api.stripe.com".into())
}

/// `application/x-www-form-urlencoded`, as Stripe's API takes it.
fn form(pairs: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pair(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Calls Stripe: `method path` with `params`, and the JSON answer.
fn call(
    method: &str,
    path: &str,
    params: &[(String, String)],
    idempotency_key: Option<&str>,
) -> Result<Value, PluginError> {
    let key = config::secret("api_key")?;
    let auth = format!("Bearer {key}");
    let body = form(params);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("stripe-version", "2024-06-20"),
    ];
    if let Some(k) = idempotency_key {
        headers.push(("idempotency-key", k));
    }
    let url = format!("{}{path}", api_base());
    let response = http::request(method, &url, &headers, body.as_bytes())?;
    let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let message = || {
        json["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string()
    };
    match response.status {
        200..=299 => Ok(json),
        401 | 403 => Err(PluginError::Denied(format!(
            "Stripe refused the API key: {}",
            message()
        ))),
        404 => Err(PluginError::NotFound(message())),
        409 | 429 | 500..=599 => Err(PluginError::Unavailable(format!(
            "Stripe answered {}: {}",
            response.status,
            message()
        ))),
        status => Err(PluginError::InvalidInput(format!(
            "Stripe answered {status}: {}",
            message()
        ))),
    }
}

fn interval(i: Interval) -> &'static str {
    match i {
        Interval::Month => "month",
        Interval::Year => "year",
    }
}

fn redirect(json: &Value) -> Result<Redirect, PluginError> {
    match (json["id"].as_str(), json["url"].as_str()) {
        (Some(id), Some(url)) => Ok(Redirect {
            id: id.to_string(),
            url: url.to_string(),
        }),
        _ => Err(PluginError::Internal(
            "Stripe's answer has no id and url".into(),
        )),
    }
}

fn status(s: &str) -> SubscriptionStatus {
    match s {
        "trialing" => SubscriptionStatus::Trialing,
        "active" => SubscriptionStatus::Active,
        "past_due" => SubscriptionStatus::PastDue,
        "unpaid" => SubscriptionStatus::Unpaid,
        "paused" => SubscriptionStatus::Paused,
        // WIT 0.2 has no `incomplete-expired`: an incomplete subscription that ends is
        // reported canceled, and penpal reads that pair as expired.
        "canceled" | "incomplete_expired" => SubscriptionStatus::Canceled,
        _ => SubscriptionStatus::Incomplete,
    }
}

/// A subscription object as penpal's terms.
fn subscription(o: &Value) -> Option<Subscription> {
    Some(Subscription {
        id: o["id"].as_str()?.to_string(),
        status: status(o["status"].as_str().unwrap_or("incomplete")),
        plan_id: o["metadata"]["penpal_plan"].as_str().map(str::to_string),
        // Newer API versions keep the period on the subscription's items.
        current_period_end: o["current_period_end"]
            .as_u64()
            .or_else(|| o["items"]["data"][0]["current_period_end"].as_u64()),
        trial_end: o["trial_end"].as_u64(),
        cancel_at_period_end: o["cancel_at_period_end"].as_bool().unwrap_or(false),
    })
}

fn money(amount: &Value, currency: &Value) -> Option<Money> {
    Some(Money {
        amount_minor: amount.as_i64()?,
        currency: currency.as_str()?.to_ascii_uppercase(),
    })
}

/// Whether `header` carries a signature of `body` under `secret` no further than
/// [`TOLERANCE`] from `now`.
pub fn verify(header: &str, body: &[u8], secret: &[u8], now: u64) -> Result<(), PluginError> {
    signature::verify(&SCHEME, header, body, secret, now, TOLERANCE)
}

/// The event in penpal's terms (after verification).
fn event(e: &Value) -> Result<PaymentEvent, PluginError> {
    let bad = |what: &str| PluginError::InvalidInput(format!("the event has no {what}"));
    let id = e["id"].as_str().ok_or_else(|| bad("id"))?.to_string();
    let provider_type = e["type"].as_str().ok_or_else(|| bad("type"))?.to_string();
    let occurred_at = e["created"].as_u64().ok_or_else(|| bad("created time"))?;
    let o = &e["data"]["object"];
    let kind = match provider_type.as_str() {
        "checkout.session.completed" => EventKind::CheckoutCompleted,
        "customer.subscription.created" => EventKind::SubscriptionCreated,
        "customer.subscription.updated" => EventKind::SubscriptionUpdated,
        "customer.subscription.deleted" => EventKind::SubscriptionDeleted,
        "customer.subscription.trial_will_end" => EventKind::TrialWillEnd,
        "customer.subscription.paused" => EventKind::SubscriptionPaused,
        "customer.subscription.resumed" => EventKind::SubscriptionResumed,
        "invoice.paid" => EventKind::InvoicePaid,
        "invoice.payment_failed" => EventKind::PaymentFailed,
        "charge.refunded" => EventKind::Refunded,
        "charge.dispute.created" => EventKind::DisputeOpened,
        _ => EventKind::Other,
    };
    let is_subscription = provider_type.starts_with("customer.subscription.");
    let customer_id = o["metadata"]["penpal_customer"]
        .as_str()
        .or_else(|| o["client_reference_id"].as_str())
        .or_else(|| o["subscription_details"]["metadata"]["penpal_customer"].as_str())
        .or_else(|| o["parent"]["subscription_details"]["metadata"]["penpal_customer"].as_str())
        .map(str::to_string);
    let amount = match kind {
        EventKind::InvoicePaid => money(&o["amount_paid"], &o["currency"]),
        // What could not be taken, not what was (nothing).
        EventKind::PaymentFailed => money(&o["amount_due"], &o["currency"]),
        EventKind::Refunded => money(&o["amount_refunded"], &o["currency"]),
        EventKind::DisputeOpened => money(&o["amount"], &o["currency"]),
        _ => None,
    };
    let payment_id = match kind {
        EventKind::InvoicePaid | EventKind::PaymentFailed => o["payment_intent"]
            .as_str()
            .or_else(|| o["charge"].as_str()),
        // Invoices name the payment intent; a charge and a dispute name it beside the charge.
        EventKind::Refunded => o["payment_intent"].as_str().or_else(|| o["id"].as_str()),
        EventKind::DisputeOpened => o["payment_intent"]
            .as_str()
            .or_else(|| o["charge"].as_str()),
        _ => None,
    }
    .map(str::to_string);
    // Invoices and checkouts name their subscription; its status comes with the next
    // `customer.subscription.*` event.
    let subscription = if is_subscription {
        subscription(o)
    } else {
        None
    };
    let subscription_ref = o["subscription"].as_str().map(str::to_string);
    Ok(PaymentEvent {
        id,
        kind,
        provider_type,
        customer_id,
        provider_customer_id: o["customer"].as_str().map(str::to_string),
        subscription: subscription.or_else(|| {
            subscription_ref.map(|id| Subscription {
                id,
                // Only the id is known here: the host reads `incomplete` with no other fields
                // as "a reference", and applies payment facts to what it holds.
                status: SubscriptionStatus::Incomplete,
                plan_id: o["metadata"]["penpal_plan"].as_str().map(str::to_string),
                current_period_end: None,
                trial_end: None,
                cancel_at_period_end: false,
            })
        }),
        payment_id,
        amount,
        occurred_at,
    })
}

impl PaymentProvider for Stripe {
    fn create_checkout(r: CheckoutRequest) -> Result<Redirect, PluginError> {
        let mut p = vec![
            pair("success_url", &r.success_url),
            pair("cancel_url", &r.cancel_url),
            pair("client_reference_id", &r.customer_id),
            pair("locale", r.locale.split('-').next().unwrap_or("auto")),
            pair("line_items[0][quantity]", 1),
            pair(
                "line_items[0][price_data][currency]",
                r.price.currency.to_ascii_lowercase(),
            ),
            pair(
                "line_items[0][price_data][unit_amount]",
                r.price.amount_minor,
            ),
            pair("line_items[0][price_data][product_data][name]", &r.plan_id),
            pair("metadata[penpal_customer]", &r.customer_id),
            pair("metadata[penpal_plan]", &r.plan_id),
        ];
        match &r.provider_customer_id {
            Some(c) => p.push(pair("customer", c)),
            None => p.push(pair("customer_email", &r.customer_email)),
        }
        match r.interval {
            Some(i) => {
                p.push(pair("mode", "subscription"));
                p.push(pair(
                    "line_items[0][price_data][recurring][interval]",
                    interval(i),
                ));
                p.push(pair(
                    "subscription_data[metadata][penpal_customer]",
                    &r.customer_id,
                ));
                p.push(pair("subscription_data[metadata][penpal_plan]", &r.plan_id));
                if r.trial_days > 0 {
                    p.push(pair("subscription_data[trial_period_days]", r.trial_days));
                    // Without a card, the trial ends paused rather than charging nothing.
                    p.push(pair(
                        "subscription_data[trial_settings][end_behavior][missing_payment_method]",
                        "pause",
                    ));
                    p.push(pair("payment_method_collection", "if_required"));
                }
            }
            None => p.push(pair("mode", "payment")),
        }
        // Stripe Tax, when the operator's Stripe account has it: Stripe computes the tax from
        // the address it collects.
        if config::get("automatic_tax").as_deref() == Some("true") {
            p.push(pair("automatic_tax[enabled]", "true"));
            p.push(pair("billing_address_collection", "required"));
        }
        if let Some(code) = &r.coupon {
            p.push(pair("discounts[0][promotion_code]", code));
        } else {
            p.push(pair("allow_promotion_codes", "true"));
        }
        redirect(&call(
            "POST",
            "/v1/checkout/sessions",
            &p,
            Some(&r.idempotency_key),
        )?)
    }

    fn create_portal(customer: String, return_url: String) -> Result<Redirect, PluginError> {
        let p = [pair("customer", customer), pair("return_url", return_url)];
        redirect(&call("POST", "/v1/billing_portal/sessions", &p, None)?)
    }

    fn verify_webhook(hook: Webhook) -> Result<Vec<PaymentEvent>, PluginError> {
        let secret = config::secret("webhook_secret")?;
        let header = hook
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("stripe-signature"))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| PluginError::Denied("no Stripe-Signature header".into()))?;
        verify(header, &hook.body, secret.as_bytes(), hook.received_at)?;
        let e: Value = serde_json::from_slice(&hook.body)
            .map_err(|e| PluginError::InvalidInput(format!("the body is not JSON: {e}")))?;
        Ok(vec![event(&e)?])
    }

    fn cancel_subscription(
        id: String,
        at_period_end: bool,
        idempotency_key: String,
    ) -> Result<Subscription, PluginError> {
        let o = if at_period_end {
            call(
                "POST",
                &format!("/v1/subscriptions/{id}"),
                &[pair("cancel_at_period_end", "true")],
                Some(&idempotency_key),
            )?
        } else {
            call("DELETE", &format!("/v1/subscriptions/{id}"), &[], None)?
        };
        subscription(&o)
            .ok_or_else(|| PluginError::Internal("no subscription in the answer".into()))
    }

    fn resume_subscription(
        id: String,
        idempotency_key: String,
    ) -> Result<Subscription, PluginError> {
        let o = call(
            "POST",
            &format!("/v1/subscriptions/{id}"),
            &[pair("cancel_at_period_end", "false")],
            Some(&idempotency_key),
        )?;
        subscription(&o)
            .ok_or_else(|| PluginError::Internal("no subscription in the answer".into()))
    }

    fn change_plan(
        id: String,
        plan_id: String,
        price: Money,
        every: Interval,
        idempotency_key: String,
    ) -> Result<Subscription, PluginError> {
        let current = call("GET", &format!("/v1/subscriptions/{id}"), &[], None)?;
        let item = current["items"]["data"][0]["id"]
            .as_str()
            .ok_or_else(|| PluginError::Internal("the subscription has no item".into()))?;
        let o = call(
            "POST",
            &format!("/v1/subscriptions/{id}"),
            &[
                pair("items[0][id]", item),
                pair(
                    "items[0][price_data][currency]",
                    price.currency.to_ascii_lowercase(),
                ),
                pair("items[0][price_data][unit_amount]", price.amount_minor),
                pair("items[0][price_data][recurring][interval]", interval(every)),
                pair("items[0][price_data][product]", &plan_id),
                pair("metadata[penpal_plan]", &plan_id),
                pair("proration_behavior", "create_prorations"),
            ],
            Some(&idempotency_key),
        )?;
        subscription(&o)
            .ok_or_else(|| PluginError::Internal("no subscription in the answer".into()))
    }

    fn refund(
        payment_id: String,
        amount: Option<Money>,
        idempotency_key: String,
    ) -> Result<(), PluginError> {
        let mut p = vec![if payment_id.starts_with("ch_") {
            pair("charge", &payment_id)
        } else {
            pair("payment_intent", &payment_id)
        }];
        if let Some(a) = amount {
            p.push(pair("amount", a.amount_minor));
        }
        call("POST", "/v1/refunds", &p, Some(&idempotency_key)).map(|_| ())
    }
}

penpal_host_api::export_payment_provider!(Stripe);
