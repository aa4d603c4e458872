//! A Paddle Billing simulator: the subset of Paddle's JSON API the `paddle` plugin uses
//! (transactions with non-catalog prices, discounts by code, customer portal sessions,
//! subscriptions, cancellation, adjustments), a checkout page that pays a transaction, and
//! **real signed webhooks** (`Paddle-Signature: ts=…;h1=…` over `"{ts}:{body}"`), which tests
//! also deliver by hand — late, twice, with a rotated or wrong secret, or altered.
//!
//! Refunds go as Paddle's do: an adjustment is created `pending_approval` and approved a
//! moment later, each step with its own webhook.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Delivery, now, sign_with};

/// A subscription the simulator holds.
#[derive(Debug, Clone)]
struct Sub {
    customer: String,
    status: String,
    custom_data: Value,
    price: Value,
    trial_end: Option<u64>,
    period_start: u64,
    period_end: u64,
    cancel_scheduled: bool,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    transactions: HashMap<String, Value>,
    subscriptions: HashMap<String, Sub>,
    adjustments: Vec<Value>,
    discounts: Vec<Value>,
    skew: i64,
}

/// A running Paddle simulator.
#[derive(Clone)]
pub struct Paddle {
    /// Where it listens.
    pub addr: SocketAddr,
    api_key: String,
    secret: String,
    webhook: Arc<Mutex<String>>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Paddle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paddle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// RFC 3339, as Paddle writes times.
fn rfc3339(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Paddle's signature: hex HMAC-SHA256 of `"{ts}:{body}"`.
pub fn sign(secret: &str, ts: u64, body: &str) -> String {
    sign_with(secret, &format!("{ts}:{body}"))
}

impl Paddle {
    /// Starts a simulator on a loopback port that takes `api_key` and sends its webhooks to
    /// `webhook`, signed with `secret`.
    pub async fn start(api_key: &str, secret: &str, webhook: &str) -> std::io::Result<Paddle> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Paddle::start_on(listener, api_key, secret, webhook)
    }

    /// [`Paddle::start`] on `listener`.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        api_key: &str,
        secret: &str,
        webhook: &str,
    ) -> std::io::Result<Paddle> {
        let sim = Paddle {
            addr: listener.local_addr()?,
            api_key: api_key.to_string(),
            secret: secret.to_string(),
            webhook: Arc::new(Mutex::new(webhook.to_string())),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/transactions", post(create_transaction))
            .route("/transactions/{id}", get(get_transaction))
            .route("/discounts", get(list_discounts))
            .route("/customers/{id}/portal-sessions", post(create_portal))
            .route(
                "/subscriptions/{id}",
                get(get_subscription).patch(update_subscription),
            )
            .route("/subscriptions/{id}/cancel", post(cancel_subscription))
            .route(
                "/adjustments",
                post(create_adjustment).get(list_adjustments),
            )
            .route("/checkout/{id}", get(checkout_page).post(pay))
            .with_state(sim.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Paddle simulator stopped");
            }
        });
        Ok(sim)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends webhooks to `url` from now on.
    pub fn send_to(&self, url: &str) {
        *self.webhook.lock().unwrap_or_else(|p| p.into_inner()) = url.to_string();
    }

    /// Its base URL (the plugin's `api_base`).
    pub fn url(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    fn id(&self, prefix: &str) -> String {
        let mut inner = self.lock();
        inner.next += 1;
        format!("{prefix}_sim{:06}", inner.next)
    }

    /// Moves the clock events are dated by `seconds`.
    pub fn skew(&self, seconds: i64) {
        self.lock().skew = seconds;
    }

    /// A discount the operator created at Paddle, with `code`.
    pub fn add_discount(&self, code: &str) -> String {
        let id = self.id("dsc");
        self.lock()
            .discounts
            .push(json!({"id": id, "code": code, "status": "active"}));
        id
    }

    /// An event of `kind` about `data`, dated by the simulator's clock.
    pub fn event(&self, kind: &str, data: Value) -> Value {
        let at = now().saturating_add_signed(self.lock().skew);
        json!({
            "event_id": self.id("evt"),
            "event_type": kind,
            "occurred_at": rfc3339(at),
            "notification_id": self.id("ntf"),
            "data": data,
        })
    }

    /// Sends `event` to penpal as Paddle would; returns penpal's status.
    pub async fn deliver(&self, event: &Value, how: &Delivery) -> u16 {
        let body = event.to_string();
        let ts = how.timestamp.unwrap_or_else(now);
        let secrets = how
            .secrets
            .clone()
            .unwrap_or_else(|| vec![self.secret.clone()]);
        let signatures: Vec<String> = secrets
            .iter()
            .map(|s| format!("h1={}", sign(s, ts, &body)))
            .collect();
        let header = format!("ts={ts};{}", signatures.join(";"));
        let body = if how.tamper {
            body.replace("\"event_type\"", "\"event_type\" ")
        } else {
            body
        };
        let body = how.body.clone().unwrap_or(body);
        super::send_webhook(&self.webhook, "paddle-signature", header, body).await
    }

    fn subscription_json(&self, id: &str) -> Option<Value> {
        let inner = self.lock();
        let s = inner.subscriptions.get(id)?;
        Some(json!({
            "id": id,
            "status": s.status,
            "customer_id": s.customer,
            "custom_data": s.custom_data,
            "current_billing_period": {"starts_at": rfc3339(s.period_start), "ends_at": rfc3339(s.period_end)},
            "scheduled_change": if s.cancel_scheduled {
                json!({"action": "cancel", "effective_at": rfc3339(s.period_end), "resume_at": null})
            } else { Value::Null },
            "items": [{"status": s.status, "quantity": 1, "price": s.price,
                       "trial_dates": s.trial_end.map(|t| json!({"starts_at": rfc3339(s.period_start), "ends_at": rfc3339(t)}))}],
        }))
    }

    /// Pays transaction `id` as its customer would: the customer and subscription are
    /// created and Paddle's webhooks sent in its order. Returns the subscription id.
    pub async fn complete_checkout(&self, txn: &str) -> Option<String> {
        let t = self.lock().transactions.get(txn).cloned()?;
        let price = t["items"][0]["price"].clone();
        let customer = t["customer_id"]
            .as_str()
            .map_or_else(|| self.id("ctm"), str::to_string);
        let sub_id = self.id("sub");
        let trial_days = price["trial_period"]["frequency"].as_u64().unwrap_or(0);
        let period = if price["billing_cycle"]["interval"] == "year" {
            365
        } else {
            30
        } * 86_400;
        let start = now();
        let sub = Sub {
            customer: customer.clone(),
            status: if trial_days > 0 { "trialing" } else { "active" }.into(),
            custom_data: t["custom_data"].clone(),
            price: price.clone(),
            trial_end: (trial_days > 0).then(|| start + trial_days * 86_400),
            period_start: start,
            period_end: start
                + if trial_days > 0 {
                    trial_days * 86_400
                } else {
                    period
                },
            cancel_scheduled: false,
        };
        self.lock().subscriptions.insert(sub_id.clone(), sub);
        let completed = {
            let mut inner = self.lock();
            let t = inner.transactions.get_mut(txn)?;
            t["status"] = json!("completed");
            t["customer_id"] = json!(customer);
            t["subscription_id"] = json!(sub_id);
            t["billed_at"] = json!(rfc3339(start));
            if trial_days > 0 {
                // A trial's first transaction charges nothing.
                t["details"]["totals"]["grand_total"] = json!("0");
                t["details"]["totals"]["total"] = json!("0");
            }
            t.clone()
        };
        let created = self.event("subscription.created", self.subscription_json(&sub_id)?);
        let paid = self.event("transaction.completed", completed);
        for e in [created, paid] {
            self.deliver(&e, &Delivery::default()).await;
        }
        Some(sub_id)
    }

    /// Changes subscription `id` and sends `subscription.updated` (or `…canceled`).
    pub async fn update(&self, id: &str, status: &str) -> Option<Value> {
        self.lock().subscriptions.get_mut(id)?.status = status.to_string();
        self.send_subscription(id).await
    }

    async fn send_subscription(&self, id: &str) -> Option<Value> {
        let event = self.subscription_event(id)?;
        self.deliver(&event, &Delivery::default()).await;
        Some(event)
    }

    /// The event reporting subscription `id` as it is now.
    fn subscription_event(&self, id: &str) -> Option<Value> {
        let object = self.subscription_json(id)?;
        let kind = if object["status"] == "canceled" {
            "subscription.canceled"
        } else {
            "subscription.updated"
        };
        Some(self.event(kind, object))
    }

    /// Subscription `id` as the API answers it, its webhook sent after.
    fn answer_then_send(&self, id: &str) -> Response {
        match self.subscription_event(id) {
            Some(e) => {
                let answer = e["data"].clone();
                self.send_later(vec![e]);
                data(answer)
            }
            None => not_found(id),
        }
    }

    /// Sends `events` in order after the API call that caused them has been answered, as
    /// Paddle does (a plugin waiting for its answer must not wait for penpal's webhook).
    fn send_later(&self, events: Vec<Value>) {
        let sim = self.clone();
        tokio::spawn(async move {
            for e in events {
                sim.deliver(&e, &Delivery::default()).await;
            }
        });
    }

    /// The payer's bank opens a chargeback on transaction `txn`.
    pub async fn chargeback(&self, txn: &str) -> Option<Value> {
        let t = self.lock().transactions.get(txn).cloned()?;
        let adj = json!({
            "id": self.id("adj"), "action": "chargeback", "type": "full", "status": "approved",
            "transaction_id": txn, "subscription_id": t["subscription_id"], "customer_id": t["customer_id"],
            "currency_code": t["currency_code"],
            "totals": {"total": t["details"]["totals"]["grand_total"], "currency_code": t["currency_code"]},
        });
        self.lock().adjustments.push(adj.clone());
        let event = self.event("adjustment.created", adj);
        self.deliver(&event, &Delivery::default()).await;
        Some(event)
    }

    /// Transactions completed with money taken, oldest first.
    pub fn payments(&self) -> Vec<String> {
        let inner = self.lock();
        let mut ids: Vec<String> = inner
            .transactions
            .iter()
            .filter(|(_, t)| {
                t["status"] == "completed" && t["details"]["totals"]["grand_total"] != "0"
            })
            .map(|(k, _)| k.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Whether subscription `id` is set to cancel at its period's end.
    pub fn cancel_scheduled(&self, id: &str) -> Option<bool> {
        self.lock()
            .subscriptions
            .get(id)
            .map(|s| s.cancel_scheduled)
    }
}

fn authorized(sim: &Paddle, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", sim.api_key))
}

fn error(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"type": "request_error", "code": code, "detail": detail.into()}})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "You aren't permitted to perform this request.",
    )
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Entity {what} not found"),
    )
}

fn data(v: Value) -> Response {
    Json(json!({"data": v})).into_response()
}

async fn create_transaction(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let price = &body["items"][0]["price"];
    let (Some(amount), Some(currency)) = (
        price["unit_price"]["amount"].as_str(),
        price["unit_price"]["currency_code"].as_str(),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "items[0].price.unit_price is required",
        );
    };
    if let Some(d) = body["discount_id"].as_str()
        && !sim.lock().discounts.iter().any(|x| x["id"] == d)
    {
        return not_found(d);
    }
    let id = sim.id("txn");
    let txn = json!({
        "id": id, "status": "ready", "items": body["items"], "custom_data": body["custom_data"],
        "customer_id": body["customer_id"], "discount_id": body["discount_id"], "currency_code": currency,
        "subscription_id": null,
        "details": {
            "totals": {"total": amount, "grand_total": amount, "tax": "0", "currency_code": currency},
            "line_items": [{"id": sim.id("txnitm"), "totals": {"total": amount}}],
        },
        "checkout": {"url": format!("{}/checkout/{id}", sim.url())},
    });
    sim.lock().transactions.insert(id, txn.clone());
    (StatusCode::CREATED, Json(json!({"data": txn}))).into_response()
}

async fn get_transaction(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let t = sim.lock().transactions.get(&id).cloned();
    t.map_or_else(|| not_found(&id), data)
}

async fn list_discounts(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let found: Vec<Value> = sim
        .lock()
        .discounts
        .iter()
        .filter(|d| q.get("code").is_none_or(|c| d["code"] == c.as_str()))
        .cloned()
        .collect();
    data(json!(found))
}

async fn create_portal(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Path(customer): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let id = sim.id("cpls");
    data(json!({"id": id, "customer_id": customer,
                "urls": {"general": {"overview": format!("{}/portal/{customer}", sim.url())}, "subscriptions": []}}))
}

async fn get_subscription(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    sim.subscription_json(&id)
        .map_or_else(|| not_found(&id), data)
}

async fn update_subscription(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    {
        let mut inner = sim.lock();
        let Some(sub) = inner.subscriptions.get_mut(&id) else {
            return not_found(&id);
        };
        if body.get("scheduled_change").is_some_and(Value::is_null) {
            sub.cancel_scheduled = false;
        }
        if let Some(price) = body["items"][0].get("price") {
            sub.price = price.clone();
        }
        if let Some(custom) = body.get("custom_data") {
            sub.custom_data = custom.clone();
        }
    }
    sim.answer_then_send(&id)
}

async fn cancel_subscription(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    {
        let mut inner = sim.lock();
        let Some(sub) = inner.subscriptions.get_mut(&id) else {
            return not_found(&id);
        };
        if body["effective_from"] == "immediately" {
            sub.status = "canceled".into();
        } else {
            sub.cancel_scheduled = true;
        }
    }
    sim.answer_then_send(&id)
}

async fn create_adjustment(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let txn_id = body["transaction_id"].as_str().unwrap_or_default();
    let Some(t) = sim.lock().transactions.get(txn_id).cloned() else {
        return not_found(txn_id);
    };
    let total: i64 = t["details"]["totals"]["grand_total"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let refunded: i64 = sim
        .lock()
        .adjustments
        .iter()
        .filter(|a| a["transaction_id"] == txn_id && a["action"] == "refund")
        .filter_map(|a| a["totals"]["total"].as_str()?.parse::<i64>().ok())
        .sum();
    let amount = match body["type"].as_str() {
        Some("full") => total - refunded,
        _ => body["items"][0]["amount"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
    };
    if amount <= 0 || refunded + amount > total {
        return error(
            StatusCode::BAD_REQUEST,
            "adjustment_amount_above_remaining_allowed",
            format!(
                "the adjustment of {amount} is more than the {} left",
                total - refunded
            ),
        );
    }
    let adj = json!({
        "id": sim.id("adj"), "action": body["action"], "type": body["type"], "status": "pending_approval",
        "transaction_id": txn_id, "subscription_id": t["subscription_id"], "customer_id": t["customer_id"],
        "reason": body["reason"], "currency_code": t["currency_code"],
        "totals": {"total": amount.to_string(), "currency_code": t["currency_code"]},
    });
    sim.lock().adjustments.push(adj.clone());
    let created = sim.event("adjustment.created", adj.clone());
    // Paddle approves refunds on its own time; the simulator at once.
    let approved = {
        let mut inner = sim.lock();
        let held = inner.adjustments.iter_mut().find(|a| a["id"] == adj["id"]);
        held.map(|a| {
            a["status"] = json!("approved");
            a.clone()
        })
    };
    let mut events = vec![created];
    if let Some(a) = approved {
        events.push(sim.event("adjustment.updated", a));
    }
    sim.send_later(events);
    (StatusCode::CREATED, Json(json!({"data": adj}))).into_response()
}

async fn list_adjustments(
    State(sim): State<Paddle>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let found: Vec<Value> = sim
        .lock()
        .adjustments
        .iter()
        .filter(|a| {
            q.get("transaction_id")
                .is_none_or(|t| a["transaction_id"] == t.as_str())
        })
        .filter(|a| q.get("action").is_none_or(|x| a["action"] == x.as_str()))
        .cloned()
        .collect();
    data(json!(found))
}

async fn checkout_page(State(sim): State<Paddle>, Path(id): Path<String>) -> Response {
    if !sim.lock().transactions.contains_key(&id) {
        return not_found(&id);
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Checkout (simulated)</title></head>\
         <body><main><h1>Paddle checkout (simulator)</h1><p>No card is charged.</p>\
         <form method=\"post\" action=\"/checkout/{id}\"><button type=\"submit\">Pay</button></form></main></body></html>"
    ))
    .into_response()
}

/// Pays, then goes where the checkout's custom data says (as the operator's Paddle.js page
/// would with its `successUrl`).
async fn pay(State(sim): State<Paddle>, Path(id): Path<String>) -> Response {
    let success = sim.lock().transactions.get(&id).and_then(|t| {
        t["custom_data"]["penpal_success_url"]
            .as_str()
            .map(str::to_string)
    });
    match (sim.complete_checkout(&id).await, success) {
        (Some(_), Some(url)) => Redirect::to(&url).into_response(),
        (Some(_), None) => Html("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Paid</title></head><body><main><h1>Paid</h1></main></body></html>").into_response(),
        (None, _) => not_found(&id),
    }
}
