//! Managing a paying account over HTTP: a learner's invoices and their switch between monthly
//! and yearly; an operator's view of one customer's billing history and their refunds. Changes
//! go to the provider; penpal's records follow the provider's webhooks, as for checkout.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::invoices::{self, Invoice};
use super::plans::Interval;
use super::provider::Money;
use super::routes::{
    AccountPlan, BillingState, EventRow, SubscriptionView, account_plan, live_subscription,
    provider_error,
};
use crate::auth::{AuthUser, Operator};
use crate::http::{ApiError, ApiResult, Json, Query};

#[utoipa::path(get, path = "/v1/billing/invoices", tag = "billing",
    responses((status = 200, body = [Invoice], description = "what the account paid, newest first, with refunds and disputes")),
    security(("bearer" = [])))]
pub(super) async fn my_invoices(
    State(s): State<BillingState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<Invoice>>> {
    Ok(Json(invoices::list(&s.db, &user.id).await?))
}

/// The plan to move to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChange {
    /// A paid plan's id from `GET /v1/billing/plans`, such as `premium-yearly`.
    #[schema(max_length = 40)]
    plan: String,
}

/// A plan change the provider took.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanChanged {
    /// The plan asked for; the account's plan follows the provider's webhook.
    pub plan: String,
}

#[utoipa::path(post, path = "/v1/billing/subscription/plan", tag = "billing", request_body = PlanChange,
    responses((status = 202, body = PlanChanged, description = "the provider took it and prorates; the plan follows its webhook"),
        (status = 404, description = "no live subscription"),
        (status = 409, description = "already on this plan"),
        (status = 422, description = "not a paid plan, or not priced in the subscription's currency"),
        (status = 503, description = "the payment provider is unavailable")),
    security(("bearer" = [])))]
pub(super) async fn change_plan(
    State(s): State<BillingState>,
    user: AuthUser,
    Json(body): Json<PlanChange>,
) -> ApiResult<(StatusCode, Json<PlanChanged>)> {
    let Some(plans) = &s.billing.plans else {
        return Err(ApiError::Conflict("billing is off on this server".into()));
    };
    let plan = plans
        .get(&body.plan)
        .filter(|p| p.interval.is_some())
        .ok_or_else(|| ApiError::invalid("plan", format!("`{}` is not a paid plan", body.plan)))?;
    let (id, view) = live_subscription(&s, &user.id).await?;
    if view.plan.as_deref() == Some(plan.id.as_str()) {
        return Err(ApiError::Conflict(format!(
            "you are on `{}` already",
            plan.id
        )));
    }
    // A subscription keeps its currency: the one its payments were in, else the plan's first.
    let currency = invoices::list(&s.db, &user.id)
        .await?
        .into_iter()
        .next()
        .map(|i| i.currency)
        .or_else(|| {
            view.plan
                .as_deref()
                .and_then(|p| plans.get(p))
                .and_then(|p| p.prices.keys().next().cloned())
        })
        .unwrap_or_else(|| "EUR".into());
    let amount = *plan.prices.get(&currency).ok_or_else(|| {
        ApiError::invalid(
            "plan",
            format!(
                "`{}` is not priced in {currency}, your subscription's currency",
                plan.id
            ),
        )
    })?;
    let interval = match plan.interval {
        Some(Interval::Year) => super::provider::Interval::Year,
        _ => super::provider::Interval::Month,
    };
    s.payments
        .change_plan(
            &view.provider,
            &id,
            &plan.id,
            &Money {
                amount_minor: amount,
                currency,
            },
            interval,
            &crate::store::new_id(),
        )
        .await
        .map_err(provider_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PlanChanged {
            plan: plan.id.clone(),
        }),
    ))
}

/// Whose history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// The account's email address.
    #[param(format = Email, max_length = 254)]
    email: String,
}

/// One account's billing, as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerHistory {
    /// The account's id.
    pub user: String,
    /// Its plan now and why.
    pub plan: AccountPlan,
    /// Every subscription it had, newest first.
    pub subscriptions: Vec<SubscriptionView>,
    /// What it paid, newest first.
    pub invoices: Vec<Invoice>,
    /// The provider's events about it, newest first.
    pub events: Vec<EventRow>,
}

#[utoipa::path(get, path = "/v1/admin/billing/customer", tag = "admin", params(CustomerQuery),
    responses((status = 200, body = CustomerHistory),
        (status = 403, description = "not an operator"),
        (status = 404, description = "no account has this address")),
    security(("bearer" = [])))]
pub(super) async fn customer(
    State(s): State<BillingState>,
    _: Operator,
    Query(q): Query<CustomerQuery>,
) -> ApiResult<Json<CustomerHistory>> {
    let user = crate::auth::routes::user_by_email(&s.db, &q.email.trim().to_lowercase())
        .await?
        .ok_or(ApiError::NotFound("account"))?
        .id;
    let vars = serde_json::json!({"u": user});
    Ok(Json(CustomerHistory {
        plan: account_plan(&s, &user).await?,
        subscriptions: s
            .db
            .rows(
                "SELECT provider, status, plan, period_end, trial_end, cancel_at_period_end, updated_at
                 FROM subscription WHERE user = $u ORDER BY updated_at DESC",
                vars.clone(),
            )
            .await?,
        invoices: invoices::list(&s.db, &user).await?,
        events: s
            .db
            .rows(
                "SELECT provider, event_id, provider_type, user, status, error, occurred_at, received_at
                 FROM billing_event WHERE user = $u ORDER BY received_at DESC LIMIT 200",
                vars,
            )
            .await?,
        user,
    }))
}

/// A refund to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// The payment provider that took the payment.
    #[schema(max_length = 40)]
    provider: String,
    /// The provider's payment id, from the customer's invoices.
    #[schema(max_length = 200)]
    payment_id: String,
    /// How much to give back, in the payment's minor units; the rest of it when left out.
    #[schema(minimum = 1)]
    amount_minor: Option<i64>,
}

/// A refund the provider took.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundRequested {
    /// The amount asked for, in minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
}

#[utoipa::path(post, path = "/v1/admin/billing/refunds", tag = "admin", request_body = NewRefund,
    responses((status = 202, body = RefundRequested, description = "the provider took it; the invoice follows its webhook"),
        (status = 403, description = "not an operator"),
        (status = 404, description = "no such payment"),
        (status = 409, description = "the payment is refunded already"),
        (status = 422, description = "an amount below 1 or above what is left to refund"),
        (status = 503, description = "the payment provider is unavailable")),
    security(("bearer" = [])))]
pub(super) async fn refund(
    State(s): State<BillingState>,
    op: Operator,
    Json(body): Json<NewRefund>,
) -> ApiResult<(StatusCode, Json<RefundRequested>)> {
    let invoice = invoices::get(&s.db, &body.provider, &body.payment_id)
        .await?
        .ok_or(ApiError::NotFound("payment"))?;
    let left = invoice.amount_minor - invoice.refunded_minor;
    if left <= 0 {
        return Err(ApiError::Conflict(
            "this payment is refunded already".into(),
        ));
    }
    let amount = body.amount_minor.unwrap_or(left);
    if !(1..=left).contains(&amount) {
        return Err(ApiError::invalid(
            "amount_minor",
            format!("use 1 to {left}, what is left to refund"),
        ));
    }
    // The whole of what is left goes as "all of it", so a provider never rounds a remainder.
    let partial = (amount < left || invoice.refunded_minor > 0).then(|| Money {
        amount_minor: amount,
        currency: invoice.currency.clone(),
    });
    // One key per (payment, total after this refund): a retried request refunds once.
    let key = format!(
        "refund-{}-{}",
        invoice.payment_id,
        invoice.refunded_minor + amount
    );
    s.payments
        .refund(&body.provider, &invoice.payment_id, partial.as_ref(), &key)
        .await
        .map_err(provider_error)?;
    tracing::info!(operator = %op.0.id, provider = %body.provider, payment = %invoice.payment_id, amount, "refund requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(RefundRequested {
            amount_minor: amount,
            currency: invoice.currency,
        }),
    ))
}
