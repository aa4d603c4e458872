//! Payment-provider simulators: Stripe here, Paddle in [`paddle`].
//!
//! A Stripe simulator for tests and offline development, as the scripted model is for the
//! language model: a loopback HTTP server speaking the subset of Stripe's API the `stripe`
//! plugin uses (Checkout Sessions, portal sessions, subscriptions, refunds), with a checkout
//! page a person (or a browser test) can pay on, that **sends real signed webhooks** to penpal.
//! Tests also deliver events by hand: in order or not, twice, late, signed with a rotated or a
//! wrong secret, or altered after signing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub mod paddle;

/// A subscription the simulator holds.
#[derive(Debug, Clone)]
struct Sub {
    customer: String,
    status: String,
    metadata: Value,
    trial_end: Option<u64>,
    period_end: u64,
    cancel_at_period_end: bool,
    amount: i64,
    currency: String,
    interval: String,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    sessions: HashMap<String, Vec<(String, String)>>,
    subscriptions: HashMap<String, Sub>,
    /// Seconds added to the clock, to date events in the past or future.
    skew: i64,
    /// Checkout requests and refunds by idempotency key, answered alike when repeated.
    idempotent: HashMap<String, Value>,
    /// Payments taken, by payment intent id.
    payments: HashMap<String, Payment>,
}

/// A payment the simulator took.
#[derive(Debug, Clone)]
struct Payment {
    charge: String,
    customer: String,
    amount: i64,
    currency: String,
    refunded: i64,
}

/// How to deliver an event.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Sign with these secrets instead of the simulator's (a rotation sends two).
    pub secrets: Option<Vec<String>>,
    /// Sign with this timestamp instead of now.
    pub timestamp: Option<u64>,
    /// Change the body after signing it.
    pub tamper: bool,
    /// Send this body instead of the signed one (a truncated or re-encoded copy).
    pub body: Option<String>,
}

/// A running simulator.
#[derive(Clone)]
pub struct Simulator {
    /// Where it listens.
    pub addr: SocketAddr,
    api_key: String,
    secret: String,
    webhook: Arc<Mutex<String>>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now() -> u64 {
    (crate::store::now_ms() / 1000) as u64
}

impl Simulator {
    /// Starts a simulator on a loopback port that takes `api_key` and sends its webhooks to
    /// `webhook`, signed with `secret`.
    pub async fn start(api_key: &str, secret: &str, webhook: &str) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Simulator::start_on(listener, api_key, secret, webhook)
    }

    /// [`Simulator::start`] on `listener`.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        api_key: &str,
        secret: &str,
        webhook: &str,
    ) -> std::io::Result<Simulator> {
        let sim = Simulator {
            addr: listener.local_addr()?,
            api_key: api_key.to_string(),
            secret: secret.to_string(),
            webhook: Arc::new(Mutex::new(webhook.to_string())),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/billing_portal/sessions", post(create_portal))
            .route(
                "/v1/subscriptions/{id}",
                get(get_subscription)
                    .post(update_subscription)
                    .delete(cancel_now),
            )
            .route("/v1/refunds", post(refund))
            .route("/checkout/{id}", get(checkout_page).post(pay))
            .with_state(sim.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Stripe simulator stopped");
            }
        });
        Ok(sim)
    }

    /// Sends webhooks to `url` from now on (penpal's address is known once it listens).
    pub fn send_to(&self, url: &str) {
        *self.webhook.lock().unwrap_or_else(|p| p.into_inner()) = url.to_string();
    }

    /// Its base URL (the plugin's `api_base`).
    pub fn url(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    fn id(&self, prefix: &str) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.next += 1;
        format!("{prefix}_sim{:06}", inner.next)
    }

    /// Moves the clock events are dated by `seconds`.
    pub fn skew(&self, seconds: i64) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).skew = seconds;
    }

    /// An event of `kind` about `object`, dated by the simulator's clock.
    pub fn event(&self, kind: &str, object: Value) -> Value {
        let skew = self.inner.lock().unwrap_or_else(|p| p.into_inner()).skew;
        json!({
            "id": self.id("evt"),
            "object": "event",
            "type": kind,
            "created": now().saturating_add_signed(skew),
            "data": {"object": object},
        })
    }

    /// Sends `event` to penpal as Stripe would; returns penpal's status.
    pub async fn deliver(&self, event: &Value, how: &Delivery) -> u16 {
        let body = event.to_string();
        let t = how.timestamp.unwrap_or_else(now);
        let secrets = how
            .secrets
            .clone()
            .unwrap_or_else(|| vec![self.secret.clone()]);
        let signatures: Vec<String> = secrets
            .iter()
            .map(|s| format!("v1={}", sign(s, t, &body)))
            .collect();
        let header = format!("t={t},{}", signatures.join(","));
        let body = if how.tamper {
            body.replace("\"type\"", "\"type\" ")
        } else {
            body
        };
        let body = how.body.clone().unwrap_or(body);
        send_webhook(&self.webhook, "stripe-signature", header, body).await
    }

    /// The subscription object as Stripe shows it.
    fn subscription_json(&self, id: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let s = inner.subscriptions.get(id)?;
        Some(json!({
            "id": id,
            "object": "subscription",
            "customer": s.customer,
            "status": s.status,
            "metadata": s.metadata,
            "trial_end": s.trial_end,
            "cancel_at_period_end": s.cancel_at_period_end,
            "items": {"data": [{
                "id": format!("si_{id}"),
                "current_period_end": s.period_end,
                "price": {"currency": s.currency, "unit_amount": s.amount, "recurring": {"interval": s.interval}},
            }]},
        }))
    }

    /// Pays checkout session `id` as its customer would: creates the customer and the
    /// subscription and sends the webhooks Stripe sends, in order. Returns the subscription id.
    pub async fn complete_checkout(&self, session: &str) -> Option<String> {
        let params = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sessions
            .get(session)
            .cloned()?;
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let customer = get("customer").unwrap_or_else(|| self.id("cus"));
        let sub_id = self.id("sub");
        let trial_days: u64 = get("subscription_data[trial_period_days]")
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let interval = get("line_items[0][price_data][recurring][interval]").unwrap_or_default();
        let period = if interval == "year" { 365 } else { 30 } * 86_400;
        let start = now();
        let metadata = json!({
            "penpal_customer": get("subscription_data[metadata][penpal_customer]"),
            "penpal_plan": get("subscription_data[metadata][penpal_plan]"),
        });
        let sub = Sub {
            customer: customer.clone(),
            status: if trial_days > 0 { "trialing" } else { "active" }.into(),
            metadata: metadata.clone(),
            trial_end: (trial_days > 0).then(|| start + trial_days * 86_400),
            period_end: start
                + if trial_days > 0 {
                    trial_days * 86_400
                } else {
                    period
                },
            cancel_at_period_end: false,
            amount: get("line_items[0][price_data][unit_amount]")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0),
            currency: get("line_items[0][price_data][currency]").unwrap_or_default(),
            interval,
        };
        let (amount, currency) = (
            if trial_days > 0 { 0 } else { sub.amount },
            sub.currency.clone(),
        );
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subscriptions
            .insert(sub_id.clone(), sub);
        let completed = self.event(
            "checkout.session.completed",
            json!({"id": session, "object": "checkout.session", "customer": customer,
                   "subscription": sub_id, "client_reference_id": get("client_reference_id"),
                   "metadata": {"penpal_customer": get("metadata[penpal_customer]"), "penpal_plan": get("metadata[penpal_plan]")}}),
        );
        let created = self.event(
            "customer.subscription.created",
            self.subscription_json(&sub_id)?,
        );
        let payment = self.id("pi");
        if amount > 0 {
            let charge = self.id("ch");
            self.inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .payments
                .insert(
                    payment.clone(),
                    Payment {
                        charge,
                        customer: customer.clone(),
                        amount,
                        currency: currency.clone(),
                        refunded: 0,
                    },
                );
        }
        let paid = self.event(
            "invoice.paid",
            json!({"id": self.id("in"), "object": "invoice", "customer": customer, "subscription": sub_id,
                   "amount_paid": amount, "currency": currency, "payment_intent": payment,
                   "parent": {"subscription_details": {"metadata": metadata}}}),
        );
        for e in [completed, created, paid] {
            self.deliver(&e, &Delivery::default()).await;
        }
        Some(sub_id)
    }

    /// Changes subscription `id` with `change` and sends `customer.subscription.updated`
    /// (or `…deleted` once canceled); returns the event sent.
    pub async fn update(&self, id: &str, change: impl FnOnce(&mut SubView<'_>)) -> Option<Value> {
        let event = self.change(id, change)?;
        self.deliver(&event, &Delivery::default()).await;
        Some(event)
    }

    /// The answer given earlier to idempotency key `key`, if any.
    fn remembered(&self, key: Option<&str>) -> Option<Value> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.idempotent.get(key?).cloned()
    }

    /// Sends `events` in order after the API call that caused them has been answered, as
    /// Stripe does (a plugin waiting for its answer must not wait for penpal's webhook).
    fn send_later(&self, events: Vec<Value>) {
        let sim = self.clone();
        tokio::spawn(async move {
            for e in events {
                sim.deliver(&e, &Delivery::default()).await;
            }
        });
    }

    /// Changes subscription `id` with `change`; the event that reports it.
    fn change(&self, id: &str, change: impl FnOnce(&mut SubView<'_>)) -> Option<Value> {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let s = inner.subscriptions.get_mut(id)?;
            change(&mut SubView {
                status: &mut s.status,
                cancel_at_period_end: &mut s.cancel_at_period_end,
            });
        }
        let object = self.subscription_json(id)?;
        let kind = if object["status"] == "canceled" {
            "customer.subscription.deleted"
        } else {
            "customer.subscription.updated"
        };
        Some(self.event(kind, object))
    }
}

impl Simulator {
    /// A renewal of `id` fails: `invoice.payment_failed`, then the subscription `past_due`.
    pub async fn fail_payment(&self, id: &str) -> Option<()> {
        let (customer, amount, currency, metadata) = {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let s = inner.subscriptions.get(id)?;
            (
                s.customer.clone(),
                s.amount,
                s.currency.clone(),
                s.metadata.clone(),
            )
        };
        let failed = self.event(
            "invoice.payment_failed",
            json!({"id": self.id("in"), "object": "invoice", "customer": customer, "subscription": id,
                   "amount_due": amount, "amount_paid": 0, "currency": currency,
                   "parent": {"subscription_details": {"metadata": metadata}}}),
        );
        self.deliver(&failed, &Delivery::default()).await;
        self.update(id, |s| *s.status = "past_due".into()).await?;
        Some(())
    }

    /// The payment intents the simulator took, oldest first.
    pub fn payments(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = inner.payments.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The payer of `payment` disputes it at their bank: `charge.dispute.created`.
    pub async fn dispute(&self, payment: &str) -> Option<Value> {
        let p = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .payments
            .get(payment)
            .cloned()?;
        let event = self.event(
            "charge.dispute.created",
            json!({"id": self.id("dp"), "object": "dispute", "charge": p.charge, "payment_intent": payment,
                   "amount": p.amount, "currency": p.currency, "reason": "fraudulent", "status": "needs_response"}),
        );
        self.deliver(&event, &Delivery::default()).await;
        Some(event)
    }

    /// Refunds `amount` (the rest when none) of `payment` and sends `charge.refunded`; the
    /// refund object, or why Stripe would refuse it.
    async fn refund_payment(&self, payment: &str, amount: Option<i64>) -> Result<Value, String> {
        let (p, refund) = {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            // Refunds name a payment intent or its charge.
            let p = inner
                .payments
                .iter()
                .find(|(k, p)| *k == payment || p.charge == payment)
                .map_or_else(|| payment.to_string(), |(k, _)| k.clone());
            let Some(held) = inner.payments.get_mut(&p) else {
                return Err(format!("No such payment_intent: '{payment}'"));
            };
            let amount = amount.unwrap_or(held.amount - held.refunded);
            if amount <= 0 || held.refunded + amount > held.amount {
                return Err(format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                    held.amount - held.refunded
                ));
            }
            held.refunded += amount;
            (p, amount)
        };
        let held = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .payments
            .get(&p)
            .cloned()
            .ok_or("gone")?;
        let event = self.event(
            "charge.refunded",
            json!({"id": held.charge, "object": "charge", "payment_intent": p, "customer": held.customer,
                   "amount": held.amount, "amount_refunded": held.refunded, "currency": held.currency,
                   "refunded": held.refunded == held.amount}),
        );
        self.send_later(vec![event]);
        Ok(
            json!({"id": self.id("re"), "object": "refund", "status": "succeeded", "amount": refund,
                  "payment_intent": p, "charge": held.charge}),
        )
    }

    /// Subscription `id` renews (a trial converting, a period ending, a failed payment
    /// retried): a payment is taken, `invoice.paid` sent, and the subscription, active for
    /// another period, with `customer.subscription.updated`.
    pub async fn renew(&self, id: &str) -> Option<String> {
        let (customer, amount, currency, metadata, interval) = {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let s = inner.subscriptions.get(id)?;
            (
                s.customer.clone(),
                s.amount,
                s.currency.clone(),
                s.metadata.clone(),
                s.interval.clone(),
            )
        };
        let payment = self.id("pi");
        let charge = self.id("ch");
        {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.payments.insert(
                payment.clone(),
                Payment {
                    charge,
                    customer: customer.clone(),
                    amount,
                    currency: currency.clone(),
                    refunded: 0,
                },
            );
            let s = inner.subscriptions.get_mut(id)?;
            s.status = "active".into();
            s.trial_end = None;
            s.period_end = now() + if interval == "year" { 365 } else { 30 } * 86_400;
        }
        let paid = self.event(
            "invoice.paid",
            json!({"id": self.id("in"), "object": "invoice", "customer": customer, "subscription": id,
                   "amount_paid": amount, "currency": currency, "payment_intent": payment,
                   "parent": {"subscription_details": {"metadata": metadata}}}),
        );
        self.deliver(&paid, &Delivery::default()).await;
        let updated = self.event("customer.subscription.updated", self.subscription_json(id)?);
        self.deliver(&updated, &Delivery::default()).await;
        Some(payment)
    }

    /// Three days before the trial of `id` ends: `customer.subscription.trial_will_end`.
    pub async fn trial_will_end(&self, id: &str) -> Option<()> {
        let event = self.event(
            "customer.subscription.trial_will_end",
            self.subscription_json(id)?,
        );
        self.deliver(&event, &Delivery::default()).await;
        Some(())
    }

    /// The parameters checkout session `id` was created with.
    pub fn session(&self, id: &str) -> Option<Vec<(String, String)>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.sessions.get(id).cloned()
    }

    /// The status Stripe holds for subscription `id`.
    pub fn status_of(&self, id: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.subscriptions.get(id).map(|s| s.status.clone())
    }
}

/// What a test may change on a subscription.
#[derive(Debug)]
pub struct SubView<'a> {
    /// Stripe's status (`active`, `past_due`, `canceled`…).
    pub status: &'a mut String,
    /// Whether it stops at the period's end.
    pub cancel_at_period_end: &'a mut bool,
}

/// Posts a webhook to the address in `to`, signed in header `name`; penpal's status, or 0
/// when it could not be reached.
pub(crate) async fn send_webhook(
    to: &Mutex<String>,
    name: &str,
    signature: String,
    body: String,
) -> u16 {
    let url = to.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match reqwest::Client::new()
        .post(&url)
        .header(name, signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            tracing::warn!(error = %e, "the simulator could not deliver a webhook");
            0
        }
    }
}

/// Stripe's signature: hex HMAC-SHA256 of `"{t}.{body}"`.
pub fn sign(secret: &str, t: u64, body: &str) -> String {
    sign_with(secret, &format!("{t}.{body}"))
}

/// Hex HMAC-SHA256 of `payload` under `secret`.
pub(crate) fn sign_with(secret: &str, payload: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(payload.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn authorized(sim: &Simulator, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", sim.api_key))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"type": "invalid_request_error", "message": format!("No such {what}")}})),
    )
        .into_response()
}

async fn create_session(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(v) = sim.remembered(key.as_deref()) {
        return Json(v).into_response();
    }
    for required in ["success_url", "cancel_url", "mode"] {
        if !params.iter().any(|(k, _)| k == required) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": format!("Missing required param: {required}.")}})),
            )
                .into_response();
        }
    }
    let id = sim.id("cs");
    let answer = json!({"id": id, "object": "checkout.session", "url": format!("{}/checkout/{id}", sim.url())});
    let mut inner = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.sessions.insert(id, params);
    if let Some(k) = key {
        inner.idempotent.insert(k, answer.clone());
    }
    Json(answer).into_response()
}

async fn create_portal(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let customer = params
        .iter()
        .find(|(k, _)| k == "customer")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let id = sim.id("bps");
    Json(json!({"id": id, "object": "billing_portal.session", "url": format!("{}/portal/{customer}", sim.url())}))
        .into_response()
}

async fn get_subscription(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    match sim.subscription_json(&id) {
        Some(s) => Json(s).into_response(),
        None => not_found("subscription"),
    }
}

async fn update_subscription(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let cancel = get("cancel_at_period_end").map(|v| v == "true");
    // A change of price (a plan switch); Stripe prorates on the next invoice.
    if let Some(amount) = get("items[0][price_data][unit_amount]").and_then(|a| a.parse().ok()) {
        let mut inner = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sub) = inner.subscriptions.get_mut(&id) else {
            return not_found("subscription");
        };
        sub.amount = amount;
        if let Some(c) = get("items[0][price_data][currency]") {
            sub.currency = c;
        }
        if let Some(i) = get("items[0][price_data][recurring][interval]") {
            sub.interval = i;
        }
        if let Some(plan) = get("metadata[penpal_plan]") {
            sub.metadata["penpal_plan"] = json!(plan);
        }
    }
    let Some(event) = sim.change(&id, |s| {
        if let Some(c) = cancel {
            *s.cancel_at_period_end = c;
        }
    }) else {
        return not_found("subscription");
    };
    sim.send_later(vec![event]);
    sim.subscription_json(&id)
        .map_or_else(|| not_found("subscription"), |s| Json(s).into_response())
}

async fn cancel_now(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    match sim.change(&id, |s| *s.status = "canceled".into()) {
        Some(e) => {
            let answer = e["data"]["object"].clone();
            sim.send_later(vec![e]);
            Json(answer).into_response()
        }
        None => not_found("subscription"),
    }
}

async fn refund(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(v) = sim.remembered(key.as_deref()) {
        return Json(v).into_response();
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let Some(payment) = get("payment_intent").or_else(|| get("charge")) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"message": "Missing required param: charge or payment_intent."}}),
            ),
        )
            .into_response();
    };
    let amount = get("amount").and_then(|a| a.parse().ok());
    match sim.refund_payment(&payment, amount).await {
        Ok(answer) => {
            if let Some(k) = key {
                sim.inner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .idempotent
                    .insert(k, answer.clone());
            }
            Json(answer).into_response()
        }
        Err(why) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"type": "invalid_request_error", "message": why}})),
        )
            .into_response(),
    }
}

/// The hosted checkout page: one button that pays.
async fn checkout_page(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    if !sim
        .inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .sessions
        .contains_key(&id)
    {
        return not_found("checkout session");
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Checkout (simulated)</title></head>\
         <body><main><h1>Stripe checkout (simulator)</h1><p>No card is charged.</p>\
         <form method=\"post\" action=\"/checkout/{id}\"><button type=\"submit\">Pay</button></form></main></body></html>"
    ))
    .into_response()
}

async fn pay(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let success = sim
        .inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .sessions
        .get(&id)
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| k == "success_url")
                .map(|(_, v)| v.clone())
        });
    match (sim.complete_checkout(&id).await, success) {
        (Some(_), Some(url)) => Redirect::to(&url).into_response(),
        _ => not_found("checkout session"),
    }
}
