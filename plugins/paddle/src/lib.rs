//! Paddle Billing as a payment provider: checkouts on transactions with non-catalog prices,
//! the customer portal, cancellation, plan changes and refunds (adjustments) through Paddle's
//! JSON API, and webhooks verified from the raw body. Its shape differs from Stripe's on every
//! point the contract covers — JSON not forms, RFC 3339 times, amounts as strings, refunds that
//! need approval, no idempotency keys, no "trial will end" event — which is what it proves.
//!
//! Settings: `api_base` (default `https://api.paddle.com`; `https://sandbox-api.paddle.com`
//! for the sandbox; penpal's simulator in tests). Secrets: `api_key`, `webhook_secret` (the
//! notification destination's secret key).
//!
//! A webhook's `Paddle-Signature` is `ts=<unix seconds>;h1=<hex>[;h1=<hex>…]`: each `h1` is an
//! HMAC-SHA256 of `"{ts}:{body}"`. During a secret rotation Paddle signs with every active
//! secret, so any `h1` matching ours verifies; the comparison is constant-time and a `ts` more
//! than 300 seconds from when penpal received the body is refused. Nothing is parsed before.
//!
//! Paddle has no idempotency keys: the plugin keeps the answer to each key in its key-value
//! store, so a repeated checkout or refund request is answered, not made twice.

use penpal_host_api::payments::{
    CheckoutRequest, EventKind, Interval, Money, PaymentEvent, PaymentProvider, Redirect,
    Subscription, SubscriptionStatus, Webhook,
};
use penpal_host_api::types::PluginError;
use penpal_host_api::{config, http, kv, signature};
use serde_json::{Value, json};

/// Oldest (or furthest in the future) a signature may be, in seconds.
pub const TOLERANCE: u64 = 300;

/// `ts=…;h1=…`, each signature over `"{ts}:{body}"`.
const SCHEME: signature::Scheme = signature::Scheme {
    separator: ';',
    time: "ts",
    signature: "h1",
    joiner: b":",
};

struct Paddle;

fn api_base() -> String {
    config::get("api_base").unwrap_or_else(|| "https://api.paddle.com".into())
}

/// Calls Paddle: `method path` with a JSON `body`, and the answer's `data`.
fn call(method: &str, path: &str, body: Option<&Value>) -> Result<Value, PluginError> {
    let key = config::secret("api_key")?;
    let auth = format!("Bearer {key}");
    let bytes = body.map(Value::to_string).unwrap_or_default();
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("paddle-version", "1"),
    ];
    let url = format!("{}{path}", api_base());
    let response = http::request(method, &url, &headers, bytes.as_bytes())?;
    let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let detail = || {
        json["error"]["detail"]
            .as_str()
            .unwrap_or("no detail")
            .to_string()
    };
    match response.status {
        200..=299 => Ok(json["data"].clone()),
        401 | 403 => Err(PluginError::Denied(format!(
            "Paddle refused the API key: {}",
            detail()
        ))),
        404 => Err(PluginError::NotFound(detail())),
        409 | 429 | 500..=599 => Err(PluginError::Unavailable(format!(
            "Paddle answered {}: {}",
            response.status,
            detail()
        ))),
        status => Err(PluginError::InvalidInput(format!(
            "Paddle answered {status}: {}",
            detail()
        ))),
    }
}

/// The answer kept for `key`, or `make`'s, kept.
fn once(
    key: &str,
    make: impl FnOnce() -> Result<Value, PluginError>,
) -> Result<Value, PluginError> {
    let slot = format!("idempotency:{key}");
    if let Some(kept) = kv::get_json::<Value>(&slot)? {
        return Ok(kept);
    }
    let answer = make()?;
    kv::set_json(&slot, &answer)?;
    Ok(answer)
}

fn interval(i: Interval) -> &'static str {
    match i {
        Interval::Month => "month",
        Interval::Year => "year",
    }
}

/// A non-catalog price: penpal owns plans and prices, so none has to be set up at Paddle.
fn price(plan: &str, money: &Money, every: Option<Interval>, trial_days: u32) -> Value {
    let mut p = json!({
        "name": plan,
        "description": plan,
        "unit_price": {"amount": money.amount_minor.to_string(), "currency_code": money.currency},
        "tax_mode": "account_setting",
        "product": {"name": plan, "tax_category": "standard"},
    });
    if let Some(i) = every {
        p["billing_cycle"] = json!({"interval": interval(i), "frequency": 1});
    }
    if trial_days > 0 {
        p["trial_period"] = json!({"interval": "day", "frequency": trial_days});
    }
    p
}

/// Unix seconds of an RFC 3339 time such as `2024-04-12T10:18:49.621022Z`.
pub fn unix(t: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // The zone: `Z` or `±hh:mm`, after optional fractions of a second.
    let rest = t
        .get(19..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let h = rest.get(1..3)?.parse::<i64>().ok()?;
            let m = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss - offset).ok()
}

/// Whether `header` carries a signature of `body` under `secret` no further than
/// [`TOLERANCE`] from `now`.
pub fn verify(header: &str, body: &[u8], secret: &[u8], now: u64) -> Result<(), PluginError> {
    signature::verify(&SCHEME, header, body, secret, now, TOLERANCE)
}

fn status(s: &str) -> SubscriptionStatus {
    match s {
        "trialing" => SubscriptionStatus::Trialing,
        "active" => SubscriptionStatus::Active,
        "past_due" => SubscriptionStatus::PastDue,
        "paused" => SubscriptionStatus::Paused,
        "canceled" => SubscriptionStatus::Canceled,
        _ => SubscriptionStatus::Incomplete,
    }
}

/// A Paddle subscription entity in penpal's terms.
fn subscription(o: &Value) -> Option<Subscription> {
    Some(Subscription {
        id: o["id"].as_str()?.to_string(),
        status: status(o["status"].as_str().unwrap_or("")),
        plan_id: o["custom_data"]["penpal_plan"].as_str().map(str::to_string),
        current_period_end: o["current_billing_period"]["ends_at"]
            .as_str()
            .and_then(unix),
        trial_end: o["items"][0]["trial_dates"]["ends_at"]
            .as_str()
            .and_then(unix),
        cancel_at_period_end: o["scheduled_change"]["action"] == "cancel",
    })
}

/// An amount Paddle writes as a string of minor units.
fn money(amount: &Value, currency: &Value) -> Option<Money> {
    Some(Money {
        amount_minor: amount.as_str()?.parse().ok()?,
        currency: currency.as_str()?.to_ascii_uppercase(),
    })
}

/// What has been refunded on transaction `txn` so far, in its currency (approved refunds).
fn refunded_so_far(txn: &str, currency: &str) -> Result<Money, PluginError> {
    let list = call(
        "GET",
        &format!("/adjustments?transaction_id={txn}&action=refund"),
        None,
    )?;
    let total = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["status"] == "approved")
        .filter_map(|a| a["totals"]["total"].as_str()?.parse::<i64>().ok())
        .sum();
    Ok(Money {
        amount_minor: total,
        currency: currency.to_string(),
    })
}

/// The event in penpal's terms (after verification).
fn event(e: &Value) -> Result<PaymentEvent, PluginError> {
    let bad = |what: &str| PluginError::InvalidInput(format!("the event has no {what}"));
    let id = e["event_id"].as_str().ok_or_else(|| bad("id"))?.to_string();
    let provider_type = e["event_type"]
        .as_str()
        .ok_or_else(|| bad("type"))?
        .to_string();
    let occurred_at = e["occurred_at"]
        .as_str()
        .and_then(unix)
        .ok_or_else(|| bad("time"))?;
    let o = &e["data"];
    let approved_refund = o["action"] == "refund" && o["status"] == "approved";
    let kind = match provider_type.as_str() {
        "transaction.completed" => EventKind::InvoicePaid,
        "transaction.payment_failed" => EventKind::PaymentFailed,
        "subscription.created" => EventKind::SubscriptionCreated,
        "subscription.updated"
        | "subscription.activated"
        | "subscription.trialing"
        | "subscription.past_due" => EventKind::SubscriptionUpdated,
        "subscription.canceled" => EventKind::SubscriptionDeleted,
        "subscription.paused" => EventKind::SubscriptionPaused,
        "subscription.resumed" => EventKind::SubscriptionResumed,
        "adjustment.created" | "adjustment.updated" if approved_refund => EventKind::Refunded,
        "adjustment.created" if o["action"] == "chargeback" => EventKind::DisputeOpened,
        _ => EventKind::Other,
    };
    let is_subscription = provider_type.starts_with("subscription.");
    let is_adjustment = provider_type.starts_with("adjustment.");
    let currency = if is_adjustment {
        &o["currency_code"]
    } else {
        &o["details"]["totals"]["currency_code"]
    };
    let (payment_id, amount) = match kind {
        EventKind::InvoicePaid | EventKind::PaymentFailed => (
            o["id"].as_str().map(str::to_string),
            money(&o["details"]["totals"]["grand_total"], currency),
        ),
        EventKind::Refunded => {
            let txn = o["transaction_id"]
                .as_str()
                .ok_or_else(|| bad("transaction"))?;
            let currency = currency.as_str().unwrap_or_default().to_ascii_uppercase();
            (
                Some(txn.to_string()),
                Some(refunded_so_far(txn, &currency)?),
            )
        }
        EventKind::DisputeOpened => (
            o["transaction_id"].as_str().map(str::to_string),
            money(&o["totals"]["total"], currency),
        ),
        _ => (None, None),
    };
    let subscription = if is_subscription {
        subscription(o)
    } else {
        // Transactions and adjustments name their subscription; its state comes with the
        // next `subscription.*` event (an `incomplete` with no fields is a reference).
        o["subscription_id"].as_str().map(|sid| Subscription {
            id: sid.to_string(),
            status: SubscriptionStatus::Incomplete,
            plan_id: o["custom_data"]["penpal_plan"].as_str().map(str::to_string),
            current_period_end: None,
            trial_end: None,
            cancel_at_period_end: false,
        })
    };
    Ok(PaymentEvent {
        id,
        kind,
        provider_type,
        customer_id: o["custom_data"]["penpal_customer"]
            .as_str()
            .map(str::to_string),
        provider_customer_id: o["customer_id"].as_str().map(str::to_string),
        subscription,
        payment_id,
        amount,
        occurred_at,
    })
}

fn redirect(id: &Value, url: &Value) -> Result<Redirect, PluginError> {
    match (id.as_str(), url.as_str()) {
        (Some(id), Some(url)) => Ok(Redirect {
            id: id.to_string(),
            url: url.to_string(),
        }),
        _ => Err(PluginError::Internal(
            "Paddle's answer has no id and checkout URL (is a default payment link set?)".into(),
        )),
    }
}

fn answered(o: &Value) -> Result<Subscription, PluginError> {
    subscription(o).ok_or_else(|| PluginError::Internal("no subscription in the answer".into()))
}

impl PaymentProvider for Paddle {
    fn create_checkout(r: CheckoutRequest) -> Result<Redirect, PluginError> {
        let txn = once(&r.idempotency_key, || {
            let mut body = json!({
                "items": [{"quantity": 1, "price": price(&r.plan_id, &r.price, r.interval, r.trial_days)}],
                // Paddle copies custom data to the subscription; the success URL is for the
                // operator's Paddle.js checkout page (its `successUrl`).
                "custom_data": {"penpal_customer": r.customer_id, "penpal_plan": r.plan_id,
                                "penpal_success_url": r.success_url},
                "collection_mode": "automatic",
            });
            if let Some(c) = &r.provider_customer_id {
                body["customer_id"] = json!(c);
            }
            if let Some(code) = &r.coupon {
                // Paddle applies discounts by id; the operator created one with this code.
                let found = call(
                    "GET",
                    &format!("/discounts?code={code}&status=active"),
                    None,
                )?;
                let id = found[0]["id"].as_str().ok_or_else(|| {
                    PluginError::InvalidInput(format!("Paddle has no active discount `{code}`"))
                })?;
                body["discount_id"] = json!(id);
            }
            call("POST", "/transactions", Some(&body))
        })?;
        redirect(&txn["id"], &txn["checkout"]["url"])
    }

    fn create_portal(customer: String, _return_url: String) -> Result<Redirect, PluginError> {
        let o = call(
            "POST",
            &format!("/customers/{customer}/portal-sessions"),
            Some(&json!({})),
        )?;
        redirect(&o["id"], &o["urls"]["general"]["overview"])
    }

    fn verify_webhook(hook: Webhook) -> Result<Vec<PaymentEvent>, PluginError> {
        let secret = config::secret("webhook_secret")?;
        let header = hook
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("paddle-signature"))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| PluginError::Denied("no Paddle-Signature header".into()))?;
        verify(header, &hook.body, secret.as_bytes(), hook.received_at)?;
        let e: Value = serde_json::from_slice(&hook.body)
            .map_err(|e| PluginError::InvalidInput(format!("the body is not JSON: {e}")))?;
        Ok(vec![event(&e)?])
    }

    fn cancel_subscription(
        id: String,
        at_period_end: bool,
        _idempotency_key: String,
    ) -> Result<Subscription, PluginError> {
        let when = if at_period_end {
            "next_billing_period"
        } else {
            "immediately"
        };
        answered(&call(
            "POST",
            &format!("/subscriptions/{id}/cancel"),
            Some(&json!({"effective_from": when})),
        )?)
    }

    fn resume_subscription(
        id: String,
        _idempotency_key: String,
    ) -> Result<Subscription, PluginError> {
        // Removing the scheduled cancellation is Paddle's "resume" for a subscription still
        // running (`/resume` is for paused ones).
        answered(&call(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(&json!({"scheduled_change": null})),
        )?)
    }

    fn change_plan(
        id: String,
        plan_id: String,
        money: Money,
        every: Interval,
        _idempotency_key: String,
    ) -> Result<Subscription, PluginError> {
        // Paddle replaces custom data whole: keep the customer beside the new plan.
        let current = call("GET", &format!("/subscriptions/{id}"), None)?;
        let mut custom = current["custom_data"].clone();
        if !custom.is_object() {
            custom = json!({});
        }
        custom["penpal_plan"] = json!(plan_id);
        answered(&call(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(&json!({
                "items": [{"quantity": 1, "price": price(&plan_id, &money, Some(every), 0)}],
                "proration_billing_mode": "prorated_immediately",
                "custom_data": custom,
            })),
        )?)
    }

    fn refund(
        payment_id: String,
        amount: Option<Money>,
        idempotency_key: String,
    ) -> Result<(), PluginError> {
        once(&idempotency_key, || {
            let mut body = json!({
                "action": "refund",
                "transaction_id": payment_id,
                "reason": "refunded by the operator",
            });
            match &amount {
                None => body["type"] = json!("full"),
                Some(m) => {
                    // A partial refund names the line item it refunds.
                    let txn = call("GET", &format!("/transactions/{payment_id}"), None)?;
                    let item = txn["details"]["line_items"][0]["id"]
                        .as_str()
                        .ok_or_else(|| PluginError::Internal("the transaction has no line item".into()))?;
                    body["type"] = json!("partial");
                    body["items"] = json!([{"item_id": item, "type": "partial", "amount": m.amount_minor.to_string()}]);
                }
            }
            call("POST", "/adjustments", Some(&body))
        })
        .map(|_| ())
    }
}

penpal_host_api::export_payment_provider!(Paddle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_as_unix_seconds() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix("2024-04-12T10:18:49.621022Z"), Some(1_712_917_129));
        assert_eq!(unix("2024-04-12T12:18:49+02:00"), Some(1_712_917_129));
        assert_eq!(unix("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(unix("yesterday"), None);
        assert_eq!(unix("2024-13-01T00:00:00Z"), None);
    }
}
