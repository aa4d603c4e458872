//! Payment providers' webhooks, done right: the exact bytes go to the provider's plugin, which
//! verifies the signature before anything is parsed; each event it returns is **stored before
//! it is applied** (keyed by provider and event id, so a duplicate is recognised), then applied
//! in one transaction through the subscription state machine, which never lets an older event
//! roll a newer state back. A failure to apply is recorded on the event and answered with a
//! 5xx, so the provider sends it again; a replay of an applied event changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plans::Plans;
use super::provider::{EventKind, PaymentEvent, SubscriptionStatus};
use super::subscription::{self, Fact, Outcome, State, Status};
use crate::store::outbox::{Category, Notice, Routing};
use crate::store::{Batch, Db, StoreResult, now_ms};

/// What the mail an event sends needs.
#[derive(Debug, Clone, Copy)]
pub struct Mailing<'a> {
    /// Channels per category.
    pub routing: &'a Routing,
    /// The server's public address, for links (no trailing slash).
    pub public_url: &'a str,
    /// Plans, for their names and prices.
    pub plans: Option<&'a Plans>,
}

/// The message an event of `kind` sends the account's owner, if any: the template and its
/// values beside `name` and `link`.
fn message(
    e: &PaymentEvent,
    plan: Option<&str>,
    trial_end: Option<u64>,
    plans: Option<&Plans>,
) -> Option<(&'static str, Value)> {
    let plan = plan.and_then(|p| plans?.get(p));
    let plan_name = plan.map_or_else(|| "Premium".to_string(), |p| p.name("en").to_string());
    let amount = e
        .amount
        .as_ref()
        .map(|m| super::money::format(m.amount_minor, &m.currency));
    let date = |secs: u64| crate::store::utc_date((secs / 86_400) as i64);
    match e.kind {
        EventKind::InvoicePaid if e.amount.as_ref().is_some_and(|m| m.amount_minor > 0) => Some((
            "receipt",
            json!({"amount": amount, "plan": plan_name, "date": date(e.occurred_at),
                   "reference": e.payment_id.clone().unwrap_or_else(|| e.id.clone())}),
        )),
        EventKind::PaymentFailed => Some((
            "payment_failed",
            json!({"amount": amount.unwrap_or_else(|| "—".into()), "plan": plan_name}),
        )),
        EventKind::TrialWillEnd => Some((
            "trial_ending",
            trial_ending(
                plan.map(|p| p.id.as_str()),
                trial_end.unwrap_or(e.occurred_at),
                plans,
            ),
        )),
        _ => None,
    }
}

/// What one event came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Applied (or nothing to change).
    Applied,
    /// Kept, not applied: the reason says why (no account, an impossible transition).
    Ignored(String),
    /// Not applied yet: it is about something the provider has not reported yet (a refund
    /// before its payment). Answered with a 5xx so the provider delivers it again.
    Later(String),
}

/// The event as stored, in JSON (the plugin's record, field by field).
fn stored(e: &PaymentEvent) -> Value {
    json!({
        "id": e.id,
        "kind": kind(e.kind),
        "provider_type": e.provider_type,
        "customer_id": e.customer_id,
        "provider_customer_id": e.provider_customer_id,
        "subscription": e.subscription.as_ref().map(|s| json!({
            "id": s.id,
            "status": status(s.status),
            "plan_id": s.plan_id,
            "current_period_end": s.current_period_end,
            "trial_end": s.trial_end,
            "cancel_at_period_end": s.cancel_at_period_end,
        })),
        "payment_id": e.payment_id,
        "amount": e.amount.as_ref().map(|m| json!({"amount_minor": m.amount_minor, "currency": m.currency})),
        "occurred_at": e.occurred_at,
    })
}

fn kind(k: EventKind) -> &'static str {
    match k {
        EventKind::CheckoutCompleted => "checkout_completed",
        EventKind::SubscriptionCreated => "subscription_created",
        EventKind::SubscriptionUpdated => "subscription_updated",
        EventKind::SubscriptionDeleted => "subscription_deleted",
        EventKind::TrialWillEnd => "trial_will_end",
        EventKind::SubscriptionPaused => "subscription_paused",
        EventKind::SubscriptionResumed => "subscription_resumed",
        EventKind::InvoicePaid => "invoice_paid",
        EventKind::PaymentFailed => "payment_failed",
        EventKind::Refunded => "refunded",
        EventKind::DisputeOpened => "dispute_opened",
        EventKind::Other => "other",
    }
}

fn status(s: SubscriptionStatus) -> Status {
    match s {
        SubscriptionStatus::Incomplete => Status::Incomplete,
        SubscriptionStatus::Trialing => Status::Trialing,
        SubscriptionStatus::Active => Status::Active,
        SubscriptionStatus::PastDue => Status::PastDue,
        SubscriptionStatus::Paused => Status::Paused,
        SubscriptionStatus::Canceled => Status::Canceled,
        SubscriptionStatus::Unpaid => Status::Unpaid,
    }
}

/// Stores `event` from `provider` unless it is stored already; whether it still needs
/// applying (new, or stored earlier and not applied).
pub async fn store(db: &Db, provider: &str, event: &PaymentEvent) -> StoreResult<bool> {
    #[derive(Deserialize)]
    struct Row {
        status: String,
    }
    let existing: Option<Row> = db
        .one(
            "SELECT status FROM type::record('billing_event', [$p, $id])",
            json!({"p": provider, "id": event.id}),
        )
        .await?;
    if let Some(row) = existing {
        return Ok(row.status == "received" || row.status == "failed");
    }
    let created = db
        .exec(
            "CREATE type::record('billing_event', [$p, $id]) CONTENT {
                provider: $p, event_id: $id, kind: $kind, provider_type: $ptype, event: $event,
                status: 'received', occurred_at: $at, received_at: $now }",
            json!({"p": provider, "id": event.id, "kind": kind(event.kind), "ptype": event.provider_type,
                   "event": stored(event), "at": event.occurred_at as i64, "now": now_ms()}),
        )
        .await;
    match created {
        Ok(()) => Ok(true),
        // Another delivery of the same event stored it a moment ago: that one applies it.
        Err(crate::store::StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records that applying `event` failed, for the operator and the provider's next attempt.
pub async fn failed(db: &Db, provider: &str, event: &str, why: &str) -> StoreResult<()> {
    db.exec(
        "UPDATE type::record('billing_event', [$p, $id]) SET status = 'failed', error = $why",
        json!({"p": provider, "id": event, "why": why}),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct HeldRow {
    status: Status,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    period_end: Option<i64>,
    #[serde(default)]
    trial_end: Option<i64>,
    cancel_at_period_end: bool,
    as_of: i64,
}

/// The account an event is about: its own metadata, else the provider's customer id, else the
/// subscription penpal holds.
async fn account(db: &Db, provider: &str, e: &PaymentEvent) -> StoreResult<Option<String>> {
    if let Some(user) = &e.customer_id {
        let exists: Option<Value> = db
            .one(
                "SELECT VALUE id FROM type::record('user', $u)",
                json!({"u": user}),
            )
            .await?;
        if exists.is_some() {
            return Ok(Some(user.clone()));
        }
    }
    if let Some(customer) = &e.provider_customer_id {
        let user: Option<String> = db
            .one(
                "SELECT VALUE user FROM billing_customer WHERE provider = $p AND customer = $c LIMIT 1",
                json!({"p": provider, "c": customer}),
            )
            .await?;
        if user.is_some() {
            return Ok(user);
        }
    }
    if let Some(s) = &e.subscription {
        let user: Option<String> = db
            .one(
                "SELECT VALUE user FROM type::record('subscription', [$p, $s])",
                json!({"p": provider, "s": s.id}),
            )
            .await?;
        if user.is_some() {
            return Ok(user);
        }
    }
    // Disputes name only the payment.
    match &e.payment_id {
        Some(payment) => super::invoices::payer(db, provider, payment).await,
        None => Ok(None),
    }
}

/// Applies a stored event in one transaction: the customer link, the subscription's new state
/// and the entitlement it gives, and the event marked applied.
pub async fn apply(
    db: &Db,
    provider: &str,
    e: &PaymentEvent,
    mailing: Mailing<'_>,
) -> StoreResult<Applied> {
    let now = now_ms();
    let mut batch = Batch::default();
    let mark = |batch: &mut Batch, status: &str, user: Option<&str>, why: Option<&str>| {
        let mut set = json!({"status": status, "applied_at": now});
        if let Some(u) = user {
            set["user"] = json!(u);
        }
        if let Some(w) = why {
            set["error"] = json!(w);
        }
        batch.push(
            "UPDATE type::record('billing_event', [$ev_p, $ev_id]) MERGE $ev_set;",
            [
                ("ev_p".to_string(), json!(provider)),
                ("ev_id".to_string(), json!(e.id)),
                ("ev_set".to_string(), set),
            ],
        );
    };
    let Some(user) = account(db, provider, e).await? else {
        let why = "no penpal account is named by this event";
        mark(&mut batch, "ignored", None, Some(why));
        batch.commit(db).await?;
        return Ok(Applied::Ignored(why.into()));
    };
    if let Some(customer) = &e.provider_customer_id {
        batch.push(
            "UPSERT type::record('billing_customer', [$cu_user, $cu_p]) CONTENT { user: $cu_user, provider: $cu_p, customer: $cu_c };",
            [
                ("cu_user".to_string(), json!(user)),
                ("cu_p".to_string(), json!(provider)),
                ("cu_c".to_string(), json!(customer)),
            ],
        );
    }
    let mut outcome = Applied::Applied;
    // The plan and trial end the mail speaks of: the event's, else what is held.
    let mut plan = e.subscription.as_ref().and_then(|s| s.plan_id.clone());
    let mut trial_end = e.subscription.as_ref().and_then(|s| s.trial_end);
    if let Some(s) = &e.subscription {
        let held: Option<HeldRow> = db
            .one(
                "SELECT * FROM type::record('subscription', [$p, $s])",
                json!({"p": provider, "s": s.id}),
            )
            .await?;
        let held_state = held.as_ref().map(|h| State {
            status: h.status,
            plan: h.plan.clone(),
            period_end: h.period_end.map(|t| t as u64),
            trial_end: h.trial_end.map(|t| t as u64),
            cancel_at_period_end: h.cancel_at_period_end,
            as_of: h.as_of as u64,
        });
        if let Some(h) = &held_state {
            plan = plan.or_else(|| h.plan.clone());
            trial_end = trial_end.or(h.trial_end);
        }
        let is_snapshot = matches!(
            e.kind,
            EventKind::SubscriptionCreated
                | EventKind::SubscriptionUpdated
                | EventKind::SubscriptionDeleted
                | EventKind::SubscriptionPaused
                | EventKind::SubscriptionResumed
                | EventKind::TrialWillEnd
        );
        let fact = match e.kind {
            EventKind::InvoicePaid => Some(Fact::Paid),
            EventKind::PaymentFailed => Some(Fact::PaymentFailed),
            _ if is_snapshot => {
                let mut next = status(s.status);
                // WIT 0.2 reports an incomplete subscription that ended as canceled.
                if next == Status::Canceled
                    && held_state.as_ref().map(|h| h.status) == Some(Status::Incomplete)
                {
                    next = Status::IncompleteExpired;
                }
                Some(Fact::Snapshot {
                    status: next,
                    plan: s.plan_id.clone(),
                    period_end: s.current_period_end,
                    trial_end: s.trial_end,
                    cancel_at_period_end: s.cancel_at_period_end,
                })
            }
            _ => None,
        };
        if let Some(fact) = fact {
            match subscription::apply(held_state.as_ref(), &fact, e.occurred_at) {
                Outcome::Changed(state) => {
                    let mut row = json!({
                        "user": user, "provider": provider, "provider_id": s.id,
                        "status": state.status, "cancel_at_period_end": state.cancel_at_period_end,
                        "as_of": state.as_of as i64, "updated_at": now,
                    });
                    for (k, v) in [
                        ("plan", state.plan.clone().map(Value::from)),
                        ("period_end", state.period_end.map(|t| json!(t as i64))),
                        ("trial_end", state.trial_end.map(|t| json!(t as i64))),
                    ] {
                        if let Some(v) = v {
                            row[k] = v;
                        }
                    }
                    // Compare and set: the write holds only if the subscription is still as
                    // it was read. Another node applying an event about it in between makes
                    // this transaction fail; the provider's next delivery reads afresh.
                    batch.push(
                        "LET $sub_now = (SELECT VALUE as_of FROM type::record('subscription', [$sub_p, $sub_id]))[0];
                         IF ($sub_now ?? -1) != $sub_read { THROW 'the subscription changed while this event was applied; the next delivery applies it' };
                         UPSERT type::record('subscription', [$sub_p, $sub_id]) CONTENT $sub_row;",
                        [
                            ("sub_p".to_string(), json!(provider)),
                            ("sub_id".to_string(), json!(s.id)),
                            ("sub_row".to_string(), row),
                            (
                                "sub_read".to_string(),
                                json!(held.as_ref().map_or(-1, |h| h.as_of)),
                            ),
                        ],
                    );
                    let reference = format!("{provider}:{}", s.id);
                    match (&state.plan, state.status.entitles()) {
                        (Some(plan), true) => batch.push(
                            "UPSERT type::record('entitlement', [$en_user, 'subscription', $en_ref]) CONTENT { user: $en_user, plan: $en_plan, source: 'subscription', reference: $en_ref, created_at: $en_now };",
                            [
                                ("en_user".to_string(), json!(user)),
                                ("en_ref".to_string(), json!(reference)),
                                ("en_plan".to_string(), json!(plan)),
                                ("en_now".to_string(), json!(now)),
                            ],
                        ),
                        _ => batch.push(
                            "DELETE type::record('entitlement', [$en_user, 'subscription', $en_ref]);",
                            [
                                ("en_user".to_string(), json!(user)),
                                ("en_ref".to_string(), json!(reference)),
                            ],
                        ),
                    }
                }
                Outcome::Unchanged => {}
                Outcome::Refused(why) => outcome = Applied::Ignored(why),
            }
        }
    }
    let refund =
        match super::invoices::record(db, &mut batch, provider, &user, e, plan.as_deref()).await? {
            super::invoices::Recorded::Later(why) => return Ok(Applied::Later(why)),
            super::invoices::Recorded::Refund(more, currency, payment) => Some(json!({
                "amount": super::money::format(more, &currency), "reference": payment,
            })),
            super::invoices::Recorded::Done => None,
        };
    match &outcome {
        Applied::Ignored(why) => mark(&mut batch, "ignored", Some(&user), Some(why)),
        _ => mark(&mut batch, "applied", Some(&user), None),
    }
    // Coupon uses taken at checkout are kept for good once the checkout has led somewhere.
    if matches!(
        e.kind,
        EventKind::CheckoutCompleted | EventKind::SubscriptionCreated
    ) {
        batch.push(
            "UPDATE coupon_redemption SET confirmed = true WHERE user = $cr_user AND confirmed != true;",
            [("cr_user".to_string(), json!(user))],
        );
    }
    if outcome == Applied::Applied
        && let Some((template, vars)) = message(e, plan.as_deref(), trial_end, mailing.plans)
    {
        if e.kind == EventKind::TrialWillEnd
            && let Some(s) = &e.subscription
        {
            // The sweep's fallback reminder (for providers without this event) sees it sent.
            batch.push(
                "UPSERT type::record('notify_once', $tr_key) CONTENT { user: $tr_user, at: $tr_at };",
                [
                    ("tr_key".to_string(), json!(trial_key(provider, &s.id))),
                    ("tr_user".to_string(), json!(user)),
                    ("tr_at".to_string(), json!(now)),
                ],
            );
        }
        notify_owner(db, &mut batch, &user, template, vars, mailing).await?;
    }
    if let Some(vars) = refund {
        notify_owner(db, &mut batch, &user, "refund", vars, mailing).await?;
    }
    batch.commit(db).await?;
    Ok(outcome)
}

/// The `notify_once` key of the reminder that `provider`'s subscription `id`'s trial ends.
pub fn trial_key(provider: &str, id: &str) -> String {
    format!("trial_ending:{provider}:{id}")
}

/// Adds to `batch` the message `template` to `user` (an account message), with their name and
/// a link to their settings beside `vars`.
pub async fn notify_owner(
    db: &Db,
    batch: &mut Batch,
    user: &str,
    template: &'static str,
    mut vars: Value,
    mailing: Mailing<'_>,
) -> StoreResult<()> {
    #[derive(Deserialize)]
    struct Owner {
        email: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        lang: Option<String>,
    }
    let owner: Option<Owner> = db
        .one(
            "SELECT email, profile.display_name AS name, profile.interface_language AS lang FROM type::record('user', $u)",
            json!({"u": user}),
        )
        .await?;
    if let Some(o) = owner {
        vars["name"] = json!(
            o.name
                .unwrap_or_else(|| o.email.split('@').next().unwrap_or_default().to_string())
        );
        vars["link"] = json!(format!("{}/settings", mailing.public_url));
        batch.notify(
            &Notice {
                template,
                category: Category::Account,
                user: Some(user.to_string()),
                to: o.email,
                lang: o.lang.unwrap_or_else(|| "en".into()),
                vars,
            },
            mailing.routing,
            "bm",
        );
    }
    Ok(())
}

/// The values of the `trial_ending` message for a trial of `plan` ending at `trial_end`.
pub fn trial_ending(plan: Option<&str>, trial_end: u64, plans: Option<&Plans>) -> Value {
    let plan = plan.and_then(|p| plans?.get(p));
    let plan_name = plan.map_or_else(|| "Premium".to_string(), |p| p.name("en").to_string());
    let price = plan
        .and_then(|p| p.prices.iter().next())
        .map(|(c, a)| super::money::format(*a, c))
        .unwrap_or_else(|| "—".into());
    json!({"plan": plan_name, "date": crate::store::utc_date((trial_end / 86_400) as i64), "amount": price})
}
